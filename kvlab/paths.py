"""Where kvlab keeps its state, and which port the emulator listens on."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PORT = 18443


def state_dir(explicit: str | os.PathLike | None = None, *, create: bool = True) -> Path:
    """``explicit``, else ``$KVLAB_STATE_DIR``, else the per-user data directory.

    ``create=False`` is for callers that only look (status, stop, reads): a
    mistyped ``--state-dir`` must not leave an empty directory behind.
    """
    if explicit:
        path = Path(explicit)
    elif os.environ.get("KVLAB_STATE_DIR"):
        path = Path(os.environ["KVLAB_STATE_DIR"])
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("kvlab", appauthor=False))
    path = path.expanduser().resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def default_port() -> int:
    raw = os.environ.get("KVLAB_PORT")
    return int(raw) if raw else DEFAULT_PORT
