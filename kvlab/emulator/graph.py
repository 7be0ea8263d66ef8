"""Microsoft Graph: the few directory reads the Azure CLI makes around role assignments.

``https://graph.kvlab.localhost:<port>/v1.0/`` answers

* ``GET /me`` — ``az ad signed-in-user show`` (the learner; an application's token
  is refused as Graph refuses it: /me needs a signed-in user);
* ``GET /users?$filter=userPrincipalName eq '…'`` and
  ``GET /servicePrincipals?$filter=servicePrincipalNames/any(c:c eq '…')`` — how
  ``az role assignment create --assignee <sign-in name or client id>`` finds the object id;
  ``$filter=startswith(displayName,'…')`` — ``az ad sp list --display-name`` (a factory's
  system-assigned identity is found by its factory's name this way);
* ``POST /directoryObjects/getByIds`` — how ``az role assignment list`` names principals.

The directory is the emulator's identities: the learner is a user
(``learner@kvlab.local``), every other identity a service principal whose
``appId`` is its client id. Tokens must be for Graph's audience.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

from .identity import UPN_DOMAIN, Caller
from .state import State
from .store import IdentityRow

HOST = "graph.kvlab.localhost"
ROOT = "https://graph.microsoft.com/v1.0/$metadata"  # what @odata.context names (Graph's own schema)


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass
class GraphCall:
    state: State
    caller: Caller
    query: dict[str, str]
    body: bytes


def audience(port: int) -> str:
    """Graph's resource id in the emulator's cloud (the CLI asks for tokens for its base URL)."""
    return f"https://{HOST}:{port}/"


def _object(state: State, row: IdentityRow) -> dict:
    if row.kind == "user":
        return {"@odata.type": "#microsoft.graph.user", "id": row.principal_id, "displayName": row.name,
                "userPrincipalName": f"{row.name}@{UPN_DOMAIN}", "mail": None, "accountEnabled": True}
    return {"@odata.type": "#microsoft.graph.servicePrincipal", "id": row.principal_id, "displayName": row.name,
            "appId": row.client_id, "servicePrincipalType": "ManagedIdentity" if row.kind == "userAssigned"
            else "Application", "servicePrincipalNames": [row.client_id], "appOwnerOrganizationId":
            state.identities.tenant_id, "accountEnabled": True}


def me(call: GraphCall) -> dict:
    row = call.state.identities.by_principal(call.caller.oid)
    if row is None or row.kind != "user":
        raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    return {"@odata.context": ROOT + "#users/$entity", **_object(call.state, row)}


def _filtered(call: GraphCall, kind: str, pattern: str) -> dict:
    query = call.query.get("$filter", "")
    wanted = re.search(pattern, query, re.IGNORECASE)
    rows = [r for r in call.state.identities.list() if (r.kind == "user") == (kind == "users")]
    if wanted is not None:
        value = wanted.group(1).lower()
        rows = [r for r in rows if value in {v.lower() for v in (
            (f"{r.name}@{UPN_DOMAIN}", r.principal_id) if kind == "users" else (r.client_id, r.principal_id))}]
    # `az ad sp list --display-name X` (and `az ad user list`) ask for names starting with X
    starts = re.search(r"startswith\(displayName,\s*'([^']*)'\)", query, re.IGNORECASE)
    if starts is not None:
        rows = [r for r in rows if r.name.lower().startswith(starts.group(1).lower())]
    return {"@odata.context": f"{ROOT}#{kind}", "value": [_object(call.state, r) for r in rows]}


def users(call: GraphCall) -> dict:
    return _filtered(call, "users", r"userPrincipalName eq '([^']+)'")


def service_principals(call: GraphCall) -> dict:
    return _filtered(call, "servicePrincipals", r"servicePrincipalNames/any\(\w+:\w+ eq '([^']+)'\)")


def get_by_ids(call: GraphCall) -> dict:
    try:
        ids = json.loads(call.body or b"{}").get("ids")
    except (ValueError, AttributeError, RecursionError):
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise GraphError(400, "Request_BadRequest", "The request body needs 'ids': a list of object ids.")
    found = [call.state.identities.by_principal(i) for i in ids[:1000]]
    return {"@odata.context": f"{ROOT}#directoryObjects",
            "value": [_object(call.state, r) for r in found if r is not None]}


OPERATIONS: dict[tuple[str, str], Callable[[GraphCall], dict]] = {
    ("GET", "/v1.0/me"): me,
    ("GET", "/v1.0/users"): users,
    ("GET", "/v1.0/servicePrincipals"): service_principals,
    ("POST", "/v1.0/directoryObjects/getByIds"): get_by_ids,
}


def route(method: str, path: str) -> Callable[[GraphCall], dict]:
    for (verb, known), handler in OPERATIONS.items():
        if verb == method and known.lower() == path.rstrip("/").lower():
            return handler
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{path.rstrip('/').rsplit('/', 1)[-1]}'"
                     " (this emulator's Graph answers /me, /users, /servicePrincipals and "
                     "/directoryObjects/getByIds).")
