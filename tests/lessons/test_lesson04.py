"""Lesson 04 (Databricks secret scopes backed by Key Vault): the solution is correct, the stubs are not attempted,
and plausible wrong answers are "incorrect" with a reason that points at the mistake.

The cells run in a plain dict namespace with an ``In`` list, as in an IPython
kernel, read from the solution notebook; the workspace and the vaults are the
emulator's, reached through the real databricks-sdk and azure-keyvault-secrets.
"""

from __future__ import annotations

import pytest

from notebook_kernel import assert_stubs_not_attempted, cell_with, code_cells, incorrect, running, variant

NAME = "04-databricks-secret-scopes.ipynb"
SOLUTION = code_cells(NAME, "solutions")
PARAMS = cell_with(SOLUTION, 'vault_url = "emulator"')
SETUP = cell_with(SOLUTION, "start_lesson(")
HELPERS = cell_with(SOLUTION, "def entra_workspace(")
JOB = cell_with(SOLUTION, "def nightly_job(")
EX1, EX2, EX3 = (cell_with(SOLUTION, f"BEGIN SOLUTION: Exercise {n} ") for n in (1, 2, 3))


@pytest.fixture
def kernel(emulator):
    with running(PARAMS, SETUP, HELPERS) as k:
        yield k


def test_the_solution_is_correct_and_says_what_it_verified(kernel):
    for cell in (EX1, JOB, EX2, EX3):
        kernel.run(cell)
    one, two, three = (kernel.check(e) for e in ("ex1", "ex2", "ex3"))
    assert one.status == "correct", one.message
    assert one.passed[1] == "AzureDatabricks holds Key Vault Secrets User on adls-storage-key and sql-db-password only"
    assert two.status == "correct", two.message
    assert two.passed[0].startswith("`cause` is right: ")
    assert three.status == "correct", three.message
    assert three.passed[-1] == ("tried as ana@kvlab.local: adls-storage-key read through `kv-analytics`, erp-api-key "
                                "refused in `finance-team`")


def test_the_labs_stubs_are_not_attempted(kernel):
    assert_stubs_not_attempted(kernel, code_cells(NAME, "labs"), 3)


def test_each_set_up_draws_the_jobs_failure_and_the_finance_scopes_openness(kernel, emulator):
    causes, openness = set(), set()
    for _ in range(12):
        kernel.run(SETUP)
        causes.add(emulator.stage("lesson04.cause"))
        team = next(s for s in emulator.workspace_scopes() if s["name"] == "finance-team")
        openness.add(team["acls"]["users"])
        assert team["acls"]["fin@kvlab.local"] == "MANAGE"
    assert causes <= {"scope-acl", "vault-role", "disabled-secret"}
    assert len(causes) > 1 and len(openness) > 1  # the same cause 12 times in a row: odds 3**-11


def test_the_set_up_leaves_no_other_lessons_scope_in_the_workspace(kernel, emulator):
    """Lesson 06's set-up makes the scope `orders`; starting lesson 04 again lists only lesson 04's scopes."""
    from kvlab.checks.lesson04 import _clients

    _clients(kernel.ns["lesson"]).secrets.create_scope("orders")  # as another lesson's set-up leaves it
    kernel.run(SETUP)
    names = {s["name"] for s in emulator.workspace_scopes()}
    assert "orders" not in names and {"kv-finance", "finance-team"} <= names


# -- exercise 1 ---------------------------------------------------------------------------------------


def test_ex1_no_scope_yet_or_a_databricks_backed_one(kernel):
    kernel.run("# Exercise 1 - not yet\npass")
    assert incorrect(kernel, "ex1").startswith("The workspace has no scope `kv-analytics` yet.")
    kernel.run("workspace.secrets.create_scope('kv-analytics')")
    assert incorrect(kernel, "ex1").startswith("`kv-analytics` is a DATABRICKS scope: back it by the vault")


def test_ex1_a_scope_without_a_role_for_azure_databricks(kernel):
    kernel.run(EX1.split("for name in")[0])
    assert incorrect(kernel, "ex1").startswith("AzureDatabricks holds no role on kv-analytics-dev")


