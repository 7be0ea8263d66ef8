"""How long each lesson takes a class: reading time and the notebooks' own running time (docs/instructors.md).

For every lesson: the words of the guided notebook and of the lab (markdown), read at --wpm words a minute; the
number of exercises; and the seconds the guided notebook and the solution take to run top to bottom in a kernel
(nbclient, one emulator of their own, as Run All does). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from kvlab.paths import free_port

ROOT = Path(__file__).resolve().parents[1]


def words(path: Path) -> int:
    return sum(len(re.findall(r"\w+", c.source)) for c in nbformat.read(path, as_version=4).cells
               if c.cell_type == "markdown")


def exercises(lab: Path) -> int:
    return sum("raise NotImplementedError(" in c.source for c in nbformat.read(lab, as_version=4).cells
               if c.cell_type == "code")


def run_seconds(path: Path, where: Path) -> float:
    """Run All of ``path`` in a kernel started in ``where`` (a copy of the workbook folder layout)."""
    notebook = nbformat.read(path, as_version=4)
    began = time.perf_counter()
    NotebookClient(notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(where)}}).execute()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wpm", type=int, default=180, help="reading speed for technical text, words a minute")
    parser.add_argument("--lessons", nargs="*", help="lesson numbers (default: all)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as state:
        os.environ.update(KVLAB_STATE_DIR=state, KVLAB_PORT=str(free_port()))  # the kernels' emulator
        try:
            for guided in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")):
                number = guided.name[:2]
                if args.lessons and number not in args.lessons:
                    continue
                lab, solution = ROOT / "labs" / guided.name, ROOT / "solutions" / guided.name
                with tempfile.TemporaryDirectory() as where:  # what a lesson writes beside its notebook
                    rows.append({"lesson": number, "readMinutes": round((words(guided) + words(lab)) / args.wpm),
                                 "exercises": exercises(lab),
                                 "guidedRunSeconds": round(run_seconds(guided, Path(where)), 1),
                                 "solutionRunSeconds": round(run_seconds(solution, Path(where)), 1)})
                print(f"lesson {number}: read {rows[-1]['readMinutes']:3d} min, {rows[-1]['exercises']} exercises, "
                      f"guided notebook runs in {rows[-1]['guidedRunSeconds']:5.1f} s, solution in "
                      f"{rows[-1]['solutionRunSeconds']:5.1f} s", flush=True)
        finally:
            for what in ("db", "emulator"):
                subprocess.run([str(Path(sys.executable).with_name("kvlab")), what, "stop"], capture_output=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
