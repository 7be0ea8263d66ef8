"""kvlab.leaks and `kvlab scan`: detect-secrets plus kvlab's Azure plugins, notebooks by cell, Git history.

Every fake secret here comes from kvlab.leaks' constants (they look fake and the
scanner still finds them) or sits on a line marked ``# pragma: allowlist secret``.
The CLI runs as a user runs it: a subprocess, JSON or a table on stdout, a
one-line error on stderr, and never a secret in full.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kvlab import leaks
from kvlab.leaks import FAKE_DATABRICKS_TOKEN, FAKE_SAS_SIGNATURE, FAKE_SQL_PASSWORD, FAKE_STORAGE_KEY

from runners import assert_one_line_error, kvlab

ROOT = Path(__file__).resolve().parents[1]
SECRETS = (FAKE_DATABRICKS_TOKEN, FAKE_SAS_SIGNATURE, FAKE_SQL_PASSWORD, FAKE_STORAGE_KEY)

SQL = f'conn_str = "Server=tcp:sql-sales-dev.database.windows.net,1433;User ID=etl_user;Password={FAKE_SQL_PASSWORD};"'
ODBC_CALL = f'conn = pyodbc.connect("Driver={{ODBC Driver 18}};Server=sql-sales-dev;Uid=etl;Pwd={FAKE_SQL_PASSWORD};")'
JDBC = f'url = "jdbc:sqlserver://sql-sales-dev:1433;databaseName=SalesDB;user=etl;password={FAKE_SQL_PASSWORD}"'
SAS = f'orders = pd.read_csv("https://stsalesdev.blob.core.windows.net/landing/o.csv?sv=2022-11-02&sp=r&sig={FAKE_SAS_SIGNATURE}")'
SAS_TOKEN = f'sas = "sv=2022-11-02&ss=b&srt=co&sp=rl&sig={FAKE_SAS_SIGNATURE}"'
DATABRICKS = f'DATABRICKS_TOKEN = "{FAKE_DATABRICKS_TOKEN}"'
DATABRICKS_SUFFIXED = f'token = "{FAKE_DATABRICKS_TOKEN}-2"'
STORAGE = (f'storage = "DefaultEndpointsProtocol=https;AccountName=stsalesdev;AccountKey={FAKE_STORAGE_KEY};'
           'EndpointSuffix=core.windows.net"')
QUOTED_PASSWORD = f'password = "{FAKE_SQL_PASSWORD}"'

SQL_KIND = "Connection string password"
SAS_KIND = "Azure SAS token signature"
DATABRICKS_KIND = "Databricks personal access token"


def types(findings) -> set[str]:
    return {f.type for f in findings}


# -- what detect-secrets finds by itself, and what kvlab's plugins add -----------------------------------


@pytest.mark.parametrize("line, kind", [
    (SQL, SQL_KIND), (ODBC_CALL, SQL_KIND), (JDBC, SQL_KIND),
    (SAS, SAS_KIND), (SAS_TOKEN, SAS_KIND),
    (DATABRICKS, DATABRICKS_KIND), (DATABRICKS_SUFFIXED, DATABRICKS_KIND),
], ids=["sql", "odbc-in-a-call", "jdbc", "sas-url", "sas-token", "databricks", "databricks-suffixed"])
def test_each_azure_format_is_found_by_kvlab_and_missed_by_detect_secrets_alone(line, kind):
    """The plugins exist because detect-secrets 1.5 misses these: if it learns them, this test says so."""
    assert leaks.scan_text(line, kvlab_plugins=False) == []
    found = leaks.scan_text(line)
    assert kind in types(found)
    assert all(f.line == 1 and f.file == "cell.py" for f in found)


@pytest.mark.parametrize("line, kind", [
    (STORAGE, "Azure Storage Account access key"),
    (QUOTED_PASSWORD, "Secret Keyword"),
    ('aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"', "AWS Access Key"),  # pragma: allowlist secret
], ids=["storage-key", "keyword", "aws"])
def test_detect_secrets_own_finds_stay_found(line, kind):
    assert types(leaks.scan_text(line, kvlab_plugins=False)) == {kind}
    assert types(leaks.scan_text(line)) == {kind}


@pytest.mark.parametrize("line", [
    'conn_str = f"Server=tcp:{server},1433;User ID=etl_user;Password={password};Encrypt=True;"',
    "conn_str = f\"Server=tcp:{server};Password={os.environ['SQL_PASSWORD']};\"",
    'conn_str = "Server=tcp:x;Password=<your-password>;"',
    'conn_str = "Server=tcp:x;Password=${SQL_PASSWORD};"',
    "conn = pymssql.connect(server, user, password=password)",
    'password = client.get_secret("sql-db-password").value',
    'storage_key = dbutils.secrets.get(scope="kv-scope", key="adls-storage-key")',
    'url = f"https://stsalesdev.blob.core.windows.net/raw?{sas_token}"',
    f'token = "{FAKE_DATABRICKS_TOKEN}"  # pragma: allowlist secret',
    f'conn_str = "Server=x;Password={FAKE_SQL_PASSWORD};"  # pragma: allowlist secret',
    '"connectionString": "Server=tcp:s;Database=d;User ID=u;Password=@{linkedService().pw};"',
], ids=["f-string", "environ", "placeholder", "dollar", "keyword-argument", "vault-read", "dbutils", "sas-variable",
        "pragma-token", "pragma-password", "adf-expression"])
def test_references_templates_and_allowlisted_lines_are_not_findings(line):
    assert leaks.scan_text(line) == []


# -- names, ids and roles of secrets are what the lessons teach: not findings -----------------------------


@pytest.mark.parametrize("line, by_detect_secrets", [
    ('SECRET_NAME = "sql-db-password"', True),
    ('password_name = "sql-db-password"', True),
    ('DB_SECRET = "sql-db-password"', True),
    ('STORAGE_SECRET = "adls-storage-key"', True),
    ('secret = client.get_secret("storage-account-key").value', False),
    ('client.get_secret("storage-account-key")', False),
    ('if r["operationName"] == "SecretGet" and r["secretName"] == "one-too-many":', True),
    ('secret_type = "Connection string password"', True),
    ('    "SecretGet": "Microsoft.KeyVault/vaults/secrets/getSecret/action",', True),
    ('OFFICER_SECRETS_ROLE = "Key Vault Secrets Officer"', True),
    ('secret_version = "558fb7dc4bf339971ff2ad4c3badd797"', True),
    ('PASSWORD_ENV = "SQL_PASSWORD"', True),
], ids=["SECRET_NAME", "password_name", "DB_SECRET", "STORAGE_SECRET", "get_secret-assigned", "get_secret",
        "audit-record", "secret_type", "rbac-action", "role", "version", "env-variable-name"])
def test_names_ids_and_roles_of_secrets_are_not_findings(line, by_detect_secrets):
    """A learner's code that does what the lessons teach must pass the pre-commit hook."""
    assert bool(leaks.scan_text(line, kvlab_plugins=False)) == by_detect_secrets
    assert leaks.scan_text(line) == []


