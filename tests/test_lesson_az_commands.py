"""The `az` lines a guided notebook shows run as shown against the emulator, in a terminal's shell.

Each line is taken from the notebook's text (fenced bash blocks, and code spans that start with `az ` and
pass options), in order, and run by bash in a shell prepared only by `kvlab env`, after the lesson's own
set-up cell has run against that emulator, as a learner following the text would. The first line, the
sign-in, is the workbook's own `az`; after it, `az` on PATH hands each command, nested `$(az ...)` included,
to the same CLI kept running in one process (tests/azure_cli_driver.py), since a new Python for each of a
lesson's twenty commands costs 1.5 s apiece.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kvlab.azcli import install

from shells import Shell

DRIVER = Path(__file__).with_name("azure_cli_driver.py")

# `az` for bash lines: sends its arguments to the driver's socket, prints what the CLI printed, exits as it did.
CLIENT = """#!{python} -S
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect({socket!r})
s.sendall(json.dumps({{"args": sys.argv[1:], "cwd": os.getcwd()}}).encode())
s.shutdown(socket.SHUT_WR)
answer = json.loads(b"".join(iter(lambda: s.recv(65536), b"")))
sys.stdout.write(answer["stdout"])
sys.stderr.write(answer["stderr"])
sys.exit(answer["code"])
"""


ROOT = Path(__file__).resolve().parents[1]


def az_lines(notebook: Path, program: str = "az") -> list[str]:
    """Every `az` (or ``program``'s) command in the notebook's markdown, in order (a continued line joined)."""
    found = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        for match in re.finditer(r"```bash\n(.*?)```|`(az [^`]+)`", cell.source, re.DOTALL):
            if match.group(1) is not None:
                found += [line for line in match.group(1).replace("\\\n", " ").splitlines()
                          if line.startswith(f"{program} ")]
            elif program == "az" and " --" in match.group(2):  # a command; `az login` or `az keyvault create` alone are names
                found.append(match.group(2))
    return found


@pytest.fixture(scope="module")
def terminal(tmp_path_factory):
    where = tmp_path_factory.mktemp("lesson-az")
    shell = Shell(where / "state")
    env = {**shell.env, "HOME": str(tmp_path_factory.mktemp("home")),
           "PATH": f"{Path(sys.executable).parent}:{shell.env['PATH']}"}  # as a workbook terminal has it
    signed_in = subprocess.run(["az", "login", "--identity", "-o", "none"], env=env, capture_output=True, text=True,
                               timeout=180)
    assert signed_in.returncode == 0, signed_in.stderr
    # from here on, `az` is the same CLI served from one process
    sock, client = where / "az.sock", where / "bin" / "az"
    driver = subprocess.Popen([str(install()), str(DRIVER), "--serve", str(sock)], env=env, stdout=subprocess.PIPE,
                              text=True)
    assert driver.stdout is not None and driver.stdout.readline().strip() == "ready"
    client.parent.mkdir()
    client.write_text(CLIENT.format(python=sys.executable, socket=str(sock)))
    client.chmod(0o755)
    yield shell, {**env, "PATH": f"{client.parent}:{env['PATH']}"}
    driver.kill()
    driver.wait()
    shell.kvlab("db", "stop")  # lessons 05 and 07 start their database
    shell.kvlab("emulator", "stop")


def run_lesson(terminal, number: str, where: Path | None = None,
               cells: str = "") -> list[tuple[str, subprocess.CompletedProcess]]:
    """The lesson's set-up cell (then ``cells``, code of the notebook's own the lines follow), then its az lines,
    in ``where`` (a project the set-up writes lands there)."""
    shell, env = terminal
    where = where or shell.state.parent
    setup = subprocess.run([sys.executable, "-c", f"import kvlab; lesson = kvlab.start_lesson({number!r}, demo=True)\n{cells}"],
                           env={**shell.base, "KVLAB_PORT": str(shell.port)}, capture_output=True, text=True,
                           timeout=180, cwd=where)
    assert setup.returncode == 0, setup.stderr
    [notebook] = (ROOT / "notebooks").glob(f"{number}-*.ipynb")
    lines = [line for line in az_lines(notebook) if "<" not in line]  # <placeholders>: a template for Azure
    assert lines, f"no az lines found in {notebook.name}"
    ran = []
    for line in lines:
        ran.append((line, subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True,
                                         timeout=180, cwd=where)))
    return ran


def test_lesson_02s_az_lines_run_as_shown(terminal):
    ran = run_lesson(terminal, "02")
    shown = [line for line, _ in ran]
    assert any(line.startswith("az keyvault create --name kv-sales-prod") for line in shown)
    assert any("az role assignment create --role \"Key Vault Secrets User\"" in line for line in shown)
    for line, done in ran:
        if line.startswith("az keyvault create --name kv-sales-"):  # the set-up made them: a taken name
            assert done.returncode != 0 and "already exists" in done.stderr, (line, done.stderr[-500:])
        else:
            assert done.returncode == 0, (line, done.stderr[-1500:])
    shell, env = terminal
    # what the lines did, seen from the vault and from the emulator's side
    shown = subprocess.run(["az", "keyvault", "secret", "show", "--vault-name", "kv-sales-dev", "--name",
                            "sql-db-password", "--query", "{tags: tags, expires: attributes.expires}"],
                           env=env, capture_output=True, text=True, timeout=120)
    stored = json.loads(shown.stdout)
    assert {k: stored["tags"][k] for k in ("env", "owner")} == {"env": "dev", "owner": "data-platform"}
    assert stored["expires"]
    protected = subprocess.run(["az", "keyvault", "show", "--name", "kv-sales-prod", "--query",
                                "properties.enablePurgeProtection"], env=env, capture_output=True, text=True, timeout=120)
    assert protected.stdout.strip() == "true", protected.stderr  # as the lesson's line for production asks
    roles = {(a["principalName"], a["roleDefinitionName"], a["scope"].split("/vaults/", 1)[1])
             for a in json.loads(shell.kvlab("role", "assignment", "list", "-o", "json").stdout)}
    assert ("learner", "Key Vault Secrets Officer", "kv-sales-dev") in roles
    assert ("id-adf-sales", "Key Vault Secrets User", "kv-sales-dev/secrets/sql-db-password") in roles


def test_lesson_03s_az_line_runs_as_shown(terminal):
    ran = run_lesson(terminal, "03")
    assert all(done.returncode == 0 for _, done in ran), [(command(line), done.returncode, done.stderr[-800:])
                                                          for line, done in ran if done.returncode]
    [(line, done)] = [(line, done) for line, done in ran if line.startswith("az identity show")]
    assert line.startswith("az identity show -g rg-orders-dev --name id-func-orders")
    shell, _ = terminal
    [client_id] = [i["clientId"] for i in json.loads(shell.kvlab("identity", "list", "-o", "json").stdout)
                   if i["name"] == "id-func-orders"]
    assert done.returncode == 0 and done.stdout.strip() == client_id, done.stderr[-1500:]


def test_lesson_04s_az_lines_run_as_shown(terminal):
    ran = run_lesson(terminal, "04")
    assert all(done.returncode == 0 for _, done in ran), [(command(line), done.returncode, done.stderr[-800:])
                                                          for line, done in ran if done.returncode]
    assert [line.split(" --")[0] for line, _ in ran] == [
        "az keyvault show -n kv-analytics-dev", "az account get-access-token", "az role assignment create"]
    shell, _ = terminal
    roles = {(a["principalName"], a["roleDefinitionName"], a["scope"].split("/vaults/", 1)[1])
             for a in json.loads(shell.kvlab("role", "assignment", "list", "-o", "json").stdout)}
    assert ("AzureDatabricks", "Key Vault Secrets User", "kv-analytics-dev") in roles


def command(line: str) -> str:
    """A line's command words, before its first option: `az role assignment create`."""
    words = line.split()
    return " ".join(words[:next((i for i, w in enumerate(words) if w.startswith("-")), len(words))])


