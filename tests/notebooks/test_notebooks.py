"""Every notebook, executed as CI and a learner would run it, against the emulator.

Solutions run with papermill and must finish without an error, every check
correct. Labs as shipped then run to the end as Run All does, in the same
emulator: only their stubs end in error (tagged raises-exception, shown as a
"your turn" notice), and every check says "not attempted". Guided notebooks run
under nbval (their committed outputs) and in tests/notebooks/test_refresh.py.
Executed copies land in build/notebooks/ for inspection.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest
from nbclient import NotebookClient

from kvlab import stubs
from kvlab.checks import lesson_spec
from kvlab.feedback import MIME

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "notebooks"
GUIDED = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LABS = sorted((ROOT / "labs").glob("*.ipynb"))


def results(notebook: nbformat.NotebookNode) -> list[dict]:
    """The check outcomes an executed notebook reports (the application/vnd.kvlab.check+json outputs)."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if MIME in output.get("data", {}):
                found.append(output["data"][MIME])
    return found


def errors(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(o["ename"], o["evalue"]) for c in notebook.cells for o in c.get("outputs", []) if o["output_type"] == "error"]


def lesson_of(path: Path) -> str:
    return path.name[:2]


def executed_copy(path: Path) -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    return BUILD / f"{path.parent.name}-{path.name}"


def test_there_is_something_to_run():
    assert GUIDED and SOLUTIONS and LABS
    assert [p.name for p in LABS] == [p.name for p in SOLUTIONS]


def run_solution(path: Path, cwd: Path) -> None:
    """The solution, with papermill: no error, and every exercise of its lesson checked correct."""
    out = executed_copy(path)
    papermill.execute_notebook(
        str(path), str(out), kernel_name="python3", progress_bar=False, cwd=str(cwd), log_output=False,
    )
    executed = nbformat.read(out, as_version=4)
    assert errors(executed) == []
    spec = lesson_spec(lesson_of(path))
    outcomes = results(executed)
    assert sorted(r["exercise"] for r in outcomes) == sorted(e.id for e in spec.exercises)
    assert [r for r in outcomes if r["status"] != "correct"] == []


def run_lab_as_shipped(path: Path, cwd: Path) -> None:
    """Run All as JupyterLab does it: errors stop the run except in cells tagged raises-exception.

    Only the stubs end in error, each shows its "your turn" notice (no traceback,
    no error output), and every check says "not attempted".
    """
    notebook = nbformat.read(path, as_version=4)
    failed: list[int] = []
    client = NotebookClient(notebook, kernel_name="python3", allow_errors=False, timeout=300,
                            resources={"metadata": {"path": str(cwd)}})
    client.on_cell_error = lambda cell, cell_index, execute_reply: failed.append(cell_index)
    client.execute()
    nbformat.write(notebook, executed_copy(path))
    spec = lesson_spec(lesson_of(path))
    stub_cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and stubs.is_stub_source(c.source)]
    assert len(stub_cells) == len(spec.exercises)
    assert failed == stub_cells
    assert all(stubs.TAG in notebook.cells[i].metadata.get("tags", []) for i in stub_cells)
    assert errors(notebook) == []
    notices = [(i, o["data"][stubs.MIME]["exercise"]) for i, c in enumerate(notebook.cells)
               for o in c.get("outputs", []) if stubs.MIME in o.get("data", {})]
    assert notices == list(zip(stub_cells, [e.id for e in spec.exercises]))
    outcomes = results(notebook)
    assert sorted(r["exercise"] for r in outcomes) == sorted(e.id for e in spec.exercises)
    assert {r["status"] for r in outcomes} == {"not-attempted"}, path.name


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.name[:2])
def test_the_solution_passes_and_then_the_lab_as_shipped_reports_not_attempted(lab, emulator, tmp_path):
    """Each lesson's solution passes; its lab, run afterwards in the same emulator, still says "not attempted"
    everywhere: a check judges this run, never what an earlier one left behind. (The guided notebooks run under
    nbval, which compares their outputs, and `kvlab notebooks refresh`, which refuses one that records progress.)
    Both run in a folder of their own: what a set-up writes beside the notebook (lesson 05's and 06's factory
    folders) must not be another worker's, pointing at another emulator."""
    run_solution(ROOT / "solutions" / lab.name, tmp_path)
    run_lab_as_shipped(lab, tmp_path)


def test_the_readme_papermill_command_runs_a_lab_as_shipped(emulator, tmp_path):
    """README: `papermill labs/00-start-here.ipynb out.ipynb ...` finishes with status 0 and no traceback."""
    import subprocess
    import sys

    out = tmp_path / "out.ipynb"
    papermill_cli = Path(sys.executable).with_name("papermill")
    run = subprocess.run([str(papermill_cli), "labs/00-start-here.ipynb", str(out), "-p", "vault_url", "emulator",
                          "--no-progress-bar"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    executed = nbformat.read(out, as_version=4)
    assert errors(executed) == []
    assert {r["status"] for r in results(executed)} == {"not-attempted"}
