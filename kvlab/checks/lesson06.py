"""Lesson 06 - Operating secrets - expiry dates, alerts, rotation, audit investigations and environments.

The lab's vault `kv-ops-prod` serves three applications, each a managed identity with Key Vault Secrets
User on the secrets its job reads (JOBS). The set-up gives the secrets drawn expiry dates (exercise 1: an
inventory of what needs attention; exercise 2: a SecretNearExpiry handler hears of what comes due next month),
then replays a week of the applications' reads on the emulator's clock, in which one drawn identity, on a
drawn day, also reads secrets outside its job (exercise 3: find who, what and when in the audit log). It also
sets up the orders database, its secret in `kv-orders-prod` and three consumers (exercise 4: a rotation every
90 days, run over two periods, that none of them notices). Each application also has a dev deployment, its
own identity (`<name>-dev`) reading the same secret names in `kv-ops-dev` (exercise 5: one `load_settings()`
for both environments, configured by the app setting KEY_VAULT_URL, and proof that dev cannot reach prod);
among the role assignments of both vaults, a few grant more than a job needs (exercise 6: a least-privilege
review). What differs per run is staged (`lab.stage`), so an answer copied from another run is wrong.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import secrets
import shutil
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .. import paths
from ..emulator.clock import DAY
from . import SECRETS_USER, Context, Exercise, Incorrect, LessonSpec

VAULT = "kv-ops-prod"
JOBS = {  # identity -> the secrets its job reads
    "id-etl-nightly": ("sql-db-password", "adls-storage-key"),
    "id-report-api": ("stripe-api-key", "crm-api-token"),
    "id-ml-training": ("adls-storage-key", "ml-registry-token"),
}
UNUSED = ("legacy-ftp-password", "partner-sftp-key")  # held, read by no job


def dev_twin(identity: str) -> str:
    """The identity of a prod application's dev deployment (exercises 5 and 6)."""
    return f"{identity}-dev"


APPLICATIONS = (*JOBS, *(dev_twin(a) for a in JOBS))  # every deployment's identity, prod and dev
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

    from ..connection import own_transport

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
    with DefaultAzureCredential(transport=own_transport()) as credential, \
            SecretClient(lesson.vault_url(VAULT), credential, transport=own_transport()) as client:
        for name in _all_secrets():
            if name in upcoming:
                kind = "next"
            elif lesson.demo:  # the guided notebook's fixed set: one of each
                kind = DEMO_KINDS[name]
            else:
                kind = drawn_kind[name]
            if lesson.demo:  # fixed, so the guided notebook shows the same table every run
                days = DEMO_DAYS[kind]
                if days is not None and name == "ml-registry-token":
                    days += 2
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
                    ManagedIdentityCredential(client_id=lab.identity(identity)["clientId"], transport=own_transport())),
                    transport=own_transport()))
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


def _seed(lesson) -> None:
    _set_the_scene(lesson)
    _orders_scene(lesson)
    _environments_scene(lesson)


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
    if [r for r in ctx.audit(operationName="SecretGet", vault=VAULT) if r["identity"] not in APPLICATIONS]:
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
    if lab.clock()["offsetDays"] < WEEK + 29:
        raise Incorrect("The clock has not moved a month past the set-up: advance it 30 days "
                        "(lesson.lab.advance_clock(days=30)) to see which secrets come due.")
    since = _iso_seconds(subscription["created"])
    rotation = lab.stage("lesson06.rotation-run")  # exercise 4's months are not this exercise's
    until = json.loads(rotation)["start"]["clock"] if rotation else float("inf")
    near = [(e["subject"], _iso_seconds(e["eventTime"])) for e in lab.events(VAULT) if e["eventType"] == NEAR_EXPIRY]
    expected = {name for name, when in near if since <= when <= until}
    later = {name for name, when in near if when > until}  # heard while exercise 4's clock ran: not wrong
    alerted = {str(n) for n in ctx.require("alerted", (set, list, tuple), "list of secret names")}
    right = expected <= alerted and alerted - expected <= later
    if not right and subscription["failedDeliveries"]:
        raise Incorrect(f"Deliveries to {subscription['endpoint']} fail ({subscription['lastError']}): is your "
                        "webhook still running, and does its handler return without raising?")
    if not right:
        raise Incorrect(f"`alerted` should hold the secrets whose SecretNearExpiry reached your webhook after you "
                        f"subscribed ({len(expected)} of them); it holds {len(alerted)}, of which "
                        f"{len(alerted & expected)} {'is' if len(alerted & expected) == 1 else 'are'} right.")
    return [f"{subscription['name']} delivered SecretNearExpiry to your webhook, without a failed delivery",
            f"`alerted` holds the {len(expected)} secrets that came due during the month: "
            f"{', '.join(sorted(expected))}"]


