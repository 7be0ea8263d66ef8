"""The emulator's ASGI app: one port, routed by the Host header.

``localhost``            the emulator's own endpoints: the managed-identity token
                         endpoint (``/msi/token``) and a health check.
``<vault>.localhost``    a Key Vault; `vault_request` below is the whole request
                         path, in order: operation, challenge and token,
                         api-version, vault, throttling, RBAC, domain, answer,
                         audit record.
``adb-<id>.1.localhost``  the Databricks workspace (`workspace_request`): token,
                         endpoint, domain, answer. A Key Vault-backed scope reads
                         its vault as the AzureDatabricks application through
                         `DatabricksReads`: RBAC, domain and audit record, as any
                         caller's request would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from .. import __version__
from . import arm, databricks, graph
from .events import Delivery
from .identity import DATABRICKS, DATABRICKS_APP_ID, LEARNER, Caller, TokenError, TokenRequestError
from .keyvault import DATA_ACTION_PREFIX, Call, MethodNotAllowed, check_api_version, route
from .proxy import Proxy
from .proxy import password as proxy_password
from .rbac import Forbidden
from .state import State
from .throttle import Throttle
from .vaults import KeyVaultError, VaultNotFound, deleted_state
from .workspaces import DatabricksError

MAX_BODY = 1024 * 1024
SERVICE_VERSION = "1.9.3019.1"  # what x-ms-keyvault-service-version reports
REGION = "kvlab"
BUSY_TIMEOUT = 2.0  # seconds a request waits for another process's write before the service's 503
log = logging.getLogger("kvlab.emulator")


def _is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _busy(exc: sqlite3.Error) -> str:
    return ("The emulator's database is busy: another kvlab process has held its write lock for "
            f"{BUSY_TIMEOUT:g} s. Nothing was changed; try again.")


def _not_stored(exc: sqlite3.Error) -> tuple[int, dict]:
    """A request whose transaction failed: Key Vault's 503 when the database was busy (clients retry it),
    a 500 otherwise (a full disk, a damaged file); either way nothing of it was kept."""
    if _is_busy(exc):
        return 503, {"error": {"code": "ServiceUnavailable", "message": _busy(exc)}}
    return 500, {"error": {"code": "InternalServerError", "message": (
        f"The emulator could not store this request ({exc}), so nothing of it was kept; see emulator.log "
        "in its state directory.")}}


class Challenge(Exception):
    """Answer 401 with the Bearer challenge (no token, or one we refuse)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Request:
    """What the app reads of an ASGI HTTP request (kept minimal: it is on every call's path)."""

    __slots__ = ("scope", "_receive", "method", "path", "raw_path", "query_string", "headers", "client_ip")

    def __init__(self, scope, receive):
        self.scope = scope
        self._receive = receive
        self.method = scope["method"]
        self.path = scope["path"]
        self.raw_path = (scope.get("raw_path") or b"").decode("latin-1").split("?", 1)[0] or self.path
        self.query_string = scope.get("query_string", b"").decode("latin-1")
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.client_ip = scope["client"][0] if scope.get("client") else ""

    async def body(self, limit: int) -> bytes | None:
        """The body, read on the event loop before the request's database work; None past ``limit`` bytes
        (the rest is left unread), refused as `TOO_LARGE` where the service would look at the body."""
        chunks, size = [], 0
        while True:
            message = await self._receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


def _given(body: bytes | None) -> bytes:
    """The body a request sent, or Key Vault's 413 where it sent too much."""
    if body is None:
        raise KeyVaultError(413, "RequestEntityTooLarge", "The request body is too large.")
    return body


class Response:
    __slots__ = ("status_code", "content", "headers")

    def __init__(self, status_code: int, content: bytes, headers: dict[str, str]):
        self.status_code = status_code
        self.content = content
        self.headers = headers

    async def __call__(self, send) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        headers.append((b"content-length", str(len(self.content)).encode()))
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": self.content})


