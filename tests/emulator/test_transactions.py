"""A request and its side records commit together, and a busy database never freezes the server (issue #14,
defects 3 and 11, and the health answer's leak).

A failing write of a side record is made the way SQLite would report a full disk for that table alone: a
trigger that aborts its INSERT, installed from outside, as another process would.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from kvlab.emulator import control


@contextmanager
def failing_inserts(lab, table: str):
    db = sqlite3.connect(lab.state_dir / "kvlab.db", timeout=30)
    db.execute(f"CREATE TRIGGER kvlab_test_full BEFORE INSERT ON {table} "
               "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    db.commit()
    try:
        yield
    finally:
        db.execute("DROP TRIGGER kvlab_test_full")
        db.commit()
        db.close()


@pytest.fixture
def one_try(vault_url):
    """A client that does not retry, so each answer is the emulator's first."""
    with DefaultAzureCredential() as credential, SecretClient(vault_url, credential, retry_total=0) as c:
        yield c


@pytest.mark.parametrize("table", ["audit", "events"])
def test_a_write_whose_side_record_fails_is_not_stored_and_says_so(emulator, one_try, table):
    """Defect 11: the audit record was written after the answer and the event after the commit, so under a
    full disk a set answered as stored had no audit record, or was answered 500 and stored all the same."""
    with failing_inserts(emulator, table), pytest.raises(HttpResponseError) as refused:
        one_try.set_secret("atomic", "plainly-fake-value")  # pragma: allowlist secret
    assert refused.value.status_code == 500
    assert "nothing of it was kept" in refused.value.message
    with pytest.raises(ResourceNotFoundError):
        one_try.get_secret("atomic")
    assert not [p for p in one_try.list_properties_of_secrets() if p.name == "atomic"]


def test_every_answered_request_has_its_audit_record_already(emulator, one_try):
    """The record is committed before the answer is sent: read straight from the database, with no barrier."""
    one_try.set_secret("audited", "plainly-fake-value")  # pragma: allowlist secret
    one_try.get_secret("audited")
    with sqlite3.connect(emulator.state_dir / "kvlab.db") as db:
        last = db.execute("SELECT record FROM audit ORDER BY seq DESC LIMIT 2").fetchall()
    assert ['"operationName":"SecretGet"' in last[0][0], '"operationName":"SecretSet"' in last[1][0]] == [True, True]


def test_a_busy_database_gets_a_timely_answer_not_a_frozen_server(emulator, one_try):
    """Defect 3: SQLite calls ran on the event loop, so another process holding the write lock froze every
    client, health included, for as long as it held it."""
    one_try.set_secret("busy", "plainly-fake-value")  # pragma: allowlist secret
    db = sqlite3.connect(emulator.state_dir / "kvlab.db", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # another process's write, held
    outcome: dict = {}

    def read() -> None:
        try:
            outcome["value"] = one_try.get_secret("busy").value
        except HttpResponseError as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=read)
    try:
        reader.start()
        time.sleep(0.2)  # the read is waiting for the lock now
        status = control.status(emulator.state_dir)  # its health probe gives up after 1 s
        assert status["running"] and status["answering"], status
        reader.join(timeout=20)
        assert not reader.is_alive()
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert outcome["error"].status_code == 503, outcome
    assert "busy" in outcome["error"].message and "Nothing was changed" in outcome["error"].message
    assert one_try.get_secret("busy").value == "plainly-fake-value"  # pragma: allowlist secret


def test_health_names_no_process_or_directory(emulator):
    """Any local user may ask for health: the answer says the emulator answers, not where its keys live."""
    answer = control.health(emulator.state_dir, emulator.info["port"])
    assert answer is not None and answer["status"] == "ok"
    assert not {"pid", "stateDir"} & set(answer)
    assert str(emulator.state_dir) not in str(answer)


def test_no_value_leaves_without_its_audit_record(emulator, one_try):
    """A read's audit record is its only write: if it cannot be written, the value is not given out."""
    one_try.set_secret("read-audited", "plainly-fake-value")  # pragma: allowlist secret
    with failing_inserts(emulator, "audit"), pytest.raises(HttpResponseError) as refused:
        one_try.get_secret("read-audited")
    assert refused.value.status_code == 500 and "plainly-fake-value" not in str(refused.value.response.text())
    assert one_try.get_secret("read-audited").value == "plainly-fake-value"  # pragma: allowlist secret
