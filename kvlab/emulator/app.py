"""The emulator's ASGI app: one port, routed by the Host header.

``localhost``            the emulator's own endpoints: the managed-identity token
                         endpoint (``/msi/token``) and a health check.
``<vault>.localhost``    a Key Vault; `vault_request` below is the whole request
                         path: challenge, token, api-version, operation, vault,
                         domain, answer.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from .identity import Identities, TokenError, TokenRequestError
from .keyvault import Call, MethodNotAllowed, check_api_version, route
from .store import Store
from .vaults import KeyVaultError, VaultNotFound, Vaults

MAX_BODY = 1024 * 1024
SERVICE_VERSION = "1.9.3019.1"  # what x-ms-keyvault-service-version reports


class Challenge(Exception):
    """Answer 401 with the Bearer challenge (no token, or one we refuse)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _json(status: int, body: dict | None, headers: dict[str, str] | None = None) -> Response:
    content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    media = None if body is None else "application/json; charset=utf-8"
    return Response(content, status_code=status, headers=headers, media_type=media)


class EmulatorApp:
    """The ASGI callable. Holds the domain objects of one state directory."""

    def __init__(self, state_dir: Path, port: int):
        self.state_dir = Path(state_dir)
        self.port = port
        self.store = Store(self.state_dir / "kvlab.db")
        self.vaults = Vaults(self.store)
        self.identities = Identities(self.store)
        self.store.set_meta("last_port", str(port))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.store.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        host, _, port = request.headers.get("host", "localhost").partition(":")
        host = host.lower().rstrip(".")
        if host in ("localhost", "127.0.0.1"):
            response = await self.service_request(request)
        elif host.endswith(".localhost") and host.count(".") == 1:
            response = await self.vault_request(request, host[: -len(".localhost")], port)
        else:
            response = _json(404, {"error": {"code": "NotFound", "message": f"Unknown host {host}."}})
        await response(scope, receive, send)

    # -- the emulator's own endpoints ---------------------------------------

    async def service_request(self, request: Request) -> Response:
        path = request.url.path
        if path == "/msi/token" and request.method == "GET":
            try:
                token = self.identities.issue(
                    request.headers.get("x-identity-header"), dict(request.query_params)
                )
            except TokenRequestError as exc:
                return _json(exc.status, {"statusCode": exc.status, "message": exc.message})
            return _json(200, token)
        if path == "/kvlab/health":
            return _json(200, {
                "status": "ok", "version": __version__, "pid": os.getpid(),
                "port": self.port, "stateDir": str(self.state_dir),
            })
        return _json(404, {"error": {"code": "NotFound", "message": f"No endpoint {path}."}})

    # -- Key Vault ----------------------------------------------------------

    async def vault_request(self, request: Request, vault_name: str, port: str) -> Response:
        """The request path of every vault operation, in order."""
        resource = f"https://localhost:{port}" if port else "https://localhost"
        headers = {
            "cache-control": "no-cache",
            "pragma": "no-cache",
            "expires": "-1",
            "x-ms-keyvault-region": "kvlab",
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": SERVICE_VERSION,
            "x-ms-keyvault-network-info": f"conn_type=Ipv4;addr={request.client.host if request.client else ''};act_addr_fam=InterNetwork;",
            "x-content-type-options": "nosniff",
            "strict-transport-security": "max-age=31536000;includeSubDomains",
        }
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            headers["x-ms-client-request-id"] = client_request_id
        try:
            # 1. authenticate: the challenge comes before anything else is validated
            self.authenticate(request, resource)
            # 2. api-version and 3. operation
            query = dict(parse_qsl(request.url.query, keep_blank_values=True))
            api_version = check_api_version(query)
            operation, params = route(request.method, request.url.path)
            # 4. vault
            vault = self.vaults.get_vault(vault_name)
            # 5. authorize the operation's data action (RBAC: the next issue)
            # 6. domain
            body = await request.body()
            if len(body) > MAX_BODY:
                raise KeyVaultError(413, "RequestEntityTooLarge", "The request body is too large.")
            base = f"https://{request.headers.get('host', '')}"
            call = Call(
                self.vaults, vault, base, request.url.path.rstrip("/") or "/", api_version,
                query, body, params.get("name"), params.get("version"),
            )
            status, payload = operation.handler(call)
            return _json(status, payload, headers)
        except Challenge as exc:
            return self.challenge(resource, exc, headers)
        except KeyVaultError as exc:
            if isinstance(exc, MethodNotAllowed):
                headers["Allow"] = exc.allow
            return _json(exc.status, exc.body(), headers)
        except VaultNotFound:
            return _json(404, {"error": {
                "code": "VaultNotFound",
                "message": f"There is no vault named '{vault_name}' in this emulator. "
                f"Create it with: kvlab vault create --name {vault_name}",
            }}, headers)

    def authenticate(self, request: Request, resource: str):
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Challenge("AKV10000: Request is missing a Bearer or PoP token.")
        try:
            return self.identities.verify(token.strip(), resource)
        except TokenError as exc:
            raise Challenge(str(exc)) from None

    def challenge(self, resource: str, exc: Challenge, headers: dict[str, str]) -> Response:
        value = (
            f'Bearer authorization="https://login.windows.net/{self.identities.tenant_id}", '
            f'resource="{resource}"'
        )
        headers = {**headers, "WWW-Authenticate": value}
        return _json(401, {"error": {"code": "Unauthorized", "message": exc.message}}, headers)


def create_app(state_dir: Path, port: int) -> EmulatorApp:
    return EmulatorApp(state_dir, port)
