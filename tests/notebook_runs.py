"""Running a lesson's notebooks as CI and a learner would, for tests/notebooks: a solution with papermill (it
must pass), a lab as shipped as Run All does (only its stubs stop, every check "not attempted"). Executed copies
land in build/notebooks/ for inspection."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
from nbclient import NotebookClient

from kvlab import stubs
from kvlab.checks import lesson_spec
from kvlab.feedback import MIME

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "notebooks"


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


def run_solution(path: Path, cwd: Path, then: list[str] = ()) -> nbformat.NotebookNode:
    """The solution, with papermill, and the cells ``then`` after it in the same kernel: the solution's cells end
    without an error, and every exercise of its lesson is checked correct. The executed notebook."""
    notebook = nbformat.read(path, as_version=4)
    solved = len(notebook.cells)
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in then]
    out = executed_copy(path)
    papermill.execute_notebook(
        notebook, str(out), kernel_name="python3", progress_bar=False, cwd=str(cwd), log_output=False,
    )
    executed = nbformat.read(out, as_version=4)
    solution = nbformat.v4.new_notebook(cells=executed.cells[:solved])
    assert errors(solution) == []
    spec = lesson_spec(lesson_of(path))
    outcomes = results(solution)
    assert sorted(r["exercise"] for r in outcomes) == sorted(e.id for e in spec.exercises)
    assert [r for r in outcomes if r["status"] != "correct"] == []
    return executed


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
