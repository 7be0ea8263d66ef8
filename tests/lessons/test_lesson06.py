"""Lesson 06 (operating secrets: the inventory, the alert, the incident, the rotation, the environments, the review):
the stubs are not attempted, and wrong answers are "incorrect" with a reason that points at the mistake. (The
solution, whose 180-day run is the longest of the course, runs once, with papermill, in
tests/notebooks/test_other_answers.py: every check correct, ex2 and ex3 judged again after the run.)

The cells run in a plain dict namespace, as in an IPython kernel, read from the solution notebook.
"""

from __future__ import annotations

import json
import re

import pytest

from kvlab.checks.lesson06 import RUNAWAY

from notebook_kernel import assert_stubs_not_attempted, cell_with, code_cells, incorrect, running, variant

NAME = "06-operating-secrets.ipynb"
SOLUTION = code_cells(NAME, "solutions")
PARAMS = cell_with(SOLUTION, 'vault_url = "emulator"')
SETUP = cell_with(SOLUTION, "start_lesson(")
TOOLS = cell_with(SOLUTION, "from kvlab.checks.lesson06 import")
EX1, EX2, EX3, EX4, EX5, EX6 = (cell_with(SOLUTION, f"BEGIN SOLUTION: Exercise {n} ") for n in range(1, 7))


