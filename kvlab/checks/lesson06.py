"""Lesson 06 - Operating secrets - expiry dates, alerts and audit investigations.

(Rotation cycles with every consumer, and separate environments, are the lesson's next part: issue #12.)

The lab's vault `kv-ops-prod` serves three applications, each a managed identity with Key Vault Secrets
User on the secrets its job reads (JOBS). The set-up gives the secrets drawn expiry dates (exercise 1:
an inventory of what needs attention), then replays a week of the applications' reads on the emulator's
clock, in which one drawn identity, on a drawn day, also reads secrets outside its job (exercise 2: find
who, what and when in the audit log). What differs per run is staged (`lab.stage`), so an answer copied
from another run is wrong.
"""

from __future__ import annotations

import json
import random
import secrets
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

from . import SECRETS_USER, Context, Exercise, Incorrect, LessonSpec

VAULT = "kv-ops-prod"
JOBS = {  # identity -> the secrets its job reads
    "id-etl-nightly": ("sql-db-password", "adls-storage-key"),
    "id-report-api": ("stripe-api-key", "crm-api-token"),
    "id-ml-training": ("adls-storage-key", "ml-registry-token"),
}
UNUSED = ("legacy-ftp-password", "partner-sftp-key")  # held, read by no job
# the guided notebook's fixed expiry kinds (and two "next": see _set_the_scene)
DEMO_KINDS = dict(zip(("adls-storage-key", "legacy-ftp-password", "partner-sftp-key", "sql-db-password", "stripe-api-key"),
                      ("soon", "none", "expired", "later", "later")))
DEMO_DAYS = {"none": None, "soon": 24, "later": 150, "expired": -8, "next": 50}
SOON_DAYS = 30  # "expiring soon": within this many days, as Key Vault's SecretNearExpiry event counts it
WEEK = 7


def week_of_reads(lesson) -> list[dict]:
    """This run's audit records of the lab's vault, the replayed week included (for the learner's tools cell)."""
    return lesson.lab.audit(vault=VAULT, after=int(lesson.lab.stage("lesson06.audit-from") or 0))


def _all_secrets() -> list[str]:
    return sorted({s for names in JOBS.values() for s in names} | set(UNUSED))


def _now(lab) -> float:
    """The emulator's clock, in epoch seconds."""
    return datetime.fromisoformat(lab.clock()["now"].replace("Z", "+00:00")).timestamp()


