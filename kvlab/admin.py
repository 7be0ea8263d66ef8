"""The emulator's management plane: vaults, identities, role assignments, audit, events, clock.

What ``az`` and the portal do in Azure, the emulator does here, for both the
``kvlab`` CLI and notebooks (`kvlab.connect()` returns a `Lab`, which is an
`Admin`). Every method returns plain JSON-ready data shaped like ``az`` output.
Errors are ``ValueError`` with a one-line reason.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from . import paths
from .emulator.audit import iso
from .emulator.clock import DAY
from .emulator.rbac import ROLES, find_role
from .emulator.resources import LESSONS_LOCATION
from .emulator.state import DATABASE, State
from .emulator.store import AssignmentRow, IdentityRow, VaultRow
from .emulator.vaults import VaultNotFound, recovery_level, unknown_vault

# The States open in this process, newest last: opening one costs 18 SQLite statements (4-5 ms on a busy two-core
# machine), and lesson 06's 180-day run makes 770 management calls (issue #14: open once per process). Keyed by
# process too, so a forked child opens its own; reopened when the database file is not the one opened (deleted
# or replaced under us); a few at most, so a process that visits many state directories keeps few files open.
_OPEN: dict[tuple[int, Path], tuple[tuple[int, int], State]] = {}
_OPEN_AT_MOST = 4
_OPENING = threading.Lock()


def _file_id(database: Path) -> tuple[int, int] | None:
    try:
        stat = database.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _opened(state_dir: Path) -> State:
    key, database = (os.getpid(), state_dir), state_dir / DATABASE
    with _OPENING:
        known = _OPEN.pop(key, None)
        if known is not None and known[0] == _file_id(database):
            _OPEN[key] = known  # newest last
            return known[1]
        if known is not None:
            known[1].close()  # its file was deleted or replaced: it would read and write a state nobody sees
        state = State(state_dir)
        _OPEN[key] = (_file_id(database) or (0, 0), state)
        mine = [k for k in _OPEN if k[0] == key[0]]
        for oldest in mine[: max(0, len(mine) - _OPEN_AT_MOST)]:
            _OPEN.pop(oldest)[1].close()
        return state


def parse_scope(scope: str) -> tuple[str, str | None]:
    """``VAULT``, ``VAULT/secrets/NAME`` or a full resource id -> (vault, secret or None)."""
    parts = [p for p in scope.strip().split("/") if p]
    lowered = [p.lower() for p in parts]
    if "vaults" in lowered:
        parts = parts[lowered.index("vaults") + 1 :]
    if len(parts) == 1:
        return parts[0].lower(), None
    if len(parts) == 3 and parts[1].lower() == "secrets":
        return parts[0].lower(), parts[2]
    raise ValueError(f"invalid scope {scope!r}: use VAULT or VAULT/secrets/NAME")


class Admin:
    """Management operations on one state directory (the emulator need not be running)."""

    def __init__(self, state_dir: str | os.PathLike | None = None):
        self.state_dir = paths.state_dir(state_dir, create=False)

    @contextlib.contextmanager
    def _state(self, create: bool = False) -> Iterator[State]:
        """The state directory's objects; only making something may create the directory.

        Reading a directory that is not there would create it (SQLite makes its
        file), so a mistyped ``--state-dir`` would leave an empty one behind and
        answer as if it were the real, empty state.
        """
        if not create and not self.state_dir.is_dir():
            raise ValueError(f"state directory {self.state_dir} does not exist: nothing has been created there yet")
        yield _opened(self.state_dir)

    @staticmethod
    def _unless_no_such_vault(state: State, vault: str | None, found: list[dict]) -> list[dict]:
        """``found``, unless it is empty because ``vault`` is not there: then that is the answer.

        An empty list for a mistyped name reads as "nothing happened". Records of
        a vault that is gone (or of requests to one that never was) still show.
        """
        if vault is not None and not found:
            try:
                state.vaults.get_vault(vault)
            except VaultNotFound:
                raise unknown_vault(vault) from None
        return found

    # -- vaults ---------------------------------------------------------------

    def _vault_json(self, state: State, row: VaultRow) -> dict:
        return {
            "name": row.name,
            "id": state.vaults.resource_id(row.name),
            "vaultUri": state.vault_url(row.name),
            "enableRbacAuthorization": True,
            "enablePurgeProtection": row.purge_protection,
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": row.retention_days,
            "recoveryLevel": recovery_level(row),
            "throttling": row.throttling,
        }

    def create_vault(self, name: str, throttling: str = "off", exist_ok: bool = False,
                     resource_group: str | None = None) -> dict:
        """Create a vault: RBAC permission model, soft delete, and no data access for anyone yet.

        ``resource_group``: the group Resource Manager shows it in (made if need be, in LESSONS_LOCATION); by default
        the emulator's own group."""
        with self._state(create=True) as state:
            existing = state.store.get_vault(name)
            row = existing if (exist_ok and existing) else state.vaults.create_vault(name, throttling=throttling)
            if resource_group is not None and not existing:
                self._place(state, "vault", row.name, resource_group)
            return self._vault_json(state, row)

    @staticmethod
    def _place(state: State, kind: str, name: str, resource_group: str) -> None:
        resources = state.vaults.resources
        group = resources.group(resource_group) or resources.put_group(resource_group, LESSONS_LOCATION, {},
                                                                       state.clock.now())[0]
        resources.place(kind, name, group.name, group.location, {})

    def list_vaults(self) -> list[dict]:
        with self._state() as state:
            return [self._vault_json(state, row) for row in state.vaults.list_vaults()]

    def protect_vault(self, name: str) -> dict:
        """Turn purge protection on (``az keyvault update --enable-purge-protection true``); it never goes off."""
        with self._state() as state:
            return self._vault_json(state, state.vaults.protect_vault(name))

    def update_vault(self, name: str, throttling: str) -> dict:
        with self._state() as state:
            return self._vault_json(state, state.vaults.update_vault(name, throttling))

    def list_deleted_vaults(self) -> list[str]:
        """The names of the soft-deleted vaults (deleted through Resource Manager: `az keyvault delete`)."""
        with self._state() as state:
            return [row.name for row in state.vaults.deleted_vaults()]

    def delete_vault(self, name: str, force: bool = False) -> dict:
        """Delete a vault and its secrets at once, deleted and purged (``force``: even one with purge protection,
        and a soft-deleted one)."""
        with self._state() as state:
            state.vaults.delete_vault(name, force=force)
        return {"name": name.lower(), "deleted": True}

    # -- identities -----------------------------------------------------------

    def _identity_json(self, state: State, row: IdentityRow) -> dict:
        return {
            "name": row.name,
            "type": {"user": "User", "userAssigned": "UserAssignedManagedIdentity"}.get(row.kind, "ServicePrincipal"),
            "clientId": row.client_id,
            "principalId": row.principal_id,
            "tenantId": state.identities.tenant_id,
        }

    def create_identity(self, name: str, resource_group: str | None = None) -> dict:
        """A user-assigned managed identity (as ``az identity create``), in ``resource_group`` if given."""
        with self._state(create=True) as state:
            row = state.identities.create(name)
            if resource_group is not None:
                self._place(state, "identity", row.name, resource_group)
            return self._identity_json(state, row)

    def list_identities(self) -> list[dict]:
        with self._state() as state:
            return [self._identity_json(state, row) for row in state.identities.list()]

    def identity(self, name_or_id: str) -> dict:
        with self._state() as state:
            return self._identity_json(state, state.identities.get(name_or_id))

    def delete_identity(self, name: str) -> dict:
        with self._state() as state:
            row = state.identities.delete(name)
        return {"name": row.name, "deleted": True}

    # -- role assignments -----------------------------------------------------

    def _assignment_json(self, state: State, row: AssignmentRow) -> dict:
        scope = state.vaults.resource_id(row.vault, row.secret)
        principal = state.identities.by_principal(row.principal_id)
        role = find_role(row.role_id)
        return {
            "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{row.id}",
            "name": row.id,
            "principalId": row.principal_id,
            "principalName": principal.name if principal else None,
            "principalType": "User" if principal and principal.kind == "user" else "ServicePrincipal",
            "roleDefinitionId": f"/subscriptions/{state.vaults.subscription_id}/providers/"
            f"Microsoft.Authorization/roleDefinitions/{role.id}",
            "roleDefinitionName": role.name,
            "scope": scope,
        }

    def assign_role(self, role: str, assignee: str, scope: str) -> dict:
        """Grant ``role`` to ``assignee`` (name, client id or principal id) at a vault or secret."""
        vault, secret = parse_scope(scope)
        with self._state() as state:
            principal = state.identities.get(assignee)
            row = state.roles.create(role, principal.principal_id, vault, secret)
            return self._assignment_json(state, row)

    def role_assignments(self, assignee: str | None = None, scope: str | None = None) -> list[dict]:
        """Assignments, optionally of one assignee and/or at one vault (and everything in it)."""
        with self._state() as state:
            principal = state.identities.get(assignee).principal_id if assignee else None
            vault = parse_scope(scope)[0] if scope else None
            return [self._assignment_json(state, r) for r in state.roles.list(principal, vault)]

    def delete_role_assignment(
        self, assignment_id: str | None = None, role: str | None = None,
        assignee: str | None = None, scope: str | None = None,
    ) -> dict:
        """Remove one assignment, by its id or by role + assignee + scope (as ``az``)."""
        with self._state() as state:
            if assignment_id is None:
                if not (role and assignee and scope):
                    raise ValueError("give --id, or all of --role, --assignee and --scope")
                vault, secret = parse_scope(scope)
                principal = state.identities.get(assignee).principal_id
                role_id = find_role(role).id
                matches = [
                    r for r in state.roles.list(principal, vault)
                    if r.role_id == role_id and (r.secret or "").lower() == (secret or "").lower()
                ]
                if not matches:
                    raise ValueError(f"no {find_role(role).name!r} assignment for {assignee!r} at {scope!r}")
                assignment_id = matches[0].id
            state.roles.delete(assignment_id)
        return {"name": assignment_id.rsplit("/", 1)[-1], "deleted": True}

    @staticmethod
    def role_definitions() -> list[dict]:
        return [
            {"name": r.id, "roleName": r.name, "description": r.description, "dataActions": list(r.data_actions)}
            for r in ROLES
        ]

    # -- the Databricks workspace ---------------------------------------------------

    def workspace(self, user: str | None = None) -> dict:
        """The workspace's URL and a user's personal access token (the learner's by default)."""
        with self._state(create=True) as state:
            row = state.workspace.user(user) if user else state.workspace.user()
            return {"host": state.workspace_url(), "user": row.name, "token": row.token}

    def create_workspace_user(self, name: str, admin: bool = False) -> dict:
        """A workspace user with a token of its own (for scope ACLs: READ, WRITE, MANAGE)."""
        with self._state(create=True) as state:
            row = state.workspace.add_user(name, admin)
            return {"host": state.workspace_url(), "user": row.name, "admin": row.admin, "token": row.token}

    def ensure_workspace_user(self, name: str) -> dict:
        """A workspace user, created if absent (lessons stage theirs this way)."""
        with self._state(create=True) as state:
            if state.store.find_user(name=name) is None:
                state.workspace.add_user(name)
        return self.workspace(name)

    def workspace_scopes(self) -> list[dict]:
        """Every secret scope with its backend, vault and ACL, read behind the workspace's back (for checks)."""
        with self._state(create=True) as state:
            return [{"name": row.name, "backend": row.backend, "vault": row.vault,
                     "acls": dict(state.store.acls(row.name))} for row in state.workspace.scopes()]

    def delete_workspace_scope(self, name: str) -> bool:
        """Remove a scope, its secrets and ACLs, whoever made it (a lesson's reset); False if absent."""
        with self._state(create=True) as state:
            return state.store.remove_scope(name)

    def workspace_audit(self, after: int = 0) -> list[dict]:
        """The workspace's audit events (serviceName secrets), oldest first, after a position; never a value.
        (The server commits a request's records before it answers, so no answered request is missing.)"""
        with self._state(create=True) as state:
            return state.store.workspace_audit(after)

    def workspace_audit_position(self) -> int:
        with self._state(create=True) as state:
            return state.store.workspace_audit_position()

    def stage(self, key: str, value: str | None = None) -> str | None:
        """What a lesson's set-up staged (a fact its checks compare with): set it, or read it back."""
        with self._state(create=True) as state:
            if value is not None:
                state.store.set_meta(f"staged:{key}", value)
            return state.store.get_meta(f"staged:{key}")

    def workspace_users(self) -> list[dict]:
        """The workspace's users (their tokens are not listed)."""
        with self._state(create=True) as state:
            return [{"user": row.name, "admin": row.admin} for row in state.workspace.users()]

    # -- inspection (for checks: reads here leave no audit record) ---------------

    def inspect_secret(self, vault: str, name: str) -> dict | None:
        """The latest version of a live secret, read behind the vault's back (None if absent).

        Checks use this so that checking never shows up in the audit log the
        learner's own work is judged by.
        """
        with self._state() as state:
            try:
                state.vaults.get_vault(vault)
            except VaultNotFound:
                return None
            row = state.vaults.inspect(vault, name)
            return None if row is None else self._inspected(row)

    def inspect_versions(self, vault: str, name: str) -> list[dict]:
        """Every version of a secret, oldest first, read behind the vault's back ([] if absent); as inspect_secret."""
        with self._state() as state:
            try:
                state.vaults.get_vault(vault)
            except VaultNotFound:
                return []
            return [self._inspected(row) for row in state.store.all_versions(vault, name)]

    @staticmethod
    def _inspected(row) -> dict:
        return {
            "name": row.name, "version": row.version, "value": row.value, "contentType": row.content_type,
            "tags": row.tags, "enabled": row.enabled, "created": row.created, "updated": row.updated,
            "nbf": row.nbf, "exp": row.exp,
        }

    def secret_values(self, vault: str) -> dict[str, list[str]]:
        """Every value each secret of ``vault`` holds or held, read behind the vault's back ({} if no vault).

        For the output watch of lesson checks (kvlab.watch), never for display.
        """
        with self._state() as state:
            try:
                state.vaults.get_vault(vault)
            except VaultNotFound:
                return {}
            return state.vaults.values(vault)

    # -- audit, events, clock ---------------------------------------------------

    def audit(
        self, vault: str | None = None, since: str | None = None, identity: str | None = None, after: int = 0
    ) -> list[dict]:
        """Audit records (oldest first), filtered by vault, by time, by caller name, or after a position."""
        with self._state() as state:
            if identity is not None:
                identity = state.identities.get(identity).name
            return self._unless_no_such_vault(state, vault, state.audit.query(vault, since, identity, after))

    def audit_position(self) -> int:
        """Where the audit log ends now: `audit(after=...)` then returns only later records."""
        with self._state() as state:
            return state.store.audit_position()

    def lesson_positions(self) -> tuple[int, int]:
        """Where the audit log and the workspace's audit log end as a lesson starts; retention keeps every
        later record of both while it is the latest lesson started (its checks read them)."""
        with self._state(create=True) as state:
            positions = state.store.audit_position(), state.store.workspace_audit_position()
            state.store.keep_audit_from(*positions)
            return positions

    def retention(self, records: int | None = None, days: int | None = None) -> dict:
        """How much of the audit logs is kept (set ``records`` or ``days`` to change it; days 0: no age limit)."""
        from .emulator.store import RETENTION_DAYS, RETENTION_RECORDS

        if records is not None and records < 1000:
            raise ValueError(f"--records {records}: keep at least 1000 records")
        if days is not None and days < 0:
            raise ValueError(f"--days {days}: give a number of days, or 0 for no age limit")
        with self._state(create=True) as state:
            if records is not None:
                state.store.set_meta(RETENTION_RECORDS, str(records))
            if days is not None:
                state.store.set_meta(RETENTION_DAYS, str(days))
            return state.store.retention()

    def events(self, vault: str | None = None) -> list[dict]:
        """Event Grid-style secret events (oldest first), optionally of one vault."""
        with self._state() as state:
            return self._unless_no_such_vault(state, vault, state.events.list(vault))

    def create_event_subscription(self, name: str, vault: str, endpoint: str,
                                  event_types: list[str] | tuple[str, ...] = ()) -> dict:
        """Deliver ``vault``'s secret events from now on to a webhook (as ``az eventgrid event-subscription create``).

        The endpoint must pass Event Grid's validation handshake first; ``event_types`` filters
        (default: all three secret events). A subscription of the same name on the vault is replaced, as
        Event Grid's PUT replaces it.
        """
        from .emulator.events import subscribe

        with self._state() as state:
            return self._subscription_json(state, subscribe(state, name, vault, endpoint, event_types))

    def event_subscriptions(self) -> list[dict]:
        with self._state() as state:
            return [self._subscription_json(state, s) for s in state.store.subscriptions()]

    def wait_delivered(self, vault: str | None = None, endpoint: str | None = None, timeout: float = 10.0,
                       through_retries: bool = False) -> list[dict]:
        """Wait until every subscription (on ``vault``, or to ``endpoint``) has had each event due delivered, or
        has a failed delivery waiting for its retry (``through_retries``: wait for the retries too); at most
        ``timeout`` seconds. Returns the subscriptions still waiting."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            waiting = [s for s in self.event_subscriptions()
                       if (vault is None or s["vault"].lower() == vault.lower())
                       and (endpoint is None or s["endpoint"] == endpoint)
                       and s["pendingEvents"] and (through_retries or not s["failedDeliveries"])]
            if not waiting or time.monotonic() >= deadline:
                return waiting
            time.sleep(0.02)

    def delete_event_subscription(self, name: str) -> dict:
        from .emulator.events import SubscriptionError

        with self._state() as state:
            if not state.store.delete_subscription(name):
                raise SubscriptionError(f"there is no event subscription named {name!r}")
        return {"name": name, "deleted": True}

    @staticmethod
    def _subscription_json(state: State, row: dict) -> dict:
        from .emulator.audit import iso
        from .emulator.events import EVENT_TYPES

        wanted = set(row["types"]) or set(EVENT_TYPES)
        pending = sum(1 for _, event in state.store.events_after(row["delivered"], row["vault"])
                      if event["eventType"] in wanted)
        return {"name": row["name"], "vault": row["vault"], "endpoint": row["endpoint"],
                "eventTypes": row["types"] or "all", "created": iso(row["created"]),
                "pendingEvents": pending, "failedDeliveries": row["failures"], "lastError": row["error"]}

    def clock(self) -> dict:
        with self._state() as state:
            return self._clock_json(state)

    def advance_clock(self, days: float = 0, hours: float = 0, minutes: float = 0) -> dict:
        """Move the emulator's clock forward; expiry, purge dates and events follow it."""
        with self._state(create=True) as state:
            state.clock.advance(int(days * DAY + hours * 3600 + minutes * 60))
            state.events.sweep()
            return self._clock_json(state)

    def reset_clock(self) -> dict:
        with self._state() as state:
            state.clock.reset()
            return self._clock_json(state)

    @staticmethod
    def _clock_json(state: State) -> dict:
        offset = state.clock.offset()
        return {"now": iso(state.clock.now()), "offsetSeconds": offset, "offsetDays": round(offset / DAY, 3)}