def _several(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


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
        right = len(exposed & set(staged["exposed"]))
        raise Incorrect(f"`exposed` should name every secret {who} read outside its job, and nothing else; it has "
                        f"{_several(len(exposed), 'name')}, of which {right} {'is' if right == 1 else 'are'} right.")
    first = ctx.require("first_seen")
    moment = first.timestamp() if hasattr(first, "timestamp") else datetime.fromisoformat(
        str(first).replace("Z", "+00:00")).timestamp()
    if abs(moment - staged["first_seen"]) > 60:
        raise Incorrect("`first_seen` is not the time of the first read outside its job (within a minute).")
    return [f"{who} read {', '.join(sorted(exposed))} outside its job", "and `first_seen` is when it started"]


# -- exercise 4: rotation every 90 days, and no consumer breaks ----------------------------------------------
#
# The orders database (the PostgreSQL of `kvlab.db`) has two logins with the same rights. The secret
# `orders-db-connection` in kv-orders-prod holds a whole connection string for one of them, tagged with its
# login. Three consumers use it: the orders API (a SecretClient behind a 7-day cache), the factory's linked
# service (its connectionString a Key Vault reference) and a Databricks job (a Key Vault-backed scope).
# Rotating the login the secret does not point at, then pointing the secret at it, leaves every cached copy
# working until the next rotation: the overlap.

ORDERS_VAULT, ORDERS_SECRET, ORDERS_DB = "kv-orders-prod", "orders-db-connection", "orders"
LOGINS = ("orders_app_a", "orders_app_b")
ORDERS_API, ORDERS_FACTORY, ORDERS_JOB = "id-orders-api", "adf-orders-prod", "etl@kvlab.local"
ORDERS_SCOPE, ORDERS_FOLDER, ORDERS_LS = "orders", "adf-orders", "LS_OrdersDb"
CACHE_DAYS, VALIDITY_DAYS, RUN_DAYS = 7, 90, 180  # the API's refresh; the article's rotation period; two of them
RUNAWAY = 3  # more new versions than this in one simulated day: a rotation that triggers itself
RETRY_GRACE = 10  # seconds a failing delivery gets for its retries before the consumers' run stops
NEAR_EXPIRY_SECONDS = SOON_DAYS * DAY  # SecretNearExpiry comes this long before the expiry
CONSUMERS = ("orders-api", "adf-" + ORDERS_LS, "databricks-job")


def connection_string(login: str, password: str, state_dir=None) -> str:
    """The orders database's connection string for ``login``, in ADF's form (``host=..;port=..;...``)."""
    from .. import db

    port = db.address(state_dir)["port"]
    return f"host=127.0.0.1;port={port};database={ORDERS_DB};uid={login};password={password};sslmode=prefer"


def _days(delta_seconds: float) -> float:
    return delta_seconds / DAY


def _orders_scene(lesson) -> None:
    """Two logins with the same rights, the secret pointing at the first, and its three consumers."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient
    from databricks.sdk.service.workspace import AclPermission

    from .. import db
    from ..connection import own_transport
    from .lesson04 import DATABRICKS, _clients, keyvault_scope
    from .lesson05 import KEY_VAULT_LS, linked_service_json, reference, write_linked_service

    lab, draw = lesson.lab, random.SystemRandom()
    lab.stage("lesson06.rotation-run", "")  # an earlier set-up's run is not this one's
    db.start(lab.state_dir)
    passwords = {login: secrets.token_urlsafe(24) for login in LOGINS}
    for login in LOGINS:
        db.ensure_login(login, passwords[login], ORDERS_DB, lab.state_dir)
    with db.connect_admin(lab.state_dir, ORDERS_DB) as admin:
        admin.execute("DROP TABLE IF EXISTS orders")
        admin.execute("CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric(10, 2))")
        admin.execute("INSERT INTO orders VALUES (1, 'Contoso', 120.00), (2, 'Fabrikam', 89.50)")
        for login in LOGINS:
            admin.execute(f"GRANT SELECT ON orders TO {login}")
    # the first rotation comes on a drawn day after exercise 2's month (the guided notebook's is fixed)
    days = 75 if lesson.demo else draw.randint(70, 100)
    expires = datetime.fromtimestamp(_now(lab), timezone.utc) + timedelta(days=days)
    with DefaultAzureCredential(transport=own_transport()) as credential, \
            SecretClient(lesson.vault_url(ORDERS_VAULT), credential, transport=own_transport()) as client:
        client.set_secret(ORDERS_SECRET, connection_string(LOGINS[0], passwords[LOGINS[0]], lab.state_dir),
                          content_type="text/plain", expires_on=expires, tags={"login": LOGINS[0]})
    for reader in (ORDERS_API, ORDERS_FACTORY, DATABRICKS):
        lab.assign_role(SECRETS_USER, reader, f"{ORDERS_VAULT}/secrets/{ORDERS_SECRET}")
    where = Path.cwd() / ORDERS_FOLDER
    shutil.rmtree(where, ignore_errors=True)
    (where / "linkedService").mkdir(parents=True)
    write_linked_service(where, linked_service_json(KEY_VAULT_LS, "AzureKeyVault",
                                                    {"baseUrl": lesson.vault_url(ORDERS_VAULT)}))
    write_linked_service(where, linked_service_json(ORDERS_LS, "AzurePostgreSql",
                                                    {"connectionString": reference(ORDERS_SECRET)}))
    lab.delete_workspace_scope(ORDERS_SCOPE)
    lab.ensure_workspace_user(ORDERS_JOB)
    keyvault_scope(lesson, ORDERS_SCOPE, ORDERS_VAULT)
    _clients(lesson).secrets.put_acl(ORDERS_SCOPE, ORDERS_JOB, AclPermission.READ)


class Consumers:
    """The orders database's three consumers, run once a day on the emulator's clock: ``run(days)``.

    Each day: the clock moves a day, the emulator delivers the events that came due (your rotation, if you
    subscribed one, runs then), and each consumer connects to the database with the credential it has. What
    each saw is staged for the check (never a value); PostgreSQL's own log is the second witness.
    """

    def __init__(self, lesson):
        self.lesson = lesson
        self._cached: str | None = None  # the API's copy of the connection string
        self._refresh_day = 0  # the API refreshes its copy on the days d with d % CACHE_DAYS == this

    def _api(self, client, day: int) -> str:
        if self._cached is None or day % CACHE_DAYS == self._refresh_day:
            self._cached = client.get_secret(ORDERS_SECRET).value
        return self._cached

    def _first_rotation_day(self) -> int | None:
        """The run day on which the current version's SecretNearExpiry comes (behind the vault's back)."""
        lab = self.lesson.lab
        current = lab.inspect_secret(ORDERS_VAULT, ORDERS_SECRET)
        if current is None or current["exp"] is None:
            return None
        return max(0, math.ceil(_days(current["exp"] - NEAR_EXPIRY_SECONDS - _now(lab))))

    def _cannot_start(self) -> str | None:
        """Why no rotation can come in this run, whatever rotate(event) does, or None. Event Grid sends a version's
        SecretNearExpiry once, to the subscriptions there are then: a current version without expiry, or already
        past its alert (an earlier attempt set it so, or the clock moved months on), never brings one to a
        subscription made now. Said at once, rather than after 180 quiet days."""
        lab = self.lesson.lab
        current = lab.inspect_secret(ORDERS_VAULT, ORDERS_SECRET)
        afresh = "Run the set-up cell again (kvlab.start_lesson) for a fresh secret, then this cell."
        if current is None:
            return None  # the consumers' failures will say it
        if current["exp"] is None:
            return (f"did not start: the current version of {ORDERS_SECRET} has no expiry, so no SecretNearExpiry "
                    f"will come and nothing would rotate. {afresh}")
        alert = current["exp"] - NEAR_EXPIRY_SECONDS
        if alert <= _now(lab):
            when = datetime.fromtimestamp(alert, timezone.utc).strftime("%Y-%m-%d")
            return (f"did not start: the current version of {ORDERS_SECRET} came near its expiry on {when} (the "
                    "vault's clock), before this run; its SecretNearExpiry went out then, and a subscription made "
                    f"now never receives it, so nothing would rotate. {afresh}")
        return None

    @staticmethod
    def _sign_in(text: str) -> str:
        """Connect with a connection string; the login PostgreSQL accepted."""
        import psycopg

        from ..adf import connection_settings

        with psycopg.connect(**connection_settings(text, ORDERS_SECRET), connect_timeout=10) as connection:
            return (connection.execute("SELECT current_user FROM orders LIMIT 1").fetchone() or ("",))[0]

    def _deliveries(self, before: int) -> tuple[list[dict], int]:
        """The day's deliveries: your rotation, if subscribed, runs here. A failed delivery gets its retries (1, 2,
        5 s) before the day goes on, as Event Grid retries a Function while the clock, for once, stands still; a
        rotation that runs away (more than RUNAWAY new versions, each due at once) is not waited for. Returns the
        subscriptions still waiting after RETRY_GRACE s, and the secret's number of versions."""
        import time

        lab = self.lesson.lab
        deadline = time.monotonic() + RETRY_GRACE
        while True:
            waiting = lab.wait_delivered(vault=ORDERS_VAULT, timeout=min(0.1, max(deadline - time.monotonic(), 0)),
                                         through_retries=True)
            versions = len(lab.inspect_versions(ORDERS_VAULT, ORDERS_SECRET))
            if not waiting or versions - before > RUNAWAY or time.monotonic() >= deadline:
                return waiting, versions

    def run(self, days: int = RUN_DAYS):
        import pandas as pd
        import psycopg
        from azure.core.exceptions import HttpResponseError
        from azure.identity import ManagedIdentityCredential
        from azure.keyvault.secrets import SecretClient
        from databricks.sdk.errors import DatabricksError

        from .. import db
        from ..adf import AdfError, ResolveError, connect
        from .lesson04 import _clients

        lesson, lab = self.lesson, self.lesson.lab
        log = db.folder(lab.state_dir) / "postgres.log"
        start = {"clock": _now(lab), "versions": len(lab.inspect_versions(ORDERS_VAULT, ORDERS_SECRET)),
                 "log": log.stat().st_size if log.exists() else 0}
        service = Path.cwd() / ORDERS_FOLDER / "linkedService" / f"{ORDERS_LS}.json"
        job = _clients(lesson, ORDERS_JOB).dbutils.secrets
        # A weekly refresh outlives a rotation on six days of seven: the API's refresh day is not the first
        # rotation's, so a copy cached before it is still in use after it, every run.
        first = self._first_rotation_day()
        self._refresh_day = next(d for d in range(CACHE_DAYS) if first is None or (first - d) % CACHE_DAYS)
        rows, stopped = [], self._cannot_start()
        with ManagedIdentityCredential(client_id=lab.identity(ORDERS_API)["clientId"]) as credential, \
                SecretClient(lesson.vault_url(ORDERS_VAULT), credential) as api:
            self._cached = None
            self._api(api, 0)  # the API is up before the run starts
            versions = int(start["versions"])
            for day in range(1, (days if stopped is None else 0) + 1):
                lab.advance_clock(days=1)
                before = versions
                waiting, versions = self._deliveries(before)
                if versions - before > RUNAWAY:  # each new version came due at once and rotated again
                    for subscription in lab.event_subscriptions():
                        if subscription["vault"].lower() == ORDERS_VAULT:
                            lab.delete_event_subscription(subscription["name"])
                    stopped = (f"stopped on day {day}: your rotation set {versions - before} versions in one day, "
                               "each already near its expiry; its subscription is deleted so it stops. Is "
                               "expires_on 90 days after the vault's now (event.event_time)?")
                    break
                if waiting:
                    late = waiting[0]
                    why = (f"keep failing ({late['lastError']}): your rotate(event) raised, or its webhook is closed. "
                           "A Webhook keeps what its handler raised in `.errors`." if late["failedDeliveries"] else
                           f"are still being handled after {RETRY_GRACE} s: is your rotate(event) waiting on something?")
                    stopped = f"stopped on day {day}: deliveries to {late['endpoint']} {why}"
                    break
                for consumer, attempt in zip(CONSUMERS, (
                        lambda: self._sign_in(self._api(api, day)),  # noqa: B023 (called within this day)
                        lambda: connect(service, ORDERS_FACTORY, lab=lab)["user"],
                        lambda: self._sign_in(job.get(ORDERS_SCOPE, ORDERS_SECRET)))):
                    try:
                        rows.append({"day": day, "consumer": consumer, "login": attempt(), "error": None})
                    except (psycopg.OperationalError, ResolveError, AdfError, DatabricksError, HttpResponseError) as exc:
                        text = str(exc).strip()
                        reason = text[text.find("FATAL:"):] if "FATAL:" in text else text
                        rows.append({"day": day, "consumer": consumer, "login": None,
                                     "error": reason.splitlines()[0][:200]})
        lab.stage("lesson06.rotation-run", json.dumps({"start": start, "days": days, "rows": rows,
                                                        "stopped": stopped}))
        if stopped:
            print(f"The consumers' run {stopped}")
        report = pd.DataFrame(rows, columns=["day", "consumer", "login", "error"])
        summary = report.assign(failed=report.error.notna()).groupby("consumer").agg(
            connections=("day", "size"), failed=("failed", "sum"), logins=("login", lambda s: sorted(set(s.dropna()))))
        summary = summary.reindex(list(CONSUMERS))  # a run that did not start has no rows: zeros, not NaN
        return summary.assign(connections=summary.connections.fillna(0).astype(int),
                              failed=summary.failed.fillna(0).astype(int),
                              logins=[v if isinstance(v, list) else [] for v in summary.logins])


