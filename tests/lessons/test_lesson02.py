"""Lesson 02 (Creating a vault): the solution is correct, the stubs are not attempted, and every
plausible wrong answer is "incorrect" with a reason that points at the mistake.

The cells run in a plain dict namespace with an ``In`` list, as in an IPython
kernel. The set-up, helper and answer cells are read from the solution
notebook, so these tests judge the code a learner actually sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from notebook_kernel import assert_stubs_not_attempted, cell_with, code_cells
from kvlab.checks import lesson_spec, run_check
from kvlab.lesson import Lesson

ROOT = Path(__file__).resolve().parents[2]
NAME = "02-creating-a-vault.ipynb"
AZURE_URL = "https://example.vault.azure.net/"


def _cells(folder: str) -> list[str]:
    return code_cells(NAME, folder)


_cell = cell_with
SOLUTION = _cells("solutions")
PARAMS = _cell(SOLUTION, 'vault_url = "emulator"')
SETUP = _cell(SOLUTION, "start_lesson(")
HELPERS = _cell(SOLUTION, "def grant(")
EX1, EX2, EX3 = (_cell(SOLUTION, f"BEGIN SOLUTION: Exercise {n} ") for n in (1, 2, 3))


from notebook_kernel import Kernel, variant  # noqa: E402


@pytest.fixture
def kernel(emulator):
    k = Kernel()
    k.run(PARAMS)
    k.run(SETUP)
    k.run(HELPERS)
    yield k
    k.close()


def incorrect(kernel: Kernel, exercise: str) -> str:
    result = kernel.check(exercise)
    assert result.status == "incorrect", (result.status, result.message)
    assert "could not finish" not in result.message
    return result.message


# -- the right answers and the lab as shipped ------------------------------------------------


def test_the_solution_is_correct_and_says_what_it_verified(kernel):
    kernel.run(EX1)
    kernel.run(EX2)
    kernel.run(EX3)
    one, two, three = kernel.check("ex1"), kernel.check("ex2"), kernel.check("ex3")
    assert one.status == "correct", one.message
    assert one.passed[0] == "you hold Key Vault Secrets Officer on kv-sales-dev"
    assert "the audit log shows you stored all three in this run" in one.passed
    assert two.status == "correct", two.message
    assert "`id-func-sales` holds Key Vault Secrets User on kv-sales-dev/secrets/resend-api-key" in two.passed
    assert "as `id-auditor`: lists the secrets, but reading a value is refused (403)" in two.passed
    assert three.status == "correct", three.message
    assert "as `id-func-sales`: reads resend-api-key in kv-sales-dev, refused (403) in kv-sales-prod" in three.passed


def test_the_labs_stubs_are_not_attempted(kernel):
    assert_stubs_not_attempted(kernel, _cells("labs"), 3)


def test_a_new_vault_refuses_even_its_creator(kernel):
    """The lesson's first stumble is the real 403 ForbiddenByRbac, through the SDK."""
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as raised:
        kernel.run("client.set_secret('sql-db-password', 'x')")
    assert raised.value.status_code == 403
    assert raised.value.error.innererror["code"] == "ForbiddenByRbac"
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'" in raised.value.message


def test_running_the_set_up_cell_again_starts_over(kernel, emulator):
    kernel.run(EX1)
    kernel.run(EX2)
    assert kernel.check("ex2").status == "correct"
    kernel.run(SETUP)
    assert emulator.role_assignments("id-auditor") == []
    assert emulator.inspect_secret("kv-sales-dev", "sql-db-password") is None
    assert incorrect(kernel, "ex1").startswith("You hold no role on kv-sales-dev yet")


# -- exercise 1: your own role, the three dev secrets ---------------------------------------


def test_ex1_without_a_role_the_vault_refuses_and_the_check_says_which_role(kernel):
    kernel.run("# Exercise 1 - nothing yet\npass")
    assert incorrect(kernel, "ex1") == (
        "You hold no role on kv-sales-dev yet, so the vault refuses you (403 ForbiddenByRbac): "
        "assign yourself Key Vault Secrets Officer on kv-sales-dev."
    )


def test_ex1_administrator_for_yourself_is_more_than_storing_secrets_needs(kernel):
    kernel.run(variant(EX1, 'grant("Key Vault Secrets Officer"', 'grant("Key Vault Administrator"'))
    message = incorrect(kernel, "ex1")
    assert message.startswith("You hold Key Vault Administrator on kv-sales-dev")
    assert "storing secrets only needs Key Vault Secrets Officer - least privilege applies to you too" in message


