"""Event subscriptions: a vault's secret events POSTed to a webhook as Event Grid does, after its validation handshake.

The webhook is a real HTTP server on loopback; the events are caused through the real SDK (a new version)
and the emulator's clock (near expiry); delivery runs in the emulator's own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from azure.eventgrid import EventGridEvent, SystemEventNames
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from kvlab.emulator.events import SubscriptionError

from runners import officer_vault

KVLAB = str(Path(sys.executable).parent / "kvlab")


class Webhook:
    """A webhook that answers the validation handshake (or not) and records every notification."""

    def __init__(self, echo_code: bool = True, fail_first: int = 0):
        self.echo_code, self.fail_first = echo_code, fail_first
        self.received: list[tuple[dict, list[dict]]] = []  # (headers, events) of each notification
        self.refused = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                events = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                [EventGridEvent.from_dict(e) for e in events]  # Event Grid's own model reads each one
                if self.headers.get("aeg-event-type") == "SubscriptionValidation":
                    assert events[0]["eventType"] == SystemEventNames.EventGridSubscriptionValidationEventName.value
                    body = {"validationResponse": events[0]["data"]["validationCode"]} if hook.echo_code else {}
                    return self._answer(200, body)
                if hook.refused < hook.fail_first:
                    hook.refused += 1
                    return self._answer(500, {})
                hook.received.append((dict(self.headers), events))
                return self._answer(200, {})

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/updates"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [e for _, batch in self.received for e in batch]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.events()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.events()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hooks = []

    def make(**kwargs) -> Webhook:
        hooks.append(Webhook(**kwargs))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


@pytest.fixture
def vault(emulator):
    url = officer_vault(emulator, "ev")
    name = url.split("//")[1].split(".")[0]
    with SecretClient(url, DefaultAzureCredential()) as client:
        yield {"name": name, "client": client}
    for subscription in emulator.event_subscriptions():
        if subscription["vault"] == name:
            emulator.delete_event_subscription(subscription["name"])


def name() -> str:
    return f"sub-{uuid.uuid4().hex[:8]}"


def test_a_webhook_that_answers_the_handshake_receives_new_versions_in_event_grids_schema(emulator, vault, webhook):
    vault["client"].set_secret("before", "fake-before-subscription")  # pragma: allowlist secret
    hook = webhook()
    created = emulator.create_event_subscription(name(), vault["name"], hook.url)
    assert created["eventTypes"] == "all" and created["failedDeliveries"] == 0
    version = vault["client"].set_secret("orders-api-key", "fake-value-1").properties.version  # pragma: allowlist secret
    [event] = hook.wait_for(1)
    headers = hook.received[0][0]
    assert headers["aeg-event-type"] == "Notification"
    assert event["eventType"] == SystemEventNames.KeyVaultSecretNewVersionCreatedEventName.value
    assert event["subject"] == "orders-api-key" and event["data"]["Version"] == version
    assert event["topic"].endswith(f"/providers/Microsoft.KeyVault/vaults/{vault['name']}")
    assert {"id", "eventTime", "dataVersion", "metadataVersion"} <= set(event)
    assert "fake-value" not in json.dumps(hook.received)  # events carry names and versions, never values


def test_the_clock_brings_near_expiry_to_a_subscription_that_asked_only_for_it(emulator, vault, webhook):
    hook = webhook()
    emulator.create_event_subscription(name(), vault["name"], hook.url, ["SecretNearExpiry"])
    vault["client"].set_secret("sql-db-password", "fake-expiring-1",  # pragma: allowlist secret
                               expires_on=datetime.now(timezone.utc) + timedelta(days=40))
    emulator.advance_clock(days=11)
    try:
        [event] = hook.wait_for(1)
    finally:
        emulator.reset_clock()
    assert event["eventType"] == SystemEventNames.KeyVaultSecretNearExpiryEventName.value
    assert event["subject"] == "sql-db-password"
    time.sleep(0.5)  # what else would have come by now: nothing (the new version was filtered out)
    assert len(hook.events()) == 1


def test_a_failing_webhook_gets_its_events_again_in_order(emulator, vault, webhook):
    hook = webhook(fail_first=2)
    subscription = name()
    emulator.create_event_subscription(subscription, vault["name"], hook.url)
    for n in range(3):
        vault["client"].set_secret(f"s{n}", f"fake-{n}")
    events = hook.wait_for(3, timeout=30)
    assert [e["subject"] for e in events] == ["s0", "s1", "s2"] and hook.refused == 2
    assert next(s for s in emulator.event_subscriptions() if s["name"] == subscription)["failedDeliveries"] == 0


def test_a_deleted_subscription_receives_nothing_more(emulator, vault, webhook):
    hook = webhook()
    subscription = name()
    emulator.create_event_subscription(subscription, vault["name"], hook.url)
    vault["client"].set_secret("first", "fake-1")
    hook.wait_for(1)
    emulator.delete_event_subscription(subscription)
    vault["client"].set_secret("second", "fake-2")
    time.sleep(0.6)  # three delivery rounds
    assert [e["subject"] for e in hook.events()] == ["first"]


@pytest.mark.parametrize("endpoint, words", [
    ("https://example.com/api/updates", "delivers only to a webhook on this machine"),
    ("ftp://127.0.0.1/x", "delivers only to a webhook on this machine"),
])
def test_only_loopback_webhooks(emulator, vault, endpoint, words):
    with pytest.raises(SubscriptionError, match=words):
        emulator.create_event_subscription(name(), vault["name"], endpoint)


def test_a_webhook_that_does_not_echo_the_code_is_refused(emulator, vault, webhook):
    with pytest.raises(SubscriptionError, match="Webhook validation handshake failed .* without the validation code"):
        emulator.create_event_subscription(name(), vault["name"], webhook(echo_code=False).url)
    with pytest.raises(SubscriptionError, match="Webhook validation handshake failed"):
        emulator.create_event_subscription(name(), vault["name"], "http://127.0.0.1:9/nobody-listens")
    assert [s for s in emulator.event_subscriptions() if s["vault"] == vault["name"]] == []
    # replacing a subscription with an endpoint that fails the handshake leaves the one there was
    kept, subscription = webhook(), name()
    emulator.create_event_subscription(subscription, vault["name"], kept.url)
    with pytest.raises(SubscriptionError, match="Webhook validation handshake failed"):
        emulator.create_event_subscription(subscription, vault["name"], webhook(echo_code=False).url)
    assert [s["endpoint"] for s in emulator.event_subscriptions() if s["vault"] == vault["name"]] == [kept.url]


def test_the_cli_creates_lists_and_deletes_subscriptions_with_one_line_errors(emulator, vault, webhook):
    hook = webhook()
    subscription = name()
    created = subprocess.run([KVLAB, "events", "subscription", "create", "--name", subscription, "--vault",
                              vault["name"], "--endpoint", hook.url, "--event-type", "SecretExpired"],
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["eventTypes"] == ["Microsoft.KeyVault.SecretExpired"]
    listed = subprocess.run([KVLAB, "events", "subscription", "list", "-o", "table"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "COLUMNS": "250"})
    assert subscription in listed.stdout
    other = officer_vault(emulator, "ev").split("//")[1].split(".")[0]
    for args, words in ((["--name", subscription, "--vault", other, "--endpoint", hook.url],
                         f"there is already an event subscription named {subscription!r}, on {vault['name']}"),
                        (["--name", "x", "--vault", "kv-none", "--endpoint", hook.url], "there is no vault 'kv-none'"),
                        (["--name", "x", "--vault", vault["name"], "--endpoint", hook.url, "--event-type", "Deleted"],
                         "unknown event type 'Deleted'")):
        refused = subprocess.run([KVLAB, "events", "subscription", "create", *args], capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1 and words in refused.stderr
    # the same name on the same vault: replaced, as Event Grid's PUT (az eventgrid event-subscription create) does
    again = webhook()
    replaced = subprocess.run([KVLAB, "events", "subscription", "create", "--name", subscription, "--vault",
                               vault["name"], "--endpoint", again.url], capture_output=True, text=True, timeout=60)
    assert replaced.returncode == 0, replaced.stderr
    assert [(s["endpoint"], s["eventTypes"]) for s in emulator.event_subscriptions() if s["name"] == subscription] \
        == [(again.url, "all")]
    deleted = subprocess.run([KVLAB, "events", "subscription", "delete", "--name", subscription],
                             capture_output=True, text=True, timeout=60)
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["deleted"] is True
    plain = subprocess.run([KVLAB, "events", "--vault", vault["name"]], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0 and isinstance(json.loads(plain.stdout), list)  # `kvlab events` still lists


# -- kvlab.webhook: an Event Grid-triggered function, in the kernel ----------------------------------------


def test_a_handler_gets_each_event_as_event_grids_own_model(emulator, vault):
    from kvlab.webhook import Webhook

    seen = []
    with Webhook(lambda event: seen.append((event.event_type, event.subject, event.data["Version"]))) as hook:
        emulator.create_event_subscription(name(), vault["name"], hook.url)
        version = vault["client"].set_secret("api-key", "fake-api-key-1").properties.version  # pragma: allowlist secret
        [event] = hook.wait(1)
    assert isinstance(event, EventGridEvent)
    assert seen == [(SystemEventNames.KeyVaultSecretNewVersionCreatedEventName.value, "api-key", version)]


def test_a_handler_that_raises_gets_the_event_again_and_the_error_is_kept(emulator, vault):
    from kvlab.webhook import Webhook

    calls = []

    def flaky(event):
        calls.append(event.subject)
        if len(calls) == 1:
            raise RuntimeError("the alert channel was down")

    with Webhook(flaky) as hook:
        emulator.create_event_subscription(name(), vault["name"], hook.url)
        vault["client"].set_secret("db-password", "fake-db-password-1")  # pragma: allowlist secret
        received = hook.wait(1, timeout=15)
    assert [e.subject for e in received] == ["db-password"] and calls == ["db-password", "db-password"]
    assert [str(e) for e in hook.errors] == ["the alert channel was down"]


def test_wait_without_a_count_returns_once_the_emulator_has_delivered_everything_due(emulator, vault):
    """A slow handler (longer than any "quiet second") still has every event in hand when wait() returns,
    and the subscription then shows nothing pending."""
    from kvlab.webhook import Webhook

    def slow(event):
        time.sleep(1.2)  # a handler doing real work: a ticket, a message

    with Webhook(slow) as hook:
        assert hook.wait() == []  # nothing subscribed to it: nothing to wait for
        subscription = name()
        emulator.create_event_subscription(subscription, vault["name"], hook.url)
        for n in (1, 2):
            vault["client"].set_secret("api-key", f"fake-api-key-{n}")  # pragma: allowlist secret
        received = hook.wait(timeout=30)
        listed = next(s for s in emulator.event_subscriptions() if s["name"] == subscription)
    assert [e.subject for e in received] == ["api-key", "api-key"]
    assert listed["pendingEvents"] == 0 and listed["failedDeliveries"] == 0
