"""Lesson 07 - Capstone: migrate a leaky project to Key Vault.

The set-up generates `shop-pipeline/` beside the notebook: a Git repository whose history once held the shop
database's password (a `.env` committed, then removed), and a working tree a colleague has not committed yet,
with credentials in a config file, a notebook, two Data Factory linked services and a Databricks notebook. The
database (PostgreSQL, login `shop_app`) and the partner's API (`kvlab.partner`) are real here: the password and
the API key work at their source, so the checks can prove a rotation and run the migrated pipeline.

One check per step of the migration: find (ex1), store (ex2), grant (ex3), rewrite (ex4), rotate (ex5), and
commit and run (ex6), whose check runs the project end to end as its three service identities and reads the
audit log. The credentials are drawn at each set-up and staged, so an answer from another run is wrong.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from . import SECRETS_USER, Context, Exercise, Incorrect, LessonSpec

VAULT = "kv-shop-prod"
PROJECT = "shop-pipeline"  # the folder beside the notebook
DB_NAME, DB_USER = "shop", "shop_app"
INGEST, FACTORY = "id-shop-ingest", "adf-shop-prod"  # the ingest notebook's host identity; the factory
DB_SECRET, KEY_SECRET = "shop-db-password", "partner-api-key"
SCOPE, JOB_USER = "shop", "etl@kvlab.local"  # the Databricks job's Key Vault-backed scope, and who runs it
OWNER = "shop-data"
CONFIG, NOTEBOOK, SCORING = "config/settings.ini", "pipeline/ingest.ipynb", "databricks/score_orders.py"
DB_LS, ADLS_LS, KEY_VAULT_LS = "LS_ShopDb", "LS_Adls", "LS_KeyVault"
LINKED = "adf/linkedService"
ENV_FILE = ".env"
STORAGE_ACCOUNT = "stshopprod"
# base64 of "This is not a real storage account key. It is a fake for kvlab 07." (88 characters, as a real key)
FAKE_STORAGE_KEY = "VGhpcyBpcyBub3QgYSByZWFsIHN0b3JhZ2UgYWNjb3VudCBrZXkuIEl0IGlzIGEgZmFrZSBmb3Iga3ZsYWIgMDcu"  # pragma: allowlist secret


def _databricks() -> str:
    from .lesson04 import DATABRICKS

    return DATABRICKS


def needs() -> dict[str, tuple[str, ...]]:
    """Each service identity and the secrets its part of the pipeline reads (the least it needs)."""
    return {INGEST: (DB_SECRET, KEY_SECRET), FACTORY: (DB_SECRET,), _databricks(): (KEY_SECRET,)}


def project_path() -> Path:
    return Path.cwd() / PROJECT


def project():
    """The project's repository, to look at and commit to (``project.git(...)``, ``project.commit_all(message)``)."""
    from ..leaks import ThrowawayRepo

    return ThrowawayRepo.at(project_path())


# -- the set-up -------------------------------------------------------------------------------------------------


def _fake_password() -> str:
    """A generated password that looks fake, random enough that every scanner's entropy test flags it (in the
    linked service's JSON nothing but its randomness gives it away, and one draw in a hundred is too even)."""
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    detector = Base64HighEntropyString()
    while True:
        candidate = "FakeShopDb-" + secrets.token_urlsafe(24)
        if detector.calculate_shannon_entropy(candidate) >= detector.entropy_limit + 0.25:
            return candidate


