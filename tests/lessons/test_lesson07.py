"""Lesson 07 (the capstone: migrate a leaky project): the solution is correct, the stubs are not attempted, and
plausible wrong answers are "incorrect" with a reason that points at the mistake.

The cells run in a plain dict namespace, as in an IPython kernel, read from the solution notebook, in a temporary
working directory (the set-up writes `shop-pipeline/` beside the notebook). The database, the partner API, the
vault, the factory's identity and the Databricks workspace are real (the emulator's, `kvlab db`'s and
`kvlab.partner`), and exercise 6's check runs the project's notebook in a kernel of its own.
"""

from __future__ import annotations

import json

import pytest

from notebook_kernel import assert_stubs_not_attempted, cell_with, code_cells, incorrect, running, variant

NAME = "07-capstone-migration.ipynb"
SOLUTION = code_cells(NAME, "solutions")
PARAMS = cell_with(SOLUTION, 'vault_url = "emulator"')
SETUP = cell_with(SOLUTION, "start_lesson(")
TOOLS = cell_with(SOLUTION, "project = open_project()")
EX1, EX2, EX3, EX4, EX5, EX6 = (cell_with(SOLUTION, f"BEGIN SOLUTION: Exercise {n} ") for n in range(1, 7))


@pytest.fixture
def kernel(emulator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the project folder the set-up writes beside the notebook
    with running(PARAMS, SETUP, TOOLS, closing=("vault", "workspace")) as k:
        yield k


def planted(emulator) -> dict:
    return json.loads(emulator.stage("lesson07.planted"))


def test_the_solution_is_correct(kernel):
    for cell in (EX1, EX2, EX3, EX4, EX5, EX6):
        kernel.run(cell)
    assert kernel.ns["report"].error.isna().all(), kernel.ns["report"].to_dict("records")
    for exercise in ("ex1", "ex2", "ex3", "ex4", "ex5", "ex6"):  # each judged again once the migration is done
        result = kernel.check(exercise)
        assert result.status == "correct", (exercise, result.message)


def test_the_labs_stubs_are_not_attempted(kernel):
    assert_stubs_not_attempted(kernel, code_cells(NAME, "labs"), 6)


def test_the_project_as_shipped_works_with_its_inline_credentials_and_scans_dirty(kernel, emulator):
    from kvlab import leaks
    from kvlab.partner import PartnerError, fetch_orders

    staged = planted(emulator)
    assert len(fetch_orders(staged["api_key"], lab=emulator)) == 3
    with pytest.raises(PartnerError, match="401"):
        fetch_orders("pk_fake_" + "0" * 40, lab=emulator)
    files = {f.file for f in leaks.scan("shop-pipeline")}
    assert len(files) == 5
    report = kernel.ns["run_pipeline"](kernel.ns["lesson"])  # before the migration: each part with its own copy
    ingest = report.set_index("part").loc["ingest notebook"]
    assert ingest.result.startswith("3 orders ingested"), report.to_dict("records")


def test_each_set_up_draws_new_credentials(kernel, emulator):
    first = planted(emulator)
    kernel.run(SETUP)
    second = planted(emulator)
    assert first["password"] != second["password"] and first["api_key"] != second["api_key"]
    assert first["leak_commit"] != second["leak_commit"]  # the .env's content differs, so its commit does


# -- exercise 1 ----------------------------------------------------------------------------------------------------


def test_ex1_the_working_tree_only(kernel):
    kernel.run(variant(EX1, ' + leaks.scan_history("shop-pipeline")', ""))
    assert incorrect(kernel, "ex1").startswith("`found` has nothing from the project's history")


def test_ex1_the_history_only_or_a_neighbours_commit(kernel):
    kernel.run(variant(EX1, 'leaks.scan("shop-pipeline") + ', ""))
    assert incorrect(kernel, "ex1").startswith("`found` has nothing in config/settings.ini (nor in 4 more file(s))")
    kernel.run(EX1)
    kernel.run("found = [f for f in found if not f.commit] + [{'file': '.env', 'commit': '0123456789abcdef'}]")
    assert incorrect(kernel, "ex1").startswith("`found` has nothing from the project's history")


# -- exercise 2 ----------------------------------------------------------------------------------------------------


def test_ex2_a_value_typed_into_the_notebook(kernel, emulator):
    key = planted(emulator)["api_key"]
    kernel.run(EX2)
    kernel.run(f"vault.set_secret('partner-api-key', {key!r}, content_type='text/plain', tags={{'env': 'prod', "
               "'owner': 'shop-data'}, expires_on=expires)")
    assert incorrect(kernel, "ex2").startswith("The value of the partner API key is typed into your code")


def test_ex2_no_tags_or_the_wrong_value(kernel):
    kernel.run(variant(EX2, 'tags={"env": "prod", "owner": "shop-data"}', "tags=None"))
    assert "has no env tag" in incorrect(kernel, "ex2")
    kernel.run(EX2)
    kernel.run("vault.set_secret('partner-api-key', secrets.token_urlsafe(24), content_type='text/plain', "
               "tags={'env': 'prod', 'owner': 'shop-data'}, expires_on=expires)")
    assert incorrect(kernel, "ex2").startswith("`partner-api-key` does not hold the API key the project uses")


def test_ex2_the_storage_key_stored_too(kernel):
    kernel.run(EX2)
    kernel.run("adls = json.loads((project / 'adf/linkedService/LS_Adls.json').read_text())\n"
               "vault.set_secret('adls-account-key', adls['properties']['typeProperties']['accountKey']['value'])")
    assert incorrect(kernel, "ex2").startswith("kv-shop-prod holds the storage account key, which nothing should need")


# -- exercise 3 ----------------------------------------------------------------------------------------------------


def test_ex3_a_whole_vault_role(kernel):
    kernel.run(EX2)
    kernel.run(variant(EX3, 'f"kv-shop-prod/secrets/{name}"', '"kv-shop-prod"'))
    assert "on the whole vault kv-shop-prod: scope it to the secrets it reads" in incorrect(kernel, "ex3")


def test_ex3_a_secret_one_part_does_not_use(kernel):
    kernel.run(EX2)
    kernel.run(variant(EX3, '"adf-shop-prod": ("shop-db-password",)',
                       '"adf-shop-prod": ("shop-db-password", "partner-api-key")'))
    assert incorrect(kernel, "ex3") == ("adf-shop-prod can read partner-api-key, which its part of the pipeline does "
                                        "not use.")


def test_ex3_no_scope_or_the_job_user_managing_it(kernel):
    kernel.run(EX2)
    roles_only = EX3.split("shop_vault = ")[0]
    kernel.run(roles_only)
    assert incorrect(kernel, "ex3").startswith("The Databricks workspace needs a scope `shop` backed by kv-shop-prod")
    kernel.run(variant(EX3.replace(roles_only, ""), "AclPermission.READ", "AclPermission.MANAGE"))
    assert incorrect(kernel, "ex3").startswith("etl@kvlab.local, who runs the job, holds MANAGE on `shop`")


# -- exercise 4 ----------------------------------------------------------------------------------------------------


def test_ex4_nothing_rewritten_yet(kernel):
    kernel.run("rewritten = leaks.scan('shop-pipeline')")
    assert incorrect(kernel, "ex4") == ("adf/linkedService/LS_Adls.json still holds the data lake's account key: move "
                                        "it out of the file, do not hide it from the scanner.")


def test_ex4_the_storage_key_referenced_instead_of_the_factorys_identity(kernel):
    for cell in (EX2, EX3):
        kernel.run(cell)
    kernel.run(variant(EX4, 'lambda tp: tp.pop("accountKey", None)',
                       'lambda tp: tp.update(accountKey=reference("shop-db-password"))'))
    assert incorrect(kernel, "ex4").startswith("LS_Adls still authenticates with a credential")


def test_ex4_the_notebook_signing_in_with_kvlab_instead_of_azure(kernel):
    for cell in (EX2, EX3):
        kernel.run(cell)
    kernel.run(variant(EX4, "from kvlab.partner import fetch_orders\n",
                       "import kvlab\nfrom kvlab.partner import fetch_orders\n\nkvlab.connect()\n"))
    assert incorrect(kernel, "ex4").startswith("pipeline/ingest.ipynb should be code that runs unchanged on Azure")


def test_ex4_the_factory_without_its_role(kernel):
    kernel.run(EX2)
    kernel.run(EX4)
    message = incorrect(kernel, "ex4")
    assert message.startswith("LS_ShopDb's password does not resolve as the factory") and "adf-shop-prod" in message


# -- exercise 5 ----------------------------------------------------------------------------------------------------


def test_ex5_a_new_version_only_or_the_database_only(kernel):
    kernel.run(EX2)
    kernel.run(variant(EX5, 'db.set_password("shop_app", new_password)\n', ""))
    assert incorrect(kernel, "ex5").startswith("The database still accepts the password from .env in the history")
    kernel.run(EX2)  # back to the project's password in the vault, then the database alone
    kernel.run("db.set_password('shop_app', secrets.token_urlsafe(24))\nrotated = None")
    assert incorrect(kernel, "ex5").startswith("The database refuses the password in `shop-db-password`")


def test_ex5_a_chosen_password_or_no_expiry(kernel):
    kernel.run(EX2)
    kernel.run(variant(EX5, "new_password = secrets.token_urlsafe(24)", "new_password = 'Shop' + 'Summer2027!'"))
    assert "looks chosen, not generated" in incorrect(kernel, "ex5")
    kernel.run(variant(EX5, ",\n                           expires_on=datetime.now(timezone.utc) + timedelta(days=90)", ""))
    assert incorrect(kernel, "ex5").startswith("The new version of `shop-db-password` has no expiry")


# -- exercise 6 ----------------------------------------------------------------------------------------------------


def test_ex6_uncommitted_or_committed_before_the_rewrite(kernel):
    for cell in (EX1, EX2, EX3):
        kernel.run(cell)
    kernel.run("report = None")
    assert incorrect(kernel, "ex6").startswith("The project has uncommitted changes")
    kernel.run("project.commit_all('WIP: the colleague\\'s work as it was')")
    for cell in (EX4, EX5, EX6):
        kernel.run(cell)
    message = incorrect(kernel, "ex6")
    assert message.startswith("Commit ") and " holds the data lake's account key: rewrite that commit" in message


def test_ex6_a_part_that_fails_is_named_with_its_error(kernel):
    for cell in (EX1, EX2, EX3, EX4, EX5):
        kernel.run(cell)
    kernel.run("lesson.lab.delete_role_assignment(role='Key Vault Secrets User', assignee='id-shop-ingest', "
               "scope='kv-shop-prod/secrets/partner-api-key')")
    kernel.run(EX6)
    message = incorrect(kernel, "ex6")
    assert message == "id-shop-ingest cannot read partner-api-key, which its part of the pipeline needs."
    kernel.run("lesson.lab.assign_role('Key Vault Secrets User', 'id-shop-ingest', "
               "'kv-shop-prod/secrets/partner-api-key')\n"
               "scoring.write_text(scoring.read_text().replace('key=\"partner-api-key\"', 'key=\"partner-api-token\"'))\n"
               "project.commit_all('Rename the key')")
    message = incorrect(kernel, "ex6")
    assert message.startswith("The databricks job failed as etl@kvlab.local: PermissionDenied: ") \
        and "Config:" not in message


def test_ex6_another_identity_that_read_the_vault_is_named(kernel, emulator):
    for cell in (EX1, EX2, EX3, EX4, EX5, EX6):
        kernel.run(cell)
    emulator.create_identity("id-shop-debug")
    emulator.assign_role("Key Vault Secrets User", "id-shop-debug", "kv-shop-prod")
    kernel.run("from azure.identity import ManagedIdentityCredential\n"
               "with ManagedIdentityCredential(client_id=lesson.lab.identity('id-shop-debug')['clientId']) as c, "
               "SecretClient(lesson.vault_url('kv-shop-prod'), c) as debug:\n"
               "    _ = debug.get_secret('shop-db-password')")
    emulator.delete_role_assignment(role="Key Vault Secrets User", assignee="id-shop-debug", scope="kv-shop-prod")
    assert incorrect(kernel, "ex6").startswith("The audit log shows id-shop-debug reading kv-shop-prod during this run")


# -- credentials hidden from the scanner, from the learner walk -------------------------------------------------------

HIDE_KEY = ("key = json.loads(lesson.lab.stage('lesson07.planted'))['api_key']\n"
            "{file}.write_text({file}.read_text() + f'\\n# partner_api_key = \"{{key}}\"  # pragma: allowlist secret\\n')")


def test_ex4_a_key_left_behind_a_pragma_or_a_call_in_a_comment(kernel):
    for cell in (EX2, EX3, EX4):
        kernel.run(cell)
    kernel.run(HIDE_KEY.format(file="scoring"))
    assert incorrect(kernel, "ex4") == ("databricks/score_orders.py still holds the partner API key: move it out of the "
                                        "file, do not hide it from the scanner.")
    kernel.run("scoring.write_text(scoring.read_text().replace('partner_api_key = dbutils', 'partner_api_key = None  # dbutils')"
               ".replace('# partner_api_key = \"' + key + '\"', ''))")
    assert incorrect(kernel, "ex4").startswith("databricks/score_orders.py should read the API key with dbutils")


def test_ex5_a_new_version_without_its_tags(kernel):
    kernel.run(EX2)
    kernel.run(variant(EX5, 'tags={"env": "prod", "owner": "shop-data"},', ""))
    assert "`shop-db-password` in kv-shop-prod has no env tag" in incorrect(kernel, "ex5")


def test_ex6_a_credential_committed_behind_a_pragma(kernel):
    for cell in (EX1, EX2, EX3, EX4, EX5):
        kernel.run(cell)
    kernel.run("notes = project / 'NOTES.md'\nnotes.write_text('')\n" + HIDE_KEY.format(file="notes")
               + "\nproject.commit_all('Notes')\nnotes.unlink()")
    kernel.run(EX6)
    message = incorrect(kernel, "ex6")
    assert message.startswith("Commit ") and " holds the partner API key: rewrite that commit" in message