def _pg_auth_failures(lab, offset: int) -> list[str]:
    from .. import db

    try:
        with open(db.folder(lab.state_dir) / "postgres.log", "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return [line.split("FATAL:", 1)[1].strip() for line in text.splitlines()
            if "FATAL:" in line and "authentication failed" in line]


def check_rotation(ctx: Context) -> list[str]:
    from ..adf import connection_settings

    ctx.require("rotate")
    lab = ctx.emulator
    staged = lab.stage("lesson06.rotation-run")
    run = json.loads(staged) if staged else None
    if run and run.get("stopped"):
        raise Incorrect(f"The consumers' run {run['stopped']}")
    subscriptions = [s for s in lab.event_subscriptions() if s["vault"].lower() == ORDERS_VAULT
                     and (s["eventTypes"] == "all" or NEAR_EXPIRY in s["eventTypes"])]
    if not subscriptions:
        raise Incorrect(f"No event subscription on {ORDERS_VAULT} delivers SecretNearExpiry: subscribe a webhook "
                        "whose handler calls rotate(event), then run the consumers.")
    if not staged:
        raise Incorrect(f"The consumers have not run: `report = Consumers(lesson).run(days={RUN_DAYS})` moves the "
                        "clock day by day and connects as each of them.")
    assert run is not None  # staged, so read above
    failing = next((s for s in subscriptions if s["failedDeliveries"]), None)
    if failing:
        raise Incorrect(f"Deliveries to {failing['endpoint']} fail ({failing['lastError']}): your rotate(event) "
                        "raised, or its webhook is closed. A Webhook keeps what its handler raised in `.errors`.")
    # A mistake the run showed is named first, however long the run was; then whether it was long enough
    failed = [r for r in run["rows"] if r["error"]]
    if failed:
        first = failed[0]
        raise Incorrect(f"On day {first['day']}, {first['consumer']} could not connect ({first['error']}); "
                        f"{len(failed)} of {len(run['rows'])} connections failed. Rotate the login the secret does "
                        "not point at, then point the secret at it: a copy cached before the rotation keeps working.")
    refused = _pg_auth_failures(lab, run["start"]["log"])
    if refused:
        raise Incorrect(f"PostgreSQL logged {len(refused)} failed sign-in(s) during the run: {refused[0]}.")
    new = lab.inspect_versions(ORDERS_VAULT, ORDERS_SECRET)[run["start"]["versions"]:]
    for v in new:
        when = datetime.fromtimestamp(v["created"], timezone.utc).strftime("%Y-%m-%d")
        if v["exp"] is None:
            raise Incorrect(f"The version set on {when} has no expiry: without one, SecretNearExpiry never comes "
                            "and the rotation stops.")
        valid = _days(v["exp"] - v["created"])
        if not VALIDITY_DAYS - 1 <= valid <= VALIDITY_DAYS + 1:
            raise Incorrect(f"The version set on {when} (the vault's clock) expires {valid:.0f} days later, not "
                            f"{VALIDITY_DAYS}: take the time from the event (event.event_time) or the vault's clock, "
                            "not the computer's.")
        login = connection_settings(v["value"], ORDERS_SECRET).get("user")
        if (v["tags"] or {}).get("login") != login:
            raise Incorrect(f"The version set on {when} holds {login}'s credential, but its `login` tag says "
                            f"{(v['tags'] or {}).get('login')!r}: keep the tag true.")
    if run["days"] < RUN_DAYS:
        raise Incorrect(f"The consumers ran for {run['days']} days: run {RUN_DAYS} (two {VALIDITY_DAYS}-day periods).")
    if len(new) < 2:
        raise Incorrect(f"{len(new)} new version(s) of {ORDERS_SECRET} in {run['days']} days: each rotation sets a "
                        "new version with a new expiry, whose SecretNearExpiry brings the next rotation.")
    seen = sorted({r["login"] for r in run["rows"]})
    return [f"{len(new)} rotations in {run['days']} days, each version valid {VALIDITY_DAYS} days, "
            f"alternating {' and '.join(seen)}",
            f"all {len(run['rows'])} connections of the three consumers worked, and PostgreSQL logged no failed "
            "sign-in"]


