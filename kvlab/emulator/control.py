"""Start, find and stop the background emulator of a state directory.

This is the one place that starts the emulator: the CLI, `kvlab.connect()` and
the test fixtures all call `start()`. A running emulator records itself in
``emulator.json`` in its state directory; `start()` is idempotent and says
whether it found one running (``alreadyRunning``), `stop()` whether it stopped
one (``wasRunning``). Looking (`status()`, `stop()`) never creates the state
directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from .. import paths
from ..errors import Refusal

RECORD = "emulator.json"
LOG = "emulator.log"
START_TIMEOUT = 20.0


class EmulatorError(Refusal):
    """A one-line reason the emulator could not be started, found or stopped."""


def _record_path(state_dir: Path) -> Path:
    return state_dir / RECORD


def _info(state_dir: Path, answer: dict, pid: int) -> dict:
    port = int(answer["port"])
    return {
        "running": True,
        "answering": True,
        "url": f"https://localhost:{port}",
        "pid": pid,
        "port": port,
        "stateDir": str(state_dir),
        "identityEndpoint": f"https://localhost:{port}/msi/token",
        # the HTTPS proxy other processes use (`kvlab env` adds its password)
        "proxy": f"http://127.0.0.1:{answer['proxyPort']}" if answer.get("proxyPort") else None,
        "caCertificate": str(state_dir / "ca.pem"),
        "log": str(state_dir / LOG),
    }


def health(state_dir: Path, port: int, timeout: float = 1.0) -> dict | None:
    """The health answer of an emulator on ``port`` serving ``state_dir``, or None.

    Which state directory it serves is proved by TLS: only the emulator holding ``state_dir``'s CA key
    can present a certificate ``state_dir/ca.pem`` verifies (the answer itself names no process or path)."""
    ca = state_dir / "ca.pem"
    if not ca.exists():
        return None
    try:
        ctx = ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError):  # not readable (yet)
        return None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(
                    f"GET /kvlab/health HTTP/1.1\r\nHost: localhost:{port}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
    except (OSError, ssl.SSLError):
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) and answer.get("status") == "ok" else None


def status(state_dir: str | os.PathLike | None = None) -> dict:
    """Whether the emulator of ``state_dir`` runs, and whether it answers.

    The server's lock says whether one runs; its health answer, whether it answers. One that runs but does
    not answer in time (a stuck request, a full disk) is ``running`` with ``answering`` false and its
    recorded pid and port: never taken for stopped (that once made `stop` forget it and `start` fail on
    its port)."""
    state = paths.state_dir(state_dir, create=False)
    try:
        record = json.loads(_record_path(state).read_text())
    except (OSError, ValueError):
        record = None
    answer = health(state, int(record["port"])) if record else None
    if answer is not None:
        return _info(state, answer, int(record["pid"]))
    if paths.served(state):
        return {"running": True, "answering": False, "stateDir": str(state),
                "pid": record and record.get("pid"), "port": record and record.get("port"),
                "log": str(state / LOG)}
    return {"running": False, "stateDir": str(state)}


def start(state_dir: str | os.PathLike | None = None, port: int | None = None, stop_with: int | None = None) -> dict:
    """Start the emulator in the background (or find it running) and return once it answers.

    ``alreadyRunning`` tells callers that nothing was started, so they can say so. ``stop_with``: a process id
    the emulator stops after (it watches it), e.g. a notebook server's.
    """
    state = paths.state_dir(state_dir)
    current = status(state)
    if current["running"] and not current["answering"]:
        raise EmulatorError(f"the emulator of {state} runs (pid {current['pid']}) but does not answer; "
                            "stop it with: kvlab emulator stop")
    if current["running"]:
        if port is not None and port != current["port"]:
            raise EmulatorError(
                f"the emulator of {state} already runs on port {current['port']}; "
                "stop it first to use another port"
            )
        return {**current, "alreadyRunning": True}
    port = port if port is not None else paths.default_port()
    _check_port_free(port)
    log = paths.open_private(state / LOG, "ab")
    command = [sys.executable, "-m", "kvlab.emulator", "--port", str(port), "--state-dir", str(state)]
    if stop_with is not None:
        if os.name == "nt":  # os.kill(pid, 0), how the emulator watches, would end the process there
            raise EmulatorError("stopping with another process is for POSIX start scripts; on Windows, stop the "
                                "emulator with `kvlab emulator stop`")
        command += ["--stop-with", str(stop_with)]
    # cwd: the emulator imports the installed kvlab, never a folder named kvlab where it was started from (a
    # workbook cloned into ~/kvlab, started from ~, would otherwise shadow an editable install)
    options: dict = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": log, "cwd": state}
    if sys.platform == "win32":
        options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
    else:
        options["start_new_session"] = True
    process = subprocess.Popen(command, **options)
    log.close()
    try:
        return {**_wait_until_it_answers(state, port, process), "alreadyRunning": False}
    except BaseException:  # never leave a half-started emulator behind (Ctrl-C included)
        if process.poll() is None:
            process.kill()
        raise


def _wait_until_it_answers(state: Path, port: int, process: subprocess.Popen) -> dict:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        answer = health(state, port, timeout=0.5)
        if answer is not None:
            with paths.open_private(_record_path(state), "w") as record:
                record.write(json.dumps({"pid": process.pid, "port": port}))
            return _info(state, answer, process.pid)
        if process.poll() is not None:
            raise EmulatorError(f"the emulator exited at start: {_last_log_line(state)}")
        time.sleep(0.02)
    raise EmulatorError(f"the emulator did not answer within {START_TIMEOUT:.0f} s; see {state / LOG}")


def stop(state_dir: str | os.PathLike | None = None) -> dict:
    """Stop the emulator of ``state_dir``; nothing to do (``wasRunning`` false) if none runs."""
    state = paths.state_dir(state_dir, create=False)
    current = status(state)
    if current["running"]:
        if not current.get("pid") or not _is_the_emulator(int(current["pid"]), state):
            raise EmulatorError(f"an emulator holds {state} but its pid is not recorded; stop it by hand "
                                f"(its log: {state / LOG})")
        _terminate(int(current["pid"]))
        if paths.served(state):  # the lock goes with the process: still held, it still runs
            raise EmulatorError(f"the emulator of {state} (pid {current['pid']}) did not stop")
    _record_path(state).unlink(missing_ok=True)  # it is gone: its record (or a stale one) goes too
    return {"running": False, "stateDir": str(state), "wasRunning": current["running"]}


def _is_the_emulator(pid: int, state: Path) -> bool:
    """Whether ``pid`` is an emulator serving ``state`` (on Linux by its command line; elsewhere by the
    lock and the record, which only that emulator writes)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return _alive(pid)
    words = cmdline.read_bytes().split(b"\0")
    return b"kvlab.emulator" in words and str(state).encode() in words


def _terminate(pid: int, timeout: float = 5.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        if hasattr(signal, "SIGCONT"):
            os.kill(pid, signal.SIGCONT)  # a stopped process handles its TERM only once continued
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name != "nt":  # as uvicorn does, so a recent restart's TIME_WAIT does not count
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise EmulatorError(
                f"port {port} is already in use; choose another with --port or KVLAB_PORT"
            ) from None


def _last_log_line(state: Path) -> str:
    try:
        lines = (state / LOG).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log"
