"""The Databricks workspace domain: users and their tokens, secret scopes, their secrets and ACLs.

Every rule of Databricks' Secrets API lives here; the HTTP layer
(`databricks.py`) only translates. Errors are `DatabricksError`s carrying the
status, ``error_code`` and message Databricks answers with.

A scope is backed either by the workspace itself (``DATABRICKS``: values are
stored here) or by a Key Vault (``AZURE_KEYVAULT``: a read-only view of the
vault, read live as the ``AzureDatabricks`` application through the vault's own
RBAC and audit path, which the caller passes in as a `VaultReader`).
"""

from __future__ import annotations

import re
import secrets as _random
from dataclasses import dataclass
from typing import Protocol

from .clock import Clock
from .identity import LEARNER, UPN_DOMAIN
from .store import ScopeRow, Store, UserRow

DATABRICKS_BACKEND = "DATABRICKS"
KEYVAULT_BACKEND = "AZURE_KEYVAULT"
READ, WRITE, MANAGE = "READ", "WRITE", "MANAGE"
PERMISSIONS = (READ, WRITE, MANAGE)  # each includes the ones before it
ALL_USERS = "users"  # the principal that stands for every user of the workspace
LEARNER_USER = f"{LEARNER}@{UPN_DOMAIN}"  # the workspace's first user and admin: the learner's sign-in name
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,128}\Z")  # scope names (\Z: a trailing newline is not a name)
KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}\Z")  # secret keys
USER_RE = re.compile(r"^[A-Za-z0-9_.+-]+@[A-Za-z0-9.-]+\Z")
MAX_VALUE_BYTES = 128 * 1024
TOKEN_PREFIX = "dapi"