# -- exercise 5: the same code in dev and in prod ----------------------------------------------------------------
#
# Each application runs twice: in prod as its identity, reading kv-ops-prod, and in dev as its twin `<name>-dev`,
# reading the same secret names in kv-ops-dev. What tells a deployment which vault to read is an app setting, as
# on App Service or Functions; which identity it signs in as is its host's (a user-assigned identity: the
# platform sets AZURE_CLIENT_ID). `deployed` plays the host for the report API.

DEV_VAULT = "kv-ops-dev"
ENVIRONMENTS = {"dev": DEV_VAULT, "prod": VAULT}
APP = "id-report-api"  # the application exercise 5 deploys
APP_SETTING = "KEY_VAULT_URL"  # the app setting that names the deployment's vault


def _environment_of(identity: str) -> str:
    return "dev" if identity.endswith("-dev") else "prod"


@contextmanager
def deployed(lesson, environment: str, key_vault_url: str | None = None):
    """Code inside runs as the report API deployed to ``environment`` ("dev" or "prod").

    The host's managed identity (AZURE_CLIENT_ID, which DefaultAzureCredential picks up) and the deployment's
    app setting KEY_VAULT_URL are in ``os.environ`` until the block ends. ``key_vault_url`` misconfigures the
    deployment: another vault's URL than its environment's.
    """
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment is 'dev' or 'prod', not {environment!r}")
    identity = APP if environment == "prod" else dev_twin(APP)
    settings = {"AZURE_CLIENT_ID": lesson.lab.identity(identity)["clientId"],
                APP_SETTING: key_vault_url or lesson.vault_url(ENVIRONMENTS[environment])}
    with paths.environment_kept(settings):
        os.environ.update(settings)
        yield


