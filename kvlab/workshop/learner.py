"""The learner's side of a workshop: join once, then every check result is sent in the background.

A lesson never waits for the service and never fails because of it: `report`
puts the result in a bounded in-memory queue and returns; one daemon thread per
process sends what is queued, in batches, and retries with a growing pause
when the service is down or unreachable (the oldest results are dropped past
MAX_QUEUED). The learner's own progress (`kvlab.tracker`) is kept locally
whatever happens here.
"""

from __future__ import annotations

import atexit
import getpass
import json
import os
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from .. import paths
from . import records

MAX_QUEUED = 500  # results waiting to be sent, per process
AT_EXIT = 2.0  # seconds a process that ends (a kernel shut down) gives its sender to finish, if the service answers
TIMEOUT = 5.0  # seconds to join, or to connect to the service
ANSWER_WAIT = 30.0  # seconds the sender waits for a result's answer (nobody waits for the sender)
PAUSES = (1, 2, 5, 10, 30)  # seconds between attempts while the service does not answer


class WorkshopError(ValueError):
    """A join that cannot be done, said in one line."""


def parse_join_url(url: str) -> tuple[str, str]:
    """``http(s)://host[:port][/prefix]/join/CODE`` -> (the service's base URL, the class code)."""
    parts = urlsplit(url.strip())
    head, _, code = parts.path.rstrip("/").rpartition("/join/")
    if parts.scheme not in ("http", "https") or not parts.netloc or not code or "/" in code:
        raise WorkshopError(f"{url!r} is not a workshop join URL (it looks like http://HOST:PORT/join/CODE)")
    return f"{parts.scheme}://{parts.netloc}{head}", code


def config_path(state_dir=None, create: bool = False) -> Path:
    return paths.state_dir(state_dir, create=create) / records.LEARNER_FILE


def joined(state_dir=None) -> dict | None:
    """The workshop this state directory has joined: {service, name, learner, token}, or None."""
    try:
        config = json.loads(config_path(state_dir).read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) and {"service", "token"} <= set(config) else None


