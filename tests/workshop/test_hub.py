"""A class on one machine: JupyterHub with deploy/jupyterhub/jupyterhub_config.py and two learners spawned at
once, each running lab 00 in a kernel of their own server, through the hub's proxy as a browser would (see
tests/hub_class.py). Each learner's server pulled the workbook (nbgitpuller), runs its own emulator, and sends its
checks to the class dashboard the hub runs as a service; no learner reaches another's vaults or server.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import httpx
import pytest

import node_packages
from hub_class import ROOT, Hub
from notebook_kernel import code_cells

LEARNERS = ["ada", "grace"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    if subprocess.run(["git", "rev-parse", "--verify", "-q", "main"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("the workbook is pulled from this repository's branch main, which this checkout lacks")
    started = Hub(tmp_path_factory.mktemp("hub"), node_packages.installed() / "node_modules" / ".bin")
    yield started
    started.stop()


def test_a_class_on_one_hub(hub):
    """Two learners at once: lab 00 each, apart from each other, all on the dashboard; a server that stops takes
    its emulator with it."""
    hub.spawn_all(LEARNERS)
    homes = hub.where / "homes"
    for name in LEARNERS:  # the workbook was pulled into each home
        assert (homes / name / "kvlab-workbook" / "notebooks" / "00-start-here.ipynb").exists()
    # lab 00 in every learner's server at once; then a secret of their own, in a vault named as everyone's is:
    # had two learners one emulator, one's would overwrite the other's
    mark = "\n".join(["import os, time, kvlab", "print(kvlab.connect().info['port'])",
                      "client.set_secret('mine', 'plainly-fake-' + os.environ['JUPYTERHUB_USER'])",
                      "time.sleep(1)  # the others have written theirs by now",
                      "print(client.get_secret('mine').value == 'plainly-fake-' + os.environ['JUPYTERHUB_USER'])"])
    cells = [*code_cells("00-start-here.ipynb"), mark]
    with ThreadPoolExecutor(len(LEARNERS)) as pool:
        printed = dict(zip(LEARNERS, pool.map(lambda name: hub.run_cells(name, cells), LEARNERS)))
    assert len({printed[name].splitlines()[0] for name in LEARNERS}) == len(LEARNERS)  # an emulator each
    assert [printed[name].splitlines()[1] for name in LEARNERS] == ["True"] * len(LEARNERS)
    assert all((homes / name / ".local" / "share" / "kvlab" / "progress.json").exists() for name in LEARNERS)

    # the dashboard, through the hub's proxy: every learner's three checks, under their hub name
    key = json.loads((hub.where / "kvlab-workshop" / "workshop.json").read_text())["key"]
    deadline, rows = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        rows = httpx.get(f"{hub.url}/services/kvlab-workshop/instructor/export.json",
                         headers={"Authorization": f"Bearer {key}"}).json()
        if len(rows) == 3 * len(LEARNERS):
            break
        time.sleep(0.2)
    assert {(r["learner"], r["exercise"], r["best"]) for r in rows} == {
        (name, ex, "correct") for name in LEARNERS for ex in ("ex1", "ex2", "ex3")}

    # the instructor page signs in through the hub: for the instructor, not for a learner
    with closing(hub.browser("instructor")) as browser:
        page = browser.get("/services/kvlab-workshop/instructor")
        assert page.status_code == 200 and "/hub/api/oauth2/authorize" in " ".join(str(r.url) for r in page.history)
        assert "<title>" in page.text and browser.get("/services/kvlab-workshop/instructor/export.json").json() == rows
    with closing(hub.browser("ada")) as browser:
        page = browser.get("/services/kvlab-workshop/instructor")
        assert page.status_code == 403 and "ada is signed in to the hub but is not this class's instructor" in page.text
        assert browser.get("/services/kvlab-workshop/instructor/export.json").status_code == 401

    # a learner is who their hub token says, and nothing else joins: no token, a token the hub does not know, a
    # token of ada's without the service's scope, the class code
    result = {"id": "hubtest1", "lesson": "00", "exercise": "ex9", "status": "incorrect", "message": "m",
              "time": "2026-12-03T10:00:00+00:00"}

    def post(path, token, body):
        return httpx.post(f"{hub.url}/services/kvlab-workshop/api/{path}", json=body,
                          headers={"Authorization": f"token {token}"} if token else {})

    narrow = hub.api.post("/hub/api/users/ada/tokens", json={"scopes": ["read:users:name!user"]}).json()["token"]
    assert [post("results", token, {"results": [result]}).status_code
            for token in (None, "not-a-hub-token", narrow)] == [401, 401, 403]
    assert post("join", None, {"code": "anything", "name": "mallory"}).status_code == 403
    # a hub sign-in name is the learner's name, however long (an e-mail address, from an organisation's login)
    long_name = "margaret.hamilton-apollo-guidance@example.org"
    assert hub.api.post("/hub/api/users", json={"usernames": [long_name]}).status_code == 201
    theirs = hub.api.post(f"/hub/api/users/{long_name}/tokens", json={}).json()["token"]
    assert post("results", theirs, {"results": [result]}).status_code == 200
    assert long_name in {r["learner"] for r in httpx.get(f"{hub.url}/services/kvlab-workshop/instructor/export.json",
                                                           headers={"Authorization": f"Bearer {key}"}).json()}

    # one learner's token opens their own server, not another's
    ada = hub.api.post("/hub/api/users/ada/tokens", json={"note": "test"}).json()["token"]
    own = httpx.get(f"{hub.url}/user/ada/api/status", headers={"Authorization": f"token {ada}"})
    other = httpx.get(f"{hub.url}/user/grace/api/status", headers={"Authorization": f"token {ada}"})
    assert (own.status_code, other.status_code) == (200, 403)

    # a stopped (or culled) server leaves no emulator behind: start's --stop-with
    pid = json.loads((homes / "ada" / ".local" / "share" / "kvlab" / "emulator.json").read_text())["pid"]
    assert hub.api.delete("/hub/api/users/ada/server").status_code in (202, 204)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "ada's emulator outlived her server"
        time.sleep(0.2)
