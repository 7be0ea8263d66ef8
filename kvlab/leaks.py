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
from dataclasses import asdict, dataclass, field
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

    def as_dict(self) -> dict:
        """The JSON form: history fields only for history scans, never the fingerprint."""
        data = {"file": self.file, "cell": self.cell, "line": self.line, "output": self.output, "type": self.type,
                "secret": self.secret}
        if self.commit is not None:
            data.update(commit=self.commit, in_head=self.in_head)
        return data


def table(findings: Sequence[Finding]) -> str:
    """A plain-text table of findings (``kvlab scan -o table``), commit ids shortened to 12 characters."""
    from tabulate import tabulate

    if not findings:
        return "(no secrets found)"
    history = any(f.commit for f in findings)
    rows = []
    for f in findings:
        row = {"file": f.file, "cell": "" if f.cell is None else f.cell,
               "line": ("output" if f.output else "") if f.line is None else (f"{f.line} (output)" if f.output else f.line),
               "type": f.type, "secret": f.secret}
        if history:
            row.update(commit=(f.commit or "")[:12], in_head="yes" if f.in_head else "no")
        rows.append(row)
    return tabulate(rows, headers="keys", disable_numparse=True)


# -- detect-secrets, with kvlab's plugins ---------------------------------------------------------


KVLAB_PLUGINS = ("ConnectionStringPasswordDetector", "AzureSasSignatureDetector", "DatabricksTokenDetector")
KVLAB_INDIRECT_FILTER = "kvlab.secret_plugins.is_indirect_reference"
HEURISTIC_INDIRECT_FILTER = "detect_secrets.filters.heuristic.is_indirect_reference"


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
        plugins = [{"name": cls.__name__} for cls in get_mapping_from_secret_type_to_class().values()]
        filters = [{"path": p} for p in sorted(Settings().filters) if p not in Settings.DEFAULT_FILTERS]
        if with_kvlab:
            where = "file://" + str(Path(secret_plugins.__file__).resolve())
            plugins += [{"name": name, "path": where} for name in KVLAB_PLUGINS]
            filters = [f for f in filters if f["path"] != HEURISTIC_INDIRECT_FILTER]
            filters.append({"path": KVLAB_INDIRECT_FILTER})
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


def _detect(pieces: Sequence[_Piece], with_kvlab: bool = True) -> list[tuple[_Piece, object]]:
    """detect-secrets' findings (PotentialSecret) in each piece, through its public ``scan_file``."""
    from detect_secrets.core.scan import scan_file

    found = []
    with tempfile.TemporaryDirectory(prefix="kvlab-scan-") as tmp, _settings(with_kvlab):
        for number, piece in enumerate(pieces):
            path = Path(tmp) / str(number) / piece.name
            path.parent.mkdir()
            path.write_text(piece.text, encoding="utf-8", newline="")
            found += [(piece, secret) for secret in scan_file(str(path))]
    return found


def _finding(piece: _Piece, secret) -> Finding:
    return Finding(type=secret.type, file=piece.file, line=secret.line_number, secret=redact(secret.secret_value or ""),
                   cell=piece.cell, output=piece.output, fingerprint=secret.secret_hash)


def _cell_text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _notebook_pieces(text: str, file: str) -> list[_Piece] | None:
    """Each cell's source, and each code cell's text output, as its own piece; None if not a notebook."""
    import nbformat
    from nbformat.reader import reads as parse

    try:  # parsed, not validated: a scanner reads whatever was committed, and stays quiet about its shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            notebook = parse(text)
            if notebook.get("nbformat") != 4:
                notebook = nbformat.convert(notebook, 4)
        cells = list(notebook["cells"])
    except Exception:  # not JSON, or not a notebook nbformat understands: scan it as plain text
        return None
    stem = Path(file).stem or "notebook"
    suffix = {"code": ".py", "markdown": ".md"}
    pieces = []
    for number, cell in enumerate(cells, 1):
        kind = cell.get("cell_type")
        source = _cell_text(cell.get("source"))
        if source.strip():
            pieces.append(_Piece(source, f"{stem}-cell{number}{suffix.get(kind, '.txt')}", file, number))
        texts = []
        for output in cell.get("outputs", []) if kind == "code" else []:
            if output.get("output_type") == "stream":
                texts.append(_cell_text(output.get("text")))
            elif "data" in output:
                texts.append(_cell_text(output["data"].get("text/plain")))
            elif output.get("output_type") == "error":
                texts.append("\n".join(output.get("traceback", [])))
        output_text = "\n".join(t for t in texts if t)
        if output_text.strip():
            pieces.append(_Piece(output_text, f"{stem}-cell{number}-output.txt", file, number, output=True))
    return pieces


def _pieces(data: bytes, file: str, name: str) -> list[_Piece]:
    """How one file's content is scanned: skipped if binary or large, by cell if a notebook."""
    if len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if name.lower().endswith(".ipynb"):
        cells = _notebook_pieces(text, file)
        if cells is not None:
            return cells
    return [_Piece(text, Path(name).name or "file", file)]


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(set(findings), key=lambda f: (f.file, f.cell or 0, f.output, f.line or 0, f.type))


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


