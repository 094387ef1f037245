"""The DAG triggered from the real Airflow 3 web UI, in headless Chromium driven by Selenium.

Airflow starts as ``make airflow`` starts it (:mod:`testing.airflow_harness`). In the browser the
test logs in through the SimpleAuthManager's form, opens the DAG's page and its Trigger form, whose
fields the UI renders from the DAG's ``Param`` schemas. The form refuses invalid run parameters and
no run is created; with valid ones, quick for this machine, and the logical date 2013-07-01 (the run
owns 2013-06-30), the run is watched in the UI until it shows success, and the REST API confirms its
conf (the values entered, merged with the DAG's defaults), its type and its state. Airflow is then
stopped with SIGINT and nothing of it is left.

Screenshots of each step are kept in ``build/test-artifacts/ui/`` (``failure.png`` when it fails).
"""

from __future__ import annotations

import time
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import unquote

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from flight_delays.layout import DataLayout
from flight_delays.report import RunReport
from flight_delays.settings import PROJECT_ROOT
from testing.airflow_harness import DAG_ID, Launcher, log_in, stop_with_sigint, unpause_parsed_dag

if TYPE_CHECKING:
    from pathlib import Path

    from selenium.webdriver.remote.webelement import WebElement

pytestmark = pytest.mark.e2e

ARTIFACTS = PROJECT_ROOT / "build" / "test-artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1600,1200", "--lang=en-US",
)
#: What the test changes in the Trigger form: a quick run on two cores (the REST e2e test's conf)
#: on half the training days' flights.
CHANGED = {"window_days": 7, "history_days": 3, "validation_days": 2, "test_days": 2, "n_estimators": 20,
           "sample_fraction": 0.5}
#: A manual run at logical date T owns the last complete interval before T: 2013-06-30.
LOGICAL_DATE = "2013-07-01T00:00:00Z"
#: Its message, shown in the form, when the API refuses a sample_fraction of 0 (exclusiveMinimum 0).
SAMPLE_FRACTION_REFUSED = ("Invalid input for param sample_fraction: "
                           "0 is less than or equal to the minimum of 0")
RUN_TIMEOUT = 480
UI_TIMEOUT = 30

TRIGGER_BUTTON = (By.CSS_SELECTOR, "[data-testid='trigger-dag-button']")
TRIGGER_SUBMIT = (By.CSS_SELECTOR, "[data-testid='trigger-dag-submit']")
ERROR_ALERT = (By.CSS_SELECTOR, "[role='dialog'] [data-testid='error-alert']")
LOGICAL_DATE_PICKER = (By.CSS_SELECTOR, "[role='dialog'] [data-testid='datetime-input']")
PICKER_DATE = (By.CSS_SELECTOR, "input[placeholder='YYYY/MM/DD']")
PICKER_TIME = (By.CSS_SELECTOR, "input[placeholder='HH:mm']")
RUN_STATE = (By.CSS_SELECTOR, "[data-testid='header-card'] [data-testid='state-badge']")
RUN_LOGICAL_DATE = (By.XPATH, "//*[@data-testid='header-card']//*[@data-testid='stat'][h2='Logical Date']"
                              "//time[@data-testid='time-display']")


def chromium(tmp_path: Path) -> webdriver.Chrome:
    """Debian's headless Chromium and chromedriver, named so that Selenium Manager downloads nothing."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    assert driver.save_screenshot(str(ARTIFACTS / name)), name


def param_field(driver: webdriver.Chrome, name: str) -> WebElement:
    """The Trigger form's input of a DAG param (the UI names each ``element_<param>``)."""
    field = driver.find_element(By.NAME, f"element_{name}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
    return field


def type_into(driver: webdriver.Chrome, name: str, text: str) -> WebElement:
    """Replace a param's value as a user does: select all, type, leave the field (Tab)."""
    field = param_field(driver, name)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text, Keys.TAB)
    return field


