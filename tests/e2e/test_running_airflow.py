"""The real-Airflow harness's own logic that a real Airflow triggers only by chance."""

from __future__ import annotations

import json

import httpx
import pytest

from testing.airflow_harness import create_backfill

LOCKED = {"detail": "Database is locked. Backfill creation is not supported on SQLite under concurrent "
                    "access. Please use PostgreSQL or MySQL."}
NO_RUNS = {"dag_runs": [], "total_entries": 0}


def api_answering(answers: list[tuple[str, str, int, dict]], seen: list[tuple[str, str, dict | None]]):
    """An httpx client whose server answers ``answers`` in order, each checked against the request."""
    def handle(request: httpx.Request) -> httpx.Response:
        method, path, status, body = answers.pop(0)
        sent = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, sent))
        assert (request.method, request.url.path) == (method, path)
        return httpx.Response(status, json=body)

    return httpx.Client(base_url="http://airflow", transport=httpx.MockTransport(handle))


def no_waiting(what, check, timeout, every):
    assert check(), what


@pytest.mark.parametrize("asked", [None, "none", "failed"])  # "completed": the tests below
def test_a_backfill_refused_by_the_sqlite_lock_finishes_then_is_created_again(asked):
    body = {"dag_id": "d", "from_date": "2013-06-01T00:00:00Z", "to_date": "2013-06-07T00:00:00Z"}
    if asked:
        body["reprocess_behavior"] = asked
    seen = []
    api = api_answering([
        ("POST", "/api/v2/backfills", 503, LOCKED),
        ("GET", "/api/v2/backfills", 200, {"backfills": [{"id": 1, "completed_at": "2026-11-23T00:00:00Z"},
                                                         {"id": 2, "completed_at": "2026-11-23T00:05:00Z"}]}),
        ("GET", "/api/v2/dags/d/dagRuns", 200, NO_RUNS),
        ("POST", "/api/v2/backfills", 200, {"id": 3}),
    ], seen)
    assert create_backfill(api, body, wait_for=no_waiting) == {"id": 3}
    assert seen[0][2] == seen[-1][2] == body  # nothing cancelled; the same request again
    assert [method for method, _, _ in seen] == ["POST", "GET", "GET", "POST"]


def test_creating_again_waits_for_the_partial_backfills_runs_even_when_it_is_marked_complete():
    body = {"dag_id": "d", "from_date": "2013-06-01T00:00:00Z", "to_date": "2013-06-07T00:00:00Z"}
    complete = {"backfills": [{"id": 2, "completed_at": "2026-11-23T00:05:00Z"}]}
    api = api_answering([
        ("POST", "/api/v2/backfills", 503, LOCKED),
        ("GET", "/api/v2/backfills", 200, complete),
        ("GET", "/api/v2/dags/d/dagRuns", 200, {"dag_runs": [{"run_id": "backfill__1", "state": "running"}]}),
        ("GET", "/api/v2/backfills", 200, complete),
        ("GET", "/api/v2/dags/d/dagRuns", 200, NO_RUNS),
        ("POST", "/api/v2/backfills", 200, {"id": 3}),
    ], [])
    polls = []

    def patient(what, check, timeout, every):
        while not check():
            polls.append(what)
    assert create_backfill(api, body, wait_for=patient) == {"id": 3}
    assert polls == ["the partial backfill and its runs to finish"]


def test_a_partial_backfill_that_created_every_run_is_the_backfill():
    body = {"dag_id": "d", "from_date": "2013-06-01T00:00:00Z", "to_date": "2013-06-07T00:00:00Z"}
    finished = {"backfills": [{"id": 1, "completed_at": "2026-11-23T00:00:00Z"},
                              {"id": 2, "completed_at": "2026-11-23T00:05:00Z"}]}
    api = api_answering([
        ("POST", "/api/v2/backfills", 503, LOCKED),
        ("GET", "/api/v2/backfills", 200, finished),
        ("GET", "/api/v2/dags/d/dagRuns", 200, NO_RUNS),
        ("POST", "/api/v2/backfills", 422, {"detail": [{"msg": "No runs to create for dag d"}]}),
        ("GET", "/api/v2/backfills", 200, finished),
    ], [])
    assert create_backfill(api, body, wait_for=no_waiting) == finished["backfills"][1]