def scan(*paths: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Finding]:
    """Possible secrets in files and folders (walked, skipping hidden folders); notebooks by cell.

    ``root`` resolves relative paths (as ``git -C`` does) and keeps reported
    file names as short as they were given.
    """
    if not paths:
        raise ScanError("nothing to scan: give at least one file or folder")
    pieces = []
    for given in paths:
        full = Path(root, given) if root is not None else Path(given)
        if not full.exists():
            raise ScanError(f"no such file or folder: {os.fspath(given)}")
        for file, shown in _files(full, os.fspath(given)):
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise ScanError(f"cannot read {shown}: {exc.strerror or exc}") from None
            pieces += _pieces(data, shown, file.name)
    return _sorted(_finding(piece, secret) for piece, secret in _detect(pieces))


def scan_text(text: str, name: str = "cell.py", kvlab_plugins: bool = True) -> list[Finding]:
    """Possible secrets in a string (a cell's source, say), scanned as a file called ``name``.

    With ``kvlab_plugins=False``: what detect-secrets finds by itself.
    """
    pieces = _pieces(text.encode("utf-8"), name, name)
    return _sorted(_finding(piece, secret) for piece, secret in _detect(pieces, with_kvlab=kvlab_plugins))


def detect_secrets_only(path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Finding]:
    """What detect-secrets finds by itself in one file: its default plugins, the raw file (a notebook as JSON)."""
    full = Path(root, path) if root is not None else Path(path)
    if not full.is_file():
        raise ScanError(f"no such file: {os.fspath(path)}")
    piece = _Piece(full.read_text(encoding="utf-8"), full.name, os.fspath(path))
    return _sorted(_finding(piece, secret) for piece, secret in _detect([piece], with_kvlab=False))


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


def scan_history(*repos: str | os.PathLike) -> list[Finding]:
    """Possible secrets in every revision of every file in the history of each Git repository.

    Each finding is reported once, where it first appeared: the commit that
    introduced it (parents before children, all branches and tags), with
    ``in_head`` saying whether the latest commit still holds it. File names are
    paths in the repository (prefixed by the repository when several are given).
    """
    if not repos:
        raise ScanError("nothing to scan: give at least one Git repository")
    found: list[Finding] = []
    for given in repos:
        repo = Path(given)
        commits, head = _history(repo)
        trees = {commit: _tree(repo, commit) for commit in commits}
        unique = sorted({entry for tree in trees.values() for entry in tree})
        contents = _blobs(repo, sorted({blob for blob, _ in unique}))
        shown = (lambda path: f"{os.fspath(given)}/{path}") if len(repos) > 1 else (lambda path: path)
        pieces: list[tuple[tuple[str, str], _Piece]] = []
        for blob, path in unique:
            pieces += [((blob, path), piece) for piece in _pieces(contents[blob], shown(path), Path(path).name)]
        by_piece = {id(piece): key for key, piece in pieces}
        in_blob: dict[tuple[str, str], list[Finding]] = {}
        for piece, secret in _detect([piece for _, piece in pieces]):
            in_blob.setdefault(by_piece[id(piece)], []).append(_finding(piece, secret))

        def identity(f: Finding) -> tuple:
            return f.file, f.type, f.fingerprint

        in_head = {identity(f) for entry in trees.get(head, []) for f in in_blob.get(entry, [])} if head else set()
        seen: set[tuple] = set()
        for commit in commits:
            for entry in trees[commit]:
                for f in sorted(in_blob.get(entry, []), key=lambda f: (f.cell or 0, f.output, f.line or 0, f.type)):
                    if identity(f) not in seen:
                        seen.add(identity(f))
                        found.append(Finding(**{**asdict(f), "commit": commit, "in_head": identity(f) in in_head}))
    return found


# -- throwaway repositories for lessons ----------------------------------------------------------------


AUTHOR_NAME, AUTHOR_EMAIL = "Dana Data", "dana@example.com"
FIRST_COMMIT_TIME = datetime(2024, 3, 4, 9, 30, tzinfo=timezone.utc)


class ThrowawayRepo:
    """A Git repository in a temporary folder, deleted with this object (or when Python exits).

    `git` runs the real ``git`` in it as ``git -c user.name=... -c
    user.email=... -c init.defaultBranch=main -c commit.gpgsign=false <args>``,
    ignoring the global and system Git configuration (nothing in it is
    changed), with the author and the dates fixed (one day between commits):
    so the commit ids are the same on every run, for everyone.
    """

    CONFIG = (f"user.name={AUTHOR_NAME}", f"user.email={AUTHOR_EMAIL}", "init.defaultBranch=main",
              "commit.gpgsign=false", "core.autocrlf=false")

    def __init__(self, name: str = "repo"):
        self._folder = tempfile.TemporaryDirectory(prefix="kvlab-repo-")
        self.name = name
        self.path = Path(self._folder.name) / name
        self.path.mkdir()
        self._commits = 0
        self.git("init", "-q")

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
        self._folder.cleanup()

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
    "FAKE_DATABRICKS_TOKEN", "FAKE_SAS_SIGNATURE", "FAKE_SQL_PASSWORD", "FAKE_STORAGE_KEY", "Finding", "GitError",
    "ScanError", "ThrowawayRepo", "detect_secrets_only", "practice_repo", "redact", "scan",
    "scan_history", "scan_text", "table", "write_notebook",
]
