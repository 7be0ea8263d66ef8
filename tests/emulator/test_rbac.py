"""Azure RBAC on vault data, through the real, unpatched ``SecretClient``.

The expectations are written here from Azure's documentation of the built-in
roles (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/security)
and of Key Vault's data actions, not read from ``kvlab.emulator.rbac``: if the
emulator's role definitions or an operation's data action drift from Azure's,
these tests fail. Every caller is a real managed identity, reached the way a
learner reaches it: ``DefaultAzureCredential(managed_identity_client_id=...)``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from kvlab.emulator import keyvault, rbac

from runners import officer_vault

FAKE_VALUE = "not-a-real-password"  # pragma: allowlist secret
OTHER_FAKE_VALUE = "also-not-a-real-password"  # pragma: allowlist secret
POLL_TIMEOUT = 30

ADMINISTRATOR = "Key Vault Administrator"
OFFICER = "Key Vault Secrets Officer"
USER = "Key Vault Secrets User"
READER = "Key Vault Reader"
NO_ROLE = None

# Azure's built-in role definitions (learn.microsoft.com, "Azure built-in roles for Security"):
# name -> (role definition GUID, data actions).
AZURE_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    ADMINISTRATOR: ("00482a5a-887f-4fb3-b363-3b7fe8e74483", ("Microsoft.KeyVault/vaults/*",)),
    OFFICER: ("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", ("Microsoft.KeyVault/vaults/secrets/*",)),
    USER: (
        "4633458b-17de-408a-b874-0445c86b69e6",
        ("Microsoft.KeyVault/vaults/secrets/getSecret/action",
         "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
    ),
    READER: (
        "21090545-7ca7-4776-b22c-e363652d74d2",
        ("Microsoft.KeyVault/vaults/*/read",
         "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
    ),
}

# The data action each secrets operation needs (Key Vault's data actions, by audit name).
ACTION_OF: dict[str, str] = {
    "SecretGet": "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "SecretList": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "SecretListVersions": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "SecretListDeleted": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "SecretGetDeleted": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "SecretSet": "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    "SecretUpdate": "Microsoft.KeyVault/vaults/secrets/update/action",
    "SecretDelete": "Microsoft.KeyVault/vaults/secrets/delete",
    "SecretRecover": "Microsoft.KeyVault/vaults/secrets/recover/action",
    "SecretBackup": "Microsoft.KeyVault/vaults/secrets/backup/action",
    "SecretRestore": "Microsoft.KeyVault/vaults/secrets/restore/action",
    "SecretPurge": "Microsoft.KeyVault/vaults/secrets/purge/action",
}
ALL_OPERATIONS = frozenset(ACTION_OF)
READ_METADATA = frozenset({"SecretList", "SecretListVersions", "SecretListDeleted", "SecretGetDeleted"})

# The decision table, by hand: which operations each role allows.
ALLOWED: dict[str | None, frozenset[str]] = {
    ADMINISTRATOR: ALL_OPERATIONS,
    OFFICER: ALL_OPERATIONS,
    USER: READ_METADATA | {"SecretGet"},
    READER: READ_METADATA,  # metadata only: never a secret's value
    NO_ROLE: frozenset(),
}
ROLE_CASES = [ADMINISTRATOR, OFFICER, USER, READER, NO_ROLE]


def role_id(role: str | None) -> str:
    return "no-role" if role is None else role.lower().replace(" ", "-")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def finish(poller):
    poller.wait(timeout=POLL_TIMEOUT)
    assert poller.done(), f"the poller did not finish within {POLL_TIMEOUT} s"
    return poller.result()


def delete(client: SecretClient, name: str) -> None:
    finish(client.begin_delete_secret(name))


def forbidden_message(exc: HttpResponseError) -> str:
    """The 403 of an RBAC denial, checked for its shape; returns the error message."""
    assert exc.status_code == 403, exc
    error = exc.response.json()["error"]
    assert error["code"] == "Forbidden"
    assert error["innererror"]["code"] == "ForbiddenByRbac"
    return error["message"]


def assert_denied(call: Callable[[], Any], action: str, vault: str, identity: dict) -> str:
    with pytest.raises(HttpResponseError) as info:
        call()
    message = forbidden_message(info.value)
    assert f"Action: '{action}'" in message
    assert f"Vault: {vault};" in message
    assert f"/providers/microsoft.keyvault/vaults/{vault}" in message
    assert f"oid={identity['principalId']};" in message
    assert f"name={identity['name']};" in message
    assert f"appid={identity['clientId']};" in message
    return message


def vault_name(url: str) -> str:
    return url.split("//", 1)[1].split(".", 1)[0]


# -- the tables themselves ------------------------------------------------------


def test_the_emulators_roles_are_azures_built_in_roles():
    assert {r.name: (r.id, r.data_actions) for r in rbac.ROLES} == AZURE_ROLES


def test_every_operation_needs_its_documented_data_action():
    assert {op.name: op.data_action for op in keyvault.OPERATIONS} == ACTION_OF


@pytest.mark.parametrize("role", [r for r in ROLE_CASES if r], ids=role_id)
def test_role_permits_agrees_with_the_hand_written_table(role):
    definition = rbac.find_role(role)
    decided = {op.name for op in keyvault.OPERATIONS if definition.permits(op.data_action)}
    assert decided == ALLOWED[role]


@pytest.mark.parametrize(
    "role, action, allowed",
    [
        (READER, "Microsoft.KeyVault/vaults/secrets/getSecret/action", False),
        (READER, "microsoft.keyvault/VAULTS/secrets/readmetadata/action", True),  # case-insensitive
        (READER, "Microsoft.KeyVault/vaults/secrets/read", True),  # vaults/*/read
        (USER, "Microsoft.KeyVault/vaults/secrets/setSecret/action", False),
        (OFFICER, "Microsoft.KeyVault/vaults/keys/read", False),
        (ADMINISTRATOR, "Microsoft.KeyVault/vaults/keys/read", True),
        (ADMINISTRATOR, "Microsoft.Storage/storageAccounts/read", False),
    ],
)
def test_wildcards_match_as_azure_matches_them(role, action, allowed):
    assert rbac.find_role(role).permits(action) is allowed


@pytest.mark.parametrize("role", [r for r in ROLE_CASES if r], ids=role_id)
def test_roles_are_found_by_name_guid_or_role_definition_id(role):
    guid = AZURE_ROLES[role][0]
    assert rbac.find_role(role.upper()).id == guid
    assert rbac.find_role(guid.upper()).name == role
    assert rbac.find_role(f"/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/{guid}").name == role


# -- the matrix: every role x every operation, through the SDK ----------------------


@dataclass
class Matrix:
    lab: Any
    vault: str  # the vault the identities hold their roles on
    officer: SecretClient  # the learner, Secrets Officer on `vault` (sets up state)
    source: SecretClient  # the learner on another vault: backups for restore come from here
    identities: dict  # role -> identity JSON
    clients: dict  # role -> SecretClient as that identity


@pytest.fixture(scope="module")
def matrix(emulator):
    url = officer_vault(emulator, "rbac")
    source_url = officer_vault(emulator, "rbacsrc")
    vault = vault_name(url)
    learner = DefaultAzureCredential(managed_identity_client_id=emulator.identity("learner")["clientId"])
    identities, clients, credentials = {}, {}, []
    for role in ROLE_CASES:
        identity = emulator.create_identity(unique(f"id-{role_id(role)}"))
        if role is not None:
            emulator.assign_role(role, identity["name"], vault)
        credential = DefaultAzureCredential(managed_identity_client_id=identity["clientId"])
        credentials.append(credential)
        identities[role] = identity
        clients[role] = SecretClient(url, credential)
    officer, source = SecretClient(url, learner), SecretClient(source_url, learner)
    yield Matrix(emulator, vault, officer, source, identities, clients)
    for c in [officer, source, *clients.values()]:
        c.close()
    for c in [learner, *credentials]:
        c.close()


@dataclass
class Scenario:
    """One operation: state before, the call as the identity, and what it must have done."""

    setup: Callable[[Matrix, str], Any]
    call: Callable[[SecretClient, str, Any], Any]
    done: Callable[[Matrix, str, Any, Any], None]  # after an allowed call
    untouched: Callable[[Matrix, str, Any], None]  # after a denied call


def live(m: Matrix, name: str):
    return m.officer.set_secret(name, FAKE_VALUE)


def deleted(m: Matrix, name: str):
    live(m, name)
    delete(m.officer, name)


def backup_blob(m: Matrix, name: str) -> bytes:
    m.source.set_secret(name, FAKE_VALUE)
    return m.source.backup_secret(name)


def nothing(m: Matrix, name: str):
    return None


def still_live(m: Matrix, name: str, _):
    secret = m.officer.get_secret(name)
    assert secret.value == FAKE_VALUE
    assert secret.properties.content_type is None


def still_deleted(m: Matrix, name: str, _):
    assert m.officer.get_deleted_secret(name).name == name
    with pytest.raises(ResourceNotFoundError):
        m.officer.get_secret(name)


def absent(m: Matrix, name: str, _):
    with pytest.raises(ResourceNotFoundError):
        m.officer.get_secret(name)


def no_change(m: Matrix, name: str, _):
    pass


def _get_done(m, name, before, got):
    assert got.value == FAKE_VALUE and got.name == name


def _list_done(m, name, before, got):
    assert name in got


def _versions_done(m, name, before, got):
    assert sorted(got) == sorted([before[0].properties.version, before[1].properties.version])


def _set_done(m, name, before, got):
    assert got.value == OTHER_FAKE_VALUE
    assert m.officer.get_secret(name).value == OTHER_FAKE_VALUE


def _update_done(m, name, before, got):
    assert got.content_type == "text/plain"
    assert m.officer.get_secret(name).properties.content_type == "text/plain"


def _delete_done(m, name, before, got):
    assert got.name == name
    assert m.officer.get_deleted_secret(name).name == name


def _get_deleted_done(m, name, before, got):
    assert got.name == name and got.recovery_id.endswith(f"/deletedsecrets/{name}")


def _purge_done(m, name, before, got):
    with pytest.raises(ResourceNotFoundError):
        m.officer.get_deleted_secret(name)


def _recover_done(m, name, before, got):
    assert m.officer.get_secret(name).value == FAKE_VALUE


def _backup_done(m, name, before, got):
    assert isinstance(got, bytes) and got
    # the blob is a real backup: it restores (into the other vault, where the name is free)
    m.source.restore_secret_backup(got)
    assert m.source.get_secret(name).value == FAKE_VALUE


def _restore_done(m, name, before, got):
    assert got.name == name
    assert m.officer.get_secret(name).value == FAKE_VALUE


SCENARIOS: dict[str, Scenario] = {
    "SecretGet": Scenario(live, lambda c, n, s: c.get_secret(n), _get_done, no_change),
    "SecretList": Scenario(
        live, lambda c, n, s: [p.name for p in c.list_properties_of_secrets()], _list_done, no_change
    ),
    "SecretListVersions": Scenario(
        lambda m, n: (live(m, n), live(m, n)),
        lambda c, n, s: [p.version for p in c.list_properties_of_secret_versions(n)],
        _versions_done, no_change,
    ),
    "SecretSet": Scenario(nothing, lambda c, n, s: c.set_secret(n, OTHER_FAKE_VALUE), _set_done, absent),
    "SecretUpdate": Scenario(
        live, lambda c, n, s: c.update_secret_properties(n, content_type="text/plain"), _update_done, still_live
    ),
    "SecretDelete": Scenario(live, lambda c, n, s: finish(c.begin_delete_secret(n)), _delete_done, still_live),
    "SecretListDeleted": Scenario(
        deleted, lambda c, n, s: [d.name for d in c.list_deleted_secrets()], _list_done, no_change
    ),
    "SecretGetDeleted": Scenario(deleted, lambda c, n, s: c.get_deleted_secret(n), _get_deleted_done, no_change),
    "SecretPurge": Scenario(deleted, lambda c, n, s: c.purge_deleted_secret(n), _purge_done, still_deleted),
    "SecretRecover": Scenario(
        deleted, lambda c, n, s: finish(c.begin_recover_deleted_secret(n)), _recover_done, still_deleted
    ),
    "SecretBackup": Scenario(live, lambda c, n, s: c.backup_secret(n), _backup_done, no_change),
    "SecretRestore": Scenario(backup_blob, lambda c, n, s: c.restore_secret_backup(s), _restore_done, absent),
}


def test_the_matrix_covers_every_operation():
    assert set(SCENARIOS) == {op.name for op in keyvault.OPERATIONS}


@pytest.mark.parametrize("operation", sorted(ACTION_OF))
@pytest.mark.parametrize("role", ROLE_CASES, ids=role_id)
def test_authorization_matrix(matrix, role, operation):
    scenario = SCENARIOS[operation]
    name = unique(operation.lower())
    state = scenario.setup(matrix, name)
    client = matrix.clients[role]
    if operation in ALLOWED[role]:
        result = scenario.call(client, name, state)
        scenario.done(matrix, name, state, result)
    else:
        assert_denied(lambda: scenario.call(client, name, state), ACTION_OF[operation], matrix.vault,
                      matrix.identities[role])
        scenario.untouched(matrix, name, state)


# -- a new vault, scopes, other vaults ------------------------------------------------


def test_a_new_vault_denies_even_the_learner_until_a_role_is_assigned(emulator, matrix, monkeypatch):
    monkeypatch.delenv("AZURE_CLIENT_ID", raising=False)
    name = unique("fresh")
    url = emulator.create_vault(name)["vaultUri"]
    learner = emulator.identity("learner")
    assert emulator.role_assignments(scope=name) == []
    blob = backup_blob(matrix, unique("blob"))
    with DefaultAzureCredential() as credential, SecretClient(url, credential) as client:
        for operation in sorted(ACTION_OF):
            # denied before anything is looked up: the secret need not even exist
            assert_denied(lambda op=operation: SCENARIOS[op].call(client, "app-db-password", blob),
                          ACTION_OF[operation], name, learner)

        emulator.assign_role(USER, "learner", name)
        assert list(client.list_properties_of_secrets()) == []
        assert_denied(lambda: client.set_secret("app-db-password", FAKE_VALUE), ACTION_OF["SecretSet"], name, learner)

        emulator.assign_role(OFFICER, "learner", name)
        assert client.set_secret("app-db-password", FAKE_VALUE).value == FAKE_VALUE
        assert client.get_secret("app-db-password").value == FAKE_VALUE


def test_a_secret_scoped_role_reaches_that_secret_only(emulator):
    url = officer_vault(emulator, "scope")
    vault = vault_name(url)
    identity = emulator.create_identity(unique("id-scoped"))
    assignment = emulator.assign_role(USER, identity["clientId"], f"{vault}/secrets/app-db-password")
    assert assignment["scope"].endswith(f"/vaults/{vault}/secrets/app-db-password")
    with DefaultAzureCredential() as learner, SecretClient(url, learner) as officer:
        first = officer.set_secret("app-db-password", FAKE_VALUE)
        second = officer.set_secret("app-db-password", OTHER_FAKE_VALUE)
        officer.set_secret("other-secret", FAKE_VALUE)
    with DefaultAzureCredential(managed_identity_client_id=identity["clientId"]) as credential, \
            SecretClient(url, credential) as client:
        assert client.get_secret("app-db-password").value == OTHER_FAKE_VALUE
        assert client.get_secret("app-db-password", first.properties.version).value == FAKE_VALUE
        versions = {p.version for p in client.list_properties_of_secret_versions("app-db-password")}
        assert versions == {first.properties.version, second.properties.version}

        message = assert_denied(lambda: client.get_secret("other-secret"), ACTION_OF["SecretGet"], vault, identity)
        assert f"/vaults/{vault}/secrets/other-secret'" in message
        assert_denied(lambda: list(client.list_properties_of_secrets()), ACTION_OF["SecretList"], vault, identity)
        assert_denied(lambda: list(client.list_deleted_secrets()), ACTION_OF["SecretListDeleted"], vault, identity)
        # Secrets User at the secret still cannot write it
        assert_denied(lambda: client.set_secret("app-db-password", FAKE_VALUE), ACTION_OF["SecretSet"], vault, identity)


def test_a_role_on_one_vault_gives_nothing_on_another(emulator):
    urls = {env: officer_vault(emulator, f"kv-{env}-") for env in ("dev", "staging", "prod")}
    vaults = {env: vault_name(url) for env, url in urls.items()}
    identity = emulator.create_identity(unique("id-dev-app"))
    emulator.assign_role(OFFICER, identity["name"], vaults["dev"])
    # another identity's Administrator role on prod gives this one nothing there either
    admin = emulator.create_identity(unique("id-prod-admin"))
    emulator.assign_role(ADMINISTRATOR, admin["name"], vaults["prod"])
    with DefaultAzureCredential(managed_identity_client_id=identity["clientId"]) as credential:
        with SecretClient(urls["dev"], credential) as dev:
            assert dev.set_secret("app-db-password", FAKE_VALUE).value == FAKE_VALUE
            assert dev.get_secret("app-db-password").value == FAKE_VALUE
        for env in ("staging", "prod"):
            with SecretClient(urls[env], credential) as other:
                assert_denied(lambda: other.get_secret("app-db-password"), ACTION_OF["SecretGet"], vaults[env], identity)
                assert_denied(lambda: other.set_secret("app-db-password", FAKE_VALUE), ACTION_OF["SecretSet"],
                              vaults[env], identity)
                assert_denied(lambda: list(other.list_properties_of_secrets()), ACTION_OF["SecretList"],
                              vaults[env], identity)
    assert [a["scope"].rsplit("/", 1)[-1] for a in emulator.role_assignments(assignee=identity["name"])] == [
        vaults["dev"]
    ]


# -- which identity a credential is ------------------------------------------------------


def test_azure_client_id_in_the_environment_selects_the_identity(emulator, monkeypatch):
    url = officer_vault(emulator, "envid")
    vault = vault_name(url)
    reader = emulator.create_identity(unique("id-env-reader"))
    emulator.assign_role(READER, reader["principalId"], vault)
    monkeypatch.delenv("AZURE_CLIENT_ID", raising=False)
    with DefaultAzureCredential() as learner, SecretClient(url, learner) as client:
        client.set_secret("app-db-password", FAKE_VALUE)

    monkeypatch.setenv("AZURE_CLIENT_ID", reader["clientId"])
    with DefaultAzureCredential() as credential:
        claims = jwt.decode(
            credential.get_token(f"https://localhost:{emulator.port}/.default").token,
            options={"verify_signature": False},
        )
        assert (claims["appid"], claims["oid"]) == (reader["clientId"], reader["principalId"])
        with SecretClient(url, credential) as client:
            assert [p.name for p in client.list_properties_of_secrets()] == ["app-db-password"]
            assert_denied(lambda: client.get_secret("app-db-password"), ACTION_OF["SecretGet"], vault, reader)

    monkeypatch.delenv("AZURE_CLIENT_ID")
    with DefaultAzureCredential() as learner, SecretClient(url, learner) as client:
        assert client.get_secret("app-db-password").value == FAKE_VALUE


def test_the_learner_is_the_default_identity(emulator, monkeypatch):
    monkeypatch.delenv("AZURE_CLIENT_ID", raising=False)
    learner = emulator.identity("learner")
    assert learner["type"] == "User"
    with DefaultAzureCredential() as credential:
        claims = jwt.decode(
            credential.get_token(f"https://localhost:{emulator.port}/.default").token,
            options={"verify_signature": False},
        )
    assert (claims["oid"], claims["appid"]) == (learner["principalId"], learner["clientId"])


def test_the_databricks_identity_is_built_in(emulator):
    databricks = emulator.identity("AzureDatabricks")
    assert databricks["clientId"] == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
    assert databricks["type"] == "ServicePrincipal"
    assert uuid.UUID(databricks["principalId"])
    assert "AzureDatabricks" in [i["name"] for i in emulator.list_identities()]
    with pytest.raises(ValueError, match="built in"):
        emulator.delete_identity("AzureDatabricks")

    url = officer_vault(emulator, "dbx")
    vault = vault_name(url)
    with DefaultAzureCredential() as learner, SecretClient(url, learner) as officer:
        officer.set_secret("storage-key", FAKE_VALUE)
    with DefaultAzureCredential(managed_identity_client_id=databricks["clientId"]) as credential, \
            SecretClient(url, credential) as client:
        assert_denied(lambda: client.get_secret("storage-key"), ACTION_OF["SecretGet"], vault, databricks)
        emulator.assign_role(USER, "AzureDatabricks", vault)
        assert client.get_secret("storage-key").value == FAKE_VALUE


# -- taking access away --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["by-id", "by-name", "by-role-assignee-scope"])
def test_deleting_an_assignment_removes_access(emulator, how):
    url = officer_vault(emulator, "revoke")
    vault = vault_name(url)
    identity = emulator.create_identity(unique("id-revoke"))
    assignment = emulator.assign_role(USER, identity["name"], vault)
    with DefaultAzureCredential() as learner, SecretClient(url, learner) as officer:
        officer.set_secret("app-db-password", FAKE_VALUE)
    with DefaultAzureCredential(managed_identity_client_id=identity["clientId"]) as credential, \
            SecretClient(url, credential) as client:
        assert client.get_secret("app-db-password").value == FAKE_VALUE
        if how == "by-id":
            gone = emulator.delete_role_assignment(assignment["id"])
        elif how == "by-name":
            gone = emulator.delete_role_assignment(assignment["name"])
        else:
            gone = emulator.delete_role_assignment(role=AZURE_ROLES[USER][0], assignee=identity["principalId"],
                                                   scope=vault)
        assert gone == {"name": assignment["name"], "deleted": True}
        assert emulator.role_assignments(assignee=identity["name"]) == []
        # the token the client already holds is still valid; the role is what is gone
        assert_denied(lambda: client.get_secret("app-db-password"), ACTION_OF["SecretGet"], vault, identity)


def test_deleting_an_identity_removes_its_assignments_and_its_tokens(emulator):
    url = officer_vault(emulator, "delid")
    vault = vault_name(url)
    name = unique("id-short-lived")
    identity = emulator.create_identity(name)
    emulator.assign_role(OFFICER, name, vault)
    emulator.assign_role(USER, name, f"{vault}/secrets/app-db-password")
    assert len(emulator.role_assignments(assignee=name)) == 2
    with DefaultAzureCredential(managed_identity_client_id=identity["clientId"]) as credential, \
            SecretClient(url, credential) as client:
        client.set_secret("app-db-password", FAKE_VALUE)
        assert emulator.delete_identity(name) == {"name": name, "deleted": True}
        assert identity["principalId"] not in [a["principalId"] for a in emulator.role_assignments()]
        assert_denied(lambda: client.get_secret("app-db-password"), ACTION_OF["SecretGet"], vault, identity)
    # no new token for an identity that no longer exists
    with DefaultAzureCredential(managed_identity_client_id=identity["clientId"]) as credential:
        with pytest.raises(ClientAuthenticationError):
            credential.get_token(f"https://localhost:{emulator.port}/.default")
    # the same name again is a new principal, with nothing granted
    again = emulator.create_identity(name)
    assert again["principalId"] != identity["principalId"] and again["clientId"] != identity["clientId"]
    assert emulator.role_assignments(assignee=name) == []
    with DefaultAzureCredential(managed_identity_client_id=again["clientId"]) as credential, \
            SecretClient(url, credential) as client:
        assert_denied(lambda: client.get_secret("app-db-password"), ACTION_OF["SecretGet"], vault, again)
