"""Lesson 05 - Data Factory linked services that reference Key Vault.

The lesson's factory is an ADF Git folder (``adf-sales/linkedService/*.json``,
beside the notebook) plus the factory's managed identity in the emulator; its
data store is a real PostgreSQL (`kvlab.db`) whose pipeline login's password
lives in the vault. `kvlab.adf` reads, checks and resolves the linked services
as ADF does.

The lab's set-up adds three linked services drawn from a pool of unsafe ones,
each with a fresh fake credential (exercise 1: make the folder safe to commit
without losing a credential), and pins the reporting linked service to the
password's first version (exercise 3: rotate, and nothing breaks). The checks
read the files, the vault, the role assignments and the database, and connect
as the factory would.
"""

from __future__ import annotations

import json
import random
import secrets
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from . import SECRETS_USER, Context, Exercise, Incorrect, LessonSpec

VAULT = "kv-sales-dev"
FACTORY = "adf-sales-dev"  # the factory's managed identity (a system-assigned identity is named after its factory)
FOLDER = "adf-sales"  # the factory's Git folder, beside the notebook
DB_USER, DB_NAME, SECRET = "etl_pipeline", "sales", "pg-password"  # pragma: allowlist secret - names, not values
KEY_VAULT_LS, PIPELINE_LS, REPORTING_LS = "LS_KeyVault", "LS_SalesDb", "LS_SalesDb_Reporting"
EXPIRY_DAYS = 90  # the article's rotation period


def folder(lesson) -> Path:
    """The lesson's ADF Git folder: ``adf-sales/`` in the notebook's working directory."""
    return Path.cwd() / FOLDER


def linked_service_json(name: str, kind: str, type_properties: dict, **properties) -> dict:
    return {"name": name, "type": "Microsoft.DataFactory/factories/linkedservices",
            "properties": {"type": kind, "typeProperties": type_properties, **properties}}


def reference(secret: str, version: str | None = None) -> dict:
    """A Key Vault secret reference through the folder's Key Vault linked service."""
    found = {"type": "AzureKeyVaultSecret", "store": {"referenceName": KEY_VAULT_LS, "type": "LinkedServiceReference"},
             "secretName": secret}
    if version:
        found["secretVersion"] = version
    return found


def write_linked_service(where: Path, service: dict) -> None:
    (where / "linkedService" / f"{service['name']}.json").write_text(json.dumps(service, indent=4) + "\n")


def _fake(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(10)}"  # fake, but unique per set-up: it must move, not be retyped


# The unsafe linked services the lab draws from: (name, kind, field a reviewer flags, typeProperties for a credential)
def _unsafe_pool(credential: str) -> dict[str, tuple[str, str, dict]]:
    return {
        "LS_Blob_Archive": ("AzureBlobStorage", "typeProperties.connectionString", {
            "connectionString": f"DefaultEndpointsProtocol=https;AccountName=salesarchive;AccountKey={credential};"
                                "EndpointSuffix=core.windows.net"}),
        "LS_Sql_Legacy": ("AzureSqlDatabase", "typeProperties.password", {
            "server": "sales-legacy.database.windows.net", "database": "SalesLegacy", "authenticationType": "SQL",
            "userName": "legacy_reader", "password": {"type": "SecureString", "value": credential}}),
        "LS_Adls_Raw": ("AzureBlobFS", "typeProperties.servicePrincipalKey", {
            "url": "https://salesraw.dfs.core.windows.net", "servicePrincipalId": "6f1c2d3e-0000-4000-8000-00000000a11c",
            "servicePrincipalKey": credential, "tenant": "contoso.onmicrosoft.com"}),
        "LS_Pg_Finance": ("AzurePostgreSql", "typeProperties.connectionString", {
            "connectionString": f"host=finance-pg.postgres.database.azure.com;port=5432;database=finance;"
                                f"uid=finance_reader;pwd={credential}"}),
        "LS_Rest_Crm": ("RestService", "typeProperties.password", {
            "url": "https://crm.example.com/api", "authenticationType": "Basic", "userName": "adf-sales",
            "password": credential}),
    }


