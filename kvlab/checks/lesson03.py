"""Lesson 03 - SecretClient and Managed Identity.

The lesson's story: an Azure Function app (`func-orders`) reads its secrets
from `kv-orders-dev` with a user-assigned managed identity that holds Key
Vault Secrets User: `id-func-orders` in the guided notebook, in the lab the
identity of one of two deployment slots, drawn at each set-up. The learner
holds Secrets Officer and plays the admin who seeds, rolls back and recovers.

The checks judge what the vault saw (its audit log: who read what, which
version, with which outcome), not only the learner's variables. Functions the
learner writes (the cache, ensure_secret, diagnose) are run: the cache with a
stand-in client and clock, the others on failures staged against the vault.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

from . import Context, Exercise, Incorrect, LessonSpec, Unavailable

VAULT = "kv-orders-dev"
FUNC_IDENTITY = "id-func-orders"  # the guided notebook's Function app identity
SLOTS = ("id-func-orders-blue", "id-func-orders-green")  # the lab's: two deployment slots, one of them live
DB_SECRET = "sql-db-password"
API_SECRET = "resend-api-key"
STORAGE_SECRET = "adls-storage-key"
PROBE_READS = 5


# -- what the vault saw ------------------------------------------------------------------


def _records(ctx: Context, operation: str, secret: str, status: int | None = 200) -> list[dict]:
    """This run's ``operation`` records on ``secret`` (names compare case-insensitively, as in Azure)."""
    return [
        r for r in ctx.audit(vault=VAULT, operationName=operation)
        if (r.get("secretName") or "").lower() == secret and (status is None or r.get("httpStatusCode") == status)
    ]


def _version_in_url(record: dict) -> str | None:
    """The version a request named in its URL (``/secrets/<name>/<version>``), or None for "the latest"."""
    parts = [p for p in urlsplit(record.get("requestUri") or "").path.split("/") if p]
    return parts[2].lower() if len(parts) >= 3 and parts[0] == "secrets" else None


def _version_values(ctx: Context, name: str) -> dict[str, str]:
    """Every version's value of ``name``, read behind the vault's back (leaves no audit record)."""
    from ..emulator.state import State

    with State(ctx.emulator.state_dir) as state:
        found = state.store.secret_state(VAULT, name)
        if found is None:
            return {}
        return {row.version.lower(): row.value for row in state.store.all_versions(VAULT, found[0])}


def _require_vault_client(ctx: Context, name: str):
    from azure.keyvault.secrets import SecretClient

    client = ctx.require(name, SecretClient, "SecretClient")
    expected = ctx.lesson.vault_url(VAULT)
    if client.vault_url.rstrip("/").lower() != expected.rstrip("/").lower():
        raise Incorrect(f"`{name}` talks to {client.vault_url}, but this lesson's vault is {expected}. "
                        "Pass vault_url=lesson.vault_url() when you create it.")
    return client


def _no_value_in_code(ctx: Context, value: str, what: str) -> None:
    if value and any(value in source for source in ctx.sources()):
        raise Incorrect(f"The value of {what} appears in your code. Read it from the vault instead of typing it.")


# -- exercise 1: read as the Function app's user-assigned identity ------------------------------


def _function_identity(ctx: Context) -> str:
    """The Function app's identity in this run: the one that holds Key Vault Secrets User on the vault.

    In the lab it is one of two deployment slots' identities, drawn at set-up,
    so the learner has to find it; in the guided notebook it is id-func-orders.
    """
    holders = {a["principalName"] for a in ctx.emulator.role_assignments(scope=VAULT)
               if a["roleDefinitionName"] == "Key Vault Secrets User"}
    return next((name for name in (*SLOTS, FUNC_IDENTITY) if name in holders), FUNC_IDENTITY)


def _grant_the_function(lesson) -> None:
    """The guided notebook's Function identity, or in the lab one slot's drawn at random, gets its read role."""
    import random

    assignee = FUNC_IDENTITY if lesson.demo else random.choice(SLOTS)
    lesson.lab.assign_role("Key Vault Secrets User", assignee, VAULT)


