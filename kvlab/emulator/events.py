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
"""

from __future__ import annotations

import uuid

from .audit import iso
from .store import Store, VersionRow
from .vaults import DAY, Clock

NEAR_EXPIRY = 30 * DAY
NEW_VERSION = "Microsoft.KeyVault.SecretNewVersionCreated"
NEAR_EXPIRY_EVENT = "Microsoft.KeyVault.SecretNearExpiry"
EXPIRED = "Microsoft.KeyVault.SecretExpired"


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
        self.sweep()

    def _previous(self, row: VersionRow) -> VersionRow | None:
        """The version ``row`` replaces, if any."""
        versions = self.store.all_versions(row.vault, row.name)
        older = [v for v in versions if v.version != row.version]
        return older[-1] if older else None

    def sweep(self) -> None:
        """Publish the expiry events whose moment has come on the emulator's clock."""
        now = self.clock.now()
        for row in self.store.expiring_latest(now + NEAR_EXPIRY):
            self._publish_due(row, now)

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
