"""Lesson 02 (Creating a vault): the solution is correct, the stubs are not attempted, and every
plausible wrong answer is "incorrect" with a reason that points at the mistake.

The cells run in a plain dict namespace with an ``In`` list, as in an IPython
kernel. The set-up, helper and answer cells are read from the solution
notebook, so these tests judge the code a learner actually sees.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kvlab.checks import lesson_spec, run_check
from kvlab.lesson import Lesson

from notebook_kernel import assert_stubs_not_attempted, cell_with, code_cells, running

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
SECRET_NAMES = ("adls-storage-key", "sql-db-password", "resend-api-key")


from notebook_kernel import Kernel, incorrect, variant  # noqa: E402


@pytest.fixture
def kernel(emulator):
    with running(PARAMS, SETUP, HELPERS) as k:
        yield k


# -- the right answers and the lab as shipped ------------------------------------------------


def test_the_solution_is_correct_and_says_what_it_verified(kernel):
    kernel.run(EX1)
    kernel.run(EX2)
    kernel.run(EX3)
    one, two, three = kernel.check("ex1"), kernel.check("ex2"), kernel.check("ex3")
    assert one.status == "correct", one.message
    assert one.passed[0] == "you hold Key Vault Secrets Officer on kv-sales-dev"
    assert one.passed[1].startswith("every secret in kv-sales-dev (adls-storage-key, ")
    assert one.passed[2] == "no value changed: the audit log shows no new version, only property updates"
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
    assert emulator.role_assignments(scope="kv-sales-dev") == []
    assert not _meets_the_standard(emulator)
    assert incorrect(kernel, "ex1").startswith("You hold no role on kv-sales-dev yet")


# -- exercise 1: your own role, the colleague's dev vault brought up to standard ------------------


def _colleagues_secrets(emulator) -> dict[str, dict]:
    return {name: emulator.inspect_secret("kv-sales-dev", name) for name in emulator.secret_values("kv-sales-dev")}


def _meets_the_standard(emulator) -> bool:
    now = time.time()
    return all(s["contentType"] and (s["tags"] or {}).get("env") == "dev" and (s["tags"] or {}).get("owner")
               and s["exp"] and now < s["exp"] <= now + 90 * 86400 for s in _colleagues_secrets(emulator).values())


def test_the_lab_starts_with_the_colleagues_secrets_each_short_of_the_standard_in_a_drawn_way(kernel, emulator):
    """The three the pipelines need and one or two more, every one missing something; different each set-up."""
    now, draws = time.time(), set()
    for _ in range(4):
        kernel.run(SETUP)
        found = _colleagues_secrets(emulator)
        assert set(SECRET_NAMES) < set(found) and 4 <= len(found) <= 5
        for name, secret in found.items():
            tags = secret["tags"] or {}
            gaps = [not secret["contentType"], tags.get("env") != "dev", not tags.get("owner"),
                    secret["exp"] is None or secret["exp"] > now + 90 * 86400]
            assert any(gaps), name
            assert secret["exp"] is None or secret["exp"] > now  # nothing expired: that would need a rotation
        draws.add(tuple(sorted((n, s["contentType"], tuple(sorted((s["tags"] or {}).items())), s["exp"] is None)
                               for n, s in found.items())))
        assert emulator.role_assignments(scope="kv-sales-dev") == []
    assert len(draws) > 1


def test_the_guided_notebook_starts_from_empty_vaults(emulator):
    import kvlab

    lesson = kvlab.start_lesson("02", demo=True)
    assert all(lesson.lab.secret_values(v) == {} for v in ("kv-sales-dev", "kv-sales-staging", "kv-sales-prod"))
    assert lesson.lab.role_assignments(scope="kv-sales-prod") == []


def test_ex1_without_a_role_the_vault_refuses_and_the_check_points_at_the_action(kernel):
    kernel.run("# Exercise 1 - nothing yet\npass")
    assert incorrect(kernel, "ex1") == (
        "You hold no role on kv-sales-dev yet, so the vault refuses you (403 ForbiddenByRbac): assign yourself the "
        "least role whose data actions include the one the 403's Action line names (secrets/update/action, to "
        "change a secret's properties)."
    )


def test_ex1_administrator_for_yourself_is_more_than_fixing_secrets_needs(kernel):
    kernel.run(variant(EX1, 'grant("Key Vault Secrets Officer"', 'grant("Key Vault Administrator"'))
    message = incorrect(kernel, "ex1")
    assert message.startswith("You hold Key Vault Administrator on kv-sales-dev")
    assert "fixing secrets' properties only needs Key Vault Secrets Officer - least privilege applies to you too" in message


@pytest.mark.parametrize("role, lets", [("Key Vault Reader", "see secret names and dates, not values"),
                                        ("Key Vault Secrets User", "read secret values")])
def test_ex1_a_role_that_cannot_change_properties_is_refused_by_the_vault_and_the_check(kernel, role, lets):
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as raised:
        kernel.run(variant(EX1, 'grant("Key Vault Secrets Officer"', f'grant("{role}"'))
    assert raised.value.status_code == 403
    assert incorrect(kernel, "ex1") == (
        f"You hold {role} on kv-sales-dev, which only lets you {lets}: changing a secret's properties "
        "(secrets/update/action) needs Key Vault Secrets Officer."
    )


def test_ex1_officer_on_single_secrets_is_not_enough(kernel):
    """Reader to list, Officer on the three known secrets: the colleague's others stay out of reach."""
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as raised:
        kernel.run(variant(EX1, 'grant("Key Vault Secrets Officer", "learner", "kv-sales-dev")',
                           'for n in SECRET_NAMES:\n    grant("Key Vault Secrets Officer", "learner", f"kv-sales-dev/secrets/{n}")\n'
                           'grant("Key Vault Reader", "learner", "kv-sales-dev")'))
    assert raised.value.status_code == 403
    assert incorrect(kernel, "ex1").startswith("You hold Key Vault Secrets Officer only on single secrets")


