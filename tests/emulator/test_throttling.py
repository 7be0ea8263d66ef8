"""Key Vault's service limits, applied per vault when its throttling is 'real'.

Per vault and 10-second window: 300 secret creates and 4,000 other operations;
past them the service answers 429 ``Throttled`` with ``Retry-After``, and the
SDK's retry policy waits and recovers by itself. Throttling is off by default.

Each test uses a vault of its own (the limits count per vault), on the session
emulator. The 4,000-operation limit itself is not driven here (4,000 requests
take several seconds, too close to the 10-second window on a busy machine);
what is tested is that it is a separate budget: spent creates do not block reads.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from runners import as_json, kvlab

CREATE_LIMIT = 300
WINDOW = 10.0
FAKE_VALUE = "not-a-real-password"  # pragma: allowlist secret


def kvlab_cli(emulator, *args: str) -> dict:
    return as_json(kvlab(*args, state=emulator.state_dir))


def throttled_vault(emulator, via_cli: bool = False) -> tuple[str, str]:
    """A new vault with throttling 'real' in which the learner holds Secrets Officer."""
    name = f"thr{uuid.uuid4().hex[:12]}"
    if via_cli:
        created = kvlab_cli(emulator, "vault", "create", "--name", name, "--throttling", "real")
        assert created["throttling"] == "real"
    else:
        emulator.create_vault(name, throttling="real")
    emulator.assign_role("Key Vault Secrets Officer", "learner", name)
    assert [v["throttling"] for v in emulator.list_vaults() if v["name"] == name] == ["real"]
    return name, emulator.vault_url(name)


class Exchanges:
    """Every raw HTTP response the client receives (a client-level azure-core hook)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen: list[tuple[float, int, str | None]] = []

    def __call__(self, response) -> None:
        with self.lock:
            self.seen.append((time.monotonic(), response.http_response.status_code,
                              response.http_response.headers.get("Retry-After")))

    def statuses(self) -> list[int]:
        return [status for _, status, _ in self.seen]


def spend_creates(client: SecretClient, count: int = CREATE_LIMIT, prefix: str = "s") -> float:
    """``count`` creates as fast as one client goes; returns how long they took."""
    started = time.monotonic()
    for i in range(count):
        client.set_secret(f"{prefix}{i}", FAKE_VALUE)
    return time.monotonic() - started


def require_within_window(elapsed: float) -> None:
    # The limit counts per 10-second window: the creates must all land in one for the
    # next one to be refused. They take about a second; far more means a starved machine.
    assert elapsed < WINDOW - 1, f"{CREATE_LIMIT} creates took {elapsed:.1f} s, not within one window"