def _json(status: int, body: dict | None, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    if body is None:
        return Response(status, b"", headers)
    headers["content-type"] = "application/json; charset=utf-8"
    return Response(status, json.dumps(body, separators=(",", ":")).encode(), headers)


class EmulatorApp:
    """The ASGI callable. Holds the domain objects of one state directory.

    A request's body is read on the event loop; everything else it does (token, RBAC, domain, its audit
    record) runs on the database thread, in one transaction that commits before the answer is sent. So a
    database another process keeps busy never freezes the loop (issue #14, defect 3): health and TLS
    handshakes go on, and the request waits at most BUSY_TIMEOUT before Key Vault's 503.
    """

    def __init__(self, state_dir: Path, port: int):
        self.state_dir = Path(state_dir)
        self.port = port
        self.state = State(self.state_dir, busy_timeout=BUSY_TIMEOUT)
        self.state.store.set_meta("last_port", str(port))
        self.state.store.per_request = True
        self.throttle = Throttle()
        # One thread makes every SQLite call of the server (the store serialises its connection anyway)
        self._database = ThreadPoolExecutor(1, thread_name_prefix="kvlab-database")
        # Other processes reach the emulator's names through this (`kvlab env` sets HTTPS_PROXY)
        self.proxy = Proxy(port, proxy_password(self.state.store))
        # Event subscriptions: each one's new events, POSTed to its webhook (see events.Delivery)
        self.delivery = Delivery(self.state.store, self.state_dir / "ca.pem", self.in_database)

    async def in_database(self, work, *args):
        """``work(*args)`` on the database thread, awaited on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._database, work, *args)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.proxy.start()
                    self.delivery.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.delivery.close()
                    await self.proxy.close()
                    self._database.shutdown(wait=True)
                    self.state.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        host, _, port = request.headers.get("host", "localhost").partition(":")
        host = host.lower().rstrip(".")
        body = await request.body(arm.MAX_BODY if host in (arm.HOST, graph.HOST) else MAX_BODY) \
            if request.method in ("PUT", "PATCH", "POST") else b""
        if host in ("localhost", "127.0.0.1"):
            if request.path == "/kvlab/health":
                response = self.health()
            else:
                response = await self.in_database(self.service_request, request)
        elif host == self.state.workspace_host():
            response = await self.in_database(self.workspace_request, request, body)
        elif host == arm.HOST:
            response = await self.in_database(self.arm_request, request, body)
        elif host == graph.HOST:
            response = await self.in_database(self.graph_request, request, body)
        elif host.endswith(".localhost") and host.count(".") == 1:
            response = await self.in_database(self.vault_request, request, host[: -len(".localhost")], port, body)
        else:
            response = _json(404, {"error": {"code": "NotFound", "message": f"Unknown host {host}."}})
        await response(send)

    # -- the emulator's own endpoints ---------------------------------------

    def health(self) -> Response:
        """Whether the emulator answers; no database call, so it answers while the database is busy. It names
        no process or directory: a caller that trusts this state directory's CA (as `kvlab emulator status`
        does) already knows it reached this state directory's emulator."""
        return _json(200, {"status": "ok", "version": __version__, "port": self.port, "proxyPort": self.proxy.port})

    def service_request(self, request: Request) -> Response:
        if request.path == "/msi/token" and request.method == "GET":
            try:
                self.state.store.refresh()
                token = self.state.identities.issue(
                    request.headers.get("x-identity-header"),
                    dict(parse_qsl(request.query_string, keep_blank_values=True)),
                )
            except TokenRequestError as exc:
                return _json(exc.status, {"statusCode": exc.status, "message": exc.message})
            except sqlite3.OperationalError as exc:
                return _json(503, {"statusCode": 503, "message": _busy(exc)}, {"Retry-After": "1"})
            return _json(200, token)
        return _json(404, {"error": {"code": "NotFound", "message": f"No endpoint {request.path}."}})

    # -- Key Vault ----------------------------------------------------------

    def vault_request(self, request: Request, vault_name: str, port: str, body: bytes | None) -> Response:
        """A vault request and its audit record, committed together before the answer is sent (a read's
        record is its only write: no value leaves without its record)."""
        store = self.state.store
        try:
            with store.reading() if request.method in ("GET", "HEAD") else store.transaction():
                response, record, duration = self._vault_answer(request, vault_name, port, body)
                self._audit(record, response.status_code, duration)
            return response
        except sqlite3.Error as exc:  # nothing of this request was kept, its audit record included
            if not _is_busy(exc):
                log.error("a request to %s was not stored: %s", vault_name, exc)
            return _json(*_not_stored(exc), self._headers(request, request.client_ip))

    def _vault_answer(self, request: Request, vault_name: str, port: str, body: bytes | None):
        """The request path of every vault operation, in order. Returns the answer, its audit record and
        how long it took."""
        started = time.perf_counter()
        resource = f"https://localhost:{port}" if port else "https://localhost"
        client_ip = request.client_ip
        headers = self._headers(request, client_ip)
        # The path as sent: a %2F inside a name must not split it into two segments.
        path, raw_path, query_string = request.path, request.raw_path, request.query_string
        record: dict = {
            "vault": vault_name, "operationName": "Unknown", "callerIpAddress": client_ip,
            "correlationId": headers.get("x-ms-client-request-id", headers["x-ms-request-id"]),
            "requestUri": f"https://{request.headers.get('host', '')}{raw_path}" + (f"?{query_string}" if query_string else ""),
            "resourceId": self.state.vaults.resource_id(vault_name),
        }
        try:
            try:  # 1. operation (its routing errors wait until the caller is known)
                operation, params = route(request.method, raw_path)
                params = {k: unquote(v) if v is not None else None for k, v in params.items()}
                record.update(operationName=operation.name, secretName=params.get("name"))
                record["secretVersion"] = params.get("version") or None
                routing_error = None
            except KeyVaultError as exc:
                operation, params, routing_error = None, {}, exc
            query = dict(parse_qsl(query_string, keep_blank_values=True))
            record["operationVersion"] = query.get("api-version")
            # 2. the challenge comes before anything else is validated; then the token
            caller = self.authenticate(request, resource)
            record.update(identity=caller.name, callerOid=caller.oid, callerAppId=caller.appid)
            # 3. api-version, then the operation's own errors
            api_version = check_api_version(query)
            if routing_error is not None:
                raise routing_error
            assert operation is not None
            # 4. vault
            vault = self.state.vaults.get_vault(vault_name)
            # 5. the service's limits, when this vault applies them
            if vault.throttling == "real":
                wait = self.throttle.retry_after(vault.name, operation.name)
                if wait is not None:
                    headers["Retry-After"] = str(wait)
                    raise KeyVaultError(
                        429, "Throttled",
                        "Request was not processed because too many requests were received. "
                        "Reason: VaultRequestTypeLimitReached",
                    )
            # 6. RBAC: the caller needs the operation's data action at this scope
            assignment = self.state.roles.authorize(caller.oid, vault.name, params.get("name"), operation.data_action)
            headers["x-ms-keyvault-rbac-assignment-id"] = assignment.id.replace("-", "")
            # 7. domain
            call = Call(
                self.state.vaults, vault, f"https://{request.headers.get('host', '')}",
                path.rstrip("/") or "/", api_version, query, _given(body),
                params.get("name"), params.get("version"),
            )
            status, payload = operation.handler(call)
            if payload and isinstance(payload.get("id"), str) and "/secrets/" in payload["id"]:
                record["id"] = payload["id"]
                parts = payload["id"].split("/secrets/", 1)[1].split("/")
                record["secretName"] = parts[0]
                if len(parts) > 1:
                    record["secretVersion"] = parts[1]
            response = _json(status, payload, headers)
        except Challenge as exc:
            response = self._challenge(resource, exc, headers)
            record["resultDescription"] = "Unauthorized"
        except Forbidden as exc:
            response = self._forbidden(exc, caller, vault_name, params.get("name"), headers)
            record["resultDescription"] = "ForbiddenByRbac"
        except KeyVaultError as exc:
            if isinstance(exc, MethodNotAllowed):
                headers["Allow"] = exc.allow
            response = _json(exc.status, exc.body(), headers)
            record["resultDescription"] = exc.inner or exc.code
        except VaultNotFound:
            deleted = self.state.vaults.deleted_vault(vault_name)
            response = _json(404, {"error": {
                "code": "VaultNotFound",
                "message": f"There is no vault named '{vault_name}' in this emulator" + (
                    f": it {deleted_state(deleted)}." if deleted is not None
                    else f". Create it with: kvlab vault create --name {vault_name}"),
            }}, headers)
            record["resultDescription"] = "VaultNotFound"
        except sqlite3.Error:  # the database's own failure: the whole request is undone (vault_request)
            raise
        except Exception:  # a bug: answer in the service's shape and keep the evidence
            log.exception("unexpected error in %s %s", request.method, raw_path)
            response = _json(500, {"error": {
                "code": "InternalServerError",
                "message": "The emulator failed on this request; see emulator.log in its state directory.",
            }}, headers)
            record["resultDescription"] = "InternalServerError"
        return response, record, time.perf_counter() - started

    # -- Azure Resource Manager ---------------------------------------------------

    def arm_request(self, request: Request, body: bytes | None) -> Response:
        """A management request and its Activity Log record, committed together before the answer."""
        correlation = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        headers = {"cache-control": "no-cache", "x-ms-request-id": str(uuid.uuid4()),
                   "x-ms-correlation-request-id": correlation}
        try:
            with self.state.store.transaction():
                return self._arm_answer(request, body, headers, correlation)
        except sqlite3.Error as exc:
            if not _is_busy(exc):
                log.error("a management request was not stored: %s", exc)
            return _json(*_not_stored(exc), headers)

    def _arm_answer(self, request: Request, body: bytes | None, headers: dict, correlation: str) -> Response:
        """Route, token, api-version, subscription, RBAC, domain, answer, Activity Log (see arm.py)."""
        operation = caller = None
        try:
            try:  # the route's own errors wait until the caller is known, as for a vault
                operation, params = arm.route(request.method, request.path)
                routing_error = None
            except arm.ArmError as exc:
                params, routing_error = {}, exc
            if operation is None or not operation.anonymous:
                caller = self._arm_caller(request)
            if routing_error is not None:
                raise routing_error
            assert operation is not None
            query = dict(parse_qsl(request.query_string, keep_blank_values=True))
            if not query.get("api-version"):
                raise arm.ArmError(400, "MissingApiVersionParameter",
                                   "The api-version query parameter (?api-version=) is required for all requests.")
            call = arm.ArmCall(self.state, caller, request.method, operation, params, query, _given(body),
                               f"https://{request.headers.get('host', arm.HOST)}", self.port)
            status, payload = arm.handle(call)
            response = _json(status, payload, headers)
        except arm.ArmError as exc:
            response = _json(exc.status, exc.body(), {**headers, **exc.headers})
        except KeyVaultError as exc:  # the body limit
            response = _json(exc.status, {"error": {"code": "RequestEntityTooLarge", "message": exc.message}}, headers)
        except sqlite3.Error:  # the database's own failure: the whole request is undone (arm_request)
            raise
        except Exception:  # a bug: answer in the service's shape and keep the evidence
            log.exception("unexpected error in %s %s", request.method, request.path)
            response = _json(500, {"error": {
                "code": "InternalServerError",
                "message": "The emulator failed on this request; see emulator.log in its state directory.",
            }}, headers)
        if caller is not None and operation is not None and request.method in ("PUT", "PATCH", "POST", "DELETE"):
            self.state.store.add_activity(int(self.state.clock.now()), arm.activity_record(
                self.state, operation, caller, request.path, response.status_code, correlation))
        return response

    def _arm_caller(self, request: Request, audience: str = arm.AUDIENCE) -> Caller:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise arm.unauthorized(None, audience)
        try:
            return self.state.identities.verify(token.strip(), audience.rstrip("/"))
        except TokenError as exc:
            raise arm.unauthorized(exc.reason, audience) from None

    def graph_request(self, request: Request, body: bytes | None) -> Response:
        """Microsoft Graph's few directory reads (graph.py): token, route, answer. Nothing is written."""
        try:
            self.state.store.refresh()
            try:
                caller = self._arm_caller(request, graph.audience(self.port))
            except arm.ArmError as exc:  # Graph words a refused token its own way
                raise graph.GraphError(401, "InvalidAuthenticationToken", exc.message) from None
            handler = graph.route(request.method, request.path)
            query = dict(parse_qsl(request.query_string, keep_blank_values=True))
            response = _json(200, handler(graph.GraphCall(self.state, caller, query, _given(body))))
        except graph.GraphError as exc:
            response = _json(exc.status, exc.body())
        except KeyVaultError as exc:  # the body limit
            response = _json(exc.status, {"error": {"code": "Request_BadRequest", "message": exc.message}})
        except sqlite3.OperationalError as exc:
            response = _json(503, {"error": {"code": "serviceNotAvailable", "message": _busy(exc)}}, {"Retry-After": "1"})
        return response

    # -- the Databricks workspace --------------------------------------------------

    def workspace_request(self, request: Request, body: bytes | None) -> Response:
        """A workspace request, its audit record and the audit records of the vault reads it made, committed
        together before the answer."""
        try:
            with self.state.store.transaction():
                return self._workspace_answer(request, body)
        except sqlite3.Error as exc:
            if not _is_busy(exc):
                log.error("a workspace request was not stored: %s", exc)
            status, error = _not_stored(exc)
            return _json(status, {"error_code": "TEMPORARILY_UNAVAILABLE" if status == 503 else "INTERNAL_ERROR",
                                  "message": error["error"]["message"]}, {"Retry-After": "1"} if status == 503 else {})

    def _workspace_answer(self, request: Request, body: bytes | None) -> Response:
        """Token, endpoint, domain, answer: Databricks' shapes throughout ({"error_code", "message"})."""
        if request.path == databricks.WELL_KNOWN and request.method == "GET":  # the SDK's discovery probe
            host = request.headers.get("host", "")
            return _json(200, {"oidc_endpoint": f"https://{host}/oidc", "workspace_id": self.state.workspace_id,
                               "cloud": "AZURE"})
        user = operation = call = None
        try:
            user, entra = self._workspace_user(request)
            operation = databricks.route(request.method, request.path)
            call = databricks.Call(self.state.workspace, user, entra, request.method, request.query_string, _given(body),
                                   DatabricksReads(self), self._keyvault_of)
            response = _json(200, operation.handler(call))
        except KeyVaultError as exc:  # the body limit
            response = _json(exc.status, {"error_code": "BAD_REQUEST", "message": exc.message})
        except DatabricksError as exc:
            response = _json(exc.status, exc.body())
        except sqlite3.Error:  # the database's own failure: the whole request is undone (workspace_request)
            raise
        except Exception:  # a bug: answer in the service's shape and keep the evidence
            log.exception("unexpected error in %s %s", request.method, request.path)
            response = _json(500, {"error_code": "INTERNAL_ERROR",
                                   "message": "The emulator failed on this request; see emulator.log in its state directory."})
        if operation is not None:  # the workspace's audit log: who did what to which scope, never a value
            self.state.store.add_workspace_audit(databricks.audit_record(
                self.state.clock.now_precise(), self.state.workspace_id, operation, user, call, request.client_ip,
                request.headers.get("user-agent", ""), response.status_code, response.content))
        return response

    def _workspace_user(self, request: Request):
        """The workspace user a request's bearer token names, and whether it is a Microsoft Entra ID token.

        A personal access token (dapi...) names its user. An Entra ID token issued for
        the AzureDatabricks application (resource 2ff814a6-...) names the learner's
        identity, which is the workspace's first user.
        """
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise DatabricksError(401, "UNAUTHENTICATED", "No access token was given (Authorization: Bearer ...).")
        if token.startswith("dapi"):
            user = self.state.workspace.authenticate(token)
            if user is None:
                raise DatabricksError(401, "UNAUTHENTICATED", "Invalid access token.")
            return user, False
        try:
            caller = self.state.identities.verify(token, DATABRICKS_APP_ID)
        except TokenError as exc:
            raise DatabricksError(401, "UNAUTHENTICATED", f"Invalid Microsoft Entra ID token: {exc}") from None
        if caller.name != LEARNER:
            raise DatabricksError(403, "PERMISSION_DENIED", f"{caller.name} is not a user of this workspace.")
        return self.state.workspace.user(), True

    def _keyvault_of(self, resource_id: str, dns_name: str) -> str:
        """The emulator vault a Key Vault-backed scope names, checked as the workspace checks it."""
        name = resource_id.rstrip("/").rsplit("/", 1)[-1]
        try:
            vault = self.state.vaults.get_vault(name)
        except VaultNotFound:
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE",
                                  f"Azure Key Vault {resource_id} does not exist.") from None
        if resource_id.rstrip("/").lower() != self.state.vaults.resource_id(vault.name).lower():
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"Invalid Azure Key Vault resource id {resource_id}: "
                                  f"it should be {self.state.vaults.resource_id(vault.name)}.")
        # with or without the port: through the HTTPS proxy (`kvlab env`) both reach the vault
        if dns_name.rstrip("/").lower() not in (self.state.vault_url(vault.name).rstrip("/"),
                                                 f"https://{vault.name}.localhost"):
            raise DatabricksError(400, "INVALID_PARAMETER_VALUE", f"The DNS name {dns_name} does not match the "
                                  f"Azure Key Vault {vault.name}: it should be {self.state.vault_url(vault.name)}.")
        return vault.name

    def _headers(self, request: Request, client_ip: str) -> dict[str, str]:
        headers = {
            "cache-control": "no-cache",
            "pragma": "no-cache",
            "expires": "-1",
            "x-ms-keyvault-region": REGION,
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": SERVICE_VERSION,
            "x-ms-keyvault-network-info": f"conn_type=Ipv4;addr={client_ip};act_addr_fam=InterNetwork;",
            "x-content-type-options": "nosniff",
            "strict-transport-security": "max-age=31536000;includeSubDomains",
        }
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            headers["x-ms-client-request-id"] = client_request_id
        return headers

    def authenticate(self, request: Request, resource: str) -> Caller:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Challenge("AKV10000: Request is missing a Bearer or PoP token.")
        try:
            return self.state.identities.verify(token.strip(), resource)
        except TokenError as exc:
            raise Challenge(str(exc)) from None

    def _challenge(self, resource: str, exc: Challenge, headers: dict[str, str]) -> Response:
        value = (
            f'Bearer authorization="https://login.windows.net/{self.state.identities.tenant_id}", '
            f'resource="{resource}"'
        )
        headers = {**headers, "WWW-Authenticate": value}
        return _json(401, {"error": {"code": "Unauthorized", "message": exc.message}}, headers)

    def _forbidden(
        self, exc: Forbidden, caller: Caller, vault: str, secret: str | None, headers: dict[str, str]
    ) -> Response:
        """Key Vault's RBAC denial, line for line; the caller line also gives the identity's name."""
        resource = self.state.vaults.resource_id(vault, secret).lower()
        message = (
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, "
            "please observe propagation time.\r\n"
            f"Caller: name={caller.name};appid={caller.appid};oid={caller.oid};"
            f"iss={self.state.identities.issuer}\r\n"
            f"Action: '{exc.data_action}'\r\n"
            f"Resource: '{resource}'\r\n"
            "Assignment: (not found)\r\n"
            "DenyAssignmentId: null\r\n"
            "DecisionReason: 'DeniedWithNoValidRBAC' \r\n"
            f"Vault: {vault};location={self.state.vaults.resources.placement('vault', vault).location}\r\n"
        )
        body = {"error": {"code": "Forbidden", "message": message, "innererror": {"code": "ForbiddenByRbac"}}}
        return _json(403, body, headers)

    def _audit(self, record: dict, status: int, duration: float) -> None:
        record["httpStatusCode"] = status
        record["resultSignature"] = HTTPStatus(status).phrase.replace(" ", "") if status in HTTPStatus._value2member_map_ else str(status)
        record["resultType"] = "Success" if status < 400 else "Failure"
        record.setdefault("resultDescription", "")
        record["durationMs"] = round(duration * 1000, 3)
        self.state.audit.record(record)


