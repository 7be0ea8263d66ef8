"""Print each lesson's set-up time and its checks' latency, as a learner's kernel sees them.

    .venv/bin/python benchmarks/lessons.py [--lessons 00 02 ...]

Each solution notebook runs in a kernel of its own (nbclient, timing recorded per cell) in a temporary folder,
against an emulator of its own state directory; the figures are the kernel's own execution times of the set-up
cell (`kvlab.start_lesson(...)`, on a state directory that has run the lesson once before, as when a learner
opens a lab again) and of every `check("exN")` cell (a learner presses Shift+Enter; the target is well under
300 ms). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from kvlab.emulator import control
from kvlab.paths import free_port

ROOT = Path(__file__).resolve().parents[1]


def seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def run(notebook: Path, where: Path) -> nbformat.NotebookNode:
    executed = nbformat.read(notebook, as_version=4)
    NotebookClient(executed, kernel_name="python3", timeout=600, record_timing=True,
                   resources={"metadata": {"path": str(where)}}).execute()
    return executed


def lesson(number: str, root: Path) -> dict:
    [notebook] = (ROOT / "solutions").glob(f"{number}-*.ipynb")
    state = root / f"state-{number}"
    os.environ.update(KVLAB_STATE_DIR=str(state), KVLAB_PORT=str(free_port()))  # the kernels inherit them
    try:
        for attempt in ("first", "again"):
            where = root / f"{number}-{attempt}"
            where.mkdir()
            executed = run(notebook, where)
        setup = next(c for c in executed.cells if c.cell_type == "code" and "start_lesson(" in c.source)
        timed = {c.source.strip(): seconds(c) * 1000 for c in executed.cells
                 if c.cell_type == "code" and c.source.lstrip().startswith("check(")}
        checks = list(timed.values())
        return {"setup_s": round(seconds(setup), 3), "checks": len(checks),
                "check_median_ms": round(statistics.median(checks), 1), "check_max_ms": round(max(checks), 1),
                "slowest": max(timed, key=timed.__getitem__)}
    finally:
        os.system(f"KVLAB_STATE_DIR={state} {ROOT / '.venv/bin/kvlab'} db stop >/dev/null 2>&1")
        control.stop(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", nargs="*", default=[p.name[:2] for p in sorted((ROOT / "solutions").glob("*.ipynb"))])
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="kvlab-bench-lessons-") as root:
        for number in args.lessons:
            figures[number] = lesson(number, Path(root))
            f = figures[number]
            print(f"lesson {number}: set-up {f['setup_s']:.2f} s; {f['checks']} checks, median "
                  f"{f['check_median_ms']:.0f} ms, slowest {f['check_max_ms']:.0f} ms ({f['slowest']})", flush=True)
    print(json.dumps({"lessons": figures}))


if __name__ == "__main__":
    main()
