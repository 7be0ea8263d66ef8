"""The state directory is its owner's alone (issue #14, defect 1).

It holds secret values, the token signing key, the identity header and the
backup key. Made with a permissive umask, or left 0755 by an older kvlab, it
must end up 0700 with every file that holds state, keys or logs 0600; and
another local user must not get as far as reading the identity header.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from kvlab.paths import PUBLIC  # certificates: public by nature (they sit inside the private folder)

from runners import free_port
from shells import KVLAB

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX modes")


def modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}


@pytest.fixture
def loose_state():
    """A state directory as an older kvlab and a 022 umask left it: 0755, a database anyone could read, in a
    folder anyone may pass through (pytest's own tmp_path is 0700, which would hide the defect)."""
    parent = Path(tempfile.mkdtemp(prefix="kvlab-perm-"))
    parent.chmod(0o755)
    state = parent / "state"
    env = {**os.environ, "KVLAB_STATE_DIR": str(state), "KVLAB_PORT": str(free_port())}

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["sh", "-c", 'umask 022; exec "$@"', "sh", KVLAB, *args], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done

    run("emulator", "start")  # a state directory with a database and a log, as an older kvlab left them:
    run("emulator", "stop")
    for path in [state, *state.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    run("emulator", "start")
    yield state, run
    run("emulator", "stop")
    shutil.rmtree(parent)


def test_the_state_directory_and_what_holds_state_keys_or_logs_are_the_owners_alone(loose_state):
    state, run = loose_state
    run("vault", "create", "--name", "kv-private")  # a write: the database grows its -wal
    run("env", "--shell", "json")  # the trust bundle, the Azure CLI's folder
    seen = modes(state)
    assert seen["."] == 0o700
    assert {"kvlab.db", "emulator.log", "emulator.json", "ca-key.pem", "azure-cli"} <= set(seen)
    loose = {name: oct(mode) for name, mode in seen.items() if name != "." and name.split("/")[-1] not in PUBLIC
             and mode & 0o077}
    assert loose == {}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to act as another user")
def test_another_local_user_cannot_read_the_identity_header(loose_state):
    """The header (with the signing key and every value) is in kvlab.db: `nobody` cannot open it."""
    state, _ = loose_state
    for name in ("kvlab.db", "kvlab.db-wal", "emulator.json", "ca-key.pem"):
        if not (state / name).exists():
            continue
        done = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(state / name)], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode != 0 and "Permission denied" in done.stderr
