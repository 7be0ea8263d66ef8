"""The emulator's process imports only what serving needs; the notebook side loads on first use (issue #14)."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_after(code: str) -> dict:
    probe = (f"import sys\n{code}\nimport json\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('kvlab') or m == 'certifi')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_emulator_server_imports_only_serving_code():
    loaded = loaded_after("import kvlab.emulator.server")
    assert "kvlab.emulator.app" in loaded  # the probe saw the server's imports
    outside = [m for m in loaded if not (m.startswith("kvlab.emulator") or m in ("kvlab", "kvlab.paths"))]
    assert outside == []  # no kvlab.connection, lesson, checks, tracker, admin, certifi


def test_the_notebook_side_is_one_attribute_away():
    code = ("import kvlab, kvlab.connection, kvlab.lesson\n"  # importing the modules first must not rebind names
            "from kvlab import connect, start_lesson\n"
            "assert callable(kvlab.connect) and kvlab.connect is connect and connect.__name__ == 'connect'\n"
            "assert callable(kvlab.start_lesson) and start_lesson.__module__ == 'kvlab.lesson'\n"
            "try:\n    kvlab.nothing_here\nexcept AttributeError as exc:\n    assert 'nothing_here' in str(exc)\n")
    assert "kvlab.lesson" in loaded_after(code)
