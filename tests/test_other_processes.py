"""Processes that did not call `kvlab.connect()`: a separate Python program, Node with the JavaScript SDK, the
legacy `databricks` CLI.

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
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from kvlab.connection import _original_getaddrinfo
from kvlab.emulator.proxy import Refused, destination

import node_packages
from shells import DATABRICKS, INHERITED, KVLAB, Shell, system_files

AZURE_DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"


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


# -- a real vault's name, from the same shell ----------------------------------------------------------------

REAL_VAULT = "myvault.vault.azure.net"
# Variables that would change how a process resolves names (glibc, musl, Node, Go) or whether it verifies TLS.
NOT_SET = ("HOSTALIASES", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "RES_OPTIONS", "LOCALDOMAIN",
           "RESOLV_HOST_CONF", "NODE_OPTIONS", "GODEBUG", "NODE_TLS_REJECT_UNAUTHORIZED", "PYTHONHTTPSVERIFY",
           "AZURE_CLI_DISABLE_CONNECTION_VERIFICATION", "ADAL_PYTHON_SSL_NO_VERIFY")
LOOKUP = """
require("dns").lookup(process.argv[1], { all: true }, (err, found) => console.log(JSON.stringify(
  err ? { error: err.code } : { addresses: found.map((a) => a.address).sort() })));
"""


def test_the_prepared_shell_resolves_a_real_vault_name_as_the_system_does(shell):
    """`kvlab env` diverts nothing by name: no resolver variable, no hosts entry, no system file edited; Node's
    system lookup of a real vault's name answers in the prepared shell exactly as without it (offline: the same
    error; online: public addresses, never this machine)."""
    added = {name for name, value in shell.env.items() if shell.base.get(name) != value}
    assert added, "kvlab env added nothing"
    assert not added & set(NOT_SET), added & set(NOT_SET)
    assert system_files() == shell.system_files
    node = shutil.which("node")
    if not node:
        pytest.skip("needs Node.js")
    prepared, bare = (shell.run(node, "-e", LOOKUP, REAL_VAULT, env=env) for env in (shell.env, shell.base))
    assert prepared.returncode == bare.returncode == 0, prepared.stderr + bare.stderr
    prepared, bare = json.loads(prepared.stdout), json.loads(bare.stdout)
    assert prepared.keys() == bare.keys() and prepared.get("error") == bare.get("error"), (prepared, bare)
    assert not any(address.startswith(("127.", "::1", "::ffff:127.")) for address in prepared.get("addresses", []))


def open_tunnel(port: int, credential: str, target: str) -> tuple[bytes, socket.socket]:
    """CONNECT through the proxy; the answer's status line, and the socket (a tunnel if the status is 200)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(connect_request(target, credential))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing past the proxy's answer may be taken from the tunnel
        if not chunk:
            break
        head += chunk
    return head.split(b"\r\n", 1)[0], sock


