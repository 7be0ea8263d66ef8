"""Lesson 06 (operating secrets: the inventory, the alert, the incident, the rotation): the solution is correct, the
stubs are not attempted, and wrong answers are "incorrect" with a reason that points at the mistake.

The cells run in a plain dict namespace, as in an IPython kernel, read from the solution notebook.
"""

from __future__ import annotations

import json

from notebook_kernel import Kernel, assert_stubs_not_attempted, cell_with, code_cells, incorrect, variant

import pytest

NAME = "06-operating-secrets.ipynb"
SOLUTION = code_cells(NAME, "solutions")
PARAMS = cell_with(SOLUTION, 'vault_url = "emulator"')
SETUP = cell_with(SOLUTION, "start_lesson(")
TOOLS = cell_with(SOLUTION, "from kvlab.checks.lesson06 import")
EX1, EX2, EX3, EX4 = (cell_with(SOLUTION, f"BEGIN SOLUTION: Exercise {n} ") for n in (1, 2, 3, 4))


@pytest.fixture
def kernel(emulator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the factory folder the set-up writes beside the notebook
    k = Kernel()
    for cell in (PARAMS, SETUP, TOOLS):
        k.run(cell)
    yield k
    k.close("orders", "hook", "rotation_hook")


def test_the_solution_is_correct(kernel):
    for cell in (EX1, EX2, EX3, EX4):
        kernel.run(cell)
    for exercise in ("ex1", "ex2", "ex3", "ex4"):  # ex1-3 judged after ex4's 180 days too
        result = kernel.check(exercise)
        assert result.status == "correct", (exercise, result.message)


def test_the_labs_stubs_are_not_attempted(kernel):
    assert_stubs_not_attempted(kernel, code_cells(NAME, "labs"), 4)


def test_ex1_secrets_without_expiry_left_out(kernel):
    kernel.run(variant(EX1, "inventory.expires.isna() | ", ""))
    message = incorrect(kernel, "ex1")
    assert message.startswith("`at_risk` leaves out ") or message.startswith("`at_risk` names ")


def test_ex1_reading_values_to_find_the_dates(kernel):
    kernel.run("at_risk = [s.name for s in (client.get_secret(p.name) for p in client.list_properties_of_secrets())\n"
               "           if s.properties.expires_on is None or s.properties.expires_on <= now + timedelta(days=30)]")
    assert incorrect(kernel, "ex1").startswith("The audit log shows secret values read")


def test_each_set_up_draws_what_comes_due_next_month(kernel, emulator):
    upcoming = set()
    for _ in range(6):  # until two set-ups differ: the same pair six times running has odds 21**-5
        kernel.run(SETUP)
        kinds = json.loads(emulator.stage("lesson06.expiries"))
        assert {"none", "soon", "later", "expired"} <= set(kinds.values())  # every rule of the inventory matters
        pair = frozenset(n for n, kind in kinds.items() if kind == "next")
        assert len(pair) == 2
        upcoming.add(pair)
        if len(upcoming) > 1:
            break
    assert len(upcoming) > 1


def test_ex2_no_subscription_or_no_month_passed(kernel):
    kernel.run("# Exercise 2 - not yet\nalerted = []")
    assert incorrect(kernel, "ex2").startswith("No event subscription on kv-ops-prod delivers SecretNearExpiry")
    kernel.run(EX2.replace("lesson.lab.advance_clock(days=30)", "pass"))
    assert incorrect(kernel, "ex2").startswith("The clock has not moved a month past the set-up")


def test_ex2_subscribing_after_the_clock_moved_hears_nothing(kernel):
    kernel.run("lesson.lab.advance_clock(days=30)\n" + EX2.replace("lesson.lab.advance_clock(days=30)", "pass"))
    kernel.run("alerted = ['crm-api-token', 'ml-registry-token']")  # names guessed from the properties
    assert incorrect(kernel, "ex2").startswith("`alerted` should hold the secrets whose SecretNearExpiry reached")


def test_ex3_an_answer_copied_from_another_run(kernel, emulator):
    kernel.run(EX3)
    truth = json.loads(emulator.stage("lesson06.incident"))
    other = next(i for i in ("id-etl-nightly", "id-report-api", "id-ml-training") if i != truth["identity"])
    kernel.run(f"compromised = {other!r}")
    assert "its reads match its job" in incorrect(kernel, "ex3")


def test_ex3_only_part_of_what_it_read_or_the_wrong_time(kernel):
    kernel.run(EX3)
    kernel.run("exposed = set(sorted(exposed)[:1])")
    assert "`exposed` should name every secret" in incorrect(kernel, "ex3")
    kernel.run(EX3)
    kernel.run("first_seen = first_seen - pd.Timedelta(days=1)")
    assert incorrect(kernel, "ex3").startswith("`first_seen` is not the time of the first read")


# -- exercise 4: two 90-day rotation periods with every consumer ----------------------------------------------


def test_ex4_rotating_the_login_in_use_breaks_the_cached_consumer(kernel):
    kernel.run(variant(EX4, "standby = next(login for login in LOGINS if login != active)", "standby = active"))
    message = incorrect(kernel, "ex4")
    assert "orders-api could not connect" in message and "password authentication failed" in message


def test_ex4_a_new_version_without_expiry_stops_the_rotation(kernel):
    kernel.run(variant(EX4, ", expires_on=event.event_time + timedelta(days=90)", ""))
    assert "has no expiry" in incorrect(kernel, "ex4")


def test_ex4_an_expiry_from_the_computers_clock_is_named(kernel):
    kernel.run(variant(EX4, "expires_on=event.event_time + timedelta(days=90)",
                       "expires_on=datetime.now(timezone.utc) + timedelta(days=90)"))
    message = incorrect(kernel, "ex4")
    assert "event.event_time" in message  # the run stopped (each version came due at once) or 90 days is off


def test_ex4_consumers_run_without_a_subscription_or_not_at_all(kernel):
    kernel.run("def rotate(event):\n    pass")
    assert incorrect(kernel, "ex4").startswith("No event subscription on kv-orders-prod")
    kernel.run(variant(EX4, "report = Consumers(lesson).run(days=180)", "report = None"))
    assert incorrect(kernel, "ex4").startswith("The consumers have not run")
    kernel.run("report = Consumers(lesson).run(days=30)")
    assert incorrect(kernel, "ex4").startswith("The consumers ran for 30 days")


def test_ex4_a_rotation_that_raises_is_named_by_its_failed_deliveries(kernel):
    kernel.run(variant(EX4, "db.set_password(standby, password)", "db.set_password(standby + '_typo', password)"))
    message = incorrect(kernel, "ex4")
    assert "deliveries to http://127.0.0.1:" in message and "your rotate(event) raised" in message
    assert "there is no login" in str(kernel.ns["rotation_hook"].errors[0])