def test_ex1_secrets_user_for_yourself_cannot_store(kernel):
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError):
        kernel.run(variant(EX1, 'grant("Key Vault Secrets Officer"', 'grant("Key Vault Secrets User"'))
    assert incorrect(kernel, "ex1") == (
        "You hold Key Vault Secrets User on kv-sales-dev, which only lets you read secret values: "
        "storing secrets needs Key Vault Secrets Officer."
    )


def test_ex1_a_secret_without_expiry_is_incorrect(kernel):
    kernel.run(variant(EX1, ", expires_on=expires)", ")"))
    message = incorrect(kernel, "ex1")
    assert message.startswith("`adls-storage-key` in kv-sales-dev has no expiry date: set expires_on")


def test_ex1_an_expiry_years_away_is_incorrect(kernel):
    kernel.run(variant(EX1, "timedelta(days=90)", "timedelta(days=5 * 365)"))
    message = incorrect(kernel, "ex1")
    assert message.startswith("`adls-storage-key` in kv-sales-dev expires in 18") and "more than a year" in message


def test_ex1_an_expiry_in_the_past_is_incorrect(kernel):
    kernel.run(variant(EX1, "timedelta(days=90)", "timedelta(days=-1)"))
    assert "expires in the past" in incorrect(kernel, "ex1")


def test_ex1_missing_tags_and_the_wrong_environment_are_incorrect(kernel):
    kernel.run(variant(EX1, 'tags={"env": "dev", "owner": "data-platform"}', 'tags={"env": "dev"}'))
    assert incorrect(kernel, "ex1").startswith("`adls-storage-key` in kv-sales-dev has no owner tag")
    kernel.run(variant(EX1, '"env": "dev"', '"env": "prod"'))
    assert incorrect(kernel, "ex1") == (
        "`adls-storage-key` in kv-sales-dev has env=prod: tag it env=dev, the environment of its vault."
    )


def test_ex1_a_secret_without_content_type_is_incorrect(kernel):
    kernel.run(variant(EX1, 'content_type="text/plain",', ""))
    assert incorrect(kernel, "ex1").startswith("`adls-storage-key` in kv-sales-dev has no content type")


def test_ex1_a_missing_secret_is_named(kernel):
    kernel.run(variant(EX1, "for name in SECRET_NAMES:", "for name in SECRET_NAMES[:2]:"))
    assert incorrect(kernel, "ex1") == (
        "kv-sales-dev has no secret named `resend-api-key` yet. The name must be exactly resend-api-key."
    )


def test_ex1_a_typed_value_is_incorrect(kernel):
    typed = "fake-not-a-real-password-0000"  # pragma: allowlist secret
    kernel.run(variant(EX1, "secrets.token_urlsafe(32)", repr(typed)))
    assert incorrect(kernel, "ex1").startswith("The value of `adls-storage-key` is typed into your code.")


def test_ex1_a_chosen_value_built_in_code_is_incorrect(kernel):
    """Not typed out, but chosen: judged by how guessable it is, not by how it was written."""
    kernel.run(variant(EX1, "secrets.token_urlsafe(32)", "'Sales' + name.title() + '2026!'"))
    assert "looks chosen, not generated" in incorrect(kernel, "ex1")


def test_ex1_secrets_stored_before_this_run_do_not_count(kernel, emulator):
    kernel.run(EX1)
    kernel.ns["lesson"].audit_position = emulator.audit_position()  # as if they had been stored earlier
    assert incorrect(kernel, "ex1").startswith(
        "`adls-storage-key` exists, but you did not store it during this run of the lesson"
    )


# -- exercise 2: least privilege for six identities -----------------------------------------


@pytest.fixture
def dev(kernel):
    """A kernel in which exercise 1 is done: the learner's role and the three dev secrets."""
    kernel.run(EX1)
    return kernel


def test_ex2_secrets_officer_where_secrets_user_suffices(dev):
    dev.run(variant(EX2, 'grant("Key Vault Secrets User", "id-adf-sales"',
                    'grant("Key Vault Secrets Officer", "id-adf-sales"'))
    assert incorrect(dev, "ex2") == (
        "`id-adf-sales` holds Key Vault Secrets Officer, which lets it read, write and delete secrets: "
        "the Data Factory only needs to read one secret, sql-db-password, for its linked service - least "
        "privilege means Key Vault Secrets User."
    )


