"""Run a lesson's cells the way an IPython kernel would, without a kernel.

The right answers in the lesson tests are the solution notebook's own cells,
so tests and notebooks cannot drift apart; wrong answers are those cells with
one mistake put in.
"""

from __future__ import annotations

import contextlib
import io
import linecache
from pathlib import Path

import nbformat

from kvlab.feedback import Result

ROOT = Path(__file__).resolve().parents[1]


def code_cells(name: str, folder: str = "solutions") -> list[str]:
    """The sources of the code cells of ``folder/name``."""
    notebook = nbformat.read(ROOT / folder / name, as_version=4)
    return [c.source for c in notebook.cells if c.cell_type == "code"]


def cell_with(cells: list[str], marker: str) -> str:
    """The one cell containing ``marker``."""
    found = [source for source in cells if marker in source]
    assert len(found) == 1, f"{len(found)} cells contain {marker!r}"
    return found[0]


def exercise_cell(cells: list[str], number: int) -> str:
    return cell_with(cells, f"Exercise {number} ")


def variant(source: str, old: str, new: str) -> str:
    """The answer with one mistake in it (the mistake must really replace something)."""
    assert old in source, old
    return source.replace(old, new)


class Kernel:
    """One user namespace; ``In`` grows before a cell runs, as in IPython; printed output is kept.

    Each cell's source is in ``linecache``, as IPython puts it, so ``inspect.getsource`` finds a function a
    cell defined.
    """

    def __init__(self) -> None:
        self.ns: dict = {"In": [""], "__name__": "__main__"}
        self.output = io.StringIO()

    def run(self, source: str) -> None:
        self.ns["In"].append(source)
        filename = f"<cell {id(self)}-{len(self.ns['In']) - 1}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        with contextlib.redirect_stdout(self.output):
            exec(compile(source, filename, "exec"), self.ns)

    def take_output(self) -> str:
        """What the cells printed since the last call."""
        text = self.output.getvalue()
        self.output = io.StringIO()
        return text

    def check(self, exercise: str) -> Result:
        self.run(f"_result = check({exercise!r})")
        return self.ns.pop("_result")

    def close(self, *names: str) -> None:
        """Close the clients the cells created (``client`` and any other names given)."""
        for name in ("client", *names):
            if hasattr(self.ns.get(name), "close"):
                self.ns[name].close()


@contextlib.contextmanager
def running(*cells: str, kernel: Kernel | None = None, closing: tuple[str, ...] = ()):
    """A kernel (``kernel``, or a new one) that has run ``cells`` (a lesson's parameters, set-up and tools): the
    body of every lesson test's ``kernel`` fixture. Its clients (``client`` and ``closing``) are closed after."""
    k = kernel or Kernel()
    for cell in cells:
        k.run(cell)
    try:
        yield k
    finally:
        k.close(*closing)


def incorrect(kernel: Kernel, exercise: str) -> str:
    """The reason a check gives, asserting it says "incorrect" for a reason of its own (not a crash)."""
    result = kernel.check(exercise)
    assert result.status == "incorrect", (result.status, result.message)
    assert "could not finish" not in result.message
    return result.message


def stubs(cells: list[str]) -> list[str]:
    """A lab's exercise cells as shipped (each still raising NotImplementedError)."""
    return [source for source in cells if "raise NotImplementedError(" in source]


def assert_stubs_not_attempted(kernel: Kernel, lab_cells: list[str], exercises: int) -> None:
    """Every stub of the lab raises, and its check then says "not attempted", naming the stub."""
    found = stubs(lab_cells)
    assert len(found) == exercises
    for number, stub in enumerate(found, 1):
        try:
            kernel.run(stub)
        except NotImplementedError:
            pass
        else:
            raise AssertionError(f"the stub of exercise {number} did not raise NotImplementedError")
        result = kernel.check(f"ex{number}")
        assert result.status == "not-attempted", (number, result.message)
        assert result.message.startswith(f"Exercise {number} still has its stub")
