"""Resource Manager and Graph in the emulator, over raw HTTPS: what the Azure CLI never sends.

The CLI's own paths are in tests/test_azure_cli.py; these requests carry the
wrong token, the wrong body, the wrong scope, so each refusal's status and
Resource Manager's error shape ({"error": {"code", "message"}}) are checked.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from kvlab.emulator import arm, graph

from runners import API, Arm, token


@pytest.fixture
def learner(emulator) -> Arm:
    return Arm(emulator)


def vault_body(lab, **properties) -> dict:
    return {"location": "westeurope", "properties": {
        "tenantId": lab.identity("learner")["tenantId"], "sku": {"family": "A", "name": "standard"}, "enableRbacAuthorization": True,
        **properties}}


def error(answer: requests.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]["message"]


def test_the_cloud_metadata_is_public_and_names_the_management_audience(emulator):
    answer = requests.get(f"https://{arm.HOST}:{emulator.port}/metadata/endpoints",
                          params={"api-version": "2022-09-01"}, timeout=10)
    assert answer.status_code == 200
    meta = answer.json()
    assert meta["authentication"]["audiences"] == [arm.AUDIENCE]
    assert meta["resourceManager"] == f"https://{arm.HOST}:{emulator.port}/"
    assert meta["suffixes"]["keyVaultDns"] == f"localhost:{emulator.port}"


def test_tokens_resource_manager_refuses(emulator, learner):
    url = f"{learner.base}/subscriptions"
    missing = requests.get(url, params=API, timeout=10)
    error(missing, 401, "AuthenticationFailed")
    assert missing.headers["WWW-Authenticate"].startswith('Bearer authorization_uri="https://login.windows.net/"')
    vaults_token = {"Authorization": f"Bearer {token(emulator.url)}"}
    message = error(requests.get(url, params=API, headers=vaults_token, timeout=10), 401,
                    "InvalidAuthenticationTokenAudience")
    assert arm.AUDIENCE in message
    forged = learner.headers["Authorization"][:-8] + "AAAAAAAA"
    error(requests.get(url, params=API, headers={"Authorization": forged}, timeout=10), 401,
          "InvalidAuthenticationToken")
    # and the other way round: a vault refuses a management token with its own challenge
    vault = emulator.create_vault(f"arm{uuid.uuid4().hex[:10]}")["vaultUri"]
    refused = requests.get(f"{vault}secrets", params={"api-version": "7.4"}, headers=learner.headers, timeout=10)
    assert refused.status_code == 401 and "AKV10022" in refused.json()["error"]["message"]


def test_requests_resource_manager_refuses(emulator, learner):
    error(learner("GET", "/subscriptions", params={}), 400, "MissingApiVersionParameter")
    error(learner("GET", f"/subscriptions/{uuid.uuid4()}/resourcegroups"), 404, "SubscriptionNotFound")
    error(learner("GET", f"{learner.sub}/resourcegroups/rg-{uuid.uuid4().hex[:8]}"), 404, "ResourceGroupNotFound")
    error(learner("PATCH", f"{learner.sub}/resourcegroups/kvlab"), 405, "MethodNotAllowed")
    error(learner("GET", f"{learner.sub}/providers/Microsoft.Web/sites"), 404, "NoRegisteredProviderFound")
    error(learner("PUT", f"{learner.sub}/resourcegroups/kvlab/providers/Microsoft.KeyVault/vaults/x--y",
                  vault_body(emulator)), 400, "VaultNameNotValid")
    error(learner("PUT", f"{learner.sub}/resourcegroups/kvlab/providers/Microsoft.KeyVault/vaults/kv-nolocation",
                  {"properties": {}}), 400, "LocationRequired")
    policies = error(learner("PUT", f"{learner.sub}/resourcegroups/kvlab/providers/Microsoft.KeyVault/vaults/"
                             "kv-policies", vault_body(emulator, enableRbacAuthorization=False)), 400, "BadRequest")
    assert "--enable-rbac-authorization true" in policies
    not_json = requests.put(f"{learner.base}{learner.sub}/resourcegroups/rg-x", params=API, data=b"{",
                            headers={**learner.headers, "Content-Type": "application/json"}, timeout=10)
    error(not_json, 400, "InvalidRequestContent")
    error(learner("PUT", f"{learner.sub}/resourcegroups/kvlab", {"location": "westeurope"}), 409,
          "InvalidResourceGroupLocation")


def test_a_vault_put_twice_is_updated_and_a_name_taken_elsewhere_is_refused(emulator, learner):
    name = f"kv{uuid.uuid4().hex[:12]}"
    path = f"{learner.sub}/resourcegroups/kvlab/providers/Microsoft.KeyVault/vaults/{name}"
    first = learner("PUT", path, {**vault_body(emulator), "tags": {"env": "dev"}})
    assert first.status_code == 200 and first.json()["properties"]["vaultUri"] == emulator.vault_url(name)
    again = learner("PUT", path, {**vault_body(emulator), "tags": {"env": "test"}})
    assert again.status_code == 200 and again.json()["tags"] == {"env": "test"}
    assert learner("PUT", f"{learner.sub}/resourcegroups/rg-elsewhere", {"location": "westeurope"}).status_code in (
        200, 201)
    error(learner("PUT", path.replace("/kvlab/", "/rg-elsewhere/"), vault_body(emulator)), 409, "VaultAlreadyExists")
    error(learner("GET", path.replace("/kvlab/", "/rg-elsewhere/")), 404, "ResourceNotFound")
    for listing in (learner("GET", f"{learner.sub}/resources", params={**API, "$filter": "resourceGroup eq 'kvlab'"}),
                    learner("GET", f"{learner.sub}/resourcegroups/rg-elsewhere/resources")):
        found = {r["name"] for r in listing.json()["value"]}
        assert (name in found) == ("rg-elsewhere" not in listing.url), listing.url
    assert learner("DELETE", path).status_code == 200
    assert learner("DELETE", path).status_code == 204


def test_role_assignments_resource_manager_refuses(emulator, learner):
    name = f"kv{uuid.uuid4().hex[:12]}"
    emulator.create_vault(name)
    scope = f"{learner.sub}/resourceGroups/kvlab/providers/Microsoft.KeyVault/vaults/{name}"
    identity = emulator.create_identity(f"id-{uuid.uuid4().hex[:8]}")
    user = f"{learner.sub}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6"

    def put(at: str, assignment: str, **properties) -> requests.Response:
        body = {"properties": {"roleDefinitionId": user, "principalId": identity["principalId"], **properties}}
        return learner("PUT", f"{at}/providers/Microsoft.Authorization/roleAssignments/{assignment}", body)

    error(put(scope, "not-a-guid"), 400, "InvalidRoleAssignmentId")
    error(put(scope, str(uuid.uuid4()), principalId=identity["clientId"]), 400, "PrincipalNotFound")
    error(put(scope, str(uuid.uuid4()), roleDefinitionId=user.replace("4633458b", "00000000")), 400,
          "RoleDefinitionDoesNotExist")
    error(put(f"{learner.sub}/resourceGroups/kvlab", str(uuid.uuid4())), 400, "InvalidRoleAssignmentScope")
    error(put(scope.replace(name, "kv-not-there"), str(uuid.uuid4())), 404, "ResourceNotFound")
    made = put(f"{scope}/secrets/db-password", str(uuid.uuid4()))
    assert made.status_code == 201 and made.json()["properties"]["scope"].endswith("/secrets/db-password")
    error(put(f"{scope}/secrets/db-password", str(uuid.uuid4())), 409, "RoleAssignmentExists")
    # the same assignment, as the kvlab CLI and the data plane see it
    assert [a["scope"] for a in emulator.role_assignments(identity["name"])] == [made.json()["properties"]["scope"]]


def test_an_identity_with_a_key_vault_role_may_change_nothing_on_the_management_plane(emulator, learner):
    name = f"kv{uuid.uuid4().hex[:12]}"
    emulator.create_vault(name)
    reader = emulator.create_identity(f"id-{uuid.uuid4().hex[:8]}")
    stranger = Arm(emulator, emulator.create_identity(f"id-{uuid.uuid4().hex[:8]}")["clientId"])
    assert stranger.subscription == []  # no role anywhere: Azure lists no subscription to it
    emulator.assign_role("Key Vault Reader", reader["name"], name)
    app = Arm(emulator, reader["clientId"])
    path = f"{app.sub}/resourceGroups/kvlab/providers/Microsoft.KeyVault/vaults/{name}"
    assert app.sub == learner.sub  # a role anywhere in the subscription makes it listed
    message = error(app("PUT", path, vault_body(emulator)), 403, "AuthorizationFailed")
    assert "Microsoft.KeyVault/vaults/write" in message and reader["principalId"] in message
    error(app("PUT", f"{app.sub}/resourcegroups/rg-{uuid.uuid4().hex[:6]}", {"location": "westeurope"}), 403,
          "AuthorizationFailed")


def test_writes_are_in_the_activity_log_and_reads_are_not(emulator, learner):
    group = f"rg-{uuid.uuid4().hex[:8]}"
    assert learner("PUT", f"{learner.sub}/resourcegroups/{group}", {"location": "westeurope",
                                                                   "tags": {"note": "plainly-fake"}}).status_code == 201
    learner("GET", f"{learner.sub}/resourcegroups/{group}")
    events = learner("GET", f"{learner.sub}/providers/Microsoft.Insights/eventtypes/management/values",
                     params={**API, "$filter": f"resourceGroupName eq '{group}'"}).json()["value"]
    assert [(e["operationName"]["value"], e["status"]["value"], e["caller"]) for e in events] == [
        ("Microsoft.Resources/subscriptions/resourceGroups/write", "Succeeded", "learner@kvlab.local")]
    assert "plainly-fake" not in str(events)  # what was sent is never recorded


def test_graph_answers_me_for_the_learner_only_and_names_principals(emulator):
    base = f"https://{graph.HOST}:{emulator.port}/v1.0"
    learner = {"Authorization": f"Bearer {token(graph.audience(emulator.port))}"}
    me = requests.get(f"{base}/me", headers=learner, timeout=10).json()
    assert me["userPrincipalName"] == "learner@kvlab.local"
    identity = emulator.create_identity(f"id-{uuid.uuid4().hex[:8]}")
    app = {"Authorization": f"Bearer {token(graph.audience(emulator.port), identity['clientId'])}"}
    assert requests.get(f"{base}/me", headers=app, timeout=10).status_code == 400
    found = requests.get(f"{base}/servicePrincipals", headers=learner, timeout=10, params={
        "$filter": f"servicePrincipalNames/any(c:c eq '{identity['clientId']}')"}).json()["value"]
    assert [sp["id"] for sp in found] == [identity["principalId"]]
    named = requests.post(f"{base}/directoryObjects/getByIds", headers=learner, timeout=10,
                          json={"ids": [identity["principalId"], me["id"]]}).json()["value"]
    assert {o["displayName"] for o in named} == {identity["name"], "learner"}
    assert requests.get(f"{base}/me", headers={"Authorization": f"Bearer {token(arm.AUDIENCE)}"},
                        timeout=10).status_code == 401  # a management token is not Graph's


def test_purge_protection_from_resource_manager_holds_on_the_data_plane(emulator, learner):
    from azure.core.exceptions import HttpResponseError
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    name = f"kv{uuid.uuid4().hex[:12]}"
    path = f"{learner.sub}/resourcegroups/kvlab/providers/Microsoft.KeyVault/vaults/{name}"
    made = learner("PUT", path, vault_body(emulator, enablePurgeProtection=True))
    assert made.status_code == 200 and made.json()["properties"]["enablePurgeProtection"] is True
    emulator.assign_role("Key Vault Secrets Officer", "learner", name)
    with DefaultAzureCredential() as credential, SecretClient(emulator.vault_url(name), credential) as client:
        stored = client.set_secret("kept", "plainly-fake-kept")  # pragma: allowlist secret
        assert stored.properties.recovery_level == "Recoverable"
        client.begin_delete_secret("kept").wait()
        with pytest.raises(HttpResponseError) as refused:
            client.purge_deleted_secret("kept")
        assert refused.value.status_code == 403 and 'Operation: "purge"' in refused.value.message
        client.begin_recover_deleted_secret("kept").wait()  # still there to recover
    error(learner("PUT", path, vault_body(emulator, enablePurgeProtection=False)), 400, "BadRequest")
    # deleted (soft delete is always on), it cannot be purged: it waits out its retention, recoverable
    assert learner("DELETE", path).status_code == 200
    error(learner("GET", path), 404, "ResourceNotFound")
    deleted = f"{learner.sub}/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/{name}"
    assert learner("GET", deleted).json()["properties"]["purgeProtectionEnabled"] is True
    assert error(learner("POST", f"{deleted}/purge"), 405, "MethodNotAllowed") == \
        "Operation 'DeletedVaultPurge' is not allowed."
    error(learner("PUT", path, vault_body(emulator)), 409, "ConflictError")  # its name stays taken
    with DefaultAzureCredential() as credential, SecretClient(emulator.vault_url(name), credential) as client:
        with pytest.raises(HttpResponseError) as unreachable:
            client.get_secret("kept")
        assert unreachable.value.status_code == 404 and "is deleted" in unreachable.value.message
    recovered = learner("PUT", path, vault_body(emulator, createMode="recover"))
    assert recovered.status_code == 200 and recovered.json()["properties"]["enablePurgeProtection"] is True
    emulator.delete_vault(name, force=True)  # a lesson starting over may


def test_json_nested_deeper_than_python_parses_is_resource_managers_400(learner):
    deep = b'{"location": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    answer = requests.put(f"{learner.base}{learner.sub}/resourcegroups/rg-deep", params=API, data=deep,
                          headers={**learner.headers, "Content-Type": "application/json"}, timeout=10)
    error(answer, 400, "InvalidRequestContent")