def _environments_scene(lesson) -> None:
    """kv-ops-dev with dev values of every job's secrets, each dev twin reading its job's; in the lab, the
    assignments a least-privilege review should find (exercise 6)."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    from ..connection import own_transport

    lab = lesson.lab
    expires = datetime.fromtimestamp(_now(lab), timezone.utc) + timedelta(days=VALIDITY_DAYS)
    with DefaultAzureCredential(transport=own_transport()) as credential, \
            SecretClient(lesson.vault_url(DEV_VAULT), credential, transport=own_transport()) as client:
        for name in _all_secrets():
            client.set_secret(name, secrets.token_urlsafe(24), content_type="text/plain", expires_on=expires,
                              tags={"env": "dev"})
    for identity, names in JOBS.items():
        for name in names:
            lab.assign_role(SECRETS_USER, dev_twin(identity), f"{DEV_VAULT}/secrets/{name}")
    if not lesson.demo:
        _plant_review_findings(lesson)


# -- exercise 6: a least-privilege review -------------------------------------------------------------------------

OTHER_ENVIRONMENT, TOO_STRONG, TOO_WIDE, NOT_NEEDED = FINDINGS = (
    "other environment", "role too strong", "scope too wide", "not needed")
SECRETS_OFFICER = "Key Vault Secrets Officer"


def _plant_review_findings(lesson) -> None:
    """One assignment of each kind, drawn, besides exercise 3's (the incident's whole-vault role); staged by id."""
    lab, draw = lesson.lab, random.SystemRandom()
    apps = sorted(JOBS)
    incident = json.loads(lab.stage("lesson06.incident"))["identity"]
    truth = {a["id"]: TOO_WIDE for a in lab.role_assignments(incident, VAULT) if "/secrets/" not in a["scope"]}

    def plant(kind: str, role: str, identity: str, vault: str, secret: str | None = None) -> None:
        truth[lab.assign_role(role, identity, f"{vault}/secrets/{secret}" if secret else vault)["id"]] = kind

    def deployment(environment: str, app: str) -> str:
        return app if environment == "prod" else dev_twin(app)

    # a deployment reading its job's secret in the other environment's vault (not the report API's dev
    # deployment: exercise 5 proves that one is refused in prod)
    app = draw.choice([a for a in apps if a != APP])
    environment = draw.choice(sorted(ENVIRONMENTS))
    other = "dev" if environment == "prod" else "prod"
    plant(OTHER_ENVIRONMENT, SECRETS_USER, deployment(environment, app), ENVIRONMENTS[other], draw.choice(JOBS[app]))
    # a reader given a writer's role on a secret of its job
    app, environment = draw.choice(apps), draw.choice(sorted(ENVIRONMENTS))
    plant(TOO_STRONG, SECRETS_OFFICER, deployment(environment, app), ENVIRONMENTS[environment], draw.choice(JOBS[app]))
    # a secret its job does not read, in its own environment (not the incident's identity in prod: it has them all)
    app = draw.choice([a for a in apps if a != incident])
    environment = draw.choice(sorted(ENVIRONMENTS))
    plant(NOT_NEEDED, SECRETS_USER, deployment(environment, app), ENVIRONMENTS[environment],
          draw.choice([s for s in _all_secrets() if s not in JOBS[app]]))
    # sometimes a second whole-vault role, in dev
    if draw.random() < 0.5:
        plant(TOO_WIDE, SECRETS_USER, dev_twin(draw.choice(apps)), DEV_VAULT)
    lab.stage("lesson06.review", json.dumps(truth))


def review_scope(lesson) -> list[dict]:
    """The applications' role assignments on kv-ops-dev and kv-ops-prod (what the review looks at)."""
    return [a for vault in (DEV_VAULT, VAULT) for a in lesson.lab.role_assignments(scope=vault)
            if a["principalName"] in APPLICATIONS]


