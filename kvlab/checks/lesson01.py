"""Lesson 01 - The problem of leaked secrets: Git never forgets, scanners find, the vault replaces.

The lab's set-up builds `kvlab.leaks.practice_repo()`, a throwaway repository
whose commit ids are the same on every run. So the checks of exercises 1 and 2
compare the learner's answers with a fresh copy scanned here, whatever the
learner did to theirs, and work against a real vault too (they need only Git
and the scanner). Exercise 3 reads the vault and the audit log.

The lesson's vault holds `sql-db-password` from the start (the `seed`): the
leaked password has been rotated, and the new one, generated, lives only in
the vault. The seed writes it as `id-secops`, the identity that rotates
secrets; the learner only reads (Key Vault Secrets User).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .. import leaks
from . import Context, Exercise, Incorrect, LessonSpec, Unavailable

VAULT = "kv-leaks-dev"
SECRET = "sql-db-password"
SAS_SECRET = "landing-sas-token"  # exercise 3: the revoked SAS's successor, a query string without "?"
ORDERS_BLOB = ("https", "stsalesdev.blob.core.windows.net", "/landing/orders.csv")
ROTATOR = "id-secops"
MIN_COMMIT_ID = 7


def new_sas_token() -> str:
    """A SAS token's query string, shaped as Azure issues them, with a generated signature (never a real one)."""
    import base64
    import secrets
    from urllib.parse import quote

    signature = quote(base64.b64encode(secrets.token_bytes(32)).decode(), safe="")
    return f"sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&spr=https&sig={signature}"


def seed(lesson) -> None:
    """Put the rotated password and the new SAS token in the vault, generated, written by the rotating identity."""
    import secrets

    from azure.identity import ManagedIdentityCredential
    from azure.keyvault.secrets import SecretClient

    client_id = lesson.lab.identity(ROTATOR)["clientId"]
    with ManagedIdentityCredential(client_id=client_id) as credential, \
            SecretClient(lesson.vault_url(VAULT), credential) as client:
        client.set_secret(SECRET, secrets.token_urlsafe(24), content_type="text/plain")
        client.set_secret(SAS_SECRET, new_sas_token(), content_type="text/plain")


@dataclass(frozen=True)
class Practice:
    """What a fresh copy of the practice repository holds (the answers the checks compare with)."""

    commits: tuple[tuple[str, str], ...]  # (id, subject), oldest first
    leak: leaks.Finding  # the one finding in the history
    touched: tuple[str, ...]  # `git log -S <secret>`: the commits that added or removed it, newest first
    incoming: tuple[leaks.Finding, ...]  # the uncommitted notebook, scanned by kvlab
    incoming_raw_lines: frozenset[int]  # the lines detect-secrets alone reports in its raw JSON


@functools.lru_cache(maxsize=1)
def practice() -> Practice:
    repo = leaks.practice_repo()
    try:
        commits = tuple((commit, subject) for commit, _, subject in
                        (line.partition(" ") for line in repo.git("log", "--reverse", "--format=%H %s").splitlines()))
        history = leaks.scan_history(repo)
        touched = tuple(repo.git("log", "-S", leaks.FAKE_DATABRICKS_TOKEN, "--format=%H").split())
        incoming = tuple(leaks.scan(leaks.INCOMING_NOTEBOOK, root=repo))
        raw = frozenset(f.line for f in leaks.detect_secrets_only(leaks.INCOMING_NOTEBOOK, root=repo) if f.line is not None)
    finally:
        repo.cleanup()
    assert len(history) == 1, "the practice repository's history should hold exactly one leak"
    return Practice(commits, history[0], touched, incoming, raw)


# -- exercise 1: the leak in the history ---------------------------------------------------------------