def roles(shell) -> set[tuple[str, str, str]]:
    return {(a["principalName"], a["roleDefinitionName"], a["scope"].split("/vaults/", 1)[1])
            for a in json.loads(shell.kvlab("role", "assignment", "list", "-o", "json").stdout)}


# the cell of lesson 06 whose assignment the text's `az role assignment delete` removes
PLANTED = {"06": 'lesson.lab.assign_role("Key Vault Secrets Officer", "id-etl-nightly", "kv-ops-prod")'}


def test_the_later_lessons_az_lines_run_as_shown(terminal, tmp_path):
    """Lessons 05-07: the factory found by its name, a vault's assignments, a password stored from a file; and
    the lines left out for Azure, filled in, are commands the real CLI accepts."""
    shell, _ = terminal
    lines: dict[str, list[str]] = {}
    tried: list[tuple[str, int, str]] = []
    (tmp_path / "connection.txt").write_text("host=orders-db user=orders_app_b password=plainly-fake")  # pragma: allowlist secret
    for number in ("05", "06"):
        ran = run_lesson(terminal, number, tmp_path, cells=PLANTED.get(number, ""))
        assert all(done.returncode == 0 for _, done in ran), [(command(line), done.returncode, done.stderr[-800:])
                                                          for line, done in ran if done.returncode]
        lines[number] = [command(line) for line, _ in ran]
        tried += templates_tried(terminal[1], number, tmp_path)
        if number == "06":  # the debugging assignment the text deletes was planted by the cell before it
            assert ("id-etl-nightly", "Key Vault Secrets Officer", "kv-ops-prod") not in roles(shell)
    assert ("adf-sales-dev", "Key Vault Secrets User", "kv-sales-dev/secrets/pg-password") in roles(shell)
    (tmp_path / "password.txt").write_text("plainly-fake-shop-password")  # pragma: allowlist secret
    ran = run_lesson(terminal, "07", tmp_path)
    assert all(done.returncode == 0 for _, done in ran), [(command(line), done.returncode, done.stderr[-800:])
                                                          for line, done in ran if done.returncode]
    lines["07"] = [command(line) for line, _ in ran]
    tried += templates_tried(terminal[1], "07", tmp_path)
    assert_accepted(tried)
    assert lines == {"05": ["az role assignment create"],
                     "06": ["az keyvault secret set", "az role assignment list", "az role assignment delete"],
                     "07": ["az keyvault secret set", "az role assignment create"]}
    assert ("id-shop-ingest", "Key Vault Secrets User", "kv-shop-prod/secrets/shop-db-password") in roles(shell)


