"""Lesson 03 (SecretClient and Managed Identity): the solution is right, the lab's stubs are not attempted,
and for every exercise a plausible wrong answer is "incorrect" with a reason that points at the mistake.

Cells run in a plain dict namespace with an ``In`` list, as an IPython kernel would (see tests/test_checks.py).
The right answers are the solution notebook's own cells, so these tests and the notebook cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kvlab.checks import lesson_spec

import notebook_kernel
from notebook_kernel import (
    assert_stubs_not_attempted,
    cell_with,
    code_cells,
    exercise_cell,
    incorrect,
    running,
    variant,
)

ROOT = Path(__file__).resolve().parents[2]
NAME = "03-secretclient-and-managed-identity.ipynb"
VAULT = "kv-orders-dev"
AZURE_URL = "https://example.vault.azure.net/"


def cells(folder: str) -> list[str]:
    return code_cells(NAME, folder)


SOLUTION = cells("solutions")
PARAMETERS, SETUP, IDENTITY = SOLUTION[0], SOLUTION[1], SOLUTION[2]
EX1, EX2, EX3, EX4, EX5 = (exercise_cell(SOLUTION, n) for n in (1, 2, 3, 4, 5))


class Kernel(notebook_kernel.Kernel):
    def start(self, vault_url: str | None = None) -> None:
        self.run(PARAMETERS if vault_url is None else f"vault_url = {vault_url!r}")
        self.run(SETUP)
        self.run(IDENTITY)

    def close(self) -> None:
        super().close("func_client")


@pytest.fixture
def kernel(emulator):
    with running(kernel=Kernel()) as k:
        k.start()
        yield k


# -- the solution and the lab ----------------------------------------------------------------


def answer(source: str) -> str:
    """An exercise cell up to its END SOLUTION line: the answer without the lines that show it."""
    return source.split("# END SOLUTION")[0]


def test_the_solution_is_correct_and_prints_no_secret_value(kernel, emulator):
    results = []
    for number, source in enumerate((EX1, EX2, EX3, EX4, EX5), 1):  # in the notebook's order, each then its check
        if number in (2, 3):
            kernel.run(NIGHT if number == 2 else MISTAKE)  # the cell above the exercise
        kernel.run(source)
        results.append(kernel.check(f"ex{number}"))
    assert [r.status for r in results] == ["correct"] * 5, [r.message for r in results]
    live = kernel.ns["live"]
    assert live in ("id-func-orders-blue", "id-func-orders-green")
    assert results[0].passed[1] == f"the audit log shows `sql-db-password` read as {live} (1 SecretGet)"
    assert results[1].passed[2] == (f"the Function app read it without naming a version (as {live}), "
                                    "with no code change")
    assert results[3].passed[1:] == [
        "your `cache`: 5 more calls of get('adls-storage-key') reached the vault 0 times (audit log)",
        f"in this run the vault served `adls-storage-key` 1 time (as {live})",
    ]
    printed = kernel.output.getvalue()
    values = [v for name in ("sql-db-password", "resend-api-key", "adls-storage-key") for v in _values(emulator, name)]
    assert len(values) == 6  # three seeded, the night's version and its roll-back, resend-api-key stored again
    assert not any(value in printed for value in values)
    assert not any(value in source for value in values for source in kernel.ns["In"])


def _values(emulator, name: str) -> list[str]:
    from kvlab.emulator.state import State

    with State(emulator.state_dir) as state:
        stored = state.store.secret_state(VAULT, name)
        return [row.value for row in state.store.all_versions(VAULT, stored[0])]


def test_the_labs_stubs_are_not_attempted(kernel):
    assert len(lesson_spec("03").exercises) == 5
    assert_stubs_not_attempted(kernel, cells("labs"), 5)


def test_the_lesson_starts_from_its_seeded_vault_and_the_functions_grant(kernel, emulator):
    assert sorted(s for s in ("sql-db-password", "resend-api-key", "adls-storage-key")
                  if emulator.inspect_secret(VAULT, s)) == ["adls-storage-key", "resend-api-key", "sql-db-password"]
    roles = {(a["principalName"], a["roleDefinitionName"]) for a in emulator.role_assignments(scope=VAULT)}
    users = {who for who, role in roles if role == "Key Vault Secrets User"}
    assert roles - {(who, "Key Vault Secrets User") for who in users} == {("learner", "Key Vault Secrets Officer")}
    assert len(users) == 1 and users <= {"id-func-orders-blue", "id-func-orders-green"}  # one slot, drawn


def test_the_live_slot_is_drawn_anew_so_a_copied_identity_goes_stale():
    """Each set-up draws the slot that holds the role; the guided notebook's demo keeps id-func-orders."""
    from types import SimpleNamespace

    from kvlab.checks import lesson03

    granted = []
    lab = SimpleNamespace(assign_role=lambda role, who, scope: granted.append((role, who, scope)))
    for _ in range(40):  # both slots come up (a miss has odds 2 ** -39)
        lesson03._grant_the_function(SimpleNamespace(demo=False, lab=lab))
    assert {who for _, who, _ in granted} == set(lesson03.SLOTS)
    assert {(role, scope) for role, _, scope in granted} == {("Key Vault Secrets User", VAULT)}
    granted.clear()
    lesson03._grant_the_function(SimpleNamespace(demo=True, lab=lab))
    assert granted == [("Key Vault Secrets User", "id-func-orders", VAULT)]


