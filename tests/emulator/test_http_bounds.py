"""The emulator's HTTP bounds, over raw TLS sockets (issue #14, defects 4 and 5, and the parser's plain-text
refusals): what the SDK never sends."""

from __future__ import annotations

import json
import os
import socket
import ssl
import time

import pytest

from kvlab.emulator import http


@pytest.fixture
def tls(emulator):
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])

    def connect() -> ssl.SSLSocket:
        sock = socket.create_connection(("127.0.0.1", emulator.port), timeout=10)
        return context.wrap_socket(sock, server_hostname="localhost")
    return connect


def answer(sock: ssl.SSLSocket) -> tuple[int, dict]:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_head_over_the_limit_gets_a_431_in_json_and_the_connection_closes(tls):
    sock = tls()
    sock.sendall(b"GET /kvlab/health HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
    try:
        for _ in range(http.MAX_HEAD // 8192 + 4):
            sock.sendall(b"a" * 8192)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass  # refused and closed while we were still sending: what we want; the answer was written first
    status, body = answer(sock)
    assert status == 431 and body["error"]["code"] == "RequestHeaderFieldsTooLarge"


def test_too_many_header_fields_get_a_431(tls):
    sock = tls()
    fields = b"".join(b"X-F%d: v\r\n" % n for n in range(http.MAX_HEADERS + 5))
    sock.sendall(b"GET /kvlab/health HTTP/1.1\r\nHost: localhost\r\n" + fields + b"\r\n")
    status, body = answer(sock)
    assert status == 431 and body["error"]["code"] == "RequestHeaderFieldsTooLarge"


def test_what_is_not_http_is_refused_in_json(tls):
    sock = tls()
    sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    status, body = answer(sock)
    assert status == 400 and body["error"]["code"] == "BadRequest"


def test_a_head_that_never_ends_is_dropped(tls):
    sock = tls()
    sock.sendall(b"GET /kvlab/health HTTP/1.1\r\nHost: localhost\r\n")  # and then nothing, slowloris-style
    started = time.monotonic()
    sock.settimeout(http.HEAD_TIMEOUT + 10)
    assert sock.recv(1) == b""  # closed by the server, with no answer
    assert time.monotonic() - started < http.HEAD_TIMEOUT + 5


def test_normal_requests_still_work_on_a_kept_alive_connection(tls):
    sock = tls()
    for _ in range(3):
        sock.sendall(b"GET /kvlab/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
                data.lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
            data += sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 200") and json.loads(data.partition(b"\r\n\r\n")[2])["status"] == "ok"