def _files(db_password: str, api_key: str, port: int) -> dict[str, Any]:
    """The uncommitted working tree, credentials inline: each file as text, the notebook as (kind, source) cells."""
    from .lesson05 import linked_service_json

    config = (f"[database]\nhost = 127.0.0.1\nport = {port}\ndbname = {DB_NAME}\nuser = {DB_USER}\n"
              f"password = {db_password}\n\n[partner]\nbase_url = https://api.partner.example/v2\n")
    ingest = [
        ("markdown", "# Ingest\n\nToday's orders from the partner's API into the shop database. Runs every hour."),
        ("code", "import configparser\n\nimport psycopg\n\nfrom kvlab.partner import fetch_orders\n\n"
                 "config = configparser.ConfigParser()\nconfig.read('../config/settings.ini')\n"
                 f'PARTNER_API_KEY = "{api_key}"'),
        ("code", "orders = fetch_orders(PARTNER_API_KEY)\ndb = config['database']\n"
                 "with psycopg.connect(host=db['host'], port=db['port'], dbname=db['dbname'], user=db['user'],\n"
                 "                     password=db['password']) as connection:\n"
                 "    for order in orders:\n"
                 "        connection.execute('INSERT INTO orders VALUES (%(id)s, %(customer)s, %(amount)s) '\n"
                 "                           'ON CONFLICT (id) DO NOTHING', order)\n"
                 "    total = connection.execute('SELECT count(*) FROM orders').fetchone()[0]\n"
                 "print(f'{len(orders)} orders ingested; {total} in the shop database')"),
    ]
    scoring = ("# Databricks notebook source\n# MAGIC %md\n# MAGIC # Score orders\n# MAGIC The nightly job: today's "
               "orders from the partner, scored.\n\n# COMMAND ----------\n\nfrom kvlab.partner import fetch_orders\n\n"
               f'partner_api_key = "{api_key}"\n\n# COMMAND ----------\n\n'
               "orders = fetch_orders(partner_api_key)\nscores = {o['id']: round(o['amount'] / 100, 2) for o in orders}\n"
               "print(f'scored {len(scores)} orders')\n")
    shop_db = linked_service_json(DB_LS, "AzurePostgreSql", {
        "server": "127.0.0.1", "port": port, "database": DB_NAME, "username": DB_USER, "sslMode": 2,
        "password": {"type": "SecureString", "value": db_password}},
        description="The shop database, for the copy activity.")
    adls = linked_service_json(ADLS_LS, "AzureBlobFS", {
        "url": f"https://{STORAGE_ACCOUNT}.dfs.core.windows.net/",
        "accountKey": {"type": "SecureString", "value": FAKE_STORAGE_KEY}},
        description="The data lake: raw orders land here.")
    return {CONFIG: config, NOTEBOOK: ingest, SCORING: scoring,
            f"{LINKED}/{DB_LS}.json": json.dumps(shop_db, indent=2) + "\n",
            f"{LINKED}/{ADLS_LS}.json": json.dumps(adls, indent=2) + "\n"}


HISTORY_README = "# shop-pipeline\n\nThe shop's orders: the partner's API to the shop database, scored nightly.\n"


def _set_the_scene(lesson) -> None:
    from .. import db, partner
    from ..leaks import ThrowawayRepo, write_notebook

    lab = lesson.lab
    info = db.start(lab.state_dir)
    password = _fake_password()
    db.ensure_login(DB_USER, password, DB_NAME, lab.state_dir)
    with db.connect_admin(lab.state_dir, DB_NAME) as admin:
        admin.execute(f"SET ROLE {DB_USER}")
        admin.execute("DROP TABLE IF EXISTS orders")
        admin.execute("CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric(10, 2))")
    api_key = partner.issue_key(lab)
    lab.delete_workspace_scope(SCOPE)
    lab.ensure_workspace_user(JOB_USER)
    # the history: a .env with the password, committed, then "removed" (and pushed: every clone has it)
    repo = ThrowawayRepo(PROJECT, parent=Path.cwd())
    (repo / "README.md").write_text(HISTORY_README)
    (repo / ".gitignore").write_text("__pycache__/\n.ipynb_checkpoints/\n")
    repo.commit_all("Start the shop pipeline")
    (repo / ENV_FILE).write_text(f"SHOP_DB_HOST=127.0.0.1\nSHOP_DB_USER={DB_USER}\nSHOP_DB_PASSWORD={password}\n")
    leaked = repo.commit_all("Add local settings for the ingest job")
    (repo / ENV_FILE).unlink()
    (repo / ".gitignore").write_text("__pycache__/\n.ipynb_checkpoints/\n.env\n")
    repo.commit_all("Stop tracking .env")
    # the colleague's work in progress, not committed yet
    for name, content in _files(password, api_key, info["port"]).items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            write_notebook(path, content)
    lab.stage("lesson07.planted", json.dumps({"password": password, "api_key": api_key, "leak_commit": leaked}))


