"""How fast `kvlab scan` is: this repository (its tracked files, and its whole history) and larger trees.

A pre-commit hook that takes many seconds gets switched off, so this times the
command as a user runs it (a new process each time, imports included) on:

- this repository's tracked files (``kvlab scan $(git ls-files)``) and its
  history (``kvlab scan --history .``);
- a generated repository (deterministic: the same files and commits on every
  run, a few seconds to build with ``git fast-import``): its working tree and
  its history of a few hundred commits;
- an installed package's folder in this virtual environment (its source as a
  working tree: real code, not generated).

Each scan runs twice: as `kvlab scan` chooses (worker processes for large
scans) and in one process, as under pre-commit (which already runs one kvlab
per CPU on its share of the files; ``PRE_COMMIT=1`` is what it sets). Prints a
table, then one JSON line of the figures. Nothing here asserts or fails on a
number. ``--profile`` adds where one in-process scan of this repository spends
its time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
KVLAB = [sys.executable, "-m", "kvlab.cli"]
GIT_ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}


# -- what is scanned ------------------------------------------------------------------------------


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, input=stdin, capture_output=True, check=True)
    return done.stdout.decode("utf-8", "replace")


def tracked(repo: Path) -> list[str]:
    """The tracked files that exist in the working tree (as `git ls-files` lists them)."""
    return [name for name in git(repo, "ls-files", "-z").split("\0") if name and (repo / name).is_file()]


def history(repo: Path) -> tuple[int, int, int]:
    """(commits, file versions, bytes) in a repository's history: the blobs a history scan reads."""
    commits = len(git(repo, "rev-list", "--all").split())
    objects = "".join(line.split(" ")[0] + "\n" for line in git(repo, "rev-list", "--all", "--objects").splitlines())
    described = git(repo, "cat-file", "--batch-check=%(objecttype) %(objectsize)", stdin=objects.encode())
    blobs = [int(line.split()[1]) for line in described.splitlines() if line.startswith("blob ")]
    return commits, len(blobs), sum(blobs)


def walked(folder: Path) -> tuple[int, int]:
    """(files, bytes) under a folder, skipping what `kvlab scan` skips (hidden folders, __pycache__)."""
    files = size = 0
    for where, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "node_modules")]
        files += len(names)
        size += sum((Path(where) / name).stat().st_size for name in names)
    return files, size


# -- a generated repository -----------------------------------------------------------------------------------


WORDS = ("orders", "sales", "landing", "silver", "gold", "customers", "invoices", "events", "daily", "report")
KINDS = ("password", "api-key", "storage-key", "token", "connection-string")


def module(rng: random.Random, number: int) -> str:
    """A Python module of the kind the lessons teach: functions, constants, Key Vault secret names."""
    lines = [f'"""Pipeline step {number}: loads {rng.choice(WORDS)} into {rng.choice(WORDS)}."""', "",
             "import os", "", f'SECRET_NAME = "{rng.choice(WORDS)}-{rng.choice(KINDS)}"',
             f'VAULT_URL = "https://kv-{rng.choice(WORDS)}-dev.vault.azure.net/"', ""]
    for function in range(rng.randint(8, 20)):
        lines += [f"def step_{number}_{function}(rows, limit={rng.randint(1, 999)}):",
                  f'    """Keep the {rng.choice(WORDS)} rows under the limit."""',
                  f'    name = os.environ.get("{rng.choice(WORDS).upper()}_TABLE", "{rng.choice(WORDS)}")',
                  f"    kept = [row for row in rows if row['{rng.choice(WORDS)}'] < limit]",
                  '    print(f"{name}: {len(kept)} of {len(rows)} rows")',
                  "    return kept", ""]
    return "\n".join(lines) + "\n"


def notebook(rng: random.Random, number: int) -> str:
    """A small notebook: Markdown and code cells, one output."""
    cells = [{"cell_type": "markdown", "id": "c0", "metadata": {}, "source": [f"# Notebook {number}\n"]}]
    for index in range(1, rng.randint(4, 10)):
        source = (f'secret = client.get_secret("{rng.choice(WORDS)}-{rng.choice(KINDS)}")\n'
                  f'df = spark.read.table("{rng.choice(WORDS)}.{rng.choice(WORDS)}")\n'
                  f"df.limit({rng.randint(1, 100)}).show()\n")
        cells.append({"cell_type": "code", "id": f"c{index}", "metadata": {}, "execution_count": index,
                      "source": source.splitlines(keepends=True),
                      "outputs": [{"name": "stdout", "output_type": "stream", "text": [f"{index} rows\n"]}]})
    document = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def initial_files(rng: random.Random, count: int) -> dict[str, str]:
    files = {}
    for number in range(count):
        folder = f"{WORDS[number % len(WORDS)]}/part{number % 7}"
        if number % 10 == 9:
            files[f"{folder}/explore_{number}.ipynb"] = notebook(rng, number)
        elif number % 10 == 8:
            readme = f"# Step {number}\n\n" + "Reads the landing zone.\n" * rng.randint(5, 40)
            files[f"{folder}/README_{number}.md"] = readme
        else:
            files[f"{folder}/step_{number}.py"] = module(rng, number)
    return files