def test_other_refusals_and_a_lock_that_persists_fail():
    body = {"dag_id": "d", "from_date": "2013-06-01T00:00:00Z", "to_date": "2013-06-07T00:00:00Z"}
    running = {"detail": "There is already a running backfill"}
    api = api_answering([("POST", "/api/v2/backfills", 409, running)], [])
    with pytest.raises(AssertionError, match="There is already a running backfill"):
        create_backfill(api, body, wait_for=no_waiting)
    api = api_answering([("POST", "/api/v2/backfills", 503, LOCKED)], [])
    with pytest.raises(AssertionError, match="Database is locked"):
        create_backfill(api, body, wait_for=no_waiting, attempts=1)


def test_a_refused_reprocessing_backfill_continues_from_the_first_day_not_rerun():
    body = {"dag_id": "d", "from_date": "2013-06-01T00:00:00Z", "to_date": "2013-06-04T00:00:00Z",
            "reprocess_behavior": "completed"}
    partial = {"backfills": [{"id": 1, "completed_at": "2026-11-23T00:00:00Z",
                              "created_at": "2026-11-23T00:00:00Z"},
                             {"id": 2, "completed_at": "2026-11-23T00:09:00Z",
                              "created_at": "2026-11-23T00:05:00Z"}]}

    def run(day: int, queued: str) -> dict:
        return {"logical_date": f"2013-06-0{day}T00:00:00Z", "queued_at": queued}

    # The partial backfill (created 00:05) reran June 1st and 2nd; 3rd and 4th were queued by the first.
    runs = {"dag_runs": [run(1, "2026-11-23T00:05:01Z"), run(2, "2026-11-23T00:05:02Z"),
                         run(3, "2026-11-23T00:01:00Z"), run(4, "2026-11-23T00:02:00Z")]}
    seen = []
    api = api_answering([
        ("POST", "/api/v2/backfills", 503, LOCKED),
        ("GET", "/api/v2/backfills", 200, partial),
        ("GET", "/api/v2/dags/d/dagRuns", 200, NO_RUNS),
        ("GET", "/api/v2/backfills", 200, partial),
        ("GET", "/api/v2/dags/d/dagRuns", 200, runs),
        ("POST", "/api/v2/backfills", 200, {"id": 3}),
    ], seen)
    assert create_backfill(api, body, wait_for=no_waiting) == {"id": 3}
    assert seen[-1][2] == {**body, "from_date": "2013-06-03T00:00:00Z"}


def test_a_partial_reprocessing_backfill_that_reran_every_day_is_the_backfill():
    body = {"dag_id": "d", "from_date": "2013-06-01T00:00:00Z", "to_date": "2013-06-02T00:00:00Z",
            "reprocess_behavior": "completed"}
    partial = {"backfills": [{"id": 2, "completed_at": "2026-11-23T00:09:00Z",
                              "created_at": "2026-11-23T00:05:00Z"}]}
    runs = {"dag_runs": [{"logical_date": "2013-06-01T00:00:00Z", "queued_at": "2026-11-23T00:05:01Z"},
                         {"logical_date": "2013-06-02T00:00:00Z", "queued_at": "2026-11-23T00:05:02Z"}]}
    api = api_answering([
        ("POST", "/api/v2/backfills", 503, LOCKED),
        ("GET", "/api/v2/backfills", 200, partial),
        ("GET", "/api/v2/dags/d/dagRuns", 200, NO_RUNS),
        ("GET", "/api/v2/backfills", 200, partial),
        ("GET", "/api/v2/dags/d/dagRuns", 200, runs),
        ("GET", "/api/v2/backfills", 200, partial),
    ], [])
    assert create_backfill(api, body, wait_for=no_waiting) == partial["backfills"][0]
