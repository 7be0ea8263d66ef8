"""`kvlab notebooks refresh` of unchanged guided notebooks reproduces the committed files byte for byte.

So a maintainer's refresh shows in Git only what really changed, and the
committed outputs are never stale (nbval compares them after sanitising; this
compares the bytes).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KVLAB = Path(sys.executable).with_name("kvlab")


def test_refreshing_unchanged_guided_notebooks_changes_nothing(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    run = subprocess.run([str(KVLAB), "notebooks", "refresh", "--root", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    changed = [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
               if (tmp_path / "notebooks" / p.name).read_bytes() != p.read_bytes()]
    assert changed == [], "run `kvlab notebooks refresh` and commit the result"


def test_a_guided_notebook_that_records_progress_is_refused(tmp_path):
    """A guided notebook's checks are demonstrations: one opened without demo=True would mark the learner's
    exercises (even as not attempted), so refreshing it fails with one line naming the notebook."""
    import nbformat

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
