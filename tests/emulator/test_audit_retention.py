"""The audit log does not grow without bound (issue #14, defect 6): the newest records are kept, as many as
`kvlab audit retention` says, and never one after the latest lesson started, which its checks read."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import requests

from kvlab.admin import Admin
from kvlab.emulator.store import TRIM_EVERY

from shells import KVLAB, Shell


def audit_rows(state) -> tuple[int, int, int]:
    with sqlite3.connect(state / "kvlab.db") as db:
        return db.execute("SELECT COUNT(*), MIN(seq), MAX(seq) FROM audit").fetchone()


def knock(shell: Shell, times: int) -> None:
    """Requests with no token, as a flood would send them: each one is audited (a 401)."""
    with requests.Session() as session:
        for _ in range(times):
            answer = session.get(f"https://kvflood.localhost:{shell.port}/secrets", params={"api-version": "7.6"},
                                 verify=str(shell.state / "ca.pem"), timeout=10,
                                 proxies={"https": shell.env["HTTPS_PROXY"]})
            assert answer.status_code == 401


def test_the_audit_log_keeps_the_newest_records_as_configured(tmp_path):
    shell = Shell(tmp_path / "state")
    try:
        shell.kvlab("vault", "create", "--name", "kvflood")
        kept = json.loads(shell.kvlab("audit", "retention", "--records", "1000", "-o", "json").stdout)
        assert kept == {"records": 1000, "days": 0}
        knock(shell, 2 * TRIM_EVERY + 50)
        count, first, last = audit_rows(shell.state)
        assert last >= 2 * TRIM_EVERY + 50
        assert count < 1000 + TRIM_EVERY + 50 and first > 1  # trimmed, at the last multiple of TRIM_EVERY
        assert last - first + 1 == count  # the newest, without gaps
        refused = subprocess.run([KVLAB, "audit", "retention", "--records", "5"], env=shell.base, capture_output=True,
                                 text=True, timeout=60)
        assert refused.returncode == 1 and refused.stderr == "error: --records 5: keep at least 1000 records\n"
    finally:
        shell.kvlab("emulator", "stop")


def test_nothing_after_the_latest_lesson_start_is_dropped(tmp_path):
    shell = Shell(tmp_path / "state")
    try:
        shell.kvlab("vault", "create", "--name", "kvflood")
        shell.kvlab("audit", "retention", "--records", "1000")
        knock(shell, 100)
        started, _ = Admin(shell.state).lesson_positions()  # what Lesson does as it starts
        knock(shell, 2 * TRIM_EVERY)
        count, first, last = audit_rows(shell.state)
        assert first <= started + 1 and count >= last - started  # over the limit, and every record kept
        assert first > 1  # what came before the lesson did go
    finally:
        shell.kvlab("emulator", "stop")