def _planted(ctx: Context) -> dict:
    staged = ctx.emulator.stage("lesson07.planted")
    if not staged:
        raise Incorrect("This run has no capstone project: run the set-up cell again.")
    return json.loads(staged)


def _where(ctx: Context) -> Path:
    where = project_path()
    if not (where / ".git").is_dir():
        raise Incorrect(f"The project {PROJECT}/ is missing beside the notebook: run the set-up cell again (it makes "
                        "a fresh copy).")
    return where


# -- exercise 1: every secret, in the working tree and in the history -------------------------------------------

WORKING_TREE = (CONFIG, NOTEBOOK, SCORING, f"{LINKED}/{DB_LS}.json", f"{LINKED}/{ADLS_LS}.json")


def _short(file: str) -> str:
    file = file.replace("\\", "/").removeprefix("./")
    return file.split(f"{PROJECT}/", 1)[1] if f"{PROJECT}/" in file else file


def _field(finding, name: str):
    return finding.get(name) if isinstance(finding, dict) else getattr(finding, name, None)


def check_found(ctx: Context) -> list[str]:
    planted = _planted(ctx)
    found = ctx.require("found", (list, tuple), "list of findings (kvlab.leaks' scan and scan_history)")
    files = {_short(str(_field(f, "file") or "")) for f in found if not _field(f, "commit")}
    history = {(_short(str(_field(f, "file") or "")), str(_field(f, "commit"))) for f in found if _field(f, "commit")}
    missing = [name for name in WORKING_TREE if name not in files]
    if missing:
        raise Incorrect(f"`found` has nothing in {missing[0]}" + (f" (nor in {len(missing) - 1} more file(s))"
                        if len(missing) > 1 else "") + ": scan the whole working tree (leaks.scan('shop-pipeline')).")
    if not any(file == ENV_FILE and planted["leak_commit"].startswith(commit) for file, commit in history):
        raise Incorrect("`found` has nothing from the project's history: a file removed in a later commit is still in "
                        "every clone (leaks.scan_history(project)).")
    return [f"`found` covers the {len(WORKING_TREE)} files of the working tree that hold a credential",
            f"and the history: {ENV_FILE}, added in {planted['leak_commit'][:7]} and removed since, yet in every clone"]


# -- exercise 2: into the vault -----------------------------------------------------------------------------------


def _works(password: str | None, state_dir) -> bool:
    """Whether the database accepts ``password`` for the shop's login."""
    import psycopg

    from .. import db

    if not password:
        return False
    try:
        with psycopg.connect(host="127.0.0.1", port=db.address(state_dir)["port"], dbname=DB_NAME, user=DB_USER,
                             password=password, connect_timeout=10):
            return True
    except psycopg.OperationalError:
        return False