def test_ex1_the_idle_slots_identity_is_refused_and_the_check_says_why(kernel, emulator):
    kernel.run(EX1)
    idle = next(s for s in ("id-func-orders-blue", "id-func-orders-green") if s != kernel.ns["live"])
    kernel.run(f"# Exercise 1 - the other slot\nfunc_client_id = lesson.lab.identity({idle!r})['clientId']\n"
               "func_client = SecretClient(lesson.vault_url(), DefaultAzureCredential(managed_identity_client_id=func_client_id))")
    kernel.ns["lesson"].audit_position = emulator.audit_position()
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError):
        kernel.run("db_password = func_client.get_secret('sql-db-password').value")
    assert incorrect(kernel, "ex1") == (
        f"{idle} was refused (403) reading `sql-db-password`: it holds no role on the vault. Find the identity "
        "that does (the vault's role assignments) and sign in as that one.")


# -- exercise 1: read as the Function app's identity ------------------------------------------------


def test_ex1_before_any_code_is_not_attempted(kernel):
    result = kernel.check("ex1")
    assert result.status == "not-attempted"
    assert result.message == "`func_client` does not exist yet: run your code for this exercise first."


def test_ex1_reading_as_the_learner_instead_of_the_functions_identity_is_incorrect(kernel):
    kernel.run(EX1.replace("DefaultAzureCredential(managed_identity_client_id=func_client_id)",
                           "DefaultAzureCredential()"))
    assert incorrect(kernel, "ex1") == (
        f"The vault saw `sql-db-password` read as learner, not as the Function app's identity {kernel.ns['live']}. "
        "Create func_client's credential with that identity's client id "
        "(DefaultAzureCredential(managed_identity_client_id=...))."
    )


def test_ex1_a_wrong_client_after_a_right_one_is_judged_as_it_is_now(kernel, emulator):
    """A learner walk found it: the right answer, then the learner's own credential in the same kernel, passed on
    the earlier run's reads. The check reads once through the func_client the namespace holds now."""
    kernel.run(EX1)
    assert kernel.check("ex1").status == "correct"
    kernel.run(EX1.replace("DefaultAzureCredential(managed_identity_client_id=func_client_id)",
                           "DefaultAzureCredential()"))
    assert incorrect(kernel, "ex1").startswith(
        f"`func_client` now reads `sql-db-password` as learner, not as the Function app's identity {kernel.ns['live']}: "
        "the reads as")
    kernel.run(EX1)  # and right again
    position = emulator.audit_position()
    assert kernel.check("ex1").status == "correct"
    # the check's own request reads no secret: exercise 2's check must not count it as the Function's read
    assert [r["operationName"] for r in emulator.audit(after=position)] == ["SecretList"]


def test_ex1_the_secret_object_instead_of_its_value_is_incorrect(kernel):
    kernel.run(answer(EX1).replace('.get_secret("sql-db-password").value', '.get_secret("sql-db-password")'))
    assert incorrect(kernel, "ex1") == (
        "`db_password` should be a str (the secret's value, `.value`), but it is a KeyVaultSecret."
    )