def _set_the_scene(lesson) -> None:
    """The database and its pipeline login, the password in the vault, and the factory's folder."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    from .. import db

    lab = lesson.lab
    info = db.start(lab.state_dir)
    password = secrets.token_urlsafe(24)
    db.ensure_login(DB_USER, password, DB_NAME, lab.state_dir)
    with db.connect_admin(lab.state_dir, DB_NAME) as admin:
        admin.execute(f"SET ROLE {DB_USER}")
        admin.execute("DROP TABLE IF EXISTS orders")
        admin.execute("CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric(10, 2))")
        admin.execute("INSERT INTO orders VALUES (1, 'Contoso', 120.00), (2, 'Fabrikam', 89.50), (3, 'Northwind', 42.10)")
    with DefaultAzureCredential() as credential, SecretClient(lesson.vault_url(VAULT), credential) as client:
        first = client.set_secret(SECRET, password, content_type="text/plain",
                                  expires_on=datetime.now(timezone.utc) + timedelta(days=EXPIRY_DAYS))
    where = folder(lesson)
    shutil.rmtree(where, ignore_errors=True)
    (where / "linkedService").mkdir(parents=True)
    write_linked_service(where, linked_service_json(KEY_VAULT_LS, "AzureKeyVault", {"baseUrl": lesson.vault_url(VAULT)},
                            description="The sales vault: every other linked service takes its secrets from here."))
    pipeline = {"server": info["host"], "port": info["port"], "database": DB_NAME, "username": DB_USER,
                "sslMode": 2, "password": reference(SECRET)}
    write_linked_service(where, linked_service_json(PIPELINE_LS, "AzurePostgreSql", pipeline,
                            description="The nightly sales pipeline's database. The password is in Key Vault."))
    if lesson.demo:
        return
    write_linked_service(where, linked_service_json(REPORTING_LS, "AzurePostgreSql", {**pipeline, "password": reference(
        SECRET, first.properties.version)}, description="Reporting: pinned to one version of the password."))
    lab.stage("lesson05.first-password", password)
    draw = random.SystemRandom()
    staged = {}
    for name in draw.sample(sorted(_unsafe_pool("x")), 3):
        fake = _fake("fake" + name.split("_")[1].lower())
        kind, flagged, type_properties = _unsafe_pool(fake)[name]
        write_linked_service(where, linked_service_json(name, kind, type_properties))
        staged[name] = {"field": flagged, "credential": fake}
    lab.stage("lesson05.unsafe", json.dumps(staged))


# -- helpers for the checks ---------------------------------------------------------------------------------


def _services(ctx: Context) -> dict:
    from .. import adf

    where = folder(ctx.lesson)
    if not where.is_dir():
        raise Incorrect(f"The factory's folder {where} is missing: run the set-up cell again.")
    try:
        services, findings = adf.check([where])
    except adf.AdfError as exc:
        raise Incorrect(f"A linked service file no longer reads: {exc}") from None
    return {"services": {s.name: s for s in services}, "findings": findings, "folder": where}


def _vault_secret_value(ctx: Context, reference: dict) -> str | None:
    """The value a reference points at, read behind the vault's back (None if it points nowhere here)."""
    from urllib.parse import urlparse

    from .. import adf

    store = reference["store"]["referenceName"]
    vault_service = next((s for s in adf.read_all([folder(ctx.lesson)]) if s.name == store), None)
    if vault_service is None or urlparse(str(vault_service.type_properties.get("baseUrl", ""))).hostname != \
            f"{VAULT}.localhost":
        return None
    found = ctx.emulator.inspect_secret(VAULT, reference["secretName"])
    return None if found is None else found["value"]


def _no_credential(service) -> bool:
    """A linked service that authenticates without a secret (a managed identity): none of its fields holds one."""
    from .. import adf

    return not any(key.lower() in adf.SECRET_FIELDS or key.lower() == "connectionstring"
                   for key in service.type_properties) and not adf.references(service)


