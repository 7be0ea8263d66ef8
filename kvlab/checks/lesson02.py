"""Lesson 02 - Creating a vault: one vault per environment, RBAC, least privilege.

The lesson starts from three RBAC vaults (dev, staging, prod) in which nobody
holds a data role, not even the learner, and six workload identities. In the
lab, the dev vault already holds a colleague's secrets, each short of the
team's standard in its own way (drawn at each set-up); exercise 1 brings them
up to it without changing a value.
The checks read the role assignments from the emulator and then *try* each
identity's access through the real SDK (``DefaultAzureCredential`` with the
identity's client id), so an answer counts when it works, not when it looks
right. A probe never changes a secret: reads, listing, and an update of a name
that does not exist (authorization comes first, so 404 means "allowed", 403
"refused").
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from ..emulator.clock import DAY
from . import Context, Exercise, Incorrect, LessonSpec

DEV, STAGING, PROD = "kv-sales-dev", "kv-sales-staging", "kv-sales-prod"
SECRETS = ("adls-storage-key", "sql-db-password", "resend-api-key")
ADMIN, OFFICER, USER, READER = (
    "Key Vault Administrator", "Key Vault Secrets Officer", "Key Vault Secrets User", "Key Vault Reader",
)
_RANK = {READER: 0, USER: 1, OFFICER: 2, ADMIN: 3}
_LETS = {
    READER: "see secret names and dates, not values",
    USER: "read secret values",
    OFFICER: "read, write and delete secrets",
    ADMIN: "do everything in the vault, keys and certificates included",
}
PROBE = "kvlab-access-probe"  # a name no exercise creates: updating it answers 404 when allowed
MAX_DAYS = 366
STANDARD_DAYS = 90  # the team's standard: rotated at least every 90 days (exercise 1)
OWNER = "data-platform"  # the colleague's team, on the secrets that carry an owner tag
EXTRAS = ("eventhub-listen-key", "sftp-partner-password", "powerbi-client-secret", "snowflake-password",
          "crm-api-key")  # one or two of these join the three in the colleague's dev vault
GAPS = ("content type", "env tag", "owner tag", "expiry")  # what a colleague's secret may fall short in


@dataclass(frozen=True)
class Workload:
    identity: str
    what: str  # who the identity stands for
    needs: str  # what it needs to do, as "it only needs to ..."
    role: str  # the least role that does it
    reads: tuple[str, ...] = ()  # secrets it must be able to read
    only: str | None = None  # the one secret its role must be scoped to


WORKLOADS = (
    Workload("id-databricks-sales", "Databricks (its AzureDatabricks application)", "read secrets", USER,
             ("adls-storage-key", "sql-db-password")),
    Workload("id-adf-sales", "the Data Factory", "read one secret, sql-db-password, for its linked service", USER,
             ("sql-db-password",), only="sql-db-password"),
    Workload("id-func-sales", "the Function app", "read one secret, resend-api-key", USER,
             ("resend-api-key",), only="resend-api-key"),
    Workload("id-devops-sales", "the DevOps pipeline", "write, update and delete secrets as it deploys them", OFFICER),
    Workload("id-security-team", "the security team", "administer the whole vault", ADMIN),
    Workload("id-auditor", "the auditor", "see which secrets exist and when they expire, never their values", READER),
)
DEV_WORKLOADS = WORKLOADS[:3]  # the dev pipelines' own identities: they never reach staging or prod


# -- helpers -------------------------------------------------------------------------------


def _where(vault: str, secret: str | None) -> str:
    return f"{vault}/secrets/{secret}" if secret else f"the whole vault {vault}"


@contextmanager
def _as(ctx: Context, identity: str, vault: str) -> Iterator:
    """A SecretClient for ``vault`` that signs in as the managed identity ``identity``."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    client_id = ctx.emulator.identity(identity)["clientId"]
    with DefaultAzureCredential(managed_identity_client_id=client_id) as credential, \
            SecretClient(ctx.lesson.vault_url(vault), credential) as client:
        yield client


