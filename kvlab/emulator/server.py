"""Run the emulator in the foreground: ``python -m kvlab.emulator --port N --state-dir DIR``.

`kvlab emulator start` runs this in the background; tests and debugging can run
it directly. It imports only what serving needs, so it answers quickly.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import uvicorn

from .. import paths
from .app import create_app
from .http import BoundedHttpTools
from .state import DATABASE
from .tls import LocalCA

try:  # uvloop is optional: faster where it exists, asyncio elsewhere
    import uvloop  # noqa: F401

    LOOP = "uvloop"
except ImportError:
    LOOP = "asyncio"


class AlreadyServed(SystemExit):
    """Another emulator serves this state directory (said in one line, as the process's exit message)."""


def hold_the_state_directory(state_dir: Path):
    """Lock ``state_dir`` for this process's lifetime, or AlreadyServed. Returns the open lock file (keep it).

    One state directory, one live emulator: two would each record themselves in emulator.json and orphan
    the other, and two first starts would each create a local CA. `kvlab emulator status` asks the same lock."""
    deadline = time.monotonic() + 1.0  # `kvlab emulator status` holds it for an instant when it asks
    while (handle := paths.lock_state(state_dir)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if handle is None:
        raise AlreadyServed(f"another emulator already serves {state_dir}; see: kvlab emulator status")
    return handle


def damaged(database: Path) -> str | None:
    """Why the state database cannot be served as it is (one line), or None. Never repaired or reset here:
    what is in it may be all the learner has."""
    if not database.exists():
        return None  # a new state directory
    wal = database.with_name(database.name + "-wal")
    if database.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size):
        return (f"the state database {database} is empty (0 bytes), so nothing would be served from it; "
                "remove it to start afresh, or put back a copy")
    try:
        with contextlib.closing(sqlite3.connect(database)) as db:  # closed here: `with` on a connection only commits
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    if verdict == "ok":
        return None
    return (f"the state database {database} is damaged ({verdict.splitlines()[0]}); move kvlab.db, kvlab.db-wal "
            "and kvlab.db-shm away to start afresh, or put back a copy")


def watch_database(database: Path, server: uvicorn.Server, every: float = 1.0) -> threading.Thread:
    """Stop ``server`` once its database file is deleted or replaced (issue #14, defect 12).

    SQLite keeps serving an open file after it was unlinked, while every other process (the CLI, a notebook)
    would open a new, empty one: the two would disagree about what exists. Stopping lets the next `kvlab` start a
    fresh emulator on what is now there; the one line says why."""
    opened = database.stat()

    def run() -> None:
        while not server.should_exit:
            time.sleep(every)
            try:
                now = database.stat()
                same = (now.st_ino, now.st_dev) == (opened.st_ino, opened.st_dev)
            except FileNotFoundError:
                same = False
            if not same:
                logging.getLogger("kvlab.emulator").warning(
                    "the state database %s was deleted or replaced while the emulator served it; stopping, so "
                    "that it never serves what no other process sees (the next `kvlab` command starts afresh)",
                    database)
                server.should_exit = True
                return

    watcher = threading.Thread(target=run, name="kvlab-database-watch", daemon=True)
    watcher.start()
    return watcher


def watch_owner(pid: int, server: uvicorn.Server, every: float = 1.0) -> threading.Thread:
    """Stop ``server`` once process ``pid`` has ended: an emulator started for a notebook server (a hub's, Binder's)
    ends with it, instead of outliving it unseen (`kvlab emulator start --stop-with PID`)."""

    def run() -> None:
        while not server.should_exit:
            time.sleep(every)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                logging.getLogger("kvlab.emulator").warning("process %s, which this emulator was started with, "
                                                            "has ended; stopping", pid)
                server.should_exit = True
                return
            except PermissionError:  # it lives, as another user
                pass

    watcher = threading.Thread(target=run, name="kvlab-owner-watch", daemon=True)
    watcher.start()
    return watcher


def serve(state_dir: Path, port: int, host: str = "127.0.0.1", stop_with: int | None = None) -> None:
    os.umask(0o077)  # whatever the server writes (the database's -wal and -shm, logs) is its owner's alone
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = hold_the_state_directory(state_dir)  # before anything is created: the CA, the database
    paths.tighten(state_dir)  # keys, database, logs: the owner's alone, whatever an older kvlab left
    problem = damaged(state_dir / DATABASE)
    if problem is not None:
        raise SystemExit(problem)  # one line in emulator.log, which `kvlab emulator start` reports
    app = create_app(state_dir, port)
    config = uvicorn.Config(
        app, host=host, port=port, loop=LOOP, http=BoundedHttpTools, lifespan="on",
        log_level="warning", access_log=False, server_header=False, date_header=True,
        proxy_headers=False,  # nothing sits in front of the emulator
        # An idle keep-alive TLS connection (every connected kernel has one) never answers
        # the server's close_notify, so without a bound a graceful stop waits until
        # `kvlab emulator stop` gives up and kills the process.
        timeout_graceful_shutdown=1,
    )
    config.load()
    # uvicorn builds its TLS context from files; ours picks a certificate per SNI name.
    config.ssl = LocalCA(state_dir).server_context()
    server = uvicorn.Server(config)
    watch_database(state_dir / DATABASE, server)  # the app has created it by now
    if stop_with is not None:
        watch_owner(stop_with, server)
    try:
        server.run()
    finally:
        lock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kvlab.emulator")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--stop-with", type=int, metavar="PID", help="stop once this process has ended")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    serve(args.state_dir, args.port, args.host, args.stop_with)


if __name__ == "__main__":
    main()