def test_ex1_a_value_read_as_the_learner_then_assigned_is_incorrect(kernel):
    """The Function's client exists, but the value came from the administrator's read."""
    kernel.run(EX1.replace('func_client.get_secret("sql-db-password")', 'client.get_secret("sql-db-password")'))
    assert incorrect(kernel, "ex1").startswith("The vault saw `sql-db-password` read as learner, not as")


def test_ex1_a_client_for_another_vault_is_incorrect(kernel, emulator):
    other = emulator.create_vault("kv-orders-other", exist_ok=True)["vaultUri"]
    kernel.run(EX1.replace("vault_url=lesson.vault_url()", f"vault_url={other!r}").replace(
        'db_password = func_client.get_secret("sql-db-password").value', 'db_password = "x"'))
    assert incorrect(kernel, "ex1") == (
        f"`func_client` talks to {other.rstrip('/')}, but this lesson's vault is {emulator.vault_url(VAULT)}. "
        "Pass vault_url=lesson.vault_url() when you create it."
    )


# -- exercise 2: rotation and pinning -------------------------------------------------------------


NIGHT = cell_with(SOLUTION, "02:00, the nightly rotation job")


@pytest.fixture
def night(kernel):
    """Exercise 1 done, then the night's bad rotation replayed, as in the lab."""
    kernel.run(EX1)
    kernel.run(NIGHT)
    return kernel


def test_ex2_before_the_night_is_replayed_the_check_says_so(kernel):
    kernel.run(EX1)
    kernel.run("# Exercise 2 - too early\nlatest = func_client.get_secret('sql-db-password')")
    assert incorrect(kernel, "ex2") == "Run the cell above the exercise first: it replays the night's bad rotation."


def test_ex2_a_roll_back_written_another_way_is_correct(night):
    night.run(
        "# Exercise 2 - my way: the tagged version is the bad one, the other the good one\n"
        "versions = sorted(client.list_properties_of_secret_versions('sql-db-password'), key=lambda p: p.tags is not None)\n"
        "good_version, bad_version = versions[0].version, versions[-1].version\n"
        "restored = client.set_secret('sql-db-password', client.get_secret('sql-db-password', good_version).value)\n"
        "client.update_secret_properties('sql-db-password', version=bad_version, enabled=False)\n"
        "latest = func_client.get_secret('sql-db-password')"
    )
    result = night.check("ex2")
    assert result.status == "correct", result.message


def test_ex2_doing_nothing_leaves_the_bad_version_served(night):
    night.run("# Exercise 2 - nothing\nlatest = func_client.get_secret('sql-db-password')")
    assert incorrect(night, "ex2").startswith("Unpinned consumers still get the bad version")


def test_ex2_only_disabling_the_bad_version_breaks_every_reader(night):
    """The accuracy point of the exercise: a disabled latest version answers 403; there is no fall-back."""
    from azure.core.exceptions import HttpResponseError

    night.run("# Exercise 2 - disable it\nbad = max(client.list_properties_of_secret_versions('sql-db-password'), "
              "key=lambda p: p.tags is not None)\n"
              "client.update_secret_properties('sql-db-password', bad.version, enabled=False)")
    with pytest.raises(HttpResponseError) as refused:
        night.run("latest = func_client.get_secret('sql-db-password')")
    assert refused.value.status_code == 403 and refused.value.error.innererror["code"] == "SecretDisabled"
    night.run("from azure.keyvault.secrets import KeyVaultSecret, SecretProperties\n"
              "latest = KeyVaultSecret(SecretProperties(), '')  # what the learner is left holding")
    assert incorrect(night, "ex2").startswith("The bad version is disabled, and it is still the latest")


def test_ex2_a_new_password_instead_of_the_last_good_one_is_incorrect(night):
    night.run(variant(answer(EX2), 'client.set_secret("sql-db-password", good_value, content_type="text/plain")',
                      'client.set_secret("sql-db-password", secrets.token_urlsafe(24), content_type="text/plain")'))
    assert incorrect(night, "ex2").startswith("The latest version of `sql-db-password` does not hold the last good value")


def test_ex2_the_bad_version_left_enabled_is_incorrect(night):
    night.run(variant(answer(EX2), 'client.update_secret_properties("sql-db-password", bad.version, enabled=False)',
                      "pass"))
    assert incorrect(night, "ex2").startswith("The bad version")
    assert "is still enabled" in night.check("ex2").message


