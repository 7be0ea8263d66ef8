"""Secret lifecycle events, modelled on Key Vault's Event Grid events.

``SecretNewVersionCreated`` when a version is set; ``SecretNearExpiry`` 30 days
before the current version's expiry and ``SecretExpired`` when it passes, both
on the emulator's clock. Each event happens once per version; its time is the
moment its condition became true, so moving the clock shows what would have
been published.

Events are listed by time, then in the order they were recorded, so a cause is
always recorded before its effects: a version set within 30 days of its expiry
(or past it) is near expiry at the very second it is created, and its
``SecretNewVersionCreated`` must still come first.

Event subscriptions deliver them to a webhook as Event Grid does: the endpoint
first proves it wants them (the validation handshake, `validate_endpoint`, when
the subscription is created), then each event is POSTed, in the Event Grid
schema, in the order it was recorded, at least once (`Delivery`, in the
emulator's process, retries an endpoint that fails). Only loopback endpoints:
the emulator posts nowhere else.
"""

from __future__ import annotations

import logging
import ssl
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from .audit import iso
from .clock import DAY, Clock
from .store import Store, VersionRow

if TYPE_CHECKING:  # asyncio is the server's: the CLI, which records events too, does not import it (30 ms)
    import asyncio

NEAR_EXPIRY = 30 * DAY
NEW_VERSION = "Microsoft.KeyVault.SecretNewVersionCreated"
NEAR_EXPIRY_EVENT = "Microsoft.KeyVault.SecretNearExpiry"
EXPIRED = "Microsoft.KeyVault.SecretExpired"
SWEPT = "events:swept-to"  # the emulator-clock moment up to which expiry events are published


class Events:
    def __init__(self, store: Store, clock: Clock, topic_of, secret_url_of):
        self.store = store
        self.clock = clock
        self._topic_of = topic_of
        self._secret_url_of = secret_url_of

    def _add(self, event_type: str, row: VersionRow, when: int) -> None:
        event = {
            "id": str(uuid.uuid4()),
            "topic": self._topic_of(row.vault),
            "subject": row.name,
            "eventType": event_type,
            "eventTime": iso(when),
            "data": {
                "Id": self._secret_url_of(row),
                "VaultName": row.vault,
                "ObjectType": "Secret",
                "ObjectName": row.name,
                "Version": row.version,
                "NBF": row.nbf,
                "EXP": row.exp,
            },
            "dataVersion": "1",
            "metadataVersion": "1",
        }
        self.store.add_event(row.vault, event_type, row.name, row.version, when, event)

    def new_version(self, row: VersionRow) -> None:
        """Record ``row``'s creation, after what its predecessor reached and before what it causes.

        ``row`` is already the latest version when this runs, so a sweep would
        no longer see the version it replaces (whose near-expiry or expiry may
        have come, unseen, while it was current), and would record ``row``'s
        own expiry events ahead of its creation.
        """
        previous = self._previous(row)
        if previous is not None:
            self._publish_due(previous, row.created)
        self._add(NEW_VERSION, row, row.created)
        self._publish_due(row, self.clock.now())  # set within 30 days of its expiry: near expiry at once
        self.sweep(full=False)

    def _previous(self, row: VersionRow) -> VersionRow | None:
        """The version ``row`` replaces, if any."""
        return self.store.version_before_latest(row.vault, row.name)

    def sweep(self, full: bool = True) -> None:
        """Publish the expiry events whose moment has come on the emulator's clock.

        A full sweep looks at every live secret expiring within NEAR_EXPIRY (listing events, moving the
        clock). A write's sweep (``full=False``) looks only at the moments passed since the last sweep, so
        its cost does not grow with the vault (issue #14: 57 ms a write with 300 secrets expiring): what
        it leaves (an expiry moved into the window by an update, a secret recovered after its moment) is
        published, with its true time, by the next full sweep."""
        now = self.clock.now()
        swept = self.store.get_meta(SWEPT)
        if full or swept is None or int(swept) > now:  # the first, or the clock was set back
            due = self.store.expiring_latest(now + NEAR_EXPIRY)
        elif int(swept) == now:
            return
        else:  # expired in (swept, now], or near expiry in (swept, now]
            due = (self.store.expiring_latest(now, after=int(swept))
                   + self.store.expiring_latest(now + NEAR_EXPIRY, after=int(swept) + NEAR_EXPIRY))
        for row in due:
            self._publish_due(row, now)
        self.store.set_meta(SWEPT, str(now))

    def _publish_due(self, row: VersionRow, now: int) -> None:
        """``row``'s near-expiry and expired events whose moment is at or before ``now``."""
        if row.exp is None:
            return
        if row.exp - NEAR_EXPIRY <= now:
            self._add(NEAR_EXPIRY_EVENT, row, max(row.exp - NEAR_EXPIRY, row.created))
        if row.exp <= now:
            self._add(EXPIRED, row, max(row.exp, row.created))

    def list(self, vault: str | None = None) -> list[dict]:
        self.sweep()
        return self.store.events(vault.lower() if vault else None)


