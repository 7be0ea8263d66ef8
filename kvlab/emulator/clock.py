"""The emulator's clock: real time, plus an offset a lesson or the CLI moves forward (`kvlab clock advance`), kept in
the state directory so that every process sees the same time. Expiry, purge dates, events and audit times follow it.
"""

from __future__ import annotations

import time

from .store import Store

DAY = 86400  # seconds


class Clock:
    """Seconds since the epoch, as the emulator sees them (an offset can move it forward)."""

    def __init__(self, store: Store):
        self._store = store

    def offset(self) -> int:
        return int(self._store.get_meta("clock_offset") or 0)

    def now(self) -> int:
        return int(time.time()) + self.offset()

    def now_precise(self) -> float:
        return time.time() + self.offset()

    def advance(self, seconds: int) -> int:
        """Move the clock forward (never back: times already recorded stay in the past)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward; use reset to return to real time")
        offset = self.offset() + int(seconds)
        self._store.set_meta("clock_offset", str(offset))
        return offset

    def reset(self) -> None:
        self._store.set_meta("clock_offset", "0")