def shows_value(field: WebElement, expected: str) -> str:
    """The field's value once it reads ``expected`` (or after 5 s), for an exact assertion."""
    try:
        WebDriverWait(field.parent, 5).until(lambda _: field.get_attribute("value") == expected)
    except TimeoutException:  # the caller's assertion says what it shows instead
        pass
    return field.get_attribute("value")


def test_trigger_form_refuses_bad_params_and_a_triggered_run_succeeds(tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    airflow = Launcher(tmp_path)
    airflow.start()
    driver = None
    try:
        with httpx.Client(base_url=airflow.url, timeout=30) as api:
            password = log_in(airflow, api)
            unpause_parsed_dag(airflow, api)
            driver = chromium(tmp_path)
            _trigger_and_watch(airflow, api, driver, password, tmp_path)
        driver.quit()
        driver = None
        stop_with_sigint(airflow)
    except BaseException:
        if driver is not None:
            try:
                driver.save_screenshot(str(ARTIFACTS / "failure.png"))
            except Exception as exc:  # the browser may be what failed
                print(f"no failure screenshot: {exc!r}")
        print(airflow.diagnostics())
        airflow.kill_everything()
        raise
    finally:
        if driver is not None:
            driver.quit()


def _trigger_and_watch(airflow: Launcher, api: httpx.Client, driver: webdriver.Chrome, password: str,
                       tmp_path: Path) -> None:
    wait = WebDriverWait(driver, UI_TIMEOUT)
    _log_in_through_the_form(driver, wait, airflow.url, password)

    driver.get(f"{airflow.url}/dags/{DAG_ID}")
    wait.until(ec.element_to_be_clickable(TRIGGER_BUTTON))
    screenshot(driver, "02-dag-page.png")

    driver.find_element(*TRIGGER_BUTTON).click()
    wait.until(ec.visibility_of_element_located((By.NAME, "element_window_days")))
    assert DAG_ID in driver.find_element(By.CSS_SELECTOR, "[role='dialog'] h2").text
    screenshot(driver, "03-trigger-form.png")

    _invalid_params_are_refused(api, driver, wait)
    run_id = _trigger_a_valid_run(driver, wait, airflow.url)

    # What Airflow stored: the form sends every param, the defaults with the values entered.
    runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()
    assert (runs["total_entries"], [r["dag_run_id"] for r in runs["dag_runs"]]) == (1, [run_id])
    defaults = {name: spec["value"]
                for name, spec in api.get(f"/api/v2/dags/{DAG_ID}/details").json()["params"].items()}
    run = runs["dag_runs"][0]
    assert {name: run["conf"][name] for name in CHANGED} == CHANGED
    assert run["conf"] == defaults | CHANGED
    assert (run["run_type"], run["triggered_by"], run["triggering_user_name"]) == ("manual", "ui", "admin")
    assert (run["logical_date"], run["data_interval_start"], run["data_interval_end"]) == (
        LOGICAL_DATE, "2013-06-30T00:00:00Z", LOGICAL_DATE)

    # The run's page refreshes itself: its state badge goes from Queued/Running to Success.
    triggered = time.monotonic()

    def run_ended(drv: webdriver.Chrome) -> str | bool:
        if airflow.process.poll() is not None:
            pytest.fail(f"the launcher exited with {airflow.process.returncode} during the run")
        airflow.record_tree()
        state = drv.find_element(*RUN_STATE).text
        return state if state in ("Success", "Failed") else False

    shown = WebDriverWait(driver, RUN_TIMEOUT, poll_frequency=2).until(run_ended)
    print(f"the UI showed {shown} {time.monotonic() - triggered:.0f} s after the trigger")
    finished = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()
    assert (shown, finished["state"], finished["conf"]) == ("Success", "success", defaults | CHANGED)

    # After a reload, from fresh data: the run's page shows success for logical date 2013-07-01.
    driver.refresh()
    wait.until(ec.text_to_be_present_in_element(RUN_STATE, "Success"))
    assert driver.find_element(*RUN_STATE).text == "Success"
    assert driver.find_element(*RUN_LOGICAL_DATE).get_attribute("datetime") == LOGICAL_DATE
    screenshot(driver, "07-run-success.png")

    # The run owned 2013-06-30 and used the conf: 7 window days end there, 3 history days before them.
    report = RunReport.read(DataLayout(tmp_path / "data"), date(2013, 6, 30)).as_dict()
    assert (report["day"], report["days_ingested"]) == ("2013-06-30", 10)


def _log_in_through_the_form(driver: webdriver.Chrome, wait: WebDriverWait, url: str, password: str) -> None:
    driver.get(url)
    wait.until(ec.url_contains("/auth/login"))
    wait.until(ec.visibility_of_element_located((By.NAME, "username"))).send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(password)
    screenshot(driver, "01-login.png")
    sign_in = (By.XPATH, "//form//button[@type='submit'][normalize-space()='Sign in']")
    wait.until(ec.element_to_be_clickable(sign_in)).click()
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='nav-dags-link']")))
    assert "/auth/login" not in driver.current_url