def test_ex2_the_data_factory_on_the_whole_vault_where_the_lesson_scopes_it_to_its_secret(dev):
    dev.run(variant(EX2, '"id-adf-sales", "kv-sales-dev/secrets/sql-db-password"', '"id-adf-sales", "kv-sales-dev"'))
    assert incorrect(dev, "ex2") == (
        "`id-adf-sales` holds Key Vault Secrets User on the whole vault kv-sales-dev: the Data Factory only "
        "needs sql-db-password, so scope the role to that one secret: kv-sales-dev/secrets/sql-db-password."
    )


def test_ex2_a_vault_wide_role_where_a_secret_scoped_one_was_asked(dev):
    dev.run(variant(EX2, '"kv-sales-dev/secrets/resend-api-key"', '"kv-sales-dev"'))
    assert incorrect(dev, "ex2") == (
        "`id-func-sales` holds Key Vault Secrets User on the whole vault kv-sales-dev: the Function app only "
        "needs resend-api-key, so scope the role to that one secret: kv-sales-dev/secrets/resend-api-key."
    )


def test_ex2_the_function_scoped_to_the_wrong_secret(dev):
    dev.run(variant(EX2, '"kv-sales-dev/secrets/resend-api-key"', '"kv-sales-dev/secrets/sql-db-password"'))
    assert incorrect(dev, "ex2") == (
        "`id-func-sales` holds Key Vault Secrets User on kv-sales-dev/secrets/sql-db-password: the Function app needs "
        "resend-api-key, and nothing else."
    )


def test_ex2_the_auditor_given_secrets_user_could_read_values(dev):
    dev.run(variant(EX2, 'grant("Key Vault Reader", "id-auditor"', 'grant("Key Vault Secrets User", "id-auditor"'))
    message = incorrect(dev, "ex2")
    assert message.startswith("`id-auditor` holds Key Vault Secrets User, which lets it read secret values:")
    assert message.endswith("least privilege means Key Vault Reader.")


def test_ex2_administrator_for_the_pipeline_and_officer_for_the_security_team(dev):
    dev.run(variant(EX2, 'grant("Key Vault Secrets Officer", "id-devops-sales"',
                    'grant("Key Vault Administrator", "id-devops-sales"'))
    assert incorrect(dev, "ex2").startswith(
        "`id-devops-sales` holds Key Vault Administrator, which lets it do everything in the vault"
    )
    dev.run("lesson.lab.delete_role_assignment(role='Key Vault Administrator', assignee='id-devops-sales', "
            "scope='kv-sales-dev')")
    dev.run("lesson.lab.delete_role_assignment(role='Key Vault Administrator', assignee='id-security-team', "
            "scope='kv-sales-dev')")
    dev.run("# Exercise 2 - fixed\ngrant('Key Vault Secrets Officer', 'id-devops-sales', 'kv-sales-dev')\n"
            "grant('Key Vault Secrets Officer', 'id-security-team', 'kv-sales-dev')")
    assert incorrect(dev, "ex2") == (
        "`id-security-team` holds Key Vault Secrets Officer, which only lets it read, write and delete secrets: "
        "the security team needs to administer the whole vault, so it needs Key Vault Administrator."
    )


def test_ex2_a_forgotten_identity_is_named(dev):
    dev.run(variant(EX2, 'grant("Key Vault Secrets User", "id-databricks-sales", "kv-sales-dev")\n', ""))
    assert incorrect(dev, "ex2") == (
        "`id-databricks-sales` has no role on kv-sales-dev yet: Databricks (its AzureDatabricks application) needs to read secrets, "
        "so it needs Key Vault Secrets User."
    )


def test_ex2_the_auditor_on_one_secret_only(dev):
    dev.run(variant(EX2, 'grant("Key Vault Reader", "id-auditor", "kv-sales-dev")',
                    'grant("Key Vault Reader", "id-auditor", "kv-sales-dev/secrets/sql-db-password")'))
    assert incorrect(dev, "ex2") == (
        "`id-auditor` holds Key Vault Reader only on kv-sales-dev/secrets/sql-db-password: the auditor works "
        "with every secret in the vault, so assign the role at the vault's scope (kv-sales-dev)."
    )