class DatabricksError(Exception):
    """An error the workspace answers with: HTTP status, error_code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error_code": self.code, "message": self.message}


def invalid(message: str) -> DatabricksError:
    return DatabricksError(400, "INVALID_PARAMETER_VALUE", message)


def no_scope(scope: str) -> DatabricksError:
    return DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")


def denied(user: str, permission: str, scope: str) -> DatabricksError:
    return DatabricksError(403, "PERMISSION_DENIED",
                           f"User {user} does not have {permission} permission on scope {scope}")


class VaultReader(Protocol):
    """Reads a vault as the AzureDatabricks application (RBAC, audit); raises DatabricksError."""

    def get(self, vault: str, name: str) -> str: ...

    def list(self, vault: str) -> list[tuple[str, int]]: ...


@dataclass(frozen=True)
class Secret:
    key: str
    value: bytes


class Workspace:
    def __init__(self, store: Store, clock: Clock):
        self.store = store
        self.clock = clock

    # -- users and tokens ---------------------------------------------------------

    def user(self, name: str = LEARNER_USER) -> UserRow:
        """A workspace user by name (the learner, created with the workspace, by default)."""
        if name == LEARNER_USER and self.store.find_user(name=LEARNER_USER) is None:
            self.store.add_user(UserRow(LEARNER_USER, _new_token(), True, self.clock.now()))
        found = self.store.find_user(name=name)
        if found is None:
            raise ValueError(f"no workspace user {name!r}; see: kvlab databricks user list")
        return found

    def add_user(self, name: str, admin: bool = False) -> UserRow:
        if not USER_RE.match(name or ""):
            raise ValueError(f"invalid user name {name!r}: use an e-mail address, like ana@example.com")
        self.user()  # the learner comes first
        row = UserRow(name, _new_token(), admin, self.clock.now())
        if not self.store.add_user(row):
            raise ValueError(f"workspace user {name!r} already exists")
        return row

    def users(self) -> list[UserRow]:
        self.user()
        return self.store.list_users()

    def authenticate(self, token: str) -> UserRow | None:
        return self.store.find_user(token=token) if token.startswith(TOKEN_PREFIX) else None

    # -- scopes -------------------------------------------------------------------

    def create_scope(self, user: UserRow, name: str, backend: str, initial_manage_principal: str | None,
                     vault: str | None = None, resource_id: str | None = None, dns_name: str | None = None) -> None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise invalid("Scope name must consist of alphanumeric characters, dashes, underscores, periods "
                          "and '@', and may not exceed 128 characters.")
        if initial_manage_principal not in (None, "", ALL_USERS):
            raise invalid(f"initial_manage_principal must be '{ALL_USERS}' or omitted.")
        acl = (ALL_USERS if initial_manage_principal == ALL_USERS else user.name, MANAGE)
        row = ScopeRow(name, backend, vault, resource_id, dns_name, self.clock.now())
        if not self.store.add_scope(row, acl):
            raise DatabricksError(400, "RESOURCE_ALREADY_EXISTS", f"Scope {name} already exists!")

    def scopes(self) -> list[ScopeRow]:
        """Every scope of the workspace: scope names are visible to every user."""
        return self.store.list_scopes()

    def delete_scope(self, user: UserRow, name: str) -> None:
        self._require(user, name, MANAGE)
        self.store.remove_scope(name)

    # -- secrets ------------------------------------------------------------------

    def put_secret(self, user: UserRow, scope: str, key: str, value: bytes) -> None:
        found = self._require(user, scope, WRITE)
        if found.backend == KEYVAULT_BACKEND:
            raise _read_only(scope)
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise invalid("Secret key must consist of alphanumeric characters, dashes, underscores and periods, "
                          "and may not exceed 128 characters.")
        if len(value) > MAX_VALUE_BYTES:
            raise invalid(f"Secret value must not exceed {MAX_VALUE_BYTES} bytes.")
        self.store.put_scope_secret(scope, key, value, self.clock.now() * 1000)

    def delete_secret(self, user: UserRow, scope: str, key: str) -> None:
        found = self._require(user, scope, WRITE)
        if found.backend == KEYVAULT_BACKEND:
            raise _read_only(scope)
        if not self.store.remove_scope_secret(scope, key):
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST",
                                  f"Secret does not exist with scope: {scope} and key: {key}")

    def list_secrets(self, user: UserRow, scope: str, vaults: VaultReader) -> list[tuple[str, int]]:
        """(key, last updated in epoch milliseconds) of each secret in the scope."""
        found = self._require(user, scope, READ)
        if found.backend == KEYVAULT_BACKEND:
            return vaults.list(found.vault or "")
        return self.store.scope_secrets(scope)

    def get_secret(self, user: UserRow, scope: str, key: str, vaults: VaultReader) -> Secret:
        found = self._require(user, scope, READ)
        if found.backend == KEYVAULT_BACKEND:
            return Secret(key, vaults.get(found.vault or "", key).encode())
        stored = self.store.scope_secret(scope, key)
        if stored is None:
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST",
                                  f"Secret does not exist with scope: {scope} and key: {key}")
        return Secret(key, stored[0])

    # -- ACLs ---------------------------------------------------------------------

    def put_acl(self, user: UserRow, scope: str, principal: str, permission: str) -> None:
        self._require(user, scope, MANAGE)
        if permission not in PERMISSIONS:
            raise invalid(f"Invalid permission {permission!r}: use one of {', '.join(PERMISSIONS)}.")
        if principal != ALL_USERS and self.store.find_user(name=principal) is None:
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Principal {principal} does not exist!")
        self.store.put_acl(scope, principal, permission)

    def acls(self, user: UserRow, scope: str) -> list[tuple[str, str]]:
        self._require(user, scope, MANAGE)
        return self.store.acls(scope)

    def acl(self, user: UserRow, scope: str, principal: str) -> tuple[str, str]:
        for entry in self.acls(user, scope):
            if entry[0] == principal:
                return entry
        raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"No ACL for principal {principal} on scope {scope}!")

    def delete_acl(self, user: UserRow, scope: str, principal: str) -> None:
        self._require(user, scope, MANAGE)
        if not self.store.remove_acl(scope, principal):
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"No ACL for principal {principal} on scope {scope}!")

    def permission(self, user: UserRow, scope: str) -> str | None:
        """What ``user`` may do in ``scope``: admins MANAGE every scope; otherwise the best ACL entry."""
        if user.admin:
            return MANAGE
        held = [p for who, p in self.store.acls(scope) if who in (user.name, ALL_USERS)]
        return max(held, key=PERMISSIONS.index, default=None)

    def _require(self, user: UserRow, scope: str, permission: str) -> ScopeRow:
        found = self.store.get_scope(scope) if isinstance(scope, str) else None
        if found is None:
            raise no_scope(scope)
        held = self.permission(user, scope)
        if held is None or PERMISSIONS.index(held) < PERMISSIONS.index(permission):
            raise denied(user.name, permission, scope)
        return found


def _read_only(scope: str) -> DatabricksError:
    return DatabricksError(400, "BAD_REQUEST",
                           f"Scope {scope} is backed by Azure Key Vault and is read-only: manage its secrets in the vault.")


def _new_token() -> str:
    """A personal access token, shaped like Databricks' (dapi + 32 hex digits), generated here."""
    return TOKEN_PREFIX + _random.token_hex(16)