def check_stored(ctx: Context) -> list[str]:
    from .lesson02 import _judge_secret

    planted = _planted(ctx)
    ctx.require("stored")
    for value, what in ((planted["password"], "the database password"), (planted["api_key"], "the partner API key")):
        if any(value in source for source in ctx.sources()):
            raise Incorrect(f"The value of {what} is typed into your code: read it from the file that holds it, so it "
                            "is not copied into one more place (this notebook). The kernel remembers that cell: run "
                            "the set-up cell again (new credentials), then your answers.")
    checked, stored = [], {}
    for name in (DB_SECRET, KEY_SECRET):
        stored[name] = _judge_secret(ctx, name, VAULT, "prod")
        checked.append(f"`{name}` is in {VAULT} with a content type, env and owner tags and an expiry")
    key = stored[KEY_SECRET]["value"]
    if key != planted["api_key"]:
        raise Incorrect(f"`{KEY_SECRET}` does not hold the API key the project uses: copy it from the project's "
                        "files (read by code, not by eye).")
    password = stored[DB_SECRET]["value"]
    if password != planted["password"] and not _works(password, ctx.emulator.state_dir):
        raise Incorrect(f"`{DB_SECRET}` holds a password the database does not accept: store the project's "
                        "password (or, once rotated, the new one).")
    values = ctx.emulator.secret_values(VAULT)
    if any(FAKE_STORAGE_KEY in found for found in values.values()):
        raise Incorrect(f"{VAULT} holds the storage account key, which nothing should need: the factory reads the "
                        "data lake with its managed identity. Delete that secret (and purge it).")
    return checked + ["the values are the project's own, read from its files, not typed"]


# -- exercise 3: the least role for each service identity ----------------------------------------------------------


def _scope(ctx: Context) -> dict | None:
    return next((s for s in ctx.emulator.workspace_scopes() if s["name"] == SCOPE), None)


def _roles_on_vault(ctx: Context) -> list[tuple[str, str, str | None]]:
    """(principal, role, secret or None) of every assignment on the vault, but the learner's own."""
    marker = "/secrets/"
    return [(a["principalName"] or a["principalId"], a["roleDefinitionName"],
             a["scope"].split(marker, 1)[1] if marker in a["scope"] else None)
            for a in ctx.emulator.role_assignments(scope=VAULT) if a["principalName"] != "learner"]


def _judge_roles(ctx: Context) -> None:
    wanted = needs()
    held = sorted(_roles_on_vault(ctx), key=lambda h: (h[0].lower(), h[1], h[2] or ""))  # one answer, one message
    for principal, role, secret in held:
        where = f"{VAULT}/secrets/{secret}" if secret else f"the whole vault {VAULT}"
        if principal not in wanted:
            raise Incorrect(f"{principal} holds {role} on {where}, but no part of the pipeline runs as it.")
        if role != SECRETS_USER:
            raise Incorrect(f"{principal} holds {role} on {where}: it only reads, so {SECRETS_USER} is its least role.")
        if secret is None:
            raise Incorrect(f"{principal} holds {SECRETS_USER} on {where}: scope it to the secrets it reads "
                            f"({', '.join(wanted[principal])}).")
        if secret not in wanted[principal]:
            raise Incorrect(f"{principal} can read {secret}, which its part of the pipeline does not use.")
    for principal, names in wanted.items():
        for name in names:
            if (principal, SECRETS_USER, name) not in held:
                raise Incorrect(f"{principal} cannot read {name}, which its part of the pipeline needs.")


def check_roles(ctx: Context) -> list[str]:
    from databricks.sdk.service.workspace import AclPermission

    from .lesson04 import _clients

    _judge_roles(ctx)
    scope = _scope(ctx)
    if scope is None or scope["backend"] != "AZURE_KEYVAULT" or (scope["vault"] or "").lower() != VAULT:
        raise Incorrect(f"The Databricks workspace needs a scope `{SCOPE}` backed by {VAULT} (scope_backend_type "
                        "AZURE_KEYVAULT): the job reads its API key through it.")
    acls = {a.principal: a.permission for a in _clients(ctx.lesson).secrets.list_acls(SCOPE)}
    if acls.get(JOB_USER) != AclPermission.READ:
        given = acls.get(JOB_USER)
        raise Incorrect(f"{JOB_USER}, who runs the job, holds {given.value if given else 'nothing'} on `{SCOPE}`: "
                        "READ is what it needs.")
    others = sorted(p for p, m in acls.items() if p != JOB_USER and m != AclPermission.MANAGE)
    if others:
        raise Incorrect(f"{others[0]} holds an ACL on `{SCOPE}`, but runs no part of the pipeline.")
    return [f"{INGEST}, {FACTORY} and {_databricks()} each hold {SECRETS_USER} on exactly the secrets they read",
            f"`{SCOPE}` is backed by {VAULT}, and {JOB_USER} reads through it (READ)"]


