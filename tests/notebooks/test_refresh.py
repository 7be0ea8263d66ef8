"""`kvlab notebooks refresh` of unchanged guided notebooks reproduces the committed files byte for byte.

So a maintainer's refresh shows in Git only what really changed, and the
committed outputs are never stale (nbval compares them after sanitising; this
compares the bytes).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
KVLAB = Path(sys.executable).with_name("kvlab")


# Executed afresh: one notebook without volatile values and one with five (ports, versions, GUIDs), so the stand-ins'
# numbering is exercised. The other notebooks go through the same execution and normalisation; nbval executes
# every one of them and compares after sanitising (its patterns are VOLATILE, tests/test_labs.py), and the test
# below checks that each committed file is exactly what the refresh writes of its outputs. (Executing all eight
# here as well cost 55 s of kernel CPU in every test run.)
EXECUTED = ("00-start-here.ipynb", "03-secretclient-and-managed-identity.ipynb")


def test_refreshing_unchanged_guided_notebooks_changes_nothing(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    run = subprocess.run([str(KVLAB), "notebooks", "refresh", "--root", str(tmp_path),
                          *(str(tmp_path / "notebooks" / name) for name in EXECUTED)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)) == len(EXECUTED)
    changed = [name for name in EXECUTED if (tmp_path / "notebooks" / name).read_bytes()
               != (ROOT / "notebooks" / name).read_bytes()]
    assert changed == [], "run `kvlab notebooks refresh` and commit the result"


def test_every_guided_notebook_is_what_a_refresh_writes_of_its_outputs():
    """Normalising a committed notebook's outputs and writing it again gives its bytes: a refresh shows in Git only
    what really changed (not a hand edit's formatting, not a stand-in renumbered)."""
    from kvlab.labs import normalise_outputs, render

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) == 8
    drifted = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        normalise_outputs(notebook, seed=path.name)
        if render(notebook) != path.read_text(encoding="utf-8"):
            drifted.append(path.name)
    assert drifted == [], "run `kvlab notebooks refresh` and commit the result"


def test_a_guided_notebook_that_records_progress_is_refused(tmp_path):
    """A guided notebook's checks are demonstrations: one opened without demo=True would mark the learner's
    exercises (even as not attempted), so refreshing it fails with one line naming the notebook."""
    (tmp_path / "notebooks").mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        'import kvlab\nlesson = kvlab.start_lesson("00")  # demo=True forgotten\nlesson.check("ex1")')])
    nbformat.write(notebook, tmp_path / "notebooks" / "99-forgot-demo.ipynb")
    run = subprocess.run([str(KVLAB), "notebooks", "refresh", "--root", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if not line.startswith("[IPKernelApp]")] == [
        "error: 99-forgot-demo.ipynb recorded learner progress: a guided notebook's lesson must be a demo"]