class DatabricksReads:
    """A Key Vault-backed scope's reads: the vault's request path for the AzureDatabricks application.

    The same RBAC decision, domain call and audit record as `vault_request`
    gives any caller (with no token round trip: the workspace is a trusted
    service of this emulator, as Azure Databricks is of Azure).
    """

    def __init__(self, app: EmulatorApp):
        self.app = app
        row = app.state.identities.get(DATABRICKS)
        self.caller = Caller(row.name, row.principal_id, row.client_id)

    def get(self, vault: str, name: str) -> str:
        return self._as_databricks(vault, "SecretGet", "getSecret/action", name,
                                   lambda: self.app.state.vaults.get_secret(vault, name, None).value)

    def list(self, vault: str) -> list[tuple[str, int]]:
        def names() -> list[tuple[str, int]]:
            found, token = [], None
            while True:
                page = self.app.state.vaults.list_secrets(vault, None, token)
                found += [(row.name, row.updated * 1000) for row in page.items]
                if not page.skiptoken:
                    return found
                token = page.skiptoken
        return self._as_databricks(vault, "SecretList", "readMetadata/action", None, names)

    def _as_databricks(self, vault: str, operation: str, action: str, secret: str | None, read):
        state, started = self.app.state, time.perf_counter()
        record = {
            "vault": vault, "operationName": operation, "identity": self.caller.name, "callerOid": self.caller.oid,
            "callerAppId": self.caller.appid, "callerIpAddress": DATABRICKS, "secretName": secret,
            "requestUri": state.vault_url(vault) + (f"secrets/{secret}" if secret else "secrets"),
            "resourceId": state.vaults.resource_id(vault), "correlationId": str(uuid.uuid4()),
        }
        status = 200
        try:
            state.vaults.get_vault(vault)
            state.roles.authorize(self.caller.oid, vault, secret, DATA_ACTION_PREFIX + action)
            return read()
        except VaultNotFound:
            status = 404
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST",
                                  f"The Azure Key Vault {vault} behind this scope no longer exists.") from None
        except Forbidden as exc:
            status, record["resultDescription"] = 403, "ForbiddenByRbac"
            raise DatabricksError(403, "PERMISSION_DENIED", (  # the wording Azure Databricks reports
                f"Invalid permissions on the specified KeyVault {state.vault_url(vault)}. Caller: {DATABRICKS} "
                f"(oid={self.caller.oid}); Action: {exc.data_action}; Assignment: (not found)"
            )) from None
        except KeyVaultError as exc:  # Databricks' documented mapping: 404, 403, any other 4xx
            status, record["resultDescription"] = exc.status, exc.inner or exc.code
            code = {404: "RESOURCE_DOES_NOT_EXIST", 403: "PERMISSION_DENIED"}.get(exc.status, "MALFORMED_REQUEST")
            raise DatabricksError(exc.status if exc.status in (403, 404) else 400, code,
                                  f"The specified KeyVault {state.vault_url(vault)} answered {exc.status} "
                                  f"{exc.inner or exc.code}: {exc.message}") from None
        finally:
            self.app._audit(record, status, time.perf_counter() - started)


def create_app(state_dir: Path, port: int) -> EmulatorApp:
    return EmulatorApp(state_dir, port)
