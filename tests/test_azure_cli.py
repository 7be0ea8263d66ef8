"""The real Azure CLI against the emulator, in a shell prepared only by `kvlab env`.

`az` is the workbook's own command (kvlab/azcli.py): the pinned CLI from PyPI,
installed on first use into an environment of its own, run unmodified. The shell
has nothing but `kvlab env`'s variables: the CLI reaches the emulator's names
through its HTTPS proxy with TLS verified, signs in with the managed-identity
endpoint, and finds Resource Manager through the cloud `kvlab env` registered in
its own AZURE_CONFIG_DIR. Every command below is one a lesson shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kvlab.azcli import install

from shells import Shell

AZ = Path(sys.executable).with_name("az")  # the workbook's `az` (kvlab.azcli:main)
DRIVER = Path(__file__).with_name("azure_cli_driver.py")
VALUES = ("fake-cli-first-value", "fake-cli-second-value")  # pragma: allowlist secret
GROUP, VAULT, IDENTITY = "rg-sales-dev", "kv-sales-dev", "id-adf-sales"


class Cli:
    """The Azure CLI in the prepared shell, with a HOME of its own (the learner's ~/.azure must stay untouched).

    `az.shell_command(...)` runs the `az` command a terminal runs; calling the object runs the same CLI in one
    long-lived process (tests/azure_cli_driver.py, the way the CLI's own scenario tests invoke it), since
    starting Python with the CLI costs 1.5 s a command.
    """

    def __init__(self, shell: Shell, home: Path, config_dir: str | None = None):
        self.shell = shell
        self.env = {**shell.env, "HOME": str(home), "USERPROFILE": str(home)}
        if config_dir is not None:
            self.env["AZURE_CONFIG_DIR"] = config_dir
        self._driver: subprocess.Popen | None = None

    def shell_command(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(AZ), *args, "--only-show-errors"], env=self.env, capture_output=True, text=True,
                              timeout=180)

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        if self._driver is None:
            self._driver = subprocess.Popen([str(install()), str(DRIVER)], env=self.env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, text=True)
        assert self._driver.stdin is not None and self._driver.stdout is not None
        self._driver.stdin.write(json.dumps([*args, "--only-show-errors"]) + "\n")
        self._driver.stdin.flush()
        answer = json.loads(self._driver.stdout.readline())
        done = subprocess.CompletedProcess(["az", *args], answer["code"], answer["stdout"], answer["stderr"])
        if ok:
            assert done.returncode == 0, f"az {' '.join(args)}: {done.stderr[-2000:]}"
        return done

    def close(self) -> None:
        if self._driver is not None:
            self._driver.stdin.close()
            self._driver.wait(timeout=30)

    def json(self, *args: str):
        return json.loads(self(*args, "-o", "json").stdout)

    def tsv(self, *args: str) -> str:
        return self(*args, "-o", "tsv").stdout.strip()


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    running = Shell(tmp_path_factory.mktemp("azure-cli") / "state")
    yield running
    running.kvlab("emulator", "stop")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def az(shell, home):
    cli = Cli(shell, home)
    signed_in = cli.shell_command("login", "--identity", "-o", "json")  # the learner (no --client-id), as typed
    assert signed_in.returncode == 0, signed_in.stderr
    cli.login = json.loads(signed_in.stdout)
    yield cli
    cli.close()


@pytest.fixture(scope="module")
def lesson02(az):
    """Lesson 02's commands, in order: a group, an RBAC vault, a refused write, the role, the write."""
    steps = {"group": az.json("group", "create", "--name", GROUP, "--location", "westeurope")}
    steps["vault"] = az.json("keyvault", "create", "--name", VAULT, "--resource-group", GROUP,
                             "--location", "westeurope", "--enable-rbac-authorization", "true")
    steps["refused"] = az("keyvault", "secret", "set", "--vault-name", VAULT, "--name", "sql-db-password",
                          "--value", VALUES[0], ok=False)
    me = az.tsv("ad", "signed-in-user", "show", "--query", "id")
    steps["me"] = me
    steps["role"] = az.json("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee", me,
                            "--scope", az.tsv("keyvault", "show", "--name", VAULT, "--query", "id"))
    steps["set"] = az.json("keyvault", "secret", "set", "--vault-name", VAULT, "--name", "sql-db-password",
                           "--value", VALUES[0])
    return steps


def test_kvlab_env_makes_the_emulator_the_clis_cloud_and_leaves_azure_as_it_is(az, shell, home):
    active = az.json("cloud", "show")
    assert active["name"] == "kvlab" and active["isActive"] is True
    assert active["endpoints"]["resourceManager"] == f"https://management.kvlab.localhost:{shell.port}/"
    assert active["suffixes"]["keyvaultDns"] == f".localhost:{shell.port}"
    azure = az.json("cloud", "show", "--name", "AzureCloud")
    assert azure["endpoints"]["resourceManager"] == "https://management.azure.com/"
    assert azure["suffixes"]["keyvaultDns"] == ".vault.azure.net"
    assert Path(shell.env["AZURE_CONFIG_DIR"]).is_relative_to(shell.state)
    assert not (home / ".azure").exists()  # the learner's own profile is never read or written


def test_az_login_with_the_managed_identity_signs_in_to_the_emulators_subscription(az, shell):
    vault = json.loads(shell.kvlab("vault", "create", "--name", "kv-made-by-kvlab").stdout)
    subscription = vault["id"].split("/")[2]
    [account] = az.login
    assert account["id"] == subscription and account["isDefault"] is True and account["state"] == "Enabled"
    assert account["user"]["type"] == "servicePrincipal"  # a managed-identity sign-in, as on an Azure VM
    # the vault the kvlab CLI made is a resource Resource Manager knows, in the default group
    shown = az.json("keyvault", "show", "--name", "kv-made-by-kvlab")
    assert shown["id"] == vault["id"] and shown["resourceGroup"] == "kvlab"


def test_a_vault_created_with_az_is_the_data_planes_vault_and_grants_its_creator_nothing(lesson02, shell):
    vault = lesson02["vault"]
    assert vault["resourceGroup"] == GROUP and vault["location"] == "westeurope"
    assert vault["properties"]["enableRbacAuthorization"] is True
    assert vault["properties"]["vaultUri"] == f"https://{VAULT}.localhost:{shell.port}/"
    assert VAULT in {v["name"] for v in json.loads(shell.kvlab("vault", "list").stdout)}
    refused = lesson02["refused"]  # the lesson 02 stumble: Owner of the subscription, no data role
    assert refused.returncode != 0
    assert "(Forbidden)" in refused.stderr and "setSecret/action" in refused.stderr
    assert f"Vault: {VAULT};location=westeurope" in refused.stderr  # where Resource Manager put it
    assert lesson02["role"]["principalId"] == lesson02["me"] and lesson02["role"]["principalType"] == "User"
    assert lesson02["set"]["id"].startswith(f"https://{VAULT}.localhost:{shell.port}/secrets/sql-db-password/")
    assert VALUES[0] not in refused.stdout + refused.stderr


def test_every_secret_command_of_the_cli(az, lesson02, tmp_path):
    vault = ("--vault-name", VAULT)
    az("keyvault", "secret", "set", *vault, "--name", "report-key", "--value", VALUES[0], "-o", "none")
    az("keyvault", "secret", "set", *vault, "--name", "report-key", "--value", VALUES[1], "-o", "none",
       "--content-type", "text/plain", "--tags", "owner=reports")
    shown = az.json("keyvault", "secret", "show", *vault, "--name", "report-key")
    latest = shown["value"] == VALUES[1]  # compared apart, so a failure never prints a value
    assert latest and shown["tags"]["owner"] == "reports" and shown["contentType"] == "text/plain"
    assert sorted(az.json("keyvault", "secret", "list", *vault, "--query", "[].name")) == [
        "report-key", "sql-db-password"]
    assert len(az.json("keyvault", "secret", "list-versions", *vault, "--name", "report-key")) == 2
    backup = tmp_path / "report-key.bak"
    az("keyvault", "secret", "backup", *vault, "--name", "report-key", "--file", str(backup))
    assert backup.stat().st_size > 0 and VALUES[1].encode() not in backup.read_bytes()
    az("keyvault", "secret", "delete", *vault, "--name", "report-key", "-o", "none")
    assert az.json("keyvault", "secret", "list-deleted", *vault, "--query", "[].name") == ["report-key"]
    az("keyvault", "secret", "recover", *vault, "--name", "report-key", "-o", "none")
    recovered = az.tsv("keyvault", "secret", "show", *vault, "--name", "report-key", "--query", "value") == VALUES[1]
    assert recovered
    az("keyvault", "secret", "delete", *vault, "--name", "report-key", "-o", "none")
    az("keyvault", "secret", "purge", *vault, "--name", "report-key")
    gone = az("keyvault", "secret", "show", *vault, "--name", "report-key", ok=False)
    assert gone.returncode != 0 and "SecretNotFound" in gone.stderr
    az("keyvault", "secret", "restore", *vault, "--file", str(backup), "-o", "none")
    versions = az.json("keyvault", "secret", "list-versions", *vault, "--name", "report-key")
    assert len(versions) == 2
    restored = {az.tsv("keyvault", "secret", "show", "--id", v["id"], "--query", "value") for v in versions}
    assert restored == set(VALUES)


def test_an_identity_holds_exactly_the_role_it_was_given_and_no_management_right(az, lesson02, home, shell, request):
    made = az.json("identity", "create", "--name", IDENTITY, "--resource-group", GROUP)
    principal = az.tsv("identity", "show", "-g", GROUP, "-n", IDENTITY, "--query", "principalId")
    assert principal == made["principalId"]
    scope = az.tsv("keyvault", "show", "-n", VAULT, "--query", "id") + "/secrets/sql-db-password"
    role = az.json("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee-object-id",
                   principal, "--assignee-principal-type", "ServicePrincipal", "--scope", scope)
    assert role["scope"] == scope and role["principalType"] == "ServicePrincipal"
    listed = az.json("role", "assignment", "list", "--scope", scope.rsplit("/secrets/", 1)[0],
                     "--include-inherited", "--query", "[].{p:principalId,r:roleDefinitionName}")
    assert {"p": principal, "r": "Key Vault Secrets User"} not in listed  # secret scope: below the vault's
    assert {"p": lesson02["me"], "r": "Key Vault Secrets Officer"} in listed

    # the identity's own session: its own configuration folder, signed in with its client id
    app_config = shell.state / "azure-cli-app"
    app_config.mkdir()
    for name in ("clouds.config", "config"):
        shutil.copy(Path(shell.env["AZURE_CONFIG_DIR"]) / name, app_config / name)
    app = Cli(shell, home, str(app_config))
    app("login", "--identity", "--client-id", made["clientId"], "-o", "none")
    request.addfinalizer(app.close)
    read = app.tsv("keyvault", "secret", "show", "--vault-name", VAULT, "--name", "sql-db-password",
                   "--query", "value") == VALUES[0]
    assert read
    write = app("keyvault", "secret", "set", "--vault-name", VAULT, "--name", "sql-db-password",
                "--value", VALUES[1], ok=False)
    assert write.returncode != 0 and "(Forbidden)" in write.stderr and "setSecret/action" in write.stderr
    create = app("keyvault", "create", "--name", "kv-from-the-app", "--resource-group", GROUP, "--location",
                 "westeurope", ok=False)
    assert create.returncode != 0 and "AuthorizationFailed" in create.stderr

    az("role", "assignment", "delete", "--ids", role["id"])
    after = app("keyvault", "secret", "show", "--vault-name", VAULT, "--name", "sql-db-password", ok=False)
    assert after.returncode != 0 and "getSecret/action" in after.stderr


def test_management_writes_are_in_the_activity_log_with_who_made_them_and_no_value(az, lesson02):
    events = az.json("monitor", "activity-log", "list", "--resource-group", GROUP, "--offset", "1h")
    operations = [(e["operationName"]["value"], e["status"]["value"], e["caller"]) for e in events]
    assert ("Microsoft.KeyVault/vaults/write", "Succeeded", "learner@kvlab.local") in operations
    assert ("Microsoft.Authorization/roleAssignments/write", "Succeeded", "learner@kvlab.local") in operations
    assert not any(value in json.dumps(events) for value in VALUES)


def test_resource_manager_refuses_as_azure_does(az, lesson02):
    taken = az("keyvault", "create", "--name", VAULT, "--resource-group", "kvlab", "--location", "westeurope",
               ok=False)
    assert taken.returncode != 0 and "VaultAlreadyExists" in taken.stderr
    missing = az("keyvault", "show", "--name", VAULT, "--resource-group", "kvlab", ok=False)
    assert missing.returncode != 0 and "ResourceNotFound" in missing.stderr
    no_group = az("identity", "create", "--name", "id-nowhere", "--resource-group", "rg-nowhere", "--location",
                  "westeurope", ok=False)
    assert no_group.returncode != 0 and "ResourceGroupNotFound" in no_group.stderr


def test_deleting_the_group_deletes_its_vault_from_the_data_plane(az, lesson02, shell):
    az("group", "create", "--name", "rg-short-lived", "--location", "westeurope", "-o", "none")
    az("keyvault", "create", "--name", "kv-short-lived", "--resource-group", "rg-short-lived",
       "--enable-rbac-authorization", "true", "-o", "none")
    az("group", "delete", "--name", "rg-short-lived", "--yes")
    assert "kv-short-lived" not in {v["name"] for v in json.loads(shell.kvlab("vault", "list").stdout)}
    assert "rg-short-lived" not in az.json("group", "list", "--query", "[].name")
    [kept] = az.json("keyvault", "list-deleted", "--query", "[?name=='kv-short-lived'].properties.vaultId")
    assert "/resourceGroups/rg-short-lived/" in kept  # soft-deleted with its group, as Azure does
    az("keyvault", "purge", "--name", "kv-short-lived")


def test_a_deleted_vault_stays_recoverable_keeps_its_name_and_loses_its_role_assignments(az, lesson02, shell):
    """Soft delete, always on: the vault leaves the list and the data plane, `list-deleted` shows it until its
    scheduled purge date, its name cannot be reused, `recover` brings it back with its secrets but without
    the role assignments Azure deleted with it, and `purge` frees the name."""
    name = "kv-sales-undo"
    az("keyvault", "create", "--name", name, "--resource-group", GROUP, "--location", "westeurope",
       "--enable-rbac-authorization", "true", "--tags", "env=dev", "-o", "none")
    vault_id = az.tsv("keyvault", "show", "--name", name, "--query", "id")
    az("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee", lesson02["me"],
       "--scope", vault_id, "-o", "none")
    az("keyvault", "secret", "set", "--vault-name", name, "--name", "kept", "--value", VALUES[1], "-o", "none")

    az("keyvault", "delete", "--name", name)
    assert name not in az.json("keyvault", "list", "--query", "[].name")
    assert name not in {v["name"] for v in json.loads(shell.kvlab("vault", "list").stdout)}
    [deleted] = az.json("keyvault", "list-deleted", "--query", f"[?name=='{name}']")
    assert deleted["properties"]["vaultId"].lower() == vault_id.lower()
    assert deleted["properties"]["tags"] == {"env": "dev"} and deleted["properties"]["location"] == "westeurope"
    kept_for = (datetime.fromisoformat(deleted["properties"]["scheduledPurgeDate"])
                - datetime.fromisoformat(deleted["properties"]["deletionDate"]))
    assert kept_for == timedelta(days=90)  # the vault's soft-delete retention
    shown = az.json("keyvault", "show-deleted", "--name", name, "--location", "westeurope")
    assert shown["name"] == name
    gone = az("keyvault", "secret", "show", "--vault-name", name, "--name", "kept", ok=False)
    assert gone.returncode != 0 and VALUES[1] not in gone.stdout + gone.stderr

    again = az("keyvault", "create", "--name", name, "--resource-group", GROUP, "--location", "westeurope", ok=False)
    assert again.returncode != 0 and "(ConflictError) A vault with the same name already exists in deleted state" \
        in again.stderr

    az("keyvault", "recover", "--name", name)
    assert az.tsv("keyvault", "show", "--name", name, "--query", "id").lower() == vault_id.lower()
    assert az.json("role", "assignment", "list", "--scope", vault_id) == []  # deleted with the vault, not restored
    refused = az("keyvault", "secret", "show", "--vault-name", name, "--name", "kept", ok=False)
    assert refused.returncode != 0 and "ForbiddenByRbac" in refused.stderr
    az("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", lesson02["me"],
       "--scope", vault_id, "-o", "none")
    assert az.tsv("keyvault", "secret", "show", "--vault-name", name, "--name", "kept", "--query", "value") == VALUES[1]

    az("keyvault", "delete", "--name", name)
    az("keyvault", "purge", "--name", name)
    assert name not in az.json("keyvault", "list-deleted", "--query", "[].name")
    az("keyvault", "create", "--name", name, "--resource-group", GROUP, "--location", "westeurope", "-o", "none")
    az("keyvault", "delete", "--name", name)
    az("keyvault", "purge", "--name", name)


def test_a_purge_protected_deleted_vault_waits_out_its_retention(az, lesson02, shell):
    name = "kv-sales-keep"
    az("keyvault", "create", "--name", name, "--resource-group", GROUP, "--location", "westeurope",
       "--enable-rbac-authorization", "true", "--enable-purge-protection", "true", "--retention-days", "7",
       "-o", "none")
    az("keyvault", "delete", "--name", name)
    refused = az("keyvault", "purge", "--name", name, ok=False)
    assert refused.returncode != 0 and "(MethodNotAllowed) Operation 'DeletedVaultPurge' is not allowed." \
        in refused.stderr
    assert name in az.json("keyvault", "list-deleted", "--query", "[].name")
    shell.kvlab("clock", "advance", "--days", "8")  # past its 7 days of retention: purged, the name free again
    try:
        assert name not in az.json("keyvault", "list-deleted", "--query", "[].name")
        az("keyvault", "create", "--name", name, "--resource-group", GROUP, "--location", "westeurope", "-o", "none")
        az("keyvault", "delete", "--name", name)
    finally:
        shell.kvlab("clock", "reset")


def test_a_lesson_starts_over_after_the_learner_deleted_its_vault_with_az(az, shell):
    def start() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "import kvlab; kvlab.start_lesson('00', demo=True)"],
                              env={**shell.base, "KVLAB_PORT": str(shell.port)}, capture_output=True, text=True,
                              timeout=180)

    assert start().returncode == 0
    az("keyvault", "delete", "--name", "kv-start")  # soft-deleted: its name stays taken
    again = start()  # the set-up purges it and makes the lesson's vault afresh
    assert again.returncode == 0, again.stderr
    assert "kv-start" in {v["name"] for v in json.loads(shell.kvlab("vault", "list").stdout)}
    assert "kv-start" not in az.json("keyvault", "list-deleted", "--query", "[].name")