# -- exercise 4: code and JSON that reference Key Vault -------------------------------------------------------------


def _notebook_code(path: Path) -> str:
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
    except (ValueError, OSError) as exc:  # not JSON (NotJSONError), not a notebook, or not readable
        raise Incorrect(f"{NOTEBOOK} no longer reads as a notebook ({type(exc).__name__}): restore it from the "
                        "set-up (run it again) and edit it with nbformat or JupyterLab.") from None
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "code")


def check_rewritten(ctx: Context) -> list[str]:
    from .. import adf, leaks
    from .lesson05 import _no_credential

    where = _where(ctx)
    ctx.require("rewritten")
    left_in = _files_holding(where, _credentials(ctx))
    if left_in:
        file, what = left_in[0]
        raise Incorrect(f"{file} still holds {what}: move it out of the file, do not hide it from the scanner.")
    left = leaks.scan(where)
    if left:
        first = left[0]
        raise Incorrect(f"The working tree still holds {_several(len(left), 'possible secret')}: the first is a "
                        f"{first.type} in {_short(first.file)}" + (f" (cell {first.cell})" if first.cell else "")
                        + ".")
    try:
        services = {s.name: s for s in adf.read_all([where / LINKED])}
    except adf.AdfError as exc:
        raise Incorrect(f"A linked service no longer reads: {exc}") from None
    for name in (DB_LS, ADLS_LS):
        if name not in services:
            raise Incorrect(f"{LINKED}/{name}.json is gone: rewrite it, do not delete it.")
    if not _no_credential(services[ADLS_LS]):
        raise Incorrect(f"{ADLS_LS} still authenticates with a credential: the factory's managed identity reads the "
                        "data lake (Storage Blob Data Reader on the account), so remove accountKey and store nothing.")
    try:
        resolved = adf.resolve(Path(PROJECT, LINKED, f"{DB_LS}.json"), FACTORY, repo=Path(PROJECT, LINKED),
                               lab=ctx.emulator)  # relative: its messages name the files so
    except (adf.ResolveError, adf.AdfError) as exc:
        raise Incorrect(f"{DB_LS}'s password does not resolve as the factory: {exc}") from None
    if [r.secret for r in resolved] != [DB_SECRET] or resolved[0].field != "typeProperties.password":
        raise Incorrect(f"{DB_LS}'s password should reference `{DB_SECRET}` in {VAULT} (an AzureKeyVaultSecret "
                        f"through a Key Vault linked service).")
    code = _notebook_code(where / NOTEBOOK)
    called = _calls(code, NOTEBOOK)
    if "SecretClient" not in called or "DefaultAzureCredential" not in called:
        raise Incorrect(f"{NOTEBOOK} should read its secrets with SecretClient and DefaultAzureCredential, which "
                        "signs in as the identity of the host it runs on.")
    if {"kvlab.connect", "ClientSecretCredential"} & called:
        raise Incorrect(f"{NOTEBOOK} should be code that runs unchanged on Azure: DefaultAzureCredential, not "
                        "kvlab.connect or a client secret.")
    scoring = (where / SCORING).read_text(errors="replace")
    if "dbutils.secrets.get" not in _calls(scoring, SCORING):
        raise Incorrect(f"{SCORING} should read the API key with dbutils.secrets.get(scope='{SCOPE}', "
                        f"key='{KEY_SECRET}').")
    return ["the working tree scans clean",
            f"{DB_LS} references {DB_SECRET} and resolves as {FACTORY}; {ADLS_LS} uses the factory's managed identity",
            f"{NOTEBOOK} reads Key Vault with DefaultAzureCredential; {SCORING} reads the scope `{SCOPE}`"]