@pytest.mark.parametrize("line, kind", [
    ('password = "Tr0ub4dor&3xK9!q"', "Secret Keyword"),  # pragma: allowlist secret
    ('if password == "Tr0ub4dor&3xK9!q":', "Secret Keyword"),  # pragma: allowlist secret
    ('SECRET = "correct-horse-battery-staple"', "Secret Keyword"),  # pragma: allowlist secret
    ('db_password = "hunter2hunter2"', "Secret Keyword"),  # pragma: allowlist secret
    ('api_key = "9f3c2b7a1e4d4c8b9a0f6e5d4c3b2a19"', "Secret Keyword"),  # pragma: allowlist secret
    ('token = "9f3c2b7a1e4d4c8b9a0f6e5d4c3b2a19"  # version 2', "Hex High Entropy String"),  # pragma: allowlist secret
    (f'secret_name = "{FAKE_DATABRICKS_TOKEN}"', DATABRICKS_KIND),
    (f'SECRET_NAME = "sql-db-password"; conn_str = "Server=x;Password={FAKE_SQL_PASSWORD};"', SQL_KIND),
], ids=["password", "comparison", "passphrase", "short", "hex-api-key", "hex-token", "token-in-a-name",
        "password-next-to-a-name"])
def test_real_looking_values_are_still_found(line, kind):
    """The name filters read the value and what it is given to; a secret's own shape still wins."""
    assert kind in types(leaks.scan_text(line))
    assert leaks.scan_text(line + "  # pragma: allowlist secret") == []


