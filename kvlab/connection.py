"""The kernel side: start or attach to the emulator and prepare this Python process.

After `connect()`, a learner's unmodified Azure code reaches the emulator:

* TLS: the emulator's CA is trusted *in addition to* the public roots, through
  one combined bundle (``SSL_CERT_FILE`` for ``ssl``/aiohttp; for requests,
  ``REQUESTS_CA_BUNDLE``, the same certificates as a directory, `kvlab.trust`),
  so a real vault keeps working in the same kernel.
* Names: ``<vault>.localhost`` resolves to the loopback address (RFC 6761),
  which Python does not do by itself on Linux. Only ``.localhost`` names are
  touched.
* Identity: the App Service managed-identity variables point
  ``DefaultAzureCredential`` at the emulator's token endpoint.

Nothing here touches the Azure SDK or turns any verification off.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
from pathlib import Path
from types import FunctionType

import certifi

from . import paths
from .admin import Admin
from .azcli import register_cloud
from .emulator import control
from .emulator.proxy import password as proxy_password
from .emulator.proxy import proxy_url
from .emulator.state import DATABASE, vault_url
from .emulator.store import Store
from .stubs import LearnerError

BUNDLE = paths.TRUST_BUNDLE
# Every variable connect() sets in os.environ: the trust (requests, ssl), the managed identity, the workspace. A
# process that connects elsewhere for a while puts back exactly these.
ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "DATABRICKS_HOST",
               "DATABRICKS_TOKEN")


class Lab(Admin):
    """A connected emulator: vault URLs by name, plus the management plane (see `kvlab.admin`)."""

    def __init__(self, state_dir: Path, port: int, info: dict):
        super().__init__(state_dir)
        self.port = port
        self.info = info

    def __repr__(self) -> str:
        return f"Lab(url={self.url!r}, state_dir={str(self.state_dir)!r})"

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def vault_url(self, name: str) -> str:
        """The URL of vault ``name``, as SecretClient wants it (``https://<name>.localhost:<port>/``)."""
        return vault_url(name, self.port)


@functools.lru_cache(maxsize=1)
def _own_session():
    from azure.core.pipeline.transport import RequestsTransport

    transport = RequestsTransport()  # the session as azure-core sets one up for itself
    transport.open()
    return transport.session


def own_transport():
    """A transport for a client kvlab's own code makes (a lesson's set-up, a check, lesson 06's consumers): all of
    them share one requests session, so a TLS connection to a host is made once and kept, instead of once per
    client (each handshake loads the trust bundle: about 30 ms). A learner's own clients are theirs alone."""
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(session=_own_session(), session_owner=False)


class LabError(LearnerError, ValueError):
    """A management call refused, for the one-line reason `Admin` gives (a ValueError, as the CLI shows it); in a
    lesson's kernel it shows as that line, not as a traceback into kvlab."""


@functools.lru_cache(maxsize=None)
def _as_lab_error(kind: type) -> type:
    """``kind`` (a ValueError) that is also a LabError: ``except kind`` still catches it."""
    if issubclass(kind, LabError):
        return kind
    if kind is ValueError:
        return LabError
    return type(kind.__name__, (kind, LabError), {"__module__": kind.__module__})


def _one_line(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except LabError:
            raise
        except ValueError as exc:  # Admin's documented refusals: bad input, named in one line
            raise _as_lab_error(type(exc))(*exc.args) from None
    return call


for _name, _member in {**vars(Admin), **vars(Lab)}.items():
    if isinstance(_member, FunctionType) and not _name.startswith("_"):
        setattr(Lab, _name, _one_line(_member))


def connect(state_dir: str | os.PathLike | None = None, port: int | None = None) -> Lab:
    """Start (or attach to) the emulator and make this process able to reach it."""
    lab, variables = _started(state_dir, port)
    trust_local_ca(lab.state_dir / "ca.pem", lab.state_dir / BUNDLE)
    resolve_localhost()
    os.environ.update(variables)
    return lab


AZURE_CONFIG = "azure-cli"  # AZURE_CONFIG_DIR of a shell prepared by `kvlab env`, in the state directory


def environment(state_dir: str | os.PathLike | None = None, port: int | None = None) -> dict[str, str]:
    """The variables that point another process at the emulator (``kvlab env``; JupyterLab's terminals).

    The trust bundle for Python (requests, ssl) and the local CA for Node, the
    managed-identity endpoint, the Databricks workspace, an Azure CLI configuration
    folder of its own (so ``az`` there never reads or changes ``~/.azure``), and the emulator's
    HTTPS proxy: the way such a process reaches ``*.localhost`` names without
    resolving them itself (see `kvlab.emulator.proxy`). ``NO_PROXY`` keeps the
    caller's entries except those that would send ``.localhost`` names around it.
    """
    lab, variables = _started(state_dir, port)
    bundle = write_bundle(lab.state_dir / "ca.pem", lab.state_dir / BUNDLE)
    if not lab.info.get("proxy"):
        raise control.EmulatorError("the running emulator has no HTTPS proxy (it is older than this kvlab); "
                                    "restart it: kvlab emulator stop")
    store = Store(lab.state_dir / DATABASE)
    try:
        proxy = proxy_url(int(lab.info["proxy"].rsplit(":", 1)[1]), proxy_password(store))
    finally:
        store.close()
    no_proxy = ",".join(_not_local(os.environ.get("NO_PROXY", os.environ.get("no_proxy", ""))))
    # The Azure CLI's whole state (clouds, profile, token cache) in the emulator's, never the learner's ~/.azure.
    azure_config = lab.state_dir / AZURE_CONFIG
    azure_config.mkdir(mode=0o700, exist_ok=True)
    azure_config.chmod(0o700)  # whatever the umask, or an older folder's mode
    register_cloud(azure_config, lab.port)  # `az` there talks to the emulator's Resource Manager (kvlab.azcli)
    return {"REQUESTS_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(bundle), "AZURE_CONFIG_DIR": str(azure_config),
            "NODE_EXTRA_CA_CERTS": str(lab.state_dir / "ca.pem"), **variables,
            # Both spellings: curl reads only the lower-case one, most tools either.
            "HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": no_proxy, "no_proxy": no_proxy}


def _not_local(no_proxy: str) -> list[str]:
    """``NO_PROXY`` entries that would not exempt a ``.localhost`` name from the proxy.

    Clients match an entry as a domain suffix (``localhost`` matches ``kv-app.localhost``
    for requests), and ``*`` exempts everything.
    """
    kept = []
    for entry in (e.strip() for e in no_proxy.split(",")):
        bare = entry.lstrip("*").lstrip(".").lower()
        if entry and entry != "*" and bare != "localhost" and not bare.startswith("localhost:"):
            kept.append(entry)
    return kept


def _started(state_dir, port) -> tuple[Lab, dict[str, str]]:
    """The running emulator (started if need be), and the identity and Databricks variables for it."""
    info = control.start(state_dir, port)
    state = Path(info["stateDir"])
    store = Store(state / DATABASE)
    try:
        header = store.get_meta("identity_header")
    finally:
        store.close()
    lab = Lab(state, int(info["port"]), info)
    workspace = lab.workspace()  # the Databricks clients read these, as on a developer's machine
    return lab, {"IDENTITY_ENDPOINT": info["identityEndpoint"], "IDENTITY_HEADER": header or "",
                 "DATABRICKS_HOST": workspace["host"], "DATABRICKS_TOKEN": workspace["token"]}


def write_bundle(ca_file: Path, bundle_file: Path) -> Path:
    """Public roots + the local CA, in one bundle file (rewritten only when it changes)."""
    ca_pem = ca_file.read_text()
    public = Path(certifi.where()).read_text()
    content = public.rstrip("\n") + "\n\n# kvlab emulator local CA\n" + ca_pem
    if not bundle_file.exists() or bundle_file.read_text() != content:
        tmp = bundle_file.with_suffix(".tmp")
        tmp.write_text(content)
        tmp.replace(bundle_file)
    return bundle_file


def trust_local_ca(ca_file: Path, bundle_file: Path) -> Path:
    """Write public roots + the local CA to one bundle and make this process use it: requests (the Azure and
    Databricks SDKs) through the same certificates as a directory, which a new connection does not load whole
    (`kvlab.trust`); ``ssl``'s default contexts (aiohttp, httpx) through the file."""
    from .trust import write_directory

    write_bundle(ca_file, bundle_file)
    os.environ["REQUESTS_CA_BUNDLE"] = str(write_directory([bundle_file.read_text()], bundle_file.parent))
    os.environ["SSL_CERT_FILE"] = str(bundle_file)
    # aiohttp builds its default verifying context when it is imported; if that
    # already happened, that context learns the local CA too.
    connector = sys.modules.get("aiohttp.connector")
    context = getattr(connector, "_SSL_CONTEXT_VERIFIED", None)
    if context is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return bundle_file


_original_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if isinstance(name, str) and name.lower().rstrip(".").endswith(".localhost"):
        host = "127.0.0.1"
    return _original_getaddrinfo(host, *args, **kwargs)


def resolve_localhost() -> None:
    """Resolve ``*.localhost`` to 127.0.0.1 in this process (RFC 6761); other names are untouched."""
    socket.getaddrinfo = _getaddrinfo
