"""The learner's progress: the latest result of every exercise, in a local file.

Each check records its outcome in ``progress.json`` in the kvlab state
directory. `show()` (``kvlab.progress()``) draws every lesson's progress as
static HTML (and plain text), which also survives export to HTML;
``kvlab progress`` prints the same table in a terminal.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from . import paths
from .feedback import CORRECT, LABEL, MARK, RANK, STATUSES

FILE = "progress.json"
_MARK: dict[str | None, str] = {None: "[    ]"}  # never checked
_MARK.update(MARK)


def _path(state_dir=None, create: bool = False) -> Path:
    """The progress file; only recording a result may create the state directory."""
    return paths.state_dir(state_dir, create=create) / FILE


def load(state_dir=None) -> dict:
    try:
        data = json.loads(_path(state_dir).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    # keep only {lesson: {exercise: {...}}}: a damaged entry must not break a check or the table
    return {lesson: {ex: e for ex, e in exercises.items() if isinstance(e, dict)}
            for lesson, exercises in data.items() if isinstance(exercises, dict)}


def record(result, state_dir=None) -> None:
    """Remember a result: the latest, and the best so far. Never fails a check.

    The best is what progress shows: an exercise once solved stays solved when a
    later run (a guided notebook's demonstration, a fresh start) checks it again.
    """
    try:
        path = _path(state_dir, create=True)
        data = load(state_dir)
        entry = data.setdefault(result.lesson, {}).get(result.exercise, {})
        best = entry.get("best")
        if best not in STATUSES or RANK[result.status] >= RANK[best]:
            best = result.status
        data[result.lesson][result.exercise] = {
            "status": result.status,
            "best": best,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".progress-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)  # no half-written temporary file left in the state directory
            raise
    except OSError:
        pass


def rows(state_dir=None) -> list[dict]:
    """One row per exercise of every lesson, with its latest status (None if never checked)."""
    from .checks import all_lessons, lesson_spec

    data = load(state_dir)
    out = []
    for number in all_lessons():
        spec = lesson_spec(number)
        for exercise in spec.exercises:
            entry = data.get(spec.number, {}).get(exercise.id, {})
            status = entry.get("best", entry.get("status"))
            out.append({
                "lesson": spec.number, "lessonTitle": spec.title, "exercise": exercise.id,
                "title": exercise.title, "status": status if status in STATUSES else None,
            })
    return out


def summary(state_dir=None) -> list[dict]:
    """Per lesson: how many exercises are correct out of how many."""
    lessons: dict[str, dict] = {}
    for row in rows(state_dir):
        entry = lessons.setdefault(row["lesson"], {"lesson": row["lesson"], "title": row["lessonTitle"], "correct": 0, "total": 0})
        entry["total"] += 1
        entry["correct"] += row["status"] == CORRECT
    return list(lessons.values())


def text(state_dir=None) -> str:
    lines = []
    for lesson in summary(state_dir):
        lines.append(f"Lesson {lesson['lesson']} {lesson['title']}: {lesson['correct']}/{lesson['total']} correct")
        for row in rows(state_dir):
            if row["lesson"] == lesson["lesson"]:
                lines.append(f"  {_MARK[row['status']]} {row['exercise']} {row['title']}")
    return "\n".join(lines) or "No lessons."


class Dashboard:
    """Progress as plain text and static HTML: a bar per lesson, then each exercise.

    Static on purpose: a widget view would win over the HTML in exported
    notebooks (nbconvert, GitHub) and show nothing there without its saved state.
    """

    def __init__(self, state_dir=None):
        self.state_dir = state_dir

    def html(self) -> str:
        all_rows = rows(self.state_dir)
        parts = []
        for lesson in summary(self.state_dir):
            done, total = lesson["correct"], lesson["total"]
            parts.append(
                f"<tr><th colspan='3' style='text-align:left'>Lesson {html.escape(lesson['lesson'])} "
                f"{html.escape(lesson['title'])} <progress value='{done}' max='{max(total, 1)}'></progress> "
                f"{done}/{total}</th></tr>"
            )
            parts += [
                f"<tr><td>{html.escape(r['exercise'])}</td><td>{html.escape(r['title'])}</td>"
                f"<td>{html.escape(LABEL.get(r['status'], 'Not checked yet'))}</td></tr>"
                for r in all_rows if r["lesson"] == lesson["lesson"]
            ]
        return (f"<table class='kvlab-progress'><style>.kvlab-progress td, .kvlab-progress th {{text-align:left}}"
                f"</style>{''.join(parts)}</table>")

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": text(self.state_dir), "text/html": self.html()}

    def __repr__(self) -> str:
        return text(self.state_dir)


def show(state_dir=None) -> Dashboard:
    return Dashboard(state_dir)
