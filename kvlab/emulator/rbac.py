"""Azure RBAC for Key Vault data: the four built-in roles and the decision for one request.

Role definitions are Azure's own (names, GUIDs, data actions); a data action
matches a permission the way Azure matches it: case-insensitive, ``*`` standing
for any run of characters. A vault created here grants nothing to anyone, as in
Azure: access comes only from role assignments at vault or secret scope.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from functools import lru_cache

from .clock import Clock
from .store import AssignmentRow, Store
from .vaults import NAME_RE, unknown_vault


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    name: str
    data_actions: tuple[str, ...]
    description: str
    actions: tuple[str, ...] = ()  # management-plane actions (Resource Manager), as Azure's definition lists them

    def permits(self, data_action: str) -> bool:
        return any(_pattern(p).match(data_action) for p in self.data_actions)


# What Key Vault Administrator, Secrets Officer and Reader may do on the management plane: read.
# (Secrets User has no management action.) None of them may create, change or delete a vault.
_READER_ACTIONS = (
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
)

ROLES: tuple[RoleDefinition, ...] = (
    RoleDefinition(
        "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        "Key Vault Administrator",
        ("Microsoft.KeyVault/vaults/*",),
        "Perform all data plane operations on a key vault and all objects in it.",
        _READER_ACTIONS,
    ),
    RoleDefinition(
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "Key Vault Secrets Officer",
        ("Microsoft.KeyVault/vaults/secrets/*",),
        "Perform any action on the secrets of a key vault.",
        _READER_ACTIONS,
    ),
    RoleDefinition(
        "4633458b-17de-408a-b874-0445c86b69e6",
        "Key Vault Secrets User",
        (
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ),
        "Read secret contents.",
    ),
    RoleDefinition(
        "21090545-7ca7-4776-b22c-e363652d74d2",
        "Key Vault Reader",
        (
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ),
        "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read "
        "sensitive values such as secret contents.",
        _READER_ACTIONS,
    ),
)


@lru_cache(maxsize=None)
def _pattern(permission: str) -> re.Pattern:
    return re.compile(
        "^" + ".*".join(re.escape(part) for part in permission.split("*")) + "$", re.IGNORECASE
    )


def find_role(name_or_id: str) -> RoleDefinition:
    """A built-in role by its name or GUID (either case); ValueError names the four choices."""
    wanted = name_or_id.strip().lower()
    wanted = wanted.rsplit("/", 1)[-1]  # also accept a full roleDefinitionId
    for role in ROLES:
        if wanted in (role.id, role.name.lower()):
            return role
    choices = ", ".join(f"'{r.name}'" for r in ROLES)
    raise ValueError(f"unknown role {name_or_id!r}; choose one of {choices} (or their GUIDs)")


def scope_covers(scope_vault: str, scope_secret: str | None, vault: str, secret: str | None) -> bool:
    """Whether an assignment at (vault[, secret]) reaches a request on (vault[, secret])."""
    if scope_vault.lower() != vault.lower():
        return False
    if scope_secret is None:
        return True
    return secret is not None and scope_secret.lower() == secret.lower()


class Forbidden(Exception):
    """The caller holds no role that grants the data action here (403 ForbiddenByRbac)."""

    def __init__(self, data_action: str, resource: str):
        super().__init__(data_action)
        self.data_action = data_action
        self.resource = resource


class RoleAssignments:
    """Who holds which role where, and the decision for one request."""

    def __init__(self, store: Store, clock: Clock):
        self.store = store
        self.clock = clock

    def create(self, role: str, principal_id: str, vault: str, secret: str | None,
               assignment_id: str | None = None) -> AssignmentRow:
        """Assign ``role``; an identical assignment already there is returned instead (compare ids to tell)."""
        definition = find_role(role)
        if self.store.get_vault(vault) is None:
            raise unknown_vault(vault)
        if secret is not None and not NAME_RE.match(secret):
            raise ValueError(f"invalid secret name {secret!r} in the scope")
        row = AssignmentRow(
            id=assignment_id or str(uuid.uuid4()), role_id=definition.id, principal_id=principal_id,
            vault=vault.lower(), secret=secret, created=self.clock.now(),
        )
        return self.store.add_assignment(row)

    def list(self, principal_id: str | None = None, vault: str | None = None) -> list[AssignmentRow]:
        return self.store.assignments(principal_id, vault)

    def delete(self, assignment_id: str) -> None:
        if not self.store.remove_assignment(assignment_id.rsplit("/", 1)[-1]):
            raise ValueError(f"role assignment {assignment_id!r} does not exist")

    def authorize(self, principal_id: str, vault: str, secret: str | None, data_action: str) -> AssignmentRow:
        """The assignment that grants ``data_action``, or Forbidden."""
        for assignment in self.store.assignments(principal_id, vault):
            if scope_covers(assignment.vault, assignment.secret, vault, secret) and find_role(
                assignment.role_id
            ).permits(data_action):
                return assignment
        resource = f"vaults/{vault}" + (f"/secrets/{secret}" if secret else "")
        raise Forbidden(data_action, resource)