@pytest.fixture
def kernel(emulator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the factory folder the set-up writes beside the notebook
    with running(PARAMS, SETUP, TOOLS, closing=("orders", "hook", "rotation_hook")) as k:
        yield k


def test_the_labs_stubs_are_not_attempted(kernel):
    assert_stubs_not_attempted(kernel, code_cells(NAME, "labs"), 6)


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
#
# The check names a mistake the run showed before it asks for the whole 180 days, so a mistake made at the first
# rotation is named after a shorter run too. These wrong answers run 80 days: the set-up's version expires 70-100
# days out and its SecretNearExpiry comes 30 days before (day 40-70), and the API's weekly refresh follows within
# 7 days. (The solution and an own-way answer run the full 180 in tests/notebooks/test_other_answers.py.)

FIRST_ROTATION_SEEN = "report = Consumers(lesson).run(days=80)"


def short_run(cell: str) -> str:
    return variant(cell, "report = Consumers(lesson).run(days=180)", FIRST_ROTATION_SEEN)


def test_ex4_rotating_the_login_in_use_breaks_the_cached_consumer_and_the_corrected_cell_run_again_passes(kernel):
    kernel.run(short_run(variant(EX4, "standby = next(login for login in LOGINS if login != active)",
                                 "standby = active")))
    message = incorrect(kernel, "ex4")
    assert "orders-api could not connect" in message and "password authentication failed" in message
    # as a learner goes on: the cell corrected and run again, without a new set-up. Its subscription (the same
    # name) now delivers to the new webhook (it once said "there is already an event subscription named ...",
    # and the check repeated the old run's verdict), and the rotation goes on from where the vault is.
    kernel.run(EX4)
    result = kernel.check("ex4")
    assert result.status == "correct", result.message


AFRESH = "Run the set-up cell again (kvlab.start_lesson) for a fresh secret, then this cell."


def test_ex4_a_new_version_without_expiry_stops_the_rotation(kernel):
    kernel.run(short_run(variant(EX4, ", expires_on=event.event_time + timedelta(days=90)", "")))
    assert "has no expiry" in incorrect(kernel, "ex4")
    # the corrected cell run again: the version in the vault has no expiry, so no alert can start a rotation. The
    # run says so at once (it once ran 180 quiet days, and the check then counted no new version)
    kernel.run(EX4)
    message = incorrect(kernel, "ex4")
    assert message.startswith("The consumers' run did not start: the current version of orders-db-connection has "
                              "no expiry") and message.endswith(AFRESH), message
    assert kernel.ns["report"].to_dict("list") == {"connections": [0, 0, 0], "failed": [0, 0, 0], "logins": [[], [], []]}


def test_ex4_an_expiry_from_the_computers_clock_is_named(kernel):
    kernel.run(short_run(variant(EX4, "expires_on=event.event_time + timedelta(days=90)",
                                 "expires_on=datetime.now(timezone.utc) + timedelta(days=90)")))
    message = incorrect(kernel, "ex4")
    # Each version expires on the same real date, which the vault's clock passes by day 70: the rotation runs
    # away (each new version is due at once), and the run stops it as soon as it has (once, 41 versions later)
    ran_away = re.search(r"your rotation set (\d+) versions in one day", message)
    assert ran_away and RUNAWAY < int(ran_away[1]) <= RUNAWAY + 5, message
    assert "event.event_time" in message
    # the last versions expire on that real date, in the vault's past: their alerts went out to nobody
    kernel.run(EX4)
    message = incorrect(kernel, "ex4")
    assert re.match(r"The consumers' run did not start: the current version of orders-db-connection came near its "
                    r"expiry on \d{4}-\d\d-\d\d \(the vault's clock\), before this run", message), message
    assert message.endswith(AFRESH)


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


# -- exercise 5: one load_settings() for dev and prod -----------------------------------------------------------

SWALLOWING = variant(EX5, """        return {name: vault.get_secret(name).value for name in JOBS["id-report-api"]}""",
                     """        try:
            return {name: vault.get_secret(name).value for name in JOBS["id-report-api"]}
        except HttpResponseError:
            return {}""")


def test_ex5_a_vault_named_in_the_code(kernel):
    kernel.run(EX5)
    kernel.run(variant(EX5, 'os.environ["KEY_VAULT_URL"]', 'lesson.vault_url("kv-ops-dev")').split("\n\n\nfor")[0])
    assert incorrect(kernel, "ex5").startswith("load_settings names 'kv-ops-dev' in its code")


def test_ex5_a_vault_url_kept_outside_the_function_reads_the_wrong_environment(kernel):
    kernel.run(EX5)
    kernel.run("DEV_URL = lesson.vault_url('kv-ops-' + 'dev')\n" +
               variant(EX5, 'os.environ["KEY_VAULT_URL"]', "DEV_URL").split("\n\n\nfor")[0])
    message = incorrect(kernel, "ex5")
    assert message.startswith("As the prod deployment, load_settings() raised HttpResponseError") \
        or message.startswith("As the prod deployment, load_settings() returned a value"), message


def test_ex5_a_credential_made_before_the_host_sets_its_identity(kernel):
    kernel.run(EX5)
    kernel.run("shared = DefaultAzureCredential()\n" +
               variant(EX5, "with DefaultAzureCredential() as credential, SecretClient(os.environ[\"KEY_VAULT_URL\"], "
                            "credential) as vault:", "with SecretClient(os.environ[\"KEY_VAULT_URL\"], shared) as vault:"
                       ).split("\n\n\nfor")[0])
    assert "read as learner, not the host's identity id-report-api" in incorrect(kernel, "ex5")


def test_ex5_a_swallowed_refusal(kernel):
    kernel.run(EX5)  # `refusal` from the right answer; then load_settings learns to hide it
    kernel.run(SWALLOWING.split("\n\n\nfor")[0])
    assert "returned instead of raising: a swallowed 403" in incorrect(kernel, "ex5")


def test_ex5_a_refusal_that_is_not_the_vaults(kernel):
    kernel.run(EX5)
    kernel.run("refusal = HttpResponseError('Forbidden')")
    assert incorrect(kernel, "ex5").startswith("`refusal` is not the vault's 403 to id-report-api-dev in kv-ops-prod")
    kernel.run("refusal = 'ForbiddenByRbac'")
    assert incorrect(kernel, "ex5").startswith("`refusal` should be the HttpResponseError")


def test_ex5_a_dev_identity_given_a_role_in_production_is_named(kernel, emulator):
    kernel.run(EX5)
    emulator.assign_role("Key Vault Secrets User", "id-report-api-dev", "kv-ops-prod")
    assert incorrect(kernel, "ex5").startswith("id-report-api-dev read ")


# -- exercise 6: the least-privilege review ------------------------------------------------------------------


def test_ex6_each_set_up_stages_every_kind_and_a_copied_answer_fails(kernel, emulator):
    from kvlab.checks.lesson06 import FINDINGS

    kernel.run(EX6)
    first = json.loads(emulator.stage("lesson06.review"))
    assert {*FINDINGS} == set(first.values()) and len(first) in (4, 5)
    kernel.run(SETUP)  # a new run: the neighbour's findings are for assignments this run does not have
    assert incorrect(kernel, "ex6").startswith(f"`findings` names {len(first)} assignment ids that this run's vaults "
                                               "do not hold")


def test_ex6_a_rule_left_out(kernel):
    kernel.run(variant(EX6, """    if secret not in job:
        return "not needed"
""", ""))
    assert incorrect(kernel, "ex6") == ("`findings` leaves out 1 assignment that grant more than a job needs "
                                        "(kinds: not needed).")


def test_ex6_assignments_the_job_needs_are_flagged(kernel):
    kernel.run(variant(EX6, "if secret not in job:", "if secret:"))
    assert ", which its job needs: the right role, scope and environment" in incorrect(kernel, "ex6")


def test_ex6_the_wrong_kind(kernel):
    kernel.run(variant(EX6, 'return "scope too wide"', 'return "role too strong"'))
    assert "'role too strong': compare its role, its scope and its environment" in incorrect(kernel, "ex6")


def test_ex6_malformed_findings(kernel):
    kernel.run("findings = 'id-ml-training'")
    assert incorrect(kernel, "ex6").startswith("`findings` should be a DataFrame")
    kernel.run("findings = [{'id': a['id'], 'finding': 'too much'} for a in review_scope(lesson)][:1]")
    assert incorrect(kernel, "ex6").startswith("'too much' is not a finding")