def test_version_ids_in_a_notebooks_output_are_not_findings_but_a_printed_key_is(tmp_path):
    path = leaks.write_notebook(tmp_path / "versions.ipynb", [("code", "print(versions)"), ("code", "print(keys)")])
    notebook = json.loads(path.read_text())
    version_ids = "['558fb7dc4bf339971ff2ad4c3badd797', '33f76ccaebe91bb9c92d436193500de0']"
    notebook["cells"][0]["outputs"] = [{"name": "stdout", "output_type": "stream",
                                        "text": [f"sql-db-password has 2 versions: {version_ids}\n"]}]
    notebook["cells"][1]["outputs"] = [{"name": "stdout", "output_type": "stream", "text": [f"keys: {version_ids}\n"]}]
    path.write_text(json.dumps(notebook))
    found = leaks.scan(path)
    assert [(f.cell, f.output, f.type) for f in found] == [(2, True, "Hex High Entropy String")] * 2


def test_kvlab_leaves_detect_secrets_own_settings_as_they_were(tmp_path):
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings, get_settings

    before = get_settings().json()
    assert leaks.scan_text(DATABRICKS)
    assert get_settings().json() == before
    sample = tmp_path / "sample.py"
    sample.write_text(f"{DATABRICKS}\n{QUOTED_PASSWORD}\n")
    with default_settings():
        alone = {s.type for s in scan_file(str(sample))}
    assert alone == {"Secret Keyword"}


# -- redaction -------------------------------------------------------------------------------------------


def test_redact_shows_at_most_four_characters_and_at_most_a_quarter():
    assert leaks.redact(FAKE_DATABRICKS_TOKEN) == "dapi…"
    assert leaks.redact("hunter2hunter2") == "hun…"  # 14 characters: a quarter is 3
    assert leaks.redact("hunter2hunter2!!") == "hunt…"
    assert leaks.redact("abcdefgh") == "ab…"
    assert leaks.redact("abc") == "…"
    assert leaks.redact("") == "…"


def test_a_finding_never_holds_the_secret():
    (finding,) = leaks.scan_text(DATABRICKS)
    for form in (repr(finding), str(finding), json.dumps(finding.as_dict())):
        assert FAKE_DATABRICKS_TOKEN not in form
    assert finding.secret == leaks.redact(FAKE_DATABRICKS_TOKEN) == FAKE_DATABRICKS_TOKEN[:4] + "…"
    assert "fingerprint" not in finding.as_dict()
    assert list(finding.as_dict()) == ["file", "cell", "line", "output", "type", "secret"]


# -- files, folders and notebooks ---------------------------------------------------------------------------


NOTEBOOK_CELLS = [
    ("markdown", "# Ingest"),
    ("code", f'server = "sql-sales-dev"\n{QUOTED_PASSWORD}'),
    ("code", 'storage_key = dbutils.secrets.get(scope="kv-scope", key="adls-storage-key")'),
    ("code", f"import requests\n\n\n{DATABRICKS}"),
]


def test_a_notebook_is_scanned_by_cell_where_detect_secrets_alone_sees_nothing(tmp_path):
    leaks.write_notebook(tmp_path / "ingest.ipynb", NOTEBOOK_CELLS)
    assert leaks.detect_secrets_only("ingest.ipynb", root=tmp_path) == []  # the quoted password hides in JSON
    found = leaks.scan("ingest.ipynb", root=tmp_path)
    assert [(f.file, f.cell, f.line, f.type, f.output) for f in found] == [
        ("ingest.ipynb", 2, 2, "Secret Keyword", False),
        ("ingest.ipynb", 4, 4, DATABRICKS_KIND, False),
    ]


