"""Processes that did not call `kvlab.connect()`: a separate Python program, the legacy `databricks` CLI.

Each gets its environment from `kvlab env` exactly as a shell would, and reaches
the emulator's names through the emulator's HTTPS proxy (`kvlab/emulator/proxy.py`)
with TLS verified. The proxy's refusals are tried with raw sockets.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port
from kvlab.connect import _original_getaddrinfo
from kvlab.emulator.proxy import Refused, destination

KVLAB = shutil.which("kvlab", path=str(Path(sys.executable).parent)) or "kvlab"
DATABRICKS = shutil.which("databricks", path=str(Path(sys.executable).parent)) or "databricks"
AZURE_DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
# What this test process's own connect() set must not stand in for what `kvlab env` prints.
INHERITED = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
             "DATABRICKS_HOST", "DATABRICKS_TOKEN", "NODE_EXTRA_CA_CERTS", "HTTPS_PROXY", "https_proxy",
             "NO_PROXY", "no_proxy")


class Shell:
    """A state directory with its own emulator, and the environment `eval "$(kvlab env)"` gives a shell."""

    def __init__(self, state: Path):
        self.state = state
        self.base = {k: v for k, v in os.environ.items() if k not in INHERITED}
        self.base.update(KVLAB_STATE_DIR=str(state), COLUMNS="200")
        self.port = free_port()  # not this test process's KVLAB_PORT: that is its own emulator
        self.kvlab("emulator", "start", "--port", str(self.port))
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


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    running = Shell(tmp_path_factory.mktemp("other-process") / "state")
    running.kvlab("vault", "create", "--name", "kv-other")
    running.kvlab("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee", "learner",
                  "--scope", "kv-other")
    yield running
    running.kvlab("emulator", "stop")


SDK_PROGRAM = """
import sys
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
with DefaultAzureCredential() as credential:
    for url in sys.argv[1:]:
        client = SecretClient(url, credential)
        client.set_secret("from-" + str(len(url)), "plainly-fake-value")  # pragma: allowlist secret
        print(sorted(p.name for p in client.list_properties_of_secrets()))
"""


def test_a_separate_python_program_reaches_a_vault_through_the_proxy_with_tls_verified(shell):
    with_port, without_port = f"https://kv-other.localhost:{shell.port}/", "https://kv-other.localhost/"
    done = shell.run(sys.executable, "-c", SDK_PROGRAM, with_port, without_port)
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line.replace("'", '"')) for line in done.stdout.splitlines())
    assert f"from-{len(with_port)}" in first and second == sorted(first + [f"from-{len(without_port)}"])
    audit = json.loads(shell.kvlab("audit", "--vault", "kv-other").stdout)
    assert {r["identity"] for r in audit if r["operationName"] == "SecretSet" and r["httpStatusCode"] == 200} == {"learner"}


def test_without_the_proxy_the_same_program_cannot_resolve_the_vault_name(shell):
    try:
        _original_getaddrinfo("kv-other.localhost", 443)
    except socket.gaierror:
        pass
    else:
        pytest.skip("this machine's resolver answers *.localhost by itself (nss-myhostname, systemd-resolved)")
    env = {k: v for k, v in shell.env.items() if k.lower() != "https_proxy"}
    no_retries = SDK_PROGRAM.replace("SecretClient(url, credential)", "SecretClient(url, credential, retry_total=0)")
    done = shell.run(sys.executable, "-c", no_retries, f"https://kv-other.localhost:{shell.port}/", env=env)
    assert done.returncode != 0
    assert "kv-other.localhost" in done.stderr and "resolve" in done.stderr.lower()


def test_no_proxy_keeps_the_callers_entries_except_those_that_would_bypass_it(shell):
    base = {**shell.base, "NO_PROXY": "localhost,.localhost,*.localhost,*,127.0.0.1,.corp.example,localhost:8888"}
    done = subprocess.run([KVLAB, "env", "--shell", "json"], env=base, capture_output=True, text=True, timeout=60)
    variables = json.loads(done.stdout)
    assert variables["NO_PROXY"] == variables["no_proxy"] == "127.0.0.1,.corp.example"


def ask(port: int, request: bytes) -> bytes:
    """Send raw bytes to the proxy and return its answer's status line (or b'' if it closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def connect_request(target: str, credential: str | None) -> bytes:
    auth = f"Proxy-Authorization: Basic {credential}\r\n" if credential else ""
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode()


