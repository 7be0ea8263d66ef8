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
