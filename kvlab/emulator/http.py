"""uvicorn's httptools protocol with the bounds the parser has not (issue #14, defects 4 and 5).

httptools accepts a request head of any size and waits for it forever: one 50 MB
header took 8 s and 157 MB, and 20 slowloris connections were all still open
after 30 s. Here a request head is at most `MAX_HEAD` bytes and `MAX_HEADERS`
fields, and must arrive within `HEAD_TIMEOUT` of the connection (or of the
previous answer); a body must arrive within `BODY_TIMEOUT`. Refusals are JSON,
as the service answers, and close the connection. Idle keep-alive connections
are closed by uvicorn's own `timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 64 * 1024  # request line and headers (a bearer token is about 1.5 KB)
MAX_HEADERS = 100
HEAD_TIMEOUT = 10.0  # seconds from the connection, or from the previous answer, to the end of the head
BODY_TIMEOUT = 30.0  # seconds from the end of the head to the end of the body


def _refusal(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class BoundedHttpTools(HttpToolsProtocol):
    """One connection: the head counted and timed, the body timed, refusals in JSON."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._fields = 0
        self._reading_head = True
        self._timer: asyncio.TimerHandle | None = self.loop.call_later(HEAD_TIMEOUT, self._too_slow)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _disarm(self) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()  # a head or body that does not come: nothing is answered, the socket is freed

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)  # one read at most goes to the parser before the bound is checked
        if self._reading_head and self._head_bytes > MAX_HEAD and not self.transport.is_closing():
            self._too_large()

    def _too_large(self) -> None:
        self._refuse(431, "Request Header Fields Too Large", "RequestHeaderFieldsTooLarge",
                     f"The request line and headers are over {MAX_HEAD // 1024} KB or {MAX_HEADERS} fields.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # The count is not reset here: this read's bytes, already counted, may be the head itself.
        self._reading_head = True
        if self._timer is None:  # a pipelined or keep-alive request: its head has its own time
            self._timer = self.loop.call_later(HEAD_TIMEOUT, self._too_slow)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > MAX_HEADERS:  # stops the parser; uvicorn answers with send_400_response, below
            raise ValueError("too many header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._disarm()
        self._timer = self.loop.call_later(BODY_TIMEOUT, self._too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._reading_head, self._head_bytes, self._fields = True, 0, 0  # keep-alive: uvicorn's timer runs now

    def send_400_response(self, msg: str) -> None:
        """The parser's refusal (a request that is not HTTP, or too many fields), in the service's JSON shape."""
        if self._fields > MAX_HEADERS:
            return self._too_large()
        self._refuse(400, "Bad Request", "BadRequest", msg)

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        self._disarm()
        self.transport.write(_refusal(status, reason, code, message))
        self.transport.close()