def _reader_now(ctx: Context, client) -> str | None:
    """Whom ``client`` signs in as now: one request through it, and the identity its audit record names (None if
    no request reached the vault). A right answer run earlier left records too; they do not speak for the client
    the namespace holds now. The request lists secret properties (SecretList): a read of the password would be
    counted by exercise 2's check as the Function's read of the restored version."""
    from azure.core.exceptions import HttpResponseError

    position = ctx.emulator.audit_position()
    try:
        next(iter(client.list_properties_of_secrets().by_page()), None)
    except HttpResponseError:  # a refusal is recorded too, with its caller
        pass
    found = [r for r in ctx.emulator.audit(vault=VAULT, after=position) if r["operationName"] == "SecretList"]
    return found[-1].get("identity") if found else None


def check_read_as_function(ctx: Context) -> list[str]:
    client = _require_vault_client(ctx, "func_client")
    func = _function_identity(ctx)
    reads = _records(ctx, "SecretGet", DB_SECRET)
    denied = _records(ctx, "SecretGet", DB_SECRET, status=403)
    idle = sorted({str(r.get("identity")) for r in denied if r.get("identity") not in (func, "learner")})
    if "db_password" not in ctx.namespace and idle:  # the read failed: say why before "not attempted"
        raise Incorrect(f"{idle[0]} was refused (403) reading `{DB_SECRET}`: it holds no role on the vault. "
                        "Find the identity that does (the vault's role assignments) and sign in as that one.")
    password = ctx.require("db_password", str, "str (the secret's value, `.value`)")
    if not reads:
        if idle:
            raise Incorrect(f"{idle[0]} was refused (403) reading `{DB_SECRET}`: it holds no role on the vault. "
                            "Find the identity that does (the vault's role assignments) and sign in as that one.")
        if any(r.get("identity") == func for r in denied):
            raise Incorrect(f"{func} was refused (403) reading `{DB_SECRET}`. "
                            "Its role comes with the lesson: run the set-up cell again.")
        raise Incorrect(f"The audit log shows no successful read of `{DB_SECRET}` in this run. "
                        f"Read it with func_client.get_secret('{DB_SECRET}').")
    by_function = [r for r in reads if r.get("identity") == func]
    if by_function and (now := _reader_now(ctx, client)) != func:
        raise Incorrect(f"`func_client` now reads `{DB_SECRET}` as {now or 'nobody (no request reached the vault)'}, "
                        f"not as the Function app's identity {func}: the reads as {func} came from an earlier run. "
                        "Create func_client's credential with that identity's client id "
                        "(DefaultAzureCredential(managed_identity_client_id=...)).")
    if not by_function:
        callers = sorted({str(r.get("identity")) for r in reads})
        raise Incorrect(
            f"The vault saw `{DB_SECRET}` read as {', '.join(callers)}, not as the Function app's identity "
            f"{func}. Create func_client's credential with that identity's client id "
            "(DefaultAzureCredential(managed_identity_client_id=...))."
        )
    values = _version_values(ctx, DB_SECRET)
    read_values = {values.get((r.get("secretVersion") or "").lower()) for r in by_function}
    if password not in read_values:
        if password in values.values():
            raise Incorrect(f"`db_password` holds a version of `{DB_SECRET}` that {func} never read. "
                            "Assign it from func_client.get_secret(...).value.")
        raise Incorrect(f"`db_password` is not the value stored in `{DB_SECRET}`. "
                        "Assign it from func_client.get_secret(...).value.")
    _no_value_in_code(ctx, password, f"`{DB_SECRET}`")
    return [
        f"`func_client` is a SecretClient for {ctx.lesson.vault_url(VAULT)}",
        f"the audit log shows `{DB_SECRET}` read as {func} ({len(by_function)} SecretGet)",
        "`db_password` holds the value it read, and the value appears nowhere in your code",
    ]