def test_ex2_a_consumer_reading_by_version_is_incorrect(night):
    night.run(variant(answer(EX2), 'latest = func_client.get_secret("sql-db-password")',
                      'latest = func_client.get_secret("sql-db-password", client.get_secret("sql-db-password").properties.version)'))
    assert incorrect(night, "ex2").startswith("`latest` was read by naming a version.")


MISTAKE = cell_with(SOLUTION, "someone's mistake, last night")
ENSURE = answer(EX3).split("\n\n\nensure_secret(client")[0]  # the function alone
RESTORE = 'ensure_secret(client, "resend-api-key", secrets.token_urlsafe(24), content_type="text/plain")'


def test_ex3_an_ensure_written_another_way_is_correct(kernel):
    """By status and inner code on HttpResponseError, recovering with .result(): as right as the solution."""
    kernel.run(MISTAKE)
    kernel.run(
        "# Exercise 3 - my way\n"
        "from azure.core.exceptions import HttpResponseError\n"
        "def ensure_secret(client, name, value):\n"
        "    try:\n"
        "        return client.set_secret(name, value)\n"
        "    except HttpResponseError as e:\n"
        "        deleted = e.status_code == 409 and 'ObjectIsDeletedButRecoverable' in str(e.error.innererror)\n"
        "        if not deleted:\n"
        "            raise\n"
        "    client.begin_recover_deleted_secret(name).result()\n"
        "    return client.set_secret(name, value)\n"
        "ensure_secret(client, 'resend-api-key', secrets.token_urlsafe(24))"
    )
    result = kernel.check("ex3")
    assert result.status == "correct", result.message


def test_ex3_swallowing_every_error_is_incorrect(kernel):
    kernel.run(MISTAKE)
    kernel.run(variant(ENSURE, "except ResourceExistsError as error:", "except Exception as error:")
               .replace("            raise", "            return None") + "\n" + RESTORE)
    assert incorrect(kernel, "ex3") == (
        "For an identity without a role (403 ForbiddenByRbac), ensure_secret(...) returned as if it had worked: it "
        "swallowed the error. Handle only the soft-deleted name; every other failure must reach the caller.")


def test_ex3_set_secret_alone_fails_on_the_deleted_name(kernel):
    kernel.run("# Exercise 3 - naive\ndef ensure_secret(client, name, value):\n    return client.set_secret(name, value)")
    assert incorrect(kernel, "ex3") == (
        "ensure_secret(client, name, value) raised ResourceExistsError (409 ObjectIsDeletedButRecoverable) for a "
        "name held by a soft-deleted secret (409 ObjectIsDeletedButRecoverable).")


def test_ex3_purging_instead_of_recovering_loses_the_history(kernel):
    kernel.run(variant(ENSURE, "client.begin_recover_deleted_secret(name).wait()",
                       "client.purge_deleted_secret(name)"))
    assert incorrect(kernel, "ex3").startswith(
        "After a soft delete, ensure_secret stored the value but the secret's history is gone (a purge?)")


def test_ex3_recovering_without_storing_the_value_is_incorrect(kernel):
    kernel.run(variant(ENSURE, "    client.begin_recover_deleted_secret(name).wait()\n    return client.set_secret(name, value, **properties)",
                       "    return client.begin_recover_deleted_secret(name).result()"))
    assert incorrect(kernel, "ex3") == (
        "After a soft delete, ensure_secret returned but the secret does not hold the new value.")


def test_ex3_a_right_function_that_never_restored_the_secret_is_incorrect(kernel):
    kernel.run(MISTAKE)
    kernel.run(ENSURE)
    assert incorrect(kernel, "ex3").startswith("`resend-api-key` is still deleted: use your ensure_secret")


# -- exercise 4: the TTL cache ---------------------------------------------------------------------


GET = '''    def get(self, name):
        now = self.clock()
        entry = self._entries.get(name)
        if entry is not None and now - entry[1] < self.ttl_seconds:
            return entry[0]
        value = self.client.get_secret(name).value
        self._entries[name] = (value, now)
        return value
'''


def ex4_with_get(body: str) -> str:
    assert GET in EX4
    return EX4.replace(GET, body)