def test_a_notebooks_outputs_are_scanned_too(tmp_path):
    path = leaks.write_notebook(tmp_path / "debug.ipynb", [("code", "print(conn_str)")])
    notebook = json.loads(path.read_text())
    notebook["cells"][0]["outputs"] = [{"name": "stdout", "output_type": "stream",
                                        "text": [f"Server=tcp:sql;User ID=etl;Password={FAKE_SQL_PASSWORD};\n"]}]
    path.write_text(json.dumps(notebook))
    (found,) = leaks.scan(path)
    assert (found.cell, found.output, found.type) == (1, True, SQL_KIND)
    assert "(output)" in leaks.table([found])


def test_a_broken_notebook_is_scanned_as_text(tmp_path):
    (tmp_path / "broken.ipynb").write_text(f'{{"cells": [ {DATABRICKS}\n')
    (found,) = leaks.scan(tmp_path / "broken.ipynb")
    assert (found.type, found.cell, found.line) == (DATABRICKS_KIND, None, 1)


def test_folders_are_walked_skipping_hidden_folders_virtualenvs_and_binary_files(tmp_path):
    (tmp_path / "src" / "etl").mkdir(parents=True)
    (tmp_path / "src" / "etl" / "load.py").write_text(f"import os\n{SAS}\n")
    (tmp_path / "config.json").write_text(json.dumps({"storage": STORAGE.split(" = ")[1].strip('"')}, indent=2))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "leftover").write_text(DATABRICKS)
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "venv" / "lib.py").write_text(DATABRICKS)
    (tmp_path / "image.png").write_bytes(b"\x89PNG\0\0" + FAKE_DATABRICKS_TOKEN.encode())
    found = leaks.scan(tmp_path)
    assert [(Path(f.file).relative_to(tmp_path).as_posix(), f.line, f.type) for f in found] == [
        ("config.json", 2, "Azure Storage Account access key"),
        ("src/etl/load.py", 2, SAS_KIND),
    ]
    relative = leaks.scan("src", root=tmp_path)
    assert [f.file for f in relative] == [os.path.join("src", "etl", "load.py")]


def test_bad_input_is_a_scan_error_naming_it(tmp_path):
    with pytest.raises(leaks.ScanError, match="no such file or folder: missing.py"):
        leaks.scan("missing.py", root=tmp_path)
    with pytest.raises(leaks.ScanError, match="nothing to scan"):
        leaks.scan()
    with pytest.raises(leaks.ScanError, match="not a Git repository"):
        leaks.scan_history(tmp_path)
    with pytest.raises(leaks.ScanError, match="no such folder"):
        leaks.scan_history(tmp_path / "nowhere")


# -- Git history --------------------------------------------------------------------------------------------


def leaky_repo() -> tuple[leaks.ThrowawayRepo, str, str]:
    """A repository where commit 2 adds a token to a notebook and commit 3 removes it."""
    repo = leaks.ThrowawayRepo("etl")
    (repo / "README.md").write_text("# etl\n")
    repo.commit_all("Add README")
    leaks.write_notebook(repo / "jobs.ipynb", [("markdown", "# Jobs"), ("code", f"import requests\n{DATABRICKS}")])
    added = repo.commit_all("Call the jobs API")
    leaks.write_notebook(repo / "jobs.ipynb", [("markdown", "# Jobs"), ("code", "import requests\nDATABRICKS_TOKEN = "
                                                                             'dbutils.secrets.get("kv", "token")')])
    removed = repo.commit_all("Read the token from the secret scope")
    return repo, added, removed


def test_history_reports_the_commit_that_introduced_a_secret_removed_later():
    repo, added, removed = leaky_repo()
    assert leaks.scan(repo) == []
    (found,) = leaks.scan_history(repo)
    assert (found.file, found.cell, found.line, found.type) == ("jobs.ipynb", 2, 2, DATABRICKS_KIND)
    assert found.commit == added
    assert found.in_head is False
    assert found.as_dict()["commit"] == added
    repo.cleanup()