# -- event subscriptions: webhooks -----------------------------------------------------------------------

VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
EVENT_TYPES = (NEW_VERSION, NEAR_EXPIRY_EVENT, EXPIRED)
TIMEOUT = 5.0  # seconds an endpoint gets to answer
RETRY_AFTER = (1, 2, 5, 10, 30, 60)  # seconds before the n-th retry of a failing endpoint (then every minute)


def trust(ca_file) -> ssl.SSLContext:
    """What a webhook's TLS certificate is checked against: the public roots and the emulator's CA."""
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    context.load_verify_locations(cafile=str(ca_file))
    return context


class SubscriptionError(ValueError):
    """A subscription that cannot be made, in one line."""


def check_endpoint(endpoint: str) -> str:
    """The endpoint, if the emulator may post to it: http(s) on this machine only."""
    url = urlparse(endpoint)
    if url.scheme not in ("http", "https") or url.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise SubscriptionError(f"{endpoint!r}: the emulator delivers only to a webhook on this machine "
                                "(http://127.0.0.1:<port>/... or https://localhost:<port>/...); Azure requires https")
    return endpoint


def event_types(wanted) -> list[str]:
    """Key Vault's secret event types, as given (full or short names, any case); all three when none."""
    short = {t.rsplit(".", 1)[-1].lower(): t for t in EVENT_TYPES}
    unknown = [t for t in wanted if str(t).rsplit(".", 1)[-1].lower() not in short]
    if unknown:
        raise SubscriptionError(f"unknown event type {unknown[0]!r}; Key Vault's secret events are "
                                f"{', '.join(t.rsplit('.', 1)[-1] for t in EVENT_TYPES)}")
    return sorted({short[str(t).rsplit(".", 1)[-1].lower()] for t in wanted})


def subscribe(state, name: str, vault: str, endpoint: str, wanted=()) -> dict:
    """An event subscription on ``vault`` (a `State`), once its endpoint passed the handshake: the door of
    `kvlab events subscription create` and of `az eventgrid event-subscription create` alike.

    Like Event Grid's PUT (what `az ... create` sends), a subscription of the same name on the same vault is
    replaced, and only once the new endpoint has answered the handshake: a learner who runs a corrected cell
    again subscribes its new webhook. The replacement delivers what happens from now on."""
    from .vaults import VaultNotFound

    types = event_types(wanted)
    try:
        found = state.vaults.get_vault(vault)
    except VaultNotFound:
        raise SubscriptionError(f"there is no vault {vault!r} in this emulator") from None
    check_endpoint(endpoint)
    existing = _named(state, name)
    if existing is not None and existing["vault"] != found.name:
        raise SubscriptionError(f"there is already an event subscription named {name!r}, on {existing['vault']}: "
                                "this emulator keeps subscription names unique across its vaults")
    validate_endpoint(endpoint, state.vaults.resource_id(found.name), trust(state.dir / "ca.pem"))
    with state.store.write():
        existing = _named(state, name)  # as it is now that the handshake is done
        if existing is not None and existing["vault"] == found.name:
            state.store.delete_subscription(existing["name"])
        if not state.store.add_subscription(name, found.name, endpoint, types, state.clock.now()):
            raise SubscriptionError(f"there is already an event subscription named {name!r}")
    found_row = _named(state, name)
    assert found_row is not None  # added above
    return found_row


