"""Lesson 00 - Start here: your first secret, end to end.

A small lesson that walks the whole path (guided notebook, lab, solution,
checks) so a learner meets the workbook's habits before the real lessons.

The lab's vault is not quite empty: a colleague used it before (the `seed`),
and left a few secrets whose names and expiry dates are drawn at each set-up.
Exercise 1 takes stock of them from their properties alone, so its answer
differs per run and no value needs reading.
"""

from __future__ import annotations

import time

from ..emulator.clock import DAY
from . import Context, Exercise, Incorrect, LessonSpec

VAULT = "kv-start"
SECRET = "first-secret"
LEFT_BEHIND = (  # what a colleague may have left in the vault (a few are drawn per set-up)
    "crm-api-key", "smtp-relay-password", "ftp-partner-password", "warehouse-password", "metrics-token",
    "legacy-ssh-passphrase", "powerbi-client-secret", "eventhub-listen-key", "sftp-landing-password", "erp-api-token",
)
EXPIRY_DAYS = 90  # exercise 2's expiry, from now


def _vault(ctx: Context) -> str:
    return ctx.lesson.vault_url(VAULT)


def _audit(ctx: Context, operation: str) -> list[dict]:
    """This run's successful ``operation`` records on SECRET (names are case-insensitive, as in Azure)."""
    return [r for r in ctx.audit(vault=VAULT, operationName=operation, httpStatusCode=200)
            if (r.get("secretName") or "").lower() == SECRET]


def check_client(ctx: Context) -> list[str]:
    """Judged by what the client is and does, however it was written (aliases, module imports)."""
    from azure.keyvault.secrets import SecretClient

    client = ctx.require("client", SecretClient, "SecretClient")
    if client.vault_url.rstrip("/").lower() != _vault(ctx).rstrip("/").lower():
        raise Incorrect(
            f"`client` talks to {client.vault_url}, but this lesson's vault is {_vault(ctx)}. "
            "Pass vault_url=lesson.vault_url() when you create it."
        )
    checked = [f"`client` is a SecretClient for {_vault(ctx)}"]
    caller = ctx.caller_of(client)
    if caller is not None and caller != "learner":
        raise Incorrect(
            f"`client` signs in as {caller}, not as you. Give it credential=DefaultAzureCredential(): "
            "it finds your sign-in by itself, here and in Azure, so no password or client secret goes into code."
        )
    if caller is not None:
        checked.append("it signs in as you (the audit log names the caller)")
    return checked


def _left_behind(lesson) -> None:
    """The lab's vault starts with a colleague's secrets: some expired, some not, some without an expiry date.

    Not in the guided notebook (``demo``), which shows a new vault as empty.
    """
    import random
    import secrets
    from datetime import datetime, timedelta, timezone

    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    if lesson.demo:
        return
    draw = random.SystemRandom()
    names = draw.sample(LEFT_BEHIND, draw.randint(4, 6))
    now = datetime.now(timezone.utc)
    expiries: list[datetime | None] = [now - timedelta(days=draw.randint(2, 400)) for _ in range(2)]  # two expired,
    expiries += [now + timedelta(days=draw.randint(5, 200)), None]  # one has not, one never will
    expiries += [draw.choice((now - timedelta(days=draw.randint(2, 400)), now + timedelta(days=draw.randint(5, 200)),
                              None)) for _ in names[4:]]
    draw.shuffle(expiries)
    with DefaultAzureCredential() as credential, SecretClient(lesson.vault_url(VAULT), credential) as client:
        for name, expires in zip(names, expiries):
            client.set_secret(name, secrets.token_urlsafe(24), content_type="text/plain", expires_on=expires)


def _expired(ctx: Context) -> dict[str, float]:
    """The vault's live secrets whose expiry date has passed ({name: days ago}), your first-secret aside."""
    now, found = time.time(), {}
    for name, exp in ctx.expiry_dates(VAULT).items():
        if exp is not None and exp < now and name.lower() != SECRET:
            found[name] = (now - exp) / DAY
    return found


def check_stock(ctx: Context) -> list[str]:
    """The client, then `stale`: the expired secrets' names, taken from properties with no value read."""
    checked = check_client(ctx)
    stale = ctx.require("stale", (list, tuple, set, frozenset), "list of secret names")
    if not all(isinstance(name, str) for name in stale):
        odd = next(name for name in stale if not isinstance(name, str))
        raise Incorrect(f"`stale` should hold secret names (str), but it holds a {type(odd).__name__}: "
                        "keep each secret's .name.")
    expired = _expired(ctx)
    dates = ctx.expiry_dates(VAULT)
    given = {name.lower() for name in stale}
    known = {name.lower(): name for name in dates}
    for name in sorted(given - set(known)):
        raise Incorrect(f"`stale` names {name}, but the vault holds no secret of that name. Take the names from "
                        "the vault (client.list_properties_of_secrets()), not from memory.")
    for name in sorted(given - {n.lower() for n in expired}):
        exp = dates[known[name]]
        when = "has no expiry date: it never expires" if exp is None else \
            f"does not expire for another {max(1, round((exp - time.time()) / DAY))} days"
        raise Incorrect(f"`stale` names {known[name]}, which {when}. Compare each secret's expires_on with "
                        "datetime.now(timezone.utc), and keep only those in the past.")
    missed = sorted(n for n in expired if n.lower() not in given)
    if missed:
        raise Incorrect(f"`stale` misses {len(missed)} of the {len(expired)} secrets whose expiry date has passed. "
                        "Look at every secret's properties.expires_on, not only the first few.")
    checked.append(f"`stale` names exactly the {len(expired)} secrets whose expiry date has passed "
                   f"({', '.join(sorted(expired))})")
    if ctx.lesson.lab is not None:
        read = sorted({str(r.get("secretName")) for r in ctx.audit(vault=VAULT, operationName="SecretGet")
                       if (r.get("secretName") or "").lower() in known and (r.get("secretName") or "").lower() != SECRET})
        if read:
            raise Incorrect(f"The audit log shows a read of {read[0]}'s value (SecretGet), which taking stock does not "
                            "need: list_properties_of_secrets() gives every property but the value. Read no value "
                            "you do not need, then run the set-up cell and try again.")
        checked.append("no value was read to find them (the audit log shows no SecretGet)")
    return checked


