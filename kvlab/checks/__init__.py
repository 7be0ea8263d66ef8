"""Exercise checks: one module per lesson, one function per exercise.

A lesson module (``kvlab/checks/lessonNN.py``) defines ``LESSON``: its number,
title, the vaults and identities it starts from, and its exercises. A check is
a function of a `Context` that raises `Incorrect`, `NotAttempted` or
`Unavailable` with a specific reason, or returns the list of things it
verified. It looks at real state: the vault through the SDK, the emulator's
audit log and role assignments, the learner's own code.

In a notebook::

    import kvlab
    lesson = kvlab.start_lesson("00", vault_url=vault_url)   # the set-up cell
    check, hint = lesson.check, lesson.hint
    ...
    check("ex1")
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import stubs
from ..feedback import CORRECT, INCORRECT, NOT_ATTEMPTED, UNAVAILABLE, Hint, Result


class NotAttempted(Exception):
    """The exercise has not been done yet (a stub still raises, a name is missing)."""


class Incorrect(Exception):
    """The exercise was attempted but is not right; the message says what to look at."""


class Unavailable(Exception):
    """This check cannot run in this mode (e.g. it needs the emulator's audit log)."""


@dataclass(frozen=True)
class Exercise:
    id: str  # "ex1"
    title: str
    check: Callable[["Context"], list[str] | None]
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class LessonSpec:
    number: str  # "00"
    title: str
    vaults: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()
    # (role, assignee, scope) the lesson starts with, e.g. the learner's own role
    grants: tuple[tuple[str, str, str], ...] = ()
    exercises: tuple[Exercise, ...] = ()
    # on the emulator, after the reset: seed(lesson) puts in what the lesson starts with (e.g. a secret)
    seed: Callable[[Any], None] | None = None

    def exercise(self, exercise_id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        known = ", ".join(repr(e.id) for e in self.exercises)
        raise KeyError(f"lesson {self.number} has no exercise {exercise_id!r}; its exercises are {known}")


@dataclass
class Context:
    """What a check may look at."""

    lesson: Any  # kvlab.lesson.Lesson
    namespace: dict

    @property
    def emulator(self):
        """The emulator's management plane, or Unavailable on a real vault."""
        if self.lesson.lab is None:
            raise Unavailable(
                "this check reads the emulator's own records (audit log, role assignments); "
                "on a real vault, look at the vault's diagnostic logs in the Azure portal instead"
            )
        return self.lesson.lab

    def require(self, name: str, kind: type | tuple[type, ...] | None = None, what: str | None = None) -> Any:
        """The learner's variable ``name``; NotAttempted if it does not exist yet."""
        if name not in self.namespace:
            raise NotAttempted(f"`{name}` does not exist yet: run your code for this exercise first.")
        value = self.namespace[name]
        if kind is not None and not isinstance(value, kind):
            expected = what or (kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind))
            raise Incorrect(f"`{name}` should be a {expected}, but it is a {type(value).__name__}.")
        return value

    def audit(self, **filters) -> list[dict]:
        """Audit records of this lesson run (since its set-up cell), optionally filtered by field."""
        records = self.emulator.audit(after=self.lesson.audit_position)
        return [r for r in records if all(r.get(k) == v for k, v in filters.items())]

    def secret(self, name: str, vault: str | None = None) -> dict | None:
        """The latest version of a secret (value, contentType, tags, ...), or None if absent.

        On the emulator this reads behind the vault's back, so checking leaves no
        audit record; on a real vault it reads through the SDK like the learner.
        """
        vault = vault or self.lesson.spec.vaults[0]
        if self.lesson.lab is not None:
            return self.lesson.lab.inspect_secret(vault, name)
        from azure.core.exceptions import ResourceNotFoundError
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient

        with DefaultAzureCredential() as credential, SecretClient(self.lesson.vault_url(vault), credential) as client:
            try:
                found = client.get_secret(name)
            except ResourceNotFoundError:
                return None
        expires = found.properties.expires_on  # epoch seconds, as the emulator's records hold it
        return {"name": found.name, "version": found.properties.version, "value": found.value,
                "contentType": found.properties.content_type, "tags": found.properties.tags,
                "enabled": found.properties.enabled, "exp": int(expires.timestamp()) if expires else None}

    def require_stub_replaced(self, exercise: Exercise) -> None:
        """NotAttempted while the newest run of this exercise's cell is still the lab's stub."""
        number = exercise.id[2:] if exercise.id.startswith("ex") else exercise.id
        marker = f"Exercise {number} "
        for source in reversed(self.sources()):
            if marker in source and stubs.is_stub_source(source):
                raise NotAttempted(
                    f"Exercise {number} still has its stub: replace `raise NotImplementedError(...)` "
                    "with your code and run the cell."
                )
            if marker in source:
                return

    def sources(self) -> list[str]:
        """The code cells this kernel ran since the lesson's set-up cell, oldest first."""
        history = self.namespace.get("In") or []
        return [s for s in history[self.lesson.history_position :] if s]


def lesson_spec(number: str) -> LessonSpec:
    """The LESSON of ``kvlab.checks.lessonNN``."""
    number = str(number).zfill(2)
    try:
        module = importlib.import_module(f"{__name__}.lesson{number}")
    except ModuleNotFoundError:
        raise KeyError(f"there is no lesson {number}; lessons: {', '.join(all_lessons())}") from None
    return module.LESSON


def all_lessons() -> list[str]:
    from . import __path__ as here

    return sorted(m.name[len("lesson"):] for m in pkgutil.iter_modules(here) if m.name.startswith("lesson"))


def run_check(lesson, exercise_id: str, namespace: dict) -> Result:
    """Run one check and turn every way it can end into a Result (never a traceback)."""
    spec = lesson.spec
    exercise = spec.exercise(exercise_id)
    context = Context(lesson, namespace)
    base = dict(lesson=spec.number, exercise=exercise.id, title=exercise.title, hint_count=len(exercise.hints))
    try:
        context.require_stub_replaced(exercise)
        passed = exercise.check(context) or []
        result = Result(status=CORRECT, message="", passed=list(passed), **base)
    except NotAttempted as exc:
        result = Result(status=NOT_ATTEMPTED, message=str(exc), **base)
    except Unavailable as exc:
        result = Result(status=UNAVAILABLE, message=str(exc), **base)
    except Incorrect as exc:
        result = Result(status=INCORRECT, message=str(exc), **base)
    except Exception as exc:  # the learner's state surprised the check: say what, in one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result = Result(
            status=INCORRECT,
            message=f"The check could not finish: {type(exc).__name__}{': ' + reason if reason else ''}",
            **base,
        )
    return result


def caller_namespace(depth: int = 2) -> dict:
    """The globals of the code that called ``check`` (a notebook's user namespace)."""
    return sys._getframe(depth).f_globals


def make_hint(spec: LessonSpec, exercise_id: str, shown: dict[str, int]) -> Hint:
    exercise = spec.exercise(exercise_id)
    if not exercise.hints:
        return Hint(exercise_id, 0, 0, "there is no hint for this exercise.")
    number = min(shown.get(exercise_id, 0) + 1, len(exercise.hints))
    shown[exercise_id] = number
    return Hint(exercise_id, number, len(exercise.hints), exercise.hints[number - 1])


__all__ = [
    "CORRECT", "INCORRECT", "NOT_ATTEMPTED", "UNAVAILABLE", "Context", "Exercise", "Incorrect",
    "LessonSpec", "NotAttempted", "Unavailable", "all_lessons", "lesson_spec", "run_check",
]