# -- exercise 2: roll back a bad rotation ----------------------------------------------------------

NIGHTLY = {"job": "nightly-rotation"}  # the tag of the bad version the lab's cell replays


def _version_rows(ctx: Context, name: str) -> list:
    """Every version of ``name``, oldest first, read behind the vault's back (leaves no audit record)."""
    from ..emulator.state import State

    with State(ctx.emulator.state_dir) as state:
        found = state.store.secret_state(VAULT, name)
        return state.store.all_versions(VAULT, found[0]) if found else []


def check_rollback(ctx: Context) -> list[str]:
    from azure.keyvault.secrets import KeyVaultSecret

    latest = ctx.require("latest", KeyVaultSecret, "KeyVaultSecret (what get_secret returns)")
    _ = ctx.emulator  # versions, tags and reads come from the emulator's records
    rows = _version_rows(ctx, DB_SECRET)
    bad_at = max((i for i, r in enumerate(rows) if (r.tags or {}).get("job") == NIGHTLY["job"]), default=None)
    if not bad_at:
        raise Incorrect("Run the cell above the exercise first: it replays the night's bad rotation.")
    bad, good, current = rows[bad_at], rows[bad_at - 1], rows[-1]
    if current.version == bad.version:
        if not bad.enabled:
            raise Incorrect(
                f"The bad version is disabled, and it is still the latest: every unpinned get_secret('{DB_SECRET}') "
                "now answers 403 SecretDisabled. Key Vault never falls back to an older version. Store the last "
                "good value again, as a new version."
            )
        raise Incorrect(f"Unpinned consumers still get the bad version ({bad.version}): store the last good value "
                        "(the version before it) again, as a new latest version.")
    if current.value != good.value:
        raise Incorrect(f"The latest version of `{DB_SECRET}` does not hold the last good value, the one of version "
                        f"{good.version} (the version before the night's). Read it by its version, then store it.")
    if not current.enabled:
        raise Incorrect(f"The latest version of `{DB_SECRET}` is disabled: unpinned reads answer 403 SecretDisabled.")
    if bad.enabled:
        raise Incorrect(f"The bad version {bad.version} is still enabled: a consumer pinned to it, or a restore of "
                        "it, would serve a password that works nowhere. Disable it with "
                        "update_secret_properties(name, version, enabled=False).")
    _no_value_in_code(ctx, good.value, f"`{DB_SECRET}`")
    reads = [r for r in _records(ctx, "SecretGet", DB_SECRET)
             if r.get("identity") == _function_identity(ctx)
             and (r.get("secretVersion") or "").lower() == current.version.lower()]
    if not reads:
        raise Incorrect(f"The Function app has not read the restored version yet: read `latest` as it does, "
                        f"func_client.get_secret('{DB_SECRET}').")
    if all(_version_in_url(r) for r in reads):
        raise Incorrect("`latest` was read by naming a version. The Function's code reads without one; that is "
                        "why the roll-back reached it with no code change. Read it that way.")
    if (latest.properties.version or "").lower() != current.version.lower() or latest.value != good.value:
        raise Incorrect(f"`latest` is version {latest.properties.version}, but the vault's latest `{DB_SECRET}` is "
                        f"{current.version}: read it again after your roll-back.")
    return [
        f"the night's version {bad.version[:8]}... is disabled",
        f"the last good value is the latest version again ({current.version[:8]}..., a new version: Key Vault "
        "has no 'make an old version current')",
        f"the Function app read it without naming a version (as {reads[-1].get('identity')}), with no code change",
    ]


