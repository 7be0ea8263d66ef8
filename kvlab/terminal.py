"""The shell of a JupyterLab terminal opened from ``python3 dev.py lab``.

JupyterLab starts this instead of the user's shell (``terminado_settings``, set by
``dev.py``). It adds what ``eval "$(kvlab env)"`` would add — the trust bundle,
the managed-identity endpoint, the Databricks workspace and the emulator's HTTPS
proxy — puts the workbook's virtual environment first on ``PATH`` (so ``kvlab``,
``databricks`` and ``python`` are the workbook's), then becomes the user's shell.

Only terminals get this. The server's own environment, which kernels inherit, is
untouched: a kernel connects itself (`kvlab.connect`), and a kernel working against
a real vault must not route through the emulator's proxy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def shell() -> list[str]:
    if os.name == "nt":
        return [os.environ.get("COMSPEC", "cmd.exe")]
    return [os.environ.get("SHELL") or shutil.which("sh") or "/bin/sh"]


def terminal_environment(base: dict[str, str]) -> tuple[dict[str, str], str]:
    """``base`` plus the emulator's variables and the venv on PATH, and the line to greet with."""
    env = dict(base)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, *(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)])
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    from .connect import environment
    from .emulator.control import EmulatorError

    try:
        env.update(environment())
    except EmulatorError as exc:  # the shell opens anyway, not pointed at the emulator
        return env, f"kvlab: this terminal is not pointed at the emulator ({exc})."
    return env, ("kvlab: this terminal reaches the emulator (vaults at https://<name>.localhost, "
                 f"Databricks at {env['DATABRICKS_HOST']}); see: kvlab env --help")


def main() -> None:
    env, greeting = terminal_environment(dict(os.environ))
    print(greeting, flush=True)
    argv = shell() + sys.argv[1:]
    if os.name == "nt":  # no exec on Windows: run the shell and pass its exit code on
        sys.exit(subprocess.call(argv, env=env))
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main()
