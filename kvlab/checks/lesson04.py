"""Lesson 04 - Databricks secret scopes backed by Key Vault.

The lesson's workspace is the emulator's (kvlab/emulator/databricks.py): the
learner signs in with its personal access token, or with a Microsoft Entra ID
token where Databricks requires one (creating a Key Vault-backed scope). A
Key Vault-backed scope reads its vault as the AzureDatabricks application, so
two permission systems meet: the vault's RBAC for AzureDatabricks, and the
scope's ACL for each workspace user.

The lab's set-up stages two situations the learner has not seen in the guided
notebook: a nightly job whose read fails for a reason drawn at each set-up
(exercise 2), and a finance team's scope left open to every user with a
permission drawn at each set-up (exercise 3). The checks read the workspace's
and the vaults' state, and try each access as the user or application concerned.
"""

from __future__ import annotations

import random
import secrets

from . import SECRETS_USER, Context, Exercise, Incorrect, LessonSpec

VAULT, FIN_VAULT = "kv-analytics-dev", "kv-finance-dev"
GUIDED_SCOPE, SCOPE, FIN_SCOPE, TEAM_SCOPE, DEMO_SCOPE = "kv-scope", "kv-analytics", "kv-finance", "finance-team", "kvlab-demo"
NEEDED = ("adls-storage-key", "sql-db-password")  # what the analytics notebooks read
OTHER = "stripe-api-key"  # another team's secret in the same vault
WAREHOUSE = "warehouse-password"  # what the nightly job reads, in the finance vault
ERP = "erp-api-key"  # the finance team's own secret, in their Databricks-backed scope
ANALYST, ETL, FINANCE = "ana@kvlab.local", "etl@kvlab.local", "fin@kvlab.local"
CAUSES = ("vault-role", "scope-acl", "disabled-secret")
DEMO_VALUE = "fake-demo-value-1234"  # pragma: allowlist secret - a planted fake, for the guided notebook's demonstration
DATABRICKS = "AzureDatabricks"
DATABRICKS_APP = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"  # the scope a token for Azure Databricks asks for


# -- the set-up ------------------------------------------------------------------------------


CHECK_AGENT = "kvlab-check"  # in the User-Agent of the requests checks and set-ups make, as the audit log shows them


def _clients(lesson, user: str | None = None):
    """A WorkspaceClient for a workspace user (the learner by default), by personal access token, for kvlab itself."""
    from databricks.sdk import WorkspaceClient

    found = lesson.lab.workspace(user)
    return WorkspaceClient(host=found["host"], token=found["token"], product=CHECK_AGENT, product_version="1")


def entra_client(lesson):
    """The learner's WorkspaceClient signed in with a Microsoft Entra ID token (as `az login` gives)."""
    from azure.identity import DefaultAzureCredential
    from databricks.sdk import WorkspaceClient

    with DefaultAzureCredential() as credential:
        token = credential.get_token(DATABRICKS_APP).token
    return WorkspaceClient(host=lesson.lab.workspace()["host"], token=token)


def keyvault_scope(lesson, scope: str, vault: str) -> None:
    """Create a scope backed by ``vault`` (as the learner, with an Entra ID token)."""
    from databricks.sdk.service.workspace import AzureKeyVaultSecretScopeMetadata, ScopeBackendType

    resource_id = next(v["id"] for v in lesson.lab.list_vaults() if v["name"] == vault)
    entra_client(lesson).secrets.create_scope(
        scope, scope_backend_type=ScopeBackendType.AZURE_KEYVAULT,
        backend_azure_keyvault=AzureKeyVaultSecretScopeMetadata(resource_id=resource_id,
                                                                dns_name=lesson.lab.vault_url(vault)))


