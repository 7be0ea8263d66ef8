"""Leaked secrets: find them in files, in notebooks cell by cell, and in every commit of a Git history.

Scanning is detect-secrets (its default plugins and filters) plus the plugins
in `kvlab.secret_plugins` for Azure formats it misses. Two gaps of
detect-secrets are closed here rather than in plugins:

- a notebook is JSON, and detect-secrets reads its raw lines, so a quoted
  ``password = "..."`` inside a cell hides behind JSON escaping. `scan` reads
  notebooks with nbformat and scans each cell's source (and text outputs) as
  code, reporting cell numbers (1 = the first cell, counting Markdown cells);
- detect-secrets scans files as they are now. `scan_history` scans every
  revision of every file reachable from any ref and reports the commit that
  introduced each finding: a secret "removed" in a later commit is still there.

Deliberate fakes are marked as detect-secrets marks them: a ``# pragma:
allowlist secret`` comment on the line (``# pragma: allowlist nextline secret``
on the line before), in a file or in a notebook cell, or a `Baseline` (the
``.secrets.baseline`` that ``detect-secrets scan`` writes). Names and ids of
secrets, which Key Vault code is full of, are no findings (the filters in
`kvlab.secret_plugins`). Findings come out in one order (`_order`).

A finding never holds a secret: only a redacted form (`redact`) and a hash to
follow it through history. Lessons use `ThrowawayRepo` (a Git repository in a
temporary folder, with fixed author and dates so its commit ids are the same on
every run) and `practice_repo` (the lesson 01 lab's repository).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator, Sequence

# -- fake secrets for the lessons (they look fake, and the scanner still finds each) ------------

FAKE_SQL_PASSWORD = "NotARealPassw0rd!"  # pragma: allowlist secret
FAKE_SAS_SIGNATURE = "FAKEsignatureFAKEsignatureFAKEsignature0000%3D"  # pragma: allowlist secret
FAKE_DATABRICKS_TOKEN = "dapi" + "deadbeef" * 4  # pragma: allowlist secret
# base64 of "This is not a real storage account key. It is a fake for kvlab 01." (88 characters, as a real key)
FAKE_STORAGE_KEY = "VGhpcyBpcyBub3QgYSByZWFsIHN0b3JhZ2UgYWNjb3VudCBrZXkuIEl0IGlzIGEgZmFrZSBmb3Iga3ZsYWIgMDEu"  # pragma: allowlist secret

SQL_SERVER = "sql-sales-dev.database.windows.net"

MAX_FILE_BYTES = 5 * 1024 * 1024  # larger files are data, not code: skipped
SKIPPED_DIRS = {"node_modules", "__pycache__"}  # and every folder whose name starts with "."


class ScanError(ValueError):
    """Bad input for a scan (a missing path, a folder that is not a Git repository): one line saying which."""


# -- findings ---------------------------------------------------------------------------------


def redact(secret: str) -> str:
    """The first few characters and an ellipsis: enough to recognise a secret, never enough to use it.

    At most 4 characters, and at most a quarter of the secret, so a short one
    is not half shown.
    """
    return secret[: min(4, len(secret) // 4)] + "…"


@dataclass(frozen=True)
class Finding:
    """One possible secret: where it is, what kind, and a redacted form (never the value)."""

    type: str
    file: str
    line: int | None
    secret: str  # redacted
    cell: int | None = None  # notebooks: the cell's position, 1 = first
    output: bool = False  # notebooks: found in the cell's output, not its source
    commit: str | None = None  # history scans: the commit that introduced it
    in_head: bool | None = None  # history scans: whether HEAD still holds it
    fingerprint: str = field(default="", repr=False)  # sha1 of the secret, as detect-secrets' baselines
    column: int = field(default=0, repr=False)  # where the secret starts on its line, 1 = first character (0: unknown)

    def as_dict(self) -> dict:
        """The JSON form: history fields only for history scans, never the fingerprint."""
        data = {"file": self.file, "cell": self.cell, "line": self.line, "output": self.output, "type": self.type,
                "secret": self.secret}
        if self.commit is not None:
            data.update(commit=self.commit, in_head=self.in_head)
        return data


def _order(f: Finding) -> tuple:
    """The one order of findings: file, cell (its source before its output), line, place on the line, type.

    The place on the line (then the fingerprint) settles ties that would
    otherwise fall to the order of a set, which changes with every Python
    process's hash seed: two secrets of one type on one line came out in a
    different order from run to run.
    """
    return f.file, f.cell or 0, f.output, f.line or 0, f.column, f.type, f.fingerprint


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(set(findings), key=_order)


def table(findings: Sequence[Finding | dict]) -> str:
    """A plain-text table of findings (``kvlab scan -o table``), commit ids shortened to 12 characters.

    Findings in their JSON form (``kvlab scan``'s output, `Finding.as_dict`) are shown the same way.
    """
    from tabulate import tabulate

    from .feedback import printable

    if not findings:
        return "(no secrets found)"
    known = {f.name for f in fields(Finding)}
    shown = [f if isinstance(f, Finding) else Finding(**{"type": "", "file": "", "line": None, "secret": "",
                                                           **{k: v for k, v in f.items() if k in known}})
             for f in findings]
    history = any(f.commit for f in shown)
    rows = []
    for f in shown:
        row = {"file": printable(f.file), "cell": "" if f.cell is None else f.cell,
               "line": ("output" if f.output else "") if f.line is None else (f"{f.line} (output)" if f.output else f.line),
               "type": f.type, "secret": printable(f.secret)}
        if history:
            row.update(commit=(f.commit or "")[:12], in_head="yes" if f.in_head else "no")
        rows.append(row)
    return tabulate(rows, headers="keys", disable_numparse=True)


# -- baselines: secrets already reviewed ---------------------------------------------------------------


BASELINE = ".secrets.baseline"  # detect-secrets' name for it: `detect-secrets scan > .secrets.baseline`


@dataclass(frozen=True)
class Baseline:
    """The secrets a detect-secrets baseline records, by file and hash: reviewed once, not reported again.

    As ``detect-secrets-hook --baseline``: a finding is known when the
    baseline lists its file and the hash of its value, wherever its line has
    moved since. The type is not compared: kvlab's plugins type some values
    their own way (``Connection string password`` where detect-secrets says
    ``Secret Keyword``), and what was reviewed is the value. File names in a
    baseline are relative to its folder, as ``detect-secrets scan`` writes
    them when run where the baseline is kept (the repository's root). Only
    its results are read: kvlab keeps its own plugins and filters.
    """

    path: Path  # resolved: the baseline file itself is never scanned (detect-secrets skips it too)
    known: frozenset[tuple[Path, str]]  # (resolved file, sha1 of the secret)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Baseline:
        """Read a baseline file (ScanError, one line, if it is missing or not a detect-secrets baseline)."""
        shown = os.fspath(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ScanError(f"no such baseline file: {shown}") from None
        except OSError as exc:
            raise ScanError(f"cannot read baseline {shown}: {exc.strerror or exc}") from None
        except ValueError:  # not UTF-8, or not JSON
            raise ScanError(f"not a detect-secrets baseline (not JSON): {shown}") from None
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, dict) or not all(isinstance(entries, list) for entries in results.values()):
            raise ScanError(f'not a detect-secrets baseline (no "results" by file): {shown}')
        folder = Path(path).resolve().parent
        known = frozenset((_resolved(folder / name), entry["hashed_secret"])
                          for name, entries in results.items() for entry in entries
                          if isinstance(entry, dict) and isinstance(entry.get("hashed_secret"), str))
        return cls(Path(path).resolve(), known)

    def covers(self, origin: Path | None, fingerprint: str) -> bool:
        return origin is not None and (origin, fingerprint) in self.known


def find_baseline(folder: str | os.PathLike = ".") -> Baseline | None:
    """The ``.secrets.baseline`` in ``folder``, if there is one: what `kvlab scan` uses unless told otherwise."""
    path = Path(folder, BASELINE)
    return Baseline.load(path) if path.is_file() else None


def _resolved(path: Path) -> Path:
    """``path`` made absolute, as a baseline and a scanned file are compared (Windows separators included)."""
    return Path(path).resolve()


# -- detect-secrets, with kvlab's plugins and filters --------------------------------------------------------


KVLAB_PLUGINS = ("ConnectionStringPasswordDetector", "AzureSasSignatureDetector", "DatabricksTokenDetector")
KVLAB_INDIRECT_FILTER = "kvlab.secret_plugins.is_indirect_reference"
HEURISTIC_INDIRECT_FILTER = "detect_secrets.filters.heuristic.is_indirect_reference"
# names, ids and roles are not secrets (see kvlab.secret_plugins): detect-secrets runs them as its own filters
KVLAB_FILTERS = (KVLAB_INDIRECT_FILTER, "kvlab.secret_plugins.names_a_secret", "kvlab.secret_plugins.is_azure_name",
                 "kvlab.secret_plugins.is_key_vault_version_id")


def _plugin_mapping_cache_clear() -> None:
    # detect-secrets caches its plugin classes, ours included once loaded: clear on the way in and
    # out, so a detect-secrets run elsewhere in this process never sees kvlab's plugins.
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    get_mapping_from_secret_type_to_class.cache_clear()


@contextlib.contextmanager
def _settings(with_kvlab: bool = True) -> Iterator[None]:
    """detect-secrets' default plugins and filters (no network verification), plus kvlab's when asked."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import Settings, transient_settings

    from . import secret_plugins

    _plugin_mapping_cache_clear()
    try:
        classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
        plugins = [{"name": cls.__name__} for cls in classes]
        filters = [{"path": p} for p in sorted(Settings().filters) if p not in Settings.DEFAULT_FILTERS]
        if with_kvlab:
            where = "file://" + str(Path(secret_plugins.__file__).resolve())
            plugins += [{"name": name, "path": where} for name in KVLAB_PLUGINS]
            filters = [f for f in filters if f["path"] != HEURISTIC_INDIRECT_FILTER]
            filters += [{"path": path} for path in KVLAB_FILTERS]
        with transient_settings({"plugins_used": plugins, "filters_used": filters}):
            _plugin_mapping_cache_clear()  # computed above without the custom plugins
            yield
    finally:
        _plugin_mapping_cache_clear()


@dataclass(frozen=True)
class _Piece:
    """Text to scan, the file name detect-secrets sees (its suffix matters), and where to report it."""

    text: str
    name: str
    file: str
    cell: int | None = None
    output: bool = False
    origin: Path | None = None  # the resolved file, when a baseline is to be consulted


@dataclass(frozen=True)
class _Hit:
    """One detect-secrets finding in a text, as plain data (it comes back from worker processes)."""

    type: str
    line: int
    column: int
    value: str
    fingerprint: str


def _hits(path: Path, text: str) -> list[_Hit]:
    """detect-secrets' public ``scan_file`` on one text written at ``path``, each finding placed on its line."""
    from detect_secrets.core.scan import scan_file

    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # as open() reads them for detect-secrets
    hits = []
    for secret in scan_file(str(path)):
        value, number = secret.secret_value or "", secret.line_number
        column = lines[number - 1].find(value) + 1 if value and 0 < number <= len(lines) else 0
        hits.append(_Hit(secret.type, number, column, value, secret.secret_hash))
    return hits


def _scan_texts(texts: Sequence[tuple[str, str]]) -> list[list[_Hit]]:
    """The hits in each ``(file name, text)``, under detect-secrets settings already in place.

    detect-secrets scans files, so each text is written to a temporary folder
    under its own name (the suffix picks the keyword detector's rules). One
    folder, each name rewritten as often as it comes: a folder per text cost
    more than scanning it (creating and removing folders is slow on disk).
    """
    found = []
    with tempfile.TemporaryDirectory(prefix="kvlab-scan-") as tmp:
        for name, text in texts:
            path = Path(tmp, name)
            path.write_text(text, encoding="utf-8", newline="")
            found.append(_hits(path, text))
    return found


PARALLEL_MIN_CHARS = 400_000  # less text is scanned in this process: starting workers would cost more than it saves
MAX_WORKERS = 8


def _workers(size: int) -> int:
    """How many processes scan ``size`` characters: one for small scans, and under pre-commit, which
    already runs one kvlab per CPU on its share of the files."""
    if size < PARALLEL_MIN_CHARS or os.environ.get("PRE_COMMIT") == "1":
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def _chunks(texts: Sequence[tuple[str, str]], count: int) -> list[list[tuple[str, str]]]:
    """``texts`` in order, cut into about ``count`` runs of similar size, so that no worker idles long."""
    target = max(1, sum(len(text) for _, text in texts) // count)
    chunks: list[list[tuple[str, str]]] = [[]]
    size = 0
    for item in texts:
        if size >= target:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item[1])
    return [chunk for chunk in chunks if chunk]


_worker_settings = contextlib.ExitStack()


def _start_worker(with_kvlab: bool) -> None:
    """A worker process configures detect-secrets once, for every chunk it is given."""
    _worker_settings.enter_context(_settings(with_kvlab))


def _scan_all(texts: Sequence[tuple[str, str]], with_kvlab: bool) -> list[list[_Hit]]:
    """The hits in each text: in this process, or in worker processes when there is much to scan."""
    workers = _workers(sum(len(text) for _, text in texts))
    if workers == 1:
        with _settings(with_kvlab):
            return _scan_texts(texts)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(with_kvlab,)) as pool:
        return [hits for chunk in pool.map(_scan_texts, _chunks(texts, workers * 4)) for hits in chunk]


def _detect(pieces: Sequence[_Piece], with_kvlab: bool = True) -> list[tuple[_Piece, _Hit]]:
    """detect-secrets' findings in each piece; a text met twice (a cell kept through many commits) is scanned once."""
    unique = list(dict.fromkeys((piece.name, piece.text) for piece in pieces))
    hits = dict(zip(unique, _scan_all(unique, with_kvlab)))
    return [(piece, hit) for piece in pieces for hit in hits[(piece.name, piece.text)]]


def _finding(piece: _Piece, hit: _Hit) -> Finding:
    return Finding(type=hit.type, file=piece.file, line=hit.line, secret=redact(hit.value), cell=piece.cell,
                   output=piece.output, fingerprint=hit.fingerprint, column=hit.column)


def _report(pieces: Sequence[_Piece], baseline: Baseline | None = None, with_kvlab: bool = True) -> list[Finding]:
    """The findings in ``pieces`` that ``baseline`` does not record, in `_order`."""
    return _sorted(_finding(piece, hit) for piece, hit in _detect(pieces, with_kvlab)
                   if not (baseline and baseline.covers(piece.origin, hit.fingerprint)))


# -- what is scanned: files, and notebooks by cell ------------------------------------------------------------


def _cell_text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _notebook_cells(text: str) -> list[dict] | None:
    """A notebook's cells (nbformat 4 dictionaries), or None if ``text`` is not a notebook.

    Parsed, not validated: a scanner reads whatever was committed, and stays
    quiet about its shape. Plain JSON, because importing nbformat costs a
    second (its validator); only a notebook older than version 4 goes through
    nbformat, to be converted.
    """
    try:
        notebook = json.loads(text)
    except ValueError:
        return None
    if isinstance(notebook, dict) and notebook.get("nbformat") != 4:
        notebook = _converted(notebook)
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    return [cell for cell in cells if isinstance(cell, dict)] if isinstance(cells, list) else None


def _converted(notebook: dict) -> dict | None:
    """An older notebook in nbformat 4's shape; None if nbformat cannot read it."""
    import nbformat

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nbformat.convert(nbformat.from_dict(notebook), 4)
    except (KeyError, TypeError, ValueError, AttributeError):  # what nbformat raises on a shape it does not know
        return None


def _output_text(cell: dict) -> str:
    """A code cell's text outputs (streams, plain-text results, tracebacks), joined."""
    outputs = cell.get("outputs") if cell.get("cell_type") == "code" else None
    texts = []
    for output in outputs if isinstance(outputs, list) else []:
        if not isinstance(output, dict):
            continue
        if output.get("output_type") == "stream":
            texts.append(_cell_text(output.get("text")))
        elif isinstance(output.get("data"), dict):
            texts.append(_cell_text(output["data"].get("text/plain")))
        elif output.get("output_type") == "error":
            texts.append("\n".join(map(str, output.get("traceback") or [])))
    return "\n".join(text for text in texts if text)


def _notebook_pieces(text: str, file: str, origin: Path | None = None) -> list[_Piece] | None:
    """Each cell's source, and each code cell's text output, as its own piece; None if not a notebook.

    A source is scanned as ``cell.py`` (``cell.md`` for Markdown), so that
    detect-secrets reads it as code and a ``# pragma: allowlist secret`` on
    one of its lines works as in a .py file; every cell has the same name, so
    a cell repeated across notebooks and commits is scanned once.
    """
    cells = _notebook_cells(text)
    if cells is None:
        return None
    suffix = {"code": ".py", "markdown": ".md"}
    pieces = []
    for number, cell in enumerate(cells, 1):
        source = _cell_text(cell.get("source"))
        if source.strip():
            pieces.append(_Piece(source, f"cell{suffix.get(str(cell.get('cell_type')), '.txt')}", file, number,
                                 origin=origin))
        output = _output_text(cell)
        if output.strip():
            pieces.append(_Piece(output, "output.txt", file, number, output=True, origin=origin))
    return pieces


def _pieces(data: bytes, file: str, name: str, origin: Path | None = None) -> list[_Piece]:
    """How one file's content is scanned: skipped if binary or large, by cell if a notebook."""
    if len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if name.lower().endswith(".ipynb"):
        cells = _notebook_pieces(text, file, origin)
        if cells is not None:
            return cells
    base = Path(name).name
    return [_Piece(text, base if base not in ("", ".", "..") else "file", file, origin=origin)]


# -- scanning files and folders -----------------------------------------------------------------------


def _files(path: Path, shown: str) -> Iterator[tuple[Path, str]]:
    """The files under ``path`` (itself if a file), each with the name to report it by."""
    if path.is_file():
        yield path, shown
        return
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS
                         and not (Path(folder) / d / "pyvenv.cfg").exists())
        for name in sorted(files):
            full = Path(folder) / name
            if full.is_file() and not full.is_symlink():
                yield full, os.path.normpath(os.path.join(shown, os.path.relpath(full, path)))