def emulators_certificate_verifies(sock: socket.socket, name: str, ca_file: str) -> bool:
    """Whether the far end of `sock`, asked for `name`, shows a certificate the emulator's CA signed (whatever
    names it covers: an emulator that minted one for a real vault's name would be caught too)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False
    try:
        with context.wrap_socket(sock, server_hostname=name):
            return True
    except ssl.SSLCertVerificationError:
        return False


def test_the_proxy_tunnels_a_real_vault_name_to_that_host_not_to_the_emulator(shell):
    """What the SDK's CONNECT for a real vault gets from the running proxy follows the system resolver: offline
    a 502 (the name does not resolve), online a tunnel whose far end is not the emulator (its CA does not vouch
    for it). The same check through a tunnel that does reach the emulator says so: it would catch a diversion."""
    port, credential = shell.proxy()
    ca_file = shell.env["NODE_EXTRA_CA_CERTS"]
    status, sock = open_tunnel(port, credential, "kv-other.localhost:443")
    with sock:
        assert status.startswith(b"HTTP/1.1 200") and emulators_certificate_verifies(sock, REAL_VAULT, ca_file)
    try:
        resolves = bool(_original_getaddrinfo(REAL_VAULT, 443))
    except socket.gaierror:
        resolves = False
    status, sock = open_tunnel(port, credential, f"{REAL_VAULT}:443")
    with sock:
        if not resolves:
            assert status.startswith(b"HTTP/1.1 502"), status
        elif status.startswith(b"HTTP/1.1 200"):
            assert not emulators_certificate_verifies(sock, REAL_VAULT, ca_file)
        else:  # resolved, but not reachable from here
            assert status.startswith(b"HTTP/1.1 502"), status


# -- the JavaScript SDK (npm), in Node -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def node_clients() -> Path:
    """@azure/identity and @azure/keyvault-secrets from npm, at the versions tests/js/package-lock.json pins."""
    return node_packages.installed()


@pytest.mark.parametrize("with_port", [True, False])
def test_the_javascript_sdk_reaches_a_vault_from_node(shell, node_clients, with_port):
    url = f"https://kv-other.localhost:{shell.port}/" if with_port else "https://kv-other.localhost/"
    done = shell.run(shutil.which("node"), str(node_clients / "secrets.mjs"), url)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["same"] is True and "from-node" in answer["names"]
    assert "plainly-fake-node-value" not in done.stdout + done.stderr


def test_the_javascript_sdk_walks_a_secret_through_its_life_and_a_second_identity_is_refused(shell, node_clients):
    """tests/js/walkthrough.mjs: DefaultAzureCredential for the learner (Key Vault Secrets Officer), then for a
    user-assigned identity by its client id (Key Vault Secrets User) whose write is refused."""
    shell.kvlab("vault", "create", "--name", "kv-walk")
    shell.kvlab("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee", "learner",
                "--scope", "kv-walk")
    reader = json.loads(shell.kvlab("identity", "create", "--name", "id-walk-reader").stdout)
    shell.kvlab("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", "id-walk-reader",
                "--scope", "kv-walk")
    done = shell.run(shutil.which("node"), str(node_clients / "walkthrough.mjs"), "https://kv-walk.localhost/",
                     reader["clientId"])
    printed_a_value = "plainly-fake" in done.stdout + done.stderr
    assert not printed_a_value, "the script printed a secret value"  # it prints facts, and an assertion must not
    facts = json.loads(done.stdout)
    assert done.returncode == 0 and "failed" not in facts, (facts.get("failed"), done.stderr)
    first, second = facts["written"]
    # two versions; the latest and the older one each read back as written
    assert first != second and facts["versions"] == sorted([first, second])
    assert facts["latest"] == {"version": second, "isSecondValue": True}
    assert facts["older"] == {"version": first, "isFirstValue": True}
    assert facts["names"] == ["walkthrough"]
    # soft delete: gone from the list, listed and read as deleted, then recovered with both versions
    assert facts["deleted"] == {"name": "walkthrough", "recoveryId": True, "scheduledPurgeDate": True}
    assert facts["deletedNames"] == [facts["getDeletedSecret"]] == ["walkthrough"]
    assert facts["namesWhileDeleted"] == []
    assert facts["getWhileDeleted"] == {"statusCode": 404, "code": "SecretNotFound"}
    assert facts["recovered"] == {"name": "walkthrough", "version": second, "isSecondValue": True,
                                  "versions": sorted([first, second])}
    # backup, delete + purge (nothing left to read or recover), restore: both versions, same values
    assert facts["backup"]["bytes"] > 0 and facts["backup"]["showsAValue"] is False  # opaque, as Azure's is
    assert facts["afterPurge"] == {"getDeletedSecret": {"statusCode": 404, "code": "SecretNotFound"},
                                   "getSecret": {"statusCode": 404, "code": "SecretNotFound"}}
    assert facts["restored"] == {"name": "walkthrough", "version": second, "isSecondValue": True,
                                 "olderIsFirstValue": True, "versions": sorted([first, second])}
    # the second identity signed in as itself: it may read, and its write is refused by RBAC
    assert facts["readerReads"] is True
    refused = facts["refused"]
    assert (refused["statusCode"], refused["code"]) == (403, "Forbidden"), refused
    assert refused["innerCode"] == "ForbiddenByRbac", refused
    assert facts["versionsAfterRefusal"] == sorted([first, second])
    audit = json.loads(shell.kvlab("audit", "--vault", "kv-walk").stdout)
    signed_in = [r for r in audit if r["identity"]]  # not the 401s of the SDK's first, tokenless requests
    sets = {(r["identity"], r["httpStatusCode"]) for r in signed_in if r["operationName"] == "SecretSet"}
    assert sets == {("learner", 200), ("id-walk-reader", 403)}
    assert {r["operationName"] for r in signed_in if r["identity"] == "learner"} >= {
        "SecretSet", "SecretGet", "SecretListVersions", "SecretList", "SecretDelete", "SecretListDeleted",
        "SecretGetDeleted", "SecretRecover", "SecretBackup", "SecretPurge", "SecretRestore"}
    assert system_files() == shell.system_files  # no hosts entry, no CA added to the system's trust


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
