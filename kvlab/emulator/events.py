"""Secret lifecycle events, modelled on Key Vault's Event Grid events.

``SecretNewVersionCreated`` when a version is set; ``SecretNearExpiry`` 30 days
before the current version's expiry and ``SecretExpired`` when it passes, both
on the emulator's clock. Each event happens once per version; its time is the
moment its condition became true, so moving the clock shows what would have
been published.
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
        self.sweep()  # the previous version's expiry events come first
        self._add(NEW_VERSION, row, row.created)
        self.sweep()

    def sweep(self) -> None:
        """Publish the expiry events whose moment has come on the emulator's clock."""
        now = self.clock.now()
        for row in self.store.expiring_latest(now + NEAR_EXPIRY):
            assert row.exp is not None
            self._add(NEAR_EXPIRY_EVENT, row, max(row.exp - NEAR_EXPIRY, row.created))
            if row.exp <= now:
                self._add(EXPIRED, row, max(row.exp, row.created))

    def list(self, vault: str | None = None) -> list[dict]:
        self.sweep()
        return self.store.events(vault.lower() if vault else None)
