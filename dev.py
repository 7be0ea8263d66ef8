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
import json
import os
import shlex
import signal
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


# Left out of .venv whatever asks for them (uv's override with a marker that never holds; pip, where uv cannot
# run, installs them). rfc3987-syntax: jsonschema[format-nongpl] (asked for by jupyter-events) imports it at once,
# and it compiles a Lark grammar as it is imported, 3 s of CPU in every process that loads jsonschema's format
# checkers (each Jupyter server, nbformat, papermill); it checks only the "iri" formats, which none of their
# schemas uses. (python-jsonschema/jsonschema#1428)
LEFT_OUT = ("rfc3987-syntax",)


def _fingerprint(extras: str) -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode() + repr(LEFT_OUT).encode()).hexdigest()


def _stamp(extras: str) -> Path:
    return VENV / f".kvlab-installed-{extras or 'base'}"


def installed(extras: str) -> bool:
    """Whether .venv holds kvlab with ``extras``, installed from the current pyproject.toml."""
    stamp = _stamp(extras)
    return stamp.exists() and stamp.read_text() == _fingerprint(extras)


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
    if installed(extras) or (not extras and installed("test")):  # the test set-up has all the lab needs
        return
    say(f"installing kvlab{f'[{extras}]' if extras else ''} into {VENV.name}/ (the first time takes a minute or so)")
    # -qq: pip's and setuptools' chatter stays out of the learner's way; errors still show.
    # uv (from PyPI) installs what pip would, several times faster; pip does it where uv cannot run. Like pip, it
    # compiles the bytecode as it installs (--compile-bytecode): where PYTHONDONTWRITEBYTECODE is set, as on this
    # project's CI, every process would otherwise compile what it imports again (the notebook side's imports:
    # 8.6 s instead of 4.0 s, in every kernel and every papermill run).
    run(PYTHON, "-m", "pip", "install", "-qq", "--upgrade", "pip")
    target = f".[{extras}]" if extras else "."
    overrides = VENV / "kvlab-left-out.txt"
    overrides.write_text("".join(f'{name} ; sys_platform == "never"\n' for name in LEFT_OUT))
    with_uv = subprocess.run([str(PYTHON), "-m", "pip", "install", "-qq", "uv"]).returncode == 0
    if not with_uv or subprocess.run([str(PYTHON), "-m", "uv", "pip", "install", "-q", "--python", str(PYTHON),
                                      "--override", str(overrides), "--compile-bytecode", "-e", target],
                                     cwd=ROOT).returncode != 0:
        say("installing with pip instead of uv")
        run(PYTHON, "-m", "pip", "install", "-qq", "-e", target, cwd=ROOT)
    _stamp(extras).write_text(_fingerprint(extras))


START = "notebooks/00-start-here.ipynb"  # the notebook JupyterLab opens first
LAB_SETTINGS = ROOT / "kvlab" / "lab-settings.json"  # JupyterLab settings the workbook sets for its learners


def install_lab_settings() -> None:
    """The workbook's JupyterLab settings (no prompt to fetch Jupyter's news from the internet: the course runs
    offline), where the JupyterLab in .venv reads a package's overrides."""
    app_dir = Path(os.environ.get("JUPYTERLAB_DIR") or VENV / "share" / "jupyter" / "lab")
    target = app_dir / "settings" / "overrides.d" / "kvlab.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(LAB_SETTINGS.read_bytes())


def lab_command(args: list[str]) -> list[str]:
    """JupyterLab serving the whole workbook (the repository root) with the start notebook open.

    The root is set explicitly: given only a notebook, JupyterLab would serve that
    notebook's folder, and labs/ and solutions/ would be out of reach.
    """
    command = [str(BIN / "jupyter"), "lab", f"--ServerApp.root_dir={ROOT}"]
    if os.name != "nt":  # terminals start in the emulator's environment (kvlab/terminal.py); kernels do not
        command.append(f"--ServerApp.terminado_settings=shell_command={shlex.quote(str(PYTHON))} -m kvlab.terminal")
    if (ROOT / START).exists() and not any(a.endswith(".ipynb") for a in args):
        command.append(str(ROOT / START))
    command += args
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        command.append("--allow-root")  # containers (Codespaces, Docker) often run as root
    return command


def start_emulator() -> bool:
    """Start the emulator (or find it running); True when this call started it."""
    done = subprocess.run([str(BIN / "kvlab"), "emulator", "start"], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(done.returncode)
    info = json.loads(done.stdout)
    if info.get("alreadyRunning"):
        say(f"using the emulator already running on port {info['port']} (it keeps running after JupyterLab; "
            "stop it with: .venv/bin/kvlab emulator stop)")
        return False
    say(f"started the emulator on port {info['port']}; it stops when JupyterLab does")
    return True


def stop_emulator() -> None:
    subprocess.run([str(BIN / "kvlab"), "emulator", "stop"], stdout=subprocess.DEVNULL)
    say("stopped the emulator")


def database_running() -> bool:
    """Whether lesson 05's PostgreSQL (kvlab db) runs now."""
    done = subprocess.run([str(BIN / "kvlab"), "db", "status"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
    return done.returncode == 0 and json.loads(done.stdout).get("running", False)


def stop_database() -> None:
    subprocess.run([str(BIN / "kvlab"), "db", "stop"], stdout=subprocess.DEVNULL)
    say("stopped the database a lesson started")


def lab(args: list[str]) -> None:
    ensure_venv("")
    install_lab_settings()
    started = start_emulator()
    database_before = database_running()
    say(f"opening the workbook: {START} (Ctrl-C twice, or File > Shut Down, to stop)")
    os.chdir(ROOT)
    child = subprocess.Popen(lab_command(args))
    forward = lambda signum, frame: child.send_signal(signum)  # noqa: E731  JupyterLab decides, we wait
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), forward if name != "SIGINT" else lambda *_: None)
    try:
        code = child.wait()
    finally:
        if started:
            stop_emulator()
        if not database_before and database_running():  # lesson 05 started it during this session
            stop_database()
    sys.exit(code)


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
