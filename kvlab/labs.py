"""Build ``labs/`` from ``solutions/``: one source for every exercise.

In a solution notebook, a region of a code cell between ``# BEGIN SOLUTION``
and ``# END SOLUTION`` is the answer. In the lab it becomes a stub that says
what to write and raises ``NotImplementedError`` (as nbgrader does), so a lab
run as shipped fails only where the learner has work to do::

    # BEGIN SOLUTION: Exercise 2 - read sql-db-password from the vault
    password = client.get_secret("sql-db-password").value
    # END SOLUTION

becomes::

    # Exercise 2 - read sql-db-password from the vault
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 2 - read sql-db-password from the vault")

and the cell is tagged ``raises-exception`` (see `kvlab.stubs`). Markdown
cells carry answers between ``<!-- BEGIN SOLUTION -->`` and
``<!-- END SOLUTION -->``. Labs are written without outputs, with clean
metadata and the solution's cell ids, so a rebuild of an unchanged solution
changes nothing and ``--check`` can tell when labs/ is stale.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import paths, stubs

CODE_BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b[:\s-]*(?P<task>.*?)\s*$")
CODE_END = re.compile(r"^[ \t]*#\s*END SOLUTION\b")
MD_BEGIN = re.compile(r"^\s*<!--\s*BEGIN SOLUTION\s*-->\s*$")
MD_END = re.compile(r"^\s*<!--\s*END SOLUTION\s*-->\s*$")
MD_STUB = "_Your answer here._"
KEPT_CELL_METADATA = ("tags", "editable", "deletable")
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")


class LabError(ValueError):
    """A solution notebook the builder cannot turn into a lab (says which file and cell)."""


@dataclass(frozen=True)
class Built:
    lab: Path
    changed: bool


def _strip(lines: list[str], begin: re.Pattern, end: re.Pattern, stub, where: str) -> tuple[list[str], int]:
    out: list[str] = []
    regions = 0
    inside = None
    for number, line in enumerate(lines, 1):
        if inside is None:
            match = begin.match(line)
            if match:
                inside = match
                regions += 1
                continue
            if end.match(line):
                raise LabError(f"{where}, line {number}: END SOLUTION without BEGIN SOLUTION")
            out.append(line)
        elif end.match(line):
            out.extend(stub(inside))
            inside = None
        elif begin.match(line):
            raise LabError(f"{where}, line {number}: BEGIN SOLUTION inside another solution region")
    if inside is not None:
        raise LabError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return out, regions


def _code_stub(match: re.Match) -> list[str]:
    return stubs.code(match.group("task"), match.group("indent"))


def strip_solutions(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The lab for one solution notebook (a new notebook; the solution is not changed)."""
    lab = nbformat.v4.new_notebook()
    lab.metadata = {k: solution.metadata[k] for k in KEPT_NOTEBOOK_METADATA if k in solution.metadata}
    for index, cell in enumerate(solution.cells):
        where = f"{name}, cell {index + 1}"
        lines = cell.source.split("\n")
        regions = 0
        if cell.cell_type == "code":
            lines, regions = _strip(lines, CODE_BEGIN, CODE_END, _code_stub, where)
            new = nbformat.v4.new_code_cell("\n".join(lines))
        elif cell.cell_type == "markdown":
            lines, _ = _strip(lines, MD_BEGIN, MD_END, lambda m: [MD_STUB], where)
            new = nbformat.v4.new_markdown_cell("\n".join(lines))
        else:
            new = nbformat.v4.new_raw_cell(cell.source)
        new.metadata = {k: cell.metadata[k] for k in KEPT_CELL_METADATA if k in cell.metadata}
        if cell.cell_type == "code" and regions:  # a stub raises: Run All, nbclient and nbval go on past it
            tags = list(new.metadata.get("tags", []))
            new.metadata["tags"] = tags + [stubs.TAG] if stubs.TAG not in tags else tags
        if cell.cell_type != "code" and cell.get("attachments"):  # images pasted into markdown
            new.attachments = cell.attachments
        new.id = cell.get("id") or f"cell-{index + 1}"
        lab.cells.append(new)
    return lab


def render(notebook: nbformat.NotebookNode) -> str:
    nbformat.validate(notebook)
    return nbformat.writes(notebook, version=4) + "\n"


