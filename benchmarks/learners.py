"""What one learner costs a machine: memory and start-up of the workbook's processes, for N learners at once.

A learner on a shared machine (a JupyterHub single-user server, a Kubernetes pod) runs three processes of ours:
the Jupyter server, the kernel of the lesson open, and the Key Vault emulator of their own state directory. This
starts N such learners side by side (each with its own state directory, emulator port and server port), runs
lesson 00's solution in each learner's kernel at once, and prints each process's memory (PSS: shared pages split
between the processes that share them, so the figures add up) and the time to a finished lesson 00.

Prints figures; asserts nothing. `--learners 1 4` (default) shows whether a learner's cost stays flat as they add up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nbformat
from jupyter_client.manager import start_new_kernel

from kvlab.paths import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def pss_mb(pid: int) -> float:
    """Proportional set size of a process, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def processes_with(variable: str) -> list[int]:
    """Every process whose environment holds ``variable`` (``NAME=value``): a learner's, by their state directory
    or their home."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if variable.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def learner(where: Path, lesson: Path) -> dict:
    """One learner: a Jupyter server and an emulator up, a lesson run in a kernel; its processes' pids and times."""
    state, port = where / "state", free_port()
    env = {**os.environ, "KVLAB_STATE_DIR": str(state), "KVLAB_PORT": str(free_port()),
           "JUPYTER_RUNTIME_DIR": str(where / "runtime")}
    began = time.perf_counter()
    server = subprocess.Popen([str(BIN / "jupyter"), "server", "--no-browser", f"--port={port}",
                               "--ServerApp.token=t", f"--ServerApp.root_dir={where}", "--allow-root"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/status?token=t", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    server_up = time.perf_counter() - began
    started = subprocess.run([str(BIN / "kvlab"), "emulator", "start"], env=env, capture_output=True, text=True)
    emulator_pid = json.loads(started.stdout)["pid"]
    emulator_up = time.perf_counter() - began
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(where))
    cells = [c.source for c in nbformat.read(lesson, as_version=4).cells if c.cell_type == "code"]
    for source in cells:
        reply = client.execute_interactive(source, timeout=120, output_hook=lambda message: None)
        assert reply["content"]["status"] == "ok", reply["content"].get("evalue")
    done = time.perf_counter() - began
    pids = {"jupyter server": server.pid, "kernel": manager.provisioner.process.pid, "emulator": int(emulator_pid)}
    others = [pid for pid in processes_with(f"KVLAB_STATE_DIR={state}") if pid not in pids.values()]
    return {"server": server, "manager": manager, "client": client, "env": env, "others": others, "pids": pids,
            "times": {"server up": server_up, "emulator up": emulator_up, "lesson done": done}}


def stop(one: dict) -> None:
    one["client"].stop_channels()
    one["manager"].shutdown_kernel(now=True)
    one["server"].terminate()
    one["server"].wait()
    subprocess.run([str(BIN / "kvlab"), "db", "stop"], env=one["env"], capture_output=True)
    subprocess.run([str(BIN / "kvlab"), "emulator", "stop"], env=one["env"], capture_output=True)


def measure(count: int, lesson: Path) -> dict:
    with tempfile.TemporaryDirectory() as root:
        places = [Path(root) / f"learner{i}" for i in range(count)]
        for place in places:
            place.mkdir()
        with ThreadPoolExecutor(count) as pool:
            learners = list(pool.map(learner, places, [lesson] * count))
        try:
            memory = {name: [pss_mb(one["pids"][name]) for one in learners] for name in learners[0]["pids"]}
            memory["other (a database)"] = [sum(pss_mb(pid) for pid in one["others"]) for one in learners]
            times = {name: [one["times"][name] for one in learners] for name in learners[0]["times"]}
        finally:
            for one in learners:
                stop(one)
    return {"learners": count, "memory": memory, "times": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--lessons", nargs="+", default=["00", "05"], help="solution notebooks to run (05 starts "
                        "a PostgreSQL, the heaviest lesson)")
    args = parser.parse_args()
    print(f"learners on one machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    summary = {}
    for number, count in [(n, c) for n in args.lessons for c in args.learners]:
        [lesson] = (ROOT / "solutions").glob(f"{number}-*.ipynb")
        out = measure(count, lesson)
        print(f"{count} learner(s) at once, each: a Jupyter server, lesson {number} run in a kernel, an emulator")
        total = 0.0
        for name, values in out["memory"].items():
            total += statistics.mean(values)
            print(f"  {name:<16} {statistics.mean(values):6.1f} MB PSS (max {max(values):.1f})")
        print(f"  {'per learner':<16} {total:6.1f} MB PSS")
        for name, values in out["times"].items():
            print(f"  {name:<16} {statistics.median(values):6.2f} s from start (median; worst {max(values):.2f} s)")
        summary[f"{number}x{count}"] = {"mb_per_learner": round(total, 1),
                                        "emulator_mb": round(statistics.mean(out["memory"]["emulator"]), 1),
                                        "lesson_done_s": round(max(out["times"]["lesson done"]), 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