def check_find_leak(ctx: Context) -> list[str]:
    answer = ctx.require("leak_commit", str, "str (a commit id)").strip().lower()
    kind = ctx.require("leaked_type", str, "str (the type the scanner reports)").strip()
    known = practice()
    leak = known.leak
    if not re.fullmatch(r"[0-9a-f]+", answer) or len(answer) < MIN_COMMIT_ID:
        raise Incorrect(
            f"`leak_commit` should be a commit id: at least its first {MIN_COMMIT_ID} hexadecimal characters, "
            "as `git log --oneline` shows them."
        )
    matches = [(number, sha, subject) for number, (sha, subject) in enumerate(known.commits) if sha.startswith(answer)]
    if not matches:
        raise Incorrect(
            f"No commit of the practice repository starts with {answer!r}. Copy the id from the history scan "
            "(or from `practice.git('log', '--oneline')`); if you rewrote the practice repository's history, "
            "run the set-up cell again."
        )
    number, sha, subject = matches[0]
    leak_number = next(n for n, (c, _) in enumerate(known.commits) if c == leak.commit)
    where = f"commit {sha[:7]} ({subject!r})"
    if sha != leak.commit:
        if sha in known.touched:
            reason = ("is where the secret was *removed*: `git log -S` lists both the commit that added a string "
                      "and the one that removed it. Find the one that added it")
        elif sha == known.commits[-1][0]:
            reason = ("is the latest commit, and the latest commit holds no secret: scan the whole history, "
                      "not the working tree")
        elif number < leak_number:
            reason = "comes before the secret entered the history"
        else:
            reason = "did not add a secret (it came later, and only carried the secret along)"
        raise Incorrect(
            f"{where[0].upper()}{where[1:]} {reason}. A history scan (`leaks.scan_history(practice)` or "
            "`kvlab scan --history`) reports the commit that introduced each finding."
        )
    checked = [f"`leak_commit` is {sha[:12]} ({subject!r}): it added a secret to {leak.file} (cell {leak.cell})",
               "the latest commit no longer holds it, yet every clone of the history does"]
    if kind.lower() != leak.type.lower():
        uncommitted = {f.type.lower() for f in known.incoming}
        if kind.lower() in uncommitted:
            raise Incorrect(
                f"`leaked_type` is {kind!r}: that kind of secret is in `{leaks.INCOMING_NOTEBOOK}`, which was "
                "never committed. The leak in the history is another kind: look at the `type` of the history "
                "scan's finding."
            )
        raise Incorrect(
            f"`leaked_type` is {kind!r}, but the secret that commit added is not reported as that: copy the "
            "`type` of the history scan's finding."
        )
    checked.append(f"it is a {leak.type}, a kind detect-secrets misses by itself (a kvlab plugin finds it)")
    return checked


# -- exercise 2: a notebook, cell by cell -----------------------------------------------------------------


def check_leaky_cells(ctx: Context) -> list[str]:
    cells = ctx.require("leaky_cells", (list, tuple, set, frozenset), "list of cell numbers")
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in cells):
        raise Incorrect("`leaky_cells` should hold cell numbers (int), like [1, 5]: the `cell` of each finding.")
    known = practice()
    expected = {f.cell for f in known.incoming if f.cell is not None}
    answer = set(cells)
    if answer == expected:
        kinds = ", ".join(sorted({f.type for f in known.incoming}))
        return [f"cells {sorted(expected)} of {leaks.INCOMING_NOTEBOOK} hold possible secrets: {kinds}",
                "you scanned the notebook by its cells, not as raw JSON"]
    if answer and answer == set(known.incoming_raw_lines):
        raise Incorrect(
            f"{sorted(answer)} are line numbers of the notebook's JSON: what detect-secrets reports when it "
            "reads the .ipynb file as text (and it finds only one secret that way). Scan it with kvlab's scanner, "
            f"which reads each cell: `leaks.scan({leaks.INCOMING_NOTEBOOK!r}, root=practice)`."
        )
    if answer and {c + 1 for c in answer} == expected:
        raise Incorrect("Cells are numbered from 1, as the scanner reports them (cell 1 is the notebook's first cell).")
    extra = sorted(answer - expected)
    if extra:
        raise Incorrect(
            f"Cell{'s' * (len(extra) > 1)} {extra} hold{'s' * (len(extra) == 1)} no secret the scanner reports "
            f"(the notebook has cells 1 to {len(leaks.INCOMING_CELLS)}; a `dbutils.secrets.get(...)` call is a "
            "reference, not a secret)."
        )
    raise Incorrect(
        f"You listed {len(answer)} of the {len(expected)} cells that hold a possible secret. detect-secrets by itself "
        "misses several Azure formats; scan with kvlab's scanner (`leaks.scan`), which adds plugins for them."
    )


# -- exercise 3: the cell, fixed --------------------------------------------------------------------------------


# detect-secrets' guessing detectors: `secret_name = "landing-sas-token"` is a keyword hit, not a leak
GUESSES = {"Secret Keyword", "Base64 High Entropy String", "Hex High Entropy String"}