def test_ex2_a_secret_scope_that_misses_a_needed_secret_fails_the_access_attempt(dev):
    """Secret scope is fine for Databricks, but then it must cover both secrets it reads."""
    dev.run(variant(EX2, 'grant("Key Vault Secrets User", "id-databricks-sales", "kv-sales-dev")',
                    'grant("Key Vault Secrets User", "id-databricks-sales", "kv-sales-dev/secrets/sql-db-password")'))
    assert incorrect(dev, "ex2") == (
        "As `id-databricks-sales`, reading adls-storage-key in kv-sales-dev was refused (403 ForbiddenByRbac), "
        "though its job needs it."
    )
    dev.run("# Exercise 2 - and the other one\n"
            "grant('Key Vault Secrets User', 'id-databricks-sales', 'kv-sales-dev/secrets/adls-storage-key')")
    result = dev.check("ex2")
    assert result.status == "correct", result.message
    assert ("`id-databricks-sales` holds Key Vault Secrets User on kv-sales-dev/secrets/adls-storage-key and "
            "kv-sales-dev/secrets/sql-db-password" in result.passed)


def test_ex2_is_unavailable_on_a_real_vault():
    lesson = Lesson(lesson_spec("02"), vault_url=AZURE_URL)
    for exercise in ("ex2", "ex3"):
        result = run_check(lesson, exercise, {"In": [""]})
        assert result.status == "unavailable", (exercise, result.message)


# -- exercise 3: production apart -------------------------------------------------------------


@pytest.fixture
def staged(dev):
    """Exercises 1 and 2 done."""
    dev.run(EX2)
    return dev


def test_ex3_nothing_done_for_prod_names_the_pipelines_missing_role(staged):
    staged.run("# Exercise 3 - not yet\npass")
    assert incorrect(staged, "ex3") == (  # first, the colleague's shortcut the lesson starts with
        "`id-adf-sales` holds Key Vault Secrets User on the whole vault kv-sales-prod: it is the identity of the "
        "dev Data Factory, and dev workloads must never reach prod secrets (that environment's workloads get "
        "identities of their own). Remove the assignment: revoke('Key Vault Secrets User', 'id-adf-sales', "
        "'kv-sales-prod')."
    )
    staged.run("revoke('Key Vault Secrets User', 'id-adf-sales', 'kv-sales-prod')")
    assert incorrect(staged, "ex3") == (
        "`id-devops-sales` has no role on kv-sales-prod yet: the DevOps pipeline needs to deploy production's "
        "secrets, so it needs Key Vault Secrets Officer."
    )


def test_ex3_a_person_with_a_role_on_prod_is_incorrect(staged):
    staged.run(
        "# Exercise 3 - write prod myself\n"
        "grant('Key Vault Secrets Officer', 'learner', 'kv-sales-prod')\n"
        "prod_client = SecretClient(lesson.vault_url('kv-sales-prod'), DefaultAzureCredential())\n"
        "for name in SECRET_NAMES:\n"
        "    prod_client.set_secret(name, secrets.token_urlsafe(32), content_type='text/plain',\n"
        "                           tags={'env': 'prod', 'owner': 'data-platform'},\n"
        "                           expires_on=datetime.now(timezone.utc) + timedelta(days=90))"
    )
    assert incorrect(staged, "ex3") == (
        "You hold Key Vault Secrets Officer on the whole vault kv-sales-prod: in production no person holds a "
        "data role. The DevOps pipeline's identity deploys the secrets; remove your assignment."
    )
    staged.run("lesson.lab.delete_role_assignment(role='Key Vault Secrets Officer', assignee='learner', "
               "scope='kv-sales-prod')")
    staged.run("grant('Key Vault Secrets Officer', 'id-devops-sales', 'kv-sales-prod')")
    staged.run("revoke('Key Vault Secrets User', 'id-adf-sales', 'kv-sales-prod')")
    assert incorrect(staged, "ex3") == (
        "`adls-storage-key` in kv-sales-prod was written by learner: write production's secrets as "
        "`id-devops-sales` (DefaultAzureCredential(managed_identity_client_id=...))."
    )


def test_ex3_a_dev_workload_with_a_role_on_prod_is_incorrect(staged):
    staged.run(EX3 + "\ngrant('Key Vault Secrets User', 'id-func-sales', 'kv-sales-prod/secrets/resend-api-key')")
    assert incorrect(staged, "ex3") == (
        "`id-func-sales` holds Key Vault Secrets User on kv-sales-prod/secrets/resend-api-key: it is the identity "
        "of the dev Function app, and dev workloads must never reach prod secrets (that environment's workloads "
        "get identities of their own). Remove the assignment: revoke('Key Vault Secrets User', 'id-func-sales', "
        "'kv-sales-prod/secrets/resend-api-key')."
    )


def test_ex3_dev_values_copied_to_prod_are_incorrect(staged):
    staged.run(variant(EX3, "secrets.token_urlsafe(32)",
                       "SecretClient(lesson.vault_url('kv-sales-dev'), pipeline).get_secret(name).value"))
    assert incorrect(staged, "ex3") == (
        "`adls-storage-key` has the same value in kv-sales-prod as in kv-sales-dev: generate a new value for each "
        "environment, so a leak in dev never opens production."
    )


