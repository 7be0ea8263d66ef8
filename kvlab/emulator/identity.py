"""Managed-identity tokens: the App Service token endpoint, signing and verification.

``DefaultAzureCredential`` reaches ``ManagedIdentityCredential``, which in the
App Service protocol calls ``$IDENTITY_ENDPOINT`` with the header
``X-IDENTITY-HEADER: $IDENTITY_HEADER``. The emulator serves that endpoint and
issues RS256 JWTs signed with a key kept in the state database; the vault
accepts only tokens it can verify (signature, issuer, audience, expiry).
"""

from __future__ import annotations

import functools
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .store import IdentityRow, Store

if TYPE_CHECKING:
    import jwt

APP_SERVICE_API_VERSION = "2019-08-01"
TOKEN_LIFETIME = 24 * 3600  # managed-identity tokens live about a day
LEEWAY = 60
VERIFIED_CACHE = 1024  # tokens remembered as verified (a client sends the same token until it expires)


LEARNER = "learner"
UPN_DOMAIN = "kvlab.local"  # a user's sign-in name is <name>@kvlab.local (the workspace knows the learner by it)
DATABRICKS = "AzureDatabricks"
DATABRICKS_APP_ID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"  # Azure Databricks' first-party app
BUILT_IN = (LEARNER.lower(), DATABRICKS.lower())
IDENTITY_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}\Z")


@dataclass(frozen=True)
class Caller:
    """Who a verified token says the caller is."""

    name: str
    oid: str
    appid: str


class TokenError(Exception):
    """A token the vault must refuse (answered with the 401 challenge).

    ``reason`` says why in one word, for services that word their own refusals
    (Resource Manager): expired, early, audience, issuer, signature or malformed."""

    def __init__(self, message: str, reason: str = "malformed"):
        super().__init__(message)
        self.reason = reason


class TokenRequestError(Exception):
    """A token request the identity endpoint refuses: status and message, App Service style."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@functools.lru_cache(maxsize=8)
def _signing_key(pem: str):
    """The tenant's private key, parsed once per process and only by one that signs or verifies a token (40-130 ms,
    with RSA's consistency checks: a `kvlab vault create` needs no key)."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem.encode(), password=None)


