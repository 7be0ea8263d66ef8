"""The output watch: what a lesson run showed on screen, compared with its secrets' values.

A secret printed in a notebook is a leaked secret: it is saved in the .ipynb,
pushed with it, shown in screen shares. So from `start_lesson` on, the kernel's
outputs are kept (text forms only): what went to stdout and stderr (``print``,
``logging``), what was displayed, and each cell's result. A check then asks
whether any value a lesson secret holds or held appears in them, and says in
which cell and how it showed.

How: stdout and stderr are wrapped for the length of each cell (as
``contextlib.redirect_stdout`` would; the wrapper passes everything on);
displays and results are seen through ipykernel's message hooks on the display
publisher and the display hook. Outside an IPython kernel nothing is watched.

Values read through ``kvlab.databricks.dbutils`` are kept as the notebook got
them, ``[REDACTED]``: Databricks' redaction hid them.

A cell run again replaces what it showed before (by the cell id JupyterLab
sends; without one, by its source), as the notebook replaces its output. So
the watch also knows which lab stubs still show their "your turn" notice: an
exercise is not attempted while its cell's latest run was the stub, however
the learner rewrites the cell.
"""

from __future__ import annotations

import base64
import html
import sys
from dataclasses import dataclass, field

from . import stubs

STUB = "stub"  # the channel of a stub's notice (kvlab.stubs), which is no output a secret can hide in
LIMIT = 2_000_000  # characters kept per run: enough for any lesson, bounded for a runaway loop
MIN_LENGTH = 6  # shorter values ("1", "yes") would be found everywhere
HALF = 10  # the shortest half of a value that counts as showing it in part


@dataclass
class Shown:
    """Something a cell showed: where (stdout, stderr, display, result) and the text."""

    cell: str  # the cell's source
    channel: str
    text: str


@dataclass
class Sighting:
    secret: str
    cell: str
    channel: str
    how: str = ""  # "" for the value as it is, else the disguise (see `forms_of`)

    def describe(self) -> str:
        first = next((line for line in self.cell.splitlines() if line.strip() and not line.startswith("#")), "")
        shown = f"showed {self.how} in" if self.how else "showed in"
        return f"The value of `{self.secret}` {shown} the {self.channel} of your cell that starts `{first.strip()[:60]}`"