@contextmanager
def _admin_and_stranger(ctx: Context) -> Iterator[tuple]:
    """Two clients of the lesson's vault for staging failures: the learner (Secrets Officer) and an identity
    with no role (STRANGER), both signed in through the real SDK as the learner's own code would be."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    url = ctx.lesson.vault_url(VAULT)
    stranger_id = ctx.emulator.identity(STRANGER)["clientId"]
    with DefaultAzureCredential() as mine, SecretClient(url, mine) as admin, \
            DefaultAzureCredential(managed_identity_client_id=stranger_id) as theirs, SecretClient(url, theirs) as other:
        yield admin, other


# -- exercise 3: a store that survives a soft-deleted name ------------------------------------------


def _stage_ensure(ctx: Context, ensure) -> list[str]:
    """Run the learner's ``ensure_secret`` on states staged for real, on names of its own; what held."""
    import secrets as random

    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    def call(client, name: str, value: str, state: str):
        try:
            return ensure(client, name, value)
        except HttpResponseError as exc:
            raise Incorrect(f"ensure_secret(client, name, value) raised {type(exc).__name__} ({exc.status_code} "
                            f"{_inner(exc)}) for {state}.") from None
        except Exception as exc:  # the learner's function: name what it did, in one line
            raise Incorrect(f"ensure_secret(...) raised {type(exc).__name__} for {state}: {exc}".strip()) from None

    def versions(client, name: str) -> list[str]:
        return [p.version for p in client.list_properties_of_secret_versions(name)]

    def value_of(client, name: str) -> str | None:
        try:
            return client.get_secret(name).value
        except ResourceNotFoundError:  # never stored, or still soft-deleted
            return None

    with _admin_and_stranger(ctx) as (admin, other):
        name = f"ensure-{random.token_hex(4)}"
        first, second, third = (random.token_urlsafe(16) for _ in range(3))
        call(admin, name, first, "a name not used yet")
        if value_of(admin, name) != first:
            raise Incorrect("After ensure_secret(client, name, value) on a new name, the secret does not hold `value`.")
        call(admin, name, second, "a live secret")
        if value_of(admin, name) != second or len(versions(admin, name)) != 2:
            raise Incorrect("On a live secret, ensure_secret should add `value` as a new version (set_secret does).")
        admin.begin_delete_secret(name).wait()
        call(admin, name, third, "a name held by a soft-deleted secret (409 ObjectIsDeletedButRecoverable)")
        now = value_of(admin, name)
        if now is None:
            raise Incorrect("After a soft delete, ensure_secret returned but the secret is still deleted: the 409 "
                            "was swallowed. Recover the secret, then store the value.")
        if now != third:
            raise Incorrect("After a soft delete, ensure_secret returned but the secret does not hold the new value.")
        held = versions(admin, name)
        if len(held) != 3:
            raise Incorrect("After a soft delete, ensure_secret stored the value but the secret's history is gone "
                            "(a purge?): recover the deleted secret, which brings back every version, then set.")
        for client, state in ((other, "an identity without a role (403 ForbiddenByRbac)"),
                              (admin, "a name Key Vault refuses (400 BadParameter)")):
            target = name if client is other else "not_valid!"
            try:
                ensure(client, target, random.token_urlsafe(16))
            except HttpResponseError:
                continue
            except Exception as exc:
                raise Incorrect(f"ensure_secret(...) raised {type(exc).__name__} for {state}, not the SDK's "
                                "error: let errors you do not handle reach the caller as they are.") from None
            raise Incorrect(f"For {state}, ensure_secret(...) returned as if it had worked: it swallowed the error. "
                            "Handle only the soft-deleted name; every other failure must reach the caller.")
    return [
        "ensure_secret was run on states staged for real: a new name, a live secret, a soft-deleted name "
        "(recovered with its versions, then set), a 403 and a 400 (both reached the caller)",
    ]


def _inner(exc) -> str:
    error = getattr(exc, "error", None)
    return ((getattr(error, "innererror", None) or {}).get("code") or getattr(error, "code", None) or "").strip()