# -- exercise 1: a folder that is safe to commit, with every credential moved, not lost ----------------------


def check_safe_to_commit(ctx: Context) -> list[str]:
    from .. import adf

    staged = json.loads(ctx.emulator.stage("lesson05.unsafe") or "{}")
    found = _services(ctx)
    errors = [f for f in found["findings"] if f.severity == "error"]
    if errors:
        first = errors[0]
        raise Incorrect(f"{len(errors)} finding{'s' * (len(errors) > 1)} left; the first: {first.linkedService}, "
                        f"{first.field}: {first.message}")
    checked = [f"kvlab adf check finds nothing to stop a commit in {len(found['services'])} linked services"]
    for name, unsafe in staged.items():
        service = found["services"].get(name)
        if service is None:
            raise Incorrect(f"{name} is gone from the folder. The pipelines still need it: make it safe, do not "
                            "delete it.")
        text = "\n".join(p.read_text(errors="replace") for p in found["folder"].rglob("*.json"))
        if unsafe["credential"] in text:
            raise Incorrect(f"{name}'s credential is still in a file of the folder: take it out of the JSON.")
        values = [_vault_secret_value(ctx, ref) for _, ref in adf.references(service)]
        if any(value and unsafe["credential"] in value for value in values):
            continue
        if name == "LS_Adls_Raw" and _no_credential(service):
            continue  # it signs in as the factory's managed identity now: no secret at all
        if not values:
            raise Incorrect(f"{name} references no Key Vault secret, so its credential is lost: put the credential "
                            f"in {VAULT} (set_secret) and reference it in {unsafe['field']}.")
        raise Incorrect(f"{name}'s Key Vault reference does not lead to its credential: the secret it names in "
                        f"{VAULT} must hold the value that was in {unsafe['field']} (read it from the file before "
                        "you change it, never retype it).")
    checked.append(f"{', '.join(sorted(staged))}: each credential moved into {VAULT} (or no longer needed), "
                   "none left in the files")
    return checked


# -- exercise 2: the factory reads exactly what its linked services reference -------------------------------


def check_factory_role(ctx: Context) -> list[str]:
    from .. import adf

    found = _services(ctx)
    needed = {ref["secretName"] for s in found["services"].values() for _, ref in adf.references(s)}
    granted = ctx.secrets_read_by(
        FACTORY, VAULT,
        none=f"{FACTORY}, the factory's managed identity, holds no role on {VAULT}: every Key Vault reference fails "
             "at run time with ForbiddenByRbac.",
        too_strong=f"{FACTORY} holds {{role}} on {{where}}: the factory only reads secrets, so {SECRETS_USER} is the "
                   "most it needs.",
        vault_wide=f"{FACTORY} holds {SECRETS_USER} on the whole vault {VAULT}: it could read every secret there, not "
                   f"only the {len(needed)} its linked services reference. Scope its role to those secrets.")
    if granted - needed:
        raise Incorrect(f"{FACTORY} may read {', '.join(sorted(granted - needed))}, which no linked service of "
                        "the folder references: remove that role assignment.")
    if needed - granted:
        raise Incorrect(f"{FACTORY} may not read {', '.join(sorted(needed - granted))}, which a linked service "
                        "references: that reference would fail at run time.")
    checked = [f"{FACTORY} holds {SECRETS_USER} on exactly the {len(needed)} secrets the folder references"]
    for service in found["services"].values():
        if adf.references(service):
            try:
                adf.resolve(service, FACTORY, found["folder"], lab=ctx.emulator)
            except adf.ResolveError as exc:
                raise Incorrect(f"Resolving {service.name} as the factory fails: {exc}") from None
    checked.append("every Key Vault reference resolves as the factory's identity")
    return checked


# -- exercise 3: rotate the pipeline's password, and nothing breaks ----------------------------------------


