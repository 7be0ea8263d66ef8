"""Key Vault's service limits, applied per vault when its throttling is 'real'.

Per vault and 10-second window: 300 secret creates, and 4,000 of all other
operations. Past a limit the service answers 429; we add ``Retry-After`` (the
seconds until the window has room), which the SDK's retry policy honours.
Counted on the wall clock, in memory: a restart starts a fresh window.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque

MODES = ("off", "real")  # a vault's throttling: none, or the service's limits below
WINDOW = 10.0
LIMITS = {"create": 300, "other": 4000}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"throttling must be one of {', '.join(repr(m) for m in MODES)}, not {mode!r}")
    return mode


class Throttle:
    def __init__(self, window: float = WINDOW):
        self.window = window
        self._hits: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def retry_after(self, vault: str, operation: str) -> int | None:
        """Count this request; None if allowed, else the seconds to wait."""
        kind = "create" if operation == "SecretSet" else "other"
        hits = self._hits[(vault, kind)]
        now = time.monotonic()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= LIMITS[kind]:
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        return None