def test_the_lines_left_out_are_azures_and_the_text_says_so():
    """What stays a template names a <placeholder> and a service the emulator does not serve, and its
    paragraph says the line is for Azure."""
    left_out = {}
    for number in ("05", "06", "07"):
        [notebook] = (ROOT / "notebooks").glob(f"{number}-*.ipynb")
        left_out[number] = [command(line) for line in az_lines(notebook) if "<" in line]
    assert left_out == {
        "05": [],
        "06": ["az eventgrid event-subscription create", "az monitor diagnostic-settings create",
               "az webapp identity assign", "az webapp config appsettings set"],
        "07": ["az role assignment create"],  # Storage Blob Data Reader on a storage account
    }


# What each <placeholder> of the lines left out names, as the learner would fill it in on Azure; and the storage
# account's id, which lesson 07's line looks up with `az storage account show` (a Storage call, tried on its own).
GROUP_OF = "$(az keyvault show -n {vault} --query id -o tsv | cut -d/ -f1-5)"
FILLED = {
    "<vault id>": "$(az keyvault show -n kv-ops-prod --query id -o tsv)",
    "<workspace id>": GROUP_OF.format(vault="kv-ops-prod") + "/providers/Microsoft.OperationalInsights/workspaces/law-ops",
    "<the function's resource id>": GROUP_OF.format(vault="kv-ops-prod") + "/providers/Microsoft.Web/sites/func-ops/"
                                    "functions/rotate",
    "<id-report-api-dev's resource id>": "$(az identity list --query \"[?name=='id-report-api-dev'].id\" -o tsv)",
    "<id-report-api-dev's client id>": "$(az identity list --query \"[?name=='id-report-api-dev'].clientId\" -o tsv)",
    "<the factory's principal id>": "$(az ad sp list --display-name adf-shop-prod --query \"[0].id\" -o tsv)",
    "$(az storage account show -n stshopprod --query id -o tsv)":
        GROUP_OF.format(vault="kv-shop-prod") + "/providers/Microsoft.Storage/storageAccounts/stshopprod",
}
USAGE_ERRORS = ("usage error", "the following arguments are required", "unrecognized arguments", "invalid choice",
                "Usage:", "No such option", "Missing option", "unexpected extra argument")  # the last four: click's


def templates_tried(env: dict, number: str, where: Path) -> list[tuple[str, int, str]]:
    """The lesson's Azure-only lines, filled in, run by the real CLI: (command, exit code, what it said)."""
    [notebook] = (ROOT / "notebooks").glob(f"{number}-*.ipynb")
    templates = [line for line in az_lines(notebook) if "<" in line]
    lookups = [found for line in templates for found in re.findall(r"\$\((az storage [^)]*)\)", line)]
    tried = []
    for line in templates + lookups + az_lines(notebook, "databricks"):
        filled = re.sub(r"<[^>]+>|\$\(az storage [^)]*\)", lambda m: FILLED[m.group(0)], line)
        done = subprocess.run(["bash", "-c", filled], env=env, capture_output=True, text=True, timeout=180, cwd=where)
        tried.append((command(line), done.returncode, done.stdout + done.stderr))
    return tried


def assert_accepted(tried: list[tuple[str, int, str]]) -> None:
    """Each line got past the real CLI's own checks of its arguments and reached Resource Manager, which here says
    it does not serve that service: a learner who copies the line to Azure meets no usage error."""
    assert [name for name, _, _ in tried] == [
        "az eventgrid event-subscription create", "az monitor diagnostic-settings create", "az webapp identity assign",
        "az webapp config appsettings set", "az role assignment create", "az storage account show",
        "databricks secrets create-scope", "databricks secrets put-acl"]
    for name, code, said in tried:
        # the emulator's answer, or (the role's name looked up among its role definitions) the CLI's on it; the
        # workspace's, to a scope backed by a vault it knows by another URL, and to an ACL on that missing scope
        answered = any(answer in said for answer in (
            "this emulator", "Role 'Storage Blob Data Reader' doesn't exist", "KeyVault", "Scope shop does not exist"))
        assert code != 0 and answered, (name, code, said[-1500:])
        assert not any(usage in said for usage in USAGE_ERRORS), (name, said[-1500:])