def check_set(ctx: Context) -> list[str]:
    secret = ctx.secret(SECRET)
    if secret is None:
        raise Incorrect(f"The vault has no secret named `{SECRET}` yet. Check the name: it must be exactly {SECRET}.")
    checked = [f"the vault holds `{SECRET}`"]
    if ctx.lesson.lab is not None:
        sets = _audit(ctx, "SecretSet")
        if not sets:
            raise Incorrect(f"`{SECRET}` exists, but it was not set during this run of the lesson. Run your set_secret cell.")
        checked.append(f"this run set it (audit: {len(sets)} SecretSet by {sets[-1]['identity']})")
    if secret["contentType"] != "text/plain":
        raise Incorrect("Give the secret content_type='text/plain', so whoever reads it knows what it holds.")
    checked.append("its content type is text/plain")
    checked.append(ctx.require_generated(secret["value"], f"`{SECRET}`"))
    exp = secret.get("exp")
    if exp is None:
        raise Incorrect(f"`{SECRET}` has no expiry date: give set_secret expires_on, {EXPIRY_DAYS} days from now, "
                        "so the next person who takes stock knows when it is due for rotation.")
    days = (exp - time.time()) / DAY
    if not EXPIRY_DAYS - 5 <= days <= EXPIRY_DAYS + 5:
        raise Incorrect(f"`{SECRET}` expires {'in ' + str(round(days)) + ' days' if days > 0 else 'in the past'}, "
                        f"not {EXPIRY_DAYS} days from now: expires_on=datetime.now(timezone.utc) + "
                        f"timedelta(days={EXPIRY_DAYS}).")
    checked.append(f"it expires in {round(days)} days")
    return checked


def check_read(ctx: Context) -> list[str]:
    value = ctx.require("value", str, "str (the secret's value)")
    secret = ctx.secret(SECRET)
    if secret is None or value != secret["value"]:
        raise Incorrect(f"`value` is not the value stored in `{SECRET}`. Read it with client.get_secret(...).value.")
    checked = [f"`value` holds the current value of `{SECRET}`"]
    if ctx.lesson.lab is not None:
        reads = _audit(ctx, "SecretGet")
        if not reads:
            raise Incorrect("`value` was not read from the vault in this run: the audit log shows no SecretGet.")
        checked.append(f"the audit log shows your read (as {reads[-1]['identity']})")
    if any(value in source for source in ctx.sources()):
        raise Incorrect("The secret's value appears in your code. Read it from the vault instead of typing it.")
    checked.append("the value appears nowhere in your code")
    if ctx.lesson.watch is not None and ctx.lesson.lab is not None:
        checked.append("nor in any output of this run")
    return checked


LESSON = LessonSpec(
    number="00",
    title="Start here: your first secret",
    vaults=(VAULT,),
    grants=(("Key Vault Secrets Officer", "learner", VAULT),),
    seed=_left_behind,
    exercises=(
        Exercise("ex1", "Create a SecretClient and take stock", check_stock, (
            "A SecretClient needs two things: where the vault is (lesson.vault_url()), and how to sign in "
            "(azure.identity's DefaultAzureCredential finds your sign-in by itself, here and in Azure).",
            "client.list_properties_of_secrets() yields one SecretProperties per secret, with .name and "
            ".expires_on (an aware datetime, or None when the secret never expires) and no value.",
            "Keep the names whose expires_on is not None and earlier than datetime.now(timezone.utc).",
        )),
        Exercise("ex2", "Store your first secret", check_set, (
            "Never type a secret's value: let Python make one that nobody has seen.",
            "Python's secrets module makes unguessable values (token_urlsafe). client.set_secret takes the "
            "name, the value and the keywords content_type and expires_on.",
            f"expires_on is an aware datetime: datetime.now(timezone.utc) + timedelta(days={EXPIRY_DAYS}).",
        )),
        Exercise("ex3", "Read it back without printing it", check_read, (
            "client.get_secret(name) returns a KeyVaultSecret object, not the value itself.",
            "Keep the object's .value in `value` and show nothing: no print, and not as the cell's last line.",
        )),
    ),
)