def scan(*paths: str | os.PathLike, root: str | os.PathLike | None = None,
         baseline: Baseline | None = None) -> list[Finding]:
    """Possible secrets in files and folders (walked, skipping hidden folders); notebooks by cell.

    ``root`` resolves relative paths (as ``git -C`` does) and keeps reported
    file names as short as they were given. What ``baseline`` records is not
    reported, and the baseline file itself is not scanned.
    """
    if not paths:
        raise ScanError("nothing to scan: give at least one file or folder")
    pieces = []
    for given in paths:
        full = Path(root, given) if root is not None else Path(given)
        if not full.exists():
            raise ScanError(f"no such file or folder: {os.fspath(given)}")
        for file, shown in _files(full, os.fspath(given)):
            origin = _resolved(file) if baseline else None
            if baseline and origin == baseline.path:
                continue
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise ScanError(f"cannot read {shown}: {exc.strerror or exc}") from None
            pieces += _pieces(data, shown, file.name, origin)
    return _report(pieces, baseline)


def scan_text(text: str, name: str = "cell.py", kvlab_plugins: bool = True) -> list[Finding]:
    """Possible secrets in a string (a cell's source, say), scanned as a file called ``name``.

    With ``kvlab_plugins=False``: what detect-secrets finds by itself.
    """
    return _report(_pieces(text.encode("utf-8"), name, name), with_kvlab=kvlab_plugins)