def test_history_covers_every_branch_and_says_what_head_still_holds():
    repo, _, _ = leaky_repo()
    repo.git("checkout", "-q", "-b", "experiment")
    (repo / "settings.py").write_text(SQL + "\n")
    on_branch = repo.commit_all("Try the SQL source")
    repo.git("checkout", "-q", "main")
    (repo / "storage.py").write_text(STORAGE + "\n")
    on_main = repo.commit_all("Archive to storage")
    found = {f.type: f for f in leaks.scan_history(repo)}
    assert set(found) == {DATABRICKS_KIND, SQL_KIND, "Azure Storage Account access key"}
    assert (found[SQL_KIND].commit, found[SQL_KIND].in_head) == (on_branch, False)
    assert (found["Azure Storage Account access key"].commit, found["Azure Storage Account access key"].in_head) == (on_main, True)
    repo.cleanup()


def test_throwaway_repos_have_the_same_commit_ids_every_time_whatever_the_users_git_setup(tmp_path, monkeypatch):
    first, added, removed = leaky_repo()
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Someone Else\n\temail = else@example.com\n[commit]\n\tgpgsign = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Override")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    second, added_again, removed_again = leaky_repo()
    assert (added_again, removed_again) == (added, removed)
    assert second.git("log", "-1", "--format=%an <%ae> %ad", "--date=iso-strict") == \
        "Dana Data <dana@example.com> 2024-03-06T09:30:00+00:00"
    assert config.read_text().count("Someone Else") == 1  # untouched
    assert "kvlab-repo-" not in repr(second) and repr(second) == "<ThrowawayRepo 'etl': 3 commits>"
    first.cleanup()
    second.cleanup()


def test_filter_repo_purges_the_secret_from_every_commit():
    repo, added, _ = leaky_repo()
    rules = repo.path.parent / "replacements.txt"
    rules.write_text(f"{FAKE_DATABRICKS_TOKEN}==><REMOVED>\n")
    repo.git("filter-repo", "--force", "--replace-text", str(rules))
    assert leaks.scan_history(repo) == []
    assert added not in repo.git("rev-list", "--all").split()
    assert repo.git("grep", "-c", "<REMOVED>", *repo.git("rev-list", "--all").split()).count("jobs.ipynb") == 1
    repo.cleanup()


def test_a_failing_git_command_is_a_one_line_git_error():
    repo = leaks.ThrowawayRepo()
    with pytest.raises(leaks.GitError, match=r"^git show failed: .*") as raised:
        repo.git("show", "no-such-revision")
    assert "\n" not in str(raised.value)
    repo.cleanup()


def test_the_practice_repository_hides_one_leak_in_its_history_and_has_an_uncommitted_notebook():
    repo = leaks.practice_repo()
    (leak,) = leaks.scan_history(repo)
    assert leak.type == DATABRICKS_KIND and leak.in_head is False
    subjects = repo.git("log", "--reverse", "--format=%H %s").splitlines()
    assert len(subjects) == len(leaks.PRACTICE_HISTORY)
    assert subjects[2] == f"{leak.commit} Trigger the reporting job after the load"
    assert repo.git("status", "--porcelain") == "?? incoming/"
    cells = leaks.scan(leaks.INCOMING_NOTEBOOK, root=repo)
    assert [(f.cell, f.type) for f in cells] == [
        (2, SQL_KIND), (4, SAS_KIND), (6, "Azure Storage Account access key")]
    assert [f.type for f in leaks.detect_secrets_only(leaks.INCOMING_NOTEBOOK, root=repo)] == [
        "Azure Storage Account access key"]
    again = leaks.practice_repo()
    assert again.git("rev-parse", "HEAD") == repo.git("rev-parse", "HEAD")
    repo.cleanup()
    again.cleanup()


# -- the `kvlab scan` command ---------------------------------------------------------------------------------


def kvlab_scan(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    environment.pop("PRE_COMMIT", None)
    result = kvlab("scan", *args, env=environment, cwd=cwd, check=False)
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr
    return result


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "etl.py").write_text("\n".join([SQL, SAS, DATABRICKS, STORAGE]) + "\n")
    leaks.write_notebook(tmp_path / "ingest.ipynb", NOTEBOOK_CELLS)
    (tmp_path / "clean.py").write_text('password = client.get_secret("sql-db-password").value\n')
    return tmp_path