def test_ex3_prod_secrets_tagged_as_dev_are_incorrect(staged):
    staged.run(variant(EX3, '"env": "prod"', '"env": "dev"'))
    assert incorrect(staged, "ex3") == (
        "`adls-storage-key` in kv-sales-prod has env=dev: tag it env=prod, the environment of its vault."
    )


def test_ex3_the_pipeline_as_administrator_of_prod_is_incorrect(staged):
    staged.run(variant(EX3, 'grant("Key Vault Secrets Officer", "id-devops-sales", "kv-sales-prod")',
                       'grant("Key Vault Administrator", "id-devops-sales", "kv-sales-prod")'))
    assert incorrect(staged, "ex3").startswith("`id-devops-sales` holds Key Vault Administrator")


def test_ex3_checks_the_function_really_reads_dev(dev):
    """Production done right, but the Function app was never given its dev role (exercise 2 skipped)."""
    dev.run(EX3)
    assert incorrect(dev, "ex3") == (
        "As `id-func-sales`, reading resend-api-key in kv-sales-dev was refused: give it its role on dev first "
        "(exercise 2)."
    )


# -- real-vault mode: the SDK-visible part of exercise 1 still counts ------------------------------


def test_ex1_against_a_real_vault_url_checks_the_secrets_through_the_sdk(kernel, emulator):
    """A lesson pointed at a vault URL (here the emulator's, as if it were Azure) reads secrets like the learner."""
    kernel.run(EX1)
    lesson = Lesson(kernel.ns["lesson"].spec, vault_url=emulator.vault_url("kv-sales-dev"))
    assert lesson.lab is None
    result = run_check(lesson, "ex1", {"In": [""]})
    assert result.status == "correct", result.message
    assert result.passed[0].startswith("kv-sales-dev holds adls-storage-key")

    kernel.run(variant(EX1, ", expires_on=expires)", ")"))
    result = run_check(lesson, "ex1", {"In": [""]})
    assert result.status == "incorrect"
    assert result.message.startswith("`adls-storage-key` in kv-sales-dev has no expiry date")


def test_the_helpers_print_az_commands_on_a_real_vault(tmp_path):
    kernel = Kernel()
    kernel.run(PARAMS.replace('"emulator"', repr(AZURE_URL)))
    kernel.run(SETUP.replace("vault_url=vault_url)", f"vault_url=vault_url, state_dir={str(tmp_path)!r})"))
    kernel.run(HELPERS)
    kernel.take_output()
    kernel.run(EX2)
    kernel.run("try_as('id-auditor')")
    out = kernel.take_output().splitlines()
    assert out[2] == (
        'az role assignment create --role "Key Vault Secrets User" --assignee-object-id '
        "$(az identity show -g rg-sales-dev -n id-func-sales --query principalId -o tsv) "
        "--assignee-principal-type ServicePrincipal --scope \"$(az keyvault show -n example --query id -o tsv)\""
        "/secrets/resend-api-key"
    )
    assert out[-1] == "id-auditor signs in only on Azure compute: test its access from the workload itself."
    assert kernel.check("ex2").status == "unavailable"
    kernel.close()


def test_on_a_real_vault_no_step_for_production_is_aimed_at_the_dev_vault(tmp_path):
    """One real vault stands in for kv-sales-dev: a prod command names a placeholder, and prod's URL is refused."""
    kernel = Kernel()
    kernel.run(PARAMS.replace('"emulator"', repr(AZURE_URL)))
    kernel.run(SETUP.replace("vault_url=vault_url)", f"vault_url=vault_url, state_dir={str(tmp_path)!r})"))
    kernel.run(HELPERS)
    kernel.take_output()
    kernel.run("grant('Key Vault Secrets Officer', 'id-devops-sales', 'kv-sales-prod')\n"
               "revoke('Key Vault Secrets User', 'id-adf-sales', 'kv-sales-prod')")
    out = kernel.take_output()
    assert "-n example" not in out and out.count("<your prod vault>") == 2
    assert out.splitlines()[0] == f"# kv-sales-prod: this run uses one real vault, {AZURE_URL}, in place of kv-sales-dev only."
    assert "az role assignment delete --role \"Key Vault Secrets User\"" in out
    with pytest.raises(ValueError, match="kv-sales-prod has no real vault in this run"):
        kernel.run("lesson.vault_url('kv-sales-prod')")
    kernel.close()
