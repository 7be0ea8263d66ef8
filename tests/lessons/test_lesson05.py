"""Lesson 05 (Data Factory linked services that reference Key Vault): the solution is correct, the stubs are not
attempted, and plausible wrong answers are "incorrect" with a reason that points at the mistake.

The cells run in a plain dict namespace, as in an IPython kernel, read from the solution notebook, in a
temporary working directory (the set-up writes the factory's folder beside the notebook). The vault, the
factory's identity and the PostgreSQL database are real: the emulator's and `kvlab db`'s.
"""

from __future__ import annotations

import json

import pytest

from notebook_kernel import assert_stubs_not_attempted, cell_with, code_cells, incorrect, running, variant

NAME = "05-data-factory-linked-services.ipynb"
SOLUTION = code_cells(NAME, "solutions")
PARAMS = cell_with(SOLUTION, 'vault_url = "emulator"')
SETUP = cell_with(SOLUTION, "start_lesson(")
TOOLS = cell_with(SOLUTION, "factory = Path(")
EX1, EX2, EX3 = (cell_with(SOLUTION, f"BEGIN SOLUTION: Exercise {n} ") for n in (1, 2, 3))


@pytest.fixture
def kernel(emulator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with running(PARAMS, SETUP, TOOLS) as k:
        yield k


def staged(emulator) -> dict:
    return json.loads(emulator.stage("lesson05.unsafe"))


def test_the_solution_is_correct_and_says_what_it_verified(kernel):
    for cell in (EX1, EX2, EX3):
        kernel.run(cell)
    one, two, three = (kernel.check(e) for e in ("ex1", "ex2", "ex3"))
    assert one.status == "correct", one.message
    assert two.status == "correct", two.message
    assert two.passed[0] == "adf-sales-dev holds Key Vault Secrets User on exactly the 4 secrets the folder references"
    assert three.status == "correct", three.message
    assert three.passed[-1] == "LS_SalesDb and LS_SalesDb_Reporting both connect as the factory, with the new password"


def test_the_labs_stubs_are_not_attempted(kernel):
    assert_stubs_not_attempted(kernel, code_cells(NAME, "labs"), 3)


def test_each_set_up_draws_three_unsafe_linked_services_with_fresh_credentials(kernel, emulator, tmp_path):
    drawn, credentials = set(), set()
    for _ in range(6):
        kernel.run(SETUP)
        unsafe = staged(emulator)
        assert len(unsafe) == 3
        drawn.add(frozenset(unsafe))
        credentials |= {u["credential"] for u in unsafe.values()}
        files = sorted(p.stem for p in (tmp_path / "adf-sales" / "linkedService").glob("*.json"))
        assert files == sorted(["LS_KeyVault", "LS_SalesDb", "LS_SalesDb_Reporting", *unsafe])
    assert len(drawn) > 1 and len(credentials) == 18  # the same three 6 times in a row: odds 10**-5


# -- exercise 1 ---------------------------------------------------------------------------------------


def test_ex1_findings_left_are_named(kernel):
    kernel.run("# Exercise 1 - not yet\npass")
    assert incorrect(kernel, "ex1").startswith("3 findings left; the first: ")


def test_ex1_deleting_a_linked_service_loses_it(kernel, emulator, tmp_path):
    kernel.run("# Exercise 1 - delete them\nfor f in kvlab.adf.check([factory])[1]:\n    Path(f.file).unlink()")
    assert incorrect(kernel, "ex1").endswith("is gone from the folder. The pipelines still need it: make it safe, "
                                             "do not delete it.")


def test_ex1_a_reference_to_a_secret_that_holds_something_else(kernel):
    kernel.run(variant(EX1, 'vault.set_secret(name, value, content_type="text/plain")',
                       'vault.set_secret(name, "retyped-" + name, content_type="text/plain")'))
    assert "Key Vault reference does not lead to its credential" in incorrect(kernel, "ex1")


def test_ex1_a_credential_blanked_instead_of_moved(kernel, tmp_path):
    kernel.run("# Exercise 1 - blank them\n"
               "for f in kvlab.adf.check([factory])[1]:\n"
               "    path = Path(f.file)\n"
               "    service = json.loads(path.read_text())\n"
               "    service['properties']['typeProperties'].pop(f.field.rsplit('.', 1)[-1])\n"
               "    path.write_text(json.dumps(service))")
    message = incorrect(kernel, "ex1")
    assert "references no Key Vault secret, so its credential is lost" in message or message.startswith("LS_Adls_Raw")


def test_ex1_the_service_principal_replaced_by_the_factorys_identity_is_right_too(kernel, emulator, tmp_path):
    """LS_Adls_Raw can drop its service principal and sign in as the factory: nothing to move then."""
    for _ in range(12):
        if "LS_Adls_Raw" in staged(emulator):
            break
        kernel.run(SETUP)
    else:
        pytest.skip("LS_Adls_Raw was not drawn in 12 set-ups (odds 0.4**12)")
    kernel.run("# Exercise 1 - my way\n"
               "path = factory / 'linkedService' / 'LS_Adls_Raw.json'\n"
               "service = json.loads(path.read_text())\n"
               "service['properties']['typeProperties'] = {'url': service['properties']['typeProperties']['url']}\n"
               "path.write_text(json.dumps(service))\n" + EX1)
    assert kernel.check("ex1").status == "correct"


# -- exercise 2 ---------------------------------------------------------------------------------------


def test_ex2_no_role_a_vault_wide_role_or_too_strong_a_role(kernel):
    kernel.run(EX1)
    kernel.run("# Exercise 2 - not yet\npass")
    assert incorrect(kernel, "ex2").startswith("adf-sales-dev, the factory's managed identity, holds no role")
    kernel.run("lesson.lab.assign_role('Key Vault Secrets User', 'adf-sales-dev', 'kv-sales-dev')")
    assert incorrect(kernel, "ex2").startswith("adf-sales-dev holds Key Vault Secrets User on the whole vault")
    kernel.run(SETUP)
    kernel.run(EX1)
    kernel.run(variant(EX2, '"Key Vault Secrets User", "adf-sales-dev"', '"Key Vault Secrets Officer", "adf-sales-dev"'))
    assert "the factory only reads secrets" in incorrect(kernel, "ex2")


def test_ex2_a_referenced_secret_left_out_or_an_extra_one_granted(kernel):
    kernel.run(EX1)
    kernel.run(variant(EX2, "for name in sorted(needed):", "for name in sorted(needed - {'pg-password'}):"))
    assert incorrect(kernel, "ex2").startswith("adf-sales-dev may not read pg-password, which a linked service "
                                               "references")
    kernel.run("lesson.lab.assign_role('Key Vault Secrets User', 'adf-sales-dev', 'kv-sales-dev/secrets/pg-password')\n"
               "from azure.identity import DefaultAzureCredential as C\n"
               "from azure.keyvault.secrets import SecretClient as S\n"
               "S(lesson.vault_url('kv-sales-dev'), C()).set_secret('unrelated', secrets.token_urlsafe(24))\n"
               "lesson.lab.assign_role('Key Vault Secrets User', 'adf-sales-dev', 'kv-sales-dev/secrets/unrelated')")
    assert incorrect(kernel, "ex2").startswith("adf-sales-dev may read unrelated, which no linked service")


# -- exercise 3 ---------------------------------------------------------------------------------------


@pytest.fixture
def ready(kernel):
    kernel.run(EX1)
    kernel.run(EX2)
    return kernel


def test_ex3_nothing_rotated_yet(ready):
    ready.run("# Exercise 3 - not yet\npass")
    assert incorrect(ready, "ex3").startswith("pg-password's latest version is still the first password")


def test_ex3_only_the_vault_changed(ready):
    ready.run(variant(EX3, 'kvlab.db.set_password("etl_pipeline", new_password, lesson.lab.state_dir)', "pass"))
    assert incorrect(ready, "ex3").startswith("The database still accepts the first password for etl_pipeline")


def test_ex3_the_pin_left_alone(ready):
    ready.run(EX3.split("pinned = ")[0])
    assert incorrect(ready, "ex3").startswith("LS_SalesDb_Reporting no longer connects: LS_SalesDb_Reporting: "
                                              "PostgreSQL refused the connection: FATAL:")


def test_ex3_a_typed_password_or_no_expiry(ready):
    ready.run(variant(EX3, "new_password = secrets.token_urlsafe(24)", "new_password = 'Spring2027!Sales'"))  # pragma: allowlist secret
    assert incorrect(ready, "ex3").startswith("The value of the new pg-password is typed into your code.")
    ready.run(variant(variant(EX3, ",  # 2. in the vault", ")  # 2. in the vault"),
                      "                     expires_on=datetime.now(timezone.utc) + timedelta(days=90))", ""))
    assert incorrect(ready, "ex3").startswith("The new version of pg-password has no expiry")


def test_ex3_with_the_database_stopped_says_so_rather_than_judging(ready, emulator):
    from kvlab import db

    ready.run(EX3)
    db.stop(emulator.state_dir)
    try:
        assert incorrect(ready, "ex3").startswith("The database is not running")
    finally:
        db.start(emulator.state_dir)