def _credentials(ctx: Context) -> dict[str, str]:
    """What must be in no file and no commit: this run's credentials, and the password the vault holds now."""
    planted = _planted(ctx)
    found = {"the partner API key": planted["api_key"], "the data lake's account key": FAKE_STORAGE_KEY,
             "the database password": planted["password"]}
    current = ctx.emulator.inspect_secret(VAULT, DB_SECRET)
    if current is not None and current["value"] != planted["password"]:
        found["the database's new password"] = current["value"]
    return found


def _files_holding(where: Path, credentials: dict[str, str]) -> list[tuple[str, str]]:
    """(file, which credential) for each file of the working tree that holds one, whatever hides it from a scanner."""
    held = []
    for path in sorted(where.rglob("*")):
        relative = path.relative_to(where)
        if path.is_file() and relative.parts[0] != ".git" and ".ipynb_checkpoints" not in relative.parts:
            text = path.read_text(errors="replace")
            held += [(relative.as_posix(), what) for what, value in credentials.items() if value in text]
    return held


def _calls(source: str, where: str) -> set[str]:
    """The names the code calls (``f``, ``a.b.c``), read from its syntax: a comment or a string is no call."""
    import ast

    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise Incorrect(f"{where} is not valid Python (line {exc.lineno}: {exc.msg}).") from None

    def dotted(node) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            head = dotted(node.value)
            return f"{head}.{node.attr}" if head else None
        return None

    return {name for node in ast.walk(tree) if isinstance(node, ast.Call) and (name := dotted(node.func))}


def _several(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# -- exercise 5: the leaked password, rotated at its source -------------------------------------------------------


def check_rotated(ctx: Context) -> list[str]:
    planted = _planted(ctx)
    ctx.require("rotated")
    lab = ctx.emulator
    current = ctx.secret(DB_SECRET, VAULT)
    if current is None:
        raise Incorrect(f"{VAULT} has no `{DB_SECRET}`: store it first (exercise 2).")
    if _works(planted["password"], lab.state_dir):
        raise Incorrect(f"The database still accepts the password from {ENV_FILE} in the history: anyone with a "
                        "clone can sign in. Change it at the source (kvlab.db.set_password).")
    if current["value"] == planted["password"] or not _works(current["value"], lab.state_dir):
        raise Incorrect(f"The database refuses the password in `{DB_SECRET}`: set the new password as a new version "
                        "of the secret, the one the database now has.")
    checked = [ctx.require_generated(current["value"], f"the new {DB_SECRET}")]
    if current["exp"] is None:
        raise Incorrect(f"The new version of `{DB_SECRET}` has no expiry: give it one (90 days), so the next rotation "
                        "is announced by SecretNearExpiry.")
    from .lesson02 import _judge_secret

    _judge_secret(ctx, DB_SECRET, VAULT, "prod")  # a new version carries no metadata over: set it again
    return [f"the database refuses the password the history holds, and accepts the one in `{DB_SECRET}`", *checked]


# -- exercise 6: commit, run, and prove who read what ----------------------------------------------------------------


def _exec_ingest(where: Path, lab) -> str:
    """Run the ingest notebook in a kernel of its own, as its host would: the host's identity (AZURE_CLIENT_ID) and
    the emulator's doors (`kvlab env`'s variables) in its environment, nothing in its code. Its last printed line."""
    import os
    import subprocess

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from ..connection import environment

    notebook = nbformat.read(where / NOTEBOOK, as_version=4)
    env = {**os.environ, **environment(lab.state_dir, lab.port), "AZURE_CLIENT_ID": lab.identity(INGEST)["clientId"]}
    try:
        NotebookClient(notebook, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(where / "pipeline")}}).execute(
            env=env, stderr=subprocess.DEVNULL)
    except CellExecutionError as exc:
        raise RuntimeError(f"{exc.ename}: {exc.evalue}".splitlines()[0]) from None
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))
    return text.strip().splitlines()[-1] if text.strip() else ""


