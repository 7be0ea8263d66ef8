"""`python3 dev.py lab` as a learner meets it: the real JupyterLab, its file browser and its links.

The server is started exactly as the README says (through dev.py), on a free
port with its own emulator state, and asked what a learner's browser would ask.
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest

from kvlab.emulator import control

from kvlab_pytest import free_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "kvlab-test-token"
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|href=[\"']([^\"']+)[\"']")
FOLDERS = ("notebooks", "labs", "solutions")


class Lab:
    """A running `dev.py lab`: its process, port and what it told the browser to open."""

    def __init__(self, state: Path, tmp: Path):
        self.port = free_port()
        self.state = state
        self.opened = tmp / "browser-opened"
        recorder = tmp / "browser.py"
        recorder.write_text(f"import sys, pathlib\npathlib.Path({str(self.opened)!r}).write_text(sys.argv[1])\n")
        env = {**os.environ, "KVLAB_STATE_DIR": str(state), "KVLAB_PORT": str(free_port()),
               "BROWSER": f"{sys.executable} {recorder} %s", "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "dev.py"), "lab", f"--port={self.port}", f"--IdentityProvider.token={TOKEN}",
             "--ServerApp.port_retries=0"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while self.get("api/status") is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"JupyterLab did not start:\n{self.output}")
            time.sleep(0.2)

    def get(self, path: str) -> dict | None:
        """A JSON answer of the server, or None when it does not answer 200."""
        url = f"http://127.0.0.1:{self.port}/{path}{'&' if '?' in path else '?'}token={TOKEN}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return json.loads(answer.read())
        except (urllib.error.URLError, ConnectionError):
            return None

    def post(self, path: str) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/{path}?token={TOKEN}", data=b"{}",
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def terminal(self, command: str, until: str, timeout: float = 90) -> str:
        """Open a JupyterLab terminal as the browser does, type ``command``, and return what it shows
        until the pattern ``until`` matches."""
        from tornado.websocket import websocket_connect

        name = self.post("api/terminals")["name"]

        async def session() -> str:
            url = f"ws://127.0.0.1:{self.port}/terminals/websocket/{name}?token={TOKEN}"
            socket = await websocket_connect(url)
            shown = ""
            try:
                await socket.write_message(json.dumps(["stdin", command + "\r"]))
                while not re.search(until, shown):
                    message = await asyncio.wait_for(socket.read_message(), timeout)
                    if message is None:
                        break
                    kind, *payload = json.loads(message)
                    if kind == "stdout":
                        shown += payload[0]
            finally:
                socket.close()
            return shown

        return asyncio.run(session())

    def contents(self, path: str) -> dict | None:
        return self.get(f"api/contents/{urllib.parse.quote(path)}?content={1 if not path.endswith('.ipynb') else 0}")

    def stop(self) -> int:
        """End JupyterLab as a terminal's closing or `kill` does (SIGTERM to dev.py) and wait for dev.py."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise
        self.output = self.process.stdout.read()
        return code

    output = ""


def notebook_links() -> list[tuple[str, str]]:
    """(notebook, link) for every relative link in a Markdown cell of every notebook."""
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            for cell in nbformat.read(path, as_version=4).cells:
                if cell.cell_type != "markdown":
                    continue
                for match in LINK.finditer(cell.source):
                    link = match.group(1) or match.group(2)
                    if not re.match(r"^([a-z][a-z0-9+.-]*:|#)", link, re.I):
                        found.append((f"{folder}/{path.name}", link))
    return found


def served_path(notebook: str, link: str) -> str:
    """Where a relative link from ``notebook`` points, from the served root."""
    target = urllib.parse.unquote(link.split("#")[0].split("?")[0])
    return posixpath.normpath(posixpath.join(posixpath.dirname(notebook), target))


# where dev.py puts the workbook's JupyterLab settings (kvlab/lab-settings.json) for the JupyterLab in .venv
OVERRIDES = Path(sys.prefix, "share", "jupyter", "lab", "settings", "overrides.d", "kvlab.json")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    OVERRIDES.unlink(missing_ok=True)  # as on a fresh clone: `dev.py lab` puts it there
    running = Lab(tmp / "state", tmp)
    yield running
    running.stop()


