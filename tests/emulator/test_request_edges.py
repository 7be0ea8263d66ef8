"""Edges of the request path that the SDK never produces: raw HTTPS with a valid token."""

from __future__ import annotations

import os

import pytest
import requests


@pytest.fixture
def auth(emulator) -> dict:
    answer = requests.get(
        os.environ["IDENTITY_ENDPOINT"],
        params={"api-version": "2019-08-01", "resource": f"https://localhost:{emulator.port}"},
        headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]},
        timeout=10,
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_an_encoded_slash_stays_inside_the_name(vault_url, auth):
    # /secrets/a%2Fversions names one (invalid) secret, not the versions of "a"
    answer = requests.get(f"{vault_url}secrets/a%2Fversions", params={"api-version": "7.6"}, headers=auth, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == {"code": "BadParameter", "message": "The request URI contains an invalid name: a/versions"}


@pytest.mark.parametrize("path", ["secrets", "deletedsecrets", "secrets/some-name/versions"])
@pytest.mark.parametrize("token", ["not-base64-!!", "bjp4", "djox"])  # garbage, and tokens of another list
def test_a_skiptoken_the_emulator_did_not_issue_is_refused(vault_url, auth, path, token):
    answer = requests.get(
        f"{vault_url}{path}", params={"api-version": "7.6", "$skiptoken": token}, headers=auth, timeout=10
    )
    if path.endswith("versions"):  # versions of a secret that does not exist: an empty list, as the service
        assert answer.status_code == 200 and answer.json() == {"value": [], "nextLink": None}
        return
    if (path, token) in (("secrets", "bjp4"), ("deletedsecrets", "bjp4")):  # "n:x", a valid name token
        assert answer.status_code == 200
        return
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "The $skiptoken parameter is invalid."


def test_a_versions_token_is_checked_when_the_secret_exists(vault_url, auth):
    put = requests.put(f"{vault_url}secrets/paged", params={"api-version": "7.6"}, headers=auth,
                       json={"value": "not-a-real-value"}, timeout=10)  # pragma: allowlist secret
    assert put.status_code == 200
    for token, status in (("bjp4", 400), ("djox", 200), ("garbage", 400)):
        answer = requests.get(f"{vault_url}secrets/paged/versions", params={"api-version": "7.6", "$skiptoken": token},
                              headers=auth, timeout=10)
        assert answer.status_code == status, (token, answer.text)


def test_a_name_with_a_trailing_newline_is_not_a_name(vault_url, auth, emulator):
    """Issue #14, defect 8: `^...$` matched "abc\n"; the SDK then listed a second "abc"."""
    answer = requests.put(f"{vault_url}secrets/abc%0A", params={"api-version": "7.6"}, headers=auth,
                          json={"value": "plainly-fake"}, timeout=10)  # pragma: allowlist secret
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadParameter"
    for make in (emulator.create_vault, emulator.create_identity):
        with pytest.raises(ValueError, match="invalid"):
            make("kvnewline\n")


DEEP = b'{"value": ' + b"[" * 1000 + b"]" * 1000 + b"}"


@pytest.mark.parametrize("method, path", [("PUT", "secrets/deep"), ("PATCH", "secrets/deep/"), ("POST", "secrets/restore")])
def test_json_nested_deeper_than_python_parses_is_a_400(vault_url, auth, method, path):
    """Issue #14, defect 7: a RecursionError in json.loads answered 500."""
    answer = requests.request(method, f"{vault_url}{path}", params={"api-version": "7.6"}, data=DEEP,
                              headers={**auth, "Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadParameter", answer.text


@pytest.mark.parametrize("text", ["v:\u00b2", "v:99999999999999999999", "v:" + "9" * 5000])
def test_a_versions_skiptoken_that_is_no_position_is_a_400(vault_url, auth, client, text):
    """Issue #14, defect 7: a superscript digit, a number past SQLite's integers, and 5,000 digits answered 500."""
    import base64

    client.set_secret("paged", "plainly-fake")  # pragma: allowlist secret
    token = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    answer = requests.get(f"{vault_url}secrets/paged/versions", params={"api-version": "7.6", "$skiptoken": token},
                          headers=auth, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadParameter", answer.text


def test_a_callers_long_request_id_is_kept_bounded_in_the_audit_log(vault_url, auth, emulator):
    """Issue #14, defect 6: 1 MB x-ms-client-request-id headers were stored whole (42 MB for 40 requests)."""
    from kvlab.emulator.audit import MAX_FIELD

    long_id = "r" * 50_000  # under the head limit, far over what a record keeps
    answer = requests.get(f"{vault_url}secrets", params={"api-version": "7.6"}, timeout=10,
                          headers={**auth, "x-ms-client-request-id": long_id})
    assert answer.status_code == 200
    [record] = [r for r in emulator.audit(vault=vault_url.split("//")[1].split(".")[0])
                if r["correlationId"].startswith("rrrr")]
    assert len(record["correlationId"]) < MAX_FIELD + 40 and record["correlationId"].endswith("more characters)")


def test_a_content_type_longer_than_the_documented_255_characters_is_refused(client):
    """Issue #14: 900 KB of contentType was accepted and stored with every version."""
    from azure.core.exceptions import HttpResponseError

    client.set_secret("typed", "plainly-fake", content_type="t" * 255)  # pragma: allowlist secret
    for make in (lambda: client.set_secret("typed", "plainly-fake", content_type="t" * 256),  # pragma: allowlist secret
                 lambda: client.update_secret_properties("typed", content_type="t" * 256)):
        with pytest.raises(HttpResponseError) as refused:
            make()
        assert refused.value.status_code == 400 and "255 characters" in refused.value.message
    assert client.get_secret("typed").properties.content_type == "t" * 255
