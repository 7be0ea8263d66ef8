"""A learner's checks reach the instructor: joined by `kvlab workshop join` or by $KVLAB_WORKSHOP, from a lesson run
in a real IPython kernel; and a service that is down or hangs never holds a check up, the results arriving once it
is back."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

from jupyter_client.manager import start_new_kernel

from kvlab.workshop import learner, records

from classroom import serve
from notebook_kernel import code_cells
from runners import as_json, free_port, kvlab

LESSON = "00-start-here.ipynb"


@contextlib.contextmanager
def kernel(state, **environment):
    """An IPython kernel with its own state directory and emulator port, as `python3 dev.py lab` starts one."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(records.ENVIRONMENT)}
    env.update(KVLAB_STATE_DIR=str(state), KVLAB_PORT=str(free_port()), **environment)
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(state.parent))
    try:
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel()  # as JupyterLab ends a kernel: asked to, so its atexit flush runs
        kvlab("emulator", "stop", state=state, check=False)


def run(client, source: str) -> None:
    reply = client.execute_interactive(source, timeout=120, output_hook=lambda message: None)
    assert reply["content"]["status"] == "ok", reply["content"].get("evalue")


def sending_problem(client) -> str:
    """What the kernel's workshop sender last met, for a failure's message ([None]: its last send went through)."""
    reply = client.execute_interactive("", timeout=60, output_hook=lambda message: None, user_expressions={
        "problem": "[s.problem for s in __import__('kvlab.workshop.learner').workshop.learner._senders.values()]"})
    return reply["content"]["user_expressions"]["problem"].get("data", {}).get("text/plain", "?")


def run_lesson(client, start: int = 0) -> None:
    for source in code_cells(LESSON)[start:]:
        run(client, source)


def arrived(service, learner: str, count: int, within: float = 60) -> list[dict]:
    """The instructor's rows for ``learner`` once there are ``count`` (polled: results travel in the background)."""
    deadline = time.monotonic() + within
    while True:
        rows = [row for row in service.export() if row["learner"] == learner]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_a_joined_learners_checks_reach_the_instructor(service, tmp_path):
    state = tmp_path / "ada"
    joined = as_json(kvlab("workshop", "join", service.join_url, "--name", "Ada", state=state))
    assert joined == {"service": service.base, "name": "Ada", "learner": 1}  # never the token
    assert (state / records.LEARNER_FILE).stat().st_mode & 0o777 == 0o600
    with kernel(state) as client:
        run_lesson(client)
        # a guided notebook's demonstration checks count toward nothing, and go nowhere
        run(client, "demo = kvlab.start_lesson('00', demo=True)\ndemo.check('ex1')")
        problem = sending_problem(client)
    rows = arrived(service, "Ada", 3)
    assert [(r["lesson"], r["exercise"], r["latest"], r["best"]) for r in rows] == [
        ("00", "ex1", "correct", "correct"), ("00", "ex2", "correct", "correct"), ("00", "ex3", "correct", "correct")
    ], f"the kernel's sender last met: {problem}"
    assert rows[0]["title"]  # the exercise's title travels with it, for the instructor's columns
    assert rows[0]["attempts"] == 1  # the demonstration's check of ex1 was not sent (the kernel flushed at exit)
    status = as_json(kvlab("workshop", "status", state=state))
    assert status == {"joined": True, "service": service.base, "name": "Ada", "answering": True}
    assert as_json(kvlab("workshop", "leave", state=state)) == {"left": True}
    assert as_json(kvlab("workshop", "status", state=state)) == {"joined": False}
    again = kvlab("workshop", "leave", state=state)
    assert as_json(again) == {"left": False} and "had not joined" in again.stderr


def test_kvlab_workshop_in_the_environment_joins_when_the_lesson_starts(service, tmp_path):
    state = tmp_path / "grace"
    # as on JupyterHub, where every learner's server runs as the same system user: named by the hub's user name
    with kernel(state, KVLAB_WORKSHOP=service.join_url, JUPYTERHUB_USER="Grace") as client:
        parameters, setup = code_cells(LESSON)[:2]
        assert "start_lesson" in setup
        run(client, parameters)
        run(client, setup)
        deadline = time.monotonic() + 30  # the learner shows before any check (joined in the background)
        while not (state / records.LEARNER_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert learner.joined(state)["name"] == "Grace"
        run_lesson(client, start=2)
    assert {r["exercise"] for r in arrived(service, "Grace", 3)} == {"ex1", "ex2", "ex3"}


class Hanging:
    """A port that accepts connections, reads what comes and never answers: a stuck service or a black hole."""

    def __init__(self, port: int):
        self.listener = socket.create_server(("127.0.0.1", port))
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.listener.accept()[0])

    def request(self, within: float = 30) -> socket.socket:
        """The first connection that brought a results request, read to the end of what was sent."""
        deadline = time.monotonic() + within
        while not self.held and time.monotonic() < deadline:
            time.sleep(0.02)
        connection = self.held[0]
        connection.settimeout(within)
        assert connection.recv(65536).startswith(b"POST /api/results")
        return connection

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in its thread, which close() alone would not
        self.listener.close()
        for connection in self.held:
            connection.close()


def still_open(connection: socket.socket) -> bool:
    """Whether the peer has not closed ``connection`` (nothing more to read, and no end of stream)."""
    connection.setblocking(False)
    try:
        return connection.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True


def test_a_hanging_or_stopped_service_never_holds_a_check_up(tmp_path):
    """The service stops after the learner joined and something else takes its port that never answers. Checks
    are answered in the notebook while the learner's result waits in that unanswered request; once the service is
    back on its port, every queued result arrives, once."""
    first = serve(tmp_path / "class")
    state = tmp_path / "lin"
    kvlab("workshop", "join", first.join_url, "--name", "Lin", state=state)
    first.stop()
    stuck = Hanging(first.port)
    try:
        with kernel(state) as client:
            run_lesson(client)
            held = stuck.request()
            run(client, "print(check('ex1'))")  # answered, with the request still unanswered and open
            assert still_open(held)
            stuck.close()
            back = serve(tmp_path / "class", first.port)  # the same class, on the same port
            try:
                rows = arrived(back, "Lin", 3)
                assert {(r["exercise"], r["best"]) for r in rows} == {("ex1", "correct"), ("ex2", "correct"),
                                                                       ("ex3", "correct")}
                assert next(r["attempts"] for r in rows if r["exercise"] == "ex1") == 2  # both ex1 checks, once each
            finally:
                back.stop()
    finally:
        stuck.close()


def test_the_queue_is_bounded_while_the_service_is_away(tmp_path, monkeypatch):
    """A learner far from the service keeps only the newest MAX_QUEUED results waiting, whatever they do."""
    from kvlab.feedback import Result

    closed = free_port()  # nothing listens here
    state = tmp_path / "away"
    state.mkdir()
    (state / records.LEARNER_FILE).write_text(
        f'{{"service": "http://127.0.0.1:{closed}", "name": "Away", "learner": 1, "token": "t"}}')
    result = Result("00", "ex1", "A title", "incorrect", "not yet")
    for _ in range(learner.MAX_QUEUED + 50):
        learner.report(result, state)
    sender = learner.sender(state)
    assert sender is not None and len(sender.queue) == learner.MAX_QUEUED
    assert sender.flush(0.1) is False