def test_the_proxy_refuses_strangers_other_methods_other_ports_and_oversized_requests(shell):
    port, credential = shell.proxy()
    wrong = base64.b64encode(b"kvlab:not-the-password").decode()  # pragma: allowlist secret
    assert ask(port, connect_request("kv-other.localhost:443", None)).startswith(b"HTTP/1.1 407")
    assert ask(port, connect_request("kv-other.localhost:443", wrong)).startswith(b"HTTP/1.1 407")
    assert ask(port, b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert ask(port, connect_request("example.com:22", credential)).startswith(b"HTTP/1.1 403")
    # another name on 443 is tunnelled as asked (here it cannot be resolved: 502, not a refusal)
    assert ask(port, connect_request("no-such-host.invalid:443", credential)).startswith(b"HTTP/1.1 502")
    assert ask(port, b"CONNECT a:443 HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n") == b""
    assert ask(port, connect_request(f"localhost:{shell.port}", credential)).startswith(b"HTTP/1.1 200")


def test_the_proxy_listens_on_loopback_only(shell):
    port, _ = shell.proxy()
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("reads Linux's socket table")
    listening = [line.split()[1] for line in table.read_text().splitlines()[1:]
                 if line.split()[3] == "0A" and int(line.split()[1].split(":")[1], 16) == port]
    assert listening == ["0100007F:" + f"{port:04X}"]  # 127.0.0.1, and nothing else


@pytest.mark.parametrize("target, where", [
    ("kv-app.localhost:443", ("127.0.0.1", 18443)),
    ("adb-1.1.localhost:18443", ("127.0.0.1", 18443)),
    ("localhost:8888", ("localhost", 8888)),
    ("[::1]:8888", ("::1", 8888)),
    ("kv-app.vault.azure.net:443", ("kv-app.vault.azure.net", 443)),
])
def test_where_a_tunnel_goes(target, where):
    assert destination(target, 18443) == where


@pytest.mark.parametrize("target", ["kv-app.vault.azure.net:80", "example.com", ":443", "example.com:x"])
def test_tunnels_the_proxy_refuses(target):
    with pytest.raises(Refused):
        destination(target, 18443)


# -- the JavaScript SDK (npm), in Node -------------------------------------------------------------------------

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def node_clients() -> Path:
    """@azure/identity and @azure/keyvault-secrets from npm, at the versions tests/js/package-lock.json pins
    (installed once into the virtual environment, again only when the lock file changes)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip("needs Node.js and npm")
    where = Path(sys.prefix) / "kvlab-js"
    where.mkdir(exist_ok=True)
    lock = (JS / "package-lock.json").read_bytes()
    stamp = where / ".installed-lock"
    if not stamp.exists() or stamp.read_bytes() != lock:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(JS / name, where / name)
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=where,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        stamp.write_bytes(lock)
    shutil.copy(JS / "secrets.mjs", where / "secrets.mjs")  # imports resolve next to node_modules
    return where


@pytest.mark.parametrize("with_port", [True, False])
def test_the_javascript_sdk_reaches_a_vault_from_node(shell, node_clients, with_port):
    url = f"https://kv-other.localhost:{shell.port}/" if with_port else "https://kv-other.localhost/"
    done = shell.run(shutil.which("node"), str(node_clients / "secrets.mjs"), url)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["same"] is True and "from-node" in answer["names"]
    assert "plainly-fake-node-value" not in done.stdout + done.stderr


def test_node_without_the_emulators_variables_is_refused_not_misled(shell, node_clients):
    """Without NODE_EXTRA_CA_CERTS Node does not trust the emulator: TLS verification is on."""
    env = {k: v for k, v in shell.env.items() if k != "NODE_EXTRA_CA_CERTS"}
    done = shell.run(shutil.which("node"), str(node_clients / "secrets.mjs"), "https://kv-other.localhost/", env=env)
    assert done.returncode != 0
    assert "certificate" in done.stderr.lower()


# -- the legacy databricks CLI (PyPI databricks-cli), the reference article's commands -----------------


def test_the_articles_databricks_cli_lines_run_against_the_workspace(shell):
    vault = next(v for v in json.loads(shell.kvlab("vault", "list").stdout) if v["name"] == "kv-other")
    wrote = shell.run(sys.executable, "-c", SDK_PROGRAM, vault["vaultUri"])
    assert wrote.returncode == 0, wrote.stderr
    in_vault = set(json.loads(wrote.stdout.replace("'", '"')))
    create = [DATABRICKS, "secrets", "create-scope", "--scope", "kv-scope", "--scope-backend-type", "AZURE_KEYVAULT",
              "--resource-id", vault["id"], "--dns-name", vault["vaultUri"]]
    # with the personal access token of `kvlab env`: refused, as Databricks refuses it
    refused = shell.run(*create)
    assert refused.returncode == 1 and "must have userAADToken defined" in refused.stderr + refused.stdout
    # with a Microsoft Entra ID token for the Azure Databricks application (az account get-access-token does this)
    token = shell.python(
        "from azure.identity import DefaultAzureCredential as C; "
        f"print(C().get_token('{AZURE_DATABRICKS}/.default').token)").stdout.strip()
    created = shell.run(*create, env={**shell.env, "DATABRICKS_TOKEN": token})
    assert created.returncode == 0 and created.stdout == "", created.stderr
    scopes = shell.run(DATABRICKS, "secrets", "list-scopes")
    assert scopes.returncode == 0
    assert ["kv-scope", "AZURE_KEYVAULT", vault["vaultUri"]] in [line.split() for line in scopes.stdout.splitlines()]
    # the workspace reads the vault as AzureDatabricks: no role yet
    denied = shell.run(DATABRICKS, "secrets", "list", "--scope", "kv-scope")
    assert denied.returncode == 1 and "Authorization failed" in denied.stdout + denied.stderr
    shell.kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", "AzureDatabricks",
                "--scope", "kv-other")
    listed = shell.run(DATABRICKS, "secrets", "list", "--scope", "kv-scope")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["Key", "name", "Last", "updated"]
    names = {line.split()[0] for line in listed.stdout.splitlines()[2:]}
    assert names == in_vault
    # a Key Vault-backed scope is read-only
    put = shell.run(DATABRICKS, "secrets", "put", "--scope", "kv-scope", "--key", "x", "--string-value", "fake")
    assert put.returncode == 1 and "BAD_REQUEST" in put.stdout + put.stderr
    assert "fake" not in put.stdout + put.stderr
    # ACLs through the CLI are what the workspace enforces
    acl = shell.run(DATABRICKS, "secrets", "put-acl", "--scope", "kv-scope", "--principal", "users",
                    "--permission", "READ")
    assert acl.returncode == 0, acl.stderr
    acls = shell.run(DATABRICKS, "secrets", "list-acls", "--scope", "kv-scope")
    assert ["users", "READ"] in [line.split() for line in acls.stdout.splitlines()]
    missing = shell.run(DATABRICKS, "secrets", "list", "--scope", "no-such-scope")
    assert missing.returncode == 1 and "RESOURCE_DOES_NOT_EXIST" in missing.stdout + missing.stderr
    deleted = shell.run(DATABRICKS, "secrets", "delete-scope", "--scope", "kv-scope")
    assert deleted.returncode == 0, deleted.stderr
    assert "kv-scope" not in shell.run(DATABRICKS, "secrets", "list-scopes").stdout


def test_the_cli_on_a_databricks_backed_scope_its_acls_and_its_errors(shell):
    databricks = lambda *args, env=None: shell.run(DATABRICKS, "secrets", *args, env=env)  # noqa: E731
    created = databricks("create-scope", "--scope", "cli-scope")
    assert created.returncode == 0, created.stderr
    again = databricks("create-scope", "--scope", "cli-scope")
    assert again.returncode == 1 and "RESOURCE_ALREADY_EXISTS" in again.stdout + again.stderr
    # --resource-id without --dns-name: the CLI sends no backend at all, and the workspace names what is missing
    half = databricks("create-scope", "--scope", "half", "--scope-backend-type", "AZURE_KEYVAULT", "--resource-id", "x")
    assert half.returncode == 1 and "INVALID_PARAMETER_VALUE" in half.stdout + half.stderr
    put = databricks("put", "--scope", "cli-scope", "--key", "token", "--string-value", "plainly-fake-cli-value")
    assert put.returncode == 0, put.stderr
    listed = databricks("list", "--scope", "cli-scope")
    assert [line.split()[0] for line in listed.stdout.splitlines()[2:]] == ["token"]
    assert "plainly-fake-cli-value" not in listed.stdout
    # a second workspace user with READ: may list, may not write
    ana = json.loads(shell.kvlab("databricks", "user", "create", "--name", "ana@example.com").stdout)
    as_ana = {**shell.env, "DATABRICKS_TOKEN": ana["token"]}
    assert databricks("list", "--scope", "cli-scope", env=as_ana).returncode == 1  # no ACL yet
    assert databricks("put-acl", "--scope", "cli-scope", "--principal", "ana@example.com", "--permission", "READ"
                      ).returncode == 0
    got = databricks("get-acl", "--scope", "cli-scope", "--principal", "ana@example.com")
    assert ["ana@example.com", "READ"] in [line.split() for line in got.stdout.splitlines()]
    assert databricks("list", "--scope", "cli-scope", env=as_ana).returncode == 0
    refused = databricks("put", "--scope", "cli-scope", "--key", "k", "--string-value", "v", env=as_ana)
    assert refused.returncode == 1 and "Authorization failed" in refused.stdout + refused.stderr
    assert databricks("delete-acl", "--scope", "cli-scope", "--principal", "ana@example.com").returncode == 0
    assert databricks("list", "--scope", "cli-scope", env=as_ana).returncode == 1
    # deleting a secret, then one that is not there
    assert databricks("delete", "--scope", "cli-scope", "--key", "token").returncode == 0
    gone = databricks("delete", "--scope", "cli-scope", "--key", "token")
    assert gone.returncode == 1 and "RESOURCE_DOES_NOT_EXIST" in gone.stdout + gone.stderr
    assert databricks("delete-scope", "--scope", "cli-scope").returncode == 0


# -- the shell of a JupyterLab terminal (kvlab/terminal.py) ------------------------------------------------


# each shell's start-up file, and a line in its language that puts $HOME/bin first (as pyenv or conda do)
START_UP = {
    "bash": (".bashrc", 'export PATH="$HOME/bin:$PATH"\nexport FROM_RC=yes\n'),
    "zsh": (".zshrc", 'export PATH="$HOME/bin:$PATH"\nexport FROM_RC=yes\n'),
    "fish": (".config/fish/config.fish", "set -gx PATH $HOME/bin $PATH\nset -gx FROM_RC yes\n"),
}


@pytest.mark.parametrize("name", sorted(START_UP))
def test_a_terminals_shell_keeps_the_workbooks_python_first_after_the_users_start_up_files(shell, tmp_path, name):
    """A start-up file that puts its own `python` first (pyenv, conda do) must not hide the workbook's."""
    program = shutil.which(name)
    if not program:
        pytest.skip(f"needs {name}")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("#!/bin/sh\necho not-the-workbook\n")
    (tmp_path / "bin" / "python").chmod(0o755)
    rc, text = START_UP[name]
    (tmp_path / rc).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rc).write_text(text)
    env = {**shell.base, "HOME": str(tmp_path), "SHELL": program, "PATH": "/usr/bin:/bin"}
    env.pop("ZDOTDIR", None)
    done = subprocess.run(
        [sys.executable, "-m", "kvlab.terminal", "-i", "-c",
         'echo "rc=$FROM_RC"; python -c "import sys; print(sys.prefix)"; databricks secrets list-scopes'],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("kvlab: this terminal reaches the emulator")
    assert lines[1] == "rc=yes"  # the user's own start-up file ran
    assert lines[2] == sys.prefix
    assert lines[3].split() == ["Scope", "Backend", "KeyVault", "URL"]


def test_a_terminal_opens_even_when_the_emulator_cannot_start(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env.update(KVLAB_STATE_DIR=str(blocker / "state"), SHELL="/bin/sh")
    done = subprocess.run([sys.executable, "-m", "kvlab.terminal", "-c", "echo shell-is-open"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[0].startswith("kvlab: this terminal is not pointed at the emulator (")
    assert done.stdout.splitlines()[-1] == "shell-is-open" and done.stderr == ""