def _named(state, name: str) -> dict | None:
    return next((s for s in state.store.subscriptions() if s["name"].lower() == name.lower()), None)


def validate_endpoint(endpoint: str, topic: str, verify) -> None:
    """Event Grid's validation handshake: the endpoint must echo the validation code, or no subscription."""
    import httpx

    code = str(uuid.uuid4())
    event = {"id": str(uuid.uuid4()), "topic": topic, "subject": "", "eventType": VALIDATION,
             "eventTime": iso(int(time.time())), "data": {"validationCode": code}, "dataVersion": "2",
             "metadataVersion": "1"}
    failed = f"Webhook validation handshake failed for {endpoint}"
    try:
        answer = httpx.post(endpoint, json=[event], headers={"aeg-event-type": "SubscriptionValidation"},
                            timeout=TIMEOUT, verify=verify)
    except httpx.HTTPError as exc:
        raise SubscriptionError(f"{failed}: {type(exc).__name__}: {exc}") from None
    try:
        echoed = answer.json().get("validationResponse") if answer.status_code == 200 else None
    except (ValueError, AttributeError):
        echoed = None
    if echoed != code:
        raise SubscriptionError(f"{failed}: it answered {answer.status_code} without the validation code; it must "
                                'answer 200 with {"validationResponse": "<data.validationCode>"}')


class Delivery:
    """The emulator's delivery loop: every subscription's new events, in order, to its endpoint.

    It polls the store (other processes record events too: a clock moved by the CLI, a version set through
    the SDK) and keeps each subscription's cursor there, so a restart neither loses nor repeats more than
    the one event that was in flight.
    """

    def __init__(self, store: Store, ca_file, in_database, interval: float = 0.2):
        self.store = store
        self.ca_file = ca_file  # read once the loop starts: the server writes the CA after making the app
        self.in_database = in_database  # runs a store call off the event loop (EmulatorApp.in_database)
        self.interval = interval
        self._task: asyncio.Task | None = None
        self._next_try: dict[str, float] = {}

    def start(self) -> None:
        import asyncio

        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        import asyncio

        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        import asyncio

        import httpx

        async with httpx.AsyncClient(timeout=TIMEOUT, verify=trust(self.ca_file)) as client:
            while True:
                await asyncio.sleep(self.interval)
                try:
                    for subscription in await self.in_database(self._subscriptions):
                        if time.monotonic() >= self._next_try.get(subscription["name"], 0):
                            await self._deliver(client, subscription)
                except Exception:  # a background loop must outlive one bad round (a locked database): log it in full
                    logging.getLogger("kvlab.emulator").exception("event delivery failed; trying again")

    def _subscriptions(self) -> list[dict]:
        self.store.refresh()
        return self.store.subscriptions()

    async def _deliver(self, client, subscription: dict) -> None:
        import httpx

        wanted = set(subscription["types"]) or set(EVENT_TYPES)
        due = await self.in_database(self.store.events_after, subscription["delivered"], subscription["vault"])
        for seq, event in due:
            if event["eventType"] in wanted:
                try:
                    answer = await client.post(subscription["endpoint"], json=[event],
                                               headers={"aeg-event-type": "Notification"})
                    problem = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if problem is not None:
                    failures = subscription["failures"]
                    await self.in_database(self.store.subscription_failed, subscription["name"], problem)
                    wait = RETRY_AFTER[min(failures, len(RETRY_AFTER) - 1)]
                    self._next_try[subscription["name"]] = time.monotonic() + wait
                    return
            await self.in_database(self.store.subscription_delivered, subscription["name"], seq)
        self._next_try.pop(subscription["name"], None)
