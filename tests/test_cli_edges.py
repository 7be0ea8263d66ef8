"""Edges of the `kvlab` command: unknown vaults, missing state directories, empty amounts, wide tables.

Run as a user runs it: a subprocess, JSON on stdout, one-line errors on stderr.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from runners import KVLAB, as_json, assert_one_line_error, free_port, kvlab, officer_vault

FAKE_VALUE = "not-a-real-password"  # pragma: allowlist secret


# -- an unknown vault is an error, not an empty list ----------------------------------


@pytest.mark.parametrize("command", ["audit", "events"])
def test_filtering_by_an_unknown_vault_is_the_usual_one_line_error(tmp_path, command):
    kvlab("vault", "create", "--name", "kv-known", state=tmp_path)
    assert as_json(kvlab(command, "--vault", "kv-known", state=tmp_path)) == []

    result = kvlab(command, "--vault", "kv-missing", state=tmp_path, check=False)
    assert_one_line_error(result, "does not exist", "kv-missing")
    # word for word what every other command says of a vault that is not there
    assert result.stderr == kvlab("vault", "delete", "--name", "kv-missing", state=tmp_path, check=False).stderr


# -- reading never creates a state directory -----------------------------------------


@pytest.mark.parametrize("verb", ["stop", "status"])
def test_stop_and_status_of_a_missing_state_directory_leave_it_missing(tmp_path, verb):
    missing = tmp_path / "no" / "such" / "state"
    result = kvlab("emulator", verb, state=missing)
    assert as_json(result) == {"running": False, "stateDir": str(missing.resolve())} | (
        {"wasRunning": False} if verb == "stop" else {}
    )
    assert not missing.exists() and not missing.parent.exists()


def test_stop_says_when_nothing_was_running(tmp_path):
    result = kvlab("emulator", "stop", state=tmp_path / "absent")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not running" in lines[0], result.stderr


@pytest.mark.parametrize(
    "args",
    [("vault", "list"), ("identity", "list"), ("role", "assignment", "list"), ("audit",), ("events",),
     ("clock", "show"), ("vault", "delete", "--name", "kv-x"), ("clock", "reset")],
)
def test_other_commands_on_a_missing_state_directory_fail_without_creating_it(tmp_path, args):
    missing = tmp_path / "typo"
    result = kvlab(*args, state=missing, check=False)
    assert_one_line_error(result, str(missing.resolve()), "does not exist")
    assert not missing.exists()


# -- clock advance needs an amount ------------------------------------------------------


@pytest.mark.parametrize("amount", [(), ("--days", "0"), ("--days", "0", "--hours", "0", "--minutes", "0")])
def test_clock_advance_without_an_amount_is_a_usage_error(tmp_path, amount):
    kvlab("vault", "create", "--name", "kv-clock", state=tmp_path)
    result = kvlab("clock", "advance", *amount, state=tmp_path, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and all(o in errors[0] for o in ("--days", "--hours", "--minutes")), result.stderr


@pytest.mark.parametrize("option", ["--days", "--hours", "--minutes"])
def test_clock_advance_refuses_a_negative_amount(tmp_path, option):
    kvlab("vault", "create", "--name", "kv-clock", state=tmp_path)
    other = "--minutes" if option != "--minutes" else "--days"
    result = kvlab("clock", "advance", option, "-1", other, "2", state=tmp_path, check=False)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert option in result.stderr
    assert as_json(kvlab("clock", "show", state=tmp_path))["offsetSeconds"] == 0


# -- tables fit the terminal --------------------------------------------------------------


@pytest.fixture(scope="module")
def busy(emulator):
    """The session emulator with the widest real rows: long names, secret scopes, lists, audit and events."""
    url = officer_vault(emulator, "kv-widetbl-")
    vault = url.split("//", 1)[1].split(".", 1)[0]
    who = emulator.create_identity(f"id-a-rather-long-identity-name-{uuid.uuid4().hex[:8]}")["name"]
    emulator.assign_role("Key Vault Secrets User", who, f"{vault}/secrets/a-secret-with-a-long-name-for-tables")
    with DefaultAzureCredential() as credential, SecretClient(url, credential) as client:
        client.set_secret("a-secret-with-a-long-name-for-tables", FAKE_VALUE)
        client.get_secret("a-secret-with-a-long-name-for-tables")
        for name in HOSTILE_NAMES:  # refused (400), and kept in the audit log as asked for
            with pytest.raises(HttpResponseError):
                client.get_secret(name)
    return Path(emulator.state_dir), vault


# names a request may carry to the audit log: a terminal escape sequence, C1 controls, private and unassigned
# code points (as the fuzzing of tests/emulator/test_schemathesis.py sends them)
HOSTILE_NAMES = ["x\x1b]0;owned\x07\x1b[2Jy", "\uee7f\x8e\xfdL\x0f\x99\U00107052\U000abc19"]


WIDE_TABLES = [("audit",), ("events",), ("role", "assignment", "list"), ("vault", "list"), ("identity", "list"),
               ("role", "definition")]


def table(state: Path, args: tuple[str, ...], columns: int | None) -> str:
    """``kvlab ARGS -o table`` with stdout a pipe (never a terminal), ``$COLUMNS`` set or not."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    result = subprocess.run([KVLAB, *args, "-o", "table"], env={**env, "KVLAB_STATE_DIR": str(state)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("args", WIDE_TABLES, ids=" ".join)
