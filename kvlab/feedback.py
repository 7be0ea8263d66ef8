"""How a check result looks: rich in JupyterLab, deterministic plain text elsewhere.

Every result carries three forms at once (the approach of otter-grader and
Kaggle's learntools): HTML for a person, plain text that papermill logs and
nbval can compare, and ``application/vnd.kvlab.check+json`` for CI and an
instructor's tools to read outcomes from an executed notebook.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

MIME = "application/vnd.kvlab.check+json"
CORRECT, INCORRECT, NOT_ATTEMPTED, UNAVAILABLE = "correct", "incorrect", "not-attempted", "unavailable"
STATUSES = (CORRECT, INCORRECT, NOT_ATTEMPTED, UNAVAILABLE)
RANK = {UNAVAILABLE: 0, NOT_ATTEMPTED: 1, INCORRECT: 2, CORRECT: 3}  # which of two results is an exercise's best

LABEL = {
    CORRECT: "Correct",
    INCORRECT: "Not yet",
    NOT_ATTEMPTED: "Not attempted yet",
    UNAVAILABLE: "Can't be checked here",
}
# plain-text marks that read right in a CI log (a checkbox "[x]" would say "done" for "not yet")
MARK = {CORRECT: "[PASS]", INCORRECT: "[FAIL]", NOT_ATTEMPTED: "[TODO]", UNAVAILABLE: "[SKIP]"}
_COLOUR = {CORRECT: "#1a7f37", INCORRECT: "#cf222e", NOT_ATTEMPTED: "#6e7781", UNAVAILABLE: "#9a6700"}



def printable(text: str) -> str:
    """``text`` safe for a terminal: each character that is not printable (a control character, the start of an
    escape sequence, an unassigned or private one) as its Python escape. For what a table shows that came from
    outside: a name a request asked for, a file name in a scanned repository."""
    return text if text.isprintable() else "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)

@dataclass
class Result:
    """The outcome of one exercise's check."""

    lesson: str
    exercise: str
    title: str
    status: str
    message: str
    passed: list[str] = field(default_factory=list)  # what was checked and held
    hint_count: int = 0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    @property
    def id(self) -> str:
        return f"{self.lesson}.{self.exercise}"

    def as_json(self) -> dict:
        return {"lesson": self.lesson, "exercise": self.exercise, "status": self.status, "message": self.message}

    def plain(self) -> str:
        lines = [f"{MARK[self.status]} {self.id} {self.title}: {LABEL[self.status]}"]
        lines += [f"    - {item}" for item in self.passed]
        if self.message:
            lines += [f"    {line}" for line in self.message.splitlines()]
        if self.status == INCORRECT and self.hint_count:
            lines.append(f"    A hint: hint({self.exercise!r})")
        return "\n".join(lines)

    def html(self) -> str:
        colour = _COLOUR[self.status]
        items = "".join(f"<li>{html.escape(item)}</li>" for item in self.passed)
        message = html.escape(self.message).replace("\n", "<br>")
        hint = (
            f"<div style='margin-top:4px;color:#57606a'>Stuck? Run <code>hint({self.exercise!r})</code>.</div>"
            if self.status == INCORRECT and self.hint_count else ""
        )
        return (
            f"<div class='kvlab-check' data-status='{self.status}' style='border-left:4px solid {colour};"
            f"padding:6px 10px;margin:4px 0;font-family:sans-serif'>"
            f"<div><span style='color:{colour};font-weight:bold'>{LABEL[self.status]}</span> "
            f"&middot; <b>{html.escape(self.id)}</b> {html.escape(self.title)}</div>"
            + (f"<ul style='margin:4px 0'>{items}</ul>" if items else "")
            + (f"<div>{message}</div>" if message else "")
            + hint
            + "</div>"
        )

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": self.plain(), "text/html": self.html(), MIME: self.as_json()}

    def __repr__(self) -> str:
        return self.plain()

    def __bool__(self) -> bool:
        return self.status == CORRECT


@dataclass
class Hint:
    """A hint, shown on demand; plain and rich like a result."""

    exercise: str
    number: int
    total: int
    text: str

    def plain(self) -> str:
        return f"Hint {self.number}/{self.total} for {self.exercise}: {self.text}"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        more = (
            f" (run <code>hint({self.exercise!r})</code> again for the next one)" if self.number < self.total else ""
        )
        return {
            "text/plain": self.plain(),
            "text/html": f"<div style='border-left:4px solid #0969da;padding:6px 10px'>"
            f"<b>Hint {self.number}/{self.total}</b> for {html.escape(self.exercise)}: "
            f"{html.escape(self.text)}{more}</div>",
        }

    def __repr__(self) -> str:
        return self.plain()


@dataclass
class Solution:
    """An exercise's worked answer, shown only when asked for with ``solution("exN")``."""

    exercise: str
    source: str  # where it comes from, e.g. solutions/00-start-here.ipynb
    code: str

    def plain(self) -> str:
        body = "\n".join(f"    {line}" for line in self.code.splitlines())
        return f"Solution for {self.exercise} (from {self.source}):\n{body}"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {
            "text/plain": self.plain(),
            "text/html": f"<div style='border-left:4px solid #8250df;padding:6px 10px'><b>Solution</b> for "
            f"{html.escape(self.exercise)} <span style='color:#57606a'>(from {html.escape(self.source)})</span>"
            f"<pre style='margin:4px 0'>{html.escape(self.code)}</pre>"
            "<div style='color:#57606a'>Type it in your own words, run it, then check it.</div></div>",
        }

    def __repr__(self) -> str:
        return self.plain()
