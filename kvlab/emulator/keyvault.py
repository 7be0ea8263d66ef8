"""Key Vault secrets data plane: HTTP in, domain call, JSON out.

Each operation of the official spec is one row of `OPERATIONS`: method, path,
its name in Key Vault's audit log, the RBAC data action it needs, and a handler.
Handlers parse the request, call the domain (`vaults.py`) and shape the answer
exactly as the service does; they decide nothing themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from .store import VaultRow, VersionRow
from .vaults import (
    KeyVaultError,
    Vaults,
    bad_parameter,
    parse_attributes,
    parse_content_type,
    parse_tags,
    recovery_level,
)

# Every api-version azure-keyvault-secrets lists (ApiVersion), oldest first.
API_VERSIONS = (
    "2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01",
)
LATEST_API_VERSION = API_VERSIONS[-1]
DATA_ACTION_PREFIX = "Microsoft.KeyVault/vaults/secrets/"


@dataclass
class Call:
    """One request to a vault, already authenticated and routed."""

    vaults: Vaults
    vault: VaultRow
    base: str  # scheme://host[:port] exactly as the client addressed the vault
    path: str
    api_version: str
    query: dict[str, str]
    body: bytes
    name: str | None = None
    version: str | None = None

    def json_body(self) -> dict:
        try:
            data = json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested deeper than Python parses
            raise bad_parameter("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise bad_parameter("The request body must be a JSON object.")
        return data

    def maxresults(self) -> int | None:
        raw = self.query.get("maxresults")
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= 25:
            raise bad_parameter(
                f"Invalid value for maxresults: {raw}. It must be an integer from 1 to 25."
            )
        return value

    def next_link(self, skiptoken: str | None, maxresults: int | None) -> str | None:
        if skiptoken is None:
            return None
        link = f"{self.base}{self.path}?api-version={self.api_version}&$skiptoken={skiptoken}"
        return link + (f"&maxresults={maxresults}" if maxresults else "")


Handler = Callable[[Call], tuple[int, dict | None]]


@dataclass(frozen=True)
class Operation:
    name: str  # operationName in Key Vault's AuditEvent log
    action: str  # the RBAC data action, after Microsoft.KeyVault/vaults/secrets/
    handler: Handler
    method: str
    pattern: re.Pattern

    @property
    def data_action(self) -> str:
        return DATA_ACTION_PREFIX + self.action


# -- shaping answers ----------------------------------------------------------


def _attributes(row: VersionRow, vault: VaultRow) -> dict:
    attrs: dict = {"enabled": row.enabled}
    if row.nbf is not None:
        attrs["nbf"] = row.nbf
    if row.exp is not None:
        attrs["exp"] = row.exp
    attrs["created"] = row.created
    attrs["updated"] = row.updated
    attrs["recoveryLevel"] = recovery_level(vault)
    attrs["recoverableDays"] = vault.retention_days
    return attrs


def _secret_id(call: Call, row: VersionRow, versioned: bool = True) -> str:
    sid = f"{call.base}/secrets/{row.name}"
    return f"{sid}/{row.version}" if versioned else sid


def _common(call: Call, row: VersionRow, sid: str) -> dict:
    out: dict = {"id": sid, "attributes": _attributes(row, call.vault)}
    if row.content_type is not None:
        out["contentType"] = row.content_type
    if row.tags is not None:
        out["tags"] = row.tags
    return out


def bundle(call: Call, row: VersionRow, with_value: bool) -> dict:
    out = _common(call, row, _secret_id(call, row))
    return {"value": row.value, **out} if with_value else out


def deleted_info(call: Call, row: VersionRow) -> dict:
    return {
        "recoveryId": f"{call.base}/deletedsecrets/{row.name}",
        "deletedDate": row.deleted_date,
        "scheduledPurgeDate": row.scheduled_purge,
    }


def _page(call: Call, items: list[dict], skiptoken: str | None, maxresults: int | None) -> dict:
    return {"value": items, "nextLink": call.next_link(skiptoken, maxresults)}


# -- handlers -------------------------------------------------------------------


def set_secret(call: Call) -> tuple[int, dict]:
    body = call.json_body()
    if "value" not in body:
        raise bad_parameter("Property 'value' is required.")
    row = call.vaults.set_secret(
        call.vault.name,
        call.name or "",
        body.get("value"),
        content_type=parse_content_type(body.get("contentType")),
        tags=parse_tags(body.get("tags")),
        attributes=parse_attributes(body.get("attributes")),
    )
    return 200, bundle(call, row, with_value=True)


def get_secret(call: Call) -> tuple[int, dict]:
    row = call.vaults.get_secret(call.vault.name, call.name or "", call.version)
    return 200, bundle(call, row, with_value=True)


def update_secret(call: Call) -> tuple[int, dict]:
    body = call.json_body()
    row = call.vaults.update_secret(
        call.vault.name,
        call.name or "",
        call.version,
        content_type=body.get("contentType", ...),
        tags=body.get("tags", ...),
        attributes=parse_attributes(body.get("attributes")) if "attributes" in body else None,
    )
    return 200, bundle(call, row, with_value=False)


def list_secrets(call: Call) -> tuple[int, dict]:
    maxresults = call.maxresults()
    page = call.vaults.list_secrets(call.vault.name, maxresults, call.query.get("$skiptoken"))
    items = [_common(call, r, _secret_id(call, r, versioned=False)) for r in page.items]
    return 200, _page(call, items, page.skiptoken, maxresults)


def list_versions(call: Call) -> tuple[int, dict]:
    maxresults = call.maxresults()
    page = call.vaults.list_versions(
        call.vault.name, call.name or "", maxresults, call.query.get("$skiptoken")
    )
    items = [_common(call, r, _secret_id(call, r)) for r in page.items]
    return 200, _page(call, items, page.skiptoken, maxresults)


def delete_secret(call: Call) -> tuple[int, dict]:
    row = call.vaults.delete_secret(call.vault.name, call.name or "")
    return 200, {**deleted_info(call, row), **bundle(call, row, with_value=False)}


def list_deleted(call: Call) -> tuple[int, dict]:
    maxresults = call.maxresults()
    page = call.vaults.list_deleted(call.vault.name, maxresults, call.query.get("$skiptoken"))
    items = [
        {**deleted_info(call, r), **_common(call, r, _secret_id(call, r, versioned=False))}
        for r in page.items
    ]
    return 200, _page(call, items, page.skiptoken, maxresults)


def get_deleted(call: Call) -> tuple[int, dict]:
    row = call.vaults.get_deleted(call.vault.name, call.name or "")
    return 200, {**deleted_info(call, row), **bundle(call, row, with_value=False)}


def recover_deleted(call: Call) -> tuple[int, dict]:
    row = call.vaults.recover_deleted(call.vault.name, call.name or "")
    return 200, bundle(call, row, with_value=False)


def purge_deleted(call: Call) -> tuple[int, None]:
    call.vaults.purge_deleted(call.vault.name, call.name or "")
    return 204, None


def backup_secret(call: Call) -> tuple[int, dict]:
    return 200, {"value": call.vaults.backup_secret(call.vault.name, call.name or "")}


def restore_secret(call: Call) -> tuple[int, dict]:
    row = call.vaults.restore_secret(call.vault.name, call.json_body().get("value"), call.base)
    return 200, bundle(call, row, with_value=False)


_NAME = r"(?P<name>[^/]+)"
_VERSION = r"(?:/(?P<version>[^/]*))?"


def _op(method: str, path: str, name: str, action: str, handler: Handler) -> Operation:
    return Operation(name, action, handler, method, re.compile(f"^{path}/?$"))


# Order matters: fixed words ("restore", "versions", "backup") before the name patterns.
OPERATIONS: tuple[Operation, ...] = (
    _op("GET", "/secrets", "SecretList", "readMetadata/action", list_secrets),
    _op("POST", "/secrets/restore", "SecretRestore", "restore/action", restore_secret),
    _op("GET", f"/secrets/{_NAME}/versions", "SecretListVersions", "readMetadata/action", list_versions),
    _op("POST", f"/secrets/{_NAME}/backup", "SecretBackup", "backup/action", backup_secret),
    _op("GET", f"/secrets/{_NAME}{_VERSION}", "SecretGet", "getSecret/action", get_secret),
    _op("PUT", f"/secrets/{_NAME}", "SecretSet", "setSecret/action", set_secret),
    _op("PATCH", f"/secrets/{_NAME}{_VERSION}", "SecretUpdate", "update/action", update_secret),
    _op("DELETE", f"/secrets/{_NAME}", "SecretDelete", "delete", delete_secret),
    _op("GET", "/deletedsecrets", "SecretListDeleted", "readMetadata/action", list_deleted),
    _op("GET", f"/deletedsecrets/{_NAME}", "SecretGetDeleted", "readMetadata/action", get_deleted),
    _op("DELETE", f"/deletedsecrets/{_NAME}", "SecretPurge", "purge/action", purge_deleted),
    _op("POST", f"/deletedsecrets/{_NAME}/recover", "SecretRecover", "recover/action", recover_deleted),
)


class MethodNotAllowed(KeyVaultError):
    """405, with the methods the path does support (RFC 9110 requires an Allow header)."""

    def __init__(self, method: str, path: str, allowed: list[str]):
        super().__init__(405, "MethodNotAllowed", f"The method {method} is not allowed on {quote(path)}.")
        self.allow = ", ".join(allowed)


def route(method: str, path: str) -> tuple[Operation, dict[str, str | None]]:
    """The operation a request asks for, with its path parameters, or a 404/405 error."""
    allowed: list[str] = []
    for op in OPERATIONS:
        match = op.pattern.match(path)
        if match:
            if op.method == method:
                return op, match.groupdict()
            if op.method not in allowed:
                allowed.append(op.method)
    if allowed:
        raise MethodNotAllowed(method, path, allowed)
    raise KeyVaultError(404, "NotFound", f"The requested path {quote(path)} is not a Key Vault secrets operation.")


def check_api_version(query: dict[str, str]) -> str:
    version = query.get("api-version")
    if not version:
        raise bad_parameter("The 'api-version' query parameter is required.")
    if version not in API_VERSIONS:
        raise bad_parameter(
            f"The specified version ({version}) is not recognized. Consider using the latest "
            f"supported version ({LATEST_API_VERSION})."
        )
    return version