def _allowed(call: Callable[[], object]) -> bool:
    """Whether the vault lets the request through: 403 is no; 404 (got past authorization) is yes."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    try:
        call()
    except ResourceNotFoundError:
        return True
    except HttpResponseError as exc:
        if exc.status_code == 403:
            return False
        raise
    return True


def _read(client, name: str) -> Callable[[], object]:
    return lambda: client.get_secret(name)


def _list(client) -> Callable[[], object]:
    return lambda: list(client.list_properties_of_secrets())


def _write(client) -> Callable[[], object]:
    return lambda: client.update_secret_properties(PROBE, enabled=True)


def _judge_secret(ctx: Context, name: str, vault: str, env: str, max_days: int = MAX_DAYS) -> dict:
    """The secret, after checking it exists with a content type, env/owner tags and a sensible expiry."""
    secret = ctx.secret(name, vault)
    if secret is None:
        raise Incorrect(f"{vault} has no secret named `{name}` yet. The name must be exactly {name}.")
    if not secret.get("contentType"):
        raise Incorrect(
            f"`{name}` in {vault} has no content type: set content_type (e.g. 'text/plain') so whoever "
            "reads it knows what it holds."
        )
    tags = {k.lower(): v for k, v in (secret.get("tags") or {}).items()}
    if (tags.get("env") or "").lower() != env:
        found = f"env={tags['env']}" if "env" in tags else "no env tag"
        raise Incorrect(f"`{name}` in {vault} has {found}: tag it env={env}, the environment of its vault.")
    if not tags.get("owner"):
        raise Incorrect(f"`{name}` in {vault} has no owner tag: tag it owner=<team> so people know whom to ask "
                        "before they rotate or delete it.")
    exp = secret.get("exp")
    if exp is None:
        raise Incorrect(
            f"`{name}` in {vault} has no expiry date: set expires_on (e.g. 90 days from now). Key Vault does not "
            "enforce it, but 30 days before it publishes SecretNearExpiry (Event Grid), so whoever subscribes "
            "rotates it in time."
        )
    days = (exp - time.time()) / DAY
    if days < 1:
        raise Incorrect(f"`{name}` in {vault} expires {'today' if days > 0 else 'in the past'}: set expires_on "
                        "to a date weeks ahead (e.g. 90 days from now).")
    if days >= max_days + 1:
        if max_days < MAX_DAYS:
            raise Incorrect(f"`{name}` in {vault} expires in {int(days)} days: the team's standard is at most "
                            f"{max_days}, when it is due for rotation.")
        raise Incorrect(f"`{name}` in {vault} expires in {int(days)} days: a secret that lives more than a year is "
                        "rarely rotated. Set expires_on to 90 days from now, when you plan to rotate it.")
    return secret


def _set_by(ctx: Context, vault: str, name: str) -> list[str]:
    """Who stored ``name`` in ``vault`` during this run (from the audit log)."""
    return [r["identity"] for r in ctx.audit(vault=vault, operationName="SecretSet", httpStatusCode=200)
            if (r.get("secretName") or "").lower() == name]


def _judge_roles(ctx: Context, w: Workload, vault: str) -> str:
    """Raise Incorrect unless ``w.identity`` holds exactly the least role, at the right scope."""
    held = ctx.roles_held(w.identity, vault)
    if not held:
        raise Incorrect(f"`{w.identity}` has no role on {vault} yet: {w.what} needs to {w.needs}, "
                        f"so it needs {w.role}.")
    for role, _secret in held:
        if role == w.role:
            continue
        if _RANK[role] > _RANK[w.role]:
            raise Incorrect(
                f"`{w.identity}` holds {role}, which lets it {_LETS[role]}: {w.what} only needs to {w.needs} "
                f"- least privilege means {w.role}."
            )
        raise Incorrect(
            f"`{w.identity}` holds {role}, which only lets it {_LETS[role]}: {w.what} needs to {w.needs}, "
            f"so it needs {w.role}."
        )
    for role, secret in held:
        if w.only:
            if secret is None:
                raise Incorrect(
                    f"`{w.identity}` holds {role} on the whole vault {vault}: {w.what} only needs {w.only}, so "
                    f"scope the role to that one secret: {vault}/secrets/{w.only}."
                )
            if secret.lower() != w.only:
                raise Incorrect(f"`{w.identity}` holds {role} on {_where(vault, secret)}: {w.what} needs "
                                f"{w.only}, and nothing else.")
        elif secret is not None and not w.reads:
            raise Incorrect(
                f"`{w.identity}` holds {role} only on {_where(vault, secret)}: {w.what} works with every secret in "
                f"the vault, so assign the role at the vault's scope ({vault})."
            )
    scopes = sorted({_where(vault, s) for _, s in held})
    return f"`{w.identity}` holds {w.role} on {' and '.join(scopes)}"


def _refused(identity: str, what: str, vault: str) -> Incorrect:
    return Incorrect(f"As `{identity}`, {what} in {vault} was refused (403 ForbiddenByRbac), though its job needs it.")


def _let_through(identity: str, what: str, vault: str, why: str) -> Incorrect:
    return Incorrect(f"As `{identity}`, {what} in {vault} was allowed: {why}.")


def _try_workload(ctx: Context, w: Workload, vault: str) -> str:
    """Access attempts as the workload's identity that prove it can do its job and no more."""
    with _as(ctx, w.identity, vault) as client:
        for name in w.reads:
            if not _allowed(_read(client, name)):
                raise _refused(w.identity, f"reading {name}", vault)
        if w.role in (USER, READER) and _allowed(_write(client)):
            raise _let_through(w.identity, "changing a secret", vault, "it should only read")
        if w.only:
            other = next(s for s in SECRETS if s != w.only)
            if _allowed(_read(client, other)):
                raise _let_through(w.identity, f"reading {other}", vault, f"it should reach {w.only} only")
            return f"as `{w.identity}`: reads {w.only}, refused {other} and writes (403)"
        if w.role == READER:
            if not _allowed(_list(client)):
                raise _refused(w.identity, "listing the secrets", vault)
            if _allowed(_read(client, SECRETS[0])):
                raise _let_through(w.identity, f"reading the value of {SECRETS[0]}", vault,
                                   "an auditor must not see values")
            return f"as `{w.identity}`: lists the secrets, but reading a value is refused (403)"
        if w.role in (OFFICER, ADMIN):
            if not (_allowed(_list(client)) and _allowed(_read(client, SECRETS[0]))):
                raise _refused(w.identity, "reading the secrets", vault)
            if not _allowed(_write(client)):
                raise _refused(w.identity, "changing a secret", vault)
            return f"as `{w.identity}`: lists, reads and may change secrets"
        return f"as `{w.identity}`: reads {', '.join(w.reads)}; writes are refused (403)"