def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def check_environments(ctx: Context) -> list[str]:
    from azure.core.exceptions import HttpResponseError

    lab, lesson = ctx.emulator, ctx.lesson
    load_settings = ctx.require("load_settings")
    if not callable(load_settings):
        raise Incorrect(f"`load_settings` should be a function, but it is a {type(load_settings).__name__}.")
    refusal = ctx.require("refusal")
    dev = lab.identity(dev_twin(APP))
    if not isinstance(refusal, HttpResponseError):
        raise Incorrect(f"`refusal` should be the HttpResponseError that load_settings raised as the dev deployment "
                        f"pointed at {VAULT}; it is a {type(refusal).__name__}.")
    if refusal.status_code != 403 or dev["principalId"] not in str(refusal) or VAULT not in str(refusal):
        what = (f"a {refusal.status_code} {refusal.reason}" if refusal.status_code else
                "an error with no status code, so no vault answered it")
        raise Incorrect(f"`refusal` is not the vault's 403 to {dev_twin(APP)} in {VAULT} (it is {what}): run "
                        f"load_settings in `deployed(lesson, 'dev', key_vault_url=...)` with {VAULT}'s URL.")
    for literal in (VAULT, DEV_VAULT, ".vault."):
        if literal in _source(load_settings):
            raise Incorrect(f"load_settings names {literal!r} in its code: the vault is configuration, read it from "
                            f"the app setting {APP_SETTING} (os.environ).")
    needed = JOBS[APP]
    for environment, vault in ENVIRONMENTS.items():
        identity = APP if environment == "prod" else dev_twin(APP)
        position = lab.audit_position()
        try:
            with deployed(lesson, environment):
                settings = load_settings()
        except Exception as exc:  # the learner's function: say what it raised, in one line
            raise Incorrect(f"As the {environment} deployment, load_settings() raised {type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
        reads = [r for r in lab.audit(after=position) if r["operationName"] == "SecretGet"]
        callers = {r["identity"] for r in reads}
        if callers - {identity}:
            raise Incorrect(f"As the {environment} deployment, load_settings read as {', '.join(sorted(callers))}, "
                            f"not the host's identity {identity}: create DefaultAzureCredential() inside it, where "
                            "the host's AZURE_CLIENT_ID is set.")
        if not isinstance(settings, dict) or set(settings) != set(needed):
            raise Incorrect(f"load_settings() should return a dict of the report API's secrets ({', '.join(needed)})"
                            f" by name; as the {environment} deployment it returned "
                            f"{type(settings).__name__ if not isinstance(settings, dict) else sorted(settings)}.")
        wrong = [n for n in needed if settings[n] != (lab.inspect_secret(vault, n) or {}).get("value")]
        if wrong:
            raise Incorrect(f"As the {environment} deployment, load_settings() returned a value of {wrong[0]} that "
                            f"is not {vault}'s: each deployment reads its own environment's vault.")
    position = lab.audit_position()
    try:
        with deployed(lesson, "dev", key_vault_url=lesson.vault_url(VAULT)):
            load_settings()
    except HttpResponseError as exc:
        if exc.status_code != 403:
            raise Incorrect(f"As the dev deployment pointed at {VAULT}, load_settings() raised {exc.status_code} "
                            f"{exc.reason}, not the vault's 403.") from None
    else:
        allowed = [r for r in lab.audit(after=position) if r["identity"] == dev_twin(APP)
                   and r["operationName"] == "SecretGet" and r["httpStatusCode"] == 200]
        if allowed:
            raise Incorrect(f"{dev_twin(APP)} read {allowed[0]['secretName']} in {VAULT}: a dev identity must hold "
                            "no role in production.")
        raise Incorrect(f"As the dev deployment pointed at {VAULT}, load_settings() returned instead of raising: a "
                        "swallowed 403 hides a misconfigured deployment until something downstream breaks.")
    return [f"load_settings() reads {DEV_VAULT} as {dev_twin(APP)} and {VAULT} as {APP}, configured only by "
            f"{APP_SETTING}",
            f"pointed at {VAULT}, the dev deployment is refused (403), and load_settings lets the refusal through"]


def _rows(findings) -> list[dict]:
    if hasattr(findings, "to_dict") and hasattr(findings, "columns"):  # a DataFrame; the id may be its index
        frame = findings if "id" in findings.columns else findings.reset_index()
        return frame.to_dict("records")
    if isinstance(findings, dict):  # {assignment id: finding}
        return [{"id": k, "finding": v} for k, v in findings.items()]
    if isinstance(findings, (list, tuple)) and all(isinstance(r, dict) for r in findings):
        return list(findings)
    raise Incorrect(f"`findings` should be a DataFrame (or a list of dicts) with an `id` and a `finding` per "
                    f"assignment; it is a {type(findings).__name__}.")


def _describe(assignment: dict) -> str:
    scope = assignment["scope"].split("/vaults/", 1)[-1]
    return f"{assignment['principalName']}'s {assignment['roleDefinitionName']} on {scope}"


def check_review(ctx: Context) -> list[str]:
    lab = ctx.emulator
    truth = json.loads(lab.stage("lesson06.review"))
    rows = _rows(ctx.require("findings"))
    if rows and not all("id" in r and "finding" in r for r in rows):
        raise Incorrect("Each row of `findings` needs the assignment's `id` (as role_assignments gives it) and its "
                        "`finding`.")
    flagged = {str(r["id"]).rsplit("/", 1)[-1].lower(): r["finding"] for r in rows
               if isinstance(r["finding"], str) and r["finding"]}
    unknown = sorted({f for f in flagged.values() if f not in FINDINGS})
    if unknown:
        raise Incorrect(f"{unknown[0]!r} is not a finding: use one of {', '.join(repr(f) for f in FINDINGS)}.")
    staged = {i.rsplit("/", 1)[-1].lower(): kind for i, kind in truth.items()}
    known = {a["name"].lower(): a for a in review_scope(ctx.lesson)}
    strangers = [i for i in flagged if i not in staged and i not in known]
    if strangers:
        raise Incorrect(f"`findings` names {_several(len(strangers), 'assignment id')} that this run's vaults do not "
                        "hold: take the ids from lesson.lab.role_assignments(scope=...), after this run's set-up.")
    extra = [i for i in flagged if i not in staged]
    if extra:
        raise Incorrect(f"`findings` flags {_describe(known[extra[0]])}, which its job needs: the right role, scope "
                        "and environment.")
    missing = [i for i in staged if i not in flagged]
    if missing:
        kinds = sorted({staged[i] for i in missing})
        raise Incorrect(f"`findings` leaves out {_several(len(missing), 'assignment')} that grant more than a job "
                        f"needs (kinds: {', '.join(kinds)}).")
    wrong = [i for i in staged if flagged[i] != staged[i]]
    if wrong:
        what = _describe(known[wrong[0]]) if wrong[0] in known else "an assignment you have since deleted"
        raise Incorrect(f"`findings` calls {what} {flagged[wrong[0]]!r}: compare its role, its scope and its "
                        "environment with the job's again.")
    counts = {kind: sum(1 for k in staged.values() if k == kind) for kind in FINDINGS}
    return [f"`findings` names the {len(staged)} assignments that grant more than a job needs, and nothing else",
            "each with its kind: " + ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)]


