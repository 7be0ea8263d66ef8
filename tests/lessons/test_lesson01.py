"""Lesson 01 (the problem of leaked secrets): the solution is right, the lab's stubs are not attempted, and for
every exercise plausible wrong answers are "incorrect" with a reason that points at the mistake.

Cells run in a plain dict namespace with an ``In`` list, as an IPython kernel would (see tests/test_checks.py).
The right answers are the solution notebook's own cells, so these tests and the notebook cannot drift apart.
"""

from __future__ import annotations

import pytest

from kvlab import leaks
from kvlab.checks import Context, lesson01

import notebook_kernel
from notebook_kernel import assert_stubs_not_attempted, code_cells, exercise_cell, incorrect, running

NAME = "01-leaked-secrets.ipynb"
AZURE_URL = "https://example.vault.azure.net/"


def cells(folder: str) -> list[str]:
    return code_cells(NAME, folder)


SOLUTION = cells("solutions")
PARAMETERS, SETUP = SOLUTION[0], SOLUTION[1]
EX1, EX2, EX3 = (exercise_cell(SOLUTION, n) for n in (1, 2, 3))
PRACTICE = lesson01.practice()
LEAK = PRACTICE.leak
COMMITS = dict(PRACTICE.commits)


def commit(subject: str) -> str:
    (sha,) = [sha for sha, s in PRACTICE.commits if s == subject]
    return sha


class Kernel(notebook_kernel.Kernel):
    def start(self, vault_url: str | None = None) -> None:
        self.run(PARAMETERS if vault_url is None else f"vault_url = {vault_url!r}")
        self.run(SETUP)

    def close(self) -> None:
        super().close()
        if isinstance(self.ns.get("practice"), leaks.ThrowawayRepo):
            self.ns["practice"].cleanup()


@pytest.fixture
def kernel(emulator):
    with running(kernel=Kernel()) as k:
        k.start()
        yield k


# -- the solution, the lab, the set-up ----------------------------------------------------------------------


def test_the_solution_is_correct(kernel, emulator):
    for cell in (EX1, EX2, EX3):
        kernel.run(cell)
    one, two, three = (kernel.check(e) for e in ("ex1", "ex2", "ex3"))
    assert one.status == "correct", one.message
    assert one.passed[0] == (f"`leak_commit` is {LEAK.commit[:12]} ('Trigger the reporting job after the load'): "
                             "it added a secret to notebooks/load_sales.ipynb (cell 4)")
    assert two.status == "correct", two.message
    assert two.passed[0].startswith("cells [2, 4, 6] of incoming/ingest.ipynb hold possible secrets")
    assert three.status == "correct", three.message
    assert three.passed == [
        "the leaked signature appears nowhere in your code",
        "`orders_url` is the same blob with the current value of `landing-sas-token` (not shown)",
        "kvlab's scanner finds no known secret format in the code you ran",
        "the audit log shows your read (SecretGet as learner)",
    ]
    stored = emulator.inspect_secret(lesson01.VAULT, lesson01.SAS_SECRET)["value"]
    assert stored not in kernel.output.getvalue()
    assert all(stored not in result.plain() for result in (one, two, three))


def test_the_labs_stubs_are_not_attempted(kernel):
    assert_stubs_not_attempted(kernel, cells("labs"), 3)


def test_the_set_up_seeds_a_generated_password_the_learner_can_read_but_not_change(kernel, emulator):
    from azure.core.exceptions import HttpResponseError
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    stored = emulator.inspect_secret(lesson01.VAULT, lesson01.SECRET)
    assert stored["contentType"] == "text/plain"
    assert len(stored["value"]) == 32 and stored["value"] != leaks.FAKE_SQL_PASSWORD
    assert [r["identity"] for r in emulator.audit(vault=lesson01.VAULT) if r["operationName"] == "SecretSet"][-1] == \
        lesson01.ROTATOR
    with DefaultAzureCredential() as credential, SecretClient(kernel.ns["lesson"].vault_url(), credential) as client:
        assert client.get_secret(lesson01.SECRET).value == stored["value"]
        with pytest.raises(HttpResponseError) as refused:
            client.set_secret(lesson01.SECRET, "x")
        assert refused.value.status_code == 403
    kernel.start()  # a new run: a new password
    assert emulator.inspect_secret(lesson01.VAULT, lesson01.SECRET)["value"] != stored["value"]