def check_ensure(ctx: Context) -> list[str]:
    ensure = ctx.require("ensure_secret")
    if not callable(ensure):
        raise Incorrect(f"`ensure_secret` should be a function, but it is a {type(ensure).__name__}.")
    checked = _stage_ensure(ctx, ensure)
    after_delete = [r for r in ctx.audit(vault=VAULT) if (r.get("secretName") or "").lower() == API_SECRET]
    deletes = [i for i, r in enumerate(after_delete) if r["operationName"] == "SecretDelete" and r["httpStatusCode"] == 200]
    if not deletes:
        raise Incorrect(f"`{API_SECRET}` was not deleted in this run: run the cell above the exercise (someone's "
                        "mistake), then restore it with your ensure_secret.")
    later = after_delete[deletes[-1] + 1:]
    if not any(r["operationName"] == "SecretRecover" and r["httpStatusCode"] == 200 for r in later) \
            or ctx.secret(API_SECRET, VAULT) is None:
        raise Incorrect(f"`{API_SECRET}` is still deleted: use your ensure_secret to store it again "
                        "(with a new generated value).")
    checked.append(f"`{API_SECRET}` is back: recovered in this run, with its earlier versions, and set again")
    return checked


# -- exercise 4: a small cache with a TTL --------------------------------------------------------


class _ProbeClock:
    """A clock the check moves by hand, so the cache's TTL can be tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _ProbeClient:
    """Stands in for a SecretClient: counts reads, and every read returns a new value (as after a rotation)."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def get_secret(self, name: str, version: str | None = None, **kwargs):
        from azure.keyvault.secrets import KeyVaultSecret, SecretProperties

        self.reads.append(name)
        number = len(self.reads)
        return KeyVaultSecret(SecretProperties(vault_id=f"https://probe.vault.azure.net/secrets/{name}/{number:032x}"),
                              f"probe-{name}-{number}")


def _probe_cache(cache_class) -> list[str]:
    clock, client = _ProbeClock(), _ProbeClient()
    try:
        probe = cache_class(client, ttl_seconds=60, clock=clock)
    except TypeError as exc:
        raise Incorrect("SecretCache(client, ttl_seconds=60, clock=time.monotonic) should work: "
                        f"{str(exc).splitlines()[0]}") from None
    first = probe.get("a")
    if not isinstance(first, str):
        raise Incorrect(f"cache.get(name) returned a {type(first).__name__}; it should return the secret's value, "
                        "the str in client.get_secret(name).value.")
    if first != "probe-a-1":
        raise Incorrect("cache.get(name) should return the value client.get_secret(name).value holds.")
    for _ in range(PROBE_READS):
        probe.get("a")
    if len(client.reads) > 1:
        raise Incorrect(f"{PROBE_READS + 1} calls of get('a') within the TTL read the vault {len(client.reads)} "
                        "times. Keep each value with the time you read it and return it while the TTL lasts.")
    if probe.get("b") != "probe-b-2":
        raise Incorrect("get('b') after get('a') returned a's value: keep one entry per secret name.")
    clock.now += 59
    if probe.get("a") != "probe-a-1" or len(client.reads) != 2:
        raise Incorrect("59 s after the first read (the TTL is 60 s), get('a') read the vault again: "
                        "an entry is fresh while clock() - read_at < ttl_seconds.")
    clock.now += 2
    again = probe.get("a")
    if len(client.reads) != 3 or again != "probe-a-3":
        raise Incorrect(
            "61 s after the first read (the TTL is 60 s), get('a') still answered from the cache. An entry must "
            "expire after ttl_seconds, measured with the `clock` you were given, so a rotated secret reaches "
            "the app within one TTL."
        )
    return ["with a stand-in client and clock: one vault read per name within the TTL, a fresh read after it"]


