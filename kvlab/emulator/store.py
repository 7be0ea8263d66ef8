"""SQLite persistence for the emulator.

One file in the state directory holds everything the emulator knows, so state
survives restarts and the CLI can change it while the server runs (SQLite's
own locking serialises the two). Only this module writes SQL; the domain
(`vaults.py`) calls the methods below and never sees a cursor.

Writes use ``BEGIN IMMEDIATE`` so that concurrent writers queue up instead of
failing half-way: no version is ever lost.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vaults (
    name            TEXT PRIMARY KEY COLLATE NOCASE,
    created         INTEGER NOT NULL,
    retention_days  INTEGER NOT NULL DEFAULT 90,
    throttling      TEXT NOT NULL DEFAULT 'off',
    purge_protection INTEGER NOT NULL DEFAULT 0,
    deleted         INTEGER,  -- set while the vault is soft-deleted (its name stays taken)
    scheduled_purge INTEGER
);
-- one row per secret name; deleted_date is set while the name is soft-deleted
CREATE TABLE IF NOT EXISTS secrets (
    vault            TEXT NOT NULL COLLATE NOCASE,
    name             TEXT NOT NULL COLLATE NOCASE,
    deleted_date     INTEGER,
    scheduled_purge  INTEGER,
    PRIMARY KEY (vault, name)
);
CREATE TABLE IF NOT EXISTS versions (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    vault         TEXT NOT NULL COLLATE NOCASE,
    name          TEXT NOT NULL COLLATE NOCASE,
    version       TEXT NOT NULL,
    value         TEXT NOT NULL,
    content_type  TEXT,
    tags          TEXT,
    enabled       INTEGER NOT NULL DEFAULT 1,
    nbf           INTEGER,
    exp           INTEGER,
    created       INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    UNIQUE (vault, name, version)
);
CREATE INDEX IF NOT EXISTS versions_by_name ON versions (vault, name, seq);
CREATE INDEX IF NOT EXISTS versions_by_expiry ON versions (exp) WHERE exp IS NOT NULL;
CREATE INDEX IF NOT EXISTS secrets_purge ON secrets (scheduled_purge)
    WHERE scheduled_purge IS NOT NULL;
CREATE TABLE IF NOT EXISTS identities (
    name          TEXT PRIMARY KEY COLLATE NOCASE,
    client_id     TEXT NOT NULL UNIQUE,
    principal_id  TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    created       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS role_assignments (
    id            TEXT PRIMARY KEY,
    role_id       TEXT NOT NULL,
    principal_id  TEXT NOT NULL,
    vault         TEXT NOT NULL COLLATE NOCASE,
    secret        TEXT COLLATE NOCASE,
    created       INTEGER NOT NULL,
    UNIQUE (role_id, principal_id, vault, secret)
);
CREATE INDEX IF NOT EXISTS assignments_by_principal ON role_assignments (principal_id, vault);
CREATE TABLE IF NOT EXISTS audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    time    INTEGER NOT NULL,
    vault   TEXT COLLATE NOCASE,
    caller  TEXT COLLATE NOCASE,
    record  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_vault ON audit (vault, seq);
-- the Databricks workspace (kvlab/emulator/workspaces.py): its users, secret scopes, their secrets and ACLs
CREATE TABLE IF NOT EXISTS workspace_users (
    name     TEXT PRIMARY KEY COLLATE NOCASE,
    token    TEXT NOT NULL UNIQUE,
    admin    INTEGER NOT NULL DEFAULT 0,
    created  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS scopes (
    name         TEXT PRIMARY KEY,
    backend      TEXT NOT NULL,
    vault        TEXT COLLATE NOCASE,
    resource_id  TEXT,
    dns_name     TEXT,
    created      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS scope_secrets (
    scope    TEXT NOT NULL REFERENCES scopes (name) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    BLOB NOT NULL,
    updated  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS scope_acls (
    scope       TEXT NOT NULL REFERENCES scopes (name) ON DELETE CASCADE,
    principal   TEXT NOT NULL,
    permission  TEXT NOT NULL,
    PRIMARY KEY (scope, principal)
);
CREATE TABLE IF NOT EXISTS workspace_audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    record  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    vault   TEXT NOT NULL COLLATE NOCASE,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL COLLATE NOCASE,
    version TEXT NOT NULL,
    time    INTEGER NOT NULL,
    event   TEXT NOT NULL,
    UNIQUE (vault, kind, name, version)
);
-- Azure Resource Manager (kvlab/emulator/arm.py): resource groups, where each vault and identity
-- lives (one without a row lives in the default group), and the Activity Log of management writes
CREATE TABLE IF NOT EXISTS resource_groups (
    name      TEXT PRIMARY KEY COLLATE NOCASE,
    location  TEXT NOT NULL,
    tags      TEXT NOT NULL DEFAULT '{}',
    created   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS placements (
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL COLLATE NOCASE,
    resource_group  TEXT NOT NULL COLLATE NOCASE,
    location        TEXT NOT NULL,
    tags            TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS activity (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    time    INTEGER NOT NULL,
    record  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_subscriptions (
    name      TEXT PRIMARY KEY COLLATE NOCASE,
    vault     TEXT NOT NULL COLLATE NOCASE,
    endpoint  TEXT NOT NULL,
    types     TEXT NOT NULL,
    delivered INTEGER NOT NULL,
    created   INTEGER NOT NULL,
    failures  INTEGER NOT NULL DEFAULT 0,
    error     TEXT
);
"""


