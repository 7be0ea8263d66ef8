"""Every response body the emulator sends conforms to the official Key Vault secrets spec.

Two sources of responses, both checked by `spec_validation.SpecValidator` (strict:
a field the spec does not name fails, formats are checked, errors carry code and
message):

* raw HTTPS with `requests` and a managed-identity bearer token, driving each of
  the spec's twelve operations to success and to the errors the service answers
  (400, 401, 403, 404, 409, 413), as recorded in /work/notes/kv-errors.md;
* the SDK's own traffic: a `SecretClient` workflow (sync and async) whose every
  response is captured with azure-core's public ``raw_response_hook``.

The validator's strictness is itself tested at the end, so a lax validator
cannot make these tests pass.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
import requests

from spec_validation import SpecValidator, identity_token, load_spec

API_VERSION = "2026-04-01"


@pytest.fixture(scope="module")
def validator(spec_path) -> SpecValidator:
    return SpecValidator(load_spec(spec_path))


@pytest.fixture(scope="module")
def token(emulator) -> str:
    return identity_token(emulator.port)


class RawVault:
    """Raw HTTPS to one vault. Every answer is checked against the spec on arrival."""

    def __init__(self, url: str, token: str | None, validator: SpecValidator):
        self.url = url.rstrip("/")
        self.validator = validator
        self.http = requests.Session()
        self.http.verify = os.environ["REQUESTS_CA_BUNDLE"]  # the kvlab trust bundle; TLS is verified
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        self.answered: set[tuple[str, int]] = set()  # (operationId, status) checked so far

    def call(
        self, method: str, path: str, *, json: object = None, data: bytes | str | None = None,
        params: dict | None = None, api_version: str | None = API_VERSION, expect: int | None = None,
    ) -> requests.Response:
        """Send one request (``path`` relative to the vault, or a full nextLink) and check the answer."""
        url = path if path.startswith("https://") else self.url + path
        query = {} if api_version is None or "api-version=" in url else {"api-version": api_version}
        query.update(params or {})
        headers = {"Content-Type": "application/json"} if data is not None else None
        response = self.http.request(
            method, url, params=query, json=json, data=data, headers=headers, timeout=30
        )
        operation = self.validator.check(
            method, response.url, response.status_code, response.headers.get("content-type"),
            response.content,
        )
        self.answered.add((operation, response.status_code))
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def set(self, name: str, value: str = "v", **body) -> dict:
        return self.call("PUT", f"/secrets/{name}", json={"value": value, **body}, expect=200).json()

    def delete(self, name: str) -> dict:
        return self.call("DELETE", f"/secrets/{name}", expect=200).json()

    def pages(self, path: str, maxresults: int) -> list[dict]:
        """Every page of a list, following nextLink as a client does."""
        pages = [self.call("GET", path, params={"maxresults": maxresults}, expect=200).json()]
        while pages[-1]["nextLink"]:
            assert len(pages) < 50, "nextLink never ends"
            pages.append(self.call("GET", pages[-1]["nextLink"], expect=200).json())
        return pages


@pytest.fixture
def kv(vault_url, token, validator):
    vault = RawVault(vault_url, token, validator)
    yield vault
    vault.http.close()


def version_of(bundle: dict) -> str:
    return bundle["id"].rsplit("/", 1)[1]


# -- every operation, answering success --------------------------------------


def test_every_operation_succeeds_with_a_conforming_body(kv, validator):
    now = int(dt.datetime.now(dt.timezone.utc).timestamp())
    first = kv.set(
        "db-password", "s3cret!", contentType="text/plain", tags={"env": "dev", "owner": "data"},
        attributes={"enabled": True, "nbf": now - 60, "exp": now + 86400},
    )
    second = kv.set("db-password", "rotated")
    kv.set("api-key", "")  # the service accepts an empty value (kv-errors.md section 6)

    assert kv.call("GET", "/secrets/db-password/", expect=200).json()["value"] == "rotated"
    assert kv.call("GET", f"/secrets/db-password/{version_of(first)}", expect=200).json()["value"] == "s3cret!"
    kv.call(
        "PATCH", f"/secrets/db-password/{version_of(first)}", expect=200,
        json={"contentType": "text/csv", "tags": {"env": "test"}, "attributes": {"enabled": False, "exp": now + 7200}},
    )
    kv.call("PATCH", "/secrets/db-password/", json={"tags": {}}, expect=200)

    listed = kv.call("GET", "/secrets", expect=200).json()
    assert sorted(item["id"].rsplit("/", 1)[1] for item in listed["value"]) == ["api-key", "db-password"]
    versions = kv.call("GET", "/secrets/db-password/versions", expect=200).json()
    assert {version_of(v) for v in versions["value"]} == {version_of(first), version_of(second)}

    blob = kv.call("POST", "/secrets/db-password/backup", expect=200).json()["value"]

    deleted = kv.delete("db-password")
    assert deleted["recoveryId"].endswith("/deletedsecrets/db-password")
    kv.call("GET", "/deletedsecrets", expect=200)
    kv.call("GET", "/deletedsecrets/db-password", expect=200)
    kv.call("POST", "/deletedsecrets/db-password/recover", expect=200)

    kv.delete("db-password")
    purged = kv.call("DELETE", "/deletedsecrets/db-password", expect=204)
    assert purged.content == b""
    restored = kv.call("POST", "/secrets/restore", json={"value": blob}, expect=200).json()
    assert version_of(restored) == version_of(second)

    succeeded = {operation for operation, status in kv.answered if status < 300}
    assert succeeded == validator.operation_ids, validator.operation_ids - succeeded


def test_list_pages_conform_and_end_with_an_explicit_null_next_link(kv):
    for name in ("a1", "a2", "a3", "gone1", "gone2"):
        kv.set(name, "one")
    kv.set("a1", "two")
    kv.set("a1", "three")
    kv.delete("gone1")
    kv.delete("gone2")

    for path, expected in (
        ("/secrets", {"a1", "a2", "a3"}),
        ("/secrets/a1/versions", 3),
        ("/deletedsecrets", {"gone1", "gone2"}),
    ):
        pages = kv.pages(path, maxresults=1)
        items = [item for page in pages for item in page["value"]]
        if isinstance(expected, set):
            assert {item["id"].rsplit("/", 1)[1] for item in items} == expected
        else:
            assert len(items) == expected
        assert all(isinstance(page["nextLink"], str) for page in pages[:-1])
        assert "nextLink" in pages[-1] and pages[-1]["nextLink"] is None

    # versions of an unknown secret: an empty list, not a 404 (kv-errors.md section 7)
    empty = kv.call("GET", "/secrets/never-set/versions", expect=200).json()
    assert empty == {"value": [], "nextLink": None}


# -- errors: every operation's failures, with the service's codes --------------

ERRORS = []


def error(status: int, code: str, inner: str | None = None):
    """Register a scenario: it sends requests through a RawVault and returns the one to judge."""

    def register(make):
        ERRORS.append(pytest.param(make, status, code, inner, id=make.__name__))
        return make

    return register


@error(404, "SecretNotFound")
def get_unknown_secret(kv):
    return kv.call("GET", "/secrets/never-set/")


@error(404, "SecretNotFound")
def get_unknown_version(kv):
    kv.set("s")
    return kv.call("GET", "/secrets/s/" + "0" * 32)


@error(400, "BadParameter")
def get_invalid_name(kv):
    return kv.call("GET", "/secrets/bad_name/")


@error(400, "BadParameter")
def get_invalid_version(kv):
    kv.set("s")
    return kv.call("GET", "/secrets/s/not-a-version")


@error(403, "Forbidden", "SecretDisabled")
def get_disabled_secret(kv):
    kv.set("s", attributes={"enabled": False})
    return kv.call("GET", "/secrets/s/")


@error(403, "Forbidden", "SecretDisabled")
def get_disabled_version(kv):
    version = version_of(kv.set("s"))
    kv.call("PATCH", f"/secrets/s/{version}", json={"attributes": {"enabled": False}}, expect=200)
    return kv.call("GET", f"/secrets/s/{version}")


@error(400, "BadParameter")
def set_invalid_name(kv):
    return kv.call("PUT", "/secrets/bad.name", json={"value": "v"})


@error(409, "Conflict", "ObjectIsDeletedButRecoverable")
def set_deleted_name(kv):
    kv.set("s")
    kv.delete("s")
    return kv.call("PUT", "/secrets/S", json={"value": "v"})  # names compare case-insensitively


@error(400, "BadParameter", "SecretTooLarge")
def set_value_too_large(kv):
    return kv.call("PUT", "/secrets/s", json={"value": "x" * (25 * 1024 + 1)})


@error(400, "BadParameter")
def set_too_many_tags(kv):
    return kv.call("PUT", "/secrets/s", json={"value": "v", "tags": {f"t{i}": "v" for i in range(16)}})


@error(400, "BadParameter")
def set_malformed_json(kv):
    return kv.call("PUT", "/secrets/s", data='{"value": ')


@error(400, "BadParameter")
def set_without_value(kv):
    return kv.call("PUT", "/secrets/s", json={"contentType": "text/plain"})


@error(400, "BadParameter")
def set_unpaired_surrogate(kv):
    # valid JSON text that decodes to no Unicode string; this once answered a bare 500
    return kv.call("PUT", "/secrets/s", data='{"value": "\\ud800"}')


@error(413, "RequestEntityTooLarge")
def set_body_too_large(kv):
    return kv.call("PUT", "/secrets/s", json={"value": "x" * (1024 * 1024 + 1)})


@error(404, "SecretNotFound")
def update_unknown_secret(kv):
    return kv.call("PATCH", "/secrets/never-set/", json={"contentType": "x"})


@error(400, "BadParameter")
def update_bad_attributes(kv):
    kv.set("s")
    return kv.call("PATCH", "/secrets/s/", json={"attributes": {"exp": "tomorrow"}})


@error(404, "SecretNotFound")
def delete_unknown_secret(kv):
    return kv.call("DELETE", "/secrets/never-set")


@error(404, "SecretNotFound")
def backup_unknown_secret(kv):
    return kv.call("POST", "/secrets/never-set/backup")


@error(400, "Malformed backup blob")
def restore_garbage_blob(kv):
    return kv.call("POST", "/secrets/restore", json={"value": "bm9uLWV4aXN0aW5n"})


@error(400, "BadParameter")
def restore_without_value(kv):
    return kv.call("POST", "/secrets/restore", json={})


@error(409, "Conflict")
def restore_name_in_use(kv):
    kv.set("s")
    blob = kv.call("POST", "/secrets/s/backup", expect=200).json()["value"]
    return kv.call("POST", "/secrets/restore", json={"value": blob})


@error(400, "BadParameter")
def list_maxresults_zero(kv):
    return kv.call("GET", "/secrets", params={"maxresults": 0})


@error(400, "BadParameter")
def versions_bad_skiptoken(kv):
    kv.set("s")
    return kv.call("GET", "/secrets/s/versions", params={"$skiptoken": "bm90LWEtbnVtYmVy"})


@error(400, "BadParameter")
def list_unknown_api_version(kv):
    return kv.call("GET", "/secrets", api_version="1999-01-01")


@error(400, "BadParameter")
def list_without_api_version(kv):
    return kv.call("GET", "/secrets", api_version=None)


@error(400, "BadParameter")
def versions_maxresults_too_large(kv):
    kv.set("s")
    return kv.call("GET", "/secrets/s/versions", params={"maxresults": 26})


@error(400, "BadParameter")
def deleted_list_maxresults_too_large(kv):
    return kv.call("GET", "/deletedsecrets", params={"maxresults": 26})


@error(404, "SecretNotFound")
def get_unknown_deleted_secret(kv):
    return kv.call("GET", "/deletedsecrets/never-set")


@error(404, "SecretNotFound")
def purge_unknown_deleted_secret(kv):
    return kv.call("DELETE", "/deletedsecrets/never-set")


@error(404, "SecretNotFound")
def purge_live_secret(kv):
    kv.set("s")
    return kv.call("DELETE", "/deletedsecrets/s")


@error(404, "SecretNotFound")
def recover_unknown_deleted_secret(kv):
    return kv.call("POST", "/deletedsecrets/never-set/recover")


@error(401, "Unauthorized")
def no_token(kv):
    anonymous = RawVault(kv.url, None, kv.validator)
    answer = anonymous.call("GET", "/secrets/s/")
    assert answer.headers["WWW-Authenticate"].startswith('Bearer authorization="https://login.windows.net/')
    return answer


@error(401, "Unauthorized")
def token_for_another_audience(kv):
    answer = requests.get(
        os.environ["IDENTITY_ENDPOINT"],
        headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]},
        params={"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
        timeout=10,
    )
    foreign = RawVault(kv.url, answer.json()["access_token"], kv.validator)
    return foreign.call("PUT", "/secrets/s", json={"value": "v"})


@error(405, "MethodNotAllowed")
def undeclared_method(kv):
    answer = kv.call("PUT", "/secrets")
    assert answer.headers["Allow"] == "GET"
    return answer


@pytest.mark.parametrize(("make", "status", "code", "inner"), ERRORS)
def test_error_bodies_conform(kv, make, status, code, inner):
    answer = make(kv)
    assert answer.status_code == status, answer.text
    body = answer.json()["error"]
    assert body["code"] == code, body
    assert (body.get("innererror") or {}).get("code") == inner, body
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"


def test_unknown_vault_answers_a_keyvault_error(emulator, token, validator):
    vault = RawVault(emulator.vault_url("no-such-vault"), token, validator)
    answer = vault.call("GET", "/secrets", expect=404)
    assert answer.json()["error"]["code"] == "VaultNotFound"


# -- the SDK's own traffic ------------------------------------------------------


class Recorder:
    """A ``raw_response_hook`` (azure-core public API): keeps every response the client receives."""

    def __init__(self):
        self.responses: list[tuple[str, str, int, str | None, bytes]] = []

    def __call__(self, pipeline_response) -> None:
        request, response = pipeline_response.http_request, pipeline_response.http_response
        self.responses.append(
            (request.method, request.url, response.status_code, response.headers.get("content-type"), response.body())
        )

    def check(self, validator: SpecValidator) -> set[str]:
        return {validator.check(*response) for response in self.responses}


def sdk_workflow_sync(client, HttpResponseError, ResourceExistsError, ResourceNotFoundError) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    first = client.set_secret(
        "sdk-secret", "v1", content_type="text/plain", tags={"env": "dev"},
        not_before=now - dt.timedelta(minutes=1), expires_on=now + dt.timedelta(days=1),
    )
    client.set_secret("sdk-secret", "v2")
    client.set_secret("sdk-other", "x")
    assert client.get_secret("sdk-secret").value == "v2"
    assert client.get_secret("sdk-secret", first.properties.version).value == "v1"
    client.update_secret_properties("sdk-secret", first.properties.version, enabled=False)
    with pytest.raises(HttpResponseError) as disabled:
        client.get_secret("sdk-secret", first.properties.version)
    assert disabled.value.status_code == 403
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("sdk-missing")
    assert len(list(client.list_properties_of_secrets(max_page_size=1))) == 2
    assert len(list(client.list_properties_of_secret_versions("sdk-secret", max_page_size=1))) == 2
    blob = client.backup_secret("sdk-secret")
    client.begin_delete_secret("sdk-secret").result()
    client.begin_delete_secret("sdk-other").result()
    with pytest.raises(ResourceExistsError):
        client.set_secret("sdk-other", "again")
    assert client.get_deleted_secret("sdk-secret").name == "sdk-secret"
    assert len(list(client.list_deleted_secrets(max_page_size=1))) == 2
    client.begin_recover_deleted_secret("sdk-other").result()
    client.purge_deleted_secret("sdk-secret")
    assert client.restore_secret_backup(blob).name == "sdk-secret"
    with pytest.raises(ResourceExistsError):
        client.restore_secret_backup(blob)


def test_sdk_traffic_conforms(vault_url, validator):
    from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    recorder = Recorder()
    with DefaultAzureCredential() as credential, SecretClient(
        vault_url, credential, raw_response_hook=recorder
    ) as client:
        sdk_workflow_sync(client, HttpResponseError, ResourceExistsError, ResourceNotFoundError)
    statuses = {status for _, _, status, _, _ in recorder.responses}
    assert {200, 204, 401, 403, 404, 409} <= statuses, statuses  # the challenge and the errors were seen too
    assert recorder.check(validator) >= validator.operation_ids


async def test_async_sdk_traffic_conforms(vault_url, validator):
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.identity.aio import DefaultAzureCredential
    from azure.keyvault.secrets.aio import SecretClient

    recorder = Recorder()
    async with DefaultAzureCredential() as credential, SecretClient(
        vault_url, credential, raw_response_hook=recorder
    ) as client:
        first = await client.set_secret("async-secret", "v1", tags={"a": "b"})
        await client.set_secret("async-secret", "v2")
        await client.get_secret("async-secret")
        await client.update_secret_properties("async-secret", first.properties.version, enabled=False)
        with pytest.raises(HttpResponseError):
            await client.get_secret("async-secret", first.properties.version)
        with pytest.raises(ResourceNotFoundError):
            await client.get_secret("async-missing")
        assert [p.name async for p in client.list_properties_of_secrets(max_page_size=1)] == ["async-secret"]
        assert len([p async for p in client.list_properties_of_secret_versions("async-secret")]) == 2
        blob = await client.backup_secret("async-secret")
        await client.delete_secret("async-secret")
        await client.get_deleted_secret("async-secret")
        assert len([p async for p in client.list_deleted_secrets()]) == 1
        await client.recover_deleted_secret("async-secret")
        await client.delete_secret("async-secret")
        await client.purge_deleted_secret("async-secret")
        await client.restore_secret_backup(blob)
    assert recorder.check(validator) >= validator.operation_ids


# -- the validator is strict -------------------------------------------------------

BUNDLE = {
    "value": "v", "id": "https://kv.localhost:1/secrets/s/" + "a" * 32, "contentType": "text/plain",
    "tags": {"env": "dev"},
    "attributes": {
        "enabled": True, "created": 1700000000, "updated": 1700000000,
        "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90,
    },
}


def _with(path: str, value: object) -> dict:
    """BUNDLE with one field replaced (``value=...`` deletes it); path is dotted."""
    body = json.loads(json.dumps(BUNDLE))
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        pytest.param("GET", "/secrets/s/", 200, _with("contentype", "x"), id="misspelled-field"),
        pytest.param("GET", "/secrets/s/", 200, _with("attributes.recoveryDays", 90), id="misspelled-attribute"),
        pytest.param("GET", "/secrets/s/", 200, _with("attributes.created", "1700000000"), id="date-as-string"),
        pytest.param("GET", "/secrets/s/", 200, _with("attributes.created", 1.7e9), id="date-as-float"),
        pytest.param("GET", "/secrets/s/", 200, _with("attributes.enabled", "true"), id="bool-as-string"),
        pytest.param("GET", "/secrets/s/", 200, _with("attributes.recoveryLevel", "Recoverable+purgeable"), id="bad-enum"),
        pytest.param("GET", "/secrets/s/", 200, _with("tags.env", 1), id="tag-not-string"),
        pytest.param("GET", "/secrets/s/", 200, _with("value", None), id="null-value"),
        pytest.param("GET", "/secrets/s/", 200, _with("contentType", None), id="null-content-type"),
        pytest.param("GET", "/secrets", 200, {"value": [BUNDLE], "nextLink": None}, id="value-in-list-item"),
        pytest.param("GET", "/secrets", 200, {"value": None, "nextLink": None}, id="null-list"),
        pytest.param("GET", "/secrets", 200, {"value": [], "nextLink": 5}, id="next-link-not-string"),
        pytest.param("POST", "/secrets/s/backup", 200, {"value": "a+b/c=="}, id="backup-not-base64url"),
        pytest.param("DELETE", "/deletedsecrets/s", 200, {}, id="purge-undocumented-success"),
        pytest.param("DELETE", "/deletedsecrets/s", 204, {}, id="purge-204-with-body"),
        pytest.param("GET", "/secrets", 404, {"error": {"code": "NotFound"}}, id="error-without-message"),
        pytest.param("GET", "/secrets", 404, {"error": {"code": "A", "message": "b", "inner": {}}}, id="error-extra-field"),
        pytest.param("GET", "/secrets", 404, {"code": "A", "message": "b"}, id="error-not-enveloped"),
        pytest.param("TRACE", "/secrets", 200, {}, id="success-outside-the-spec"),
    ],
)
def test_validator_rejects(validator, method, path, status, body):
    with pytest.raises(AssertionError):
        validator.check(method, "https://kv.localhost:1" + path, status, "application/json; charset=utf-8", json.dumps(body))


def test_validator_accepts_what_the_service_sends(validator):
    check = validator.check
    url, ct = "https://kv.localhost:1", "application/json; charset=utf-8"
    assert check("GET", url + "/secrets/s/", 200, ct, json.dumps(BUNDLE)) == "GetSecret"
    assert check("GET", url + "/secrets/s/versions", 200, ct, '{"value":[],"nextLink":null}') == "GetSecretVersions"
    assert check("DELETE", url + "/deletedsecrets/s", 204, None, b"") == "PurgeDeletedSecret"
    error = '{"error":{"code":"Forbidden","message":"m","innererror":{"code":"SecretDisabled"}}}'
    assert check("GET", url + "/secrets/s/", 403, ct, error) == "GetSecret"
    with pytest.raises(AssertionError):  # JSON with another media type
        check("GET", url + "/secrets/s/", 200, "text/plain", json.dumps(BUNDLE))