def check_cache(ctx: Context) -> list[str]:
    cache_class = ctx.require("SecretCache", type, "class")
    cache = ctx.require("cache")
    if type(cache).__name__ != cache_class.__name__:
        raise Incorrect(f"`cache` should be a SecretCache instance (cache = SecretCache(func_client, "
                        f"ttl_seconds=...)), but it is a {type(cache).__name__}.")
    checked = _probe_cache(cache_class)
    if ctx.lesson.lab is None:
        raise Unavailable(checked[0] + " (passed). Counting your cache's real reads needs the emulator's "
                          "audit log; on a real vault, look at its logs instead (a diagnostic setting must send AuditEvent somewhere).")
    stored = ctx.secret(STORAGE_SECRET, VAULT)
    if stored is None:
        raise Incorrect(f"The vault has no live `{STORAGE_SECRET}`. Run the set-up cell again.")
    earlier = _records(ctx, "SecretGet", STORAGE_SECRET)
    if not earlier:
        raise Incorrect(f"The audit log shows no read of `{STORAGE_SECRET}` in this run: "
                        f"call cache.get('{STORAGE_SECRET}') several times.")
    position = ctx.emulator.audit_position()
    answers = [cache.get(STORAGE_SECRET) for _ in range(PROBE_READS)]
    if any(answer != stored["value"] for answer in answers):
        raise Incorrect(f"cache.get('{STORAGE_SECRET}') does not return the value stored in the vault.")
    fresh = [r for r in ctx.emulator.audit(vault=VAULT, after=position)
             if r.get("operationName") == "SecretGet" and (r.get("secretName") or "").lower() == STORAGE_SECRET]
    if len(fresh) > 1:
        raise Incorrect(f"{PROBE_READS} calls of cache.get('{STORAGE_SECRET}') in a row reached the vault "
                        f"{len(fresh)} times (audit: {len(fresh)} SecretGet). Within the TTL it should be at most once.")
    return checked + [
        f"your `cache`: {PROBE_READS} more calls of get('{STORAGE_SECRET}') reached the vault "
        f"{len(fresh)} time{'' if len(fresh) == 1 else 's'} (audit log)",
        f"in this run the vault served `{STORAGE_SECRET}` {len(earlier)} time{'' if len(earlier) == 1 else 's'} "
        f"(as {earlier[-1].get('identity')})",
    ]


# -- exercise 5: tell failures apart -------------------------------------------------------------

STRANGER = "id-report-job"  # an identity with no role on the vault: its reads are refused
DIAGNOSES = ("not-found", "no-access", "disabled", "deleted", "other")


def _staged_failures(ctx: Context) -> list[tuple[str, str, BaseException]]:
    """Real SDK exceptions from real requests: (what happened, the expected diagnosis, the exception).

    Staged on secrets of their own (``diagnose-*``, new names each time, so a
    check run twice meets the same failures), so no other exercise's records
    change, and raised by the SDK exactly as the learner's code meets them.
    """
    import secrets as random

    from azure.core.exceptions import HttpResponseError

    staged: list[tuple[str, str, BaseException]] = []

    def failure(what: str, expected: str, action) -> None:
        try:
            action()
        except HttpResponseError as exc:
            staged.append((what, expected, exc))
        else:
            raise RuntimeError(f"staging '{what}' did not fail")

    with _admin_and_stranger(ctx) as (admin, other):
        failure("a typo in the name (404 SecretNotFound)", "not-found", lambda: admin.get_secret("sql-db-pasword"))
        failure("an identity without a role (403 ForbiddenByRbac)", "no-access", lambda: other.get_secret(DB_SECRET))
        disabled, deleted = (f"diagnose-{kind}-{random.token_hex(4)}" for kind in ("disabled", "deleted"))
        admin.set_secret(disabled, random.token_urlsafe(16))
        admin.update_secret_properties(disabled, enabled=False)
        failure("a disabled latest version (403 SecretDisabled)", "disabled", lambda: admin.get_secret(disabled))
        admin.set_secret(deleted, random.token_urlsafe(16))
        admin.begin_delete_secret(deleted).wait()
        failure("setting a soft-deleted name (409 ObjectIsDeletedButRecoverable)", "deleted",
                lambda: admin.set_secret(deleted, random.token_urlsafe(16)))
        failure("a name Key Vault refuses (400 BadParameter)", "other", lambda: admin.set_secret("not_valid!", "x"))
    return staged