# -- exercise 1 ----------------------------------------------------------------------------------------------


def test_ex1_before_any_answer_is_not_attempted(kernel):
    result = kernel.check("ex1")
    assert result.status == "not-attempted"
    assert result.message == "`leak_commit` does not exist yet: run your code for this exercise first."


def test_ex1_the_commit_that_removed_the_secret_is_incorrect(kernel):
    removal = commit("Read the Databricks token from the secret scope")
    kernel.run(f"leak_commit = {removal[:7]!r}\nleaked_type = {LEAK.type!r}")
    message = incorrect(kernel, "ex1")
    assert message.startswith(f"Commit {removal[:7]} ('Read the Databricks token from the secret scope') is where "
                              "the secret was *removed*")
    assert "Find the one that added it" in message


def test_ex1_the_latest_commit_is_incorrect(kernel):
    kernel.run(f"leak_commit = {PRACTICE.commits[-1][0]!r}\nleaked_type = {LEAK.type!r}")
    assert "is the latest commit, and the latest commit holds no secret" in incorrect(kernel, "ex1")


def test_ex1_a_commit_before_the_leak_and_one_after_it_are_incorrect(kernel):
    kernel.run(f"leak_commit = {commit('Add the load_sales notebook')!r}\nleaked_type = {LEAK.type!r}")
    assert "comes before the secret entered the history" in incorrect(kernel, "ex1")
    kernel.run(f"leak_commit = {commit('Add the pipeline configuration')!r}")
    assert "did not add a secret (it came later, and only carried the secret along)" in incorrect(kernel, "ex1")


def test_ex1_an_id_that_is_too_short_or_not_in_the_repository_is_incorrect(kernel):
    kernel.run(f"leak_commit = {LEAK.commit[:4]!r}\nleaked_type = {LEAK.type!r}")
    assert incorrect(kernel, "ex1").startswith("`leak_commit` should be a commit id: at least its first 7")
    kernel.run("leak_commit = 'HEAD~3'")
    assert incorrect(kernel, "ex1").startswith("`leak_commit` should be a commit id")
    kernel.run("leak_commit = '0123456789abcdef'")
    message = incorrect(kernel, "ex1")
    assert message.startswith("No commit of the practice repository starts with '0123456789abcdef'.")
    assert "run the set-up cell again" in message


def test_ex1_the_id_from_a_rewritten_history_is_incorrect(kernel):
    """After filter-repo every id changes: the check says why the learner's id is unknown."""
    kernel.run("rules = practice.path.parent / 'rules.txt'\n"
               "rules.write_text(leaks.FAKE_DATABRICKS_TOKEN + '==><REMOVED>\\n')\n"
               "practice.git('filter-repo', '--force', '--replace-text', str(rules))\n"
               "leak_commit = practice.git('log', '--format=%H', '--skip=3', '-1')\n"
               f"leaked_type = {LEAK.type!r}")
    assert kernel.ns["leak_commit"] != LEAK.commit
    assert "if you rewrote the practice repository's history, run the set-up cell again" in incorrect(kernel, "ex1")


def test_ex1_a_type_from_the_uncommitted_notebook_or_a_made_up_type_is_incorrect(kernel):
    kernel.run(f"leak_commit = {LEAK.commit.upper()[:10]!r}\nleaked_type = 'Connection string password'")
    message = incorrect(kernel, "ex1")
    assert message.startswith("`leaked_type` is 'Connection string password': that kind of secret is in "
                              "`incoming/ingest.ipynb`, which was never committed.")
    kernel.run("leaked_type = 'API key'")
    assert incorrect(kernel, "ex1").startswith("`leaked_type` is 'API key', but the secret that commit added is not")
    kernel.run("leaked_type = 'databricks personal access token '")  # case and spaces do not matter
    assert kernel.check("ex1").status == "correct"


def test_ex1_a_finding_object_instead_of_its_commit_is_incorrect(kernel):
    kernel.run("leak_commit = leaks.scan_history(practice)[0]\nleaked_type = 'x'")
    assert incorrect(kernel, "ex1") == "`leak_commit` should be a str (a commit id), but it is a Finding."


# -- exercise 2 ----------------------------------------------------------------------------------------------


