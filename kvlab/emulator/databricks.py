"""Databricks workspace Secrets API 2.0: HTTP in, domain call, JSON out.

Each endpoint is one row of `OPERATIONS`: method, path, its name in the
workspace's audit trail (Databricks' ``secrets`` service actions) and a handler.
Handlers parse the request, call the domain (`workspaces.py`) and shape the
answer as Databricks does; they decide nothing themselves.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qsl

from .audit import bounded, iso
from .store import UserRow
from .workspaces import (
    DATABRICKS_BACKEND,
    KEYVAULT_BACKEND,
    DatabricksError,
    VaultReader,
    Workspace,
    invalid,
)

API = "/api/2.0/secrets"
WELL_KNOWN = "/.well-known/databricks-config"


@dataclass
class Call:
    """One request to the workspace, authenticated and routed."""

    workspace: Workspace
    user: UserRow
    entra: bool  # signed in with a Microsoft Entra ID token (not a personal access token)
    method: str
    query_string: str
    body: bytes
    vaults: VaultReader
    keyvault: Callable[[str, str], str]  # (resource_id, dns_name) -> vault name, or DatabricksError

    def params(self) -> dict:
        """The request's fields: the query string of a GET, the JSON body of a POST."""
        if self.method == "GET":
            return dict(parse_qsl(self.query_string, keep_blank_values=True))
        try:
            data = json.loads(self.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise DatabricksError(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request") from None
        if not isinstance(data, dict):
            raise DatabricksError(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request")
        return data

    def field(self, params: dict, name: str) -> str:
        value = params.get(name)
        if not isinstance(value, str) or not value:
            raise invalid(f"Missing required field: {name}")
        return value


Handler = Callable[[Call], dict]


# -- scopes --------------------------------------------------------------------------


def create_scope(call: Call) -> dict:
    params = call.params()
    scope = call.field(params, "scope")
    backend = params.get("scope_backend_type") or DATABRICKS_BACKEND
    if backend == KEYVAULT_BACKEND:
        keyvault = params.get("backend_azure_keyvault")
        if not isinstance(keyvault, dict):
            raise invalid("Scope with Azure KeyVault must have AzureKeyVaultSecretScopeMetadata defined!")
        missing = [f"backend_azure_keyvault.{f}" for f in ("resource_id", "dns_name") if not keyvault.get(f)]
        if missing:
            raise invalid(f"Missing required fields: {', '.join(missing)}")
        if not call.entra:  # Databricks reads the vault on the user's behalf: a PAT cannot prove who that is
            raise invalid("Scope with Azure KeyVault must have userAADToken defined!")
        resource_id, dns_name = str(keyvault["resource_id"]), str(keyvault["dns_name"])
        vault = call.keyvault(resource_id, dns_name)
        call.workspace.create_scope(call.user, scope, backend, params.get("initial_manage_principal"),
                                    vault, resource_id, dns_name)
    elif backend == DATABRICKS_BACKEND:
        call.workspace.create_scope(call.user, scope, backend, params.get("initial_manage_principal"))
    else:
        raise invalid(f"Invalid scope_backend_type {backend!r}: use DATABRICKS or AZURE_KEYVAULT.")
    return {}


def list_scopes(call: Call) -> dict:
    scopes = []
    for row in call.workspace.scopes():
        scope: dict = {"name": row.name, "backend_type": row.backend}
        if row.backend == KEYVAULT_BACKEND:
            scope["keyvault_metadata"] = {"resource_id": row.resource_id, "dns_name": row.dns_name}
        scopes.append(scope)
    return {"scopes": scopes} if scopes else {}


def delete_scope(call: Call) -> dict:
    call.workspace.delete_scope(call.user, call.field(call.params(), "scope"))
    return {}


# -- secrets -------------------------------------------------------------------------


def put_secret(call: Call) -> dict:
    params = call.params()
    scope, key = call.field(params, "scope"), call.field(params, "key")
    text, raw = params.get("string_value"), params.get("bytes_value")
    if (text is None) == (raw is None):
        raise invalid("Exactly one of string_value and bytes_value must be given.")
    if text is not None:
        if not isinstance(text, str):
            raise invalid("string_value must be a string.")
        value = text.encode()
    else:
        try:
            value = base64.b64decode(str(raw), validate=True)
        except (binascii.Error, ValueError):
            raise invalid("bytes_value must be base64-encoded.") from None
    call.workspace.put_secret(call.user, scope, key, value)
    return {}


def delete_secret(call: Call) -> dict:
    params = call.params()
    call.workspace.delete_secret(call.user, call.field(params, "scope"), call.field(params, "key"))
    return {}


def list_secrets(call: Call) -> dict:
    found = call.workspace.list_secrets(call.user, call.field(call.params(), "scope"), call.vaults)
    secrets = [{"key": key, "last_updated_timestamp": updated} for key, updated in found]
    return {"secrets": secrets} if secrets else {}


def get_secret(call: Call) -> dict:
    params = call.params()
    secret = call.workspace.get_secret(call.user, call.field(params, "scope"), call.field(params, "key"),
                                       call.vaults)
    return {"key": secret.key, "value": base64.b64encode(secret.value).decode()}


# -- ACLs ------------------------------------------------------------------------------


def put_acl(call: Call) -> dict:
    params = call.params()
    call.workspace.put_acl(call.user, call.field(params, "scope"), call.field(params, "principal"),
                           call.field(params, "permission"))
    return {}


def get_acl(call: Call) -> dict:
    params = call.params()
    principal, permission = call.workspace.acl(call.user, call.field(params, "scope"),
                                               call.field(params, "principal"))
    return {"principal": principal, "permission": permission}


def list_acls(call: Call) -> dict:
    items = [{"principal": p, "permission": m}
             for p, m in call.workspace.acls(call.user, call.field(call.params(), "scope"))]
    return {"items": items} if items else {}


def delete_acl(call: Call) -> dict:
    params = call.params()
    call.workspace.delete_acl(call.user, call.field(params, "scope"), call.field(params, "principal"))
    return {}


AUDITED_PARAMS = ("scope", "key", "principal", "permission", "scope_backend_type")  # never a value


def audit_record(now: float, workspace_id: str, operation: "Operation", user: UserRow | None, call: Call | None,
                 client_ip: str, user_agent: str, status: int, body: bytes) -> dict:
    """One event of the workspace's audit log, shaped like Azure Databricks' diagnostic logs (category secrets)."""
    params: dict = {}
    if call is not None:
        try:
            given = call.params()
        except DatabricksError:
            given = {}
        params = {k: str(v) for k, v in given.items() if k in AUDITED_PARAMS}
    error = None
    if status >= 400:
        try:
            error = json.loads(body).get("message")
        except (ValueError, AttributeError):
            error = None
    return bounded({
        "timestamp": iso(now), "workspaceId": workspace_id, "serviceName": "secrets", "actionName": operation.name,
        "userIdentity": {"email": user.name if user else None}, "requestParams": params,
        "response": {"statusCode": status, "errorMessage": error}, "sourceIPAddress": client_ip,
        "userAgent": user_agent,
    })


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    name: str  # as Databricks' audit logs name the secrets service's actions
    handler: Handler


OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", f"{API}/scopes/create", "createScope", create_scope),
    Operation("GET", f"{API}/scopes/list", "listScopes", list_scopes),
    Operation("POST", f"{API}/scopes/delete", "deleteScope", delete_scope),
    Operation("POST", f"{API}/put", "putSecret", put_secret),
    Operation("POST", f"{API}/delete", "deleteSecret", delete_secret),
    Operation("GET", f"{API}/list", "listSecrets", list_secrets),
    Operation("GET", f"{API}/get", "getSecret", get_secret),
    Operation("POST", f"{API}/acls/put", "putAcl", put_acl),
    Operation("GET", f"{API}/acls/get", "getAcl", get_acl),
    Operation("GET", f"{API}/acls/list", "listAcls", list_acls),
    Operation("POST", f"{API}/acls/delete", "deleteAcl", delete_acl),
)
_BY_PATH = {op.path: op for op in OPERATIONS}


def route(method: str, path: str) -> Operation:
    """The endpoint a request asks for, or the workspace's 404/405."""
    op = _BY_PATH.get(path.rstrip("/"))
    if op is None:
        raise DatabricksError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
    if op.method != method:
        raise DatabricksError(405, "BAD_REQUEST", f"{method} is not allowed on {path}; use {op.method}.")
    return op
