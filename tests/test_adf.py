"""Data Factory linked services: the commit check on a corpus, resolution as the factory, a real database.

The corpus is written from here (JSON has no comments for the allowlist pragma);
every credential in it is an obvious fake. Resolution goes through the emulator's
token, RBAC and audit path as the factory's managed identity; the database is a
real PostgreSQL (`kvlab db`).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from kvlab import adf, db

from runners import kvlab as run_kvlab

ROOT = Path(__file__).resolve().parents[1]
FAKE = "not-a-real-password-1"  # pragma: allowlist secret
FAKE_KEY = "bm90LWEtcmVhbC1hY2NvdW50LWtleQ=="  # pragma: allowlist secret


def git_shape(name: str, kind: str, type_properties: dict, **properties) -> dict:
    """A linked service as ADF's Git integration writes it (linkedService/<name>.json)."""
    return {"name": name, "type": "Microsoft.DataFactory/factories/linkedservices",
            "properties": {"type": kind, "typeProperties": type_properties, **properties}}


def flat(name: str, kind: str, type_properties: dict, **properties) -> dict:
    """The reference article's flattened form."""
    return {"name": name, "type": kind, "typeProperties": type_properties, **properties}


def kv_ref(secret: str, store: str = "LS_KeyVault", **extra) -> dict:
    return {"type": "AzureKeyVaultSecret", "store": {"referenceName": store, "type": "LinkedServiceReference"},
            "secretName": secret, **extra}


KEY_VAULT = git_shape("LS_KeyVault", "AzureKeyVault", {"baseUrl": "https://kv-sales-dev.vault.azure.net/"})

