"""Azure Resource Manager: the slice of the management plane the course's ``az`` commands need.

``https://management.kvlab.localhost:<port>/`` answers the real Azure CLI, once
``kvlab env`` has registered it as a cloud (``AZURE_CONFIG_DIR``):

* the cloud's metadata (what ``az cloud register --endpoint-resource-manager`` reads);
* the subscription and the tenant (``az login --identity``, ``az account show``);
* resource groups (``az group create/show/list/delete``);
* ``Microsoft.KeyVault/vaults`` (``az keyvault create/show/list/delete``): the same
  vaults the data plane serves, RBAC permission model only;
* ``Microsoft.ManagedIdentity/userAssignedIdentities`` (``az identity``): the same
  identities the token endpoint signs in;
* ``Microsoft.Authorization`` role definitions and role assignments at vault and
  secret scope (``az role definition list``, ``az role assignment create/list/delete``);
* the Activity Log of management writes (``az monitor activity-log list``).

Each operation is one row of `OPERATIONS`: method, path, its operation name in the
Activity Log, and a handler. The request path (in `EmulatorApp.arm_request`) is:
token (for the management audience only: a vault's token is refused here, as
Resource Manager refuses it), api-version, operation, subscription, RBAC, domain,
answer, Activity Log record for writes. Answers and errors have Resource
Manager's shapes: ``{"error": {"code", "message"}}``.

RBAC on the management plane, as in Azure: the learner made the subscription and
is its Owner; Owner grants every management action and no data action, so creating
a vault gives nobody access to its secrets. Key Vault's data roles grant the
management reads their definitions list (Administrator, Secrets Officer, Reader)
and never a write. Managed identities hold nothing else here.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from . import graph
from .audit import bounded, iso
from .identity import IDENTITY_NAME_RE, LEARNER, UPN_DOMAIN, Caller
from .rbac import ROLES, RoleDefinition, find_role, scope_covers
from .resources import GROUP_NAME_RE, PROVIDERS, SUBSCRIPTION_NAME, location_name
from .state import State
from .store import AssignmentRow, IdentityRow, VaultRow
from .vaults import NAME_RE, VAULT_NAME_RE, PurgeProtected, VaultDeleted, VaultNotFound

HOST = "management.kvlab.localhost"
AUDIENCE = f"https://{HOST}/"  # what a management token's aud says (without the port)
CLOUD = "kvlab"  # the name `kvlab env` registers the cloud under in the Azure CLI
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"  # Azure's Owner role definition
RESOURCE_NOT_FOUND_HELP = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
MAX_BODY = 64 * 1024


class ArmError(Exception):
    """An answer in Resource Manager's error shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass
class ArmCall:
    """One request to Resource Manager, authenticated and routed."""

    state: State
    caller: Caller | None  # None on the one anonymous endpoint (the cloud's metadata)
    method: str
    operation: "Operation"
    params: dict[str, str]
    query: dict[str, str]
    body: bytes
    base: str  # https://management.kvlab.localhost:<port>
    port: int

    @property
    def subscription_id(self) -> str:
        return self.state.vaults.subscription_id

    @property
    def tenant_id(self) -> str:
        return self.state.identities.tenant_id

    def json_body(self) -> dict:
        try:
            data = json.loads(self.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                           "deserialized: it is not JSON.") from None
        if not isinstance(data, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return data

    def authorize(self, action: str, scope: str) -> None:
        """RBAC on the management plane (see the module docstring), or ARM's AuthorizationFailed."""
        assert self.caller is not None
        if self.caller.name == LEARNER:  # the subscription's Owner
            return
        # Everyone else holds Key Vault roles at most, at a vault or a secret: they reach that scope and below.
        if _scope_kind(self, scope) == "vault":
            vault, secret = _vault_scope(self, scope, must_exist=False)
            for row in self.state.roles.list(self.caller.oid):
                if scope_covers(row.vault, row.secret, vault, secret) and any(
                        _matches(pattern, action) for pattern in find_role(row.role_id).actions):
                    return
        raise ArmError(403, "AuthorizationFailed", (
            f"The client '{self.caller.oid}' with object id '{self.caller.oid}' does not have authorization to "
            f"perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently "
            "granted, please refresh your credentials."))

    def in_group(self, kind: str, name: str, group: str) -> bool:
        """Whether Resource Manager has vault or identity ``name`` in ``group``."""
        return self.state.vaults.resources.placement(kind, name).resource_group.lower() == group.lower()

    def group_or_404(self) -> str:
        group = self.state.vaults.resources.group(self.params["group"])
        if group is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{self.params['group']}' could not be found.")
        return group.name


def _matches(pattern: str, action: str) -> bool:
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), action, re.IGNORECASE) is not None


Handler = Callable[[ArmCall], "tuple[int, dict | None]"]


@dataclass(frozen=True)
class Operation:
    name: str  # operationName in the Activity Log, and the action RBAC checks
    method: str
    pattern: re.Pattern
    handler: Handler
    anonymous: bool = False


# -- shaping answers -------------------------------------------------------------------


