"""A pytest plugin loaded for every run (``-p kvlab_pytest`` in pyproject), whatever paths are collected.

It gives each test process (each xdist worker) its own emulator state
directory and port, through the environment, so the tests' own clients and
every notebook kernel the process starts (nbval, papermill) share one
emulator that is never the user's own. It lives here rather than in
tests/conftest.py because `pytest notebooks/` does not load that conftest.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from kvlab.paths import free_port


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which counts cores
def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker more than there are cores. Much of the suite waits (on notebook kernels, on
    subprocesses, on the emulator and the database), so a third worker on two cores keeps them busy: the whole
    suite took 6:19 with three workers against 7:17 with two, on the same two-core machine."""
    return (os.cpu_count() or 1) + 1


def pytest_configure(config):
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    state = Path(tempfile.mkdtemp(prefix=f"kvlab-test-{worker}-"))
    os.environ["KVLAB_STATE_DIR"] = str(state)
    os.environ["KVLAB_PORT"] = str(free_port())
    config.kvlab_state = state


# The files that take longest, longest first (per-file sums of --durations=0 on two cores, rounded): they start
# first, so that none is left running alone at the end while the other workers idle. `--dist loadfile` hands out
# whole files in collection order (with --no-loadscope-reorder; by default it would start the files with the most
# tests first, and a file of one long test, like the hub's, last).
LONGEST_FIRST = (
    "tests/notebooks/test_other_answers.py",  # 120 s
    "tests/lessons/test_lesson06.py",  # 70 s
    "tests/test_lesson_az_commands.py",  # 65 s
    "tests/test_cli_edges.py",  # 60 s
    "tests/test_azure_cli.py",  # 60 s
    "tests/test_cli_access.py",  # 55 s
    "tests/test_other_processes.py",  # 45 s
    "tests/lessons/test_lesson07.py",  # 40 s
    "tests/workshop/test_hub.py",  # 40 s
    "tests/test_leaks.py",  # 40 s
    "tests/test_cli.py",  # 40 s
    "tests/emulator/test_audit_retention.py",  # 30 s
    "tests/test_state_deleted.py",  # 30 s
    "tests/test_dev_lab.py",  # 25 s
    "tests/test_adf.py",  # 25 s
    "tests/test_watch.py",  # 20 s
    "tests/workshop/test_learners.py",  # 20 s
    "tests/notebooks/test_refresh.py",  # 20 s
    "tests/emulator/test_throttling.py",  # 20 s
    "tests/emulator/test_schemathesis.py",  # 20 s
)


def pytest_collection_modifyitems(session, config, items):
    """Start the longest files first (LONGEST_FIRST); refuse a run in which two tests share a node id: pytest-xdist
    would run only one of them.

    (schemathesis 4 under pytest 9.2 once named all twelve fuzzed operations
    `test_operation`; 639 were collected and 628 ran.)
    """
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: in-file order kept
    seen: dict[str, int] = {}
    for item in items:
        seen[item.nodeid] = seen.get(item.nodeid, 0) + 1
    shared = sorted(nodeid for nodeid, count in seen.items() if count > 1)
    if shared:
        raise pytest.UsageError(f"tests share a node id, so some would never run: {', '.join(shared)}")


def pytest_unconfigure(config):
    from kvlab import db
    from kvlab.emulator import control

    state = getattr(config, "kvlab_state", None)
    if state is not None:
        control.stop(state)
        db.stop(state)  # lesson 05's database, if a test started it
        shutil.rmtree(state, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    spent = sum(r.duration for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])
                if r.when == "call" and (".ipynb" in r.nodeid or "tests/notebooks/" in r.nodeid))
    if spent:
        terminalreporter.write_line(f"notebooks: {spent:.1f} s of test time (executed copies in build/notebooks/)")
