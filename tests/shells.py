"""A shell prepared by `kvlab env`, as tests of other processes (Node, the Azure CLI, databricks) need it:
a state directory with its own emulator on a free port, and exactly the variables `eval "$(kvlab env)"` sets."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from runners import KVLAB, free_port

DATABRICKS = shutil.which("databricks", path=str(Path(sys.executable).parent)) or "databricks"
# What this test process's own connect() set must not stand in for what `kvlab env` prints.
INHERITED = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
             "DATABRICKS_HOST", "DATABRICKS_TOKEN", "NODE_EXTRA_CA_CERTS", "HTTPS_PROXY", "https_proxy",
             "NO_PROXY", "no_proxy")


# What name resolution and TLS trust of every process on the machine read: `kvlab env` must work without them.
SYSTEM_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
                "/etc/ssl/certs/ca-certificates.crt", "/usr/lib/ssl/cert.pem", "/etc/pki/tls/certs/ca-bundle.crt")


def system_files() -> dict[str, object]:
    """Each system file's bytes' digest (None where absent), and the names in the system's CA folder."""
    seen: dict[str, object] = {}
    for name in SYSTEM_FILES:
        try:
            seen[name] = hashlib.sha256(Path(name).read_bytes()).hexdigest()
        except OSError:
            seen[name] = None
    folder = Path("/etc/ssl/certs")
    seen[str(folder)] = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None
    return seen


class Shell:
    """A state directory with its own emulator, and the environment `eval "$(kvlab env)"` gives a shell."""

    def __init__(self, state: Path):
        self.system_files = system_files()  # before the emulator starts: nothing of kvlab's may change them
        self.state = state
        self.base = {k: v for k, v in os.environ.items() if k not in INHERITED}
        self.base.update(KVLAB_STATE_DIR=str(state), COLUMNS="200")
        self.port = free_port()  # not this test process's KVLAB_PORT: that is its own emulator
        self.kvlab("emulator", "start", "--port", str(self.port))
        self.prepare()

    def prepare(self) -> None:
        """``self.env``: what `eval "$(kvlab env)"` sets now. Again after a restart, as a learner's terminal would
        need it: the proxy listens on the emulator's port + 1 only if that port is free at the start."""
        self.env = {**self.base, **json.loads(self.kvlab("env", "--shell", "json").stdout)}

    def kvlab(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([KVLAB, *args], env=self.base, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done

    def run(self, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=env or self.env, capture_output=True, text=True, timeout=120)

    def python(self, code: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-c", code, env=env)

    def proxy(self) -> tuple[int, str]:
        """The proxy's port and its Basic credential, as the HTTPS_PROXY URL carries them."""
        userinfo, _, address = self.env["HTTPS_PROXY"].removeprefix("http://").rpartition("@")
        return int(address.rsplit(":", 1)[1]), base64.b64encode(userinfo.encode()).decode()
