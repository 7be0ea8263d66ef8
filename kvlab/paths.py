"""Where kvlab keeps its state, and which port the emulator listens on."""

from __future__ import annotations

import contextlib
import os
import sys
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
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if path.is_dir():
        private(path)
    return path


# The state directory holds secret values, the token signing key, the identity header and the backup key:
# only its owner may enter it, and the files that hold state, keys or logs are the owner's alone, whatever
# the umask or the mode an older kvlab left (certificates are public, but sit inside it too).
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
TRUST_BUNDLE = "trust-bundle.pem"  # public roots + the local CA, for other processes (kvlab env)
PUBLIC = {"ca.pem", TRUST_BUNDLE}  # certificates only: may stay readable (inside the private folder)


def tighten(state: Path) -> None:
    """Make everything at the top of a state directory private but its certificates (an older kvlab's modes)."""
    private(state)
    for entry in state.iterdir():
        if entry.name not in PUBLIC and not entry.is_symlink():
            private(entry)


def private(path: Path) -> Path:
    """Make ``path`` (a directory or a file) its owner's alone, if it is not already; returns it."""
    if os.name == "nt":  # NTFS permissions come from the user's profile folder, not from mode bits
        return path
    wanted = PRIVATE_DIR if path.is_dir() else PRIVATE_FILE
    if path.stat().st_mode & 0o777 != wanted:
        path.chmod(wanted)
    return path


def open_private(path: Path, mode: str = "ab"):
    """Open a file for writing that only its owner may read (created so, or tightened if it existed)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    handle = os.fdopen(os.open(path, flags, PRIVATE_FILE), mode)
    private(path)
    return handle


@contextlib.contextmanager
def environment_kept(names):
    """The body may change these variables of this process's environment: after it, they are as they were."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def default_port() -> int:
    raw = os.environ.get("KVLAB_PORT")
    return int(raw) if raw else DEFAULT_PORT


def free_port() -> int:
    """A loopback port nothing listens on now (the system's choice)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVER_LOCK = "emulator.lock"  # held by the emulator serving a state directory, for its whole life


def lock_state(state: Path):
    """Take the state directory's server lock: the open lock file (keep it to hold the lock), or None when
    another process holds it, which means an emulator serves this directory (answering or not)."""
    handle = open(os.open(state / SERVER_LOCK, os.O_RDWR | os.O_CREAT, PRIVATE_FILE), "r+b")
    try:
        if sys.platform == "win32":
            import msvcrt
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def served(state: Path) -> bool:
    """Whether an emulator holds ``state`` now (asks the lock; never creates the directory)."""
    if not state.is_dir():
        return False
    handle = lock_state(state)
    if handle is None:
        return True
    handle.close()  # closing releases it
    return False