def build(root: Path, check: bool = False) -> list[Built]:
    """Write (or with ``check``, only compare) ``root/labs`` from ``root/solutions``."""
    solutions = Path(root) / "solutions"
    labs = Path(root) / "labs"
    if not solutions.is_dir():
        raise LabError(f"no solutions/ folder in {root}")
    results = []
    expected = set()
    for source in sorted(solutions.glob("*.ipynb")):
        expected.add(source.name)
        try:
            solution = nbformat.read(source, as_version=4)
        except Exception as exc:  # nbformat raises several kinds for a broken file
            raise LabError(f"{source}: not a readable notebook ({exc})") from None
        text = render(strip_solutions(solution, source.name))
        target = labs / source.name
        changed = not target.exists() or target.read_text(encoding="utf-8") != text
        if changed and not check:
            labs.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
        results.append(Built(target, changed))
    for stray in sorted(labs.glob("*.ipynb")) if labs.is_dir() else []:
        if stray.name not in expected:  # a lab whose solution is gone
            if not check:
                stray.unlink()
            results.append(Built(stray, True))
    return results


# What differs between two runs of a guided notebook. nbval compares outputs after
# replacing these (tests/nbval-sanitize.cfg holds the same expressions, and a test
# keeps the two equal); refresh writes a stable stand-in of the same shape instead,
# so re-running an unchanged notebook changes nothing in Git.
VOLATILE = {
    "ports": r"localhost:\d+",
    "secret-versions": r"\b[0-9a-f]{32}\b",
    "iso-times": r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
    "guids": r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    "package-version": r"kvlab \d+\.\d+\.\d+",
    "database-port": r'"port": \d+',
}


# the stand-in for the n-th distinct value of a kind, from a digest of (notebook, kind, n); times and
# the package version are kept (no committed output shows a time; the version is the one that ran)
STAND_INS = {
    "ports": lambda digest: "localhost:18443",  # the port a learner's emulator uses by default
    "secret-versions": lambda digest: digest[:32],
    "guids": lambda digest: str(uuid.UUID(digest[:32])),
    "database-port": lambda digest: '"port": 15432',  # kvlab db's default port
}


def normalise_outputs(notebook: nbformat.NotebookNode, seed: str) -> None:
    """Make a freshly executed notebook's outputs the same on every run (in place).

    Consecutive stream outputs are merged (how a kernel splits them depends on
    timing), and volatile values (VOLATILE) get stand-ins numbered by first
    appearance: the same value keeps the same stand-in throughout the notebook.
    """
    seen: dict[tuple[str, str], str] = {}

    def replace(text: str) -> str:
        for kind, stand_in in STAND_INS.items():
            def one(match: re.Match, kind=kind, stand_in=stand_in) -> str:
                key = (kind, match.group(0))
                if key not in seen:
                    number = sum(k == kind for k, _ in seen)
                    seen[key] = stand_in(hashlib.sha256(f"{seed}:{kind}:{number}".encode()).hexdigest())
                return seen[key]
            text = re.sub(VOLATILE[kind], one, text)
        return text

    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        merged: list = []
        for output in cell.get("outputs", []):
            if (output.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == output.name):
                merged[-1].text += output.text
            else:
                merged.append(output)
        for output in merged:
            if output.output_type == "stream":
                output.text = replace(output.text)
            for mime, data in output.get("data", {}).items():
                if isinstance(data, str):
                    output.data[mime] = replace(data)
        if cell.cell_type == "code":
            cell.outputs = merged


def refresh_outputs(root: Path, timeout: int = 600, only: list[Path] | None = None) -> list[Path]:
    """Execute the guided notebooks in ``root/notebooks`` (or ``only`` these) in place, with a fresh emulator.

    Their outputs are committed and re-verified by nbval, so they are made in a
    clean state: a temporary state directory on a free port, stopped afterwards.
    """
    import os
    import shutil
    import tempfile

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from . import tracker
    from .emulator import control

    state = Path(tempfile.mkdtemp(prefix="kvlab-outputs-"))
    port = paths.free_port()
    done = []
    with paths.environment_kept(("KVLAB_STATE_DIR", "KVLAB_PORT")):
        os.environ.update(KVLAB_STATE_DIR=str(state), KVLAB_PORT=str(port))
        try:
            for path in [Path(p) for p in only] if only else sorted((Path(root) / "notebooks").glob("*.ipynb")):
                notebook = nbformat.read(path, as_version=4)
                try:
                    NotebookClient(notebook, kernel_name="python3", timeout=timeout, record_timing=False,
                                   resources={"metadata": {"path": str(path.parent)}}).execute()
                except CellExecutionError as exc:  # the cell and its error, not the kernel's coloured traceback
                    raise LabError(f"{path.name}: a cell raised {exc.ename}: {exc.evalue}") from None
                if tracker.load(state):  # a demonstration's check passing must not count as the learner's exercise
                    raise LabError(f"{path.name} recorded learner progress: a guided notebook's lesson must be a demo")
                normalise_outputs(notebook, seed=path.name)
                path.write_text(render(notebook), encoding="utf-8")
                done.append(path)
        finally:
            control.stop(state)
            shutil.rmtree(state, ignore_errors=True)
    return done
