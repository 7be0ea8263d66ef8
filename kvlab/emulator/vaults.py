"""The Key Vault domain: vaults, secret versions, soft delete, backup and the rules.

Every rule the service enforces on secrets lives here, so the HTTP layer only
translates and the CLI can reuse the same rules. Errors are raised as
`KeyVaultError` carrying the status, code and message the real service uses.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets as _random
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .clock import DAY, Clock
from .resources import Resources
from .store import Store, VaultRow, VersionRow
from .throttle import check_mode

NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}\Z")  # \Z, not $: "abc\n" must not pass
VERSION_RE = re.compile(r"^[0-9a-fA-F]{32}\Z")
# Azure vault names: 3-24 characters, letters, digits and hyphens, starting with a
# letter, ending with a letter or digit, no consecutive hyphens.
VAULT_NAME_RE = re.compile(r"^(?!.*--)[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]\Z")

MAX_VALUE_BYTES = 25 * 1024
MAX_TAGS = 15
MAX_TAG_NAME = 256
MAX_TAG_VALUE = 256
MAX_CONTENT_TYPE = 255  # characters ("About Azure Key Vault secrets")
DEFAULT_PAGE = 25
DEFAULT_RETENTION_DAYS = 90

_BACKUP_MAGIC = b"KVLAB-BACKUP-1"


class KeyVaultError(Exception):
    """An error the service would answer with: HTTP status, error code, message, inner code."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner

    def body(self) -> dict:
        error: dict = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


class VaultNotFound(Exception):
    """The host names no vault in this emulator (in Azure, its DNS name would not resolve)."""


def unknown_vault(name: str) -> ValueError:
    """The management plane's one wording for a vault that is not there (CLI, notebooks)."""
    return ValueError(f"vault {name!r} does not exist")


class VaultDeleted(ValueError):
    """The name belongs to a soft-deleted vault: Azure keeps it taken until the vault is recovered or purged."""


def deleted_state(vault: VaultRow) -> str:
    """What a soft-deleted vault's name is for now, and the two ways out."""
    until = datetime.fromtimestamp(vault.scheduled_purge or 0, timezone.utc).strftime("%Y-%m-%d")
    return (f"is deleted and its name stays taken until {until} (the vault's clock): recover it (az keyvault "
            f"recover --name {vault.name}) or purge it (az keyvault purge --name {vault.name})")


def vault_deleted(vault: VaultRow) -> VaultDeleted:
    return VaultDeleted(f"vault {vault.name!r} {deleted_state(vault)}")


class PurgeProtected(ValueError):
    """A purge that purge protection forbids: the vault waits out its retention period."""


def bad_parameter(message: str) -> KeyVaultError:
    return KeyVaultError(400, "BadParameter", message)


def secret_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {name} was not found in this key vault. If you recently deleted "
        "this secret you may be able to recover it using the correct recovery command. For help "
        "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def deleted_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")


@dataclass(frozen=True)
class Page:
    items: list[VersionRow]
    skiptoken: str | None


@dataclass(frozen=True)
class Attributes:
    """The settable part of a secret's attributes, validated."""

    enabled: bool | None = None
    nbf: int | None = None
    exp: int | None = None


def recovery_level(vault: VaultRow) -> str:
    level = "Recoverable" if vault.retention_days == 90 else "CustomizedRecoverable"
    return level if vault.purge_protection else level + "+Purgeable"