# -- the checks ----------------------------------------------------------------------------


def _leave_the_colleagues_secrets(lesson) -> None:
    """The lab's dev vault: the three secrets and one or two more, each short of the standard in its own way.

    Written by the DevOps pipeline's identity, whose role is removed again: the
    lab starts with nobody holding a role on the vault.
    """
    import random
    import secrets
    from datetime import datetime, timedelta, timezone

    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    draw = random.SystemRandom()
    names = list(SECRETS) + draw.sample(EXTRAS, draw.randint(1, 2))
    now = datetime.now(timezone.utc)
    writer = WORKLOADS[3].identity
    lesson.lab.assign_role(OFFICER, writer, DEV)
    client_id = lesson.lab.identity(writer)["clientId"]
    try:
        with DefaultAzureCredential(managed_identity_client_id=client_id) as credential, \
                SecretClient(lesson.vault_url(DEV), credential) as client:
            for name in names:
                gaps = set(draw.sample(GAPS, draw.randint(1, 3)))
                tags = {} if "env tag" in gaps and draw.random() < 0.5 else \
                    {"env": draw.choice(("test", "prod")) if "env tag" in gaps else "dev"}
                if "owner tag" not in gaps:
                    tags["owner"] = OWNER
                expires = draw.choice((None, now + timedelta(days=draw.randint(400, 900)))) if "expiry" in gaps else \
                    now + timedelta(days=draw.randint(10, STANDARD_DAYS - 5))
                client.set_secret(name, secrets.token_urlsafe(32), tags=tags, expires_on=expires,
                                  content_type=None if "content type" in gaps else "text/plain")
    finally:
        lesson.lab.delete_role_assignment(role=OFFICER, assignee=writer, scope=DEV)


def _dev_names(ctx: Context) -> list[str]:
    """The names of the dev vault's live secrets (on a real vault, through the SDK's listing)."""
    return sorted(ctx.expiry_dates(DEV), key=str.lower)