def test_ex1_an_expiry_beyond_the_standard_or_in_the_past_is_incorrect(kernel):
    every = variant(EX1, "expires_on=props.expires_on if keep else due", "expires_on=due")
    kernel.run(variant(every, "timedelta(days=90)", "timedelta(days=5 * 365)"))
    assert incorrect(kernel, "ex1") == ("`adls-storage-key` in kv-sales-dev expires in 1824 days: the team's standard "
                                        "is at most 90, when it is due for rotation.")
    kernel.run(variant(every, "timedelta(days=90)", "timedelta(days=-1)"))
    assert "`adls-storage-key` in kv-sales-dev expires in the past" in incorrect(kernel, "ex1")


def test_ex1_missing_tags_and_the_wrong_environment_are_incorrect(kernel):
    kernel.run(variant(EX1, 'tags.setdefault("owner", "data-platform")', 'tags.pop("owner", None)'))
    assert incorrect(kernel, "ex1").startswith("`adls-storage-key` in kv-sales-dev has no owner tag")
    kernel.run(variant(EX1, '"env": "dev"', '"env": "prod"'))
    assert incorrect(kernel, "ex1") == (
        "`adls-storage-key` in kv-sales-dev has env=prod: tag it env=dev, the environment of its vault."
    )


def test_ex1_an_empty_content_type_is_incorrect(kernel):
    kernel.run(variant(EX1, 'content_type=props.content_type or "text/plain"', 'content_type=""'))
    assert incorrect(kernel, "ex1").startswith("`adls-storage-key` in kv-sales-dev has no content type")


def test_ex1_fixing_only_the_three_named_secrets_misses_the_colleagues_others(kernel, emulator):
    kernel.run(variant(EX1, "for props in client.list_properties_of_secrets():\n",
                       "for props in client.list_properties_of_secrets():\n"
                       "    if props.name not in SECRET_NAMES:\n        continue\n"))
    message = incorrect(kernel, "ex1")
    extras = sorted(set(emulator.secret_values("kv-sales-dev")) - set(SECRET_NAMES))
    assert any(message.startswith(f"`{extra}` in kv-sales-dev ") for extra in extras), message  # one that was left as it was


@pytest.mark.parametrize("how", ["a new generated value", "the same value, read and written back"])
def test_ex1_storing_new_versions_is_incorrect_even_with_the_same_value(kernel, how):
    value = "secrets.token_urlsafe(32)" if how.startswith("a new") else "client.get_secret(props.name).value"
    kernel.run(variant(EX1, "client.update_secret_properties(props.name,",
                       f"client.set_secret(props.name, {value},"))
    message = incorrect(kernel, "ex1")
    assert message.startswith("`adls-storage-key` has a new version in this run (SecretSet by learner): set_secret "
                              "stores a new value"), message
    assert "(update_secret_properties)" in message


def test_ex1_a_deleted_secret_is_named(kernel):
    kernel.run(EX1)
    kernel.run("client.begin_delete_secret('resend-api-key').wait()")
    assert incorrect(kernel, "ex1").startswith("kv-sales-dev has no secret named `resend-api-key`. The pipelines need it")


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


def _shortcut(emulator) -> tuple[str, str, str]:
    """The colleague's shortcut this set-up drew: (role, dev identity, vault)."""
    found = [(a["roleDefinitionName"], a["principalName"], vault) for vault in ("kv-sales-staging", "kv-sales-prod")
             for a in emulator.role_assignments(scope=vault)]
    assert len(found) == 1, found
    return found[0]


REVOKE_SHORTCUT = (
    "for _v in ('kv-sales-staging', 'kv-sales-prod'):\n"
    "    for _a in lesson.lab.role_assignments(scope=_v):\n"
    "        if _a['principalName'] != 'id-devops-sales':\n"
    "            revoke(_a['roleDefinitionName'], _a['principalName'], _v)"
)


def test_the_colleagues_shortcut_is_a_dev_identity_in_staging_or_production_drawn_at_each_set_up(kernel, emulator):
    drawn = set()
    for _ in range(8):
        kernel.run(SETUP)
        role, who, vault = _shortcut(emulator)
        assert role == "Key Vault Secrets User"
        assert who in ("id-databricks-sales", "id-adf-sales", "id-func-sales")
        drawn.add((who, vault))
    assert len(drawn) > 1  # six possibilities: eight equal draws in a row has odds 6**-7


def test_ex3_nothing_done_for_prod_names_the_shortcut_then_the_pipelines_missing_role(staged, emulator):
    staged.run("# Exercise 3 - not yet\npass")
    role, who, vault = _shortcut(emulator)
    message = incorrect(staged, "ex3")  # first, the colleague's shortcut the lesson starts with
    assert message.startswith(f"`{who}` holds {role} on the whole vault {vault}: it is the identity of the dev ")
    assert message.endswith(f"Remove the assignment: revoke({role!r}, {who!r}, {vault!r}).")
    staged.run(REVOKE_SHORTCUT)
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
    staged.run(REVOKE_SHORTCUT)
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
    assert result.passed == [f"every secret in kv-sales-dev ({', '.join(sorted(emulator.secret_values('kv-sales-dev')))}) "
                             "has a content type, env=dev and owner tags, and an expiry at most 90 days away"]

    kernel.run(variant(EX1, "timedelta(days=90)", "timedelta(days=-1)"))
    result = run_check(lesson, "ex1", {"In": [""]})
    assert result.status == "incorrect"
    assert result.message.startswith("`adls-storage-key` in kv-sales-dev expires in the past")


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