@pytest.mark.parametrize("columns, width", [(None, 120), (80, 80), (200, 200), (40, 40)])
def test_tables_fit_the_terminal_and_show_no_python_reprs(busy, args, columns, width):
    text = table(busy[0], args, columns)
    lines = text.splitlines()
    assert len(lines) >= 3
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, f"{len(too_wide[0])} > {width}: {too_wide[0]!r}"
    assert "['" not in text and "{'" not in text and "[]" not in text
    assert FAKE_VALUE not in text


def test_a_name_with_control_characters_is_shown_escaped_never_sent_to_the_terminal(busy):
    text = table(busy[0], ("audit",), 200)
    assert "\x1b" not in text and "\x07" not in text and "\x8e" not in text
    assert r"x\x1b]0;owned\x07" in text


def test_list_cells_read_as_text(busy):
    text = table(busy[0], ("role", "definition"), 200)
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in text
    assert "/action," in text  # a list reads "a, b", not "['a', 'b']"


def test_at_the_usual_width_ids_names_and_times_stay_whole(busy):
    state, vault = busy
    events = table(state, ("events",), 120)
    assert vault in events and "SecretNewVersionCreated" in events
    audit = table(state, ("audit",), 120)
    assert "SecretSet" in audit and "SecretGet" in audit
    assert "00482a5a-887f-4fb3-b363-3b7fe8e74483" in table(state, ("role", "definition"), 120)


def test_assignment_table_shows_scopes_as_scope_takes_them(busy):
    state, vault = busy
    text = table(state, ("role", "assignment", "list"), 200)
    assert f"{vault}/secrets/a-secret-with-a-long-name-for-tables" in text
    assert "/subscriptions/" not in text


@pytest.mark.parametrize("command", [("vault", "create"), ("identity", "create")])
def test_a_name_with_a_trailing_newline_is_refused_in_one_line(tmp_path, command):
    """Issue #14, defect 8."""
    assert_one_line_error(kvlab(*command, "--name", "kvnewline\n", state=tmp_path, check=False), "invalid")
    kvlab("emulator", "stop", state=tmp_path, check=False)