def test_plain_az_login_says_in_one_line_how_to_sign_in_here(az):
    done = az.shell_command("login")  # the browser / device-code sign-in: the emulator has no sign-in page
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "az login --identity" in done.stderr
    assert az.tsv("account", "show", "--query", "state") == "Enabled"  # the session is untouched


def test_an_event_grid_subscription_made_with_az_delivers_the_vaults_events_to_a_webhook(az, lesson02, shell):
    """`az eventgrid event-subscription create` on a vault: Event Grid's handshake with the webhook, then the
    vault's new versions delivered to it; the same subscription `kvlab events subscription list` shows."""
    from kvlab.webhook import Webhook

    vault_id = az.tsv("keyvault", "show", "--name", VAULT, "--query", "id")
    with Webhook(lambda event: None) as hook:
        made = az.json("eventgrid", "event-subscription", "create", "--name", "new-versions", "--source-resource-id",
                       vault_id, "--endpoint", hook.url, "--included-event-types",
                       "Microsoft.KeyVault.SecretNewVersionCreated")
        assert made["provisioningState"] == "Succeeded" and made["topic"].lower() == vault_id.lower()
        listed = json.loads(shell.kvlab("events", "subscription", "list", "-o", "json").stdout)
        assert [(s["name"], s["vault"], s["endpoint"]) for s in listed] == [("new-versions", VAULT, hook.url)]
        az("keyvault", "secret", "set", "--vault-name", VAULT, "--name", "evented", "--value", VALUES[1])
        [event] = hook.wait(1, timeout=20)
        assert (event.event_type, event.subject) == ("Microsoft.KeyVault.SecretNewVersionCreated", "evented")
        assert VALUES[1] not in json.dumps(event.data)  # names and versions, never a value
        shown = az.json("eventgrid", "event-subscription", "show", "--name", "new-versions", "--source-resource-id",
                        vault_id)
        assert shown["filter"]["includedEventTypes"] == ["Microsoft.KeyVault.SecretNewVersionCreated"]
        assert shown["destination"]["endpointType"] == "WebHook"
        assert shown["destination"]["endpointBaseUrl"] == hook.url
        assert [s["name"] for s in az.json("eventgrid", "event-subscription", "list", "--source-resource-id",
                                           vault_id)] == ["new-versions"]
        # what the emulator does not deliver to is refused in one line, as a 400
        function = az("eventgrid", "event-subscription", "create", "--name", "to-a-function", "--source-resource-id",
                      vault_id, "--endpoint-type", "azurefunction", "--endpoint", f"{vault_id}/functions/f", ok=False)
        assert function.returncode != 0 and "webhook on this machine only" in function.stderr
        az("eventgrid", "event-subscription", "delete", "--name", "new-versions", "--source-resource-id", vault_id)
    assert json.loads(shell.kvlab("events", "subscription", "list", "-o", "json").stdout) == []


def test_the_workbooks_az_runs_in_a_connected_kernels_environment(az, shell):
    """After `kvlab.connect()`, requests has its certificates as a directory (kvlab.trust), which the Azure CLI
    refuses ("REQUESTS_CA_BUNDLE ... invalid file path"): the workbook's `az` gives it the bundle file, whose
    certificates are the same, so `!az ...` in a notebook works as in the terminal."""
    from kvlab.trust import write_directory

    directory = write_directory([Path(shell.env["SSL_CERT_FILE"]).read_text()], shell.state)
    done = subprocess.run([str(AZ), "group", "list", "-o", "json", "--only-show-errors"], capture_output=True,
                          text=True, timeout=180, env={**az.env, "REQUESTS_CA_BUNDLE": str(directory)})
    assert done.returncode == 0, done.stderr[-800:]
    assert "kvlab" in {group["name"] for group in json.loads(done.stdout)}