def test_ex4_a_cache_that_calls_the_vault_every_time_is_incorrect(kernel, emulator):
    kernel.run(EX1)
    kernel.run(ex4_with_get('''    def get(self, name):
        value = self.client.get_secret(name).value  # stored, but never used
        self._entries[name] = (value, self.clock())
        return value
'''))
    assert incorrect(kernel, "ex4") == (
        "6 calls of get('a') within the TTL read the vault 6 times. "
        "Keep each value with the time you read it and return it while the TTL lasts."
    )
    reads = [r for r in emulator.audit(vault=VAULT, after=kernel.ns["lesson"].audit_position)
             if r["operationName"] == "SecretGet" and r["secretName"] == "adls-storage-key"]
    assert len(reads) == 20  # what the check saw through the stand-in, the vault saw for real


def test_ex4_a_cache_that_never_expires_is_incorrect(kernel):
    kernel.run(EX1)
    kernel.run(EX4.replace("if entry is not None and now - entry[1] < self.ttl_seconds:", "if entry is not None:"))
    message = incorrect(kernel, "ex4")
    assert message.startswith("61 s after the first read (the TTL is 60 s), get('a') still answered from the cache.")


def test_ex4_a_cache_with_one_slot_for_every_name_is_incorrect(kernel):
    kernel.run(EX1)
    kernel.run(EX4.replace("self._entries.get(name)", "self._entries.get('the-secret')")
               .replace("self._entries[name] = (value, now)", "self._entries['the-secret'] = (value, now)"))
    assert incorrect(kernel, "ex4") == "get('b') after get('a') returned a's value: keep one entry per secret name."


def test_ex4_a_cache_of_secret_objects_is_incorrect(kernel):
    kernel.run(EX1)
    kernel.run(EX4.replace("self.client.get_secret(name).value", "self.client.get_secret(name)")
               .replace('print(f"20 reads of a {len(storage_key)}-character key")', ""))
    assert incorrect(kernel, "ex4") == (
        "cache.get(name) returned a KeyVaultSecret; it should return the secret's value, "
        "the str in client.get_secret(name).value."
    )


def test_ex4_a_cache_without_a_clock_argument_is_incorrect(kernel):
    kernel.run(EX1)
    kernel.run(EX4.replace("ttl_seconds=300, clock=time.monotonic):", "ttl_seconds=300):")
               .replace("self.clock = clock", "self.clock = time.monotonic"))
    message = incorrect(kernel, "ex4")
    assert message.startswith("SecretCache(client, ttl_seconds=60, clock=time.monotonic) should work: ")
    assert "clock" in message


def test_ex4_a_cache_that_never_read_the_vault_in_this_run_is_incorrect(kernel):
    kernel.run(EX1)
    kernel.run(EX4.split("for _ in range(20)")[0])
    assert incorrect(kernel, "ex4") == (
        "The audit log shows no read of `adls-storage-key` in this run: call cache.get('adls-storage-key') several times."
    )


# -- against a real vault: never a crash, "can't be checked here" where the audit log is needed -----------


def test_against_a_real_vault_the_checks_are_unavailable_and_never_crash(tmp_path):
    kernel = Kernel()
    kernel.run(f"import kvlab\nlesson = kvlab.start_lesson('03', vault_url={AZURE_URL!r}, state_dir={str(tmp_path)!r})\n"
               "check, hint = lesson.check, lesson.hint")
    kernel.run(IDENTITY)  # prints the az commands instead of asking the emulator
    assert kernel.ns["func_client_id"] is None
    assert "az role assignment list --scope <vault id> -o table" in kernel.output.getvalue()
    kernel.run(
        "# Exercise 1 - offline stand-ins for what the learner's code would hold\n"
        "from azure.identity import DefaultAzureCredential\n"
        "from azure.keyvault.secrets import KeyVaultSecret, SecretClient, SecretProperties\n"
        "func_client = SecretClient(vault_url=lesson.vault_url(), credential=DefaultAzureCredential())\n"
        "db_password = 'stand-in'\n"  # pragma: allowlist secret
        "# Exercise 2 - \n"
        "previous_version = '0' * 32\n"
        "latest = pinned = KeyVaultSecret(SecretProperties(vault_id=lesson.vault_url() + 'secrets/sql-db-password/' + '0' * 32), 'v')\n"
    )
    kernel.run(EX4.split("cache = SecretCache")[0] + "cache = SecretCache(func_client)")
    kernel.run(answer(EX5))
    kernel.run(ENSURE)
    results = {e: kernel.check(e) for e in ("ex1", "ex2", "ex3", "ex4", "ex5")}
    assert {e: r.status for e, r in results.items()} == dict.fromkeys(results, "unavailable")
    assert results["ex4"].message.startswith(
        "with a stand-in client and clock: one vault read per name within the TTL, a fresh read after it (passed).")
    assert re.search(r"look at (the vault's|its) logs", results["ex1"].message)
    kernel.ns["func_client"].close()


