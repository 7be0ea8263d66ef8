"""A lab's unfinished exercise: the stub the lab builder writes, and what it shows when it runs.

The lab builder turns each solution region into a stub that raises
``NotImplementedError`` (as nbgrader does) and tags its cell
``raises-exception``, so Run All in JupyterLab, nbclient and nbval go on to the
next cell and reach every check.

papermill does not read that tag: it fails a run on any ``error`` output.
So once a lesson is set up, an unfinished stub shows a short "your turn" notice
instead of a traceback (IPython's ``set_custom_exc``). The cell still ends in
error (the kernel's reply says so, which is why the tag is needed), but no
error output is written, and ``papermill lab.ipynb out.ipynb`` runs a lab as
shipped to the end with exit status 0. Any other ``NotImplementedError``, one
raised inside a function for example, keeps its ordinary traceback. A
`LearnerError` (``check("ex9")`` in a lesson of three) shows as one line.

Every string that ties labs, checks and tests together is named here once.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from .feedback import MARK, NOT_ATTEMPTED

TAG = "raises-exception"  # nbclient, nbval and JupyterLab's Run All go on past a cell tagged so
MARKER = "# YOUR CODE HERE"
RAISE = "raise NotImplementedError("
DEFAULT_TASK = "write the code for this exercise"
MIME = "application/vnd.kvlab.stub+json"
_EXERCISE = re.compile(r"^Exercise (?P<number>\w+)\b")


def code(task: str, indent: str = "") -> list[str]:
    """The lines of a stub: what to write, the marker, and the raise."""
    task = task or DEFAULT_TASK
    return [f"{indent}# {task}", f"{indent}{MARKER}", f"{indent}{RAISE}{task!r})"]


def is_stub_source(source: str) -> bool:
    """Whether a cell's source still holds a lab stub."""
    return RAISE in source


@dataclass
class Notice:
    """What a stub shows when it runs: plain, HTML and MIME, like a check result."""

    task: str

    @property
    def exercise(self) -> str | None:
        match = _EXERCISE.match(self.task)
        return f"ex{match.group('number')}" if match else None

    def plain(self) -> str:
        return (f"{MARK[NOT_ATTEMPTED]} {self.task}: your turn. Replace `raise NotImplementedError(...)` with your code "
                "and run the cell again.")

    def html(self) -> str:
        return (
            "<div class='kvlab-stub' style='border-left:4px solid #6e7781;padding:6px 10px;margin:4px 0;"
            "font-family:sans-serif'><span style='color:#6e7781;font-weight:bold'>Your turn</span> &middot; "
            f"{html.escape(self.task)}<div>Replace <code>raise NotImplementedError(...)</code> with your code "
            "and run the cell again.</div></div>"
        )

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": self.plain(), "text/html": self.html(),
                MIME: {"task": self.task, "exercise": self.exercise}}

    def __repr__(self) -> str:
        return self.plain()


class LearnerError(Exception):
    """A mistake in what the learner typed into a lesson call (an exercise that does not exist, say).

    In a kernel set up by a lesson it shows as one line, ``Name: message``, not a
    traceback into kvlab: the cell still fails, so a notebook run stops there.
    """


def _raised_by_a_cell(tb) -> bool:
    """True when the innermost frame is a cell's own top-level code (not a function it called)."""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_name == "<module>"


def _handler(shell, etype, value, tb, tb_offset=None):
    if etype is NotImplementedError and _raised_by_a_cell(tb):
        from IPython.display import display

        display(Notice(str(value.args[0]) if value.args else DEFAULT_TASK))
        return None
    if issubclass(etype, LearnerError):
        shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])  # the hook ipykernel sends as the error
        return None
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    return None


def install() -> bool:
    """In an IPython kernel, show a running stub as a notice (see the module docstring). False elsewhere."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((NotImplementedError, LearnerError), _handler)
    return True