def test_scan_prints_json_exits_1_on_findings_and_never_prints_a_secret(project):
    result = kvlab_scan("etl.py", "ingest.ipynb", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("error: 6 possible secrets found (shown redacted)")
    assert len(result.stderr.strip().splitlines()) == 1
    found = json.loads(result.stdout)
    assert [(f["file"], f["cell"], f["line"], f["type"]) for f in found] == [
        ("etl.py", None, 1, SQL_KIND),
        ("etl.py", None, 2, SAS_KIND),
        ("etl.py", None, 3, DATABRICKS_KIND),
        ("etl.py", None, 4, "Azure Storage Account access key"),
        ("ingest.ipynb", 2, 2, "Secret Keyword"),
        ("ingest.ipynb", 4, 4, DATABRICKS_KIND),
    ]
    assert all(f["secret"].endswith("…") and len(f["secret"]) <= 5 for f in found)


def test_scan_reads_an_older_notebook_without_cell_ids_quietly(tmp_path):
    notebook = {"cells": [{"cell_type": "code", "source": DATABRICKS, "metadata": {}, "outputs": [],
                           "execution_count": None}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}
    (tmp_path / "old.ipynb").write_text(json.dumps(notebook))
    result = kvlab_scan("old.ipynb", cwd=tmp_path)
    assert [(f["cell"], f["type"]) for f in json.loads(result.stdout)] == [(1, DATABRICKS_KIND)]
    assert len(result.stderr.strip().splitlines()) == 1  # no nbformat warning about the missing ids


def test_scan_table_output(project):
    result = kvlab_scan(".", "-o", "table", cwd=project)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "cell", "line", "type", "secret"]
    assert any(line.startswith("ingest.ipynb") and " 4 " in line and DATABRICKS_KIND in line for line in lines)
    assert "dapi…" in result.stdout


def test_a_file_name_with_control_characters_is_shown_escaped(tmp_path):
    """A scanned repository names its own files: an escape sequence in one never reaches the terminal."""
    (tmp_path / "x\x1b]0;owned\x07.py").write_text(DATABRICKS + "\n")
    result = kvlab_scan(".", "-o", "table", cwd=tmp_path)
    assert result.returncode == 1 and "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert r"x\x1b]0;owned\x07.py" in result.stdout


def test_scan_exits_0_when_clean(project):
    result = kvlab_scan("clean.py", cwd=project)
    assert (result.returncode, json.loads(result.stdout), result.stderr) == (0, [], "")
    table = kvlab_scan("clean.py", "-o", "table", cwd=project)
    assert (table.returncode, table.stdout.strip()) == (0, "(no secrets found)")


def test_scan_history_reports_the_introducing_commit(tmp_path):
    repo, added, _ = leaky_repo()
    result = kvlab_scan("--history", ".", cwd=repo.path)
    assert result.returncode == 1
    (found,) = json.loads(result.stdout)
    assert found.pop("secret") == leaks.redact(FAKE_DATABRICKS_TOKEN)
    assert found == {"file": "jobs.ipynb", "cell": 2, "line": 2, "output": False, "type": DATABRICKS_KIND,
                     "commit": added, "in_head": False}
    assert kvlab_scan(".", cwd=repo.path).returncode == 0  # the working tree is clean
    table = kvlab_scan("--history", ".", "-o", "table", cwd=repo.path)
    assert added[:12] in table.stdout and added not in table.stdout
    repo.cleanup()


@pytest.mark.parametrize("args, words", [
    (("missing.py",), ("no such file or folder: missing.py",)),
    ((), ("nothing to scan",)),
    (("--history", "."), ("not a Git repository",)),
    (("--history", "nowhere"), ("no such folder",)),
], ids=["missing-file", "no-paths", "not-a-repo", "missing-repo"])
def test_scan_bad_input_is_a_one_line_error_with_status_2(tmp_path, args, words):
    result = kvlab_scan(*args, cwd=tmp_path)
    assert_one_line_error(result, *words)
    assert result.returncode == 2


def test_scan_help():
    result = kvlab("scan", "--help", check=False)
    assert result.returncode == 0
    assert "--history" in result.stdout and "-o, --output" in result.stdout
    assert "--baseline FILE" in result.stdout and "--no-baseline" in result.stdout
    assert "kvlab-scan" in result.stdout