def test_ex1_more_than_secrets_user_or_a_missing_secret_is_incorrect(kernel):
    kernel.run(variant(EX1, '"Key Vault Secrets User", "AzureDatabricks"', '"Key Vault Secrets Officer", "AzureDatabricks"'))
    assert incorrect(kernel, "ex1").startswith("AzureDatabricks holds Key Vault Secrets Officer on kv-analytics-dev/secrets/")
    kernel.run(SETUP)
    kernel.run(variant(EX1, '("adls-storage-key", "sql-db-password")', '("adls-storage-key",)'))
    assert incorrect(kernel, "ex1").startswith("Reading sql-db-password through `kv-analytics` fails: Invalid permissions")


# -- exercise 2 ---------------------------------------------------------------------------------------


def test_ex2_the_wrong_cause_or_no_fix(kernel, emulator):
    kernel.run(JOB)
    staged = emulator.stage("lesson04.cause")
    wrong = next(c for c in ("scope-acl", "vault-role", "disabled-secret") if c != staged)
    kernel.run(f"cause = {wrong!r}")
    assert incorrect(kernel, "ex2").startswith(f"`cause` is {wrong!r}, but that is not what stops the job.")
    kernel.run(f"cause = {staged!r}")
    assert incorrect(kernel, "ex2").startswith("The job still fails: ")
    kernel.run("cause = 'the network'")
    assert incorrect(kernel, "ex2").startswith("`cause` is 'the network': say which it is")


def test_ex2_fixing_with_more_than_the_job_needs_is_incorrect(kernel, emulator):
    kernel.run(JOB)
    kernel.run(EX2)
    kernel.run("workspace.secrets.put_acl('kv-finance', 'etl@kvlab.local', AclPermission.MANAGE)")
    assert incorrect(kernel, "ex2") == "etl@kvlab.local holds MANAGE on `kv-finance`: a job that reads needs READ, and no more."


# -- exercise 3 ---------------------------------------------------------------------------------------


@pytest.fixture
def analytics(kernel):
    kernel.run(EX1)
    return kernel


def test_ex3_too_much_for_ana_or_the_finance_scope_left_open(analytics):
    analytics.run("workspace.secrets.put_acl('kv-analytics', 'ana@kvlab.local', AclPermission.WRITE)")
    assert incorrect(analytics, "ex3").startswith("ana@kvlab.local holds WRITE on `kv-analytics`: she only reads")
    analytics.run("workspace.secrets.put_acl('kv-analytics', 'ana@kvlab.local', AclPermission.READ)")
    assert incorrect(analytics, "ex3").startswith("Every user of the workspace (the principal `users`) holds ")


def test_ex3_locking_out_the_owner_or_a_made_up_refusal_is_incorrect(analytics):
    analytics.run(variant(EX3, 'workspace.secrets.delete_acl("finance-team", "users")',
                          'workspace.secrets.delete_acl("finance-team", "users")\n'
                          '        workspace.secrets.delete_acl("finance-team", "fin@kvlab.local")'))
    assert incorrect(analytics, "ex3").startswith("fin@kvlab.local, the finance team's owner of `finance-team`, lost MANAGE")
    analytics.run("workspace.secrets.put_acl('finance-team', 'fin@kvlab.local', AclPermission.MANAGE)\n"
                  "refused = ValueError('no access, I suppose')")
    assert incorrect(analytics, "ex3").startswith("`refused` should be the PermissionDenied ana@kvlab.local gets")


def test_ex3_a_refusal_typed_by_hand_is_not_a_proof(analytics):
    analytics.run(EX3.split("try:")[0])
    analytics.run("refused = PermissionDenied('User ana@kvlab.local does not have READ permission on scope finance-team')")
    assert incorrect(analytics, "ex3").startswith(
        "The workspace's audit log shows no read by ana@kvlab.local refused in `finance-team`")
    assert incorrect(analytics, "ex3").startswith("The workspace's audit log shows no read")  # the check's own tries do not count
