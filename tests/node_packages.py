"""The npm packages the tests use (tests/js/package.json): the JavaScript Azure SDK, JupyterHub's proxy."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JS = Path(__file__).parent / "js"


def installed() -> Path:
    """Where tests/js/package-lock.json's packages are installed: once into the virtual environment, again only
    when the lock file changes (one process installs, the others wait for it). Skips without Node.js and npm."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip("needs Node.js and npm")
    where = Path(sys.prefix) / "kvlab-js"
    where.mkdir(exist_ok=True)
    lock = (JS / "package-lock.json").read_bytes()
    stamp = where / ".installed-lock"
    with open(where / ".installing", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_bytes() != lock:
            for name in ("package.json", "package-lock.json"):
                shutil.copy(JS / name, where / name)
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=where,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr
            stamp.write_bytes(lock)
        for script in JS.glob("*.mjs"):
            shutil.copy(script, where / script.name)  # imports resolve next to node_modules
    return where