def _set_the_scene(lesson) -> None:
    """Fresh scopes and vault secrets; in the lab, the nightly job's failure and the finance team's open scope."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient
    from databricks.sdk.service.workspace import AclPermission

    lab = lesson.lab
    # the lesson about scopes starts with none but its own: another lesson's (06's `orders`) would show in every
    # listing here, and what the learner made in an earlier run of this lesson goes, as its vaults' secrets do
    for scope in lab.workspace_scopes():
        lab.delete_workspace_scope(scope["name"])
    for user in (ANALYST, ETL, FINANCE):
        lab.ensure_workspace_user(user)
    with DefaultAzureCredential() as credential:
        with SecretClient(lesson.vault_url(VAULT), credential) as client:
            for name in (*NEEDED, OTHER):
                client.set_secret(name, secrets.token_urlsafe(24), content_type="text/plain")
        with SecretClient(lesson.vault_url(FIN_VAULT), credential) as client:
            client.set_secret(WAREHOUSE, secrets.token_urlsafe(24), content_type="text/plain")
    workspace = _clients(lesson)
    if lesson.demo:
        workspace.secrets.create_scope(DEMO_SCOPE)
        workspace.secrets.put_secret(DEMO_SCOPE, "not-a-secret", string_value=DEMO_VALUE)
        return
    draw = random.SystemRandom()
    # exercise 2: the nightly job's scope, working, then broken in one drawn way
    keyvault_scope(lesson, FIN_SCOPE, FIN_VAULT)
    workspace.secrets.put_acl(FIN_SCOPE, ETL, AclPermission.READ)
    cause = draw.choice(CAUSES)
    if cause != "vault-role":
        lab.assign_role(SECRETS_USER, DATABRICKS, FIN_VAULT)
    if cause == "scope-acl":
        workspace.secrets.delete_acl(FIN_SCOPE, ETL)
    if cause == "disabled-secret":
        with DefaultAzureCredential() as credential, SecretClient(lesson.vault_url(FIN_VAULT), credential) as client:
            client.update_secret_properties(WAREHOUSE, enabled=False)
    lab.stage("lesson04.cause", cause)
    # exercise 3: the finance team's scope, open to every user of the workspace
    finance = _clients(lesson, FINANCE)
    finance.secrets.create_scope(TEAM_SCOPE)
    finance.secrets.put_secret(TEAM_SCOPE, ERP, string_value=secrets.token_urlsafe(24))
    finance.secrets.put_acl(TEAM_SCOPE, "users", draw.choice(list(AclPermission)))


# -- helpers for the checks --------------------------------------------------------------------


def _scope(ctx: Context, name: str) -> dict | None:
    return next((s for s in ctx.emulator.workspace_scopes() if s["name"] == name), None)


def _read_as(ctx: Context, user: str | None, scope: str, key: str) -> Exception | None:
    """Try ``dbutils.secrets.get`` as a workspace user: None if it worked, else the error."""
    from databricks.sdk.errors import DatabricksError

    try:
        _clients(ctx.lesson, user).dbutils.secrets.get(scope, key)
    except DatabricksError as exc:  # the SDK's typed errors: the caller judges which
        return exc
    return None


# -- exercise 1: a scope for the analytics vault, and no more access than its notebooks need ---------------


def check_scope(ctx: Context) -> list[str]:
    found = _scope(ctx, SCOPE)
    if found is None:
        raise Incorrect(f"The workspace has no scope `{SCOPE}` yet. Create it with secrets.create_scope(...), "
                        "backed by Azure Key Vault.")
    if found["backend"] != "AZURE_KEYVAULT" or (found["vault"] or "").lower() != VAULT:
        raise Incorrect(f"`{SCOPE}` is a {found['backend']} scope" + (f" on {found['vault']}" if found["vault"] else "")
                        + f": back it by the vault {VAULT} (scope_backend_type AZURE_KEYVAULT, its resource id and "
                        "DNS name).")
    checked = [f"`{SCOPE}` is backed by {VAULT}"]
    ctx.secrets_read_by(
        DATABRICKS, VAULT,
        none=f"{DATABRICKS} holds no role on {VAULT}, so every read through `{SCOPE}` is refused. The workspace reads "
             "the vault as that application: give it the role that reads values.",
        too_strong=f"{DATABRICKS} holds {{role}} on {{where}}: a scope only reads, so {SECRETS_USER} is the most it needs.",
        vault_wide=f"{DATABRICKS} holds {SECRETS_USER} on the whole vault {VAULT}, so every workspace user with READ on "
                   f"`{SCOPE}` can read {OTHER}, another team's key. Scope its role to the two secrets the notebooks "
                   f"need ({', '.join(NEEDED)}).")
    for name in NEEDED:
        failed = _read_as(ctx, None, SCOPE, name)
        if failed is not None:
            raise Incorrect(f"Reading {name} through `{SCOPE}` fails: {str(failed).split(' Config:')[0]}")
    if _read_as(ctx, None, SCOPE, OTHER) is None:
        raise Incorrect(f"{OTHER} can be read through `{SCOPE}`: only {', '.join(NEEDED)} should be.")
    checked.append(f"{DATABRICKS} holds {SECRETS_USER} on {' and '.join(NEEDED)} only")
    checked.append(f"through `{SCOPE}`: both read, {OTHER} refused (PERMISSION_DENIED from the vault)")
    return checked


# -- exercise 2: why the nightly job fails ----------------------------------------------------------------


_FIXES = {
    "vault-role": f"{DATABRICKS} had no role on {FIN_VAULT}",
    "scope-acl": f"{ETL} had no READ on the scope `{FIN_SCOPE}`",
    "disabled-secret": f"{WAREHOUSE} was disabled in {FIN_VAULT}",
}


def check_job(ctx: Context) -> list[str]:
    cause = ctx.require("cause", str, f"str: one of {', '.join(repr(c) for c in CAUSES)}")
    if cause not in CAUSES:
        raise Incorrect(f"`cause` is {cause!r}: say which it is, {', '.join(repr(c) for c in CAUSES)}.")
    staged = ctx.emulator.stage("lesson04.cause")
    if cause != staged:
        raise Incorrect(f"`cause` is {cause!r}, but that is not what stops the job. Read the job's error again: "
                        "which system refused, the workspace (the scope's ACL) or the vault (and why)?")
    checked = [f"`cause` is right: {_FIXES[cause]}"]
    failed = _read_as(ctx, ETL, FIN_SCOPE, WAREHOUSE)
    if failed is not None:
        raise Incorrect(f"The job still fails: {str(failed).split(' Config:')[0]}")
    checked.append(f"as {ETL}, the job reads {WAREHOUSE} through `{FIN_SCOPE}` again")
    acl = (_scope(ctx, FIN_SCOPE) or {}).get("acls", {}).get(ETL)
    if acl != "READ":
        raise Incorrect(f"{ETL} holds {acl} on `{FIN_SCOPE}`: a job that reads needs READ, and no more.")
    for role, _secret in ctx.roles_held(DATABRICKS, FIN_VAULT):
        if role != SECRETS_USER:
            raise Incorrect(f"{DATABRICKS} holds {role} on {FIN_VAULT}: the scope only reads, so {SECRETS_USER} "
                            "is the most it needs.")
    checked.append(f"with least privilege: READ for the job, at most {SECRETS_USER} for {DATABRICKS}")
    return checked


# -- exercise 3: an analyst who reads one scope, and nothing of the finance team's ----------------------------


def check_boundary(ctx: Context) -> list[str]:
    from databricks.sdk.errors import PermissionDenied

    analytics, team = _scope(ctx, SCOPE), _scope(ctx, TEAM_SCOPE)
    if analytics is None or team is None:
        raise Incorrect(f"`{SCOPE}` (exercise 1) and `{TEAM_SCOPE}` must both exist: do exercise 1 first, or run "
                        "the set-up cell again.")
    held = analytics["acls"].get(ANALYST)
    if held != "READ":
        raise Incorrect(f"{ANALYST} holds {held or 'nothing'} on `{SCOPE}`: she only reads, so READ.")
    if "users" in analytics["acls"]:
        raise Incorrect(f"Every user of the workspace (the principal `users`) holds {analytics['acls']['users']} on "
                        f"`{SCOPE}`: READ for {ANALYST} does not mean READ for everyone. Remove that entry.")
    everyone = team["acls"].get("users")
    if everyone is not None:
        raise Incorrect(f"Every user of the workspace (the principal `users`) holds {everyone} on `{TEAM_SCOPE}`, "
                        f"{ANALYST} included. Find it in the scope's ACLs and remove it.")
    if ANALYST in team["acls"]:
        raise Incorrect(f"{ANALYST} holds {team['acls'][ANALYST]} on `{TEAM_SCOPE}`: she must hold nothing there.")
    if team["acls"].get(FINANCE) != "MANAGE":
        raise Incorrect(f"{FINANCE}, the finance team's owner of `{TEAM_SCOPE}`, lost MANAGE on it: close the scope "
                        "to others without locking its owner out.")
    checked = [f"{ANALYST} holds READ on `{SCOPE}` and nothing on `{TEAM_SCOPE}`; {FINANCE} still manages it"]
    refused = ctx.require("refused", Exception, "exception (the error the analyst got)")
    if not isinstance(refused, PermissionDenied) or ANALYST not in str(refused) or TEAM_SCOPE not in str(refused):
        raise Incorrect(f"`refused` should be the PermissionDenied {ANALYST} gets when she reads `{TEAM_SCOPE}` with "
                        f"her own client; it is {type(refused).__name__}: {str(refused).split(' Config:')[0][:120]}")
    tried = [e for e in ctx.emulator.workspace_audit(after=ctx.lesson.workspace_position)
             if e["actionName"] == "getSecret" and e["userIdentity"]["email"] == ANALYST
             and e["requestParams"].get("scope") == TEAM_SCOPE and e["response"]["statusCode"] == 403
             and CHECK_AGENT not in (e.get("userAgent") or "")]
    if not tried:
        raise Incorrect(f"The workspace's audit log shows no read by {ANALYST} refused in `{TEAM_SCOPE}`: prove the "
                        "boundary by trying it, as her, with her own client.")
    checked.append(f"`refused` is the PermissionDenied {ANALYST} got from `{TEAM_SCOPE}` (the workspace's audit log "
                   f"shows her refused getSecret)")
    if _read_as(ctx, ANALYST, SCOPE, NEEDED[0]) is not None:
        raise Incorrect(f"As {ANALYST}, reading {NEEDED[0]} through `{SCOPE}` fails.")
    if _read_as(ctx, ANALYST, TEAM_SCOPE, ERP) is None:
        raise Incorrect(f"As {ANALYST}, reading {ERP} through `{TEAM_SCOPE}` still works.")
    checked.append(f"tried as {ANALYST}: {NEEDED[0]} read through `{SCOPE}`, {ERP} refused in `{TEAM_SCOPE}`")
    return checked


LESSON = LessonSpec(
    number="04",
    title="Databricks secret scopes backed by Key Vault",
    vaults=(VAULT, FIN_VAULT),
    grants=(("Key Vault Secrets Officer", "learner", VAULT), ("Key Vault Secrets Officer", "learner", FIN_VAULT)),
    seed=_set_the_scene,
    emulator_only=("its Databricks workspace, users and scopes are the emulator's (a real workspace needs its own "
                   "URL, users and an Azure subscription; the guided notebook shows the az and databricks commands)"),
    exercises=(
        Exercise("ex1", "A scope for the analytics vault, and no more", check_scope, (
            "Creating a Key Vault-backed scope takes a Microsoft Entra ID token, as in the guided lesson; then the "
            "workspace needs a role on the vault, because it reads the vault as AzureDatabricks.",
            "A role can be scoped to one secret ('kv-analytics-dev/secrets/<name>'), as in lesson 02: give "
            "AzureDatabricks Key Vault Secrets User on each of the two secrets, not on the vault.",
        )),
        Exercise("ex2", "Why the nightly job fails", check_job, (
            "Run the job's cell and read its error: every cause answers PERMISSION_DENIED, but the message says "
            "who refused. 'User ... does not have READ permission on scope' comes from the workspace; 'Invalid "
            "permissions on the specified KeyVault' and 'KeyVault ... answered 403' come from the vault.",
            "The fixes: the scope's ACL (secrets.put_acl), the vault's role assignments (lesson.lab.assign_role), "
            "or the secret itself (SecretClient.update_secret_properties). Fix only what is broken.",
        )),
        Exercise("ex3", "An analyst who reads one scope only", check_boundary, (
            "Scope ACLs decide what each workspace user may do: secrets.put_acl(scope, principal, permission). "
            "Look at every ACL of the finance team's scope (secrets.list_acls) before you trust it.",
            "The principal 'users' means every user of the workspace: delete that entry (secrets.delete_acl), keep "
            "the finance owner's MANAGE, then read as the analyst with her own WorkspaceClient and keep the error.",
        )),
    ),
)