def check_dev_standard(ctx: Context) -> list[str]:
    checked = []
    if ctx.lesson.lab is not None:
        held = ctx.roles_held("learner", DEV)
        roles = {role for role, _ in held}
        if not held:
            raise Incorrect(
                f"You hold no role on {DEV} yet, so the vault refuses you (403 ForbiddenByRbac): assign yourself "
                "the least role whose data actions include the one the 403's Action line names "
                "(secrets/update/action, to change a secret's properties)."
            )
        if ADMIN in roles:
            raise Incorrect(
                f"You hold {ADMIN} on {DEV}, which lets you {_LETS[ADMIN]}: fixing secrets' properties only needs "
                f"{OFFICER} - least privilege applies to you too."
            )
        if OFFICER not in roles:
            role = max(roles, key=lambda r: _RANK.get(r, -1))
            raise Incorrect(f"You hold {role} on {DEV}, which only lets you {_LETS[role]}: changing a secret's "
                            f"properties (secrets/update/action) needs {OFFICER}.")
        if (OFFICER, None) not in held:
            raise Incorrect(
                f"You hold {OFFICER} only on single secrets: hold it on the vault ({DEV}). Every secret in it is "
                "yours to look after, and a vault-wide role also covers the secrets stored later."
            )
        checked.append(f"you hold {OFFICER} on {DEV}")
    names = _dev_names(ctx)
    for name in SECRETS:
        if name not in {n.lower() for n in names}:
            raise Incorrect(f"{DEV} has no secret named `{name}`. The pipelines need it: run the set-up cell to get "
                            "the colleague's vault back, and fix the secrets in place rather than deleting any.")
    for name in names:
        _judge_secret(ctx, name, DEV, "dev", max_days=STANDARD_DAYS)
    checked.append(f"every secret in {DEV} ({', '.join(names)}) has a content type, env=dev and owner tags, "
                   f"and an expiry at most {STANDARD_DAYS} days away")
    if ctx.lesson.lab is not None:
        for name in names:
            writers = _set_by(ctx, DEV, name.lower())
            if writers:
                raise Incorrect(
                    f"`{name}` has a new version in this run (SecretSet by {writers[-1]}): set_secret stores a new "
                    "value, and a pipeline that pins a version would break. Change only the properties "
                    "(update_secret_properties). Run the set-up cell to start again from the colleague's vault."
                )
        checked.append("no value changed: the audit log shows no new version, only property updates")
    return checked


def check_least_privilege(ctx: Context) -> list[str]:
    _ = ctx.emulator  # Unavailable on a real vault: role assignments and managed identities exist only on the emulator here
    checked = [_judge_roles(ctx, w, DEV) for w in WORKLOADS]
    checked += [_try_workload(ctx, w, DEV) for w in WORKLOADS]
    return checked


def check_environments(ctx: Context) -> list[str]:
    _ = ctx.emulator  # Unavailable on a real vault
    for vault in (PROD, STAGING):
        for role, secret in ctx.roles_held("learner", vault):
            raise Incorrect(
                f"You hold {role} on {_where(vault, secret)}: in production no person holds a data role. "
                f"The DevOps pipeline's identity deploys the secrets; remove your assignment."
            )
    for w in DEV_WORKLOADS:
        for vault in (STAGING, PROD):
            for role, secret in ctx.roles_held(w.identity, vault):
                raise Incorrect(
                    f"`{w.identity}` holds {role} on {_where(vault, secret)}: it is the identity of the dev "
                    f"{w.what.removeprefix('the ')}, and dev workloads must never reach {vault.rsplit('-', 1)[1]} "
                    "secrets (that environment's workloads get identities of their own). Remove the assignment: "
                    f"revoke({role!r}, {w.identity!r}, {(f'{vault}/secrets/{secret}' if secret else vault)!r})."
                )
    deployer = Workload("id-devops-sales", "the DevOps pipeline", "deploy production's secrets", OFFICER)
    checked = [_judge_roles(ctx, deployer, PROD)]
    for name in SECRETS:
        stored = _judge_secret(ctx, name, PROD, "prod")
        writers = _set_by(ctx, PROD, name)
        if not writers:
            raise Incorrect(f"`{name}` exists in {PROD}, but it was not stored during this run of the lesson "
                            "(the audit log shows no SecretSet). Run your cell again.")
        if any(who != deployer.identity for who in writers):
            other = next(who for who in writers if who != deployer.identity)
            raise Incorrect(f"`{name}` in {PROD} was written by {other}: write production's secrets as "
                            f"`{deployer.identity}` (DefaultAzureCredential(managed_identity_client_id=...)).")
        dev = ctx.secret(name, DEV)
        if dev is not None and dev["value"] == stored["value"]:
            raise Incorrect(f"`{name}` has the same value in {PROD} as in {DEV}: generate a new value for each "
                            "environment, so a leak in dev never opens production.")
    checked.append(f"{PROD} holds {', '.join(SECRETS)} with env=prod tags and an expiry, values of its own, "
                   f"written by `{deployer.identity}` in this run")
    func = WORKLOADS[2]
    assert func.only is not None  # the function reads one secret
    with _as(ctx, func.identity, DEV) as dev_client:
        if not _allowed(_read(dev_client, func.only)):
            raise Incorrect(f"As `{func.identity}`, reading {func.only} in {DEV} was refused: give it its role "
                            "on dev first (exercise 2).")
    for w in DEV_WORKLOADS:
        with _as(ctx, w.identity, PROD) as prod_client:
            for name in w.reads:
                if _allowed(_read(prod_client, name)):
                    raise _let_through(w.identity, f"reading {name}", PROD, "dev workloads must never reach prod")
    checked.append(f"as `{func.identity}`: reads {func.only} in {DEV}, refused (403) in {PROD}")
    checked.append(f"as the other dev identities: every read in {PROD} refused (403); no dev identity holds a "
                   f"role in {STAGING} or {PROD}, the colleague's shortcut included")
    return checked