def detect_secrets_only(path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Finding]:
    """What detect-secrets finds by itself in one file: its default plugins, the raw file (a notebook as JSON)."""
    full = Path(root, path) if root is not None else Path(path)
    if not full.is_file():
        raise ScanError(f"no such file: {os.fspath(path)}")
    return _report([_Piece(full.read_text(encoding="utf-8"), full.name, os.fspath(path))], with_kvlab=False)


# -- Git ------------------------------------------------------------------------------------------------


class GitError(ScanError):
    """A git command failed (its first line of error output says why)."""


def _git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for git: no GIT_* variables from outside (a hook's GIT_DIR, an author override),
    messages in English, and this Python's scripts folder on PATH (where pip put git-filter-repo)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    scripts = sysconfig.get_path("scripts")
    env["PATH"] = os.pathsep.join(p for p in (scripts, env.get("PATH", "")) if p)
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat")
    env.update(extra or {})
    return env


def _run_git(repo: str | os.PathLike, args: Sequence[str], env: dict[str, str] | None = None, stdin: bytes | None = None,
             config: Sequence[str] = ()) -> bytes:
    if shutil.which("git") is None:
        raise GitError("git is not installed (or not on PATH): install Git first, https://git-scm.com/downloads")
    command = ["git", *(part for item in config for part in ("-c", item)), *args]
    done = subprocess.run(command, cwd=os.fspath(repo), env=env or _git_env(), input=stdin, capture_output=True)
    if done.returncode != 0:
        reason = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["(no message)"])[-1]
        raise GitError(f"git {args[0]} failed: {reason}")
    return done.stdout


