"""A class on one machine, for tests/workshop/test_hub.py and benchmarks/hub.py: JupyterHub (PyPI) with its proxy
(npm) on deploy/jupyterhub/jupyterhub_config.py, learners spawned through the hub's REST API, and code run in a
learner's kernel through the hub's proxy (REST, then the kernel's websocket), as JupyterLab in a browser does.
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
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from kvlab.paths import free_port

ROOT = Path(__file__).resolve().parents[1]
HUB_CONFIG = ROOT / "deploy" / "jupyterhub" / "jupyterhub_config.py"


class Hub:
    """`jupyterhub -f` the workshop's config (plus a dummy login and an admin service for the caller), in ``where``;
    learners' homes in where/homes, the dashboard's class in where/kvlab-workshop."""

    def __init__(self, where: Path, proxy_bin: Path):
        self.where = where
        token = secrets.token_hex(16)
        (where / "test_config.py").write_text(f"""
load_subconfig({str(HUB_CONFIG)!r})
c.JupyterHub.authenticator_class = "dummy"  # the class password is not what this tries
c.JupyterHub.services.append({{"name": "caller", "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{"name": "admin", "services": ["caller"]}})
""")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PATH": f"{proxy_bin}:{Path(sys.executable).parent}:{os.environ['PATH']}",
               "KVLAB_HUB_URL": self.url, "KVLAB_HUB_HOMES": str(where / "homes"),
               "KVLAB_WORKBOOK": str(ROOT)}
        for name in [n for n in env if n.startswith(("KVLAB_STATE_DIR", "KVLAB_PORT", "JUPYTER"))]:
            del env[name]  # each learner's come from the hub
        self.log = open(where / "hub.log", "w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(where / "test_config.py"),
             f"--JupyterHub.hub_port={free_port()}", f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}"],
            cwd=where, env=env, stdout=self.log, stderr=self.log)
        self.token = token
        self.api = httpx.Client(base_url=self.url, headers={"Authorization": f"token {token}"}, timeout=60)
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.api.get("/hub/api/").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError((where / "hub.log").read_text()[-3000:])
            time.sleep(0.2)
        self.learners: list[str] = []

    def spawn_all(self, names: list[str]) -> dict[str, float]:
        """Create the learners and start all their servers at once; each one's seconds from the request to ready."""
        assert self.api.post("/hub/api/users", json={"usernames": names}).status_code in (201, 409)
        self.learners += names
        began = time.monotonic()
        with ThreadPoolExecutor(len(names)) as pool:  # at once: a spawn request waits up to 10 s for its server
            asked = list(pool.map(lambda name: self.api.post(f"/hub/api/users/{name}/server").status_code, names))
        assert all(status in (201, 202) for status in asked), dict(zip(names, asked))
        ready: dict[str, float] = {}
        while len(ready) < len(names):
            assert time.monotonic() - began < 300, (ready, (self.where / "hub.log").read_text()[-3000:])
            for name in set(names) - set(ready):
                server = self.api.get(f"/hub/api/users/{name}").json()["servers"].get("", {})
                if server.get("ready"):
                    ready[name] = time.monotonic() - began
            time.sleep(0.1)
        return ready

    def browser(self, name: str) -> httpx.Client:
        """A browser signed in to the hub as ``name`` (the test's login takes any password), following redirects."""
        client = httpx.Client(base_url=self.url, follow_redirects=True, timeout=60)
        client.get("/hub/login")
        signed_in = client.post("/hub/login", data={"username": name, "password": "any",  # pragma: allowlist secret
                                                    "_xsrf": client.cookies["_xsrf"]})
        assert signed_in.status_code == 200 and "/hub/login" not in str(signed_in.url), signed_in.text[-500:]
        return client

    def run_cells(self, user: str, cells: list[str]) -> str:
        """``cells`` in a new kernel of ``user``'s server; what the last one printed."""
        return asyncio.run(_run_cells(self.url, user, self.token, cells))

    def stop(self) -> None:
        for name in self.learners:
            self.api.delete(f"/hub/api/users/{name}/server")
        self.process.terminate()
        self.process.wait(60)
        self.log.close()


async def _run_cells(base: str, user: str, token: str, cells: list[str]) -> str:
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