def _exec_scoring(where: Path, lesson) -> str:
    """Run the Databricks notebook's commands as the job's user, with that user's dbutils: its printed output."""
    import contextlib
    import io

    from .lesson04 import _clients

    source = (where / SCORING).read_text()
    printed = io.StringIO()
    namespace = {"dbutils": _clients(lesson, JOB_USER).dbutils, "__name__": "__main__"}
    with contextlib.redirect_stdout(printed):
        exec(compile(source, str(where / SCORING), "exec"), namespace)
    return printed.getvalue().strip()


def run_pipeline(lesson):
    """The migrated project, end to end, as its service identities: the ingest notebook (as id-shop-ingest), the
    factory's linked service (as adf-shop-prod) and the Databricks job (as etl@kvlab.local). One row per part."""
    import pandas as pd

    from .. import adf

    where = project_path()
    rows = []
    parts = (("ingest notebook", INGEST, lambda: _exec_ingest(where, lesson.lab)),
             (f"factory: {DB_LS}", FACTORY, lambda: "connected as " + adf.connect(  # relative: messages name it so
                 Path(PROJECT, LINKED, f"{DB_LS}.json"), FACTORY, repo=Path(PROJECT, LINKED), lab=lesson.lab)["user"]),
             ("databricks job", JOB_USER, lambda: _exec_scoring(where, lesson)))
    for part, identity, run in parts:
        try:
            rows.append({"part": part, "runs as": identity, "result": run(), "error": None})
        except Exception as exc:  # the project's code, run as the learner left it: its failure, in one line
            text = str(exc).strip().split(" Config: ")[0]  # the Databricks SDK appends its client's settings
            rows.append({"part": part, "runs as": identity, "result": None,
                         "error": f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:300]})
            print(f"The {part} failed as {identity}: {rows[-1]['error']}")  # whole: the table cuts long text
    return pd.DataFrame(rows, columns=["part", "runs as", "result", "error"])


def _committed(repo, credentials: dict[str, str], allowed: tuple[str, str]) -> list[tuple[str, str]]:
    """(commit, which credential) for each commit that adds a line holding one; ``allowed`` is (commit, value):
    the history's known leak, which the rotation made harmless."""
    found, commit = [], ""
    for line in repo.git("log", "--all", "-p", "--format=commit %H").splitlines():
        if line.startswith("commit "):
            commit = line.split()[1]
        elif line.startswith("+") and not line.startswith("+++"):
            found += [(commit, what) for what, value in credentials.items()
                      if value in line and (commit, value) != allowed]
    return found


def check_pipeline(ctx: Context) -> list[str]:
    from .. import leaks

    planted = _planted(ctx)
    ctx.require("report")
    lab, where = ctx.emulator, _where(ctx)
    repo = project()
    pending = repo.git("status", "--porcelain")
    if pending:
        raise Incorrect(f"The project has uncommitted changes ({pending.splitlines()[0].strip()}...): commit the "
                        "migration (project.commit_all(message)).")
    in_commits = _committed(repo, _credentials(ctx), allowed=(planted["leak_commit"], planted["password"]))
    if in_commits:
        commit, what = in_commits[0]
        raise Incorrect(f"Commit {commit[:7]} holds {what}: rewrite that commit before anyone pulls it (or, pushed "
                        "already, rotate it too).")
    committed = [f for f in leaks.scan_history(where) if f.commit != planted["leak_commit"]]
    if committed:
        raise Incorrect(f"A commit holds a possible secret: a {committed[0].type} in {committed[0].file}. Rewrite "
                        "it before anyone pulls (or, pushed already, rotate it too).")
    _judge_roles(ctx)
    position = lab.audit_position()
    report = run_pipeline(ctx.lesson)
    failed = report[report.error.notna()]
    if len(failed):
        row = failed.iloc[0]
        raise Incorrect(f"The {row['part']} failed as {row['runs as']}: {row['error']}")
    reads = {(r["identity"], r["secretName"]) for r in lab.audit(after=position)
             if r["operationName"] == "SecretGet" and r["httpStatusCode"] == 200 and r["vault"] == VAULT}
    expected = {(who, name) for who, names in needs().items() for name in names}
    if reads != expected:
        missing = sorted(expected - reads)
        raise Incorrect(f"During the run, {missing[0][0]} did not read {missing[0][1]}: is that part of the project "
                        "still using its own copy?" if missing else
                        f"During the run, {sorted(reads - expected)[0][0]} read a secret it should not.")
    others = sorted({r["identity"] for r in ctx.audit(operationName="SecretGet", vault=VAULT, httpStatusCode=200)}
                    - set(needs()) - {"learner"})
    if others:
        raise Incorrect(f"The audit log shows {others[0]} reading {VAULT} during this run: nothing but the pipeline's "
                        "three identities (and you, migrating) should have.")
    return ["the migration is committed, and no commit holds a credential but the history's old (rotated) password",
            "the ingest notebook, the factory and the Databricks job ran, each as its own identity",
            f"the audit log shows exactly their reads of {VAULT}, and no other identity's"]


