"""Azure Data Factory linked services: read them, check them before a commit, resolve their Key Vault references.

A linked service is how a factory reaches a data store. The reference article's
promise is that its JSON holds no credential — a password is a *reference* to a
Key Vault secret, resolved by the factory at run time as its managed identity —
so the file is safe to commit. This module makes each part of that something to
run:

* `read` takes a linked service in either shape learners meet: the file ADF's Git
  integration writes (``linkedService/<name>.json``: ``{"name", "type":
  "Microsoft.DataFactory/factories/linkedservices", "properties": {...}}``) and
  the flattened form the article prints (``{"name", "type": "AzureSqlDatabase",
  "typeProperties": ...}``). Types come from ``azure-mgmt-datafactory``'s models.
* `check` is the reviewer: inline passwords, keys and SAS signatures, SecureStrings
  with their value, credentials inside connection strings; an
  ``encryptedCredential`` is a warning. It names file, linked service and field,
  never the value.
* `resolve` does what the factory does at run time, against the emulator: through
  the referenced ``AzureKeyVault`` linked service's ``baseUrl``, as the factory's
  managed identity, latest version unless ``secretVersion`` pins one. `connect`
  goes on to open the database connection the linked service describes.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import Refusal

GIT_TYPE = "Microsoft.DataFactory/factories/linkedservices"
KEY_VAULT = "AzureKeyVault"
KEY_VAULT_REFERENCE = "AzureKeyVaultSecret"
SECURE_STRING = "SecureString"
# Fields whose plain string is a credential (compared without case).
SECRET_FIELDS = frozenset(name.lower() for name in (
    "password", "pwd", "accountKey", "sasToken", "servicePrincipalKey", "clientSecret",
    "servicePrincipalEmbeddedCert", "servicePrincipalEmbeddedCertPassword",
))
# In a connection string: a keyword that carries a credential, and its value.
CONNECTION_CREDENTIAL = re.compile(r"(?:^|;)\s*(password|pwd|accountkey|sharedaccesssignature)\s*=\s*([^;]*)", re.I)
SAS_SIGNATURE = re.compile(r"[?&]sig=([^&;\s\"']+)", re.I)
# ADF's SSL modes for PostgreSQL (0-5) as libpq names them
SSL_MODES = {0: "disable", 1: "allow", 2: "prefer", 3: "require", 4: "verify-ca", 5: "verify-full"}


class AdfError(ValueError):
    """Bad input, in one line that names the file and the field."""


class ResolveError(Refusal):
    """A reference that could not be resolved (no role, no secret, no vault), in one line."""


@dataclass(frozen=True)
class LinkedService:
    path: Path
    name: str
    type: str
    properties: dict  # the linked service's properties (type, typeProperties, description, parameters, ...)
    model: object = dataclasses.field(repr=False)  # the azure-mgmt-datafactory model of its type

    @property
    def type_properties(self) -> dict:
        return self.properties["typeProperties"]


def _models():
    from azure.mgmt.datafactory import models

    return models


def read(path: str | Path) -> LinkedService:
    """One linked service file, in the ADF Git shape or the flattened one; `AdfError` if it is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AdfError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise AdfError(f"{path}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AdfError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise AdfError(f"{path}: a linked service is a JSON object, not {type(data).__name__}")
    name = data.get("name")
    if "properties" in data:  # ADF's Git shape
        if data.get("type") not in (None, GIT_TYPE) and str(data.get("type")).lower() != GIT_TYPE.lower():
            raise AdfError(f"{path}: type: {data.get('type')!r} is not a linked service ({GIT_TYPE})")
        properties, prefix = data["properties"], "properties."
    else:  # the article's flattened form
        properties, prefix = {k: v for k, v in data.items() if k != "name"}, ""
    if not isinstance(name, str) or not name:
        raise AdfError(f"{path}: name: missing")
    if not isinstance(properties, dict):
        raise AdfError(f"{path}: properties: must be an object")
    kind = properties.get("type")
    if not isinstance(kind, str) or not kind:
        raise AdfError(f"{path}: {prefix}type: missing (the linked service's type, e.g. AzureSqlDatabase)")
    model_class = _models().LinkedService.__mapping__.get(kind)
    if model_class is None:
        close = difflib.get_close_matches(kind, _models().LinkedService.__mapping__, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise AdfError(f"{path}: {prefix}type: Data Factory has no linked service type {kind!r}{hint}")
    if not isinstance(properties.get("typeProperties"), dict):
        raise AdfError(f"{path}: {prefix}typeProperties: missing")
    service = LinkedService(path, name, kind, properties, model_class(properties))
    for where, reference in references(service):  # a malformed reference is bad input, not a finding
        for needed in ("secretName", "store"):
            if not reference.get(needed):
                raise AdfError(f"{path}: {where}.{needed}: missing in a Key Vault reference")
        if not isinstance(reference["store"], dict) or not reference["store"].get("referenceName"):
            raise AdfError(f"{path}: {where}.store.referenceName: missing (the Key Vault linked service's name)")
    if kind == KEY_VAULT and not service.type_properties.get("baseUrl"):
        raise AdfError(f"{path}: {prefix}typeProperties.baseUrl: missing (the vault's URL)")
    return service


def files_in(paths: list[str | Path]) -> list[Path]:
    """The linked service files among ``paths``: files as given; in a folder, its ``linkedService/*.json``
    (an ADF Git repository), else every ``*.json`` in it."""
    found: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found += sorted(given.rglob("linkedService/*.json")) or sorted(given.rglob("*.json"))
        elif given.exists():
            found.append(given)
        else:
            raise AdfError(f"{given}: no such file or folder")
    return list(dict.fromkeys(found))


def read_all(paths: list[str | Path]) -> list[LinkedService]:
    return [read(p) for p in files_in(paths)]


# -- walking typeProperties ----------------------------------------------------------------------------------


def _nodes(value, where: str):
    """(path, key, value) for every object member under ``value``, depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}"
            yield path, key, item
            yield from _nodes(item, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nodes(item, f"{where}[{i}]")


def references(service: LinkedService) -> list[tuple[str, dict]]:
    """(field, reference) for every Key Vault secret reference in the linked service's typeProperties."""
    return [(path, item) for path, _, item in _nodes(service.type_properties, "typeProperties")
            if isinstance(item, dict) and item.get("type") == KEY_VAULT_REFERENCE]


def _expression(value: str) -> bool:
    """An ADF expression (``@linkedService().password``, ``@{...}``): filled in at run time, nothing inline."""
    return value.lstrip().startswith("@")


# -- the commit check --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    file: str
    linkedService: str
    field: str
    severity: str  # "error" blocks a commit; "warning" does not
    rule: str
    message: str


def check(paths: list[str | Path]) -> tuple[list[LinkedService], list[Finding]]:
    """The linked services under ``paths`` and what a reviewer would flag in them (`AdfError` on bad input)."""
    services = read_all(paths)
    known = {s.name: s for s in services}
    for folder in {s.path.parent for s in services}:  # pre-commit passes only changed files: look beside them
        for sibling in folder.glob("*.json"):
            try:
                other = read(sibling)
            except AdfError:
                continue
            known.setdefault(other.name, other)
    findings = []
    for service in services:
        findings += _findings(service, known)
    return services, findings


def _findings(service: LinkedService, known: dict[str, LinkedService]) -> list[Finding]:
    found: list[Finding] = []

    def flag(where: str, rule: str, message: str, severity: str = "error") -> None:
        found.append(Finding(str(service.path), service.name, where, severity, rule, message))

    for where, key, value in _nodes(service.type_properties, "typeProperties"):
        if isinstance(value, dict) and value.get("type") == SECURE_STRING:
            inner = value.get("value")
            if isinstance(inner, str) and inner.strip() and not _expression(inner):
                flag(where, "secure-string-value", "A SecureString with its value in the file: "
                     "anyone who can read the repository can read it. Reference a Key Vault secret instead.")
        elif isinstance(value, dict) and value.get("type") == KEY_VAULT_REFERENCE:
            store = value["store"]["referenceName"]
            target = known.get(store)
            if target is None:
                flag(where, "unknown-key-vault", f"Refers to the Key Vault linked service {store!r}, "
                     "which is not in this folder.")
            elif target.type != KEY_VAULT:
                flag(where, "unknown-key-vault", f"Refers to {store!r}, which is a {target.type} "
                     "linked service, not an AzureKeyVault one.")
        elif isinstance(value, str) and value.strip() and not _expression(value):
            lowered = key.lower()
            if lowered == "connectionstring":
                for match in CONNECTION_CREDENTIAL.finditer(value):
                    if match.group(2).strip() and not _expression(match.group(2)):
                        flag(where, "connection-string-credential", f"The connection string carries {match.group(1)}= with a "
                             "value. Keep the password out of the string and reference a Key Vault secret "
                             "in the password field.")
                        break
            elif lowered in SECRET_FIELDS:
                flag(where, "inline-secret", "A credential in plain text. Reference a Key Vault "
                     "secret (type AzureKeyVaultSecret) instead.")
            elif lowered == "encryptedcredential":
                flag(where, "encrypted-credential", "A credential encrypted by one integration "
                     "runtime: not readable here, but it works only there and cannot be rotated from Key Vault.",
                     severity="warning")
            if SAS_SIGNATURE.search(value) and not any(f.field == where for f in found):
                flag(where, "sas-signature", "A shared access signature (sig=) in the file. Keep the SAS "
                     "token in Key Vault.")
    for name, parameter in (service.properties.get("parameters") or {}).items():
        default = parameter.get("defaultValue") if isinstance(parameter, dict) else None
        if isinstance(default, str) and default.strip() and name.lower() in SECRET_FIELDS:
            flag(f"parameters.{name}.defaultValue", "inline-secret", "A default value for a credential "
                 "parameter. Leave it empty and pass a Key Vault reference.")
    return found


# -- resolution, as the factory does it at run time --------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    field: str
    keyVaultLinkedService: str
    vault: str
    secret: str
    version: str
    pinned: bool
    value: str = dataclasses.field(repr=False, compare=False)

    def describe(self) -> dict:
        """What may be shown: which secret and version a field resolved to, never its value."""
        return {"field": self.field, "keyVaultLinkedService": self.keyVaultLinkedService, "vault": self.vault,
                "secret": self.secret, "version": self.version, "pinned": self.pinned}


def resolve(service: LinkedService | str | Path, factory_identity: str, repo: str | Path | None = None,
            lab=None) -> list[Resolution]:
    """Every Key Vault reference of ``service``, read as the factory's managed identity ``factory_identity``.

    ``repo`` is where the referenced Key Vault linked services are (default: beside the file). Needs a
    connected process (``lab`` from `kvlab.connect`, connected here if not given).
    """
    from azure.core.exceptions import HttpResponseError

    if not isinstance(service, LinkedService):
        service = read(service)
    known = {s.name: s for s in read_all([repo or service.path.parent])}
    if lab is None:
        from .connection import connect

        lab = connect()
    try:
        client_id = lab.identity(factory_identity)["clientId"]
    except (KeyError, ValueError):
        raise ResolveError(f"there is no managed identity {factory_identity!r} in the emulator") from None
    resolved = []
    for where, reference in references(service):
        store = reference["store"]["referenceName"]
        vault_service = known.get(store)
        if vault_service is None or vault_service.type != KEY_VAULT:
            raise ResolveError(f"{where}: no AzureKeyVault linked service {store!r} in {repo or service.path.parent}")
        base_url = vault_service.type_properties["baseUrl"]
        if not isinstance(base_url, str) or _expression(base_url):
            raise ResolveError(f"{vault_service.path}: typeProperties.baseUrl must be the vault's URL here")
        version = reference.get("secretVersion") or None
        client = _factory_client(client_id, base_url)
        try:
            secret = client.get_secret(reference["secretName"], version)
        except HttpResponseError as exc:
            raise ResolveError(f"{where}: {base_url} refused {factory_identity}: {_vault_reason(exc)}") from None
        resolved.append(Resolution(where, store, base_url, reference["secretName"], secret.properties.version,
                                   version is not None, secret.value))
    return resolved


_FACTORY_CLIENTS: dict[tuple, object] = {}


def _factory_client(client_id: str, base_url: str):
    """The factory's SecretClient for a vault, kept as a factory keeps its identity's token and connections
    between activity runs (a new one per run cost a token request and a TLS handshake)."""
    from azure.identity import ManagedIdentityCredential
    from azure.keyvault.secrets import SecretClient

    key = (os.environ.get("IDENTITY_ENDPOINT"), client_id, base_url)  # another emulator is another factory
    if key not in _FACTORY_CLIENTS:
        _FACTORY_CLIENTS[key] = SecretClient(base_url, ManagedIdentityCredential(client_id=client_id))
    return _FACTORY_CLIENTS[key]


def _vault_reason(exc) -> str:
    """Key Vault's answer in one line: its most specific code (ForbiddenByRbac), message and the action refused."""
    error = exc.error
    inner = getattr(error, "innererror", None)
    code = (inner.get("code") if isinstance(inner, dict) else None) or getattr(error, "code", None) or exc.reason
    text = getattr(error, "message", None) or str(exc)
    lines = [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]
    action = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Action:")), None)
    return f"{code}: {lines[0] if lines else exc.reason}" + (f" (action {action})" if action else "")


# The keywords of an ADF (Npgsql) PostgreSQL connection string, as libpq names them
CONNECTION_KEYWORDS = {alias: name for name, aliases in (
    ("host", ("host", "server")), ("port", ("port",)), ("dbname", ("database",)),
    ("user", ("uid", "user id", "username", "user")), ("password", ("password", "pwd")),
    ("sslmode", ("sslmode", "ssl mode"))) for alias in aliases}


def connection_settings(text: str, where: str) -> dict:
    """An ADF PostgreSQL connection string (``host=..;port=..;database=..;uid=..;password=..``) as libpq settings."""
    settings = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        if not sep:  # never echoed: it may be the tail of a password that contains a ';'
            raise AdfError(f"{where}: a part without '=' (not shown) in the connection string")
        name = CONNECTION_KEYWORDS.get(key.strip().lower())
        if name is None:
            raise AdfError(f"{where}: {key.strip()!r} is not a PostgreSQL connection string keyword")
        settings[name] = value.strip()
    return settings


def connect(service: LinkedService | str | Path, factory_identity: str, repo: str | Path | None = None,
            lab=None) -> dict:
    """Resolve an ``AzurePostgreSql`` linked service's Key Vault references as the factory does, connect, and
    ask who we are.

    The password is a reference (``password``), or the whole connection string is one (``connectionString``,
    with the user and password in the vault: what lets a rotation switch between two logins). Returns what
    may be shown (server, database, user, which secret version the credential came from); `ResolveError`
    with PostgreSQL's own message when the connection is refused.
    """
    import psycopg

    if not isinstance(service, LinkedService):
        service = read(service)
    if service.type != "AzurePostgreSql":
        raise AdfError(f"{service.path}: type: connecting is for AzurePostgreSql linked services, not {service.type}")
    settings = service.type_properties
    resolutions = {r.field: r for r in resolve(service, factory_identity, repo, lab)}
    whole = resolutions.get("typeProperties.connectionString")
    credential: Resolution | None
    if whole is not None:
        credential = whole
        target = connection_settings(whole.value, f"{service.name}: the secret {whole.secret}")
        if isinstance(settings.get("password"), dict) and "typeProperties.password" in resolutions:
            credential = resolutions["typeProperties.password"]
            target["password"] = credential.value
    else:
        credential = resolutions.get("typeProperties.password")
        for needed in ("server", "database", "username"):
            if not isinstance(settings.get(needed), str) or not settings[needed]:
                raise AdfError(f"{service.path}: typeProperties.{needed}: missing")
        if credential is None:
            raise AdfError(f"{service.path}: typeProperties.password: not a Key Vault reference")
        try:
            ssl_mode = SSL_MODES[int(settings.get("sslMode", 2))]
        except (ValueError, KeyError):
            raise AdfError(f"{service.path}: typeProperties.sslMode: one of 0-5") from None
        target = {"host": settings["server"], "port": str(settings.get("port", 5432)), "dbname": settings["database"],
                  "user": settings["username"], "password": credential.value, "sslmode": ssl_mode}
    try:
        with psycopg.connect(**target, connect_timeout=10) as connection:
            user, database = connection.execute("SELECT current_user, current_database()").fetchone() or ("", "")
    except psycopg.OperationalError as exc:
        text = str(exc).strip()
        reason = text[text.find("FATAL:"):].splitlines()[0] if "FATAL:" in text else text.splitlines()[0]
        raise ResolveError(f"{service.name}: PostgreSQL refused the connection: {reason}") from None
    return {"linkedService": service.name, "connected": True, "server": target.get("host"),
            "port": int(target.get("port") or 5432), "database": database, "user": user,
            "password": credential.describe()}
