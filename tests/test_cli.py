"""The `kvlab` command, run as a user runs it: a subprocess, JSON on stdout, one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from runners import KVLAB, as_json, assert_one_line_error, free_port, kvlab


@pytest.fixture
def state(tmp_path):
    yield tmp_path
    kvlab("emulator", "stop", state=tmp_path, check=False)




def test_start_is_idempotent_and_status_and_stop_report_truthfully(state):
    port = free_port()
    started = as_json(kvlab("emulator", "start", "--port", str(port), state=state))
    assert started["running"] is True
    assert started["port"] == port
    assert started["url"] == f"https://localhost:{port}"
    assert started["stateDir"] == str(state.resolve())

    assert started["alreadyRunning"] is False

    again = kvlab("emulator", "start", state=state)
    assert as_json(again) == {**started, "alreadyRunning": True}  # the same shape, and says so
    assert again.stderr.strip() == f"kvlab: the emulator is already running on port {port}"

    status = as_json(kvlab("emulator", "status", state=state))
    assert status["running"] is True and status["pid"] == started["pid"]

    stopped = kvlab("emulator", "stop", state=state)
    assert as_json(stopped) == {"running": False, "stateDir": str(state.resolve()), "wasRunning": True}
    assert stopped.stderr == ""
    assert as_json(kvlab("emulator", "status", state=state))["running"] is False
    # stopping twice is fine too, and says there was nothing to stop
    twice = kvlab("emulator", "stop", state=state)
    assert as_json(twice)["running"] is False and as_json(twice)["wasRunning"] is False
    assert twice.stderr.strip() == "kvlab: the emulator is not running"


def test_start_on_a_busy_port_fails_with_one_line(state):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = kvlab("emulator", "start", "--port", str(port), state=state, check=False)
    assert_one_line_error(result, str(port), "in use")


def test_start_with_another_port_while_running_is_refused(state):
    port = free_port()
    kvlab("emulator", "start", "--port", str(port), state=state)
    result = kvlab("emulator", "start", "--port", str(free_port()), state=state, check=False)
    assert_one_line_error(result, "already runs", str(port))


def test_vault_create_list_delete(state):
    created = as_json(kvlab("vault", "create", "--name", "kv-sales-dev", state=state))
    assert created["name"] == "kv-sales-dev"
    assert created["vaultUri"].startswith("https://kv-sales-dev.localhost:")
    assert created["enableRbacAuthorization"] is True
    assert created["softDeleteRetentionInDays"] == 90
    kvlab("vault", "create", "--name", "kv-sales-prod", state=state)

    names = [v["name"] for v in as_json(kvlab("vault", "list", state=state))]
    assert names == ["kv-sales-dev", "kv-sales-prod"]

    table = kvlab("vault", "list", "-o", "table", state=state).stdout
    assert "kv-sales-dev" in table and "vaultUri" in table and "{" not in table

    deleted = as_json(kvlab("vault", "delete", "--name", "kv-sales-dev", state=state))
    assert deleted == {"name": "kv-sales-dev", "deleted": True}
    assert [v["name"] for v in as_json(kvlab("vault", "list", state=state))] == ["kv-sales-prod"]


def test_vault_uri_uses_the_running_emulators_port(state):
    port = free_port()
    kvlab("emulator", "start", "--port", str(port), state=state)
    created = as_json(kvlab("vault", "create", "--name", "kv-portcheck", state=state))
    assert created["vaultUri"] == f"https://kv-portcheck.localhost:{port}/"


@pytest.mark.parametrize(
    "args, words",
    [
        (("vault", "create", "--name", "kv_bad"), ("invalid vault name", "kv_bad")),
        (("vault", "create", "--name", "ab"), ("invalid vault name",)),
        (("vault", "create", "--name", "a" * 25), ("invalid vault name",)),
        (("vault", "create", "--name", "kv--double"), ("invalid vault name",)),
        (("vault", "delete", "--name", "kv-missing"), ("does not exist", "kv-missing")),
    ],
)
def test_bad_input_gets_a_one_line_error(state, args, words):
    assert_one_line_error(kvlab(*args, state=state, check=False), *words)


def test_creating_a_vault_twice_is_an_error(state):
    kvlab("vault", "create", "--name", "kv-twice", state=state)
    assert_one_line_error(kvlab("vault", "create", "--name", "kv-twice", state=state, check=False), "already exists")


@pytest.mark.parametrize(
    "args",
    [(), ("emulator",), ("emulator", "start"), ("emulator", "stop"), ("emulator", "status"),
     ("vault",), ("vault", "create"), ("vault", "list"), ("vault", "delete")],
)
def test_every_command_has_help(state, args):
    result = kvlab(*args, "--help", state=state)
    assert "Usage:" in result.stdout
    assert "--help" in result.stdout


def test_databricks_workspace_prints_the_host_and_a_token_and_users_are_listed_without_theirs(state):
    first = as_json(kvlab("databricks", "workspace", state=state))
    assert first["host"].startswith("https://adb-") and ".1.localhost:" in first["host"]
    assert first["user"] == "learner@kvlab.local"
    assert first["token"].startswith("dapi") and len(first["token"]) == 36
    assert as_json(kvlab("databricks", "workspace", state=state)) == first  # the same workspace, the same token
    ana = as_json(kvlab("databricks", "user", "create", "--name", "ana@example.com", state=state))
    assert ana["user"] == "ana@example.com" and ana["admin"] is False and ana["token"] != first["token"]
    assert as_json(kvlab("databricks", "workspace", "--user", "ana@example.com", state=state))["token"] == ana["token"]
    listed = kvlab("databricks", "user", "list", state=state).stdout
    assert json.loads(listed) == [{"user": "learner@kvlab.local", "admin": True}, {"user": "ana@example.com", "admin": False}]
    assert "dapi" not in listed


@pytest.mark.parametrize("args, words", [
    (("databricks", "user", "create", "--name", "not an address"), ("invalid user name",)),
    (("databricks", "workspace", "--user", "nobody@example.com"), ("no workspace user", "nobody@example.com")),
])
def test_databricks_bad_input_gets_a_one_line_error(state, args, words):
    assert_one_line_error(kvlab(*args, state=state, check=False), *words)


def test_env_points_another_process_at_the_emulator_through_eval(state):
    """eval "$(kvlab env)" in bash, then a separate Python process: TLS to the emulator verified, identity and
    Databricks variables set as kvlab.connect() sets them."""
    kvlab("emulator", "start", "--port", str(free_port()), state=state)  # not this test process's KVLAB_PORT
    script = (f'lines="$({KVLAB} env --shell bash)" && eval "$lines" && "{sys.executable}" -c "'
              "import json, os, requests; port = os.environ['IDENTITY_ENDPOINT'].split(':')[2].split('/')[0]; "
              "health = requests.get(f'https://localhost:{port}/kvlab/health', timeout=10).json(); "
              "print(json.dumps({'status': health['status'], 'host': os.environ['DATABRICKS_HOST'], "
              "'node': os.environ['NODE_EXTRA_CA_CERTS'], 'az': os.environ['AZURE_CONFIG_DIR']}))\"")
    env = {**os.environ, "KVLAB_STATE_DIR": str(state)}
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
                 "DATABRICKS_HOST", "DATABRICKS_TOKEN", "NODE_EXTRA_CA_CERTS"):
        env.pop(name, None)  # this test process's own settings must not stand in for the printed ones
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["status"] == "ok"
    assert got["host"] == as_json(kvlab("databricks", "workspace", state=state))["host"]
    assert got["node"] == str(state / "ca.pem")
    azure = Path(got["az"])  # the Azure CLI's profile and token cache: the state directory's, private
    assert azure.parent == state and azure.is_dir() and azure.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("shell, line", [
    ("bash", "export X='it'\\''s here'"),
    ("fish", "set -gx X 'it\\'s here'"),
    ("powershell", "$env:X = 'it''s here'"),
    ("cmd", 'set "X=it\'s here"'),
])
def test_env_quotes_values_for_each_shell(shell, line):
    from kvlab.cli import shell_lines

    assert shell_lines({"X": "it's here"}, shell) == line


def test_env_takes_the_shell_from_SHELL_and_prints_json_for_programs(state):
    kvlab("emulator", "start", "--port", str(free_port()), state=state)
    env = {**os.environ, "KVLAB_STATE_DIR": str(state), "SHELL": "/usr/bin/fish"}
    fish = subprocess.run([KVLAB, "env"], env=env, capture_output=True, text=True, timeout=60)
    assert fish.returncode == 0, fish.stderr
    assert fish.stdout.splitlines()[0].startswith("set -gx REQUESTS_CA_BUNDLE ")
    variables = as_json(kvlab("env", "--shell", "json", state=state))
    assert sorted(variables) == ["AZURE_CONFIG_DIR", "DATABRICKS_HOST", "DATABRICKS_TOKEN", "HTTPS_PROXY", "IDENTITY_ENDPOINT",
                                 "IDENTITY_HEADER", "NODE_EXTRA_CA_CERTS", "NO_PROXY", "REQUESTS_CA_BUNDLE",
                                 "SSL_CERT_FILE", "https_proxy", "no_proxy"]