def test_ex2_json_line_numbers_are_incorrect(kernel):
    kernel.run("leaky_cells = [f.line for f in leaks.detect_secrets_only('incoming/ingest.ipynb', root=practice)]")
    message = incorrect(kernel, "ex2")
    assert "are line numbers of the notebook's JSON" in message
    assert "leaks.scan('incoming/ingest.ipynb', root=practice)" in message


def test_ex2_counting_cells_from_0_is_incorrect(kernel):
    kernel.run("leaky_cells = [1, 3, 5]")
    assert incorrect(kernel, "ex2") == (
        "Cells are numbered from 1, as the scanner reports them (cell 1 is the notebook's first cell).")


def test_ex2_only_what_detect_secrets_finds_alone_is_incorrect(kernel):
    kernel.run("leaky_cells = [6]")
    message = incorrect(kernel, "ex2")
    assert message.startswith("You listed 1 of the 3 cells that hold a possible secret.")
    assert "detect-secrets by itself misses several Azure formats" in message


def test_ex2_a_clean_cell_is_incorrect(kernel):
    kernel.run("leaky_cells = [2, 3, 4, 6]")
    assert incorrect(kernel, "ex2").startswith(
        "Cell [3] holds no secret the scanner reports (the notebook has cells 1 to 7; a "
        "`dbutils.secrets.get(...)` call is a reference")


def test_ex2_wrong_kinds_of_values_are_incorrect(kernel):
    kernel.run("leaky_cells = '2, 4, 6'")
    assert incorrect(kernel, "ex2") == "`leaky_cells` should be a list of cell numbers, but it is a str."
    kernel.run("leaky_cells = ['2', '4', '6']")
    assert incorrect(kernel, "ex2").startswith("`leaky_cells` should hold cell numbers (int)")
    kernel.run("leaky_cells = (6, 2, 4)")  # any order, any collection
    assert kernel.check("ex2").status == "correct"


# -- exercise 3 ----------------------------------------------------------------------------------------------


BLOB = "https://stsalesdev.blob.core.windows.net/landing/orders.csv"
LEAKED_CELL = (f'orders_url = ("{BLOB}"\n'
               f'              "?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&sig={leaks.FAKE_SAS_SIGNATURE}")')
READ = ("from azure.identity import DefaultAzureCredential\n"
        "from azure.keyvault.secrets import SecretClient\n"
        "client = SecretClient(vault_url=lesson.vault_url(), credential=DefaultAzureCredential())\n"
        "sas_token = client.get_secret('landing-sas-token').value\n")


def stored_token(emulator) -> str:
    return emulator.inspect_secret(lesson01.VAULT, lesson01.SAS_SECRET)["value"]


def test_ex3_written_another_way_is_correct(kernel):
    """urllib.parse instead of an f-string, the secret's name in a variable: as right as the solution."""
    kernel.run("# Exercise 3 - my way\nfrom urllib.parse import urlunsplit\n"
               "import azure.keyvault.secrets as kv\nfrom azure.identity import DefaultAzureCredential as Cred\n"
               "name = 'landing-sas-token'\n"
               "token = kv.SecretClient(lesson.vault_url(), Cred()).get_secret(name).value\n"
               "orders_url = urlunsplit(('https', 'stsalesdev.blob.core.windows.net', '/landing/orders.csv', token, ''))")
    assert kernel.check("ex3").status == "correct"


def test_ex3_the_leaked_cell_as_it_was_is_incorrect(kernel):
    kernel.run(f"# Exercise 3 - fix it\n{LEAKED_CELL}")
    assert incorrect(kernel, "ex3").startswith("The leaked signature is still in your code.")


def test_ex3_the_leaked_signature_left_in_a_comment_is_incorrect(kernel):
    kernel.run(EX3.replace("orders_url = f", f"# old: sig={leaks.FAKE_SAS_SIGNATURE}\norders_url = f"))
    assert incorrect(kernel, "ex3").startswith("The leaked signature is still in your code.")


def test_ex3_the_guided_lessons_connection_string_fix_does_not_answer_it(kernel):
    """Copying the guided notebook's cell gives a conn_str, not the blob's URL: the exercise is a new case."""
    kernel.run(READ.replace("landing-sas-token", "sql-db-password").replace("sas_token", "password")
               + 'conn_str = f"Server=tcp:sql-sales-dev.database.windows.net,1433;Password={password};"')
    assert kernel.check("ex3").status == "not-attempted"


def test_ex3_a_url_without_a_token_is_incorrect(kernel):
    kernel.run(READ + f"orders_url = {BLOB!r}")
    assert incorrect(kernel, "ex3").startswith("`orders_url` has no SAS token after the `?`")


