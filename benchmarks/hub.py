"""A class on one JupyterHub: start-up time and memory per learner, N learners at once.

Starts JupyterHub with deploy/jupyterhub/jupyterhub_config.py (needs Node.js and npm for its proxy, installed as
the tests install it), spawns N learners at once (each: the workbook pulled, an emulator of their own, JupyterLab),
runs lab 00 in every learner's kernel at once through the hub's proxy, and prints each learner's start-up time
and memory (PSS of every process running in their home: server, kernel, emulator). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from learners import processes_with, pss_mb  # noqa: E402

import node_packages  # noqa: E402  (tests/: the proxy from npm, as the tests install it)
from hub_class import Hub  # noqa: E402
from notebook_kernel import code_cells  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=4)
    args = parser.parse_args()
    names = [f"learner{i:02d}" for i in range(args.learners)]
    with tempfile.TemporaryDirectory() as where:
        hub = Hub(Path(where), node_packages.installed() / "node_modules" / ".bin")
        try:
            ready = hub.spawn_all(names)
            cells = code_cells("00-start-here.ipynb")
            began = time.monotonic()
            with ThreadPoolExecutor(len(names)) as pool:
                list(pool.map(lambda name: hub.run_cells(name, cells), names))
            lesson = time.monotonic() - began
            memory = {name: sum(pss_mb(pid) for pid in processes_with(f"HOME={Path(where) / 'homes' / name}"))
                      for name in names}
            hub_mb = pss_mb(hub.process.pid)
        finally:
            hub.stop()
    print(f"JupyterHub, {args.learners} learners at once, {os.cpu_count()} CPUs")
    print(f"  server ready         median {statistics.median(ready.values()):5.1f} s   worst {max(ready.values()):5.1f} s"
          "   (pull the workbook, start the emulator, start JupyterLab)")
    print(f"  lab 00, all at once  {lesson:5.1f} s")
    print(f"  memory per learner   median {statistics.median(memory.values()):5.0f} MB PSS   worst "
          f"{max(memory.values()):5.0f} MB   (server, lesson kernel, emulator)")
    print(f"  the hub itself       {hub_mb:5.0f} MB PSS (plus its proxy, in Node)")
    print(json.dumps({"learners": args.learners, "ready_median_s": round(statistics.median(ready.values()), 1),
                      "ready_worst_s": round(max(ready.values()), 1), "lab00_s": round(lesson, 1),
                      "mb_per_learner": round(statistics.median(memory.values())), "hub_mb": round(hub_mb)}))


if __name__ == "__main__":
    main()