LESSON = LessonSpec(
    number="06",
    title="Expiry dates, alerts, rotation, audit investigations and environments",
    vaults=(VAULT, ORDERS_VAULT, DEV_VAULT),
    identities=(*APPLICATIONS, ORDERS_API, ORDERS_FACTORY),
    grants=tuple(("Key Vault Secrets Officer", "learner", v) for v in (VAULT, ORDERS_VAULT, DEV_VAULT)),
    seed=_seed,
    emulator_only=("its week of reads, month of alerts and 180 days of rotations run on the emulator's clock. The "
                   "Azure equivalents, with the roles each needs, are the az commands in guided lesson 06 (an Event "
                   "Grid subscription, a diagnostic setting to Log Analytics and its KQL, a rotation Function, "
                   "app settings per environment, az role assignment list)"),
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
        Exercise("ex4", "Rotation every 90 days, and nothing breaks", check_rotation, (
            "Read the secret's properties (client.get_secret(...).properties.tags['login']) to know which login is "
            "in use; rotate the other one. Its old password is no longer in any consumer's hands.",
            "In order: a new password for the standby login at the database (kvlab.db.set_password), then a new "
            "version pointing at it (connection_string(login, password)) with expires_on 90 days after "
            "event.event_time and the tag login set.",
        )),
        Exercise("ex5", "The same code in dev and in prod", check_environments, (
            "Inside load_settings: SecretClient(os.environ['KEY_VAULT_URL'], DefaultAzureCredential()), then one "
            "get_secret per name in JOBS['id-report-api']. Create the credential inside the function: the host's "
            "identity (AZURE_CLIENT_ID) is set only while `deployed(...)` runs.",
            "For `refusal`: try the dev deployment with key_vault_url=lesson.vault_url('kv-ops-prod') and keep the "
            "HttpResponseError the vault raised: catch it around the `with` block and assign it to `refusal`. Do not "
            "catch it inside load_settings.",
        )),
        Exercise("ex6", "A least-privilege review", check_review, (
            "One DataFrame: pd.DataFrame(review_scope(lesson)), then for each row compare principalName, "
            "roleDefinitionName and scope with JOBS (a '-dev' identity is the dev deployment of the same job).",
            "Four questions per row: is the vault the other environment's; is the role above Key Vault Secrets User; "
            "is the scope without '/secrets/'; is the secret outside the job? Keep only the rows with a finding.",
        )),
    ),
)