def test_the_301st_create_is_throttled_with_retry_after(emulator):
    name, url = throttled_vault(emulator, via_cli=True)
    with DefaultAzureCredential() as credential, SecretClient(url, credential, retry_total=0) as client:
        elapsed = spend_creates(client)
        require_within_window(elapsed)
        with pytest.raises(HttpResponseError) as caught:
            client.set_secret("one-too-many", FAKE_VALUE)
        # a read counts in the other budget (4,000), so spent creates do not block it
        assert client.get_secret("s0").value == FAKE_VALUE

    error = caught.value
    assert error.status_code == 429
    assert error.error is not None and error.error.code == "Throttled"
    assert error.response.json()["error"]["code"] == "Throttled"
    assert "VaultRequestTypeLimitReached" in error.response.json()["error"]["message"]
    retry_after = error.response.headers["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= WINDOW
    # seconds until the window has room again: the first create leaves it WINDOW s after it was made
    assert int(retry_after) >= int(WINDOW - 1 - elapsed)

    # The refused create stored nothing and is in the audit log as a 429.
    records = [r for r in emulator.audit(vault=name) if r["secretName"] == "one-too-many"]
    assert [(r["operationName"], r["httpStatusCode"], r["resultDescription"]) for r in records] == [
        ("SecretSet", 429, "Throttled")
    ]
    with DefaultAzureCredential() as credential, SecretClient(url, credential, retry_total=0) as client:
        assert "one-too-many" not in {p.name for p in client.list_properties_of_secrets()}


def test_the_sdk_retry_policy_recovers_by_itself(emulator):
    name, url = throttled_vault(emulator)
    exchanges = Exchanges()
    total = CREATE_LIMIT + 10
    with DefaultAzureCredential() as credential, SecretClient(
        url, credential, raw_response_hook=exchanges
    ) as client:
        started = time.monotonic()
        versions = [client.set_secret(f"r{i}", FAKE_VALUE).properties.version for i in range(total)]
        elapsed = time.monotonic() - started
        listed = {p.name for p in client.list_properties_of_secrets()}

    assert len(set(versions)) == total
    assert listed == {f"r{i}" for i in range(total)}
    statuses = exchanges.statuses()
    assert statuses.count(429) >= 1, "the vault never throttled"
    # every throttled attempt was followed by a retry no sooner than Retry-After said
    for index, (when, status, retry_after) in enumerate(exchanges.seen):
        if status == 429:
            assert retry_after is not None and int(retry_after) >= 1
            next_when = exchanges.seen[index + 1][0]
            assert next_when - when >= int(retry_after) - 0.05
    assert elapsed < 3 * WINDOW
    # the audit log saw the same story: exactly the 429s the client saw
    throttled = [r for r in emulator.audit(vault=name) if r["httpStatusCode"] == 429]
    assert len(throttled) == statuses.count(429)
    assert {r["resultDescription"] for r in throttled} == {"Throttled"}


def test_throttling_is_off_by_default(emulator, vault_url):
    name = vault_url.split("//", 1)[1].split(".", 1)[0]
    assert [v["throttling"] for v in emulator.list_vaults() if v["name"] == name] == ["off"]
    exchanges = Exchanges()
    with DefaultAzureCredential() as credential, SecretClient(
        vault_url, credential, retry_total=0, raw_response_hook=exchanges
    ) as client:
        elapsed = spend_creates(client, CREATE_LIMIT + 10)
    assert 429 not in exchanges.statuses()
    assert exchanges.statuses().count(200) == CREATE_LIMIT + 10
    assert elapsed < WINDOW  # nothing waited


def test_vault_update_throttling_off_lifts_the_limit_at_once(emulator):
    name, url = throttled_vault(emulator)
    _, other_url = throttled_vault(emulator)
    with DefaultAzureCredential() as credential, \
            SecretClient(url, credential, retry_total=0) as client, \
            SecretClient(other_url, credential, retry_total=0) as other:
        require_within_window(spend_creates(client))
        with pytest.raises(HttpResponseError) as caught:
            client.set_secret("refused", FAKE_VALUE)
        assert caught.value.status_code == 429
        # the limits count per vault: another throttled vault still has its whole budget
        assert other.set_secret("fine", FAKE_VALUE).name == "fine"

        updated = kvlab_cli(emulator, "vault", "update", "--name", name, "--throttling", "off")
        assert updated["name"] == name and updated["throttling"] == "off"
        # the very next create goes through, well inside the window that refused it
        assert client.set_secret("accepted", FAKE_VALUE).name == "accepted"
        for i in range(20):
            client.set_secret(f"more{i}", FAKE_VALUE)

        # and 'real' applies the limit again (the window still holds the 300 creates)
        assert emulator.update_vault(name, "real")["throttling"] == "real"
        with pytest.raises(HttpResponseError) as again:
            client.set_secret("refused-again", FAKE_VALUE)
        assert again.value.status_code == 429


def test_vault_update_of_an_unknown_vault_fails_with_one_line(emulator):
    result = kvlab("vault", "update", "--name", "no-such-vault-x", "--throttling", "real", state=emulator.state_dir,
                   check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: vault 'no-such-vault-x' does not exist"