def _tags(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ArmError(400, "InvalidTag", "Tags must be a JSON object of strings.")
    if len(raw) > 50:
        raise ArmError(400, "InvalidTag", "A resource can have at most 50 tags.")
    return raw


def _location(body: dict) -> str:
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    return location_name(location)


def _group_json(call: ArmCall, row) -> dict:
    return {"id": call.state.vaults.resources.group_id(row.name), "name": row.name,
            "type": "Microsoft.Resources/resourceGroups", "location": row.location, "tags": row.tags,
            "properties": {"provisioningState": "Succeeded"}}


def _vault_json(call: ArmCall, row: VaultRow) -> dict:
    resources = call.state.vaults.resources
    placed = resources.placement("vault", row.name)
    return {
        "id": resources.resource_id("vault", row.name),
        "name": row.name,
        "type": PROVIDERS["vault"],
        "location": placed.location,
        "tags": placed.tags,
        "properties": {
            "sku": {"family": "A", "name": "standard"},
            "tenantId": call.tenant_id,
            "accessPolicies": [],
            "enabledForDeployment": False,
            "enabledForDiskEncryption": False,
            "enabledForTemplateDeployment": False,
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": row.retention_days,
            "enableRbacAuthorization": True,
            "enablePurgeProtection": True if row.purge_protection else None,  # ARM leaves it out until set
            "vaultUri": call.state.vault_url(row.name),
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
        },
    }


def _identity_json(call: ArmCall, row: IdentityRow) -> dict:
    resources = call.state.vaults.resources
    placed = resources.placement("identity", row.name)
    return {
        "id": resources.resource_id("identity", row.name),
        "name": row.name,
        "type": PROVIDERS["identity"],
        "location": placed.location,
        "tags": placed.tags,
        "properties": {"tenantId": call.tenant_id, "principalId": row.principal_id, "clientId": row.client_id,
                       "isolationScope": "None"},
    }


def _definition_json(call: ArmCall, role: RoleDefinition) -> dict:
    return {
        "id": f"/subscriptions/{call.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role.id}",
        "name": role.id,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role.name, "type": "BuiltInRole", "description": role.description, "assignableScopes": ["/"],
            "permissions": [{"actions": list(role.actions), "notActions": [], "dataActions": list(role.data_actions),
                             "notDataActions": []}],
        },
    }


def _assignment_json(call: ArmCall, row: AssignmentRow) -> dict:
    scope = call.state.vaults.resource_id(row.vault, row.secret)
    principal = call.state.identities.by_principal(row.principal_id)
    when = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(row.created))
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{row.id}",
        "name": row.id,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": f"/subscriptions/{call.subscription_id}/providers/Microsoft.Authorization/"
                                f"roleDefinitions/{row.role_id}",
            "principalId": row.principal_id,
            "principalType": "User" if principal and principal.kind == "user" else "ServicePrincipal",
            "scope": scope, "condition": None, "conditionVersion": None, "createdOn": when, "updatedOn": when,
            "createdBy": None, "updatedBy": None, "delegatedManagedIdentityResourceId": None, "description": None,
        },
    }


# -- the cloud, the subscription, the tenant ---------------------------------------------------


def cloud_metadata(base: str, port: int) -> dict:
    """What ``GET /metadata/endpoints`` answers: the cloud ``az cloud register`` records."""
    return {
        "name": CLOUD,
        "portal": base + "/",
        "resourceManager": base + "/",
        "authentication": {"loginEndpoint": f"https://localhost:{port}/", "audiences": [AUDIENCE],
                           "tenant": "common", "identityProvider": "AAD"},
        "microsoftGraphResourceId": graph.audience(port),
        "suffixes": {"keyVaultDns": f"localhost:{port}"},
    }


def metadata(call: ArmCall) -> tuple[int, dict]:
    return 200, cloud_metadata(call.base, call.port)


def _can_see_subscription(call: ArmCall) -> bool:
    """Azure lists a subscription to anyone holding a role anywhere in it."""
    assert call.caller is not None
    return call.caller.name == LEARNER or bool(call.state.roles.list(call.caller.oid))