@dataclass(frozen=True)
class GroupRow:
    name: str
    location: str
    tags: dict[str, str]
    created: int


@dataclass(frozen=True)
class PlacementRow:
    """Where Resource Manager says a vault or an identity lives."""

    kind: str  # "vault" or "identity"
    name: str
    resource_group: str
    location: str
    tags: dict[str, str]


@dataclass(frozen=True)
class VaultRow:
    name: str
    created: int
    retention_days: int
    throttling: str
    purge_protection: bool = False
    deleted: int | None = None  # when it was soft-deleted (the emulator's clock); None while it is live
    scheduled_purge: int | None = None


@dataclass(frozen=True)
class IdentityRow:
    name: str
    client_id: str
    principal_id: str
    kind: str  # "user" (the learner), "userAssigned", or "builtin"
    created: int


@dataclass(frozen=True)
class AssignmentRow:
    id: str
    role_id: str
    principal_id: str
    vault: str
    secret: str | None
    created: int


@dataclass(frozen=True)
class UserRow:
    name: str
    token: str
    admin: bool
    created: int


@dataclass(frozen=True)
class ScopeRow:
    name: str
    backend: str  # "DATABRICKS" or "AZURE_KEYVAULT"
    vault: str | None
    resource_id: str | None
    dns_name: str | None
    created: int


@dataclass(frozen=True)
class VersionRow:
    vault: str
    name: str
    version: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int
    deleted_date: int | None = None
    scheduled_purge: int | None = None


_VERSION_COLUMNS = (
    "v.vault, s.name, v.version, v.value, v.content_type, v.tags, v.enabled, v.nbf, v.exp, "
    "v.created, v.updated, s.deleted_date, s.scheduled_purge"
)