def test_the_file_browser_shows_the_whole_workbook(lab):
    for folder in FOLDERS:
        listing = lab.contents(folder)
        assert listing is not None, f"{folder}/ is not reachable from JupyterLab"
        assert sorted(c["name"] for c in listing["content"] if c["name"].endswith(".ipynb")) == sorted(
            p.name for p in (ROOT / folder).glob("*.ipynb"))
    assert lab.contents("notebooks/00-start-here.ipynb") is not None


def test_jupyterlab_opens_the_start_notebook(lab):
    deadline = time.monotonic() + 30
    while not lab.opened.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    opened = lab.opened.read_text()
    page = Path(urllib.parse.urlparse(opened).path).read_text() if opened.startswith("file:") else opened
    assert "/lab/tree/notebooks/00-start-here.ipynb" in page


def test_jupyterlab_does_not_offer_to_fetch_news_from_the_internet(lab):
    """JupyterLab asks every new user whether to fetch Jupyter's news (a toast over the first lesson); the
    workbook runs offline, so its settings answer no, and no update check is made either."""
    notification = lab.get("lab/api/settings/@jupyterlab/apputils-extension:notification")
    assert notification is not None
    defaults = notification["schema"]["properties"]  # an override changes a setting's default; a learner's own wins
    assert (defaults["fetchNews"]["default"], defaults["checkForUpdates"]["default"]) == ("false", False)


def test_every_relative_link_in_every_notebook_opens_from_the_served_root(lab):
    links = notebook_links()
    assert any(link.startswith("../labs/") for _, link in links)  # the start notebook links its lab
    broken = [(notebook, link) for notebook, link in links
              if served_path(notebook, link).startswith("..") or lab.contents(served_path(notebook, link)) is None]
    assert broken == []


def test_a_terminal_reaches_the_emulator_with_the_workbooks_tools_and_the_articles_cli(lab):
    """A terminal opened in JupyterLab needs no set-up: the emulator's variables, the workbook's tools on
    PATH (`kvlab`, `databricks`), and the emulator's names through its HTTPS proxy."""
    from kvlab.admin import Admin

    shown = lab.terminal('echo "host=$DATABRICKS_HOST"; databricks secrets list-scopes; echo "kvlab-done-$?"',
                         until=r"kvlab-done-\d", timeout=90)
    assert "kvlab: this terminal reaches the emulator" in shown
    assert f"host={Admin(lab.state).workspace()['host']}" in shown  # this lab's emulator, not an inherited one
    assert "Scope    Backend    KeyVault URL" in shown
    assert "kvlab-done-0" in shown, shown


def test_the_readme_links_point_at_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    links = [m.group(1) or m.group(2) for m in LINK.finditer(readme)]
    relative = [link for link in links if not re.match(r"^([a-z][a-z0-9+.-]*:|#)", link, re.I)]
    assert relative and [link for link in relative if not (ROOT / link.split("#")[0]).exists()] == []


def test_closing_jupyterlab_stops_the_emulator_it_started(tmp_path):
    state = tmp_path / "state"
    lab = Lab(state, tmp_path)
    assert control.status(state)["running"]
    assert lab.stop() == 0, lab.output
    assert "it stops when JupyterLab does" in lab.output
    assert "stopped the emulator" in lab.output
    assert not control.status(state)["running"]


def test_closing_jupyterlab_stops_the_database_a_lesson_started_in_it(tmp_path):
    from kvlab import db

    state = tmp_path / "state"
    lab = Lab(state, tmp_path)
    db.start(state, free_port())  # as lesson 05's set-up cell does, in a kernel of this JupyterLab
    assert lab.stop() == 0, lab.output
    assert "stopped the database a lesson started" in lab.output
    assert not db.status(state)["running"]


def test_an_emulator_that_was_already_running_keeps_running_and_the_learner_is_told(tmp_path):
    state = tmp_path / "state"
    control.start(state, free_port())
    try:
        lab = Lab(state, tmp_path)
        lab.stop()
        assert "using the emulator already running" in lab.output
        assert control.status(state)["running"]
    finally:
        control.stop(state)