def _invalid_params_are_refused(api: httpx.Client, driver: webdriver.Chrome, wait: WebDriverWait) -> None:
    # The defaults are a valid request: Trigger is enabled before anything is typed (the form counts a
    # non-nullable param as required and an empty string as missing: promotion_reason is nullable).
    assert driver.find_element(*TRIGGER_SUBMIT).is_enabled()

    # Below its minimum, the training window is not taken: leaving the field puts back the bound, 7.
    window = type_into(driver, "window_days", "3")
    assert (shows_value(window, "7"), window.get_attribute("aria-valuemin")) == ("7", "7")

    # The form's number field has no exclusive minimum: 0 stays, and the API refuses the request; the
    # form shows why and stays open, and no run exists.
    assert shows_value(type_into(driver, "sample_fraction", "0"), "0") == "0"
    _submit(driver, wait)
    alert = wait.until(ec.visibility_of_element_located(ERROR_ALERT))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", alert)
    title, message = alert.text.split("\n", 1)
    assert (title, message.split("\n")[0]) == ("400 Bad Request", SAMPLE_FRACTION_REFUSED)
    assert "Failed validating 'exclusiveMinimum' in schema" in message
    runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()
    assert (runs["total_entries"], runs["dag_runs"]) == (0, [])
    screenshot(driver, "04-invalid-refused.png")


def _submit(driver: webdriver.Chrome, wait: WebDriverWait) -> None:
    submit = driver.find_element(*TRIGGER_SUBMIT)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", submit)
    wait.until(ec.element_to_be_clickable(TRIGGER_SUBMIT)).click()


def _trigger_a_valid_run(driver: webdriver.Chrome, wait: WebDriverWait, url: str) -> str:
    """Set the logical date and the quick params, trigger; return the run id of the page it opens."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});",
                          driver.find_element(*LOGICAL_DATE_PICKER))
    wait.until(ec.element_to_be_clickable(LOGICAL_DATE_PICKER)).click()
    day = wait.until(ec.visibility_of_element_located(PICKER_DATE))
    day.send_keys(Keys.CONTROL, "a")
    day.send_keys("2013/07/01")
    hour = driver.find_element(*PICKER_TIME)
    hour.send_keys(Keys.CONTROL, "a")
    hour.send_keys("00:00", Keys.ESCAPE)  # Escape closes the picker, not the form
    wait.until(ec.invisibility_of_element_located(PICKER_TIME))
    assert driver.find_element(*LOGICAL_DATE_PICKER).text == "Jul 01, 2013 00:00"

    for name, value in CHANGED.items():
        field = type_into(driver, name, str(value))
        assert shows_value(field, str(value)) == str(value), name
    screenshot(driver, "05-valid-params.png")

    _submit(driver, wait)
    run_page = f"{url}/dags/{DAG_ID}/runs/"
    wait.until(ec.url_contains(run_page))
    wait.until(ec.visibility_of_element_located(RUN_STATE))
    screenshot(driver, "06-run-triggered.png")
    return unquote(driver.current_url.removeprefix(run_page).split("/")[0])
