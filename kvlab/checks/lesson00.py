"""Lesson 00 - Start here: your first secret, end to end.

A small lesson that walks the whole path (guided notebook, lab, solution,
checks) so a learner meets the workbook's habits before the real lessons.
"""

from __future__ import annotations

from . import Context, Exercise, Incorrect, LessonSpec

VAULT = "kv-start"
SECRET = "first-secret"


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
    exercises=(
        Exercise("ex1", "Create a SecretClient", check_client, (
            "A SecretClient needs two things: where the vault is, and how to sign in.",
            "The vault's URL is lesson.vault_url(). The credential that finds your sign-in by itself, here and "
            "in Azure, is azure.identity's DefaultAzureCredential.",
        )),
        Exercise("ex2", "Store your first secret", check_set, (
            "Never type a secret's value: let Python make one that nobody has seen.",
            "Python's secrets module makes unguessable values (token_urlsafe). client.set_secret takes the "
            "name, the value and a content_type keyword.",
        )),
        Exercise("ex3", "Read it back without printing it", check_read, (
            "client.get_secret(name) returns a KeyVaultSecret object, not the value itself.",
            "Keep the object's .value in `value` and show nothing: no print, and not as the cell's last line.",
        )),
    ),
)
