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
import shlex
import shutil
import subprocess
import sys
import traceback
from pathlib import Path


def shell() -> list[str]:
    if os.name == "nt":
        return [os.environ.get("COMSPEC", "cmd.exe")]
    return [os.environ.get("SHELL") or shutil.which("sh") or "/bin/sh"]


# A user's start-up files often put something first on PATH (pyenv, conda, nvm), which would hide the
# workbook's `python`. These run the user's own files, then put the workbook's tools first again.
BASHRC = """[ -f ~/.bashrc ] && . ~/.bashrc
export PATH="$KVLAB_VENV_BIN:$PATH"
"""
ZSHENV = """[ -f "${KVLAB_ZDOTDIR:-$HOME}/.zshenv" ] && . "${KVLAB_ZDOTDIR:-$HOME}/.zshenv"
"""
ZSHRC = """ZDOTDIR="${KVLAB_ZDOTDIR:-$HOME}"
[ -f "$ZDOTDIR/.zshrc" ] && . "$ZDOTDIR/.zshrc"
export PATH="$KVLAB_VENV_BIN:$PATH"
"""


def with_tools_first(argv: list[str], env: dict[str, str], venv_bin: str) -> list[str]:
    """``argv`` for a shell that keeps the workbook's tools first on PATH after the user's start-up files
    (bash, zsh, fish); other shells as they are."""
    name = Path(argv[0]).name
    env["KVLAB_VENV_BIN"] = venv_bin
    files = Path(sys.prefix) / "kvlab-shell"
    if name == "fish":
        return [*argv, "--init-command", f"set -gx PATH {shlex.quote(venv_bin)} $PATH"]
    if name not in ("bash", "zsh"):
        return argv
    try:
        files.mkdir(exist_ok=True)
        if name == "bash":
            _write(files / "bashrc", BASHRC)
            return [argv[0], "--rcfile", str(files / "bashrc"), *argv[1:]]
        _write(files / ".zshenv", ZSHENV)
        _write(files / ".zshrc", ZSHRC)
    except OSError:  # an environment we may not write to: the shell as it is, PATH as set above
        return argv
    if "ZDOTDIR" in env:
        env["KVLAB_ZDOTDIR"] = env["ZDOTDIR"]
    env["ZDOTDIR"] = str(files)
    return argv


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def terminal_environment(base: dict[str, str]) -> tuple[dict[str, str], str]:
    """``base`` plus the emulator's variables and the venv on PATH, and the line to greet with."""
    env = dict(base)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, *(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)])
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    from .connection import environment
    from .emulator.control import EmulatorError

    # Whatever happens, the learner gets a shell: a terminal that does not open helps nobody.
    try:
        env.update(environment())
    except (EmulatorError, OSError) as exc:  # no emulator, or its state directory is unusable
        return env, f"kvlab: this terminal is not pointed at the emulator ({exc})."
    except Exception:  # a defect in kvlab: shown in full, not turned into a polite line
        traceback.print_exc()
        return env, "kvlab: this terminal is not pointed at the emulator (a kvlab bug, above; please report it)."
    return env, ("kvlab: this terminal reaches the emulator (vaults at https://<name>.localhost, "
                 f"Databricks at {env['DATABRICKS_HOST']}); the Azure CLI: az login --identity; see: kvlab env --help")


def main() -> None:
    env, greeting = terminal_environment(dict(os.environ))
    print(greeting, flush=True)
    argv = with_tools_first(shell() + sys.argv[1:], env, str(Path(sys.executable).parent))
    if os.name == "nt":  # no exec on Windows: run the shell and pass its exit code on
        sys.exit(subprocess.call(argv, env=env))
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main()