def _set_the_scene(lesson) -> None:
    """Secrets with drawn expiries, each job's role per secret, and (in the lab) a week of reads with an incident."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
    from azure.keyvault.secrets import SecretClient

    lab, draw = lesson.lab, random.SystemRandom()
    # where this run's records begin: the week replayed below comes before the lesson's own audit position
    lab.stage("lesson06.audit-from", str(lab.audit_position()))
    now = datetime.now(timezone.utc)
    expiries = {}
    # two secrets come due next month: the inventory of today misses them, an alert a month on catches them
    upcoming = set(draw.sample(_all_secrets(), 2)) if not lesson.demo else {"crm-api-token", "ml-registry-token"}
    # the others: each kind at least once (so every rule of the inventory matters), the rest drawn, in drawn order
    others = [n for n in _all_secrets() if n not in upcoming]
    kinds = ["none", "soon", "later", "expired"]
    kinds += [draw.choice(kinds) for _ in range(len(others) - len(kinds))]
    draw.shuffle(kinds)
    drawn_kind = dict(zip(others, kinds))
    with DefaultAzureCredential() as credential, SecretClient(lesson.vault_url(VAULT), credential) as client:
        for name in _all_secrets():
            if name in upcoming:
                kind = "next"
            elif lesson.demo:  # the guided notebook's fixed set: one of each
                kind = DEMO_KINDS[name]
            else:
                kind = drawn_kind[name]
            if lesson.demo:  # fixed, so the guided notebook shows the same table every run
                days = DEMO_DAYS[kind] if kind == "none" else DEMO_DAYS[kind] + (2 if name == "ml-registry-token" else 0)
            else:
                days = {"none": None, "soon": draw.randint(3, SOON_DAYS - 2), "later": draw.randint(120, 300),
                        "expired": -draw.randint(1, 20), "next": draw.randint(45, 60)}[kind]
            expires = None if days is None else now + timedelta(days=days)
            client.set_secret(name, secrets.token_urlsafe(24), content_type="text/plain", expires_on=expires)
            expiries[name] = kind
    lab.stage("lesson06.expiries", json.dumps(expiries))
    for identity, names in JOBS.items():
        for name in names:
            lab.assign_role(SECRETS_USER, identity, f"{VAULT}/secrets/{name}")
    if lesson.demo:
        return
    # the incident: one identity, given the whole vault by mistake, reads outside its job on one day
    culprit = draw.choice(sorted(JOBS))
    lab.assign_role(SECRETS_USER, culprit, VAULT)
    extra = draw.sample([s for s in _all_secrets() if s not in JOBS[culprit]], draw.randint(2, 3))
    day = draw.randint(2, WEEK - 1)
    first_seen = None
    start = _now(lab)
    with ExitStack() as stack:  # one client per application, signed in once (tokens follow real time, not the clock)
        apps = {identity: stack.enter_context(SecretClient(lesson.vault_url(VAULT), stack.enter_context(
                    ManagedIdentityCredential(client_id=lab.identity(identity)["clientId"]))))
                for identity in JOBS}
        for today in range(WEEK):
            for identity, names in JOBS.items():
                for name in list(names) + (extra if identity == culprit and today == day else []):
                    apps[identity].get_secret(name)
                    if identity == culprit and name in extra and first_seen is None:
                        first_seen = _now(lab)
            lab.advance_clock(days=1)
    lab.stage("lesson06.incident", json.dumps({"identity": culprit, "exposed": sorted(extra),
                                               "first_seen": first_seen, "start": start}))


# -- exercise 1: what needs attention ------------------------------------------------------------------------


def check_inventory(ctx: Context) -> list[str]:
    expected = {n for n, kind in json.loads(ctx.emulator.stage("lesson06.expiries")).items()
                if kind not in ("later", "next")}
    at_risk = ctx.require("at_risk")
    names = set(at_risk.index if hasattr(at_risk, "index") and not isinstance(at_risk, (set, list)) else at_risk)
    names = {str(n) for n in names}
    missing, extra = expected - names, names - expected
    if missing:
        raise Incorrect(f"`at_risk` leaves out {', '.join(sorted(missing))}: a secret with no expiry, one already "
                        f"expired, or one expiring within {SOON_DAYS} days needs attention.")
    if extra:
        raise Incorrect(f"`at_risk` names {', '.join(sorted(extra))}, which expire more than {SOON_DAYS} days from now.")
    if ctx.audit(operationName="SecretGet"):
        raise Incorrect("The audit log shows secret values read: an inventory needs properties only "
                        "(list_properties_of_secrets).")
    return [f"`at_risk` holds the {len(expected)} secrets with no expiry, expired, or expiring within {SOON_DAYS} "
            "days, from their properties alone"]


# -- exercise 2: an alert before it is due -------------------------------------------------------------------

NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"


def check_alerts(ctx: Context) -> list[str]:
    lab = ctx.emulator
    subscriptions = [s for s in lab.event_subscriptions() if s["vault"].lower() == VAULT
                     and (s["eventTypes"] == "all" or NEAR_EXPIRY in s["eventTypes"])]
    if not subscriptions:
        raise Incorrect(f"No event subscription on {VAULT} delivers SecretNearExpiry: subscribe your webhook "
                        "(lesson.lab.create_event_subscription) before the clock moves.")
    subscription = subscriptions[-1]
    if subscription["failedDeliveries"]:
        raise Incorrect(f"Deliveries to {subscription['endpoint']} fail ({subscription['lastError']}): is your "
                        "webhook still running, and does its handler return without raising?")
    if lab.clock()["offsetDays"] < WEEK + 29:
        raise Incorrect("The clock has not moved a month past the set-up: advance it 30 days "
                        "(lesson.lab.advance_clock(days=30)) to see which secrets come due.")
    since = _iso_seconds(subscription["created"])
    expected = {e["subject"] for e in lab.events(VAULT)
                if e["eventType"] == NEAR_EXPIRY and _iso_seconds(e["eventTime"]) >= since}
    alerted = {str(n) for n in ctx.require("alerted", (set, list, tuple), "list of secret names")}
    if alerted != expected:
        raise Incorrect(f"`alerted` should hold the secrets whose SecretNearExpiry reached your webhook after you "
                        f"subscribed ({len(expected)} of them); it holds {len(alerted)}, of which "
                        f"{len(alerted & expected)} are right.")
    return [f"{subscription['name']} delivered SecretNearExpiry to your webhook, without a failed delivery",
            f"`alerted` holds the {len(expected)} secrets that came due during the month: "
            f"{', '.join(sorted(expected))}"]


def _iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- exercise 3: the incident ---------------------------------------------------------------------------------


def check_incident(ctx: Context) -> list[str]:
    staged = json.loads(ctx.emulator.stage("lesson06.incident"))
    who = ctx.require("compromised", str, "str (an identity's name)")
    if who != staged["identity"]:
        raise Incorrect(f"`compromised` is {who!r}, but its reads match its job. Compare each identity's reads "
                        "with the secrets its job needs.")
    exposed = {str(n) for n in ctx.require("exposed", (set, list, tuple), "set of secret names")}
    if exposed != set(staged["exposed"]):
        raise Incorrect(f"`exposed` should name every secret {who} read outside its job, and nothing else; it has "
                        f"{len(exposed)} names, of which {len(exposed & set(staged['exposed']))} are right.")
    first = ctx.require("first_seen")
    moment = first.timestamp() if hasattr(first, "timestamp") else datetime.fromisoformat(
        str(first).replace("Z", "+00:00")).timestamp()
    if abs(moment - staged["first_seen"]) > 60:
        raise Incorrect("`first_seen` is not the time of the first read outside its job (within a minute).")
    return [f"{who} read {', '.join(sorted(exposed))} outside its job", "and `first_seen` is when it started"]


LESSON = LessonSpec(
    number="06",
    title="Expiry dates, alerts and audit investigations",
    vaults=(VAULT,),
    identities=tuple(JOBS),
    grants=(("Key Vault Secrets Officer", "learner", VAULT),),
    seed=_set_the_scene,
    emulator_only="the week of reads it investigates is replayed on the emulator's clock",
    exercises=(
        Exercise("ex1", "What needs attention", check_inventory, (
            "list_properties_of_secrets() gives every secret's expires_on (None when there is none) without "
            "reading any value; compare it with `now`, the vault's clock.",
            "Three kinds need attention: expires_on is None, expires_on already passed, or expires_on within "
            "30 days of `now` (timedelta(days=30)).",
        )),
        Exercise("ex2", "An alert before it is due", check_alerts, (
            "Event Grid delivers only what happens after a subscription exists: subscribe first, move the clock after.",
            "The handler receives an EventGridEvent: event.subject is the secret's name. Webhook(handler).url is "
            "the endpoint to give lesson.lab.create_event_subscription, with the event type SecretNearExpiry.",
        )),
        Exercise("ex3", "Who read what, and when", check_incident, (
            "Keep the successful SecretGet records (httpStatusCode 200) of the three applications, then compare "
            "each record's secretName with JOBS[identity].",
            "The reads left after that comparison all belong to one identity: `exposed` is the set of their "
            "secret names and `first_seen` the earliest of their times.",
        )),
    ),
)
