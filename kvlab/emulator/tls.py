"""A local certificate authority and one certificate per host name, issued on demand.

The SDK talks to ``https://<vault>.localhost:<port>/`` and verifies TLS like it
does against Azure, so the emulator needs a certificate for every vault host.
OpenSSL refuses a ``*.localhost`` wildcard, so there is no wildcard: the server
picks (and on first use issues) a certificate for the name the client sends in
SNI. The CA is created once per state directory; the kernel trusts it.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections import OrderedDict
from pathlib import Path

import trustme

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
ORGANIZATION = "kvlab emulator"
MAX_CONTEXTS = 256  # server TLS contexts kept (one per host name served recently)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _is_local_name(name: str) -> bool:
    """``localhost`` or a name under it (RFC 6761) of the shapes the emulator serves:
    ``<vault>.localhost`` and the Databricks workspace's ``adb-<id>.<n>.localhost``."""
    labels = name.lower().rstrip(".").split(".")
    if labels[-1] != "localhost" or len(labels) > 3:
        return False
    return all(0 < len(label) <= 63 and label.replace("-", "").isalnum() for label in labels[:-1])


class LocalCA:
    """The state directory's CA, and the server side TLS context that serves any local name."""

    def __init__(self, state_dir: Path):
        self.cert_path = Path(state_dir) / CA_CERT
        key_path = Path(state_dir) / CA_KEY
        if self.cert_path.exists() and key_path.exists():
            self._ca = trustme.CA.from_pem(self.cert_path.read_bytes(), key_path.read_bytes())
        else:
            self._ca = trustme.CA(organization_name=ORGANIZATION, organization_unit_name="local CA")
            # Each file appears whole or not at all: a client polling for ca.pem (kvlab
            # emulator start, connect) must never read a half-written certificate.
            _write_atomically(key_path, self._ca.private_key_pem.bytes(), 0o600)
            _write_atomically(self.cert_path, self._ca.cert_pem.bytes(), 0o644)
        # Recently served names' contexts (issuing one costs a key and a signature). Bounded: any caller may
        # present any number of names (about 15 KB each), so the least recently served are dropped.
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._lock = threading.Lock()

    def context_for(self, name: str) -> ssl.SSLContext:
        name = name.lower().rstrip(".")
        with self._lock:
            ctx = self._contexts.get(name)
            if ctx is not None:
                self._contexts.move_to_end(name)
                return ctx
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_alpn_protocols(["http/1.1"])
            names = [name, "127.0.0.1"] if name == "localhost" else [name]
            self._ca.issue_cert(*names, organization_name=ORGANIZATION).configure_cert(ctx)
            self._contexts[name] = ctx
            while len(self._contexts) > MAX_CONTEXTS:  # the listening socket keeps its own reference to localhost's
                self._contexts.popitem(last=False)
            return ctx

    def server_context(self) -> ssl.SSLContext:
        """The listening socket's context: ``localhost`` by default, any local name through SNI."""
        ctx = self.context_for("localhost")

        def choose(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            if server_name and _is_local_name(server_name):
                sslobj.context = self.context_for(server_name)

        ctx.sni_callback = choose
        return ctx