def _subscription_json(call: ArmCall) -> dict:
    return {"id": f"/subscriptions/{call.subscription_id}", "authorizationSource": "RoleBased",
            "managedByTenants": [], "subscriptionId": call.subscription_id, "tenantId": call.tenant_id,
            "displayName": SUBSCRIPTION_NAME, "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                     "spendingLimit": "Off"}}


def list_subscriptions(call: ArmCall) -> tuple[int, dict]:
    found = [_subscription_json(call)] if _can_see_subscription(call) else []
    return 200, {"value": found, "count": {"type": "Total", "value": len(found)}}


def get_subscription(call: ArmCall) -> tuple[int, dict]:
    if not _can_see_subscription(call):
        raise _subscription_not_found(call.params["sub"])
    return 200, _subscription_json(call)


def list_tenants(call: ArmCall) -> tuple[int, dict]:
    return 200, {"value": [{"id": f"/tenants/{call.tenant_id}", "tenantId": call.tenant_id,
                            "tenantCategory": "Home", "displayName": "kvlab", "defaultDomain": "kvlab.local",
                            "domains": ["kvlab.local"], "tenantType": "AAD"}]}


def list_locations(call: ArmCall) -> tuple[int, dict]:
    return 200, {"value": [{"id": f"/subscriptions/{call.subscription_id}/locations/kvlab", "name": "kvlab",
                            "displayName": "kvlab (this machine)", "regionalDisplayName": "kvlab (this machine)"}]}


def _not_found(kind: str, name: str, group: str) -> ArmError:
    return ArmError(404, "ResourceNotFound", f"The Resource '{PROVIDERS[kind]}/{name}' under resource group "
                    f"'{group}' was not found. {RESOURCE_NOT_FOUND_HELP}")


def _subscription_not_found(sub: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")


# -- resource groups ---------------------------------------------------------------------------


def list_groups(call: ArmCall) -> tuple[int, dict]:
    call.authorize("Microsoft.Resources/subscriptions/resourceGroups/read", f"/subscriptions/{call.subscription_id}")
    return 200, {"value": [_group_json(call, g) for g in call.state.vaults.resources.groups()]}


def _check_group_name(name: str) -> None:
    if not GROUP_NAME_RE.fullmatch(name):
        raise ArmError(400, "InvalidResourceGroup", (
            f"The provided resource group name '{name}' has these invalid characters or is too long: resource "
            "group names are 1-90 letters, digits, underscores, hyphens, periods and parentheses, and cannot "
            "end in a period."))


def get_group(call: ArmCall) -> tuple[int, dict]:
    name = call.group_or_404()
    return 200, _group_json(call, call.state.vaults.resources.group(name))


def head_group(call: ArmCall) -> tuple[int, None]:
    return (204 if call.state.vaults.resources.group(call.params["group"]) else 404), None


def put_group(call: ArmCall) -> tuple[int, dict]:
    name = call.params["group"]
    _check_group_name(name)
    body = call.json_body()
    location, tags = _location(body), _tags(body.get("tags"))
    existing = call.state.vaults.resources.group(name)
    if existing is not None and existing.location != location:
        raise ArmError(409, "InvalidResourceGroupLocation", (
            f"Invalid resource group location '{location}'. The Resource group already exists in location "
            f"'{existing.location}'."))
    row, created = call.state.vaults.resources.put_group(name, location, tags, call.state.clock.now())
    return (201 if created else 200), _group_json(call, row)


def delete_group(call: ArmCall) -> tuple[int, None]:
    """Deletes the group and everything in it, as Azure does (``az group delete`` asks first): its vaults are
    soft-deleted, recoverable (into a group of that name) until their scheduled purge date."""
    name = call.group_or_404()
    resources = call.state.vaults.resources
    for placed in resources.contents(name):
        if placed.kind != "vault":
            call.state.identities.delete(placed.name)
        elif call.state.vaults.deleted_vault(placed.name) is None:  # not one deleted before
            call.state.vaults.soft_delete_vault(placed.name)
    resources.remove_group(name)
    return 200, None


# -- Microsoft.KeyVault/vaults --------------------------------------------------------------------


def _vault_in_group(call: ArmCall, param: str = "name") -> VaultRow:
    """The vault the path names (``param``: its name's parameter), in the group the path names, or ARM's 404."""
    group = call.group_or_404()
    name = call.params[param]
    try:
        row = call.state.vaults.get_vault(name)
    except VaultNotFound:
        row = None
    if row is None or not call.in_group("vault", row.name, group):
        raise _not_found("vault", name, call.params["group"])
    return row


def get_vault(call: ArmCall) -> tuple[int, dict]:
    return 200, _vault_json(call, _vault_in_group(call))


def list_vaults(call: ArmCall) -> tuple[int, dict]:
    group = call.group_or_404() if call.params.get("group") else None
    rows = [row for row in call.state.vaults.list_vaults() if group is None or call.in_group("vault", row.name, group)]
    return 200, {"value": [_vault_json(call, row) for row in rows]}


def list_resources(call: ArmCall) -> tuple[int, dict]:
    """``GET /subscriptions/{id}/resources``, which the Key Vault SDK's ``vaults.list()`` asks for
    (``$filter=resourceType eq 'Microsoft.KeyVault/vaults'``)."""
    query = call.query.get("$filter", "")
    wanted = re.search(r"resourceType eq '([^']+)'", query, re.IGNORECASE)
    group = re.search(r"resourceGroup eq '([^']+)'", query, re.IGNORECASE)
    group_name = call.params.get("group") or (group.group(1) if group else None)
    if call.params.get("group"):
        call.group_or_404()
    out = []
    if wanted is None or wanted.group(1).lower() == PROVIDERS["vault"].lower():
        out += [{k: v for k, v in _vault_json(call, row).items() if k != "properties"}
                for row in call.state.vaults.list_vaults()]
    if wanted is None or wanted.group(1).lower() == PROVIDERS["identity"].lower():
        out += [{k: v for k, v in _identity_json(call, row).items() if k != "properties"}
                for row in call.state.identities.list() if row.kind == "userAssigned"]
    if group_name is not None:
        out = [r for r in out if f"/resourcegroups/{group_name.lower()}/" in r["id"].lower()]
    return 200, {"value": out}


def put_vault(call: ArmCall) -> tuple[int, dict]:
    group = call.group_or_404()
    name = call.params["name"]
    if not VAULT_NAME_RE.fullmatch(name):
        raise ArmError(400, "VaultNameNotValid", (
            f"The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. "
            "The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens."))
    body = call.json_body()
    location, tags = _location(body), _tags(body.get("tags"))
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise ArmError(400, "BadRequest", "The vault's 'properties' are required (tenantId, sku).")
    if str(properties.get("tenantId", "")).lower() != call.tenant_id.lower():
        raise ArmError(400, "BadRequest", f"The tenant id '{properties.get('tenantId')}' is not this tenant's "
                       f"({call.tenant_id}).")
    if str(properties.get("createMode", "")).lower() == "recover":  # `az keyvault recover`
        return _recover_vault(call, group, name)
    if properties.get("enableRbacAuthorization") is not True:  # the emulator's one permission model
        raise ArmError(400, "BadRequest", (
            "This emulator's vaults use the Azure RBAC permission model only (access policies are the legacy "
            "model): create the vault with --enable-rbac-authorization true."))
    retention = properties.get("softDeleteRetentionInDays", 90)
    if not isinstance(retention, int) or not 7 <= retention <= 90:
        raise ArmError(400, "BadRequest", "softDeleteRetentionInDays must be an integer from 7 to 90.")
    protect = properties.get("enablePurgeProtection")
    try:
        existing = call.state.vaults.get_vault(name)
    except VaultNotFound:
        existing = None
    resources = call.state.vaults.resources
    if existing is not None:
        placed = resources.placement("vault", existing.name)
        if placed.resource_group.lower() != group.lower():
            raise ArmError(409, "VaultAlreadyExists", (
                f"The vault name '{name}' is already in use. Vault names are globally unique so it is possible "
                "that the name is already taken."))
        if protect is False and existing.purge_protection:
            raise ArmError(400, "BadRequest", 'The property "enablePurgeProtection" cannot be set to false. '
                           "Enabling the purge protection for a vault is an irreversible action.")
        resources.place("vault", existing.name, placed.resource_group, placed.location, tags)
    else:
        try:
            existing = call.state.vaults.create_vault(name, retention_days=retention)
        except VaultDeleted:
            raise ArmError(409, "ConflictError", (
                "A vault with the same name already exists in deleted state. You need to either recover or purge "
                f"existing key vault. Follow this link {SOFT_DELETE_HELP} for more information on soft delete.")
            ) from None
        resources.place("vault", existing.name, group, location, tags)
    if protect is True:
        call.state.vaults.protect_vault(existing.name)
    return 200, _vault_json(call, call.state.vaults.get_vault(name))


def delete_vault(call: ArmCall) -> tuple[int, None]:
    """Soft delete, always on in Azure: `az keyvault list-deleted` shows the vault until it is recovered, purged
    or its scheduled purge date passes."""
    try:
        row = _vault_in_group(call)
    except ArmError:
        return 204, None
    call.state.vaults.soft_delete_vault(row.name)
    return 200, None


# -- soft-deleted vaults ---------------------------------------------------------------------------

SOFT_DELETE_HELP = "https://go.microsoft.com/fwlink/?linkid=2149745"


def _deleted_vault_json(call: ArmCall, row: VaultRow) -> dict:
    resources = call.state.vaults.resources
    placed = resources.placement("vault", row.name)
    return {
        "id": f"/subscriptions/{call.subscription_id}/providers/Microsoft.KeyVault/locations/{placed.location}"
              f"/deletedVaults/{row.name}",
        "name": row.name,
        "type": "Microsoft.KeyVault/deletedVaults",
        "properties": {
            "vaultId": resources.resource_id("vault", row.name),
            "location": placed.location,
            "deletionDate": iso(row.deleted or 0),
            "scheduledPurgeDate": iso(row.scheduled_purge or 0),
            "tags": placed.tags,
            "purgeProtectionEnabled": row.purge_protection,
        },
    }


def _no_deleted_vault(name: str) -> ArmError:
    return ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.KeyVault/deletedVaults/{name}' under "
                    f"resource group '<null>' was not found. {RESOURCE_NOT_FOUND_HELP}")


def _deleted_vault(call: ArmCall) -> VaultRow:
    """The deleted vault the path names, at the location the path names, or ARM's 404."""
    name = call.params["name"]
    row = call.state.vaults.deleted_vault(name)
    if row is None or call.state.vaults.resources.placement("vault", row.name).location != location_name(
            call.params["location"]):
        raise _no_deleted_vault(name)
    return row


def list_deleted_vaults(call: ArmCall) -> tuple[int, dict]:
    return 200, {"value": [_deleted_vault_json(call, row) for row in call.state.vaults.deleted_vaults()]}


def list_deleted_hsms(call: ArmCall) -> tuple[int, dict]:
    """`az keyvault list-deleted` asks for deleted managed HSMs too: this emulator has none."""
    return 200, {"value": []}


def get_deleted_vault(call: ArmCall) -> tuple[int, dict]:
    return 200, _deleted_vault_json(call, _deleted_vault(call))


def purge_deleted_vault(call: ArmCall) -> tuple[int, None]:
    row = _deleted_vault(call)
    try:
        call.state.vaults.purge_vault(row.name)
    except PurgeProtected:  # the code and message `az keyvault purge` shows for a purge-protected vault
        raise ArmError(405, "MethodNotAllowed", "Operation 'DeletedVaultPurge' is not allowed.") from None
    return 200, None


def _recover_vault(call: ArmCall, group: str, name: str) -> tuple[int, dict]:
    """A PUT with createMode 'recover': the deleted vault back, with its secrets, in the group it was in; its role
    assignments and event subscriptions are not restored (Azure deletes them with the vault)."""
    row = call.state.vaults.deleted_vault(name)
    if row is None:
        raise _no_deleted_vault(name)
    was_in = call.state.vaults.resources.placement("vault", row.name).resource_group
    if was_in.lower() != group.lower():
        raise ArmError(400, "BadRequest", f"The deleted vault '{row.name}' was in resource group '{was_in}': "
                       "recover it there.")
    return 200, _vault_json(call, call.state.vaults.recover_vault(row.name))


# -- Microsoft.ManagedIdentity/userAssignedIdentities ---------------------------------------------------


def _identity_in_group(call: ArmCall) -> IdentityRow:
    group = call.group_or_404()
    name = call.params["name"]
    row = call.state.store.find_identity(name)
    if (row is None or row.kind != "userAssigned" or row.name.lower() != name.lower()
            or not call.in_group("identity", row.name, group)):
        raise _not_found("identity", name, call.params["group"])
    return row


def get_identity(call: ArmCall) -> tuple[int, dict]:
    return 200, _identity_json(call, _identity_in_group(call))


def list_identities(call: ArmCall) -> tuple[int, dict]:
    group = call.group_or_404() if call.params.get("group") else None
    rows = [row for row in call.state.identities.list()
            if row.kind == "userAssigned" and (group is None or call.in_group("identity", row.name, group))]
    return 200, {"value": [_identity_json(call, row) for row in rows]}


def put_identity(call: ArmCall) -> tuple[int, dict]:
    group = call.group_or_404()
    name = call.params["name"]
    if not IDENTITY_NAME_RE.fullmatch(name):
        raise ArmError(400, "InvalidResourceName", (
            f"Resource name {name} is invalid. The name can be 3-128 characters long. It can contain only "
            "alphanumeric characters, hyphens and underscores, and the first character must be alphanumeric."))
    body = call.json_body()
    location, tags = _location(body), _tags(body.get("tags"))
    resources = call.state.vaults.resources
    existing = call.state.store.find_identity(name)
    if existing is not None and existing.name.lower() == name.lower():
        placed = resources.placement("identity", existing.name)
        if existing.kind != "userAssigned" or placed.resource_group.lower() != group.lower():
            raise ArmError(409, "Conflict", (
                f"An identity named '{existing.name}' already exists in resource group '{placed.resource_group}'. "
                "In this emulator identity names are unique across resource groups (tokens are asked for by "
                "name): choose another name."))
        resources.place("identity", existing.name, placed.resource_group, placed.location, tags)
        return 200, _identity_json(call, existing)
    row = call.state.identities.create(name)
    resources.place("identity", row.name, group, location, tags)
    return 201, _identity_json(call, row)


def delete_identity(call: ArmCall) -> tuple[int, None]:
    try:
        row = _identity_in_group(call)
    except ArmError:
        return 204, None
    call.state.identities.delete(row.name)
    return 200, None


# -- Microsoft.Authorization: role definitions and role assignments ----------------------------------


def _vault_scope(call: ArmCall, scope: str, must_exist: bool = True) -> tuple[str, str | None]:
    """(vault, secret) of a role assignment scope; the emulator assigns roles at a vault or a secret."""
    match = re.fullmatch(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.KeyVault/vaults/"
                         r"([^/]+)(?:/secrets/([^/]+))?/?", scope, re.IGNORECASE)
    if match is None:
        raise ArmError(400, "InvalidRoleAssignmentScope", (
            f"The scope '{scope}' is not a vault or a secret: this emulator assigns roles at "
            "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.KeyVault/vaults/<vault>[/secrets/<name>]."))
    sub, group, vault, secret = match.groups()
    if sub.lower() != call.subscription_id.lower():
        raise _subscription_not_found(sub)
    if secret is not None and not NAME_RE.fullmatch(secret):
        raise ArmError(400, "InvalidRoleAssignmentScope", f"'{secret}' in the scope is not a valid secret name.")
    if must_exist:
        try:
            row = call.state.vaults.get_vault(vault)
        except VaultNotFound:
            row = None
        if row is None or not call.in_group("vault", row.name, group):
            raise _not_found("vault", vault, group)
    return vault.lower(), secret


def _scope_kind(call: ArmCall, scope: str) -> str:
    """subscription, group or vault (vault and secret scopes)."""
    parts = [p for p in scope.split("/") if p]
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise ArmError(400, "InvalidRoleAssignmentScope", f"The scope '{scope}' is not valid.")
    if parts[1].lower() != call.subscription_id.lower():
        raise _subscription_not_found(parts[1])
    if len(parts) == 2:
        return "subscription"
    if len(parts) == 4 and parts[2].lower() == "resourcegroups":
        return "group"
    return "vault"


def list_definitions(call: ArmCall) -> tuple[int, dict]:
    _scope_kind(call, call.params["scope"])
    wanted = re.search(r"roleName eq '([^']*)'", call.query.get("$filter", ""), re.IGNORECASE)
    roles = [r for r in ROLES if wanted is None or r.name.lower() == wanted.group(1).lower()]
    return 200, {"value": [_definition_json(call, r) for r in roles]}


def get_definition(call: ArmCall) -> tuple[int, dict]:
    _scope_kind(call, call.params["scope"])
    wanted = call.params["name"].lower()
    for role in ROLES:
        if role.id == wanted:
            return 200, _definition_json(call, role)
    raise ArmError(404, "RoleDefinitionDoesNotExist", f"The role definition '{call.params['name']}' could not be "
                   "found (this emulator has the four Key Vault roles).")


def _assignments_under(call: ArmCall, scope: str, at_scope: bool) -> list[AssignmentRow]:
    kind = _scope_kind(call, scope)
    rows = call.state.roles.list()
    if kind == "subscription":
        return rows
    resources = call.state.vaults.resources
    if kind == "group":
        group = [p for p in scope.split("/") if p][3].lower()
        return [] if at_scope else [
            r for r in rows if resources.placement("vault", r.vault).resource_group.lower() == group]
    vault, secret = _vault_scope(call, scope, must_exist=False)
    if at_scope:  # at this scope and above it: a secret's scope inherits its vault's
        return [r for r in rows if r.vault == vault and (r.secret is None or (
            secret is not None and r.secret.lower() == secret.lower()))]
    return [r for r in rows if scope_covers(vault, secret, r.vault, r.secret)]


def list_assignments(call: ArmCall) -> tuple[int, dict]:
    scope = call.params.get("scope") or f"/subscriptions/{call.subscription_id}"
    call.authorize("Microsoft.Authorization/roleAssignments/read", scope)
    query = call.query.get("$filter", "")
    rows = _assignments_under(call, scope, "atscope()" in query.lower().replace(" ", ""))
    principal = re.search(r"(?:principalId eq|assignedTo\()\s*'([^']+)'", query, re.IGNORECASE)
    if principal is not None:
        rows = [r for r in rows if r.principal_id.lower() == principal.group(1).lower()]
    return 200, {"value": [_assignment_json(call, r) for r in rows]}


def _assignment_named(call: ArmCall) -> AssignmentRow | None:
    name = call.params["name"].lower()
    return next((r for r in call.state.roles.list() if r.id.lower() == name), None)


def get_assignment(call: ArmCall) -> tuple[int, dict]:
    call.authorize("Microsoft.Authorization/roleAssignments/read", call.params["scope"])
    row = _assignment_named(call)
    if row is None:
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{call.params['name']}' is not found.")
    return 200, _assignment_json(call, row)


def put_assignment(call: ArmCall) -> tuple[int, dict]:
    scope, name = call.params["scope"], call.params["name"]
    call.authorize("Microsoft.Authorization/roleAssignments/write", scope)
    try:
        uuid.UUID(name)
    except ValueError:
        raise ArmError(400, "InvalidRoleAssignmentId", f"The role assignment ID '{name}' is not valid. The role "
                       "assignment ID must be a GUID.") from None
    vault, secret = _vault_scope(call, scope)
    properties = call.json_body().get("properties")
    if not isinstance(properties, dict):
        raise ArmError(400, "InvalidRequestContent", "The role assignment's 'properties' are required.")
    definition = str(properties.get("roleDefinitionId") or "")
    role = next((r for r in ROLES if r.id == definition.rstrip("/").rsplit("/", 1)[-1].lower()), None)
    if role is None:
        raise ArmError(400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID "
                       f"'{definition.rstrip('/').rsplit('/', 1)[-1]}' does not exist.")
    principal_id = str(properties.get("principalId") or "")
    principal = call.state.identities.by_principal(principal_id) if principal_id else None
    if principal is None or principal.principal_id.lower() != principal_id.lower():
        raise ArmError(400, "PrincipalNotFound", (
            f"Principal {principal_id.replace('-', '')} does not exist in the directory {call.tenant_id}. Check "
            "that you have the correct principal ID (an identity's principalId, its object id, not its clientId)."))
    existing = _assignment_named(call)
    if existing is not None:
        if (existing.role_id, existing.principal_id, existing.vault, (existing.secret or "").lower()) != (
                role.id, principal.principal_id, vault, (secret or "").lower()):
            raise ArmError(400, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and "
                           "scope are not allowed to be updated.")
        return 200, _assignment_json(call, existing)
    row = call.state.roles.create(role.id, principal.principal_id, vault, secret, assignment_id=name.lower())
    if row.id != name.lower():
        raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
    return 201, _assignment_json(call, row)


def delete_assignment(call: ArmCall) -> tuple[int, dict | None]:
    call.authorize("Microsoft.Authorization/roleAssignments/delete", call.params["scope"])
    row = _assignment_named(call)
    if row is None:
        return 204, None
    body = _assignment_json(call, row)
    call.state.roles.delete(row.id)
    return 200, body


# -- the Activity Log ---------------------------------------------------------------------------------


def list_activity(call: ArmCall) -> tuple[int, dict]:
    """``az monitor activity-log list``: management writes, newest first, within the filter's times."""
    call.authorize("Microsoft.Insights/eventtypes/values/read", f"/subscriptions/{call.subscription_id}")
    query = call.query.get("$filter", "")
    events = list(reversed(call.state.store.activity()))
    start = re.search(r"eventTimestamp ge '([^']+)'", query, re.IGNORECASE)
    end = re.search(r"eventTimestamp le '([^']+)'", query, re.IGNORECASE)
    group = re.search(r"resourceGroupName eq '([^']+)'", query, re.IGNORECASE)
    resource = re.search(r"resourceId eq '([^']+)'", query, re.IGNORECASE)
    events = [e for e in events if (start is None or e["eventTimestamp"] >= _iso(start.group(1)))
              and (end is None or e["eventTimestamp"] <= _iso(end.group(1)))
              and (group is None or (e.get("resourceGroupName") or "").lower() == group.group(1).lower())
              and (resource is None or e["resourceId"].lower() == resource.group(1).lower())]
    return 200, {"value": events}


def _iso(text: str) -> str:
    """A filter's time in the records' form (UTC, to the second), so strings compare as times."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ArmError(400, "BadRequest", f"'{text}' is not a time (use ISO 8601).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def activity_record(state: State, operation: Operation, caller: Caller, path: str, status: int,
                    correlation_id: str) -> dict:
    """One Activity Log event (Azure's EventData shape), for a management write. Never a request body."""
    resource_id = path.rstrip("/")
    group = re.search(r"/resourceGroups/([^/]+)", resource_id, re.IGNORECASE)
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(state.clock.now_precise()))
    succeeded = status < 400
    return bounded({
        "authorization": {"action": operation.name, "scope": resource_id},
        # a user by sign-in name, an application by object id, as the Activity Log names them
        "caller": f"{LEARNER}@{UPN_DOMAIN}" if caller.name == LEARNER else caller.oid,
        "callerOid": caller.oid,
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "correlationId": correlation_id,
        "eventName": {"value": "EndRequest", "localizedValue": "End request"},
        "eventTimestamp": when,
        "id": f"{resource_id}/events/{uuid.uuid4()}",
        "level": "Informational" if succeeded else "Error",
        "operationName": {"value": operation.name, "localizedValue": operation.name},
        "resourceGroupName": group.group(1) if group else None,
        "resourceProviderName": {"value": operation.name.split("/")[0]},
        "resourceId": resource_id,
        "status": {"value": "Succeeded" if succeeded else "Failed"},
        "subStatus": {"value": str(status)},
        "httpStatusCode": status,
        "submissionTimestamp": when,
        "subscriptionId": state.vaults.subscription_id,
        "tenantId": state.identities.tenant_id,
    })


# -- Microsoft.EventGrid/eventSubscriptions on a vault -----------------------------------------------------
# The same subscriptions as `kvlab events subscription` (events.subscribe): a vault's secret events, delivered to
# a webhook on this machine after Event Grid's validation handshake. Azure Functions, queues and Event Hubs are
# Azure's; Event Grid names subscriptions per scope, the emulator once for all vaults.

EVENT_SUBSCRIPTION_TYPE = "Microsoft.EventGrid/eventSubscriptions"


def _event_subscription_json(call: ArmCall, row: dict) -> dict:
    topic = call.state.vaults.resource_id(row["vault"])
    return {
        "id": f"{topic}/providers/{EVENT_SUBSCRIPTION_TYPE}/{row['name']}",
        "name": row["name"],
        "type": EVENT_SUBSCRIPTION_TYPE,
        "properties": {
            "topic": topic,
            "provisioningState": "Succeeded",
            # Event Grid shows a webhook's URL without its query string (which may carry a key)
            "destination": {"endpointType": "WebHook", "properties": {
                "endpointBaseUrl": row["endpoint"].split("?", 1)[0], "maxEventsPerBatch": 1,
                "preferredBatchSizeInKilobytes": 64}},
            "filter": {"includedEventTypes": row["types"] or None, "isSubjectCaseSensitive": False,
                       "enableAdvancedFilteringOnArrays": True},
            "labels": [],
            "eventDeliverySchema": "EventGridSchema",
            "retryPolicy": {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440},
        },
    }


def _event_subscription(call: ArmCall, vault: VaultRow) -> dict | None:
    name = call.params["name"].lower()
    return next((s for s in call.state.store.subscriptions()
                 if s["name"].lower() == name and s["vault"].lower() == vault.name.lower()), None)


def list_event_subscriptions(call: ArmCall) -> tuple[int, dict]:
    vault = _vault_in_group(call, "vault")
    return 200, {"value": [_event_subscription_json(call, s) for s in call.state.store.subscriptions()
                           if s["vault"].lower() == vault.name.lower()]}


def get_event_subscription(call: ArmCall) -> tuple[int, dict]:
    row = _event_subscription(call, _vault_in_group(call, "vault"))
    if row is None:
        raise ArmError(404, "ResourceNotFound", f"The event subscription '{call.params['name']}' was not found on "
                       f"{call.params['scope']}. {RESOURCE_NOT_FOUND_HELP}")
    return 200, _event_subscription_json(call, row)


def put_event_subscription(call: ArmCall) -> tuple[int, dict]:
    from .events import SubscriptionError, subscribe

    vault = _vault_in_group(call, "vault")
    properties = call.json_body().get("properties")
    destination = properties.get("destination") if isinstance(properties, dict) else None
    if not isinstance(destination, dict) or not isinstance(destination.get("properties"), dict):
        raise ArmError(400, "InvalidRequest", "The event subscription's 'properties.destination' is required.")
    if str(destination.get("endpointType", "")).lower() != "webhook":
        raise ArmError(400, "InvalidRequest", (
            f"Destination endpoint type '{destination.get('endpointType')}': this emulator delivers events to a "
            "webhook on this machine only (--endpoint-type webhook); Functions, queues and Event Hubs are Azure's."))
    endpoint = destination["properties"].get("endpointUrl")
    wanted = ((properties.get("filter") or {}).get("includedEventTypes") or []) if isinstance(properties, dict) else []
    if not isinstance(endpoint, str) or not isinstance(wanted, list):
        raise ArmError(400, "InvalidRequest", "properties.destination.properties.endpointUrl (a URL) is required.")
    existing = _event_subscription(call, vault)  # PUT replaces it, once the new endpoint passed the handshake
    try:
        row = subscribe(call.state, call.params["name"], vault.name, endpoint, wanted)
    except SubscriptionError as exc:
        raise ArmError(400, "InvalidRequest", str(exc)) from None
    return (200 if existing else 201), _event_subscription_json(call, row)


def delete_event_subscription(call: ArmCall) -> tuple[int, None]:
    row = _event_subscription(call, _vault_in_group(call, "vault"))
    if row is None:
        return 204, None
    call.state.store.delete_subscription(row["name"])
    return 200, None


# -- the table ---------------------------------------------------------------------------------------

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_GROUP = _SUB + r"/resourceGroups/(?P<group>[^/]+)"
_NAME = r"/(?P<name>[^/]+)"
_SCOPE = r"(?P<scope>/subscriptions/[^/]+(?:/.+?)?)"
_VAULTS = "/providers/Microsoft.KeyVault/vaults"
_IDENTITIES = "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
_DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions"
_ASSIGNMENTS = "/providers/Microsoft.Authorization/roleAssignments"
_VAULT_SCOPE = f"(?P<scope>{_GROUP}{_VAULTS}/(?P<vault>[^/]+))"
_EVENT_SUBSCRIPTIONS = "/providers/Microsoft.EventGrid/eventSubscriptions"
_DELETED_VAULT = r"/providers/Microsoft.KeyVault/locations/(?P<location>[^/]+)/deletedVaults/(?P<name>[^/]+)"


def _op(method: str, path: str, name: str, handler: Handler, anonymous: bool = False) -> Operation:
    return Operation(name, method, re.compile(f"^{path}/?$", re.IGNORECASE), handler, anonymous)


# Resource Manager's paths are case-insensitive; more specific rows come first.
OPERATIONS: tuple[Operation, ...] = (
    _op("GET", "/metadata/endpoints", "Microsoft.Resources/metadata/read", metadata, anonymous=True),
    _op("GET", "/subscriptions", "Microsoft.Resources/subscriptions/read", list_subscriptions),
    _op("GET", "/tenants", "Microsoft.Resources/tenants/read", list_tenants),
    _op("GET", f"{_SCOPE}{_DEFINITIONS}", "Microsoft.Authorization/roleDefinitions/read", list_definitions),
    _op("GET", f"{_SCOPE}{_DEFINITIONS}{_NAME}", "Microsoft.Authorization/roleDefinitions/read", get_definition),
    _op("GET", f"{_SCOPE}{_ASSIGNMENTS}", "Microsoft.Authorization/roleAssignments/read", list_assignments),
    _op("GET", f"{_SCOPE}{_ASSIGNMENTS}{_NAME}", "Microsoft.Authorization/roleAssignments/read", get_assignment),
    _op("PUT", f"{_SCOPE}{_ASSIGNMENTS}{_NAME}", "Microsoft.Authorization/roleAssignments/write", put_assignment),
    _op("DELETE", f"{_SCOPE}{_ASSIGNMENTS}{_NAME}", "Microsoft.Authorization/roleAssignments/delete",
        delete_assignment),
    _op("GET", _SUB, "Microsoft.Resources/subscriptions/read", get_subscription),
    _op("GET", f"{_SUB}/locations", "Microsoft.Resources/subscriptions/locations/read", list_locations),
    _op("GET", f"{_SUB}/resources", "Microsoft.Resources/subscriptions/resources/read", list_resources),
    _op("GET", f"{_GROUP}/resources", "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
        list_resources),
    _op("GET", f"{_SUB}/resourcegroups", "Microsoft.Resources/subscriptions/resourceGroups/read", list_groups),
    _op("GET", _GROUP, "Microsoft.Resources/subscriptions/resourceGroups/read", get_group),
    _op("HEAD", _GROUP, "Microsoft.Resources/subscriptions/resourceGroups/read", head_group),
    _op("PUT", _GROUP, "Microsoft.Resources/subscriptions/resourceGroups/write", put_group),
    _op("DELETE", _GROUP, "Microsoft.Resources/subscriptions/resourceGroups/delete", delete_group),
    _op("GET", f"{_SUB}{_VAULTS}", "Microsoft.KeyVault/vaults/read", list_vaults),
    _op("GET", f"{_GROUP}{_VAULTS}", "Microsoft.KeyVault/vaults/read", list_vaults),
    _op("GET", f"{_GROUP}{_VAULTS}{_NAME}", "Microsoft.KeyVault/vaults/read", get_vault),
    _op("PUT", f"{_GROUP}{_VAULTS}{_NAME}", "Microsoft.KeyVault/vaults/write", put_vault),
    _op("DELETE", f"{_GROUP}{_VAULTS}{_NAME}", "Microsoft.KeyVault/vaults/delete", delete_vault),
    _op("GET", f"{_SUB}/providers/Microsoft.KeyVault/deletedVaults", "Microsoft.KeyVault/deletedVaults/read",
        list_deleted_vaults),
    _op("GET", f"{_SUB}/providers/Microsoft.KeyVault/deletedManagedHSMs", "Microsoft.KeyVault/deletedManagedHSMs/read",
        list_deleted_hsms),
    _op("GET", f"{_SUB}{_DELETED_VAULT}", "Microsoft.KeyVault/locations/deletedVaults/read", get_deleted_vault),
    _op("POST", f"{_SUB}{_DELETED_VAULT}/purge", "Microsoft.KeyVault/locations/deletedVaults/purge/action",
        purge_deleted_vault),
    _op("GET", f"{_SUB}{_IDENTITIES}", "Microsoft.ManagedIdentity/userAssignedIdentities/read", list_identities),
    _op("GET", f"{_GROUP}{_IDENTITIES}", "Microsoft.ManagedIdentity/userAssignedIdentities/read", list_identities),
    _op("GET", f"{_GROUP}{_IDENTITIES}{_NAME}", "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        get_identity),
    _op("PUT", f"{_GROUP}{_IDENTITIES}{_NAME}", "Microsoft.ManagedIdentity/userAssignedIdentities/write",
        put_identity),
    _op("DELETE", f"{_GROUP}{_IDENTITIES}{_NAME}", "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
        delete_identity),
    _op("GET", f"{_VAULT_SCOPE}{_EVENT_SUBSCRIPTIONS}", "Microsoft.EventGrid/eventSubscriptions/read",
        list_event_subscriptions),
    _op("GET", f"{_VAULT_SCOPE}{_EVENT_SUBSCRIPTIONS}{_NAME}", "Microsoft.EventGrid/eventSubscriptions/read",
        get_event_subscription),
    _op("PUT", f"{_VAULT_SCOPE}{_EVENT_SUBSCRIPTIONS}{_NAME}", "Microsoft.EventGrid/eventSubscriptions/write",
        put_event_subscription),
    _op("DELETE", f"{_VAULT_SCOPE}{_EVENT_SUBSCRIPTIONS}{_NAME}", "Microsoft.EventGrid/eventSubscriptions/delete",
        delete_event_subscription),
    _op("GET", f"{_SUB}/providers/Microsoft.Insights/eventtypes/management/values",
        "Microsoft.Insights/eventtypes/values/read", list_activity),
)

# The action each handler checks, where it is not the row's own name (reads of lists check inside).
_SELF_AUTHORIZED = {list_subscriptions, get_subscription, list_tenants, list_groups, list_assignments,
                    get_assignment, put_assignment, delete_assignment, list_activity, list_definitions,
                    get_definition, metadata}


def route(method: str, path: str) -> tuple[Operation, dict[str, str]]:
    allowed: list[str] = []
    for operation in OPERATIONS:
        match = operation.pattern.match(path)
        if match:
            if operation.method == method:
                return operation, {k: v for k, v in match.groupdict().items() if v is not None}
            allowed.append(operation.method)
    if allowed:
        raise ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.",
                       {"Allow": ", ".join(dict.fromkeys(allowed))})
    raise ArmError(404, "NoRegisteredProviderFound" if "/providers/" in path else "NotFound",
                   f"No operation of this emulator's Resource Manager answers {method} {path}. It serves resource "
                   "groups, Microsoft.KeyVault/vaults (and deleted vaults), "
                   "Microsoft.ManagedIdentity/userAssignedIdentities, "
                   "Microsoft.Authorization role assignments and a vault's Microsoft.EventGrid event subscriptions "
                   "(see kvlab/emulator/arm.py).")


def handle(call: ArmCall) -> tuple[int, dict | None]:
    """Subscription, RBAC, domain: the part of the request path after the token and the route."""
    sub = call.params.get("sub")
    if sub is not None and sub.lower() != call.subscription_id.lower():
        raise _subscription_not_found(sub)
    if call.operation.handler not in _SELF_AUTHORIZED:
        scope = call.params.get("scope") or _resource_scope(call)
        call.authorize(call.operation.name, scope)
    try:
        return call.operation.handler(call)
    except ValueError as exc:  # the domain's own refusals (a name taken, a limit) in ARM's shape
        raise ArmError(400, "BadRequest", str(exc)) from None


def _resource_scope(call: ArmCall) -> str:
    sub = call.subscription_id
    if "group" not in call.params:
        return f"/subscriptions/{sub}"
    base = f"/subscriptions/{sub}/resourceGroups/{call.params['group']}"
    if "name" not in call.params:
        return base
    kind = "vault" if "keyvault" in call.operation.name.lower() else "identity"
    return f"{base}/providers/{PROVIDERS[kind]}/{call.params['name']}"


def unauthorized(reason: str | None, audience: str = AUDIENCE) -> ArmError:
    """Resource Manager's 401 for a missing or refused token (``reason`` from `TokenError.reason`)."""
    challenge = 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
    if reason is None:
        return ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                        {"WWW-Authenticate": challenge + 'error_description="The authentication failed because of '
                         "missing 'Authorization' header.\""})
    code, message = {
        "expired": ("ExpiredAuthenticationToken", "The access token has expired."),
        "audience": ("InvalidAuthenticationTokenAudience", (
            "The access token has been obtained for wrong audience or resource. It should exactly match with one "
            f"of the allowed audiences '{audience}','{audience.rstrip('/')}'.")),
        "issuer": ("InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer. It must match "
                   "the tenant associated with this subscription."),
    }.get(reason, ("InvalidAuthenticationToken", "The access token is invalid."))
    return ArmError(401, code, message, {"WWW-Authenticate": challenge + f'error_description="{message}"'})