def check_diagnose(ctx: Context) -> list[str]:
    diagnose = ctx.require("diagnose")
    if not callable(diagnose):
        raise Incorrect(f"`diagnose` should be a function of one error, but it is a {type(diagnose).__name__}.")
    _ = ctx.emulator  # staging failures needs the emulator's identities
    import random

    staged = _staged_failures(ctx)
    asked = staged * 2  # each failure twice, in a new order every run: an answer must come from the error
    random.shuffle(asked)
    answers = []
    for what, expected, error in asked:
        try:
            answer = diagnose(error)
        except Exception as exc:  # the learner's function failed on a real error: say which, in one line
            raise Incorrect(f"diagnose(...) raised {type(exc).__name__} for {what}; it should return "
                            f"{expected!r}.") from None
        if answer != expected:
            raise Incorrect(f"For {what}, diagnose(...) returned {answer!r}; it should be {expected!r}. "
                            "Tell errors apart by their type or by status_code and error.code, and the inner "
                            "code where two share a status.")
        answers.append(f"{what} -> {expected!r}")
    return ["diagnose(...) was run on five real failures staged against the vault, each twice, in a random order:",
            *[f"{what} -> {expected!r}" for what, expected, _ in staged]]


LESSON = LessonSpec(
    number="03",
    title="SecretClient and Managed Identity",
    vaults=(VAULT,),
    identities=(FUNC_IDENTITY, *SLOTS, STRANGER),
    groups=tuple((name, "rg-orders-dev") for name in (VAULT, FUNC_IDENTITY, *SLOTS, STRANGER)),  # az ... -g
    grants=(
        ("Key Vault Secrets Officer", "learner", VAULT),
    ),
    seed=_grant_the_function,
    exercises=(
        Exercise("ex1", "Read a secret as the live slot's identity", check_read_as_function, (
            "Only one of the two slot identities holds a role on kv-orders-dev: the vault's role assignments "
            "say which (lesson.lab.role_assignments(scope=...), or az role assignment list --scope ...).",
            "DefaultAzureCredential(managed_identity_client_id=...) signs in as the user-assigned identity whose "
            f"client id you pass; read `{DB_SECRET}` through that client, not your own.",
        )),
        Exercise("ex2", "Roll back a bad rotation", check_rollback, (
            "list_properties_of_secret_versions(name) shows every version with its tags; the night's carries "
            "job=nightly-rotation. The good value is in the version before it.",
            "Disabling the bad version alone leaves the latest disabled: get_secret answers 403, with no fall-back. "
            "Read the good version by its id, store its value again, then disable the bad one.",
        )),
        Exercise("ex3", "A store that survives a soft-deleted name", check_ensure, (
            "Try set_secret first. Only one failure is yours to handle: the 409 whose inner code is "
            "ObjectIsDeletedButRecoverable; let every other exception go on.",
            "For that one: begin_recover_deleted_secret(name).wait() brings every version back; then set the "
            "value again. Never purge: it cannot be undone.",
        )),
        Exercise("ex4", "A small cache with a TTL", check_cache, (
            "Keep a dict name -> (value, read_at). In get(name), return the value while "
            "self.clock() - read_at < self.ttl_seconds; otherwise read the vault and store the new pair.",
            "Use the `clock` argument (default time.monotonic) for every time you take, never time.time() "
            "or datetime directly: then a test can move the clock.",
        )),
        Exercise("ex5", "Tell failures apart", check_diagnose, (
            "Each failure is an azure.core.exceptions error with a status_code and error.code (the service's "
            "code); a missing secret even has its own type, ResourceNotFoundError.",
            "Two failures answer 403: error.innererror['code'] tells ForbiddenByRbac from SecretDisabled. "
            "Anything you do not recognise is 'other'.",
        )),
    ),
)