# -- exercise 5: diagnose(error), run against failures staged for real -----------------------------------


def test_ex5_a_diagnosis_written_another_way_is_correct(kernel):
    """By status and codes alone (no exception types), in one expression per case: as right as the solution."""
    kernel.run(
        "# Exercise 5 - my way\n"
        "def diagnose(error):\n"
        "    status = getattr(error, 'status_code', None)\n"
        "    detail = getattr(error, 'error', None)\n"
        "    inner = ((detail.innererror or {}).get('code') if detail is not None else None)\n"
        "    known = [(404, None, 'not-found'), (403, 'ForbiddenByRbac', 'no-access'),\n"
        "             (403, 'SecretDisabled', 'disabled'), (409, 'ObjectIsDeletedButRecoverable', 'deleted')]\n"
        "    key = (status, None if status == 404 else inner)\n"
        "    return next((answer for s, i, answer in known if (s, i) == key), 'other')"
    )
    result = kernel.check("ex5")
    assert result.status == "correct", result.message
    assert result.passed[0].startswith("diagnose(...) was run on five real failures staged against the vault")
    assert "an identity without a role (403 ForbiddenByRbac) -> 'no-access'" in result.passed


def test_ex5_swallowing_every_error_alike_is_incorrect(kernel):
    kernel.run("# Exercise 5 - hack\ndef diagnose(error):\n    return 'other'")
    assert re.match(r"For .*, diagnose\(\.\.\.\) returned 'other'; it should be '(not-found|no-access|disabled|deleted)'\.",
                    incorrect(kernel, "ex5"))


def test_ex5_every_403_taken_for_a_missing_role_is_incorrect(kernel):
    kernel.run(variant(answer(EX5), 'status_code == 403 and inner == "ForbiddenByRbac"', "status_code == 403"))
    message = incorrect(kernel, "ex5")
    assert message.startswith("For a disabled latest version (403 SecretDisabled), diagnose(...) returned")
    assert message.endswith("'no-access'; it should be 'disabled'. Tell errors apart by their type or by status_code "
                            "and error.code, and the inner code where two share a status.")


def test_ex5_a_diagnosis_that_crashes_on_a_real_error_is_incorrect(kernel):
    kernel.run("# Exercise 5 - fragile\ndef diagnose(error):\n    return {404: 'not-found'}[error.status_code]")
    assert re.match(r"diagnose\(\.\.\.\) raised KeyError for .* \((403|409|400) .*\); it should return '(no-access|disabled|deleted|other)'\.$",
                    incorrect(kernel, "ex5"))


def test_ex5_hard_coded_answers_in_order_are_incorrect(kernel):
    """The failures come twice each, in a new order every run: replaying the answers without looking fails."""
    kernel.run("# Exercise 5 - replay\nimport itertools\n"
               "_answers = itertools.cycle(['not-found', 'no-access', 'disabled', 'deleted', 'other'])\n"
               "def diagnose(error):\n    return next(_answers)")
    assert kernel.check("ex5").status == "incorrect"


def test_ex5_checked_twice_in_one_run_stages_the_same_failures(kernel):
    kernel.run(answer(EX5))
    assert kernel.check("ex5").status == "correct"
    assert kernel.check("ex5").status == "correct"


def test_ex1_the_guided_lessons_identity_is_not_the_labs_and_the_check_says_why(kernel):
    """Copied from the guided notebook, the read is refused; the check explains instead of "not attempted"."""
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError):
        kernel.run("# Exercise 1 - as in the guided lesson\n"
                   "func_client = SecretClient(lesson.vault_url(), DefaultAzureCredential("
                   "managed_identity_client_id=lesson.lab.identity('id-func-orders')['clientId']))\n"
                   "db_password = func_client.get_secret('sql-db-password').value")
    assert incorrect(kernel, "ex1").startswith("id-func-orders was refused (403) reading `sql-db-password`: it holds "
                                               "no role on the vault.")