def test_a_state_directory_has_at_most_one_live_emulator(tmp_path):
    """Issue #14, defect 9: two starts on different ports both ran; emulator.json recorded one, the other was
    orphaned, and two first starts could each create a CA."""
    ports = [free_port(), free_port()]
    starts = [subprocess.Popen([KVLAB, "emulator", "start", "--port", str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "KVLAB_STATE_DIR": str(tmp_path)})
              for port in ports]  # at once, on a state directory that does not exist yet
    results = [(start.wait(timeout=60), start.stderr.read()) for start in starts]
    try:
        assert sorted(code for code, _ in results) == [0, 1], results
        [refusal] = [message for code, message in results if code]
        assert len(refusal.strip().splitlines()) == 1 and ("already serves" in refusal or "already runs" in refusal)
        status = as_json(kvlab("emulator", "status", state=tmp_path))
        assert status["running"] and status["port"] in ports
        direct = subprocess.run([sys.executable, "-m", "kvlab.emulator", "--port", str(free_port()), "--state-dir",
                                 str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert direct.returncode == 1 and "another emulator already serves" in direct.stderr
        assert as_json(kvlab("emulator", "status", state=tmp_path))["port"] == status["port"]  # still the one
    finally:
        kvlab("emulator", "stop", state=tmp_path, check=False)


def test_a_damaged_or_emptied_database_is_reported_at_start_and_never_reset(tmp_path):
    """Issue #14, defect 12: garbage mid-file started silently (writes then answered 500), and a zero-byte
    file silently became an empty state."""
    damaged, emptied = tmp_path / "damaged", tmp_path / "emptied"
    kvlab("emulator", "start", "--port", str(free_port()), state=damaged)
    kvlab("vault", "create", "--name", "kv-keep", state=damaged)
    kvlab("emulator", "stop", state=damaged)
    database = damaged / "kvlab.db"
    with sqlite3.connect(database) as db:  # fold the write-ahead log in, so the file holds every page
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = database.stat().st_size
    with open(database, "r+b") as f:
        f.seek(4096)
        f.write(os.urandom(min(8192, size - 4096)))
    emptied.mkdir()
    (emptied / "kvlab.db").touch()
    for state, word in ((damaged, "is damaged"), (emptied, "is empty (0 bytes)")):
        before = (state / "kvlab.db").read_bytes()
        result = kvlab("emulator", "start", "--port", str(free_port()), state=state, check=False)
        assert_one_line_error(result, word)
        assert (state / "kvlab.db").read_bytes() == before  # nothing repaired, nothing reset
        assert not as_json(kvlab("emulator", "status", state=state))["running"]


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGSTOP"), reason="POSIX signals")
def test_an_emulator_that_does_not_answer_is_still_running_and_stop_stops_it(tmp_path):
    """Issue #14, defect 2: status gave the health probe 1 s, so a busy emulator was declared down; stop then
    deleted emulator.json and left the process alive, and the next start failed with "port already in use"."""
    import signal

    port = free_port()
    started = as_json(kvlab("emulator", "start", "--port", str(port), state=tmp_path))
    os.kill(started["pid"], signal.SIGSTOP)  # alive, holding its port and its state directory, answering nothing
    try:
        status = as_json(kvlab("emulator", "status", state=tmp_path))
        assert status["running"] is True and status["answering"] is False and status["pid"] == started["pid"]
        refused = kvlab("emulator", "start", "--port", str(port), state=tmp_path, check=False)
        assert_one_line_error(refused, "does not answer", "kvlab emulator stop")
        stopped = as_json(kvlab("emulator", "stop", state=tmp_path))
        assert stopped["wasRunning"] is True
        assert not (tmp_path / "emulator.json").exists()
        with pytest.raises(ProcessLookupError):
            for _ in range(100):
                os.kill(started["pid"], 0)
                __import__("time").sleep(0.05)
        again = as_json(kvlab("emulator", "start", "--port", str(port), state=tmp_path))  # the port is free
        assert again["running"] and again["answering"] and again["pid"] != started["pid"]
    finally:
        try:
            os.kill(started["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
        kvlab("emulator", "stop", state=tmp_path, check=False)


def test_the_emulator_starts_from_a_folder_holding_a_kvlab_folder(tmp_path):
    """A workbook cloned into ~/kvlab and `kvlab emulator start` run from ~: the folder is no package to import."""
    (tmp_path / "kvlab").mkdir()
    state = tmp_path / "state"
    env = {**os.environ, "KVLAB_PORT": str(free_port())}
    try:
        started = kvlab("emulator", "start", state=state, env=env, cwd=tmp_path, check=False)
        assert started.returncode == 0, started.stderr
    finally:
        kvlab("emulator", "stop", state=state, env=env, check=False)