def sas_url(start: str) -> str:
    """A SAS URL whose (fake) signature starts with ``start``, so that its redacted form tells it apart."""
    return f"https://stsalesdev.blob.core.windows.net/o.csv?sv=2022-11-02&sp=r&sig={start}{FAKE_SAS_SIGNATURE[4:]}"


def test_scan_lists_findings_in_one_order_whatever_the_hash_seed(tmp_path):
    """By file, cell, line, then left to right: two secrets of one type on a line used to follow set order,
    which changes with each process's hash seed."""
    (tmp_path / "urls.py").write_text(
        f'urls = ["{sas_url("ZZZZ")}", "{sas_url("AAAA")}", "{sas_url("MMMM")}"]\n'
        f'more = ["{sas_url("QQQQ")}", "{sas_url("CCCC")}"]; {DATABRICKS}; last = "{sas_url("BBBB")}"\n')
    expected = [(1, "ZZZZ…", SAS_KIND), (1, "AAAA…", SAS_KIND), (1, "MMMM…", SAS_KIND),
                (2, "QQQQ…", SAS_KIND), (2, "CCCC…", SAS_KIND), (2, "dapi…", DATABRICKS_KIND),
                (2, "BBBB…", SAS_KIND)]
    for seed in ("0", "1", "2", "3"):
        result = kvlab_scan("urls.py", cwd=tmp_path, env={"PYTHONHASHSEED": seed})
        assert [(f["line"], f["secret"], f["type"]) for f in json.loads(result.stdout)] == expected, seed


def test_scan_skips_lines_marked_as_deliberate_fakes_in_files_and_in_notebook_cells(tmp_path):
    (tmp_path / "etl.py").write_text(f"{SQL}  # pragma: allowlist secret\n"
                                     "# pragma: allowlist nextline secret\n"
                                     f"{DATABRICKS}\n"
                                     f"{SAS}\n")
    leaks.write_notebook(tmp_path / "ingest.ipynb", [
        ("markdown", "# Ingest"),
        ("code", f"{QUOTED_PASSWORD}  # pragma: allowlist secret\n{STORAGE}"),
        ("code", f"{DATABRICKS}  # pragma: allowlist secret\n# pragma: allowlist nextline secret"),
        ("code", DATABRICKS),  # the previous cell's nextline pragma ends with that cell
    ])
    result = kvlab_scan("etl.py", "ingest.ipynb", cwd=tmp_path)
    assert result.returncode == 1
    assert [(f["file"], f["cell"], f["line"], f["type"]) for f in json.loads(result.stdout)] == [
        ("etl.py", None, 4, SAS_KIND),
        ("ingest.ipynb", 2, 2, "Azure Storage Account access key"),
        ("ingest.ipynb", 4, 1, DATABRICKS_KIND),
    ]