class _Tee:
    """A stream that passes everything on to the real one and tells the watch what was written."""

    def __init__(self, stream, watch: "Watch", channel: str):
        self._stream, self._watch, self._channel = stream, watch, channel

    def write(self, text):
        if isinstance(text, str):
            self._watch.add(self._channel, text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@dataclass
class Watch:
    shown: dict[object, list[Shown]] = field(default_factory=dict)
    size: int = 0
    cell_ids: bool = False  # whether the front end names cells (JupyterLab does)
    results_hooked: bool = False  # whether the kernel's display hook passes cell results to `message`
    _cell: tuple[object, str] = (None, "")
    _saved: tuple | None = None
    _info: object = None  # the running cell's pre_run_cell info

    # -- recording ----------------------------------------------------------------

    def add(self, channel: str, text: str) -> None:
        key, source = self._cell
        if not text or self.size + len(text) > LIMIT:
            return
        redactor = getattr(sys.modules.get("kvlab.databricks"), "REDACTOR", None)
        if redactor is not None and redactor.installed and redactor.values:  # as the notebook got it: [REDACTED]
            text = redactor.redact(text)
        self.size += len(text)
        self.shown.setdefault(key, []).append(Shown(source, channel, text))

    def pre_run_cell(self, info) -> None:
        self._info = info
        source = getattr(info, "raw_cell", "") or ""
        cell_id = getattr(info, "cell_id", None)
        self.cell_ids = self.cell_ids or bool(cell_id)
        key = cell_id or source
        for old in self.shown.pop(key, []):  # a cell run again: its old output is gone from the notebook too
            self.size -= len(old.text)
        self._cell = (key, source)
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = _Tee(sys.stdout, self, "output"), _Tee(sys.stderr, self, "error output")

    def post_run_cell(self, result) -> None:
        if self._saved is not None and isinstance(sys.stdout, _Tee) and sys.stdout._watch is self:
            sys.stdout, sys.stderr = self._saved
        self._saved = None
        if not self.results_hooked and getattr(result, "result", None) is not None:
            self.add("result", repr(result.result))  # an ipykernel without a display-hook hook: its repr

    def message(self, msg):
        """An ipykernel hook: display_data and execute_result messages pass through here (unchanged)."""
        data = (msg.get("content") or {}).get("data") or {}
        if isinstance(data.get(stubs.MIME), dict):  # a lab stub ran: its cell shows "your turn" until run again
            self.add(STUB, data[stubs.MIME].get("exercise") or "")
            return msg
        channel = "displayed output" if msg.get("msg_type") == "display_data" else "result"
        for mime in ("text/plain", "text/html", "text/markdown", "text/latex"):
            if isinstance(data.get(mime), str):
                self.add(channel, data[mime])
        return msg

    # -- asking ------------------------------------------------------------------

    def pending_stubs(self) -> set[str] | None:
        """The exercises whose stub's "your turn" notice is still their cell's latest output.

        None when the front end sends no cell ids (papermill, some editors): an
        edited cell then looks like another cell, so the watch cannot tell.
        """
        if not self.cell_ids:
            return None
        return {s.text for items in self.shown.values() for s in items if s.channel == STUB}

    def sightings(self, values: dict[str, list[str]]) -> list[Sighting]:
        """Where any of ``values`` ({secret name: its values}) showed, in any of its `forms`; first sighting
        per secret."""
        found = []
        for name, candidates in values.items():
            forms = {text: how for value in candidates if value and len(value) >= MIN_LENGTH
                     for text, how in forms_of(value).items()}
            # the plain value named first, a part last: another version's half is inside a whole value shown
            ordered = sorted(forms.items(), key=lambda form: (form[1] == "in part", form[1] != ""))
            hit = next(((s, how) for items in self.shown.values() for s in items if s.channel != STUB
                        for text, how in ordered if text in s.text), None)
            if hit is not None:
                found.append(Sighting(name, hit[0].cell, hit[0].channel, hit[1]))
        return found


def forms_of(value: str) -> dict[str, str]:
    """The ways a value shows on screen, the plain one and the usual disguises, each with its name.

    Databricks' redaction (`kvlab.databricks`) replaces only the exact value; these are what it lets
    through and what a shortcut typically prints: reversed, Base64, hex, a character at a time, or half
    of it. A disguised secret on screen is still a leaked secret.
    """
    raw = value.encode()
    forms = {
        value: "", html.escape(value): "", repr(value)[1:-1]: "",
        value[::-1]: "reversed",
        base64.b64encode(raw).decode().rstrip("="): "Base64-encoded",
        base64.urlsafe_b64encode(raw).decode().rstrip("="): "Base64-encoded",
        raw.hex(): "hex-encoded", raw.hex().upper(): "hex-encoded",
        "', '".join(value): "one character at a time", " ".join(value): "one character at a time",
    }
    if len(value) >= 2 * HALF:  # halves long enough that they show up nowhere by chance
        forms.setdefault(value[: len(value) // 2], "in part")
        forms.setdefault(value[len(value) // 2 :], "in part")
    return forms


def install() -> Watch | None:
    """Start watching this IPython kernel's outputs (replacing an earlier lesson's watch); None outside one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    previous = getattr(shell, "_kvlab_watch", None)
    running = None  # the cell that calls us (start_lesson's): what it shows from here on counts too
    if previous is not None:
        running = previous._info if previous._saved is not None else None
        previous.post_run_cell(None)  # give the streams back now: its own post_run_cell will not run
        shell.events.unregister("pre_run_cell", previous.pre_run_cell)
        shell.events.unregister("post_run_cell", previous.post_run_cell)
        for publisher in (shell.display_pub, shell.displayhook):
            if hasattr(publisher, "unregister_hook"):
                publisher.unregister_hook(previous.message)
    if running is None:
        from types import SimpleNamespace

        metadata = (getattr(shell, "parent_header", None) or {}).get("metadata") or {}
        running = SimpleNamespace(raw_cell=(shell.user_ns.get("In") or [""])[-1], cell_id=metadata.get("cellId"))
    watch = Watch()
    watch.pre_run_cell(running)
    shell.events.register("pre_run_cell", watch.pre_run_cell)
    shell.events.register("post_run_cell", watch.post_run_cell)
    for publisher in (shell.display_pub, shell.displayhook):
        if hasattr(publisher, "register_hook"):
            publisher.register_hook(watch.message)
    watch.results_hooked = hasattr(shell.displayhook, "register_hook")
    shell._kvlab_watch = watch
    return watch