# (file name, linked service, [(rule, field)] a reviewer must flag)
UNSAFE = [
    ("secure-string", git_shape("LS_Sql_SecureString", "AzureSqlDatabase", {
        "server": "s.database.windows.net", "database": "d", "userName": "u",
        "password": {"type": "SecureString", "value": FAKE}}),
     [("secure-string-value", "typeProperties.password")]),
    ("connection-string-password", git_shape("LS_Sql_ConnectionString", "AzureSqlDatabase", {
        "connectionString": f"Server=tcp:s.database.windows.net,1433;Database=d;User ID=u;Password={FAKE};"}),
     [("connection-string-credential", "typeProperties.connectionString")]),
    ("connection-string-pwd", flat("LS_Pg_Pwd", "AzurePostgreSql", {
        "connectionString": f"host=pg.example.com;port=5432;database=d;uid=u;pwd={FAKE}"}),
     [("connection-string-credential", "typeProperties.connectionString")]),
    ("storage-account-key", git_shape("LS_Blob_Key", "AzureBlobStorage", {
        "connectionString": f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={FAKE_KEY};"}),
     [("connection-string-credential", "typeProperties.connectionString")]),
    ("storage-sas-in-connection-string", git_shape("LS_Blob_Sas", "AzureBlobStorage", {
        "connectionString": "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b"
                            "&sig=bm90LWEtcmVhbC1zaWduYXR1cmU%3D"}),  # pragma: allowlist secret
     [("connection-string-credential", "typeProperties.connectionString")]),
    ("sas-uri", git_shape("LS_Blob_SasUri", "AzureBlobStorage", {
        "sasUri": {"type": "SecureString", "value": "@{linkedService().sasUri}"},
        "serviceEndpoint": "https://a.blob.core.windows.net/c?sv=2022-11-02&sig=bm90LWEtcmVhbA%3D%3D"}),  # pragma: allowlist secret
     [("sas-signature", "typeProperties.serviceEndpoint")]),
    ("inline-account-key", git_shape("LS_Adls_Key", "AzureBlobFS", {
        "url": "https://a.dfs.core.windows.net", "accountKey": FAKE_KEY}),
     [("inline-secret", "typeProperties.accountKey")]),
    ("inline-sp-key", git_shape("LS_Adls_Sp", "AzureBlobFS", {
        "url": "https://a.dfs.core.windows.net", "servicePrincipalId": str(uuid.UUID(int=7)),
        "servicePrincipalKey": FAKE, "tenant": "contoso.onmicrosoft.com"}),
     [("inline-secret", "typeProperties.servicePrincipalKey")]),
    ("inline-sas-token", git_shape("LS_Blob_SasToken", "AzureBlobStorage", {
        "sasUri": "https://a.blob.core.windows.net/c", "sasToken": "sv=2022-11-02&sr=c&sp=rl&sig=bm90LXJlYWw%3D"}),  # pragma: allowlist secret
     [("inline-secret", "typeProperties.sasToken")]),
    ("inline-password", git_shape("LS_Pg_Password", "AzurePostgreSql", {
        "server": "pg.example.com", "port": 5432, "database": "d", "username": "u", "password": FAKE}),
     [("inline-secret", "typeProperties.password")]),
    ("parameter-default", git_shape("LS_Sql_Param", "AzureSqlDatabase", {
        "server": "s", "database": "d", "userName": "u",
        "password": {"type": "SecureString", "value": "@linkedService().password"}},
        parameters={"password": {"type": "String", "defaultValue": FAKE}}),
     [("inline-secret", "parameters.password.defaultValue")]),
    ("missing-key-vault", git_shape("LS_Sql_MissingVault", "AzureSqlDatabase", {
        "server": "s", "database": "d", "userName": "u", "password": kv_ref("sql-db-password", "LS_OtherVault")}),
     [("unknown-key-vault", "typeProperties.password")]),
    ("store-not-a-vault", git_shape("LS_Sql_WrongStore", "AzureSqlDatabase", {
        "server": "s", "database": "d", "userName": "u",
        "password": kv_ref("sql-db-password", "LS_Adls_ManagedIdentity")}),
     [("unknown-key-vault", "typeProperties.password")]),
    ("encrypted-credential", git_shape("LS_SqlServer_Encrypted", "SqlServer", {
        "connectionString": "Data Source=onprem;Initial Catalog=d;Integrated Security=False;User ID=u;",
        "encryptedCredential": "ew0KICAiVmVyc2lvbiI6ICIyMDE3LTExLTMwIiwNCiAgIlByb3RlY3Rpb25Nb2RlIjogIktleSINCn0="}),  # pragma: allowlist secret
     [("encrypted-credential", "typeProperties.encryptedCredential")]),
]

SAFE = [
    ("key-vault", KEY_VAULT),
    ("article", flat("LS_AzureSQL_Production", "AzureSqlDatabase", {
        "server": "yourserver.database.windows.net", "database": "SalesDB", "encrypt": True,
        "authenticationType": "SQL", "userName": "pipeline_user", "password": kv_ref("sql-db-password")})),
    ("pinned-version", git_shape("LS_Pg_Pinned", "AzurePostgreSql", {
        "server": "pg.example.com", "port": 5432, "database": "d", "username": "u",
        "password": kv_ref("pg-password", secretVersion="0123456789abcdef0123456789abcdef")})),
    ("whole-connection-string-in-vault", git_shape("LS_Sql_CsInVault", "AzureSqlDatabase", {
        "connectionString": kv_ref("sql-connection-string")})),
    ("managed-identity", git_shape("LS_Adls_ManagedIdentity", "AzureBlobFS", {
        "url": "https://a.dfs.core.windows.net"})),
    ("system-assigned-identity", git_shape("LS_Sql_Msi", "AzureSqlDatabase", {
        "server": "s.database.windows.net", "database": "d", "authenticationType": "SystemAssignedManagedIdentity"})),
    ("word-password-in-description", git_shape("LS_Sql_Described", "AzureSqlDatabase", {
        "server": "s", "database": "d", "userName": "u", "password": kv_ref("sql-db-password")},
        description="The password is in Key Vault; Password=never here, AccountKey= neither.")),  # pragma: allowlist secret
    ("parameterised", git_shape("LS_Sql_Parameterised", "AzureSqlDatabase", {
        "connectionString": "Server=tcp:@{linkedService().server};Database=d;User ID=u;Password=@{linkedService().pw};",
        "password": "@linkedService().password"},
        parameters={"password": {"type": "String"}, "server": {"type": "String", "defaultValue": "s"}})),
    ("empty-password-keyword", git_shape("LS_Sql_EmptyPassword", "AzureSqlDatabase", {
        "connectionString": "Server=tcp:s;Database=d;User ID=u;Password=;", "password": kv_ref("sql-db-password")})),
]


def write(folder: Path, services: list[tuple[str, dict]]) -> Path:
    (folder / "linkedService").mkdir(parents=True, exist_ok=True)
    for name, service in services:
        (folder / "linkedService" / f"{name}.json").write_text(json.dumps(service, indent=2))
    return folder


def kvlab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_kvlab(*args, env=env, check=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("adf-repo"),
                 [(n, s) for n, s, _ in UNSAFE] + [(n, s) for n, s in SAFE])


@pytest.mark.parametrize("name, service, flagged", UNSAFE, ids=[u[0] for u in UNSAFE])
def test_each_unsafe_linked_service_is_flagged_where_it_is_unsafe(corpus, name, service, flagged):
    _, findings = adf.check([corpus / "linkedService" / f"{name}.json"])
    assert [(f.rule, f.field) for f in findings] == flagged
    assert all(f.linkedService == service["name"] for f in findings)


@pytest.mark.parametrize("name, service", SAFE, ids=[s[0] for s in SAFE])
def test_each_safe_linked_service_passes(corpus, name, service):
    assert adf.check([corpus / "linkedService" / f"{name}.json"])[1] == []


def test_the_cli_checks_a_whole_adf_repository_and_never_prints_a_value(corpus):
    done = kvlab("adf", "check", str(corpus))
    assert done.returncode == 1, done.stderr
    findings = json.loads(done.stdout)
    assert sorted({(Path(f["file"]).stem, f["rule"]) for f in findings}) == sorted(
        {(name, rule) for name, _, flagged in UNSAFE for rule, _ in flagged})
    assert f"{len(UNSAFE) + len(SAFE)} linked services: {len(UNSAFE) - 1} errors, 1 warning" in done.stderr
    table = kvlab("adf", "check", str(corpus), "-o", "table")
    for shown in (done.stdout, done.stderr, table.stdout, table.stderr):
        assert FAKE not in shown and FAKE_KEY not in shown and "bm90" not in shown


def test_warnings_alone_do_not_fail_a_commit(corpus):
    done = kvlab("adf", "check", str(corpus / "linkedService" / "encrypted-credential.json"))
    assert done.returncode == 0 and json.loads(done.stdout)[0]["severity"] == "warning"
    clean = kvlab("adf", "check", str(corpus / "linkedService" / "article.json"))
    assert clean.returncode == 0 and json.loads(clean.stdout) == []


@pytest.mark.parametrize("content, words", [
    ("{not json", ["not valid JSON (line 1"]),
    ("[]", ["a linked service is a JSON object"]),
    (json.dumps(flat("X", "AzureSqlDatabse", {})), ["type: Data Factory has no linked service type 'AzureSqlDatabse'",
                                                     "did you mean AzureSqlDatabase?"]),
    (json.dumps({"type": "AzureSqlDatabase", "typeProperties": {}}), ["name: missing"]),
    (json.dumps(git_shape("X", "AzureSqlDatabase", {})["properties"] | {"name": "X"} | {"typeProperties": None}),
     ["typeProperties: missing"]),
    (json.dumps(git_shape("X", "AzureSqlDatabase", {"password": {"type": "AzureKeyVaultSecret", "store": {
        "referenceName": "LS_KeyVault", "type": "LinkedServiceReference"}}})),
     ["typeProperties.password.secretName: missing in a Key Vault reference"]),
    (json.dumps(git_shape("LS_KeyVault", "AzureKeyVault", {})), ["properties.typeProperties.baseUrl: missing"]),
])
def test_bad_input_gets_one_line_naming_file_and_field_and_exit_2(tmp_path, content, words):
    path = tmp_path / "linkedService" / "bad.json"
    path.parent.mkdir()
    path.write_text(content)
    done = kvlab("adf", "check", str(tmp_path))
    assert done.returncode == 2
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"error: {path}: ")
    for word in words:
        assert word in done.stderr


def test_a_missing_path_is_bad_input(tmp_path):
    done = kvlab("adf", "check", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "no such file or folder" in done.stderr


def test_the_pre_commit_hook_runs_the_check_on_linked_service_files():
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    hook = hooks["kvlab-adf-check"]
    assert hook["entry"] == "kvlab adf check" and hook["language"] == "python"
    import re

    matches = re.compile(hook["files"]).search
    assert matches("linkedService/LS_Sql.json") and matches("factory/linkedService/LS_Sql.json")
    assert not matches("pipeline/PL_Copy.json") and not matches("linkedService/notes.md")


# -- resolution, as the factory's managed identity --------------------------------------------------------


@pytest.fixture
def factory(emulator, tmp_path):
    """A vault with the pipeline's password, the factory's identity (no role yet), and an ADF repo for them."""
    vault = f"adf{uuid.uuid4().hex[:10]}"
    url = emulator.create_vault(vault, exist_ok=True)["vaultUri"]
    emulator.assign_role("Key Vault Secrets Officer", "learner", vault)
    identity = f"id-adf-{uuid.uuid4().hex[:6]}"
    emulator.create_identity(identity)
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    client = SecretClient(url, DefaultAzureCredential())
    first = client.set_secret("pg-password", "first-fake-password-A1").properties.version  # pragma: allowlist secret
    repo = write(tmp_path, [
        ("LS_KeyVault", git_shape("LS_KeyVault", "AzureKeyVault", {"baseUrl": url})),
        ("LS_Pg", git_shape("LS_Pg", "AzurePostgreSql", {
            "server": "127.0.0.1", "port": 5432, "database": "sales", "username": "etl_pipeline",
            "password": kv_ref("pg-password")})),
        ("LS_Pg_Pinned", git_shape("LS_Pg_Pinned", "AzurePostgreSql", {
            "server": "127.0.0.1", "port": 5432, "database": "sales", "username": "etl_pipeline",
            "password": kv_ref("pg-password", secretVersion=first)})),
    ])
    yield {"lab": emulator, "vault": vault, "url": url, "identity": identity, "client": client, "first": first,
           "repo": repo}
    client.close()


def test_without_a_role_the_factory_is_refused_with_the_vaults_reason(factory):
    with pytest.raises(adf.ResolveError, match="ForbiddenByRbac|not authorized|does not have"):
        adf.resolve(factory["repo"] / "linkedService" / "LS_Pg.json", factory["identity"], lab=factory["lab"])
    done = kvlab("adf", "resolve", str(factory["repo"] / "linkedService" / "LS_Pg.json"),
                 "--factory-identity", factory["identity"])
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert f"refused {factory['identity']}" in done.stderr


def test_with_secrets_user_the_factory_reads_the_latest_version_or_the_pinned_one(factory):
    lab = factory["lab"]
    lab.assign_role("Key Vault Secrets User", factory["identity"], f"{factory['vault']}/secrets/pg-password")
    second = factory["client"].set_secret("pg-password", "second-fake-password-B2").properties.version  # pragma: allowlist secret
    latest = adf.resolve(factory["repo"] / "linkedService" / "LS_Pg.json", factory["identity"], lab=lab)
    pinned = adf.resolve(factory["repo"] / "linkedService" / "LS_Pg_Pinned.json", factory["identity"], lab=lab)
    assert [(r.field, r.secret, r.version, r.pinned) for r in latest] == [
        ("typeProperties.password", "pg-password", second, False)]
    assert [(r.version, r.pinned) for r in pinned] == [(factory["first"], True)]
    reads = [r for r in lab.audit(vault=factory["vault"]) if r["operationName"] == "SecretGet"
             and r.get("httpStatusCode") == 200]
    assert {r["identity"] for r in reads} == {factory["identity"]}  # the factory read it, nobody else
    done = kvlab("adf", "resolve", str(factory["repo"] / "linkedService" / "LS_Pg.json"),
                 "--factory-identity", factory["identity"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["version"] == second
    assert "fake-password" not in done.stdout + done.stderr


# -- a real database behind the password --------------------------------------------------------------


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    state = tmp_path_factory.mktemp("db-state")
    from runners import free_port

    info = db.start(state, free_port())
    yield {"state": state, **info}
    db.stop(state)


def test_the_database_asks_for_a_password_and_listens_on_loopback_only(database):
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="password authentication failed|no password supplied"):
        psycopg.connect(host="127.0.0.1", port=database["port"], user=db.ADMIN, dbname="postgres",
                        connect_timeout=5).close()
    done = kvlab("db", "status", "--state-dir", str(database["state"]))
    status = json.loads(done.stdout)
    assert status["running"] and status["host"] == "127.0.0.1" and "password" not in done.stdout.lower()
    assert (Path(database["state"]) / "postgres" / "admin-password").stat().st_mode & 0o077 == 0
    again = kvlab("db", "start", "--state-dir", str(database["state"]))
    assert json.loads(again.stdout)["alreadyRunning"] is True


def test_a_rotation_through_the_linked_service_latest_follows_pinned_breaks(factory, database):
    lab, repo, state = factory["lab"], factory["repo"], database["state"]
    for name in ("LS_Pg", "LS_Pg_Pinned"):  # point the linked services at this database
        path = repo / "linkedService" / f"{name}.json"
        service = json.loads(path.read_text())
        service["properties"]["typeProperties"]["port"] = database["port"]
        path.write_text(json.dumps(service))
    lab.assign_role("Key Vault Secrets User", factory["identity"], f"{factory['vault']}/secrets/pg-password")
    db.ensure_login("etl_pipeline", "first-fake-password-A1", "sales", state)  # pragma: allowlist secret
    connected = adf.connect(repo / "linkedService" / "LS_Pg.json", factory["identity"], lab=lab)
    assert (connected["user"], connected["database"], connected["password"]["version"]) == (
        "etl_pipeline", "sales", factory["first"])
    # 1. the password changes at its source; the vault still holds the old one: the pipeline breaks
    db.set_password("etl_pipeline", "second-fake-password-B2", state)  # pragma: allowlist secret
    with pytest.raises(adf.ResolveError, match='password authentication failed for user "etl_pipeline"'):
        adf.connect(repo / "linkedService" / "LS_Pg.json", factory["identity"], lab=lab)
    # 2. a new version in the vault: the unpinned linked service follows, the pinned one does not
    second = factory["client"].set_secret("pg-password", "second-fake-password-B2").properties.version  # pragma: allowlist secret
    assert adf.connect(repo / "linkedService" / "LS_Pg.json", factory["identity"], lab=lab)["password"][
        "version"] == second
    with pytest.raises(adf.ResolveError, match="password authentication failed"):
        adf.connect(repo / "linkedService" / "LS_Pg_Pinned.json", factory["identity"], lab=lab)
    done = kvlab("adf", "run-connection", str(repo / "linkedService" / "LS_Pg.json"),
                 "--factory-identity", factory["identity"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["user"] == "etl_pipeline" and "fake-password" not in done.stdout
    refused = kvlab("adf", "run-connection", str(repo / "linkedService" / "LS_Pg_Pinned.json"),
                    "--factory-identity", factory["identity"])
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "PostgreSQL refused the connection: FATAL:" in refused.stderr
    log = (Path(state) / "postgres" / "postgres.log").read_text()
    assert "fake-password" not in log


def test_two_logins_in_turn_rotate_with_no_moment_the_latest_secret_fails(factory, database):
    """The whole connection string in the vault (user and password): rotate the login not in use, then switch."""
    lab, repo, state, client = factory["lab"], factory["repo"], database["state"], factory["client"]
    db.ensure_login("etl_blue", "blue-fake-password-1", "sales", state)  # pragma: allowlist secret
    db.ensure_login("etl_green", "green-fake-password-1", "sales", state)  # pragma: allowlist secret

    def connection(user: str, password: str) -> str:
        return f"host=127.0.0.1;port={database['port']};database=sales;uid={user};password={password}"

    client.set_secret("pg-connection", connection("etl_blue", "blue-fake-password-1"))  # pragma: allowlist secret
    write(repo, [("LS_Pg_Whole", git_shape("LS_Pg_Whole", "AzurePostgreSql", {"connectionString": kv_ref("pg-connection")}))])
    lab.assign_role("Key Vault Secrets User", factory["identity"], f"{factory['vault']}/secrets/pg-connection")
    whole = repo / "linkedService" / "LS_Pg_Whole.json"
    assert adf.connect(whole, factory["identity"], lab=lab)["user"] == "etl_blue"
    db.set_password("etl_green", "green-fake-password-2", state)  # pragma: allowlist secret - the login not in use
    assert adf.connect(whole, factory["identity"], lab=lab)["user"] == "etl_blue"  # nothing broke
    client.set_secret("pg-connection", connection("etl_green", "green-fake-password-2"))  # pragma: allowlist secret
    switched = adf.connect(whole, factory["identity"], lab=lab)
    assert (switched["user"], switched["password"]["secret"]) == ("etl_green", "pg-connection")
    client.set_secret("pg-connection", "host=127.0.0.1;not-a-keyword-part")
    with pytest.raises(adf.AdfError, match="a part without '=' \\(not shown\\)"):
        adf.connect(whole, factory["identity"], lab=lab)


def test_the_database_restarts_at_once_after_stopping_with_connections_open(tmp_path):
    """Connections the server closed leave its port in TIME_WAIT; a restart must not take that for a port in use."""
    import psycopg

    from runners import free_port

    state = tmp_path / "state"
    info = db.start(state, free_port())
    open_connections = []
    try:
        open_connections += [db.connect_admin(state) for _ in range(3)]  # the server will close them
        db.stop(state)
        assert db.start(state)["port"] == info["port"]
        with pytest.raises(psycopg.OperationalError):  # and it still asks for a password
            psycopg.connect(host="127.0.0.1", port=info["port"], user=db.ADMIN, dbname="postgres",
                            password="wrong", connect_timeout=5).close()  # pragma: allowlist secret
    finally:
        db.stop(state)
        for connection in open_connections:
            connection.close()
