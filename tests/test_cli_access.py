"""`kvlab identity ...` and `kvlab role ...`, run as a user runs them: a subprocess, JSON out, one-line errors.

The management plane works on the state directory, so no emulator needs to run.
"""

from __future__ import annotations

import uuid

import pytest

from runners import as_json, assert_one_line_error, kvlab

DATABRICKS_APP_ID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
ROLE_IDS = {
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Reader": "21090545-7ca7-4776-b22c-e363652d74d2",
}
ASSIGNMENT_FIELDS = {"id", "name", "principalId", "principalName", "roleDefinitionId", "roleDefinitionName", "scope"}


def is_guid(text: str) -> bool:
    return str(uuid.UUID(text)) == text


def identities(state) -> dict[str, dict]:
    return {i["name"]: i for i in as_json(kvlab("identity", "list", state=state))}


def assignments(state, *args: str) -> list[dict]:
    return as_json(kvlab("role", "assignment", "list", *args, state=state))


@pytest.fixture
def state(tmp_path):
    """A state directory of its own (these commands never start the emulator)."""
    return tmp_path


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One state directory with kv-sales-dev and id-adf-sales, for tests that change nothing."""
    path = tmp_path_factory.mktemp("kvlab-access")
    kvlab("vault", "create", "--name", "kv-sales-dev", state=path)
    kvlab("identity", "create", "--name", "id-adf-sales", state=path)
    return path


@pytest.fixture
def vault(state) -> dict:
    """A vault in the state directory (its JSON, as `kvlab vault create` prints it)."""
    return as_json(kvlab("vault", "create", "--name", "kv-sales-dev", state=state))


@pytest.fixture
def app(state) -> dict:
    """A user-assigned managed identity (its JSON, as `kvlab identity create` prints it)."""
    return as_json(kvlab("identity", "create", "--name", "id-adf-sales", state=state))


# -- identities ------------------------------------------------------------------


def test_identity_create_prints_the_new_identity(state):
    created = as_json(kvlab("identity", "create", "--name", "id-adf-sales", state=state))
    assert created["name"] == "id-adf-sales"
    assert created["type"] == "UserAssignedManagedIdentity"
    assert is_guid(created["clientId"]) and is_guid(created["principalId"]) and is_guid(created["tenantId"])
    assert created["clientId"] != created["principalId"]
    assert identities(state)["id-adf-sales"] == created


def test_two_identities_get_different_ids(state):
    first = as_json(kvlab("identity", "create", "-n", "id-one", state=state))
    second = as_json(kvlab("identity", "create", "-n", "id-two", state=state))
    assert first["clientId"] != second["clientId"]
    assert first["principalId"] != second["principalId"]
    assert first["tenantId"] == second["tenantId"]


def test_the_built_in_identities_are_listed(state):
    found = identities(state)
    assert set(found) == {"learner", "AzureDatabricks"}
    assert found["learner"]["type"] == "User"
    assert found["AzureDatabricks"]["clientId"] == DATABRICKS_APP_ID
    assert found["AzureDatabricks"]["type"] == "ServicePrincipal"
    assert is_guid(found["learner"]["clientId"]) and is_guid(found["learner"]["principalId"])
    # stable across invocations: the same state directory, the same learner
    assert identities(state)["learner"] == found["learner"]


def test_identity_list_as_a_table(state, app):
    table = kvlab("identity", "list", "-o", "table", state=state).stdout
    lines = table.splitlines()
    assert lines[0].split() == ["name", "type", "clientId", "principalId", "tenantId"]
    assert any(line.startswith("id-adf-sales ") and app["clientId"] in line for line in lines)
    assert DATABRICKS_APP_ID in table and "{" not in table


def test_identity_delete(state, app):
    deleted = as_json(kvlab("identity", "delete", "--name", "id-adf-sales", state=state))
    assert deleted == {"name": "id-adf-sales", "deleted": True}
    assert "id-adf-sales" not in identities(state)
    again = kvlab("identity", "delete", "--name", "id-adf-sales", state=state, check=False)
    assert_one_line_error(again, "no identity", "id-adf-sales")


def test_deleting_an_identity_deletes_its_assignments(state, vault, app):
    kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", "id-adf-sales",
          "--scope", "kv-sales-dev", state=state)
    kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", "learner",
          "--scope", "kv-sales-dev", state=state)
    kvlab("identity", "delete", "--name", "id-adf-sales", state=state)
    left = assignments(state)
    assert [a["principalName"] for a in left] == ["learner"]
    assert app["principalId"] not in [a["principalId"] for a in left]


@pytest.mark.parametrize("name", ["learner", "AzureDatabricks", "azuredatabricks"])
def test_built_in_identities_cannot_be_deleted(state, name):
    result = kvlab("identity", "delete", "--name", name, state=state, check=False)
    assert_one_line_error(result, "built in")
    assert {"learner", "AzureDatabricks"} <= set(identities(state))


@pytest.mark.parametrize("name", ["ab", "id adf", "-id-adf", "_id", "id/adf", "id.adf", "a" * 129, ""])
def test_invalid_identity_names_are_refused(state, name):
    result = kvlab("identity", "create", "--name", name, state=state, check=False)
    assert_one_line_error(result, "invalid identity name")
    assert set(identities(state)) == {"learner", "AzureDatabricks"}


def test_identity_names_are_unique_regardless_of_case(state, app):
    assert_one_line_error(kvlab("identity", "create", "--name", "id-adf-sales", state=state, check=False),
                          "already exists")
    assert_one_line_error(kvlab("identity", "create", "--name", "ID-ADF-SALES", state=state, check=False),
                          "already exists")
    assert_one_line_error(kvlab("identity", "create", "--name", "learner", state=state, check=False),
                          "already exists")


# -- role definitions -----------------------------------------------------------------


def test_role_definition_lists_the_four_key_vault_roles(state):
    definitions = as_json(kvlab("role", "definition", state=state))
    assert {d["roleName"]: d["name"] for d in definitions} == ROLE_IDS
    actions = {d["roleName"]: d["dataActions"] for d in definitions}
    assert actions == {
        "Key Vault Administrator": ["Microsoft.KeyVault/vaults/*"],
        "Key Vault Secrets Officer": ["Microsoft.KeyVault/vaults/secrets/*"],
        "Key Vault Secrets User": ["Microsoft.KeyVault/vaults/secrets/getSecret/action",
                                   "Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
        "Key Vault Reader": ["Microsoft.KeyVault/vaults/*/read",
                             "Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
    }
    table = kvlab("role", "definition", "-o", "table", state=state).stdout
    assert "Key Vault Secrets Officer" in table and ROLE_IDS["Key Vault Reader"] in table


# -- role assignments ---------------------------------------------------------------------


def test_assignment_create_prints_azs_fields(state, vault, app):
    created = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User",
                            "--assignee", "id-adf-sales", "--scope", "kv-sales-dev", state=state))
    assert ASSIGNMENT_FIELDS <= set(created)
    assert is_guid(created["name"])
    assert created["scope"] == vault["id"]
    assert created["id"] == f"{vault['id']}/providers/Microsoft.Authorization/roleAssignments/{created['name']}"
    assert created["principalId"] == app["principalId"]
    assert created["principalName"] == "id-adf-sales"
    subscription = vault["id"].split("/")[2]
    assert created["roleDefinitionId"] == (
        f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/"
        "4633458b-17de-408a-b874-0445c86b69e6"
    )
    assert created["roleDefinitionName"] == "Key Vault Secrets User"
    assert assignments(state) == [created]


def test_assignment_by_role_name_or_guid(state, vault, app):
    names = set()
    for role, guid in ROLE_IDS.items():
        by_name = as_json(kvlab("role", "assignment", "create", "--role", role,
                                "--assignee", "id-adf-sales", "--scope", "kv-sales-dev", state=state))
        assert by_name["roleDefinitionName"] == role
        assert by_name["roleDefinitionId"].endswith(f"/roleDefinitions/{guid}")
        by_guid = as_json(kvlab("role", "assignment", "create", "--role", guid,
                                "--assignee", "id-adf-sales", "--scope", "kv-sales-dev", state=state))
        assert by_guid == by_name  # the same role, so the same assignment
        names.add(by_name["name"])
    assert len(names) == 4
    assert sorted(a["roleDefinitionName"] for a in assignments(state)) == sorted(ROLE_IDS)


def test_assignment_by_assignee_name_client_id_or_principal_id(state, vault, app):
    created = {
        key: as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Reader",
                           "--assignee", app[key], "--scope", "kv-sales-dev", state=state))
        for key in ("name", "clientId", "principalId")
    }
    for assignment in created.values():
        assert (assignment["principalId"], assignment["principalName"]) == (app["principalId"], "id-adf-sales")
    # one principal, one role, one scope: one assignment, however the assignee was named
    assert len({a["name"] for a in created.values()}) == 1
    assert len(assignments(state)) == 1


def test_assignment_at_secret_scope(state, vault, app):
    created = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User",
                            "--assignee", "id-adf-sales", "--scope", "kv-sales-dev/secrets/sql-password",
                            state=state))
    assert created["scope"] == f"{vault['id']}/secrets/sql-password"
    assert created["id"] == (f"{vault['id']}/secrets/sql-password/providers/Microsoft.Authorization/"
                             f"roleAssignments/{created['name']}")


def test_assignment_scope_may_be_a_full_resource_id(state, vault, app):
    created = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User",
                            "--assignee", "id-adf-sales", "--scope", f"{vault['id']}/secrets/sql-password",
                            state=state))
    assert created["scope"] == f"{vault['id']}/secrets/sql-password"
    vault_level = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Reader",
                                "--assignee", "id-adf-sales", "--scope", vault["id"], state=state))
    assert vault_level["scope"] == vault["id"]


def test_the_same_assignment_twice_is_one_assignment(state, vault, app):
    args = ("role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", "id-adf-sales",
            "--scope", "kv-sales-dev")
    first = as_json(kvlab(*args, state=state))
    second = as_json(kvlab(*args, state=state))
    assert second == first
    assert [a["name"] for a in assignments(state)] == [first["name"]]


def test_assignment_list_filters_by_assignee_and_vault(state, vault, app):
    kvlab("vault", "create", "--name", "kv-sales-prod", state=state)
    dev = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User",
                        "--assignee", "id-adf-sales", "--scope", "kv-sales-dev", state=state))
    prod = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Reader",
                         "--assignee", "id-adf-sales", "--scope", "kv-sales-prod", state=state))
    mine = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Secrets Officer",
                         "--assignee", "learner", "--scope", "kv-sales-dev", state=state))
    assert {a["name"] for a in assignments(state)} == {dev["name"], prod["name"], mine["name"]}
    assert {a["name"] for a in assignments(state, "--assignee", "id-adf-sales")} == {dev["name"], prod["name"]}
    assert {a["name"] for a in assignments(state, "--assignee", app["clientId"])} == {dev["name"], prod["name"]}
    assert {a["name"] for a in assignments(state, "--scope", "kv-sales-dev")} == {dev["name"], mine["name"]}
    assert [a["name"] for a in assignments(state, "--assignee", "learner", "--scope", "kv-sales-prod")] == []
    table = kvlab("role", "assignment", "list", "-o", "table", state=state).stdout
    assert "roleDefinitionName" in table and "Key Vault Secrets Officer" in table and "{" not in table


@pytest.mark.parametrize("form", ["id", "name"])
def test_assignment_delete_by_id(state, vault, app, form):
    created = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Reader",
                            "--assignee", "id-adf-sales", "--scope", "kv-sales-dev", state=state))
    deleted = as_json(kvlab("role", "assignment", "delete", "--id", created[form], state=state))
    assert deleted == {"name": created["name"], "deleted": True}
    assert assignments(state) == []
    again = kvlab("role", "assignment", "delete", "--id", created[form], state=state, check=False)
    assert_one_line_error(again, "does not exist")


def test_assignment_delete_by_role_assignee_and_scope(state, vault, app):
    vault_level = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User",
                                "--assignee", "id-adf-sales", "--scope", "kv-sales-dev", state=state))
    secret_level = as_json(kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User",
                                 "--assignee", "id-adf-sales", "--scope", "kv-sales-dev/secrets/sql-password",
                                 state=state))
    deleted = as_json(kvlab("role", "assignment", "delete", "--role", ROLE_IDS["Key Vault Secrets User"],
                            "--assignee", app["principalId"], "--scope", "kv-sales-dev/secrets/sql-password",
                            state=state))
    assert deleted == {"name": secret_level["name"], "deleted": True}
    assert [a["name"] for a in assignments(state)] == [vault_level["name"]]
    deleted = as_json(kvlab("role", "assignment", "delete", "--role", "Key Vault Secrets User",
                            "--assignee", "id-adf-sales", "--scope", "kv-sales-dev", state=state))
    assert deleted == {"name": vault_level["name"], "deleted": True}
    assert assignments(state) == []


def test_assignment_delete_with_no_match_is_an_error(state, vault, app):
    kvlab("role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", "id-adf-sales",
          "--scope", "kv-sales-dev", state=state)
    result = kvlab("role", "assignment", "delete", "--role", "Key Vault Secrets User", "--assignee",
                   "id-adf-sales", "--scope", "kv-sales-dev", state=state, check=False)
    assert_one_line_error(result, "no 'Key Vault Secrets User' assignment", "id-adf-sales")
    assert len(assignments(state)) == 1


@pytest.mark.parametrize(
    "args",
    [(), ("--role", "Key Vault Reader"), ("--role", "Key Vault Reader", "--assignee", "id-adf-sales"),
     ("--assignee", "id-adf-sales", "--scope", "kv-sales-dev")],
)
def test_assignment_delete_needs_an_id_or_all_three(shared, args):
    result = kvlab("role", "assignment", "delete", *args, state=shared, check=False)
    assert_one_line_error(result, "--id", "--role", "--assignee", "--scope")


@pytest.mark.parametrize(
    "role, assignee, scope, words",
    [
        ("Key Vault Contributor", "id-adf-sales", "kv-sales-dev", ("unknown role", "Key Vault Contributor")),
        ("00000000-0000-0000-0000-000000000000", "id-adf-sales", "kv-sales-dev", ("unknown role",)),
        ("Key Vault Reader", "id-nobody", "kv-sales-dev", ("no identity", "id-nobody")),
        ("Key Vault Reader", "00000000-0000-0000-0000-000000000000", "kv-sales-dev", ("no identity",)),
        ("Key Vault Reader", "id-adf-sales", "kv-missing", ("does not exist", "kv-missing")),
        ("Key Vault Reader", "id-adf-sales", "kv-sales-dev/keys/sql", ("invalid scope", "kv-sales-dev/keys/sql")),
        ("Key Vault Reader", "id-adf-sales", "kv-sales-dev/secrets", ("invalid scope",)),
        ("Key Vault Reader", "id-adf-sales", "kv-sales-dev/secrets/a/b", ("invalid scope",)),
        ("Key Vault Reader", "id-adf-sales", "kv-sales-dev/secrets/sql_password", ("invalid secret name",)),
    ],
)
def test_bad_assignments_get_a_one_line_error(shared, role, assignee, scope, words):
    result = kvlab("role", "assignment", "create", "--role", role, "--assignee", assignee, "--scope", scope,
                   state=shared, check=False)
    assert_one_line_error(result, *words)
    assert assignments(shared) == []


@pytest.mark.parametrize("missing", ["--role", "--assignee", "--scope"])
def test_assignment_create_requires_role_assignee_and_scope(shared, missing):
    given = {"--role": "Key Vault Reader", "--assignee": "id-adf-sales", "--scope": "kv-sales-dev"}
    del given[missing]
    args = [part for option, value in given.items() for part in (option, value)]
    result = kvlab("role", "assignment", "create", *args, state=shared, check=False)
    assert result.returncode != 0
    assert missing in result.stderr and "Traceback" not in result.stderr
    assert assignments(shared) == []


def test_assignment_list_for_an_unknown_assignee_is_an_error(shared):
    assert_one_line_error(kvlab("role", "assignment", "list", "--assignee", "id-nobody", state=shared, check=False),
                          "no identity", "id-nobody")


def test_deleting_a_vault_deletes_its_assignments(state, vault, app):
    kvlab("role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", "id-adf-sales",
          "--scope", "kv-sales-dev", state=state)
    kvlab("vault", "delete", "--name", "kv-sales-dev", state=state)
    assert assignments(state) == []
    # a vault of the same name later starts with no access for anyone
    kvlab("vault", "create", "--name", "kv-sales-dev", state=state)
    assert assignments(state, "--scope", "kv-sales-dev") == []


@pytest.mark.parametrize(
    "args",
    [("identity",), ("identity", "create"), ("identity", "list"), ("identity", "delete"),
     ("role",), ("role", "definition"), ("role", "assignment"), ("role", "assignment", "create"),
     ("role", "assignment", "list"), ("role", "assignment", "delete")],
)
def test_every_access_command_has_help(shared, args):
    result = kvlab(*args, "--help", state=shared)
    assert result.stdout.startswith("Usage: ")
    assert " ".join(args) in result.stdout.splitlines()[0]
    assert "--help" in result.stdout
    if args[-1] in ("create", "list", "delete", "definition"):
        assert "-o, --output [json|table]" in result.stdout
