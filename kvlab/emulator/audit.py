"""The audit log: one record per vault request, modelled on Key Vault's AuditEvent log.

Records carry who asked for what and how it ended, never a secret value. They
are flat dictionaries so that ``pandas.DataFrame(records)`` just works.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .clock import Clock
from .store import Store

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

MAX_FIELD = 1024  # characters of any text field a caller chose (a request id, a URI, a user agent)


def bounded(value):
    """A caller's text as a record keeps it: at most MAX_FIELD characters (issue #14: 1 MB request ids once
    grew the log 42 MB in 40 requests); dictionaries and lists bounded the same way, inside."""
    if isinstance(value, str) and len(value) > MAX_FIELD:
        return value[:MAX_FIELD] + f"…({len(value) - MAX_FIELD} more characters)"
    if isinstance(value, dict):
        return {key: bounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [bounded(item) for item in value]
    return value


FIELDS = (
    "time", "vault", "operationName", "operationVersion", "category", "resultType",
    "resultSignature", "resultDescription", "httpStatusCode", "durationMs", "callerIpAddress",
    "correlationId", "identity", "callerOid", "callerAppId", "secretName", "secretVersion",
    "requestUri", "resourceId",
)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_since(text: str, now: int) -> int:
    """``15m``/``2h``/``7d`` before the emulator's now, or an ISO 8601 time."""
    text = text.strip()
    match = _DURATION.match(text)
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid --since {text!r}: use a duration like 15m, 2h or 7d, or an ISO time like 2026-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


class Audit:
    def __init__(self, store: Store, clock: Clock):
        self.store = store
        self.clock = clock

    def record(self, record: dict) -> None:
        """Store one record; ``record`` has the keys of FIELDS (time is filled in here)."""
        now = self.clock.now_precise()
        full = {key: bounded(record.get(key)) for key in FIELDS}
        full["time"] = iso(now)
        full["category"] = "AuditEvent"
        self.store.add_audit(int(now), record.get("vault"), record.get("identity"), full)

    def query(
        self, vault: str | None = None, since: str | None = None, identity: str | None = None, after: int = 0
    ) -> list[dict]:
        start = parse_since(since, self.clock.now()) if since else None
        return self.store.audit(vault.lower() if vault else None, start, identity, after)