def _git_text(repo, *args: str) -> str:
    return _run_git(repo, args).decode("utf-8", "replace")


def _history(repo: Path) -> tuple[list[str], str | None]:
    """The commits reachable from any ref, parents before children, and HEAD's commit (None if unborn)."""
    if not repo.is_dir():
        raise ScanError(f"no such folder: {repo}")
    try:
        inside = _git_text(repo, "rev-parse", "--is-inside-work-tree", "--is-bare-repository").split()
    except GitError:
        raise ScanError(f"not a Git repository: {repo}") from None
    if "true" not in inside:
        raise ScanError(f"not a Git repository: {repo}")
    commits = _git_text(repo, "rev-list", "--all", "--topo-order", "--reverse").split()
    try:
        head = _git_text(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").strip() or None
    except GitError:
        head = None
    return commits, head


def _tree(repo: Path, commit: str) -> list[tuple[str, str]]:
    """(blob id, path) of every regular file in a commit."""
    entries = []
    for entry in _run_git(repo, ["ls-tree", "-r", "-z", "--full-tree", commit]).split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, kind, blob = meta.decode().split()
        if kind == "blob" and mode in ("100644", "100755"):
            entries.append((blob, path.decode("utf-8", "replace")))
    return entries


def _blobs(repo: Path, ids: Sequence[str]) -> dict[str, bytes]:
    """The content of many blobs, through one ``git cat-file --batch``."""
    if not ids:
        return {}
    out = _run_git(repo, ["cat-file", "--batch"], stdin="".join(f"{i}\n" for i in ids).encode())
    contents, at = {}, 0
    for blob in ids:
        header_end = out.index(b"\n", at)
        _, _, size = out[at:header_end].decode().split()
        start = header_end + 1
        contents[blob] = out[start : start + int(size)]
        at = start + int(size) + 1
    return contents


def scan_history(*repos: str | os.PathLike, baseline: Baseline | None = None) -> list[Finding]:
    """Possible secrets in every revision of every file in the history of each Git repository.

    Each finding is reported once, where it first appeared: the commit that
    introduced it (parents before children, all branches and tags), with
    ``in_head`` saying whether the latest commit still holds it. File names are
    paths in the repository (prefixed by the repository when several are given).
    What ``baseline`` records for a file (as it sits in the repository's
    working tree) is not reported, in any revision.
    """
    if not repos:
        raise ScanError("nothing to scan: give at least one Git repository")
    found: list[Finding] = []
    for given in repos:
        prefix = f"{os.fspath(given)}/" if len(repos) > 1 else ""
        found += _repo_history(Path(given), prefix, baseline)
    return found


def _repo_history(repo: Path, prefix: str, baseline: Baseline | None) -> list[Finding]:
    """`scan_history` of one repository, its file names prefixed by ``prefix``."""
    commits, head = _history(repo)
    trees = {commit: _tree(repo, commit) for commit in commits}
    unique = sorted({entry for tree in trees.values() for entry in tree})
    contents = _blobs(repo, sorted({blob for blob, _ in unique}))
    top = _resolved(repo) if baseline else None
    pieces: list[tuple[tuple[str, str], _Piece]] = []
    for blob, path in unique:
        origin = top / path if top else None
        if baseline and origin == baseline.path:
            continue
        pieces += [((blob, path), piece) for piece in _pieces(contents[blob], prefix + path, Path(path).name, origin)]
    by_piece = {id(piece): key for key, piece in pieces}
    in_blob: dict[tuple[str, str], list[Finding]] = {}
    for piece, hit in _detect([piece for _, piece in pieces]):
        if not (baseline and baseline.covers(piece.origin, hit.fingerprint)):
            in_blob.setdefault(by_piece[id(piece)], []).append(_finding(piece, hit))
    return _first_appearances(commits, head, trees, in_blob)


def _first_appearances(commits: Sequence[str], head: str | None, trees: dict[str, list[tuple[str, str]]],
                       in_blob: dict[tuple[str, str], list[Finding]]) -> list[Finding]:
    """Each finding once, with the first commit (in ``commits``' order) whose tree holds it."""

    def identity(f: Finding) -> tuple:
        return f.file, f.type, f.fingerprint

    in_head = {identity(f) for entry in trees.get(head, []) for f in in_blob.get(entry, [])} if head else set()
    seen: set[tuple] = set()
    found = []
    for commit in commits:
        for entry in trees[commit]:
            for f in sorted(in_blob.get(entry, []), key=_order):
                if identity(f) not in seen:
                    seen.add(identity(f))
                    found.append(Finding(**{**asdict(f), "commit": commit, "in_head": identity(f) in in_head}))
    return found


# -- throwaway repositories for lessons ----------------------------------------------------------------


AUTHOR_NAME, AUTHOR_EMAIL = "Dana Data", "dana@example.com"
FIRST_COMMIT_TIME = datetime(2024, 3, 4, 9, 30, tzinfo=timezone.utc)


class ThrowawayRepo:
    """A Git repository in a temporary folder, deleted with this object (or when Python exits); or, given
    ``parent``, in ``parent/name`` (made afresh, kept until `cleanup`), where a learner can open its files.

    `git` runs the real ``git`` in it as ``git -c user.name=... -c
    user.email=... -c init.defaultBranch=main -c commit.gpgsign=false <args>``,
    ignoring the global and system Git configuration (nothing in it is
    changed), with the author and the dates fixed (one day between commits):
    so the commit ids are the same on every run, for everyone.
    """

    CONFIG = (f"user.name={AUTHOR_NAME}", f"user.email={AUTHOR_EMAIL}", "init.defaultBranch=main",
              "commit.gpgsign=false", "core.autocrlf=false")

    def __init__(self, name: str = "repo", parent: str | os.PathLike | None = None):
        self._folder = tempfile.TemporaryDirectory(prefix="kvlab-repo-") if parent is None else None
        self.name = name
        self.path = Path(self._folder.name if self._folder else str(parent)) / name
        if self._folder is None:
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        self._commits = 0
        self.git("init", "-q")

    @classmethod
    def at(cls, path: str | os.PathLike) -> ThrowawayRepo:
        """The repository an earlier ``ThrowawayRepo(name, parent)`` made, to go on committing to it."""
        path = Path(path)
        if not (path / ".git").is_dir():
            raise ScanError(f"{path} is not a Git repository: run the set-up cell again")
        repo = cls.__new__(cls)
        repo._folder, repo.name, repo.path, repo._commits = None, path.name, path, 0
        repo._commits = int(repo.git("rev-list", "--count", "HEAD") or 0)
        return repo

    def git(self, *args: str) -> str:
        """Run ``git <args>`` in the repository; its standard output without the last newline (GitError if it fails)."""
        if args and args[0] == "commit":
            self._commits += 1
        when = (FIRST_COMMIT_TIME + timedelta(days=max(self._commits - 1, 0))).isoformat()
        env = _git_env({"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when,
                        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
        return _run_git(self.path, args, env=env, config=self.CONFIG).decode("utf-8", "replace").removesuffix("\n")

    def commit_all(self, message: str) -> str:
        """``git add -A`` and ``git commit``: returns the new commit's id."""
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    def __fspath__(self) -> str:
        return str(self.path)

    def cleanup(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
        else:
            shutil.rmtree(self.path, ignore_errors=True)

    def __repr__(self) -> str:  # never the temporary path: notebooks show this
        return f"<ThrowawayRepo {self.name!r}: {self._commits} commits>"


def write_notebook(path: str | os.PathLike, cells: Sequence[tuple[str, str]]) -> Path:
    """Write a notebook of ``(kind, source)`` cells ("code" or "markdown"), byte for byte the same every time.

    Cell ids are ``cell-1``, ``cell-2``... and the JSON is laid out as Jupyter
    does, so the file (and a commit holding it) never changes between runs.
    """
    notebook = {
        "cells": [
            {"cell_type": kind, "id": f"cell-{number}", "metadata": {}, "source": source.splitlines(keepends=True),
             **({"execution_count": None, "outputs": []} if kind == "code" else {})}
            for number, (kind, source) in enumerate(cells, 1)
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n")
    return path


# -- lesson 01's practice repository -------------------------------------------------------------------


_LOAD = [
    ("markdown", "# Load daily sales\n\nReads the day's files from the landing zone and appends them to `silver.sales`."),
    ("code", 'storage_key = dbutils.secrets.get(scope="kv-scope", key="adls-storage-key")\n'
             'spark.conf.set("fs.azure.account.key.stsalesdev.dfs.core.windows.net", storage_key)'),
    ("code", 'df = spark.read.parquet("abfss://landing@stsalesdev.dfs.core.windows.net/sales/")\n'
             'df.write.mode("append").saveAsTable("silver.sales")'),
]


def _trigger(token: str) -> str:
    """The cell that starts the reporting job, with ``token`` as the expression for the Databricks token."""
    return ('import requests\n\n'
            'DATABRICKS_HOST = "https://adb-2461357902468135.5.azuredatabricks.net"\n'
            f'DATABRICKS_TOKEN = {token}\n'
            'requests.post(f"{DATABRICKS_HOST}/api/2.1/jobs/run-now",\n'
            '              headers={"Authorization": f"Bearer {DATABRICKS_TOKEN}"}, json={"job_id": 42})')


_FROM_SCOPE = 'dbutils.secrets.get(scope="kv-scope", key="databricks-token")'
_CONFIG = json.dumps({"source": "abfss://landing@stsalesdev.dfs.core.windows.net/sales/", "target": "silver.sales",
                      "schedule": "0 6 * * *", "scope": "kv-scope",
                      "keys": ["adls-storage-key", "databricks-token"]}, indent=2) + "\n"

# (message, files): a str is a text file, a list of cells a notebook
PRACTICE_HISTORY: list[tuple[str, dict[str, str | list]]] = [
    ("Add README", {"README.md": "# sales-pipeline\n\nDaily sales load: landing zone -> silver.sales.\n"}),
    ("Add the load_sales notebook", {"notebooks/load_sales.ipynb": _LOAD}),
    ("Trigger the reporting job after the load",
     {"notebooks/load_sales.ipynb": _LOAD + [("code", _trigger(f'"{FAKE_DATABRICKS_TOKEN}"'))]}),
    ("Add the pipeline configuration", {"config/pipeline.json": _CONFIG}),
    ("Read the Databricks token from the secret scope",
     {"notebooks/load_sales.ipynb": _LOAD + [("code", _trigger(_FROM_SCOPE))]}),
    ("Check that rows were loaded",
     {"notebooks/load_sales.ipynb": _LOAD + [("code", _trigger(_FROM_SCOPE)),
                                             ("code", 'assert df.count() > 0, "no sales rows loaded"')]}),
]

INCOMING_NOTEBOOK = "incoming/ingest.ipynb"
SQL_CELL = 2  # the incoming notebook's cell with the connection string (lesson 01, exercise 3)
INCOMING_CELLS = [
    ("markdown", "# Ingest orders\n\nA colleague's notebook, not committed yet."),
    ("code", f'server = "{SQL_SERVER}"\n'
             'conn_str = f"Server=tcp:{server},1433;Database=SalesDB;User ID=etl_user;'
             f'Password={FAKE_SQL_PASSWORD};Encrypt=True;"'),
    ("code", 'storage_key = dbutils.secrets.get(scope="kv-scope", key="adls-storage-key")'),
    ("code", 'orders = pd.read_csv("https://stsalesdev.blob.core.windows.net/landing/orders.csv"\n'
             f'                     "?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&sig={FAKE_SAS_SIGNATURE}")'),
    ("markdown", "## Archive the raw file"),
    ("code", "archive = BlobServiceClient.from_connection_string(\n"
             f'    "DefaultEndpointsProtocol=https;AccountName=starchivedev;AccountKey={FAKE_STORAGE_KEY};'
             'EndpointSuffix=core.windows.net")'),
    ("code", 'print(f"{len(orders)} orders ingested")'),
]


def practice_repo() -> ThrowawayRepo:
    """Lesson 01's lab repository ``sales-pipeline``: a leak somewhere in its history, and an uncommitted notebook.

    The commits are the same on every run (`ThrowawayRepo`), so checks can
    compare a learner's answer with a fresh copy.
    """
    repo = ThrowawayRepo("sales-pipeline")
    for message, files in PRACTICE_HISTORY:
        for name, content in files.items():
            if isinstance(content, str):
                (repo / name).parent.mkdir(parents=True, exist_ok=True)
                (repo / name).write_text(content, encoding="utf-8", newline="\n")
            else:
                write_notebook(repo / name, content)
        repo.commit_all(message)
    write_notebook(repo / INCOMING_NOTEBOOK, INCOMING_CELLS)
    return repo


__all__ = [
    "BASELINE", "Baseline", "FAKE_DATABRICKS_TOKEN", "FAKE_SAS_SIGNATURE", "FAKE_SQL_PASSWORD", "FAKE_STORAGE_KEY",
    "Finding", "GitError", "ScanError", "ThrowawayRepo", "detect_secrets_only", "find_baseline", "practice_repo",
    "redact", "scan", "scan_history", "scan_text", "table", "write_notebook",
]