def test_ex3_the_leaked_token_assembled_in_pieces_is_incorrect(kernel):
    half = len(leaks.FAKE_SAS_SIGNATURE) // 2
    kernel.run(f"sig = {leaks.FAKE_SAS_SIGNATURE[:half]!r} + {leaks.FAKE_SAS_SIGNATURE[half:]!r}\n"
               f"orders_url = {BLOB!r} + '?sv=2022-11-02&sp=r&sig=' + sig")
    assert incorrect(kernel, "ex3").startswith("`orders_url` still carries the leaked SAS. It was revoked")


def test_ex3_a_token_that_is_not_the_vaults_is_incorrect(kernel):
    kernel.run("from kvlab.checks.lesson01 import new_sas_token\n"
               f"orders_url = {BLOB!r} + '?' + new_sas_token()")
    assert incorrect(kernel, "ex3").startswith(
        "The SAS token in `orders_url` is not the current value of `landing-sas-token`")


def test_ex3_a_token_encoded_twice_is_incorrect(kernel):
    kernel.run(READ + "from urllib.parse import quote\n" f"orders_url = {BLOB!r} + '?' + quote(sas_token)")
    assert incorrect(kernel, "ex3").startswith("The SAS token in `orders_url` is not the current value")


def test_ex3_the_vaults_value_pasted_into_code_is_incorrect(kernel, emulator):
    kernel.run(f"orders_url = {BLOB!r} + '?' + {stored_token(emulator)!r}")
    assert incorrect(kernel, "ex3") == (
        "The vault's value appears in your code: read it from the vault at run time, never paste it.")


def test_ex3_another_blob_is_incorrect(kernel):
    kernel.run(EX3.replace("/landing/orders.csv", "/landing/customers.csv"))
    assert incorrect(kernel, "ex3").startswith("Keep the blob's address as it was")


def test_ex3_another_secret_typed_into_a_cell_is_incorrect(kernel):
    kernel.run(EX3)
    kernel.run(f'DATABRICKS_TOKEN = "{leaks.FAKE_DATABRICKS_TOKEN}"')
    message = incorrect(kernel, "ex3")
    assert message.startswith("kvlab's scanner still finds a Databricks personal access token (dapi…) in your code")
    assert leaks.FAKE_DATABRICKS_TOKEN not in message


def test_ex3_a_value_not_read_in_this_run_is_incorrect(kernel, emulator):
    kernel.run(EX3)
    kernel.ns["lesson"].audit_position = emulator.audit_position()  # as if read before this run
    assert incorrect(kernel, "ex3") == (
        "`landing-sas-token` was not read from the vault in this run: the audit log shows no SecretGet.")


def test_ex3_a_stale_answer_after_the_set_up_runs_again_is_incorrect(kernel):
    kernel.run(EX3)
    assert kernel.check("ex3").status == "correct"
    kernel.start()  # a new run issues a new token: the old URL is stale, so a copied answer fails
    assert incorrect(kernel, "ex3").startswith("The SAS token in `orders_url` is not the current value")


# -- against a real vault: Git and scanning still work, the audit log is not ours to read ------------------------


def test_on_a_real_vault_ex1_and_ex2_are_checked_and_ex3_is_unavailable(tmp_path, monkeypatch):
    kernel = Kernel()
    kernel.run(f"vault_url = {AZURE_URL!r}")
    kernel.run(SETUP.replace('vault_url=vault_url)', f'vault_url=vault_url, state_dir={str(tmp_path)!r})'))
    assert kernel.ns["lesson"].lab is None
    kernel.run(EX1)
    kernel.run(EX2)
    assert kernel.check("ex1").status == "correct"
    assert kernel.check("ex2").status == "correct"
    # the real vault's value, without reaching Azure: what the learner's get_secret would have returned
    monkeypatch.setattr(Context, "secret", lambda self, name, vault=None: {"value": "sv=2022-11-02&sig=real%3D"})
    kernel.run("# Exercise 3 - a stand-in for the real read\n"
               f"orders_url = {BLOB!r} + '?' + ''.join(reversed('D3%laer=gis&20-11-2202=vs'))")
    result = kernel.check("ex3")
    assert result.status == "unavailable", result.message
    assert result.message.startswith("Everything else checks out.")
    kernel.close()
