"""Binder for one learner: the files repo2docker reads, as far as this machine can go without Docker.

repo2docker's own detection picks the conda build pack from environment.yml, its Dockerfile installs this
package after the repository is copied, runs postBuild and enters through `start`; `start` brings the emulator up
and hands over to the command it is given; postBuild's JupyterLab settings open the first lesson and give
terminals the emulator's environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runners import as_json, free_port, kvlab

ROOT = Path(__file__).resolve().parents[1]
BIN = str(Path(sys.executable).parent)


def tracked(tmp_path: Path) -> Path:
    """The repository as Binder clones it: the tracked files only."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    clone = tmp_path / "clone"
    for name in files.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_bytes((ROOT / name).read_bytes())
            (clone / name).chmod((ROOT / name).stat().st_mode)
    return clone


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # repo2docker's own logging library
def test_repo2docker_builds_it_with_the_conda_pack_postbuild_and_start(tmp_path, monkeypatch):
    from repo2docker.app import Repo2Docker
    from repo2docker.buildpacks import CondaBuildPack

    monkeypatch.chdir(tracked(tmp_path))
    app = Repo2Docker()
    picked = next(pack for pack in (BP(base_image=app.base_image) for BP in app.buildpacks) if pack.detect())
    assert isinstance(picked, CondaBuildPack)
    picked.platform = "linux/amd64"
    dockerfile = picked.render()
    copied = dockerfile.index("COPY --chown=1000:1000 src/ ${REPO_DIR}/")
    assert dockerfile.index('--file "environment.yml"') > copied  # `-e .` needs the repository: installed after it
    assert dockerfile.index("RUN ./postBuild") > dockerfile.index('--file "environment.yml"')
    assert 'ENV R2D_ENTRYPOINT="${REPO_DIR}/start"' in dockerfile


@pytest.fixture
def env(tmp_path):
    state = tmp_path / "state"
    yield {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "KVLAB_STATE_DIR": str(state),
           "KVLAB_PORT": str(free_port()), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    kvlab("emulator", "stop", state=state, check=False)


def test_start_brings_up_the_emulator_then_becomes_the_command_and_ends_with_it(env):
    seen = subprocess.run([str(ROOT / "start"), "kvlab", "emulator", "status"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert seen.returncode == 0, seen.stderr
    status = as_json(seen)
    assert status["running"] and status["answering"] and status["port"] == int(env["KVLAB_PORT"])
    deadline = time.monotonic() + 30  # ... and once the command has ended, the emulator stops by itself
    while as_json(kvlab("emulator", "status", env=env))["running"]:
        assert time.monotonic() < deadline, "the emulator outlived the command it was started for"
        time.sleep(0.1)
    handed = subprocess.run([str(ROOT / "start"), "bash", "-c", 'echo "$0 $1"; exit 7', "given", "args"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert (handed.returncode, handed.stdout) == (7, "given args\n")  # its arguments and its exit status, untouched


def test_start_goes_on_without_the_emulator_in_one_line(env, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    seen = subprocess.run([str(ROOT / "start"), "echo", "lab"], env={**env, "KVLAB_STATE_DIR": str(blocked)},
                          capture_output=True, text=True, timeout=120)
    assert (seen.returncode, seen.stdout) == (0, "lab\n")
    assert "Traceback" not in seen.stderr and seen.stderr.strip().endswith("the first lesson will start it")


def test_postbuild_opens_the_first_lesson_and_gives_terminals_the_emulators_environment(env, tmp_path):
    app_dir = tmp_path / "lab-app"  # JupyterLab's application directory, where the image's JupyterLab has it
    done = subprocess.run([str(ROOT / "postBuild")], env={**env, "JUPYTERLAB_DIR": str(app_dir)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    overrides = json.loads((app_dir / "settings" / "overrides.d" / "kvlab.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"  # offline: no news
    config = json.loads((Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json").read_text())["ServerApp"]
    sys.path.insert(0, str(ROOT))
    try:
        import dev
    finally:
        sys.path.remove(str(ROOT))
    assert config["default_url"] == f"/lab/tree/{dev.START}" and (ROOT / dev.START).exists()
    assert config["terminado_settings"]["shell_command"] == ["python", "-m", "kvlab.terminal"]
