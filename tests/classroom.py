"""The class dashboard as an instructor starts it: `kvlab workshop serve`, in a process of its own (tests/workshop)."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from runners import KVLAB, free_port


@dataclass
class Service:
    process: subprocess.Popen
    directory: Path
    port: int
    join_url: str
    instructor_url: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        return self.instructor_url.split("key=", 1)[1]

    def export(self) -> list[dict]:
        """The instructor's JSON export (the key as a bearer token, as a script would send it)."""
        answer = httpx.get(f"{self.base}/instructor/export.json", headers={"Authorization": f"Bearer {self.key}"})
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # Ctrl-C, as the instructor stops it
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve(directory: Path, port: int | None = None, *options: str) -> Service:
    """Start `kvlab workshop serve` and read the URLs it prints (JSON on stdout, before it serves)."""
    port = port or free_port()
    process = subprocess.Popen([KVLAB, "workshop", "serve", "--port", str(port), "--dir", str(directory), *options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    printed = ""
    for line in process.stdout:
        printed += line
        if line.rstrip() == "}":
            break
    if not printed:
        process.wait(10)
        raise AssertionError(process.stderr.read() if process.stderr else "no output")
    urls = json.loads(printed)
    return Service(process, directory, port, urls["joinUrl"], urls["instructorUrl"])
