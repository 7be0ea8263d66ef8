"""A lesson run: its mode, its fresh resources, its checks.

Every lesson notebook (guided, lab or solution) starts with::

    lesson = kvlab.start_lesson("03", vault_url=vault_url)

Against the emulator (``vault_url`` empty or ``"emulator"``) this connects,
then resets the lesson's own vaults, identities and role assignments, so each
run starts from the same state and a check can only see what *this* run did
(audit records are read from this point on). Against a real vault
(``vault_url="https://<name>.vault.azure.net/"``) nothing is created or reset:
checks that need the emulator's records say they are unavailable.

A guided notebook demonstrates checks on its own examples; it starts with
``demo=True`` so those results are shown but never recorded as the learner's
progress (only the lab's checks are).
"""

from __future__ import annotations

import os
from typing import Any

from . import stubs, tracker, watch
from .checks import LessonSpec, caller_namespace, lesson_spec, make_hint, make_solution, run_check
from .feedback import Hint, Result, Solution
from .workshop import learner as workshop

EMULATOR = "emulator"


class Lesson:
    def __init__(self, spec: LessonSpec, vault_url: str | None = None, state_dir: str | os.PathLike | None = None,
                 demo: bool = False):
        self.spec = spec
        self.demo = demo  # a guided notebook: checks are shown, not recorded
        self.state_dir = state_dir  # where progress is recorded, like the emulator's state
        self._hints_shown: dict[str, int] = {}
        if not vault_url or vault_url.strip().lower() == EMULATOR:
            from .connection import connect

            self.mode = EMULATOR
            self.lab = connect(state_dir)
            self._reset()
            # where its checks read the audit logs from (the Databricks workspace's too); retention keeps it all
            self.audit_position, self.workspace_position = self.lab.lesson_positions()
        elif spec.emulator_only:
            from .checks import EmulatorOnly

            raise EmulatorOnly(f"lesson {spec.number} runs on the emulator only: {spec.emulator_only}. "
                               "Set vault_url = \"emulator\" in the parameters cell.")
        else:
            self.mode = "azure"
            self.lab = None  # type: ignore[assignment]  # a real vault: no emulator to manage
            self.audit_position = 0
            self.workspace_position = 0
            self._azure_url = vault_url if vault_url.endswith("/") else vault_url + "/"
        self.history_position = 0
        self.watch: Any = None  # the output watch (kvlab.watch.Watch), in an IPython kernel

    def _reset(self) -> None:
        """Recreate the lesson's vaults and identities, empty, with only its starting grants (and its seed)."""
        lab = self.lab
        lab.reset_clock()  # every lesson starts today, whatever clock an earlier lab left behind
        existing_vaults = {v["name"] for v in lab.list_vaults()} | set(lab.list_deleted_vaults())  # `az keyvault delete`
        groups = dict(self.spec.groups)
        for name in self.spec.vaults:
            if name in existing_vaults:
                lab.delete_vault(name, force=True)  # starting over: even a vault the learner purge-protected
            lab.create_vault(name, resource_group=groups.get(name), exist_ok=True)
            if name in self.spec.purge_protected:
                lab.protect_vault(name)
        existing_ids = {i["name"].lower() for i in lab.list_identities()}
        for name in self.spec.identities:
            if name.lower() in existing_ids:
                lab.delete_identity(name)
            lab.create_identity(name, resource_group=groups.get(name))
        for role, assignee, scope in self.spec.grants:
            lab.assign_role(role, assignee, scope)
        if self.spec.seed is not None:
            self.spec.seed(self)

    def vault_url(self, name: str | None = None) -> str:
        """The URL of one of the lesson's vaults (the first by default)."""
        name = name or self.spec.vaults[0]
        if self.lab is None:
            if name.lower() != self.spec.vaults[0].lower():  # never aim another vault's step at this one
                raise ValueError(f"{name} has no real vault in this run: {self._azure_url} stands in for "
                                 f"{self.spec.vaults[0]} only")
            return self._azure_url
        return self.lab.vault_url(name)

    def check(self, exercise: str) -> Result:
        """Check one exercise of this lesson, looking at what this run did."""
        result = run_check(self, exercise, caller_namespace())
        if not self.demo:
            tracker.record(result, self.state_dir)
            workshop.report(result, self.state_dir)
        return result

    def hint(self, exercise: str) -> Hint:
        """The next hint for an exercise (each call shows one more)."""
        return make_hint(self.spec, exercise, self._hints_shown)

    def solution(self, exercise: str) -> Solution:
        """The worked answer of an exercise, for when the hints are not enough (as the solution notebook has it)."""
        return make_solution(self.spec, exercise)

    def __repr__(self) -> str:
        where = "the emulator" if self.lab is not None else self._azure_url
        demo = "; a demonstration: its checks do not count toward your progress" if self.demo else ""
        return f"Lesson {self.spec.number} - {self.spec.title} (against {where}{demo})"


def start_lesson(number: str, vault_url: str | None = None, state_dir: str | os.PathLike | None = None,
                 demo: bool = False) -> Lesson:
    """Set up lesson ``number`` and return it (see the module docstring)."""
    stubs.install()  # an unfinished exercise says "your turn" instead of a traceback, a wrong name one line
    lesson = Lesson(lesson_spec(number), vault_url, state_dir, demo)
    if not demo:
        workshop.sender(lesson.state_dir)  # joins the workshop $KVLAB_WORKSHOP names, in the background
    lesson.watch = watch.install()  # which stubs still wait, and (on the emulator) secrets shown in outputs
    namespace = caller_namespace()
    lesson.history_position = len(namespace.get("In") or [])
    return lesson