def fast_import_stream(files: dict[str, str], commits: int, rng: random.Random, leak: str) -> bytes:
    """``git fast-import`` input: one commit adding every file, then commits changing a few files each.

    A third of the way in, a commit pastes ``leak`` into a module; two thirds
    in, a commit takes it out again: the history scan has one finding to report.
    """
    out = io.BytesIO()

    def data(text: str) -> None:
        raw = text.encode()
        out.write(b"data %d\n" % len(raw) + raw + b"\n")

    current = dict(files)
    python = sorted(name for name in files if name.endswith(".py"))
    leaked_in = python[0]
    for number in range(1, commits + 1):
        if number == 1:
            changed = dict(current)
        else:
            changed = {}
            for name in rng.sample(python, rng.randint(1, 3)):
                changed[name] = current[name] + f"\nRUN_{number} = {rng.randint(0, 10**6)}\n"
            if number == commits // 3:
                changed[leaked_in] = current[leaked_in] + f'DATABRICKS_TOKEN = "{leak}"\n'
            if number == 2 * commits // 3:
                changed[leaked_in] = current[leaked_in].replace(f'DATABRICKS_TOKEN = "{leak}"\n', "")
        current.update(changed)
        when = 1_700_000_000 + number * 3600
        out.write(f"commit refs/heads/main\nmark :{number}\n".encode())
        out.write(f"author Dana Data <dana@example.com> {when} +0000\n".encode())
        out.write(f"committer Dana Data <dana@example.com> {when} +0000\n".encode())
        data(f"Change {number}")
        if number > 1:
            out.write(f"from :{number - 1}\n".encode())
        for name, text in sorted(changed.items()):
            out.write(f"M 100644 inline {name}\n".encode())
            data(text)
    return out.getvalue()


def generate(where: Path, files: int, commits: int) -> Path:
    """A repository of ``files`` files and ``commits`` commits, the same on every run (seeded, fixed dates)."""
    from kvlab.leaks import FAKE_DATABRICKS_TOKEN

    rng = random.Random(20240304)
    repo = where / "generated"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "fast-import", "--quiet", stdin=fast_import_stream(initial_files(rng, files), commits, rng,
                                                                 FAKE_DATABRICKS_TOKEN))
    git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    git(repo, "reset", "-q", "--hard", "refs/heads/main")
    return repo


# -- timing ---------------------------------------------------------------------------------------------------


def timed(args: list[str], cwd: Path, one_process: bool, repeat: int) -> tuple[float, int]:
    """Median wall time of ``kvlab scan <args>`` and its number of findings."""
    env = {k: v for k, v in os.environ.items() if k != "PRE_COMMIT"}
    if one_process:
        env["PRE_COMMIT"] = "1"
    times, found = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([*KVLAB, "scan", *args], cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            raise SystemExit(f"kvlab scan {' '.join(args[:3])}... failed: {done.stderr.strip()}")
        found = len(json.loads(done.stdout))
    return statistics.median(times), found


def measure(label: str, args: list[str], cwd: Path, files: int, size: int, repeat: int) -> list[dict]:
    rows = []
    for one_process in (False, True):
        seconds, found = timed(args, cwd, one_process, repeat)
        rows.append({"scan": label, "mode": "one process" if one_process else "auto", "files": files,
                     "MB": round(size / 1e6, 2), "findings": found, "seconds": round(seconds, 2),
                     "files/s": round(files / seconds), "MB/s": round(size / 1e6 / seconds, 2)})
        print(f"  {label} ({rows[-1]['mode']}): {seconds:.2f} s", file=sys.stderr)
    return rows


def profile(files: list[str]) -> str:
    """Where one in-process scan of this repository's tracked files spends its time (top 15, own time)."""
    from kvlab import leaks

    os.environ["PRE_COMMIT"] = "1"  # one process, so that the profile sees the scanning itself
    profiler = cProfile.Profile()
    profiler.runcall(leaks.scan, *files, root=ROOT)
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(15)
    return report.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=400, help="files in the generated repository (default 400)")
    parser.add_argument("--commits", type=int, default=300, help="commits in the generated repository (default 300)")
    parser.add_argument("--package", default="tornado",
                        help="an installed package whose folder is scanned as a working tree (default tornado)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scan; the median is shown (default 1)")
    parser.add_argument("--profile", action="store_true", help="also profile a scan of this repository")
    options = parser.parse_args()

    rows = []
    files = tracked(ROOT)
    rows += measure("kvlab (tracked files)", files, ROOT, len(files), sum((ROOT / f).stat().st_size for f in files),
                    options.repeat)
    commits, blobs, size = history(ROOT)
    rows += measure(f"kvlab --history ({commits} commits)", ["--history", "."], ROOT, blobs, size, options.repeat)
    with tempfile.TemporaryDirectory(prefix="kvlab-bench-") as tmp:
        start = time.perf_counter()
        repo = generate(Path(tmp), options.files, options.commits)
        print(f"  generated {options.files} files, {options.commits} commits in "
              f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
        count, size = walked(repo)
        rows += measure("generated (working tree)", ["."], repo, count, size, options.repeat)
        commits, blobs, size = history(repo)
        rows += measure(f"generated --history ({commits} commits)", ["--history", "."], repo, blobs, size,
                        options.repeat)
    package = Path(__import__(options.package).__file__).parent
    count, size = walked(package)
    rows += measure(f"site-packages/{options.package}", [str(package)], ROOT, count, size, options.repeat)

    print(tabulate(rows, headers="keys", disable_numparse=True))
    print(json.dumps({"cpus": os.cpu_count(), "rows": rows}))
    if options.profile:
        print(profile(files))


if __name__ == "__main__":
    main()
