"""Every notebook, executed as CI and a learner would run it, against the emulator.

Solutions run with papermill and must finish without an error, every check
correct (followed by other answers: tests/notebooks/test_other_answers.py, which
runs them). Labs as shipped then run to the end as Run All does, in the same
emulator: only their stubs end in error (tagged raises-exception, shown as a
"your turn" notice), and every check says "not attempted". Guided notebooks run
under nbval (their committed outputs) and in tests/notebooks/test_refresh.py.
Executed copies land in build/notebooks/ for inspection.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from notebook_runs import errors, results

ROOT = Path(__file__).resolve().parents[2]
GUIDED = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LABS = sorted((ROOT / "labs").glob("*.ipynb"))


def test_there_is_something_to_run():
    assert GUIDED and SOLUTIONS and LABS
    assert [p.name for p in LABS] == [p.name for p in SOLUTIONS]


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
