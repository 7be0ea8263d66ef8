"""A loopback HTTPS proxy: how processes other than a connected kernel reach the emulator.

A kernel that called `kvlab.connect()` resolves ``*.localhost`` itself. Another
process — the Azure CLI, the legacy ``databricks`` CLI, Node and the JavaScript
SDK, curl — asks the system resolver, which on many machines does not know
``kv-app.localhost``. All of them honour the standard ``HTTPS_PROXY`` variable,
so ``kvlab env`` points it here and the client never resolves the name itself:

    client ── CONNECT kv-app.localhost:443 ──▶ this proxy ── TCP ──▶ the emulator's port

The proxy only joins two sockets (an HTTP ``CONNECT`` tunnel, RFC 9110 §9.3.6).
It never terminates TLS: the client still verifies the emulator's certificate for
the name it asked for, and the Azure SDK still checks its challenge. Where a
tunnel goes:

* a name under ``.localhost`` — the emulator, whatever port the client chose (the
  legacy ``databricks`` CLI drops the port of ``DATABRICKS_HOST`` and always asks
  for 443);
* ``localhost`` / ``127.0.0.1`` — that port on this machine, as asked;
* any other name on port 443 — that host, resolved as usual, so real Azure (and
  pip, npm, git over HTTPS) keep working from the same shell;
* anything else — refused (403).

It listens on 127.0.0.1 only and asks for the state directory's proxy password
(``Proxy-Authorization: Basic``, carried in the ``HTTPS_PROXY`` URL), so another
local user cannot use it as a relay. It logs nothing about where tunnels go.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import secrets

USER = "kvlab"
HEAD_LIMIT = 8192  # bytes of request line + headers
HEAD_TIMEOUT = 10.0  # seconds to send them
CONNECT_TIMEOUT = 10.0  # seconds to reach the destination
OUTSIDE_PORTS = (443,)
META_KEY = "proxy_password"


def password(store) -> str:
    """The state directory's proxy password (created on first use)."""
    return store.meta_or_create(META_KEY, lambda: secrets.token_urlsafe(24))


def proxy_url(port: int, password: str) -> str:
    """The ``HTTPS_PROXY`` value for a proxy on ``port``."""
    return f"http://{USER}:{password}@127.0.0.1:{port}"


class Refused(Exception):
    def __init__(self, status: int, reason: str, extra: str = ""):
        super().__init__(reason)
        self.status, self.reason, self.extra = status, reason, extra


def destination(target: str, emulator_port: int) -> tuple[str, int]:
    """Where a ``CONNECT target`` goes (see the module docstring), or `Refused`."""
    host, sep, port_text = target.rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        raise Refused(400, "Bad Request")
    port = int(port_text)
    host = host.strip("[]").lower().rstrip(".")
    if host.endswith(".localhost"):
        return "127.0.0.1", emulator_port
    if host in ("localhost", "127.0.0.1", "::1"):
        return host, port
    if port not in OUTSIDE_PORTS:
        raise Refused(403, "Forbidden")
    return host, port


class Proxy:
    """The listening proxy of one emulator. `start()` binds; `close()` ends it and its tunnels."""

    def __init__(self, emulator_port: int, password: str):
        self.emulator_port = emulator_port
        self._credential = base64.b64encode(f"{USER}:{password}".encode()).decode()
        self._server: asyncio.base_events.Server | None = None
        self._tunnels: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> int:
        """Listen on the emulator's port + 1 if it is free (so the number is predictable), else any port."""
        for port in (self.emulator_port + 1, 0):
            try:
                self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, limit=HEAD_LIMIT)
            except OSError:
                continue
            break
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._tunnels):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tunnels.add(writer)
        try:
            try:
                target = await asyncio.wait_for(self._read_head(reader), HEAD_TIMEOUT)
                host, port = destination(target, self.emulator_port)
                try:
                    up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
                except (OSError, asyncio.TimeoutError):
                    raise Refused(502, "Bad Gateway") from None
            except Refused as refused:
                await self._answer(writer, refused)
                return
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                    ConnectionError):
                return  # too slow, too long, or gone: close without a word
            self._tunnels.add(up_writer)
            try:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                self._tunnels.discard(up_writer)
                up_writer.close()
        finally:
            self._tunnels.discard(writer)
            writer.close()

    async def _read_head(self, reader: asyncio.StreamReader) -> str:
        head = await reader.readuntil(b"\r\n\r\n")  # LimitOverrunError past HEAD_LIMIT
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise Refused(400, "Bad Request")
        method, target, _ = parts
        if method != "CONNECT":
            raise Refused(405, "Method Not Allowed", "Allow: CONNECT\r\n")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        scheme, _, credential = headers.get("proxy-authorization", "").partition(" ")
        if scheme.lower() != "basic" or not _same(credential, self._credential):
            raise Refused(407, "Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="kvlab"\r\n')
        return target

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, refused: Refused) -> None:
        writer.write(
            f"HTTP/1.1 {refused.status} {refused.reason}\r\n{refused.extra}"
            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        try:
            await writer.drain()
        except ConnectionError:
            pass


def _same(given: str, expected: str) -> bool:
    try:  # compare what the credential says, not how it was padded
        return hmac.compare_digest(base64.b64decode(given, validate=True), base64.b64decode(expected))
    except (binascii.Error, ValueError):
        return False


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()  # half-close: the other direction may still be talking
        except (OSError, RuntimeError):
            pass