def check_rotation(ctx: Context) -> list[str]:
    import psycopg

    from .. import adf, db

    first = ctx.emulator.stage("lesson05.first-password")
    current = ctx.emulator.inspect_secret(VAULT, SECRET)
    if current is None:
        raise Incorrect(f"{SECRET} is gone from {VAULT}: the pipeline has nothing to connect with.")
    if current["value"] == first:
        raise Incorrect(f"{SECRET}'s latest version is still the first password: rotate it (a new password at "
                        "the database, then a new version in the vault).")
    checked = [ctx.require_generated(current["value"], f"the new {SECRET}")]
    if not current["exp"] or current["exp"] > (datetime.now(timezone.utc) + timedelta(days=EXPIRY_DAYS + 1)).timestamp():
        raise Incorrect(f"The new version of {SECRET} has {'no expiry' if not current['exp'] else 'an expiry too far out'}: "
                        f"give it one {EXPIRY_DAYS} days out, the rotation period, so an alert comes before it is due.")
    checked.append(f"the new version expires within {EXPIRY_DAYS} days")
    info = db.status(ctx.emulator.state_dir)
    if not info["running"]:  # a refused connection would prove nothing then
        raise Incorrect("The database is not running (JupyterLab stops it when it closes): start it with "
                        "`kvlab db start` in a terminal, or run the set-up cell again.")
    try:
        psycopg.connect(host=info["host"], port=info["port"], dbname=DB_NAME, user=DB_USER, password=first,
                        connect_timeout=10).close()
    except psycopg.OperationalError:
        pass
    else:
        raise Incorrect(f"The database still accepts the first password for {DB_USER}: a rotation changes the "
                        "password at its source (ALTER ROLE ... PASSWORD, here kvlab.db.set_password).")
    checked.append("the database no longer accepts the first password")
    where = folder(ctx.lesson)
    for name in (PIPELINE_LS, REPORTING_LS):
        path = where / "linkedService" / f"{name}.json"
        try:
            adf.connect(path, FACTORY, where, lab=ctx.emulator)
        except (adf.AdfError, adf.ResolveError) as exc:
            raise Incorrect(f"{name} no longer connects: {exc}") from None
    checked.append(f"{PIPELINE_LS} and {REPORTING_LS} both connect as the factory, with the new password")
    return checked


LESSON = LessonSpec(
    number="05",
    title="Data Factory linked services that reference Key Vault",
    vaults=(VAULT,),
    identities=(FACTORY,),
    grants=(("Key Vault Secrets Officer", "learner", VAULT),),
    seed=_set_the_scene,
    emulator_only=("the factory's managed identity and its database are the emulator's (on Azure, ADF resolves "
                   "references itself: Test connection in ADF Studio)"),
    exercises=(
        Exercise("ex1", "A folder that is safe to commit", check_safe_to_commit, (
            "Run kvlab.adf.check on the folder (or `kvlab adf check adf-sales` in a terminal): each finding names "
            "the file and the field.",
            "For each one: read the credential from the file into a variable (never print it), set_secret it in the "
            "vault, then replace the field with a Key Vault reference (kvlab.checks.lesson05.reference(name) builds "
            "one) and write the file back with json.dump.",
            "A connection string can stay, without its credential: AzureBlobStorage takes the key in accountKey, "
            "AzurePostgreSql and AzureSqlDatabase the password in password. Or keep the whole connection string in "
            "the vault and reference it in connectionString.",
        )),
        Exercise("ex2", "The factory reads what it needs, and nothing else", check_factory_role, (
            "The factory resolves references as its managed identity, adf-sales-dev. Which secrets do the linked "
            "services reference? kvlab.adf.references(service) lists them.",
            "One Key Vault Secrets User assignment per referenced secret, scoped to "
            "'kv-sales-dev/secrets/<name>' (lesson 02), and nothing on the whole vault.",
        )),
        Exercise("ex3", "Rotate the pipeline's password without breaking a linked service", check_rotation, (
            "Order matters: first change the password at the database (kvlab.db.set_password), then set the new "
            "value as a new version of the secret, with an expiry 90 days out.",
            "A linked service pinned to a version (secretVersion) keeps the old password: update its pin, or "
            "remove it so it follows the latest version.",
        )),
    ),
)
