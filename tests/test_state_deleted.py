"""The state files deleted under a running emulator (issue #14, defect 12): the emulator stops rather than go on
serving a database nobody else can see, so the CLI and the server never disagree about what exists."""

from __future__ import annotations

import json
import os
import time

from shells import Shell


def gone(pid: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_deleting_the_database_under_the_emulator_stops_it_and_a_new_start_serves_the_new_state(tmp_path):
    shell = Shell(tmp_path / "state")
    try:
        shell.kvlab("vault", "create", "--name", "kvbefore")
        pid = json.loads(shell.kvlab("emulator", "status", "-o", "json").stdout)["pid"]
        for name in ("kvlab.db", "kvlab.db-wal", "kvlab.db-shm"):
            (shell.state / name).unlink(missing_ok=True)
        assert gone(pid), "the emulator went on serving a deleted database"
        assert "deleted or replaced" in (shell.state / "emulator.log").read_text()
        assert json.loads(shell.kvlab("emulator", "status", "-o", "json").stdout)["running"] is False
        shell.kvlab("emulator", "start", "--port", str(shell.port))
        shell.kvlab("vault", "create", "--name", "kvafter")
        shell.prepare()  # new state, new keys
        listed = shell.python("import os\nfrom azure.identity import DefaultAzureCredential\n"
                              "from azure.keyvault.secrets import SecretClient\n"
                              f"c = SecretClient('https://kvafter.localhost:{shell.port}/', DefaultAzureCredential())\n"
                              "print([p.name for p in c.list_properties_of_secrets()])")
        # a 403 from the vault the CLI just made, no role being held yet: the server sees the new state too
        assert listed.returncode != 0 and "Forbidden" in listed.stderr, listed.stderr[-800:]
        assert "VaultNotFound" not in listed.stderr
        names = [v["name"] for v in json.loads(shell.kvlab("vault", "list", "-o", "json").stdout)]
        assert names == ["kvafter"]  # the new state only, as the server now serves it
    finally:
        shell.kvlab("emulator", "stop")


def test_an_emulator_started_again_on_its_state_shares_it_with_the_processes_that_come_and_go(tmp_path):
    """Started again on an existing state directory (a learner's second day), the emulator once left the connection
    of its start-up integrity check open: the next process to close its own connection then deleted the database's
    -wal and -shm under the running server, which went on writing into deleted files that no other process saw
    (and the state was damaged at the next start). The server and the CLI must keep seeing one state."""
    shell = Shell(tmp_path / "state")
    try:
        shell.kvlab("vault", "create", "--name", "kvfirst")
        shell.kvlab("emulator", "stop")
        shell.kvlab("emulator", "start", "--port", str(shell.port))
        shell.prepare()  # its proxy's port may have changed (CI once found the port after the emulator's taken)
        pid = json.loads(shell.kvlab("emulator", "status", "-o", "json").stdout)["pid"]
        for _ in range(2):  # other processes open the database and close it again
            shell.kvlab("vault", "list")
        shell.kvlab("vault", "create", "--name", "kvsecond")
        listed = shell.python("from azure.identity import DefaultAzureCredential\n"
                              "from azure.keyvault.secrets import SecretClient\n"
                              f"c = SecretClient('https://kvsecond.localhost:{shell.port}/', DefaultAzureCredential())\n"
                              "print([p.name for p in c.list_properties_of_secrets()])")
        # the server sees the vault the CLI made (a 403: no role held yet), and the CLI sees the server's record of it
        assert listed.returncode != 0 and "Forbidden" in listed.stderr and "VaultNotFound" not in listed.stderr
        audit = json.loads(shell.kvlab("audit", "--vault", "kvsecond", "-o", "json").stdout)
        assert {r["resultType"] for r in audit if r["operationName"] == "SecretList"} == {"Failure"}, audit
        deleted = [os.readlink(f) for f in (f"/proc/{pid}/fd/{n}" for n in os.listdir(f"/proc/{pid}/fd"))
                   if os.path.exists(f) and os.readlink(f).endswith(" (deleted)")]
        assert deleted == []
    finally:
        shell.kvlab("emulator", "stop")


def test_a_process_opens_the_state_once_and_follows_it_when_it_is_replaced(tmp_path, monkeypatch):
    """`Admin` keeps a state directory's database open for the process (issue #14: every call opened a whole
    State, 770 times in lesson 06's 180-day run), and opens it afresh when the file was deleted or replaced:
    never reading or writing a database nobody else sees."""
    from kvlab import admin

    opened = []

    class Counted(admin.State):
        def __init__(self, *args, **kwargs):
            opened.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(admin, "State", Counted)
    shell = Shell(tmp_path / "state")
    try:
        shell.kvlab("vault", "create", "--name", "kvbefore")
        management = admin.Admin(shell.state)
        for _ in range(20):
            assert [v["name"] for v in management.list_vaults()] == ["kvbefore"]
        assert len(opened) == 1
        shell.kvlab("emulator", "stop")
        for name in ("kvlab.db", "kvlab.db-wal", "kvlab.db-shm"):
            (shell.state / name).unlink(missing_ok=True)
        shell.kvlab("emulator", "start", "--port", str(shell.port))
        shell.kvlab("vault", "create", "--name", "kvafter")
        assert [v["name"] for v in management.list_vaults()] == ["kvafter"]
        assert len(opened) == 2
    finally:
        shell.kvlab("emulator", "stop")