_INSERT_VERSION = (
    "INSERT INTO versions (vault, name, version, value, content_type, tags, enabled, nbf, exp, "
    "created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _version_params(row: VersionRow) -> tuple:
    tags = json.dumps(row.tags) if row.tags is not None else None
    return (row.vault, row.name, row.version, row.value, row.content_type, tags, int(row.enabled),
            row.nbf, row.exp, row.created, row.updated)


# Audit log retention (issue #14, defect 6): by default the newest KEEP_RECORDS records of each audit log
# (about 600 bytes each), looked at every TRIM_EVERY records; `kvlab audit retention` changes it.
KEEP_RECORDS = 50_000
TRIM_EVERY = 1_000
RETENTION_RECORDS, RETENTION_DAYS, KEPT_FROM = "audit:keep-records", "audit:keep-days", "audit:kept-from:"


# Columns added after a table was first released: a state directory made by an older kvlab gets them at open.
_ADDED_COLUMNS = (("vaults", "purge_protection", "INTEGER NOT NULL DEFAULT 0"), ("vaults", "deleted", "INTEGER"),
                  ("vaults", "scheduled_purge", "INTEGER"))


def _add_missing_columns(db: sqlite3.Connection) -> None:
    for table, column, definition in _ADDED_COLUMNS:
        if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            try:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            except sqlite3.OperationalError as exc:  # another process added it between our look and our change
                if "duplicate column" not in str(exc):
                    raise


def _where(sql: str, args: list | None = None, **equal) -> tuple[str, list]:
    """``sql`` with ``AND column = ?`` for every filter that is not None."""
    args = list(args or [])
    for column, value in equal.items():
        if value is not None:
            sql += f" AND {column} = ?"
            args.append(value)
    return sql, args


_VAULT_COLUMNS = "name, created, retention_days, throttling, purge_protection, deleted, scheduled_purge"


def _vault(row: tuple) -> VaultRow:
    return VaultRow(name=row[0], created=row[1], retention_days=row[2], throttling=row[3],
                    purge_protection=bool(row[4]), deleted=row[5], scheduled_purge=row[6])


def _placement(row: tuple) -> PlacementRow:
    return PlacementRow(kind=row[0], name=row[1], resource_group=row[2], location=row[3], tags=json.loads(row[4]))


def _version(row: tuple) -> VersionRow:
    tags = json.loads(row[5]) if row[5] is not None else None
    return VersionRow(
        vault=row[0], name=row[1], version=row[2], value=row[3], content_type=row[4],
        tags=tags, enabled=bool(row[6]), nbf=row[7], exp=row[8], created=row[9],
        updated=row[10], deleted_date=row[11], scheduled_purge=row[12],
    )


class Store:
    """The emulator's state: one SQLite database, safe across threads and processes."""

    def __init__(self, path: Path | str, busy_timeout: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The database holds secret values and keys: its owner's alone, and so are the -wal and -shm files,
        # which SQLite creates with the database file's permissions.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        for name in (self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
            if os.name != "nt" and name.exists() and name.stat().st_mode & 0o077:
                name.chmod(0o600)
        self._lock = threading.RLock()
        # Small, hot reads (meta, vaults, role assignments, the next purge date) are
        # cached until any connection - this one or another process's - commits.
        self._cache: dict = {}
        self._data_version = -1
        self._fresh = False  # True between refresh() and the next request: no re-check needed
        self.per_request = False  # the server sets this and calls refresh() once per request
        self._depth = 0  # of nested write(): 1 inside a transaction, more inside its savepoints
        self._db = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # executescript commits on its own, so it runs outside write()
        with self._lock:
            self._db.executescript(SCHEMA)
            _add_missing_columns(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- transactions -------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that other writers (threads or processes) wait for.

        Inside another one (the server's `transaction` around a whole request) it is a savepoint: undone
        alone if it fails, kept only if the whole request's transaction commits."""
        with self._lock:
            if self._depth:
                yield from self._savepoint()
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._commit()
            finally:
                self._depth = 0
                self._cache.clear()

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        self._depth += 1
        name = f"nested{self._depth}"
        self._db.execute(f"SAVEPOINT {name}")
        try:
            yield self._db
        except BaseException:
            self._db.execute(f"ROLLBACK TO {name}")
            self._db.execute(f"RELEASE {name}")
            raise
        else:
            self._db.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1
            self._cache.clear()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One request, all or nothing: its writes, its audit or Activity Log record and its events commit
        together before it is answered (issue #14, defect 11), or none of them does. Waits at most the
        store's busy timeout for another process's write (then sqlite3.OperationalError, "database is
        locked"); reads what other processes committed before it began."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                self.refresh()
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                self._cache.clear()  # it may hold what a savepoint wrote and this undid
                raise
            else:
                self._commit()  # what the cache holds is committed now: it stays
            finally:
                self._depth = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        """A request that changes nothing but adds its audit record, which commits on its own (one INSERT is
        atomic): no write lock is taken until that record is written, so reads cost no more than before."""
        with self._lock:
            self.refresh()
            yield

    def _commit(self) -> None:
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:  # a full disk refuses the commit itself: nothing of it may stay, or be cached
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._cache.clear()
            raise

    def _insert(self, sql: str, args: tuple) -> int:
        """One INSERT of a record nothing cached depends on: its own transaction, or part of the request's.
        Returns the new row's number."""
        with self._lock:
            return self._db.execute(sql, args).lastrowid or 0

    def refresh(self) -> None:
        """Forget cached reads if any connection has committed since they were made."""
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._cache.clear()
                self._data_version = version
            self._fresh = True

    def _cached(self, key, load):
        """``load()``, remembered until the database changes (PRAGMA data_version sees other writers)."""
        with self._lock:
            if not (self.per_request and self._fresh):
                self.refresh()
            if key not in self._cache:
                self._cache[key] = load()
            return self._cache[key]

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- meta ---------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._cached(("meta", key), lambda: self._read("SELECT value FROM meta WHERE key = ?", (key,)))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def meta_or_create(self, key: str, make) -> str:
        """Return the stored value for ``key``, storing ``make()`` first if absent (race-free)."""
        value = self.get_meta(key)
        if value is not None:
            return value
        with self.write() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, make()))
            return db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]

    # -- vaults -------------------------------------------------------------

    def add_vault(self, name: str, created: int, retention_days: int, throttling: str) -> bool:
        with self.write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO vaults (name, created, retention_days, throttling) "
                "VALUES (?, ?, ?, ?)",
                (name, created, retention_days, throttling),
            )
            return cur.rowcount == 1

    def get_vault(self, name: str) -> VaultRow | None:
        """A live vault (a soft-deleted one is `deleted_vault`)."""
        rows = self._cached(("vault", name.lower()), lambda: self._read(
            f"SELECT {_VAULT_COLUMNS} FROM vaults WHERE name = ? AND deleted IS NULL", (name,)
        ))
        return _vault(rows[0]) if rows else None

    def list_vaults(self) -> list[VaultRow]:
        rows = self._read(f"SELECT {_VAULT_COLUMNS} FROM vaults WHERE deleted IS NULL ORDER BY name")
        return [_vault(r) for r in rows]

    def deleted_vault(self, name: str) -> VaultRow | None:
        rows = self._read(f"SELECT {_VAULT_COLUMNS} FROM vaults WHERE name = ? AND deleted IS NOT NULL", (name,))
        return _vault(rows[0]) if rows else None

    def deleted_vaults(self) -> list[VaultRow]:
        rows = self._read(f"SELECT {_VAULT_COLUMNS} FROM vaults WHERE deleted IS NOT NULL ORDER BY name")
        return [_vault(r) for r in rows]

    def soft_delete_vault(self, name: str, deleted: int, purge: int) -> bool:
        """Keep the vault, its secrets and its place, deleted until ``purge``; its role assignments and event
        subscriptions go, as Azure deletes them with the vault (a recovered vault has neither)."""
        with self.write() as db:
            if db.execute("UPDATE vaults SET deleted = ?, scheduled_purge = ? WHERE name = ? AND deleted IS NULL",
                          (deleted, purge, name)).rowcount != 1:
                return False
            db.execute("DELETE FROM role_assignments WHERE vault = ?", (name,))
            db.execute("DELETE FROM event_subscriptions WHERE vault = ?", (name,))
            return True

    def recover_vault(self, name: str) -> bool:
        with self.write() as db:
            return db.execute("UPDATE vaults SET deleted = NULL, scheduled_purge = NULL "
                              "WHERE name = ? AND deleted IS NOT NULL", (name,)).rowcount == 1

    def vaults_due(self, now: int) -> list[str]:
        """Deleted vaults whose scheduled purge date has passed."""
        return [r[0] for r in self._read(
            "SELECT name FROM vaults WHERE deleted IS NOT NULL AND scheduled_purge <= ?", (now,))]

    def protect_vault(self, name: str) -> None:
        """Turn purge protection on (it never goes off again)."""
        with self.write() as db:
            db.execute("UPDATE vaults SET purge_protection = 1 WHERE name = ?", (name,))

    def update_vault(self, name: str, throttling: str) -> bool:
        with self.write() as db:
            cur = db.execute("UPDATE vaults SET throttling = ? WHERE name = ?", (throttling, name))
            return cur.rowcount == 1

    def remove_vault(self, name: str) -> bool:
        with self.write() as db:
            db.execute("DELETE FROM versions WHERE vault = ?", (name,))
            db.execute("DELETE FROM secrets WHERE vault = ?", (name,))
            db.execute("DELETE FROM role_assignments WHERE vault = ?", (name,))
            db.execute("DELETE FROM events WHERE vault = ?", (name,))
            db.execute("DELETE FROM event_subscriptions WHERE vault = ?", (name,))  # as Azure deletes them with the topic
            db.execute("DELETE FROM placements WHERE kind = 'vault' AND name = ?", (name,))
            return db.execute("DELETE FROM vaults WHERE name = ?", (name,)).rowcount == 1

    # -- secrets ------------------------------------------------------------

    def secret_state(self, vault: str, name: str) -> tuple[str, int | None] | None:
        """The stored spelling of a name and its deleted date (None while live), or None."""
        rows = self._read(
            "SELECT name, deleted_date FROM secrets WHERE vault = ? AND name = ?", (vault, name)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def add_version(self, row: VersionRow) -> VersionRow:
        """Store a new version, creating the name if needed. Returns it with the name's spelling."""
        with self.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO secrets (vault, name) VALUES (?, ?)", (row.vault, row.name)
            )
            db.execute(_INSERT_VERSION, _version_params(row))
            stored = db.execute(
                "SELECT name FROM secrets WHERE vault = ? AND name = ?", (row.vault, row.name)
            ).fetchone()[0]
        return VersionRow(**{**row.__dict__, "name": stored})

    def get_version(self, vault: str, name: str, version: str | None) -> VersionRow | None:
        """One version (the latest when ``version`` is None), live or deleted."""
        if version:
            rows = self._read(
                f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN secrets s "
                "ON s.vault = v.vault AND s.name = v.name "
                "WHERE v.vault = ? AND v.name = ? AND v.version = ?",
                (vault, name, version.lower()),
            )
        else:
            rows = self._read(
                f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN secrets s "
                "ON s.vault = v.vault AND s.name = v.name "
                "WHERE v.vault = ? AND v.name = ? ORDER BY v.seq DESC LIMIT 1",
                (vault, name),
            )
        return _version(rows[0]) if rows else None

    def update_version(
        self, vault: str, name: str, version: str, changes: dict[str, object], updated: int
    ) -> None:
        allowed = {"content_type", "tags", "enabled", "nbf", "exp"}
        assert set(changes) <= allowed, changes
        values = {
            k: (json.dumps(v) if k == "tags" and v is not None else v) for k, v in changes.items()
        }
        if "enabled" in values:
            values["enabled"] = int(bool(values["enabled"]))
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.write() as db:
            db.execute(
                f"UPDATE versions SET {sets}{', ' if sets else ''}updated = ? "
                "WHERE vault = ? AND name = ? AND version = ?",
                (*values.values(), updated, vault, name, version),
            )

    def latest_versions(
        self, vault: str, deleted: bool, after: str | None, limit: int
    ) -> list[VersionRow]:
        """The latest version of each name, ordered by name, live or deleted, after a name."""
        rows = self._read(
            f"SELECT {_VERSION_COLUMNS} FROM secrets s JOIN versions v "
            "ON v.vault = s.vault AND v.name = s.name "
            "WHERE s.vault = ? AND (s.deleted_date IS NOT NULL) = ? AND s.name > ? "
            "AND v.seq = (SELECT MAX(seq) FROM versions WHERE vault = s.vault AND name = s.name) "
            "ORDER BY s.name LIMIT ?",
            (vault, int(deleted), after or "", limit),
        )
        return [_version(r) for r in rows]

    def versions(self, vault: str, name: str, after_seq: int, limit: int) -> list[tuple[int, VersionRow]]:
        rows = self._read(
            f"SELECT v.seq, {_VERSION_COLUMNS} FROM versions v JOIN secrets s "
            "ON s.vault = v.vault AND s.name = v.name "
            "WHERE v.vault = ? AND v.name = ? AND v.seq > ? ORDER BY v.seq LIMIT ?",
            (vault, name, after_seq, limit),
        )
        return [(r[0], _version(r[1:])) for r in rows]

    def values(self, vault: str) -> list[tuple[str, str]]:
        """(name, value) of every stored version in a vault, live or soft-deleted, oldest first."""
        return [(r[0], r[1]) for r in self._read("SELECT name, value FROM versions WHERE vault = ? ORDER BY seq", (vault,))]

    def all_versions(self, vault: str, name: str) -> list[VersionRow]:
        return [row for _, row in self.versions(vault, name, 0, 1 << 31)]

    def version_before_latest(self, vault: str, name: str) -> VersionRow | None:
        """The version the latest one replaced, if any (one row, however many versions there are)."""
        rows = self._read(
            f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN secrets s ON s.vault = v.vault AND s.name = v.name "
            "WHERE v.vault = ? AND v.name = ? ORDER BY v.seq DESC LIMIT 1 OFFSET 1", (vault, name))
        return _version(rows[0]) if rows else None

    def mark_deleted(self, vault: str, name: str, deleted: int | None, purge: int | None) -> None:
        with self.write() as db:
            db.execute(
                "UPDATE secrets SET deleted_date = ?, scheduled_purge = ? "
                "WHERE vault = ? AND name = ?",
                (deleted, purge, vault, name),
            )

    def remove_secret(self, vault: str, name: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM versions WHERE vault = ? AND name = ?", (vault, name))
            db.execute("DELETE FROM secrets WHERE vault = ? AND name = ?", (vault, name))

    def restore_versions(self, rows: list[VersionRow]) -> bool:
        """Insert every version of one name atomically; False if the name already exists."""
        first = rows[0]
        with self.write() as db:
            exists = db.execute(
                "SELECT 1 FROM secrets WHERE vault = ? AND name = ?", (first.vault, first.name)
            ).fetchone()
            if exists:
                return False
            db.execute("INSERT INTO secrets (vault, name) VALUES (?, ?)", (first.vault, first.name))
            db.executemany(_INSERT_VERSION, [_version_params(r) for r in rows])
            return True

    def purge_due(self, now: int) -> int:
        """Permanently remove deleted secrets whose scheduled purge date has passed."""
        first = self._cached("next_purge", lambda: self._read(
            "SELECT MIN(scheduled_purge) FROM secrets WHERE scheduled_purge IS NOT NULL"
        )[0][0])
        if first is None or first > now:
            return 0
        due = self._read(
            "SELECT vault, name FROM secrets WHERE scheduled_purge IS NOT NULL AND scheduled_purge <= ?",
            (now,),
        )
        if not due:
            return 0
        with self.write() as db:
            for vault, name in due:
                db.execute("DELETE FROM versions WHERE vault = ? AND name = ?", (vault, name))
                db.execute("DELETE FROM secrets WHERE vault = ? AND name = ?", (vault, name))
        return len(due)

    # -- identities -----------------------------------------------------------

    def add_identity(self, row: IdentityRow) -> bool:
        with self.write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO identities (name, client_id, principal_id, kind, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (row.name, row.client_id, row.principal_id, row.kind, row.created),
            )
            return cur.rowcount == 1

    def find_identity(self, key: str) -> IdentityRow | None:
        """An identity by name, client id or principal (object) id."""
        rows = self._read(
            "SELECT name, client_id, principal_id, kind, created FROM identities "
            "WHERE name = ? OR lower(client_id) = lower(?) OR lower(principal_id) = lower(?)",
            (key, key, key),
        )
        return IdentityRow(*rows[0]) if rows else None

    def list_identities(self) -> list[IdentityRow]:
        rows = self._read(
            "SELECT name, client_id, principal_id, kind, created FROM identities ORDER BY created, name"
        )
        return [IdentityRow(*r) for r in rows]

    def remove_identity(self, name: str) -> IdentityRow | None:
        found = self.find_identity(name)
        if found is None:
            return None
        with self.write() as db:
            db.execute("DELETE FROM role_assignments WHERE principal_id = ?", (found.principal_id,))
            db.execute("DELETE FROM identities WHERE name = ?", (found.name,))
            db.execute("DELETE FROM placements WHERE kind = 'identity' AND name = ?", (found.name,))
        return found

    # -- role assignments ---------------------------------------------------

    def add_assignment(self, row: AssignmentRow) -> AssignmentRow:
        """Store an assignment; an identical one already there is returned instead."""
        # Looked up first: the UNIQUE constraint cannot catch a vault-scope duplicate,
        # since SQLite treats the NULL secret of each row as distinct.
        with self.write() as db:
            found = db.execute(
                "SELECT id, role_id, principal_id, vault, secret, created FROM role_assignments "
                "WHERE role_id = ? AND principal_id = ? AND vault = ? AND secret IS ?",
                (row.role_id, row.principal_id, row.vault, row.secret),
            ).fetchone()
            if found is not None:
                return AssignmentRow(*found)
            db.execute(
                "INSERT INTO role_assignments (id, role_id, principal_id, vault, secret, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (row.id, row.role_id, row.principal_id, row.vault, row.secret, row.created),
            )
        return row

    def assignments(self, principal_id: str | None = None, vault: str | None = None) -> list[AssignmentRow]:
        sql, args = _where(
            "SELECT id, role_id, principal_id, vault, secret, created FROM role_assignments WHERE 1 = 1",
            principal_id=principal_id, vault=vault,
        )
        rows = self._cached(("assignments", principal_id, vault and vault.lower()),
                            lambda: self._read(sql + " ORDER BY created, id", tuple(args)))
        return [AssignmentRow(*r) for r in rows]

    def remove_assignment(self, assignment_id: str) -> bool:
        with self.write() as db:
            return db.execute("DELETE FROM role_assignments WHERE id = ?", (assignment_id,)).rowcount == 1

    # -- audit ----------------------------------------------------------------

    def add_audit(self, time: int, vault: str | None, caller: str | None, record: dict) -> None:
        seq = self._insert("INSERT INTO audit (time, vault, caller, record) VALUES (?, ?, ?, ?)",
                           (time, vault, caller, json.dumps(record, separators=(",", ":"))))
        if seq % TRIM_EVERY == 0:
            self.trim_audit("audit", seq, time)

    def retention(self) -> dict:
        """How much of the audit logs is kept: the newest ``records`` of each, and (if ``days``) nothing older
        than that many days on the emulator's clock; never what came after the latest lesson started."""
        return {"records": int(self.get_meta(RETENTION_RECORDS) or KEEP_RECORDS),
                "days": int(self.get_meta(RETENTION_DAYS) or 0)}

    def trim_audit(self, table: str, newest: int, now: int) -> int:
        """Drop what retention no longer keeps of ``table`` (audit or workspace_audit); how many went.

        A lesson's checks read its log from where the lesson started (`Lesson.audit_position`), so nothing
        after the latest start (recorded in meta by `keep_audit_from`) ever goes."""
        kept = self.retention()
        protected = self.get_meta(f"{KEPT_FROM}{table}")
        last = newest - kept["records"]
        if protected is not None:
            last = min(last, int(protected))
        with self.write() as db:
            gone = db.execute(f"DELETE FROM {table} WHERE seq <= ?", (last,)).rowcount
            if kept["days"] and table == "audit":
                oldest = now - kept["days"] * 86400  # a day (clock.DAY: the clock module imports this one)
                gone += db.execute("DELETE FROM audit WHERE time < ? AND seq <= ?",
                                   (oldest, int(protected) if protected is not None else newest)).rowcount
        return gone

    def keep_audit_from(self, audit: int, workspace_audit: int) -> None:
        """A lesson starts: retention keeps every record after these positions while it is the latest."""
        self.set_meta(f"{KEPT_FROM}audit", str(audit))
        self.set_meta(f"{KEPT_FROM}workspace_audit", str(workspace_audit))

    def audit_position(self) -> int:
        """The number of the latest audit record (0 when there is none)."""
        return self._read("SELECT COALESCE(MAX(seq), 0) FROM audit")[0][0]

    def audit(self, vault: str | None, since: int | None, caller: str | None, after: int = 0) -> list[dict]:
        sql, args = _where("SELECT record FROM audit WHERE seq > ?", [after], vault=vault, caller=caller)
        if since is not None:
            sql += " AND time >= ?"
            args.append(since)
        return [json.loads(r[0]) for r in self._read(sql + " ORDER BY seq", tuple(args))]

    # -- Resource Manager: resource groups, placements, the Activity Log -----------

    def put_group(self, name: str, location: str, tags: dict[str, str], created: int) -> bool:
        """Create a resource group or update its tags; True when it was created."""
        with self.write() as db:
            cur = db.execute("INSERT OR IGNORE INTO resource_groups (name, location, tags, created) VALUES (?, ?, ?, ?)",
                             (name, location, json.dumps(tags), created))
            if cur.rowcount == 0:
                db.execute("UPDATE resource_groups SET tags = ? WHERE name = ?", (json.dumps(tags), name))
            return cur.rowcount == 1

    def get_group(self, name: str) -> GroupRow | None:
        rows = self._read("SELECT name, location, tags, created FROM resource_groups WHERE name = ?", (name,))
        return GroupRow(rows[0][0], rows[0][1], json.loads(rows[0][2]), rows[0][3]) if rows else None

    def list_groups(self) -> list[GroupRow]:
        rows = self._read("SELECT name, location, tags, created FROM resource_groups ORDER BY name")
        return [GroupRow(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def remove_group(self, name: str) -> bool:
        with self.write() as db:
            return db.execute("DELETE FROM resource_groups WHERE name = ?", (name,)).rowcount == 1

    def put_placement(self, row: PlacementRow) -> None:
        with self.write() as db:
            db.execute(
                "INSERT INTO placements (kind, name, resource_group, location, tags) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, name) DO UPDATE SET tags = excluded.tags",
                (row.kind, row.name, row.resource_group, row.location, json.dumps(row.tags)),
            )

    def placement(self, kind: str, name: str) -> PlacementRow | None:
        rows = self._cached(("placement", kind, name.lower()), lambda: self._read(
            "SELECT kind, name, resource_group, location, tags FROM placements WHERE kind = ? AND name = ?",
            (kind, name),
        ))
        return _placement(rows[0]) if rows else None

    def placements_in(self, resource_group: str) -> list[PlacementRow]:
        rows = self._read("SELECT kind, name, resource_group, location, tags FROM placements "
                          "WHERE resource_group = ? ORDER BY kind, name", (resource_group,))
        return [_placement(r) for r in rows]

    def add_activity(self, time: int, record: dict) -> None:
        self._insert("INSERT INTO activity (time, record) VALUES (?, ?)",
                     (time, json.dumps(record, separators=(",", ":"))))

    def activity(self, since: int | None = None) -> list[dict]:
        sql, args = "SELECT record FROM activity", tuple[int, ...]()
        if since is not None:
            sql, args = sql + " WHERE time >= ?", (since,)
        return [json.loads(r[0]) for r in self._read(sql + " ORDER BY seq", args)]

    # -- events ---------------------------------------------------------------

    def add_event(self, vault: str, kind: str, name: str, version: str, time: int, event: dict) -> None:
        """Record an event once: the same kind for the same version is never repeated."""
        with self.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO events (vault, kind, name, version, time, event) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (vault, kind, name, version, time, json.dumps(event, separators=(",", ":"))),
            )

    def events(self, vault: str | None) -> list[dict]:
        sql, args = "SELECT event FROM events", tuple[str, ...]()
        if vault is not None:
            sql, args = sql + " WHERE vault = ?", (vault,)
        return [json.loads(r[0]) for r in self._read(sql + " ORDER BY time, seq", args)]

    def events_after(self, seq: int, vault: str) -> list[tuple[int, dict]]:
        """(seq, event) of ``vault`` recorded after ``seq``, in the order they were recorded."""
        rows = self._read("SELECT seq, event FROM events WHERE vault = ? AND seq > ? ORDER BY seq", (vault, seq))
        return [(r[0], json.loads(r[1])) for r in rows]

    def last_event_seq(self) -> int:
        return self._read("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0]

    # -- event subscriptions ---------------------------------------------------

    def add_subscription(self, name: str, vault: str, endpoint: str, types: list[str], created: int) -> bool:
        """A new subscription, delivering events recorded from now on; False if the name is taken."""
        with self.write() as db:
            done = db.execute(
                "INSERT OR IGNORE INTO event_subscriptions (name, vault, endpoint, types, delivered, created) "
                "VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) FROM events), ?)",
                (name, vault, endpoint, json.dumps(types), created),
            )
            return done.rowcount == 1

    def subscriptions(self) -> list[dict]:
        rows = self._read("SELECT name, vault, endpoint, types, delivered, created, failures, error "
                          "FROM event_subscriptions ORDER BY created, name")
        return [{"name": r[0], "vault": r[1], "endpoint": r[2], "types": json.loads(r[3]), "delivered": r[4],
                 "created": r[5], "failures": r[6], "error": r[7]} for r in rows]

    def delete_subscription(self, name: str) -> bool:
        with self.write() as db:
            return db.execute("DELETE FROM event_subscriptions WHERE name = ?", (name,)).rowcount == 1

    def subscription_delivered(self, name: str, seq: int) -> None:
        with self.write() as db:
            db.execute("UPDATE event_subscriptions SET delivered = MAX(delivered, ?), failures = 0, error = NULL "
                       "WHERE name = ?", (seq, name))

    def subscription_failed(self, name: str, error: str) -> None:
        with self.write() as db:
            db.execute("UPDATE event_subscriptions SET failures = failures + 1, error = ? WHERE name = ?",
                       (error, name))

    def expiring_latest(self, until: int, after: int | None = None) -> list[VersionRow]:
        """The latest version of every live secret whose expiry is at or before ``until`` (and after ``after``)."""
        rows = self._read(
            f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN secrets s "
            "ON v.vault = s.vault AND v.name = s.name "
            "WHERE s.deleted_date IS NULL AND v.exp IS NOT NULL AND v.exp <= ? AND v.exp > ? "
            "AND s.vault IN (SELECT name FROM vaults WHERE deleted IS NULL) "
            "AND v.seq = (SELECT MAX(seq) FROM versions WHERE vault = s.vault AND name = s.name)",
            (until, after if after is not None else -(2**62)),
        )
        return [_version(r) for r in rows]

    # -- the Databricks workspace ----------------------------------------------

    def add_user(self, row: UserRow) -> bool:
        with self.write() as db:
            return db.execute(
                "INSERT OR IGNORE INTO workspace_users (name, token, admin, created) VALUES (?, ?, ?, ?)",
                (row.name, row.token, int(row.admin), row.created),
            ).rowcount == 1

    def find_user(self, name: str | None = None, token: str | None = None) -> UserRow | None:
        rows = self._read("SELECT name, token, admin, created FROM workspace_users WHERE name = ? OR token = ?",
                          (name, token))
        if not rows:
            return None
        found = rows[0]
        return UserRow(found[0], found[1], bool(found[2]), found[3])

    def list_users(self) -> list[UserRow]:
        return [UserRow(r[0], r[1], bool(r[2]), r[3])
                for r in self._read("SELECT name, token, admin, created FROM workspace_users ORDER BY rowid")]

    def add_scope(self, row: ScopeRow, acl: tuple[str, str] | None) -> bool:
        """A new scope (False if the name is taken), with its first ACL entry."""
        with self.write() as db:
            added = db.execute(
                "INSERT OR IGNORE INTO scopes (name, backend, vault, resource_id, dns_name, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (row.name, row.backend, row.vault, row.resource_id, row.dns_name, row.created),
            ).rowcount == 1
            if added and acl is not None:
                db.execute("INSERT INTO scope_acls (scope, principal, permission) VALUES (?, ?, ?)", (row.name, *acl))
            return added

    def get_scope(self, name: str) -> ScopeRow | None:
        rows = self._read("SELECT name, backend, vault, resource_id, dns_name, created FROM scopes WHERE name = ?",
                          (name,))
        return ScopeRow(*rows[0]) if rows else None

    def list_scopes(self) -> list[ScopeRow]:
        return [ScopeRow(*r) for r in self._read(
            "SELECT name, backend, vault, resource_id, dns_name, created FROM scopes ORDER BY name")]

    def remove_scope(self, name: str) -> bool:
        with self.write() as db:
            return db.execute("DELETE FROM scopes WHERE name = ?", (name,)).rowcount == 1

    def put_scope_secret(self, scope: str, key: str, value: bytes, updated: int) -> None:
        with self.write() as db:
            db.execute(
                "INSERT INTO scope_secrets (scope, key, value, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                (scope, key, value, updated),
            )

    def scope_secret(self, scope: str, key: str) -> tuple[bytes, int] | None:
        rows = self._read("SELECT value, updated FROM scope_secrets WHERE scope = ? AND key = ?", (scope, key))
        return (bytes(rows[0][0]), rows[0][1]) if rows else None

    def scope_secrets(self, scope: str) -> list[tuple[str, int]]:
        """(key, updated) of a Databricks-backed scope's secrets, by key."""
        return [(r[0], r[1]) for r in self._read(
            "SELECT key, updated FROM scope_secrets WHERE scope = ? ORDER BY key", (scope,))]

    def remove_scope_secret(self, scope: str, key: str) -> bool:
        with self.write() as db:
            return db.execute("DELETE FROM scope_secrets WHERE scope = ? AND key = ?", (scope, key)).rowcount == 1

    def put_acl(self, scope: str, principal: str, permission: str) -> None:
        with self.write() as db:
            db.execute(
                "INSERT INTO scope_acls (scope, principal, permission) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, principal) DO UPDATE SET permission = excluded.permission",
                (scope, principal, permission),
            )

    def acls(self, scope: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._read(
            "SELECT principal, permission FROM scope_acls WHERE scope = ? ORDER BY principal", (scope,))]

    def add_workspace_audit(self, record: dict) -> None:
        seq = self._insert("INSERT INTO workspace_audit (record) VALUES (?)", (json.dumps(record, separators=(",", ":")),))
        if seq % TRIM_EVERY == 0:
            self.trim_audit("workspace_audit", seq, 0)

    def workspace_audit(self, after: int = 0) -> list[dict]:
        return [json.loads(r[0]) for r in self._read(
            "SELECT record FROM workspace_audit WHERE seq > ? ORDER BY seq", (after,))]

    def workspace_audit_position(self) -> int:
        return self._read("SELECT COALESCE(MAX(seq), 0) FROM workspace_audit")[0][0]

    def remove_acl(self, scope: str, principal: str) -> bool:
        with self.write() as db:
            return db.execute("DELETE FROM scope_acls WHERE scope = ? AND principal = ?",
                              (scope, principal)).rowcount == 1
