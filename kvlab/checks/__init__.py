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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import stubs
from ..feedback import CORRECT, INCORRECT, NOT_ATTEMPTED, UNAVAILABLE, Hint, Result, Solution

SECRETS_USER = "Key Vault Secrets User"  # the role that reads values, and nothing else


class Unknown(stubs.LearnerError, KeyError):
    """A lesson, or an exercise of ``check``, ``hint`` or ``solution``, that does not exist (shown as one line)."""

    def __str__(self) -> str:  # the message itself, not KeyError's repr of it
        return str(self.args[0]) if self.args else ""


class EmulatorOnly(stubs.LearnerError):
    """A lesson started against a real vault that only the emulator can serve (shown as one line)."""


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
    # (vault or identity, resource group) where the lesson's text puts them (`az keyvault show` then finds them
    # there); the others live in the emulator's default group
    groups: tuple[tuple[str, str], ...] = ()
    # vaults made with purge protection, as the lesson's az line makes them
    purge_protected: tuple[str, ...] = ()
    # (role, assignee, scope) the lesson starts with, e.g. the learner's own role
    grants: tuple[tuple[str, str, str], ...] = ()
    exercises: tuple[Exercise, ...] = ()
    # on the emulator, after the reset: seed(lesson) puts in what the lesson starts with (e.g. a secret)
    seed: Callable[[Any], None] | None = None
    # why the lesson runs only on the emulator (None: it runs against a real vault too)
    emulator_only: str | None = None

    def exercise(self, exercise_id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        known = ", ".join(repr(e.id) for e in self.exercises)
        raise Unknown(f"lesson {self.number} has no exercise {exercise_id!r}; its exercises are {known}")


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
                "on a real vault, look at the vault's logs instead (they exist only once a diagnostic setting "
                "sends its AuditEvent category to Log Analytics, storage or an Event Hub)"
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

        from ..connection import own_transport

        with DefaultAzureCredential(transport=own_transport()) as credential, \
                SecretClient(self.lesson.vault_url(vault), credential, transport=own_transport()) as client:
            try:
                found = client.get_secret(name)
            except ResourceNotFoundError:
                return None
        expires = found.properties.expires_on  # epoch seconds, as the emulator's records hold it
        return {"name": found.name, "version": found.properties.version, "value": found.value,
                "contentType": found.properties.content_type, "tags": found.properties.tags,
                "enabled": found.properties.enabled, "exp": int(expires.timestamp()) if expires else None}

    def roles_held(self, assignee: str, vault: str) -> list[tuple[str, str | None]]:
        """(role, secret or None for the whole vault) that ``assignee`` holds on ``vault``, on the emulator."""
        marker = "/secrets/"
        return [(a["roleDefinitionName"], a["scope"].split(marker, 1)[1] if marker in a["scope"] else None)
                for a in self.emulator.role_assignments(assignee, vault)]

    def secrets_read_by(self, assignee: str, vault: str, *, none: str, too_strong: str, vault_wide: str) -> set[str]:
        """The secrets ``assignee`` may read on ``vault``, through Key Vault Secrets User on single secrets only.

        Incorrect, with the lesson's own reason, when it holds no role there (``none``), a role stronger than
        Secrets User (``too_strong``, formatted with ``role`` and ``where``), or Secrets User on the whole
        vault (``vault_wide``).
        """
        held = self.roles_held(assignee, vault)
        if not held:
            raise Incorrect(none)
        for role, secret in held:
            if role != SECRETS_USER:
                raise Incorrect(too_strong.format(role=role, where=vault + (f"/secrets/{secret}" if secret else "")))
            if secret is None:
                raise Incorrect(vault_wide)
        return {secret for _, secret in held if secret is not None}  # each is one secret (checked above)

    def expiry_dates(self, vault: str | None = None) -> dict[str, float | None]:
        """Each live secret's expiry (epoch seconds, None for none), from properties: no value is read.

        On the emulator behind the vault's back, as `secret` does; on a real
        vault through the SDK's listing.
        """
        vault = vault or self.lesson.spec.vaults[0]
        if self.lesson.lab is not None:
            found = (self.lesson.lab.inspect_secret(vault, name) for name in self.lesson.lab.secret_values(vault))
            return {s["name"]: s["exp"] for s in found if s is not None}
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient

        from ..connection import own_transport

        with DefaultAzureCredential(transport=own_transport()) as credential, \
                SecretClient(self.lesson.vault_url(vault), credential, transport=own_transport()) as client:
            return {str(p.name): p.expires_on.timestamp() if p.expires_on else None
                    for p in client.list_properties_of_secrets()}

    def require_stub_replaced(self, exercise: Exercise) -> None:
        """NotAttempted while the exercise's stub is what its cell last did.

        Where the front end names cells (JupyterLab), the output watch knows it
        from the stub's own notice in that cell (kvlab.watch), so any rewrite of
        the cell counts. Elsewhere the newest cell that names the exercise tells.
        """
        number = exercise.id[2:] if exercise.id.startswith("ex") else exercise.id
        pending = (f"Exercise {number} still has its stub: replace `raise NotImplementedError(...)` "
                   "with your code and run the cell.")
        watch = getattr(self.lesson, "watch", None)
        waiting = watch.pending_stubs() if watch is not None else None
        if waiting is not None:
            if exercise.id in waiting:
                raise NotAttempted(pending)
            return
        marker = f"Exercise {number} "
        for source in reversed(self.sources()):
            if marker in source and stubs.is_stub_source(source):
                raise NotAttempted(pending)
            if marker in source:
                return

    def caller_of(self, client) -> str | None:
        """Who a learner's SecretClient signs in as, on the emulator; None on a real vault (no audit log at hand).

        The client lists one page of secret names, and the audit log names the
        caller of that request. So any way of writing the client (an alias, a
        module import, another credential that reaches the same identity) is
        judged by what it does, not by how it is spelled.
        """
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

        if self.lesson.lab is None:
            return None
        name = _name_of(client, self.namespace)
        position = self.lesson.lab.audit_position()
        try:
            next(iter(client.list_properties_of_secrets(max_page_size=1)), None)
        except ClientAuthenticationError as exc:
            raise Incorrect(
                f"`{name}` could not sign in ({type(exc).__name__}). Give it credential=DefaultAzureCredential(): "
                "it finds the right identity by itself, here and in Azure, so no password or client secret goes "
                "into your code."
            ) from None
        except HttpResponseError as exc:
            if exc.status_code != 403:  # a 403 names its caller in the audit log too
                raise Incorrect(f"`{name}` could not reach the vault: {_first_line(exc)}") from None
        records = [r for r in self.lesson.lab.audit(after=position) if r.get("operationName") == "SecretList"]
        return records[-1].get("identity") if records else None

    def require_generated(self, value: str, what: str) -> str:
        """Incorrect unless ``value`` is as unguessable as a generated secret and was not typed into the code."""
        from zxcvbn import zxcvbn

        if value and any(value in source for source in self.sources()):
            raise Incorrect(f"The value of {what} is typed into your code. Generate it (e.g. secrets.token_urlsafe(24)) "
                            "so that no one ever has to type, paste or see it.")
        guesses = zxcvbn(value[:100])["guesses_log10"] if value else 0
        if guesses < GENERATED_GUESSES_LOG10:
            raise Incorrect(f"The value of {what} could be guessed in about 10^{guesses:.0f} tries: it looks chosen, not "
                            "generated. Generate it with Python's secrets module, e.g. secrets.token_urlsafe(24).")
        return f"the value of {what} is as unguessable as a generated one (about 10^{guesses:.0f} guesses)"

    def require_nothing_shown(self) -> None:
        """Incorrect when a value of one of the lesson's secrets showed in an output since set-up."""
        lab, seen = self.lesson.lab, self.lesson.watch
        if lab is None or seen is None:
            return
        values: dict[str, list[str]] = {}
        for vault in self.lesson.spec.vaults:
            for name, found in lab.secret_values(vault).items():
                values.setdefault(name, []).extend(found)
        sightings = seen.sightings(values)
        if sightings:
            raise Incorrect(
                f"{sightings[0].describe()}. A secret on screen is a "
                "leaked secret: it is saved in the notebook and seen in screen shares. Remove the print or "
                "display, then run that cell again."
            )

    def sources(self) -> list[str]:
        """The code cells this kernel ran since the lesson's set-up cell, oldest first."""
        history = self.namespace.get("In") or []
        return [s for s in history[self.lesson.history_position :] if s]


GENERATED_GUESSES_LOG10 = 20  # zxcvbn's estimate; secrets.token_urlsafe(24) scores about 31


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _name_of(value, namespace: dict) -> str:
    """The learner's name for an object (for messages), or its type."""
    return next((k for k, v in namespace.items() if v is value and not k.startswith("_")), type(value).__name__)


def lesson_spec(number: str) -> LessonSpec:
    """The LESSON of ``kvlab.checks.lessonNN``."""
    number = str(number).zfill(2)
    try:
        module = importlib.import_module(f"{__name__}.lesson{number}")
    except ModuleNotFoundError:
        raise Unknown(f"there is no lesson {number}; lessons: {', '.join(all_lessons())}") from None
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
        context.require_nothing_shown()
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


SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"  # the workbook's solutions/, beside the package


def make_solution(spec: LessonSpec, exercise_id: str, folder: Path = SOLUTIONS) -> Solution:
    """The exercise's answer, as its solution notebook holds it (the one source of answers).

    Read from the ``BEGIN SOLUTION: Exercise N`` region of ``solutions/NN-*.ipynb``,
    so what ``solution()`` shows is exactly what CI checks as correct.
    """
    import nbformat

    from ..labs import CODE_BEGIN, CODE_END

    exercise = spec.exercise(exercise_id)
    number = exercise.id[2:] if exercise.id.startswith("ex") else exercise.id
    found = sorted(folder.glob(f"{spec.number}-*.ipynb"))
    if not found:
        raise KeyError(f"no solution notebook for lesson {spec.number} in {folder}")
    path = found[0]
    region: list[str] | None
    for cell in nbformat.read(path, as_version=4).cells:
        lines, region = cell.source.split("\n"), None
        for line in lines:
            begin = CODE_BEGIN.match(line) if cell.cell_type == "code" else None
            if begin and begin.group("task").startswith(f"Exercise {number} "):
                region, indent = [], len(begin.group("indent"))
            elif region is not None and CODE_END.match(line):
                return Solution(exercise.id, f"{folder.name}/{path.name}", "\n".join(region))
            elif region is not None:
                region.append(line[indent:] if line[:indent].isspace() else line)
    raise KeyError(f"{path.name} has no solution region for {exercise.id}")


def make_hint(spec: LessonSpec, exercise_id: str, shown: dict[str, int]) -> Hint:
    exercise = spec.exercise(exercise_id)
    if not exercise.hints:
        return Hint(exercise_id, 0, 0, "there is no hint for this exercise.")
    number = min(shown.get(exercise_id, 0) + 1, len(exercise.hints))
    shown[exercise_id] = number
    return Hint(exercise_id, number, len(exercise.hints), exercise.hints[number - 1])


__all__ = [
    "SECRETS_USER", "CORRECT", "INCORRECT", "NOT_ATTEMPTED", "UNAVAILABLE", "Context", "Exercise", "Incorrect",
    "LessonSpec", "NotAttempted", "Unavailable", "all_lessons", "lesson_spec", "run_check",
]
