"""The emulated Databricks workspace, through the real `databricks-sdk` (WorkspaceClient and its dbutils).

Every endpoint of the Secrets API 2.0 and the errors Databricks answers with,
mapped by the SDK to its typed errors; Key Vault-backed scopes reading the
vault as the AzureDatabricks application (RBAC and audit log); scope ACLs per
workspace user. The behaviour and its sources are in docs/databricks-behaviour.md.
"""

from __future__ import annotations

import base64
import logging
import uuid

import pytest
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    DatabricksError,
    InvalidParameterValue,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    Unauthenticated,
)
from databricks.sdk.service.workspace import AclPermission, AzureKeyVaultSecretScopeMetadata, ScopeBackendType

from kvlab.emulator.identity import DATABRICKS_APP_ID

from runners import officer_vault

NOT_SECRET = "not-a-real-value-0001"  # pragma: allowlist secret
pytestmark = pytest.mark.usefixtures("leaves_workspace_as_found")


def name(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def workspace(emulator) -> WorkspaceClient:
    """The learner's client, as a notebook gets it: DATABRICKS_HOST and DATABRICKS_TOKEN set by kvlab.connect()."""
    return WorkspaceClient()


def entra_client(emulator) -> WorkspaceClient:
    """The learner signed in with a Microsoft Entra ID token for Azure Databricks (as `az login` gives)."""
    with DefaultAzureCredential() as credential:
        token = credential.get_token(f"{DATABRICKS_APP_ID}/.default").token
    return WorkspaceClient(host=emulator.workspace()["host"], token=token)


def as_user(emulator, user: str) -> WorkspaceClient:
    return WorkspaceClient(host=emulator.workspace()["host"], token=emulator.workspace(user)["token"])


# -- the workspace itself ----------------------------------------------------------------------


def test_the_client_starts_quietly_on_the_workspace_discovery_answer(emulator, caplog):
    with caplog.at_level(logging.WARNING, logger="databricks.sdk"):
        client = WorkspaceClient()
    assert client.config.host == emulator.workspace()["host"]
    assert client.config.workspace_id == emulator.workspace()["host"].split("adb-")[1].split(".")[0]
    assert [r.getMessage() for r in caplog.records] == []


def test_a_wrong_token_is_unauthenticated(emulator):
    client = WorkspaceClient(host=emulator.workspace()["host"], token="dapi" + "0" * 32)
    with pytest.raises(Unauthenticated, match="Invalid access token"):
        list(client.secrets.list_scopes())


def test_the_workspace_host_is_served_with_a_certificate_for_its_name(emulator):
    import requests

    host = emulator.workspace()["host"]
    assert host.startswith("https://adb-") and ".1.localhost:" in host
    answer = requests.get(f"{host}/.well-known/databricks-config", timeout=10)  # TLS verified by the bundle
    assert answer.json()["workspace_id"] == host.split("adb-")[1].split(".")[0]


# -- Databricks-backed scopes --------------------------------------------------------------------


def test_a_databricks_backed_scope_end_to_end(workspace):
    scope = name()
    workspace.secrets.create_scope(scope)
    workspace.secrets.put_secret(scope, "text", string_value=NOT_SECRET)
    workspace.secrets.put_secret(scope, "raw", bytes_value=base64.b64encode(b"\x00\x01binary").decode())
    found = {s.name: s for s in workspace.secrets.list_scopes()}
    assert found[scope].backend_type == ScopeBackendType.DATABRICKS and found[scope].keyvault_metadata is None
    listed = list(workspace.secrets.list_secrets(scope))
    assert [s.key for s in listed] == ["raw", "text"]
    assert all(s.last_updated_timestamp > 1_700_000_000_000 for s in listed)  # epoch milliseconds
    got = workspace.secrets.get_secret(scope, "text")
    assert (got.key, base64.b64decode(got.value).decode()) == ("text", NOT_SECRET)
    assert workspace.dbutils.secrets.get(scope, "text") == NOT_SECRET
    assert workspace.dbutils.secrets.getBytes(scope, "raw") == b"\x00\x01binary"
    assert [m.key for m in workspace.dbutils.secrets.list(scope)] == ["raw", "text"]
    assert scope in [s.name for s in workspace.dbutils.secrets.listScopes()]
    workspace.secrets.delete_secret(scope, "raw")
    assert [s.key for s in workspace.secrets.list_secrets(scope)] == ["text"]
    workspace.secrets.delete_scope(scope)
    assert scope not in [s.name for s in workspace.secrets.list_scopes()]


def test_scope_errors_carry_databricks_codes(workspace):
    scope = name()
    workspace.secrets.create_scope(scope)
    with pytest.raises(ResourceAlreadyExists, match=f"^Scope {scope} already exists!$"):
        workspace.secrets.create_scope(scope)
    with pytest.raises(ResourceDoesNotExist, match="^Scope no-such-scope does not exist!$"):
        list(workspace.secrets.list_secrets("no-such-scope"))
    with pytest.raises(ResourceDoesNotExist, match=f"^Secret does not exist with scope: {scope} and key: nope$"):
        workspace.secrets.get_secret(scope, "nope")
    with pytest.raises(InvalidParameterValue, match="Scope name must consist of"):
        workspace.secrets.create_scope("has spaces")
    with pytest.raises(InvalidParameterValue, match="Secret key must consist of"):
        workspace.secrets.put_secret(scope, "bad/key", string_value=NOT_SECRET)
    with pytest.raises(ResourceDoesNotExist):
        workspace.secrets.delete_secret(scope, "nope")
    # a put with no key at all (the SDK's method always sends one; the REST API does not insist): a 400, not a 500
    with pytest.raises(DatabricksError, match="^Missing required field: key$") as missing:
        workspace.api_client.do("POST", "/api/2.0/secrets/put", body={"scope": scope, "string_value": NOT_SECRET})
    assert missing.value.error_code != "INTERNAL_ERROR"


# -- Key Vault-backed scopes --------------------------------------------------------------------------


@pytest.fixture
def keyvault_scope(emulator):
    """A vault with one secret, and a scope backed by it, created with the learner's Entra ID token."""
    url = officer_vault(emulator, "dbx")
    vault = url.split("//")[1].split(".")[0]
    with DefaultAzureCredential() as credential, SecretClient(url, credential) as client:
        client.set_secret("adls-storage-key", "first-" + NOT_SECRET)
    scope = name("kv")
    resource_id = next(v["id"] for v in emulator.list_vaults() if v["name"] == vault)
    entra_client(emulator).secrets.create_scope(
        scope, scope_backend_type=ScopeBackendType.AZURE_KEYVAULT,
        backend_azure_keyvault=AzureKeyVaultSecretScopeMetadata(resource_id=resource_id, dns_name=url))
    return scope, vault, url, resource_id


def test_a_keyvault_backed_scope_needs_an_entra_id_token_not_a_personal_access_token(emulator, workspace):
    url = officer_vault(emulator, "dbx")
    vault = url.split("//")[1].split(".")[0]
    resource_id = next(v["id"] for v in emulator.list_vaults() if v["name"] == vault)
    metadata = AzureKeyVaultSecretScopeMetadata(resource_id=resource_id, dns_name=url)
    with pytest.raises(InvalidParameterValue, match="^Scope with Azure KeyVault must have userAADToken defined!$"):
        workspace.secrets.create_scope(name(), scope_backend_type=ScopeBackendType.AZURE_KEYVAULT,
                                       backend_azure_keyvault=metadata)
    scope = name()
    entra_client(emulator).secrets.create_scope(scope, scope_backend_type=ScopeBackendType.AZURE_KEYVAULT,
                                                backend_azure_keyvault=metadata)
    listed = {s.name: s for s in workspace.secrets.list_scopes()}[scope]
    assert listed.backend_type == ScopeBackendType.AZURE_KEYVAULT
    assert (listed.keyvault_metadata.resource_id, listed.keyvault_metadata.dns_name) == (resource_id, url)


@pytest.mark.parametrize("field, wrong, says", [
    ("resource_id", "/subscriptions/x/resourceGroups/kvlab/providers/Microsoft.KeyVault/vaults/kv-none-here",
     "does not exist"),
    ("dns_name", "https://kv-other.vault.azure.net/", "does not match"),
])
def test_a_keyvault_backed_scope_must_name_an_existing_vault_consistently(emulator, field, wrong, says):
    url = officer_vault(emulator, "dbx")
    vault = url.split("//")[1].split(".")[0]
    given = {"resource_id": next(v["id"] for v in emulator.list_vaults() if v["name"] == vault), "dns_name": url}
    given[field] = wrong
    with pytest.raises(InvalidParameterValue, match=says):
        entra_client(emulator).secrets.create_scope(name(), scope_backend_type=ScopeBackendType.AZURE_KEYVAULT,
                                                    backend_azure_keyvault=AzureKeyVaultSecretScopeMetadata(**given))


def test_the_workspace_reads_the_vault_as_azure_databricks_only_once_it_holds_a_role(emulator, workspace, keyvault_scope):
    scope, vault, url, _ = keyvault_scope
    with pytest.raises(PermissionDenied, match=f"^Invalid permissions on the specified KeyVault {url}. "
                                               "Caller: AzureDatabricks .oid=.*Action: Microsoft.KeyVault/vaults/"
                                               "secrets/getSecret/action; Assignment: .not found."):
        workspace.dbutils.secrets.get(scope, "adls-storage-key")
    denied = emulator.audit(vault=vault)[-1]
    assert (denied["identity"], denied["callerAppId"], denied["operationName"], denied["httpStatusCode"]) == \
        ("AzureDatabricks", DATABRICKS_APP_ID, "SecretGet", 403)

    emulator.assign_role("Key Vault Secrets User", "AzureDatabricks", vault)
    assert workspace.dbutils.secrets.get(scope, "adls-storage-key") == "first-" + NOT_SECRET
    assert [m.key for m in workspace.dbutils.secrets.list(scope)] == ["adls-storage-key"]
    read = emulator.audit(vault=vault)[-1]
    assert (read["identity"], read["operationName"], read["httpStatusCode"]) == ("AzureDatabricks", "SecretList", 200)
    assert all(NOT_SECRET not in str(record) for record in emulator.audit(vault=vault))


def test_a_keyvault_backed_scope_is_a_live_read_only_view_of_the_vault(emulator, workspace, keyvault_scope):
    scope, vault, url, _ = keyvault_scope
    emulator.assign_role("Key Vault Secrets User", "AzureDatabricks", vault)
    with DefaultAzureCredential() as credential, SecretClient(url, credential) as client:
        client.set_secret("adls-storage-key", "rotated-" + NOT_SECRET)
        assert workspace.dbutils.secrets.get(scope, "adls-storage-key") == "rotated-" + NOT_SECRET
        with pytest.raises(BadRequest, match="backed by Azure Key Vault and is read-only"):
            workspace.secrets.put_secret(scope, "adls-storage-key", string_value=NOT_SECRET)
        with pytest.raises(BadRequest, match="read-only"):
            workspace.secrets.delete_secret(scope, "adls-storage-key")

        client.update_secret_properties("adls-storage-key", enabled=False)
        with pytest.raises(PermissionDenied, match="answered 403 SecretDisabled"):
            workspace.dbutils.secrets.get(scope, "adls-storage-key")
        client.begin_delete_secret("adls-storage-key").wait()
    with pytest.raises(ResourceDoesNotExist, match="answered 404 SecretNotFound"):
        workspace.dbutils.secrets.get(scope, "adls-storage-key")
    assert list(workspace.secrets.list_secrets(scope)) == []


# -- scope ACLs ------------------------------------------------------------------------------------------


def test_acls_decide_what_each_workspace_user_may_do(emulator, workspace):
    scope, other = name(), name("ana") + "@example.com"
    emulator.create_workspace_user(other)
    ana = as_user(emulator, other)
    workspace.secrets.create_scope(scope)
    workspace.secrets.put_secret(scope, "k", string_value=NOT_SECRET)
    assert scope in [s.name for s in ana.secrets.list_scopes()]  # scope names are visible to every user
    with pytest.raises(PermissionDenied, match=f"User {other} does not have READ permission on scope {scope}"):
        ana.dbutils.secrets.get(scope, "k")

    workspace.secrets.put_acl(scope, other, AclPermission.READ)
    assert ana.dbutils.secrets.get(scope, "k") == NOT_SECRET
    with pytest.raises(PermissionDenied, match="does not have WRITE permission"):
        ana.secrets.put_secret(scope, "k", string_value="x")
    with pytest.raises(PermissionDenied, match="does not have MANAGE permission"):
        ana.secrets.put_acl(scope, other, AclPermission.MANAGE)
    assert workspace.secrets.get_acl(scope, other).permission == AclPermission.READ
    assert {(a.principal, a.permission) for a in workspace.secrets.list_acls(scope)} == {
        (other, AclPermission.READ), (emulator.workspace()["user"], AclPermission.MANAGE)}

    workspace.secrets.delete_acl(scope, other)
    with pytest.raises(PermissionDenied):
        ana.dbutils.secrets.get(scope, "k")
    with pytest.raises(ResourceDoesNotExist):
        workspace.secrets.get_acl(scope, other)
    with pytest.raises(ResourceDoesNotExist, match="Principal nobody@example.com does not exist"):
        workspace.secrets.put_acl(scope, "nobody@example.com", AclPermission.READ)


def test_a_scope_created_for_all_users_and_a_scope_created_by_another_user(emulator, workspace):
    other = name("bo") + "@example.com"
    emulator.create_workspace_user(other)
    bo = as_user(emulator, other)
    shared, own = name(), name()
    workspace.secrets.create_scope(shared, initial_manage_principal="users")
    bo.secrets.put_secret(shared, "k", string_value=NOT_SECRET)  # MANAGE for every user
    bo.secrets.create_scope(own)
    assert [(a.principal, a.permission) for a in bo.secrets.list_acls(own)] == [(other, AclPermission.MANAGE)]
    assert workspace.secrets.get_acl(own, other).permission == AclPermission.MANAGE  # admins manage every scope


def test_the_workspace_keeps_an_audit_log_of_who_did_what_never_a_value(emulator, workspace):
    scope, other = name(), name("cy") + "@example.com"
    emulator.create_workspace_user(other)
    position = emulator.workspace_audit_position()
    workspace.secrets.create_scope(scope)
    workspace.secrets.put_secret(scope, "k", string_value=NOT_SECRET)
    workspace.dbutils.secrets.get(scope, "k")
    with pytest.raises(PermissionDenied):
        as_user(emulator, other).dbutils.secrets.get(scope, "k")
    events = emulator.workspace_audit(after=position)
    assert [(e["actionName"], e["userIdentity"]["email"], e["requestParams"], e["response"]["statusCode"])
            for e in events] == [
        ("createScope", "learner@kvlab.local", {"scope": scope}, 200),
        ("putSecret", "learner@kvlab.local", {"scope": scope, "key": "k"}, 200),
        ("getSecret", "learner@kvlab.local", {"scope": scope, "key": "k"}, 200),
        ("getSecret", other, {"scope": scope, "key": "k"}, 403),
    ]
    assert events[-1]["response"]["errorMessage"] == f"User {other} does not have READ permission on scope {scope}."[:-1]
    assert all(e["serviceName"] == "secrets" and "databricks-sdk-py/" in e["userAgent"] for e in events)
    assert NOT_SECRET not in str(events)
