"""The local Airflow's PostgreSQL server (:mod:`devtools.postgres`): a real server from Debian's package."""

from __future__ import annotations

import stat

import psutil
import psycopg2
import pytest

from devtools.postgres import DATABASE, ROLE, LocalPostgres, PostgresError, find_bin_dir


def query(server: LocalPostgres, sql: str, *parameters) -> list[tuple]:
    with psycopg2.connect(host="127.0.0.1", port=server.port, user=ROLE, password=server.password(),
                          dbname=DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return cursor.fetchall() if cursor.description else []


def test_a_cluster_is_created_once_and_keeps_its_data_and_password_across_restarts(tmp_path):
    server = LocalPostgres(tmp_path / "postgres")
    server.start()
    try:
        first_port, password = server.port, server.password()
        assert stat.S_IMODE((tmp_path / "postgres" / "password").stat().st_mode) == 0o600
        assert len(password) >= 32
        query(server, "CREATE TABLE kept (day date)")
        query(server, "INSERT INTO kept VALUES ('2013-06-01')")
        assert server.url == f"postgresql+psycopg2://airflow:{password}@127.0.0.1:{first_port}/airflow"
        pids = server.pids()
        assert server.process.pid in pids and len(pids) > 1  # the server and its background processes
        # TCP on 127.0.0.1 only, and no Unix socket
        listening = {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in pids}
        assert listening == {("127.0.0.1", first_port)}
        assert [c for c in psutil.net_connections("unix") if c.pid in pids and c.laddr] == []
        # a wrong password is refused (scram-sha-256, not trust)
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(host="127.0.0.1", port=first_port, user=ROLE, password=password[::-1],
                             dbname=DATABASE)
    finally:
        server.stop()
    assert server.pids() == set() and not any(psutil.pid_exists(p) for p in pids)

    again = LocalPostgres(tmp_path / "postgres")
    assert again.initialise() is False
    again.start()
    try:
        assert again.password() == password
        assert [str(day) for (day,) in query(again, "SELECT day FROM kept")] == ["2013-06-01"]
    finally:
        again.stop()


def test_a_folder_that_is_not_a_cluster_is_refused_untouched(tmp_path):
    data = tmp_path / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "notes.txt").write_text("mine")
    with pytest.raises(PostgresError, match=r"data is not empty but holds no PostgreSQL cluster"):
        LocalPostgres(tmp_path / "postgres").start()
    assert [p.name for p in data.iterdir()] == ["notes.txt"]


def test_missing_binaries_say_what_to_install(tmp_path):
    with pytest.raises(PostgresError, match=r"apt-get install postgresql\), or set POSTGRES_BIN_DIR"):
        find_bin_dir({"POSTGRES_BIN_DIR": str(tmp_path)})
    assert (find_bin_dir({}) / "initdb").is_file()


def test_a_server_that_cannot_start_names_the_reason_from_its_log(tmp_path):
    first = LocalPostgres(tmp_path / "one")
    first.start()
    try:
        # the same port twice: the second server's log says why it exited
        second = LocalPostgres(tmp_path / "two", port=first.port)
        with pytest.raises(PostgresError, match=r"PostgreSQL exited with code 1 on start(.|\n)*"
                                                r"could not bind IPv4 address"):
            second.start()
    finally:
        first.stop()