LESSON = LessonSpec(
    number="07",
    title="Capstone: migrate a leaky project to Key Vault",
    vaults=(VAULT,),
    identities=(INGEST, FACTORY),
    grants=(("Key Vault Secrets Officer", "learner", VAULT),),
    seed=_set_the_scene,
    emulator_only=("the project's database, partner API and service identities run on this machine. On Azure the "
                   "same steps are the az and databricks commands in guided lesson 07, section 5"),
    exercises=(
        Exercise("ex1", "Find every secret", check_found, (
            "Two scans: leaks.scan('shop-pipeline') for the working tree, leaks.scan_history('shop-pipeline') for every "
            "commit.",
            "`found` is both lists added together: scan(...) + scan_history(...).",
        )),
        Exercise("ex2", "Into the vault", check_stored, (
            "Read each value from the file that holds it (configparser for the .ini, json for the linked service, "
            "nbformat for the notebook): copying by eye puts it in this notebook too.",
            "set_secret(name, value, content_type='text/plain', tags={'env': 'prod', 'owner': 'shop-data'}, "
            "expires_on=...) for the password and the API key; the storage key needs no secret at all.",
        )),
        Exercise("ex3", "The least role for each identity", check_roles, (
            "Key Vault Secrets User on each secret, one assignment per (identity, secret): the ingest notebook reads "
            "both, the factory the password, AzureDatabricks the API key.",
            "The scope as in lesson 04: created with an Entra ID token (entra_workspace()), its backend AZURE_KEYVAULT "
            "with the vault's resource id and URL; then READ for etl@kvlab.local (secrets.put_acl).",
        )),
        Exercise("ex4", "Rewrite the project", check_rewritten, (
            "Five files: the .ini loses its password (and gains the vault's URL), the notebook reads SecretClient, "
            "LS_ShopDb references the secret through an LS_KeyVault, LS_Adls loses its accountKey, the Databricks "
            "notebook calls dbutils.secrets.get.",
            "Check your work with leaks.scan('shop-pipeline') and kvlab.adf.check([project / 'adf']) before the check does.",
        )),
        Exercise("ex5", "Rotate the leaked password", check_rotated, (
            "The password in the history's .env is the one in use: change it at the database first "
            "(kvlab.db.set_password('shop_app', new)), then set the new value as a new version of the secret.",
            "Generate the new password (secrets.token_urlsafe(24)), and give the new version an expiry.",
        )),
        Exercise("ex6", "Commit, run, and prove who read what", check_pipeline, (
            "project.commit_all('Read every credential from Key Vault'), then report = run_pipeline(lesson).",
            "A failing part names its error: run that part's file by hand, as its identity, to see why.",
        )),
    ),
)