def _leave_a_shortcut(lesson) -> None:
    """A colleague's shortcut for exercise 3 to find and remove: a dev identity reading staging or production.

    Which identity, and where, is drawn at each set-up ("just to test the linked service").
    """
    import random

    draw = random.SystemRandom()
    lesson.lab.assign_role(USER, draw.choice(DEV_WORKLOADS).identity, draw.choice((STAGING, PROD)))


def _set_the_scene(lesson) -> None:
    """The lab's starting point; the guided notebook's (``demo``) is three empty vaults."""
    if not lesson.demo:
        _leave_the_colleagues_secrets(lesson)
        _leave_a_shortcut(lesson)


LESSON = LessonSpec(
    number="02",
    title="Creating a vault",
    vaults=(DEV, STAGING, PROD),
    identities=tuple(w.identity for w in WORKLOADS),
    # where the lesson's az lines look for them (az keyvault show, az identity show -g rg-sales-dev ...)
    groups=((DEV, "rg-sales-dev"), (STAGING, "rg-sales-staging"), (PROD, "rg-sales-prod"),
            *((w.identity, "rg-sales-dev") for w in WORKLOADS)),
    purge_protected=(PROD,),  # az keyvault create ... --enable-purge-protection true, as the lesson shows
    grants=(),  # a new RBAC vault grants nobody data access, not even its creator
    seed=_set_the_scene,
    exercises=(
        Exercise("ex1", "Give yourself a role and bring the dev vault up to standard", check_dev_standard, (
            "Looking needs one data action, changing properties another: the 403s' Action lines name them. Grant "
            "yourself the least role that has both (grant(...) does it here and prints the az command).",
            "list_properties_of_secrets() shows each secret's content_type, tags and expires_on, and no value. "
            "set_secret would store a new value; SecretClient has a method that changes only the properties.",
            "update_secret_properties(name, content_type=..., tags=..., expires_on=...) replaces the whole tag "
            "dict it is given: pass env and owner both, and keep a content type the secret already has.",
        )),
        Exercise("ex2", "Least privilege for six identities", check_least_privilege, (
            "Follow the RBAC table: pipelines that only read get Secrets User, the deploying pipeline Secrets "
            "Officer, the security team Administrator, the auditor Reader.",
            f"The Function app only needs resend-api-key: use the scope '{DEV}/secrets/resend-api-key'; "
            f"everyone else gets their role on '{DEV}'.",
        )),
        Exercise("ex3", "Keep production separate", check_environments, (
            f"Grant {OFFICER} on {PROD} to id-devops-sales (not to yourself), then store the three secrets "
            "as that identity, with new values and env=prod tags.",
            "To act as that identity, give DefaultAzureCredential its client id (managed_identity_client_id); "
            "lesson.lab.identity(name) tells you the id.",
            "lesson.lab.role_assignments(scope=vault) lists who holds what on a vault: a dev identity there is the "
            "colleague's shortcut. revoke() takes its role, its name and the scope after '/vaults/'.",
        )),
    ),
)
