#!/usr/bin/env python3
"""Set up and run kvlab from a fresh clone. Needs only Python 3.10+.

    python3 dev.py lab     set up .venv, start the emulator, open the workbook in JupyterLab
    python3 dev.py test    set up .venv (with test tools) and run the whole test suite

Both are safe to run again: the virtual environment is reused and only
reinstalled when pyproject.toml changes. Extra arguments after ``test`` go to
pytest, after ``lab`` to JupyterLab.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def say(message: str) -> None:
    print(f"[kvlab] {message}", flush=True)


def run(*command: str | Path, **kwargs) -> None:
    result = subprocess.run([str(c) for c in command], **kwargs)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv(extras: str) -> None:
    """Create .venv and install kvlab (editable) with ``extras``, unless already current."""
    if sys.version_info < (3, 10):
        sys.exit(f"kvlab needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        say(f"creating {VENV.name}/")
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:  # e.g. Debian without python3-venv
            sys.exit(f"could not create a virtual environment ({exc}); on Debian/Ubuntu: apt install python3-venv")
    fingerprint = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".kvlab-installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    say(f"installing kvlab{f'[{extras}]' if extras else ''} into {VENV.name}/ (first time takes a few minutes)")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    target = f".[{extras}]" if extras else "."
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", target, cwd=ROOT)
    stamp.write_text(fingerprint)


def lab(args: list[str]) -> None:
    ensure_venv("")
    run(BIN / "kvlab", "emulator", "start")
    say("opening the workbook: notebooks/00-start-here.ipynb")
    start = "notebooks/00-start-here.ipynb" if (ROOT / "notebooks/00-start-here.ipynb").exists() else ""
    command = [str(BIN / "jupyter"), "lab", *([start] if start else []), *args]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        command.append("--allow-root")  # containers (Codespaces, Docker) often run as root
    os.chdir(ROOT)
    if os.name == "nt":
        sys.exit(subprocess.call(command))
    os.execv(command[0], command)


def test(args: list[str]) -> None:
    ensure_venv("test")
    os.chdir(ROOT)
    sys.exit(subprocess.call([str(PYTHON), "-m", "pytest", *args]))


def main() -> None:
    commands = {"lab": lab, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
