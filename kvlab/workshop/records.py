"""What a learner sends and the service accepts: one definition for both sides."""

from __future__ import annotations

import re
from datetime import datetime

from ..feedback import STATUSES

DEFAULT_PORT = 18480  # kvlab workshop serve's
SERVICE_DIR = "workshop"  # the class's folder in the instructor's state directory, unless --dir says otherwise
CODE_PARAMETER = "code"  # the class code's field in a join request
LEARNER_FILE = "workshop.json"  # in the learner's state directory: the service joined and the learner's token
ENVIRONMENT = "KVLAB_WORKSHOP"  # a join URL: start_lesson joins it (as $KVLAB_WORKSHOP_NAME, or the user's name);
# or, on JupyterHub, the service's URL without a code: the learner is who their server's hub token says
NAME_ENVIRONMENT = "KVLAB_WORKSHOP_NAME"
HUB_SERVICE = "kvlab-workshop"  # the dashboard's name as a JupyterHub service (its path: /services/kvlab-workshop)
INSTRUCT_SCOPE = f"custom:{HUB_SERVICE}:instruct"  # the hub scope that opens the instructor page

MAX_BODY = 64 * 1024  # bytes of one request
MAX_BATCH = 50  # results in one request
MAX_MESSAGE = 2000  # characters of a check's message kept
MAX_TITLE = 200  # characters of an exercise's title kept
MAX_NAME = 40
MAX_LEARNERS = 1000
MAX_RESULTS_PER_LEARNER = 20_000

_LESSON = re.compile(r"[0-9]{2}")
_EXERCISE = re.compile(r"[a-z][a-z0-9-]{0,19}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CODE = re.compile(r"[A-Za-z0-9_-]{8,64}")


class Refused(ValueError):
    """A request the service answers with a 4xx: the status and a one-line reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def class_code(raw: str) -> str:
    """A class code chosen by the instructor (it goes in URLs): 8-64 letters, digits, - or _."""
    if not _CODE.fullmatch(raw):
        raise ValueError(f"a class code is 8-64 letters, digits, - or _ (it goes in the join URL), not {raw!r}")
    return raw


def learner_name(raw) -> str:
    """A display name: 1-40 printable characters, surrounding spaces dropped."""
    if not isinstance(raw, str) or not raw.strip():
        raise Refused(400, "a name is required (the name the instructor sees)")
    name = " ".join(raw.split())
    if len(name) > MAX_NAME or not name.isprintable():
        raise Refused(400, f"a name is at most {MAX_NAME} printable characters")
    return name


def result(raw) -> dict:
    """One check result as the service keeps it, or Refused(400) saying which field is wrong."""
    if not isinstance(raw, dict):
        raise Refused(400, "each result is a JSON object")
    fields = {
        "id": (_ID, "a client id of 1-64 letters, digits, - or _"),
        "lesson": (_LESSON, "a lesson number such as '02'"),
        "exercise": (_EXERCISE, "an exercise id such as 'ex1'"),
    }
    out = {}
    for key, (pattern, what) in fields.items():
        value = raw.get(key)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise Refused(400, f"result field {key!r} must be {what}")
        out[key] = value
    if raw.get("status") not in STATUSES:
        raise Refused(400, f"result field 'status' must be one of {', '.join(STATUSES)}")
    out["status"] = raw["status"]
    for key, limit in (("title", MAX_TITLE), ("message", MAX_MESSAGE)):
        value = raw.get(key, "")
        if not isinstance(value, str):
            raise Refused(400, f"result field {key!r} must be a string")
        out[key] = value[:limit]
    try:
        out["time"] = datetime.fromisoformat(str(raw.get("time"))).isoformat(timespec="seconds")
    except ValueError:
        raise Refused(400, "result field 'time' must be an ISO 8601 time") from None
    return out