def join(url: str, name: str, state_dir=None) -> dict:
    """Join the workshop at ``url`` as ``name``; what is saved (the token is the learner's alone, 0600)."""
    import httpx

    service, code = parse_join_url(url)
    try:
        answer = httpx.post(f"{service}/api/join", json={records.CODE_PARAMETER: code, "name": name}, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise WorkshopError(f"the workshop service at {service} did not answer ({type(exc).__name__}): is the "
                            "URL right, and is `kvlab workshop serve` running?") from None
    if answer.status_code != 201:
        raise WorkshopError(f"the workshop service refused to join: {_message(answer)}")
    body = answer.json()
    config = {"service": service, "name": body["name"], "learner": body["learner"], "token": body["token"],
              "joinUrl": url.strip()}
    with paths.open_private(config_path(state_dir, create=True), "w") as f:
        json.dump(config, f, indent=1)
    return config


def hub_config() -> dict | None:
    """On JupyterHub, $KVLAB_WORKSHOP may be the dashboard's URL with no class code (a service run with
    ``--hub-auth``): the learner is who their server's hub token ($JUPYTERHUB_API_TOKEN) says, and nothing is saved."""
    url = os.environ.get(records.ENVIRONMENT, "").strip()
    parts = urlsplit(url)
    if not url or "/join/" in parts.path:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise WorkshopError(f"${records.ENVIRONMENT} is {url!r}, which is neither a join URL "
                            "(http://HOST:PORT/join/CODE) nor a service URL")
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise WorkshopError(f"${records.ENVIRONMENT} is {url!r}, a service URL without a class code: that works "
                            "only in a JupyterHub server ($JUPYTERHUB_API_TOKEN is not set)")
    return {"service": url.rstrip("/"), "name": os.environ.get("JUPYTERHUB_USER", ""), "token": token, "hub": True}


def current(state_dir=None) -> dict | None:
    """The workshop results go to: the one joined, or the hub's (hub_config)."""
    return joined(state_dir) or hub_config()


def leave(state_dir=None) -> bool:
    """Stop sending results (what was sent stays with the instructor); whether a workshop was joined."""
    try:
        config_path(state_dir).unlink()
        return True
    except FileNotFoundError:
        return False


def _message(answer) -> str:
    try:
        return answer.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {answer.status_code}"


def record_of(result) -> dict:
    """What is sent of a check result: its MIME record (lesson, exercise, status, message), its title, a time,
    and an id that makes a retried send harmless."""
    record = result.as_json()
    return {**record, "message": record["message"][:records.MAX_MESSAGE], "title": result.title[:records.MAX_TITLE],
            "id": uuid.uuid4().hex,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


class Sender:
    """One daemon thread that sends a state directory's queued results to its workshop."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.queue: deque[dict] = deque(maxlen=MAX_QUEUED)
        self.wake = threading.Condition()
        self.problem: str | None = None  # the last reason a send did not go through (None: the last one did)
        self.on_hub = False  # the hub's service knows this learner (they appear on its page before any check)
        self.thread = threading.Thread(target=self._run, name="kvlab-workshop", daemon=True)
        self.thread.start()

    def flush(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the queue to empty, unless the service is not answering; whether it did."""
        deadline = time.monotonic() + seconds
        with self.wake:
            while self.queue and self.problem is None and time.monotonic() < deadline:
                self.wake.wait(min(0.05, max(deadline - time.monotonic(), 0)))
            return not self.queue

    def put(self, record: dict) -> None:
        with self.wake:
            self.queue.append(record)
            self.wake.notify_all()

    def _batch(self) -> list[dict]:
        """The oldest queued results, as many as one request may carry (by count and by size)."""
        batch: list[dict] = []
        size = 0
        for record in self.queue:
            size += len(json.dumps(record)) + 2
            if batch and (len(batch) == records.MAX_BATCH or size > records.MAX_BODY // 2):
                break
            batch.append(record)
        return batch

    def _config(self) -> dict | None:
        config = joined(self.state_dir)
        hub = hub_config() if config is None else None
        if hub is not None:
            if not self.on_hub:
                self._hello(hub)
            return hub
        if config is None and os.environ.get(records.ENVIRONMENT):
            # on JupyterHub every server runs as one system user (jovyan): the hub's user name tells learners apart
            name = (os.environ.get(records.NAME_ENVIRONMENT) or os.environ.get("JUPYTERHUB_USER")
                    or getpass.getuser())
            config = join(os.environ[records.ENVIRONMENT], name, self.state_dir)
        return config

    def _hello(self, hub: dict) -> None:
        """A hub learner's first request: the service learns their hub name from their token."""
        import httpx

        answer = httpx.post(f"{hub['service']}/api/join", json={}, timeout=TIMEOUT,
                            headers={"Authorization": f"Bearer {hub['token']}"})
        if answer.status_code != 200:
            raise WorkshopError(f"the workshop service refused this hub user: {_message(answer)}")
        self.on_hub = True

    def _run(self) -> None:
        import httpx

        failures = 0
        try:
            self._config()  # $KVLAB_WORKSHOP: join as the lesson starts, so the instructor sees the learner
        except (httpx.HTTPError, WorkshopError, OSError) as exc:
            self.problem = str(exc)
        with httpx.Client(timeout=httpx.Timeout(ANSWER_WAIT, connect=TIMEOUT)) as client:
            while True:
                with self.wake:
                    while not self.queue:
                        self.wake.wait()
                    batch = self._batch()
                try:
                    config = self._config()
                    if config is None:  # left the workshop: what was queued is not sent
                        with self.wake:
                            self.queue.clear()
                        continue
                    answer = client.post(f"{config['service']}/api/results", json={"results": batch},
                                         headers={"Authorization": f"Bearer {config['token']}"})
                    if answer.status_code in (200, 400, 413):  # taken, or never will be: off the queue
                        sent = {record["id"] for record in batch}
                        with self.wake:
                            while self.queue and self.queue[0]["id"] in sent:
                                self.queue.popleft()
                            self.wake.notify_all()  # flush() waits for this
                        self.problem = None if answer.status_code == 200 else _message(answer)
                        failures = 0
                        continue
                    self.problem = _message(answer)
                except (httpx.HTTPError, WorkshopError, OSError) as exc:
                    self.problem = str(exc) or type(exc).__name__
                with self.wake:  # wait before trying again (a new result tries again at once)
                    self.wake.wait(PAUSES[min(failures, len(PAUSES) - 1)])
                failures += 1


_senders: dict[Path, Sender] = {}
_senders_lock = threading.Lock()


def sender(state_dir=None) -> Sender | None:
    """This process's sender for the state directory, started if the learner joined a workshop (or
    $KVLAB_WORKSHOP names one); None otherwise."""
    try:
        state = paths.state_dir(state_dir, create=False)
        if not (os.environ.get(records.ENVIRONMENT) or (state / records.LEARNER_FILE).exists()):
            return None
    except OSError:  # an unreadable state directory: the lesson goes on, without the workshop
        return None
    with _senders_lock:
        if state not in _senders:
            _senders[state] = Sender(state)
        return _senders[state]


@atexit.register
def _flush_at_exit() -> None:
    for sender in list(_senders.values()):
        sender.flush(AT_EXIT)


def report(result, state_dir=None) -> None:
    """Queue a check result for the workshop, if there is one; returns at once."""
    found = sender(state_dir)
    if found is not None:
        found.put(record_of(result))