def check_sas_url(ctx: Context) -> list[str]:
    """Cell 4 of the colleague's notebook, fixed: the same blob, with the SAS token read from the vault."""
    from urllib.parse import urlsplit

    orders_url = ctx.require("orders_url", str, "str (the blob's URL)")
    code = ctx.sources()
    if any(leaks.FAKE_SAS_SIGNATURE in source for source in code):
        raise Incorrect("The leaked signature is still in your code. Delete it: that SAS was revoked, and its "
                        f"successor comes only from the vault's `{SAS_SECRET}`.")
    parts = urlsplit(orders_url)
    if (parts.scheme, parts.netloc.lower(), parts.path) != ORDERS_BLOB:
        raise Incorrect(f"Keep the blob's address as it was ({ORDERS_BLOB[0]}://{ORDERS_BLOB[1]}{ORDERS_BLOB[2]}): "
                        "only the SAS token after the `?` comes from somewhere else now.")
    if not parts.query:
        raise Incorrect("`orders_url` has no SAS token after the `?`: without one, the storage account refuses "
                        "the read. Put the vault's token there.")
    if leaks.FAKE_SAS_SIGNATURE in parts.query:
        raise Incorrect("`orders_url` still carries the leaked SAS. It was revoked: read its successor from the "
                        f"vault's `{SAS_SECRET}`.")
    stored = ctx.secret(SAS_SECRET)
    if stored is None:
        raise Incorrect(f"The vault has no secret named `{SAS_SECRET}`. On a real vault, store a SAS token you "
                        "generated there first, then read it.")
    token = stored["value"].lstrip("?")
    if parts.query != token:
        raise Incorrect(f"The SAS token in `orders_url` is not the current value of `{SAS_SECRET}`: read it with "
                        f"client.get_secret({SAS_SECRET!r}).value and put it after the `?` as it is.")
    if any(token in source for source in code):
        raise Incorrect("The vault's value appears in your code: read it from the vault at run time, never paste it.")
    checked = ["the leaked signature appears nowhere in your code",
               f"`orders_url` is the same blob with the current value of `{SAS_SECRET}` (not shown)"]
    for source in code:
        found = [f for f in leaks.scan_text(source) if f.type not in GUESSES]
        if found:
            raise Incorrect(f"kvlab's scanner still finds a {found[0].type} ({found[0].secret}) in your code, "
                            f"line {found[0].line} of a cell you ran: remove it.")
    checked.append("kvlab's scanner finds no known secret format in the code you ran")
    if ctx.lesson.lab is not None:
        reads = [r for r in ctx.audit(vault=VAULT, operationName="SecretGet", httpStatusCode=200)
                 if (r.get("secretName") or "").lower() == SAS_SECRET]
        if not reads:
            raise Incorrect(f"`{SAS_SECRET}` was not read from the vault in this run: the audit log shows no "
                            "SecretGet.")
        checked.append(f"the audit log shows your read (SecretGet as {reads[-1]['identity']})")
        return checked
    raise Unavailable(
        "Everything else checks out. Whether you read the token from the vault shows only in the vault's "
        "audit log (diagnostic settings, AuditEvent), which this check cannot read on a real vault."
    )


LESSON = LessonSpec(
    number="01",
    title="The problem of leaked secrets",
    vaults=(VAULT,),
    identities=(ROTATOR,),
    grants=(("Key Vault Secrets User", "learner", VAULT), ("Key Vault Secrets Officer", ROTATOR, VAULT)),
    seed=seed,
    exercises=(
        Exercise("ex1", "Find the commit that leaked a secret", check_find_leak, (
            "Scan the whole history, not the working tree: leaks.scan_history(practice) (or, in a terminal, "
            "kvlab scan --history with the folder practice.path). Each finding names the commit that introduced it.",
            "Each finding of the history scan has a `commit` and a `type`: take them from the one it reports.",
        )),
        Exercise("ex2", "Scan a notebook cell by cell", check_leaky_cells, (
            f"Scan the notebook file itself: leaks.scan({leaks.INCOMING_NOTEBOOK!r}, root=practice) reads it "
            "cell by cell.",
            "Every finding has a `cell` number; several findings can share a cell. leaky_cells is each cell once, "
            "in order.",
        )),
        Exercise("ex3", "Read the SAS token from the vault instead", check_sas_url, (
            f"The storage account's new SAS token lives in the vault as `{SAS_SECRET}`: everything after the `?` "
            "comes from there at run time.",
            "Read it with a SecretClient for lesson.vault_url() and put it after the `?` of the same blob URL, as "
            "it is (it is already URL-encoded). Never print the URL.",
        )),
    ),
)
