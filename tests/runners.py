"""The doors the tests share: the `kvlab` command as a user runs it, and a vault the learner can use.

Test modules import these from here (never from one another, nor from conftest).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from kvlab.connection import ENVIRONMENT as CONNECT_ENVIRONMENT
from kvlab.emulator import arm
from kvlab.paths import (
    environment_kept,
    free_port,  # noqa: F401  (tests import it from here)
)

KVLAB = shutil.which("kvlab", path=str(Path(sys.executable).parent)) or "kvlab"


def kvlab(*args: str, state: Path | str | None = None, env: dict | None = None, check: bool = True,
          quiet: bool = False, cwd: Path | str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`kvlab ARGS` in a new process, as in a terminal: this process's environment (or ``env``), the state
    directory ``state`` if given, tables wide enough that no cell wraps. ``check``: it must succeed;
    ``quiet``: and say nothing on stderr."""
    env = {**(os.environ if env is None else env), "COLUMNS": "250"}
    if state is not None:
        env["KVLAB_STATE_DIR"] = str(state)
    result = subprocess.run([KVLAB, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check:
        assert result.returncode == 0, result.stderr
    if quiet:
        assert result.stderr == ""
    return result


def as_json(result: subprocess.CompletedProcess):
    return json.loads(result.stdout)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def officer_vault(lab, prefix: str = "t") -> str:
    """A new vault in which the learner holds Key Vault Secrets Officer (all secret operations).

    A new vault grants nobody data access, as in Azure, so every test vault gets
    this assignment explicitly.
    """
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    url = lab.create_vault(name)["vaultUri"]
    lab.assign_role("Key Vault Secrets Officer", "learner", name)
    return url


def connection_kept():
    """The body may `kvlab.connect()` to another emulator: this process's own connection (every variable connect()
    sets) is put back after, so a later test's clients, and the kernels it starts, reach the session's emulator."""
    return environment_kept(CONNECT_ENVIRONMENT)


# -- Resource Manager, as `az` calls it ----------------------------------------------------------------

API = {"api-version": "2024-11-01"}


def token(resource: str, client_id: str | None = None) -> str:
    params = {"api-version": "2019-08-01", "resource": resource, **({"client_id": client_id} if client_id else {})}
    answer = requests.get(os.environ["IDENTITY_ENDPOINT"], params=params,
                          headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


class Arm:
    """Raw calls to the emulator's Resource Manager, signed in as the learner (or ``client_id``'s identity)."""

    def __init__(self, lab, client_id: str | None = None):
        self.base = f"https://{arm.HOST}:{lab.port}"
        self.headers = {"Authorization": f"Bearer {token(arm.AUDIENCE, client_id)}"}
        self.subscription = requests.get(f"{self.base}/subscriptions", params=API, headers=self.headers,
                                         timeout=10).json()["value"]
        self.sub = f"/subscriptions/{self.subscription[0]['subscriptionId']}" if self.subscription else None

    def __call__(self, method: str, path: str, body: dict | None = None, params: dict | None = None,
                 headers: dict | None = None) -> requests.Response:
        return requests.request(method, self.base + path, params=API if params is None else params, json=body,
                                headers=self.headers if headers is None else headers, timeout=10)