def test_scan_leaves_out_what_a_detect_secrets_baseline_records(tmp_path):
    (tmp_path / "settings.py").write_text(f"{STORAGE}\n{QUOTED_PASSWORD}\n")
    made = subprocess.run([sys.executable, "-m", "detect_secrets", "scan", "settings.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=True)
    recorded = json.loads(made.stdout)["results"]["settings.py"]
    assert {r["type"] for r in recorded} == {"Azure Storage Account access key", "Secret Keyword"}
    (tmp_path / leaks.BASELINE).write_text(made.stdout)
    assert (kvlab_scan("settings.py", cwd=tmp_path).returncode, kvlab_scan(".", cwd=tmp_path).stdout.strip()) == \
        (0, "[]")  # the baseline itself (40-hex-digit hashes) is not scanned either

    (tmp_path / "settings.py").write_text(f"import os\n\n{STORAGE}\n{QUOTED_PASSWORD}\n{DATABRICKS}\n")
    result = kvlab_scan("settings.py", cwd=tmp_path)
    assert result.returncode == 1  # recorded secrets stay known where their lines moved; a new one is reported
    assert [(f["line"], f["type"]) for f in json.loads(result.stdout)] == [(5, DATABRICKS_KIND)]
    assert len(json.loads(kvlab_scan("settings.py", "--no-baseline", cwd=tmp_path).stdout)) == 3

    (tmp_path / leaks.BASELINE).rename(tmp_path / "reviewed.json")
    assert len(json.loads(kvlab_scan("settings.py", cwd=tmp_path).stdout)) == 3  # no default baseline any more
    explicit = kvlab_scan("settings.py", "--baseline", "reviewed.json", cwd=tmp_path)
    assert [f["type"] for f in json.loads(explicit.stdout)] == [DATABRICKS_KIND]


def test_a_baseline_applies_to_every_revision_in_a_history_scan():
    repo, added, _ = leaky_repo()
    assert len(leaks.scan_history(repo)) == 1
    digest = hashlib.sha1(FAKE_DATABRICKS_TOKEN.encode()).hexdigest()
    (repo / leaks.BASELINE).write_text(json.dumps({"version": "1.5.0", "results": {
        "jobs.ipynb": [{"type": DATABRICKS_KIND, "filename": "jobs.ipynb", "hashed_secret": digest}]}}))
    assert leaks.scan_history(repo, baseline=leaks.find_baseline(repo)) == []
    assert kvlab_scan("--history", ".", cwd=repo.path).returncode == 0
    repo.cleanup()


@pytest.mark.parametrize("args, content, words", [
    (("--baseline", "missing.json", "."), None, ("no such baseline file: missing.json",)),
    (("--baseline", "broken.json", "."), "{not json", ("not a detect-secrets baseline", "broken.json")),
    (("--baseline", "broken.json", "."), '{"results": []}', ("not a detect-secrets baseline", "broken.json")),
    (("--baseline", "broken.json", "--no-baseline", "."), "{}", ("--no-baseline",)),
], ids=["missing", "not-json", "no-results", "both-options"])
def test_scan_with_a_bad_baseline_is_a_one_line_error_with_status_2(tmp_path, args, content, words):
    if content is not None:
        (tmp_path / "broken.json").write_text(content)
    result = kvlab_scan(*args, cwd=tmp_path)
    assert_one_line_error(result, *words)
    assert result.returncode == 2


def test_a_large_scan_in_worker_processes_finds_what_one_process_finds(project, monkeypatch):
    alone = leaks.scan(project)
    monkeypatch.setattr(leaks, "_workers", lambda size: 2)
    assert leaks.scan(project) == alone and len(alone) == 6


def test_an_older_notebook_is_still_scanned_by_cell(tmp_path):
    notebook = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "markdown", "source": "# Jobs"},
        {"cell_type": "code", "input": f"import requests\n{DATABRICKS}", "outputs": [], "language": "python"}]}]}
    (tmp_path / "v3.ipynb").write_text(json.dumps(notebook))
    (found,) = leaks.scan(tmp_path / "v3.ipynb")
    assert (found.cell, found.line, found.type) == (2, 2, DATABRICKS_KIND)


def test_this_repository_holds_no_unmarked_secret():
    """kvlab's own tracked files: Key Vault names and ids stay quiet, and every planted fake is marked."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True) if shutil.which("git") else None
    if listed is None or listed.returncode != 0:
        pytest.skip("not a Git checkout")
    files = [name for name in listed.stdout.decode("utf-8").split("\0") if name and (ROOT / name).is_file()]
    found = leaks.scan(*files, root=ROOT, baseline=leaks.find_baseline(ROOT))
    assert [(f.file, f.cell, f.line, f.type, f.secret) for f in found] == []


# -- the pre-commit hook ----------------------------------------------------------------------------------------


def test_the_pre_commit_hook_definition_is_valid_and_runs_kvlab_scan():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(hooks, list) and [h["id"] for h in hooks] == ["kvlab-scan", "kvlab-adf-check"]
    assert all({"id", "name", "entry", "language"} <= set(h) for h in hooks)  # what pre-commit requires of a hook
    hook = hooks[0]
    assert hook["entry"] == "kvlab scan"
    assert hook["language"] == "python"
    assert hook["types"] == ["text"]  # pre-commit's `identify` tags .ipynb files as text too
    assert hook.get("pass_filenames", True) is True
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[hook["entry"].split()[0]] == "kvlab.cli:main"
