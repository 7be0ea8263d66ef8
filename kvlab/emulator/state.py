"""Everything one state directory holds, opened together.

The server (`app.py`) and the management side (`kvlab.admin`, used by the CLI
and by notebooks) open the same objects over the same SQLite file.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from .. import paths
from .audit import Audit
from .clock import Clock
from .events import Events
from .identity import Identities
from .rbac import RoleAssignments
from .store import Store, VersionRow
from .vaults import Vaults
from .workspaces import Workspace

DATABASE = "kvlab.db"


def vault_url(vault: str, port: int) -> str:
    """A vault's URL on the emulator, as SecretClient wants it; `*.localhost` reaches loopback (RFC 6761)."""
    return f"https://{vault.lower()}.localhost:{port}/"


class State:
    def __init__(self, state_dir: Path, busy_timeout: float = 30.0):
        self.dir = Path(state_dir)
        self.store = Store(self.dir / DATABASE, busy_timeout)
        self.clock = Clock(self.store)
        self.events = Events(self.store, self.clock, self._topic, self.secret_url)
        self.vaults = Vaults(self.store, self.clock, on_new_version=self.events.new_version)
        self.identities = Identities(self.store)
        self.roles = RoleAssignments(self.store, self.clock)
        self.audit = Audit(self.store, self.clock)
        self.workspace = Workspace(self.store, self.clock)
        # Azure names a workspace adb-<workspace id>.<n>.azuredatabricks.net; here .localhost stands for the zone
        self.workspace_id = self.store.meta_or_create("workspace_id", lambda: str(secrets.randbelow(9 * 10**15) + 10**15))

    def port(self) -> int:
        """The port vault URLs carry: the one the emulator last listened on."""
        return int(self.store.get_meta("last_port") or paths.default_port())

    def vault_url(self, vault: str) -> str:
        return vault_url(vault, self.port())

    def workspace_host(self) -> str:
        """The Databricks workspace's host name (without the port)."""
        return f"adb-{self.workspace_id}.1.localhost"

    def workspace_url(self) -> str:
        return f"https://{self.workspace_host()}:{self.port()}"

    def secret_url(self, row: VersionRow) -> str:
        return f"{self.vault_url(row.vault)}secrets/{row.name}/{row.version}"

    def _topic(self, vault: str) -> str:
        return self.vaults.resource_id(vault)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
