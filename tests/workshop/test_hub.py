"""A class on one machine: JupyterHub (PyPI) with its proxy (npm), deploy/jupyterhub/jupyterhub_config.py, and
N learners spawned at once, each running lab 00 in a kernel of their own server, through the hub's proxy as a
browser would. Each learner's server pulled the workbook (nbgitpuller), runs its own emulator, and sends its
checks to the class dashboard the hub runs as a service; no learner sees another's vaults or server.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

import node_packages
from notebook_kernel import code_cells
from runners import free_port

ROOT = Path(__file__).resolve().parents[2]
HUB_CONFIG = ROOT / "deploy" / "jupyterhub" / "jupyterhub_config.py"
LEARNERS = ("ada", "grace", "lin")
CODE = "test-class-2026"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    where = tmp_path_factory.mktemp("hub")
    if subprocess.run(["git", "rev-parse", "--verify", "-q", "main"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("the workbook is pulled from this repository's branch main, which this checkout lacks")
    token = secrets.token_hex(16)
    (where / "test_config.py").write_text(f"""
load_subconfig({str(HUB_CONFIG)!r})
c.JupyterHub.authenticator_class = "dummy"  # the class password is not what this tests
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {token!r}}})
c.JupyterHub.load_roles = [{{"name": "admin", "services": ["test-admin"]}}]
""")
    port = free_port()
    env = {**os.environ, "PATH": f"{node_packages.installed() / 'node_modules' / '.bin'}:{Path(sys.executable).parent}:"
           f"{os.environ['PATH']}", "KVLAB_HUB_URL": f"http://127.0.0.1:{port}", "KVLAB_HUB_HOMES": str(where / "homes"),
           "KVLAB_WORKSHOP_CODE": CODE, "KVLAB_WORKBOOK": str(ROOT)}
    for name in [n for n in env if n.startswith(("KVLAB_STATE_DIR", "KVLAB_PORT", "JUPYTER"))]:
        del env[name]  # each learner's comes from the hub, not from the test run
    log = open(where / "hub.log", "w")
    process = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(where / "test_config.py"),
                                f"--JupyterHub.hub_port={free_port()}", f"--ConfigurableHTTPProxy.api_url="
                                f"http://127.0.0.1:{free_port()}"], cwd=where, env=env, stdout=log, stderr=log)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"token {token}"}, timeout=60)
    deadline = time.monotonic() + 120
    while True:
        try:
            if api.get("/hub/api/").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (where / "hub.log").read_text()[-3000:]
        time.sleep(0.2)
    try:
        yield {"api": api, "where": where, "url": f"http://127.0.0.1:{port}"}
    finally:
        for name in LEARNERS:
            api.delete(f"/hub/api/users/{name}/server")
        process.terminate()
        process.wait(60)
        log.close()


def spawn_all(api: httpx.Client) -> dict[str, float]:
    """Create the learners, start all their servers at once; each one's seconds from the request to ready."""
    assert api.post("/hub/api/users", json={"usernames": list(LEARNERS)}).status_code in (201, 409)
    began = time.monotonic()
    for name in LEARNERS:
        assert api.post(f"/hub/api/users/{name}/server").status_code in (201, 202), name
    ready: dict[str, float] = {}
    while len(ready) < len(LEARNERS):
        assert time.monotonic() - began < 240, ready
        for name in set(LEARNERS) - set(ready):
            server = api.get(f"/hub/api/users/{name}").json()["servers"].get("", {})
            if server.get("ready"):
                ready[name] = time.monotonic() - began
        time.sleep(0.2)
    return ready


async def run_cells(base: str, user: str, token: str, cells: list[str]) -> str:
    """``cells`` in a new kernel of ``user``'s server, through the hub's proxy (REST, then the kernel's websocket,
    as JupyterLab does); what the last one printed."""
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=f"{base}/user/{user}/", headers=headers, timeout=60) as http:
        kernel = (await http.post("api/kernels", json={"name": "python3"})).json()
    url = f"ws{base.removeprefix('http')}/user/{user}/api/kernels/{kernel['id']}/channels"
    socket = await websocket_connect(HTTPRequest(url, headers=headers))
    session, printed = uuid.uuid4().hex, []
    try:
        for source in cells:
            msg_id, printed = uuid.uuid4().hex, []
            socket.write_message(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": user, "session": session,
                           "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": source, "silent": False, "store_history": True, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            while True:
                message = json.loads(await asyncio.wait_for(socket.read_message(), 120))
                if message["parent_header"].get("msg_id") != msg_id:
                    continue
                if message["msg_type"] == "stream":
                    printed.append(message["content"]["text"])
                if message["msg_type"] == "execute_reply":
                    content = message["content"]
                    assert content["status"] == "ok", (user, content.get("ename"), content.get("evalue"))
                    break
    finally:
        socket.close()
    return "".join(printed)


def test_a_class_on_one_hub(hub):
    api, base = hub["api"], hub["url"]
    started = spawn_all(api)
    homes = hub["where"] / "homes"
    for name in LEARNERS:  # the workbook was pulled into each home
        assert (homes / name / "kvlab-workbook" / "notebooks" / "00-start-here.ipynb").exists()
    token = api.headers["Authorization"].split()[1]
    lesson = code_cells("00-start-here.ipynb")
    # lab 00 in every learner's server at once, then each learner's emulator port and a secret of their own
    mark = "\n".join(["import kvlab", "print(kvlab.connect().info['port'])",
                      "client.set_secret('mine', 'plainly-fake-' + __import__('getpass').getuser())  # pragma: allowlist secret",
                      "print(sorted(p.name for p in client.list_properties_of_secrets()))"])
    with ThreadPoolExecutor(len(LEARNERS)) as pool:
        printed = dict(zip(LEARNERS, pool.map(lambda name: asyncio.run(run_cells(base, name, token, [*lesson, mark])),
                                              LEARNERS)))
    ids = {name: api.get(f"/hub/api/users/{name}").json() for name in LEARNERS}
    ports = {name: int(printed[name].splitlines()[0]) for name in LEARNERS}
    assert len(set(ports.values())) == len(LEARNERS)  # an emulator each
    assert all((homes / name / ".local" / "share" / "kvlab" / "progress.json").exists() for name in LEARNERS)
    assert all(printed[name].splitlines()[1] == "['first-secret', 'mine']" for name in LEARNERS)

    # the dashboard, through the hub's proxy: every learner's three checks, under their hub name
    key = json.loads((hub["where"] / "kvlab-workshop" / "workshop.json").read_text())["key"]
    deadline, rows = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        rows = httpx.get(f"{base}/services/kvlab-workshop/instructor/export.json",
                         headers={"Authorization": f"Bearer {key}"}).json()
        if len(rows) == 3 * len(LEARNERS):
            break
        time.sleep(0.2)
    assert {(r["learner"], r["exercise"], r["best"]) for r in rows} == {
        (name, ex, "correct") for name in LEARNERS for ex in ("ex1", "ex2", "ex3")}

    # one learner's token opens their own server, not another's
    ada = api.post("/hub/api/users/ada/tokens", json={"note": "test"}).json()["token"]
    own = httpx.get(f"{base}/user/ada/api/status", headers={"Authorization": f"token {ada}"})
    other = httpx.get(f"{base}/user/grace/api/status", headers={"Authorization": f"token {ada}"})
    assert (own.status_code, other.status_code) == (200, 403)
    print(json.dumps({"start_up_s": started, "ids": {n: ids[n]["name"] for n in ids}}))
