"""The managed-identity endpoint and the vault's token checks, over raw HTTPS.

The SDK never sends a forged token, so these requests are made by hand with
`requests` (which trusts the emulator's CA through the bundle connect() set).
"""

from __future__ import annotations

import base64
import json
import os
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from kvlab.emulator.store import Store


def token_request(params: dict, header: str | None) -> requests.Response:
    headers = {"X-IDENTITY-HEADER": header} if header is not None else {}
    return requests.get(os.environ["IDENTITY_ENDPOINT"], params=params, headers=headers, timeout=10)


@pytest.fixture
def resource(emulator) -> str:
    return f"https://localhost:{emulator.port}"


@pytest.fixture
def token(resource) -> str:
    answer = token_request({"api-version": "2019-08-01", "resource": resource}, os.environ["IDENTITY_HEADER"])
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def get_secrets(vault_url: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{vault_url}secrets", params={"api-version": "7.4"}, headers=headers, timeout=10)


def assert_challenged(answer: requests.Response, resource: str, message_start: str) -> None:
    assert answer.status_code == 401, answer.text
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer authorization="https://login.windows.net/')
    assert f'resource="{resource}"' in challenge
    assert answer.json()["error"]["code"] == "Unauthorized"
    assert answer.json()["error"]["message"].startswith(message_start)


def test_token_answer_has_the_app_service_shape(resource):
    answer = token_request({"api-version": "2019-08-01", "resource": resource}, os.environ["IDENTITY_HEADER"])
    body = answer.json()
    assert set(body) >= {"access_token", "expires_on", "resource", "token_type"}
    assert body["resource"] == resource and body["token_type"] == "Bearer"
    assert 23 * 3600 < int(body["expires_on"]) - time.time() <= 24 * 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == resource
    assert claims["iss"].startswith("https://sts.windows.net/")
    assert {"oid", "appid", "tid", "exp"} <= set(claims)


@pytest.mark.parametrize("header", [None, "", "wrong-secret"])
def test_endpoint_refuses_callers_without_the_identity_header(resource, header):
    answer = token_request({"api-version": "2019-08-01", "resource": resource}, header)
    assert answer.status_code == 401
    assert "access_token" not in answer.text


@pytest.mark.parametrize(
    "params, status",
    [({"api-version": "2017-09-01"}, 400), ({}, 400), ({"api-version": "2019-08-01", "client_id": "00000000-0000-0000-0000-000000000000"}, 400)],
)
def test_endpoint_refuses_bad_requests(resource, params, status):
    answer = token_request({"resource": resource, **params}, os.environ["IDENTITY_HEADER"])
    assert answer.status_code == status
    assert answer.json()["statusCode"] == status and answer.json()["message"]


def test_a_valid_token_is_accepted(vault_url, token):
    assert get_secrets(vault_url, token).status_code == 200


def test_no_token_gets_the_challenge(vault_url, resource):
    assert_challenged(get_secrets(vault_url, None), resource, "AKV10000: Request is missing a Bearer or PoP token.")


def test_a_token_for_another_audience_is_refused(vault_url, resource):
    other = token_request(
        {"api-version": "2019-08-01", "resource": "https://management.azure.com"}, os.environ["IDENTITY_HEADER"]
    ).json()["access_token"]
    assert_challenged(get_secrets(vault_url, other), resource, "AKV10022: Invalid audience. Expected")


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_tampered_token_is_refused(vault_url, token, resource):
    header, payload, signature = _segments(token)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["oid"] = "00000000-0000-0000-0000-000000000001"
    forged = ".".join([header, _b64(claims), signature])
    assert_challenged(get_secrets(vault_url, forged), resource, "AKV10046")


def test_an_unsigned_token_is_refused(vault_url, token, resource):
    _, payload, _ = _segments(token)
    unsigned = ".".join([_b64({"alg": "none", "typ": "JWT"}), payload, ""])
    assert get_secrets(vault_url, unsigned).status_code == 401


def test_a_token_signed_by_another_key_is_refused(vault_url, token, resource):
    claims = jwt.decode(token, options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": "kvlab"})
    assert_challenged(get_secrets(vault_url, forged), resource, "AKV10046")


def test_an_expired_token_is_refused(emulator, vault_url, token, resource):
    store = Store(emulator.state_dir / "kvlab.db")
    try:
        key = store.get_meta("signing_key")
    finally:
        store.close()
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    expired = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "kvlab"})
    assert_challenged(get_secrets(vault_url, expired), resource, "[TokenExpired]")


def test_garbage_in_the_authorization_header_is_challenged(vault_url, resource):
    assert get_secrets(vault_url, "not-a-jwt").status_code == 401