def validate_name(name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise bad_parameter(f"The request URI contains an invalid name: {name}")


def validate_vault_name(name: str) -> None:
    if not VAULT_NAME_RE.match(name or ""):
        raise ValueError(
            f"invalid vault name {name!r}: use 3-24 letters, digits and hyphens, starting with a "
            "letter, ending with a letter or digit, and no '--'"
        )


def _validate_version(version: str) -> None:
    if not VERSION_RE.match(version):
        raise bad_parameter(f"The request URI contains an invalid version: {version}.")


def parse_attributes(raw: object) -> Attributes:
    if raw is None:
        return Attributes()
    if not isinstance(raw, dict):
        raise bad_parameter("Property 'attributes' must be an object.")

    def unixtime(key: str) -> int | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_parameter(f"Property 'attributes.{key}' must be a number (seconds since 1970).")
        if not (0 <= value < 253402300800):  # up to year 9999
            raise bad_parameter(f"Property 'attributes.{key}' is out of range.")
        return int(value)

    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise bad_parameter("Property 'attributes.enabled' must be true or false.")
    return Attributes(enabled=enabled, nbf=unixtime("nbf"), exp=unixtime("exp"))


def parse_tags(raw: object) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise bad_parameter("Property 'tags' must be an object of string names to string values.")
    # The service answers every tag violation (more than 15, a name or value over
    # 256 characters) with this one generic message, line break included.
    if len(raw) > MAX_TAGS or any(
        not key or len(key) > MAX_TAG_NAME or len(value) > MAX_TAG_VALUE for key, value in raw.items()
    ):
        raise bad_parameter("Property has invalid value\r\n")
    return dict(raw)


def parse_content_type(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise bad_parameter("Property 'contentType' must be a string.")
    if len(raw) > MAX_CONTENT_TYPE:  # the limit is documented; the service's wording for it is unconfirmed
        raise bad_parameter(f"Property 'contentType' is beyond the maximum permitted length of {MAX_CONTENT_TYPE} "
                            "characters.")
    return unicode_text(raw, "contentType")


def unicode_text(value: str, prop: str) -> str:
    """Refuse an unpaired surrogate (JSON ``"\\ud800"``): it is no Unicode text, and
    measuring or storing it as UTF-8 would fail with a 500. (The service's answer to
    it is unconfirmed; this is the emulator's own BadParameter.)"""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_parameter(f"Property '{prop}' is not valid Unicode text.") from None
    return value


class Vaults:
    """All vaults of one emulator and the operations on their secrets."""

    def __init__(self, store: Store, clock: Clock | None = None, on_new_version=None):
        self.store = store
        self.clock = clock or Clock(store)
        self._backup_key = base64.b64decode(
            store.meta_or_create("backup_key", lambda: base64.b64encode(os.urandom(32)).decode())
        )
        self.resources = Resources(store)
        self.subscription_id = self.resources.subscription_id
        self._on_new_version = on_new_version or (lambda row: None)

    def resource_id(self, vault: str, secret: str | None = None) -> str:
        """The vault's (or a secret's) Azure resource id, as RBAC scopes and logs name it."""
        rid = self.resources.resource_id("vault", vault)
        return f"{rid}/secrets/{secret}" if secret else rid

    def update_vault(self, name: str, throttling: str) -> VaultRow:
        check_mode(throttling)
        if not self.store.update_vault(name, throttling):
            raise unknown_vault(name)
        return self.store.get_vault(name)  # type: ignore[return-value]

    # -- vaults -------------------------------------------------------------

    def create_vault(self, name: str, throttling: str = "off", retention_days: int = DEFAULT_RETENTION_DAYS) -> VaultRow:
        validate_vault_name(name)
        check_mode(throttling)
        if not self.store.add_vault(name.lower(), self.clock.now(), retention_days, throttling):
            deleted = self.deleted_vault(name)
            if deleted is not None:
                raise vault_deleted(deleted)
            raise ValueError(f"vault {name!r} already exists")
        return self.store.get_vault(name)  # type: ignore[return-value]

    def get_vault(self, name: str) -> VaultRow:
        vault = self.store.get_vault(name)
        if vault is None:
            raise VaultNotFound(name)
        return vault

    # -- soft-deleted vaults (Azure's `az keyvault delete`, `list-deleted`, `recover`, `purge`) ----------------

    def _purge_due(self) -> None:
        for name in self.store.vaults_due(self.clock.now()):
            self.store.remove_vault(name)

    def soft_delete_vault(self, name: str) -> VaultRow:
        """Delete a vault as Azure does (soft delete is always on): it keeps its secrets and its name for its
        retention period, recoverable, then is purged; its role assignments and event subscriptions go now."""
        vault = self.get_vault(name)
        now = self.clock.now()
        if not self.store.soft_delete_vault(vault.name, now, now + vault.retention_days * DAY):
            raise VaultNotFound(name)
        return self.store.deleted_vault(vault.name)  # type: ignore[return-value]

    def deleted_vault(self, name: str) -> VaultRow | None:
        self._purge_due()
        return self.store.deleted_vault(name)

    def deleted_vaults(self) -> list[VaultRow]:
        self._purge_due()
        return self.store.deleted_vaults()

    def recover_vault(self, name: str) -> VaultRow:
        deleted = self.deleted_vault(name)
        if deleted is None or not self.store.recover_vault(deleted.name):
            raise unknown_vault(name)
        return self.get_vault(deleted.name)

    def purge_vault(self, name: str) -> None:
        """Purge a soft-deleted vault now: gone with its secrets, its name free. Purge protection forbids it."""
        deleted = self.deleted_vault(name)
        if deleted is None:
            raise unknown_vault(name)
        if deleted.purge_protection:
            raise PurgeProtected(
                f"vault {deleted.name!r} has purge protection: nobody can purge it; it is purged on its scheduled "
                "purge date")
        self.store.remove_vault(deleted.name)

    def list_vaults(self) -> list[VaultRow]:
        return self.store.list_vaults()

    def delete_vault(self, name: str, force: bool = False) -> None:
        """Delete a vault and its secrets at once, deleted and purged in one step (``force``: even with purge
        protection, and a soft-deleted vault of that name too, as a lesson starting over does)."""
        vault = self.store.get_vault(name) or (self.store.deleted_vault(name) if force else None)
        if vault is not None and vault.purge_protection and not force:
            raise ValueError(
                f"vault {vault.name!r} has purge protection: deleting it here would purge it at once, which Azure "
                f"never allows; delete it as Azure does (az keyvault delete --name {vault.name}) and it stays "
                f"recoverable for {vault.retention_days} days")
        if vault is None or not self.store.remove_vault(vault.name):
            deleted = self.store.deleted_vault(name)
            raise vault_deleted(deleted) if deleted is not None else unknown_vault(name)

    def protect_vault(self, name: str) -> VaultRow:
        """Purge protection on: deleted secrets wait out the retention period, nobody can purge them."""
        self.get_vault(name)
        self.store.protect_vault(name)
        return self.get_vault(name)

    # -- secrets ------------------------------------------------------------

    def _live(self, vault: str, name: str) -> str:
        """The stored spelling of a live secret's name, or 404."""
        validate_name(name)
        self.store.purge_due(self.clock.now())
        state = self.store.secret_state(vault, name)
        if state is None or state[1] is not None:
            raise secret_not_found(name)
        return state[0]

    def _deleted(self, vault: str, name: str) -> str:
        validate_name(name)
        self.store.purge_due(self.clock.now())
        state = self.store.secret_state(vault, name)
        if state is None or state[1] is None:
            raise deleted_not_found(name)
        return state[0]

    def set_secret(
        self,
        vault: str,
        name: str,
        value: object,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        attributes: Attributes = Attributes(),
    ) -> VersionRow:
        validate_name(name)
        if not isinstance(value, str):
            raise bad_parameter("Property 'value' is required and must be a string.")
        if len(unicode_text(value, "value").encode("utf-8")) > MAX_VALUE_BYTES:
            raise KeyVaultError(
                400, "BadParameter",
                f"Secret is beyond the maximum permitted length of {MAX_VALUE_BYTES} characters.",
                inner="SecretTooLarge",
            )
        now = self.clock.now()
        self.store.purge_due(now)
        state = self.store.secret_state(vault, name)
        if state is not None and state[1] is not None:
            raise KeyVaultError(
                409,
                "Conflict",
                f"Secret {state[0]} is currently in a deleted but recoverable state, and its name "
                "cannot be reused; in this state, the secret can only be recovered or purged.",
                inner="ObjectIsDeletedButRecoverable",
            )
        row = VersionRow(
            vault=vault, name=name, version=_random.token_hex(16), value=value,
            content_type=content_type, tags=tags,
            enabled=True if attributes.enabled is None else attributes.enabled,
            nbf=attributes.nbf, exp=attributes.exp, created=now, updated=now,
        )
        stored = self.store.add_version(row)
        self._on_new_version(stored)
        return stored

    def inspect(self, vault: str, name: str) -> VersionRow | None:
        """The latest version of a live secret, disabled or not; None if there is none."""
        if not NAME_RE.match(name or ""):
            return None
        self.store.purge_due(self.clock.now())
        state = self.store.secret_state(vault, name)
        if state is None or state[1] is not None:
            return None
        return self.store.get_version(vault, state[0], None)

    def values(self, vault: str) -> dict[str, list[str]]:
        """Every value each secret of a vault holds or held (all versions, deleted too, not yet purged)."""
        self.store.purge_due(self.clock.now())
        found: dict[str, list[str]] = {}
        for name, value in self.store.values(vault):
            found.setdefault(name, []).append(value)
        return found

    def _version(self, vault: str, name: str, version: str | None) -> VersionRow:
        """One version of a live secret (the latest when ``version`` is empty), or 404."""
        stored = self._live(vault, name)
        if version:
            _validate_version(version)
        row = self.store.get_version(vault, stored, version or None)
        if row is None:
            raise secret_not_found(f"{name}/{version}" if version else name)
        return row

    def get_secret(self, vault: str, name: str, version: str | None) -> VersionRow:
        row = self._version(vault, name, version)
        if not row.enabled:
            raise KeyVaultError(
                403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                inner="SecretDisabled",
            )
        return row

    def update_secret(
        self,
        vault: str,
        name: str,
        version: str | None,
        content_type: object = ...,
        tags: object = ...,
        attributes: Attributes | None = None,
    ) -> VersionRow:
        row = self._version(vault, name, version)
        stored = row.name
        changes: dict[str, object] = {}
        if content_type is not ...:
            changes["content_type"] = parse_content_type(content_type)
        if tags is not ...:
            changes["tags"] = parse_tags(tags)
        if attributes is not None:
            for key in ("enabled", "nbf", "exp"):
                value = getattr(attributes, key)
                if value is not None:
                    changes[key] = value
        self.store.update_version(vault, stored, row.version, changes, self.clock.now())
        return self.store.get_version(vault, stored, row.version)  # type: ignore[return-value]

    def list_secrets(self, vault: str, maxresults: int | None, skiptoken: str | None) -> Page:
        return self._page_names(vault, False, maxresults, skiptoken)

    def list_deleted(self, vault: str, maxresults: int | None, skiptoken: str | None) -> Page:
        return self._page_names(vault, True, maxresults, skiptoken)

    def _page_names(self, vault: str, deleted: bool, maxresults: int | None, skiptoken: str | None) -> Page:
        limit = maxresults or DEFAULT_PAGE
        self.store.purge_due(self.clock.now())
        after = _decode_token(skiptoken, "n") if skiptoken else None
        rows = self.store.latest_versions(vault, deleted, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, _encode_token("n", rows[-1].name.lower()) if more else None)

    def list_versions(
        self, vault: str, name: str, maxresults: int | None, skiptoken: str | None
    ) -> Page:
        validate_name(name)
        state = self.store.secret_state(vault, name)
        if state is None or state[1] is not None:
            return Page([], None)  # the service lists no versions rather than answering 404
        limit = maxresults or DEFAULT_PAGE
        token = _decode_token(skiptoken, "v") if skiptoken else "0"
        # ASCII digits only ("²" is a digit to str.isdigit), and within SQLite's 64-bit integers
        if not (token.isascii() and token.isdigit() and len(token) <= 18):
            raise bad_parameter("The $skiptoken parameter is invalid.")
        rows = self.store.versions(vault, state[0], int(token), limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([r for _, r in rows], _encode_token("v", str(rows[-1][0])) if more else None)

    def delete_secret(self, vault: str, name: str) -> VersionRow:
        stored = self._live(vault, name)
        retention = self.get_vault(vault).retention_days
        now = self.clock.now()
        self.store.mark_deleted(vault, stored, now, now + retention * DAY)
        return self.store.get_version(vault, stored, None)  # type: ignore[return-value]

    def get_deleted(self, vault: str, name: str) -> VersionRow:
        stored = self._deleted(vault, name)
        return self.store.get_version(vault, stored, None)  # type: ignore[return-value]

    def recover_deleted(self, vault: str, name: str) -> VersionRow:
        try:
            stored = self._deleted(vault, name)
        except KeyVaultError as exc:  # recover words its 404 like a live secret's
            if exc.status == 404:
                raise secret_not_found(name) from None
            raise
        self.store.mark_deleted(vault, stored, None, None)
        return self.store.get_version(vault, stored, None)  # type: ignore[return-value]

    def purge_deleted(self, vault: str, name: str) -> None:
        stored = self._deleted(vault, name)
        if self.get_vault(vault).purge_protection:  # Key Vault's words (its Caller line is left out here)
            raise KeyVaultError(403, "Forbidden", 'Operation is not allowed.\r\nOperation: "purge"\r\n'
                                f"Vault: {vault};location=kvlab\r\n")
        self.store.remove_secret(vault, stored)

    # -- backup and restore -------------------------------------------------

    def backup_secret(self, vault: str, name: str) -> str:
        """An opaque blob: every version, compressed and sealed with the emulator's key."""
        stored = self._live(vault, name)
        versions = [
            {k: v for k, v in row.__dict__.items() if k not in ("vault", "deleted_date", "scheduled_purge")}
            for row in self.store.all_versions(vault, stored)
        ]
        plain = zlib.compress(json.dumps({"name": stored, "versions": versions}).encode())
        nonce = os.urandom(12)
        sealed = AESGCM(self._backup_key).encrypt(nonce, plain, _BACKUP_MAGIC)
        return base64.urlsafe_b64encode(_BACKUP_MAGIC + nonce + sealed).rstrip(b"=").decode()

    def restore_secret(self, vault: str, blob: object, base_url: str = "") -> VersionRow:
        if not isinstance(blob, str) or not blob:
            raise bad_parameter("Property 'value' is required and must be a backup blob.")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            if not raw.startswith(_BACKUP_MAGIC):
                raise ValueError("not a backup")
            head = len(_BACKUP_MAGIC)
            plain = AESGCM(self._backup_key).decrypt(raw[head : head + 12], raw[head + 12 :], _BACKUP_MAGIC)
            data = json.loads(zlib.decompress(plain))
        except (ValueError, InvalidTag, zlib.error):
            raise KeyVaultError(400, "Malformed backup blob", "Backup blob is corrupt.") from None
        rows = [VersionRow(vault=vault, **v) for v in data["versions"]]
        if not self.store.restore_versions(rows):
            raise KeyVaultError(
                409, "Conflict",
                f"There was a conflict restoring the secret '{base_url}/secrets/{data['name']}/"
                f"{rows[-1].version}'. This can happen if either: a second secret with the same "
                "name was created after the first secret was deleted; thus trying to restore a "
                "secret whose name is already in use. To fix this, rename the second secret to "
                "something else so that the restore works. The second probable cause of this "
                "exception is when multiple operations are performed in parallel against the "
                "secret. To avoid this error, perform operations against a secret in a sequential "
                "manner.",
            )
        return self.store.get_version(vault, data["name"], None)  # type: ignore[return-value]


def _encode_token(kind: str, text: str) -> str:
    """An opaque continuation token: which list it continues, and after what."""
    return base64.urlsafe_b64encode(f"{kind}:{text}".encode()).rstrip(b"=").decode()


def _decode_token(token: str, kind: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith(f"{kind}:"):
        raise bad_parameter("The $skiptoken parameter is invalid.")
    return text[2:]