class Identities:
    """The emulator's tenant: its signing key, the identity header secret, its identities."""

    def __init__(self, store: Store):
        self.store = store
        self.tenant_id = store.meta_or_create("tenant_id", lambda: str(uuid.uuid4()))
        self.issuer = f"https://sts.windows.net/{self.tenant_id}/"
        self.identity_header = store.meta_or_create("identity_header", lambda: secrets.token_urlsafe(32))
        self._pem = store.meta_or_create("signing_key", _new_signing_key)
        # The learner (standing in for `az login`) and the Databricks service exist from the start.
        for name, kind, client_id in ((LEARNER, "user", None), (DATABRICKS, "builtin", DATABRICKS_APP_ID)):
            if store.find_identity(name) is None:
                store.add_identity(IdentityRow(
                    name=name, client_id=client_id or str(uuid.uuid4()),
                    principal_id=str(uuid.uuid4()), kind=kind, created=int(time.time()),
                ))
        # (token, audience) -> (not before, expires, caller) of tokens that passed `verify`
        self._verified: dict[tuple[str, str], tuple[int, int, Caller]] = {}

    @property
    def _private_key(self):
        return _signing_key(self._pem)

    @functools.cached_property
    def _public_key(self):
        return self._private_key.public_key()

    # -- identities -----------------------------------------------------------

    def create(self, name: str) -> IdentityRow:
        """A user-assigned managed identity, with its own client id and principal id."""
        if not IDENTITY_NAME_RE.match(name or ""):
            raise ValueError(
                f"invalid identity name {name!r}: use 3-128 letters, digits, hyphens and "
                "underscores, starting with a letter or digit"
            )
        row = IdentityRow(
            name=name, client_id=str(uuid.uuid4()), principal_id=str(uuid.uuid4()),
            kind="userAssigned", created=int(time.time()),
        )
        if not self.store.add_identity(row):
            raise ValueError(f"identity {name!r} already exists")
        return row

    def get(self, name_or_id: str) -> IdentityRow:
        found = self.store.find_identity(name_or_id.strip())
        if found is None:
            raise ValueError(f"no identity {name_or_id!r}; see: kvlab identity list")
        return found

    def list(self) -> list[IdentityRow]:
        return self.store.list_identities()

    def delete(self, name: str) -> IdentityRow:
        found = self.get(name)
        if found.name.lower() in BUILT_IN:
            raise ValueError(f"identity {found.name!r} is built in and cannot be deleted")
        self.store.remove_identity(found.name)
        return found

    def by_principal(self, principal_id: str) -> IdentityRow | None:
        return self.store.find_identity(principal_id)

    # -- the token endpoint -------------------------------------------------

    def issue(self, header_secret: str | None, params: dict[str, str]) -> dict:
        """Answer an App Service managed-identity token request."""
        if not header_secret or not hmac.compare_digest(header_secret, self.identity_header):
            raise TokenRequestError(401, "The X-IDENTITY-HEADER header is missing or wrong.")
        if params.get("api-version") != APP_SERVICE_API_VERSION:
            raise TokenRequestError(400, f"api-version must be {APP_SERVICE_API_VERSION}.")
        resource = params.get("resource")
        if not resource:
            raise TokenRequestError(400, "The 'resource' query parameter is required.")
        identity = self._select(params)
        now = int(time.time())
        claims: dict = {
            "aud": resource,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME,
            "oid": identity.principal_id,
            "sub": identity.principal_id,
            "appid": identity.client_id,
            "azp": identity.client_id,
            "tid": self.tenant_id,
            "idtyp": "user" if identity.kind == "user" else "app",
            "kvlab_name": identity.name,
        }
        if identity.kind == "user":
            claims["upn"] = f"{identity.name}@{UPN_DOMAIN}"
        import jwt

        token = jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": "kvlab"})
        return {
            "access_token": token,
            "expires_on": str(claims["exp"]),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }

    def _select(self, params: dict[str, str]) -> IdentityRow:
        """The identity a request names (client_id, object_id or mi_res_id), else the learner."""
        wanted = params.get("client_id") or params.get("object_id") or params.get("mi_res_id")
        if wanted and "/" in wanted:  # a resource id: .../userAssignedIdentities/<name>
            wanted = wanted.rstrip("/").rsplit("/", 1)[-1]
        found = self.store.find_identity(wanted or LEARNER)
        if found is None:
            raise TokenRequestError(400, f"No managed identity found with id {wanted}.")
        return found

    # -- the vault side -----------------------------------------------------

    def verify(self, token: str, audience: str) -> Caller:
        # Signature, issuer and audience of a token never change, so a token verified
        # before is accepted again after only the time checks PyJWT makes (iat, nbf, exp
        # with the leeway); anything else takes the full check below. Decoding is most of
        # a request's work otherwise.
        known = self._verified.get((token, audience))
        if known is not None:
            not_before, expires, caller = known
            now = time.time()
            if not_before <= now + LEEWAY and expires > now - LEEWAY:
                return caller
        import jwt

        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                audience=[audience, audience + "/"],
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "aud", "iss", "oid"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(self._refusal(token, audience, exc), _reason(exc)) from None
        caller = Caller(name=claims.get("kvlab_name", claims["oid"]), oid=claims["oid"], appid=claims.get("appid", ""))
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.clear()
        not_before = max(int(claims["iat"]), int(claims.get("nbf", claims["iat"])))
        self._verified[(token, audience)] = (not_before, int(claims["exp"]), caller)
        return caller

    def _refusal(self, token: str, audience: str, exc: jwt.PyJWTError) -> str:
        """The message Key Vault gives for a token it refuses."""
        import jwt

        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            header = token.split(".")[0]
        except jwt.PyJWTError:
            return "AKV10000: Request is missing a Bearer or PoP token."  # not a JWT at all
        if isinstance(exc, jwt.ExpiredSignatureError):
            return "[TokenExpired] Error validating token: 'S2S12086'."
        if isinstance(exc, jwt.ImmatureSignatureError):
            return "Token not yet valid."
        if isinstance(exc, jwt.InvalidAudienceError):
            return f"AKV10022: Invalid audience. Expected {audience}, found: {claims.get('aud')}."
        if isinstance(exc, jwt.InvalidIssuerError):
            return f"AKV10032: Invalid issuer. Expected one of {self.issuer}, found {claims.get('iss')}."
        if isinstance(exc, (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError)):
            return (
                "AKV10046: Unable to resolve the key used for signature validation. "
                f"EncodedJwtHeader: '{header}'."
            )
        return f"Error validating token: {exc}."


def _reason(exc: jwt.PyJWTError) -> str:
    import jwt

    for kind, reason in ((jwt.ExpiredSignatureError, "expired"), (jwt.ImmatureSignatureError, "early"),
                         (jwt.InvalidAudienceError, "audience"), (jwt.InvalidIssuerError, "issuer"),
                         (jwt.InvalidSignatureError, "signature"), (jwt.InvalidAlgorithmError, "signature")):
        if isinstance(exc, kind):
            return reason
    return "malformed"


def _new_signing_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
