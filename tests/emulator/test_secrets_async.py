"""The secrets data plane through the real async ``SecretClient`` (``azure.keyvault.secrets.aio``).

The async client runs on aiohttp, which has its own TLS and connection code, so
the main paths are repeated here: set/get, paging, versions, delete, recover,
purge, backup/restore and the 404/403/409 errors.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient

from runners import officer_vault

FAKE_VALUE = "not-a-real-password"  # pragma: allowlist secret
HEX32 = re.compile(r"^[0-9a-f]{32}$")
POLL_TIMEOUT = 30  # seconds; a poller that never finishes fails the test instead of hanging it
NOT_FOUND = (
    "A secret with (name/id) {} was not found in this key vault. If you recently deleted this "
    "secret you may be able to recover it using the correct recovery command. For help resolving "
    "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)


def error_body(exc: HttpResponseError) -> dict:
    return exc.response.json()["error"]


def inner_code(exc: HttpResponseError) -> str | None:
    return error_body(exc).get("innererror", {}).get("code")


async def bounded(awaitable):
    """Await a polling operation (delete, recover) within bounds."""
    return await asyncio.wait_for(awaitable, POLL_TIMEOUT)


async def collect(pager) -> list:
    return [item async for item in pager]


async def collect_pages(pager) -> list[list]:
    return [[item async for item in page] async for page in pager.by_page()]


async def test_set_and_get(aclient, vault_url):
    first = await aclient.set_secret("db-password", "not-a-real-password-1", content_type="text/plain")  # pragma: allowlist secret
    second = await aclient.set_secret("db-password", "not-a-real-password-2", tags={"env": "dev"})  # pragma: allowlist secret

    assert HEX32.match(first.properties.version) and HEX32.match(second.properties.version)
    assert first.properties.version != second.properties.version
    assert second.id == f"{vault_url}secrets/db-password/{second.properties.version}"

    latest = await aclient.get_secret("db-password")
    assert latest.value == "not-a-real-password-2"  # pragma: allowlist secret
    assert latest.properties.version == second.properties.version
    assert latest.properties.tags == {"env": "dev"}
    assert latest.properties.content_type is None
    old = await aclient.get_secret("db-password", first.properties.version)
    assert old.value == "not-a-real-password-1"  # pragma: allowlist secret
    assert old.properties.content_type == "text/plain"
    assert (await aclient.get_secret("DB-PASSWORD")).properties.version == second.properties.version


async def test_update_properties(aclient):
    created = await aclient.set_secret("rotate-me", FAKE_VALUE)
    updated = await aclient.update_secret_properties(
        "rotate-me", content_type="application/json", tags={"owner": "data-eng"},
        expires_on=created.properties.created_on + timedelta(days=30),
    )
    assert updated.version == created.properties.version
    assert updated.content_type == "application/json"
    assert updated.tags == {"owner": "data-eng"}
    assert updated.expires_on == created.properties.created_on + timedelta(days=30)
    assert (await aclient.get_secret("rotate-me")).value == FAKE_VALUE


async def test_list_secrets_pages_past_25(aclient, vault_url):
    names = sorted(f"secret-{i:02d}" for i in range(60))
    await asyncio.gather(*(aclient.set_secret(name, FAKE_VALUE) for name in names))

    pages = await collect_pages(aclient.list_properties_of_secrets())
    assert len(pages) >= 3 and all(len(page) <= 25 for page in pages)
    items = [item for page in pages for item in page]
    assert sorted(item.name for item in items) == names
    assert all(item.id == f"{vault_url}secrets/{item.name}" and item.version is None for item in items)

    small = await collect_pages(aclient.list_properties_of_secrets(max_page_size=10))
    assert len(small) >= 6 and all(len(page) <= 10 for page in small)
    assert sorted(item.name for page in small for item in page) == names


async def test_list_versions_pages_past_25(aclient):
    created = [(await aclient.set_secret("many", f"{FAKE_VALUE}-{i}")).properties.version for i in range(30)]

    pages = await collect_pages(aclient.list_properties_of_secret_versions("many"))
    assert len(pages) >= 2 and all(len(page) <= 25 for page in pages)
    assert sorted(item.version for page in pages for item in page) == sorted(created)
    assert await collect(aclient.list_properties_of_secret_versions("no-such-secret")) == []


async def test_delete_recover_and_purge(aclient, vault_url):
    v1 = (await aclient.set_secret("cycle", "not-a-real-password-1")).properties.version  # pragma: allowlist secret
    v2 = (await aclient.set_secret("cycle", "not-a-real-password-2")).properties.version  # pragma: allowlist secret

    deleted = await bounded(aclient.delete_secret("cycle"))
    assert deleted.name == "cycle"
    assert deleted.recovery_id == f"{vault_url}deletedsecrets/cycle"
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
    assert deleted.properties.recovery_level == "Recoverable+Purgeable"
    assert deleted.properties.version == v2

    got = await aclient.get_deleted_secret("cycle")
    assert (got.recovery_id, got.deleted_date) == (deleted.recovery_id, deleted.deleted_date)
    assert [d.name for d in await collect(aclient.list_deleted_secrets())] == ["cycle"]
    assert await collect(aclient.list_properties_of_secrets()) == []

    recovered = await bounded(aclient.recover_deleted_secret("cycle"))
    assert (recovered.name, recovered.version) == ("cycle", v2)
    assert (await aclient.get_secret("cycle", v1)).value == "not-a-real-password-1"  # pragma: allowlist secret
    assert (await aclient.get_secret("cycle")).value == "not-a-real-password-2"  # pragma: allowlist secret
    assert await collect(aclient.list_deleted_secrets()) == []

    await bounded(aclient.delete_secret("cycle"))
    assert await aclient.purge_deleted_secret("cycle") is None
    with pytest.raises(ResourceNotFoundError) as e:
        await aclient.get_deleted_secret("cycle")
    assert error_body(e.value)["message"] == "Deleted Secret not found: cycle"
    assert await collect(aclient.list_deleted_secrets()) == []
    fresh = await aclient.set_secret("cycle", "not-a-real-password-3")  # pragma: allowlist secret
    versions = await collect(aclient.list_properties_of_secret_versions("cycle"))
    assert [p.version for p in versions] == [fresh.properties.version]


async def test_backup_and_restore(aclient, emulator, vault_url):
    created = [
        await aclient.set_secret("backed-up", f"{FAKE_VALUE}-{i}", tags={"i": str(i)}) for i in range(3)
    ]
    blob = await aclient.backup_secret("backed-up")
    assert isinstance(blob, bytes)
    assert FAKE_VALUE.encode() not in blob

    with pytest.raises(ResourceExistsError) as e:
        await aclient.restore_secret_backup(blob)
    assert e.value.status_code == 409
    assert e.value.error.code == "Conflict"

    await bounded(aclient.delete_secret("backed-up"))
    await aclient.purge_deleted_secret("backed-up")
    restored = await aclient.restore_secret_backup(blob)
    assert (restored.name, restored.version) == ("backed-up", created[-1].properties.version)
    versions = await collect(aclient.list_properties_of_secret_versions("backed-up"))
    assert sorted(p.version for p in versions) == sorted(s.properties.version for s in created)
    for secret in created:
        again = await aclient.get_secret("backed-up", secret.properties.version)
        assert (again.value, again.properties.tags) == (secret.value, secret.properties.tags)

    other_url = officer_vault(emulator, "a")
    async with DefaultAzureCredential() as credential, SecretClient(other_url, credential) as other:
        moved = await other.restore_secret_backup(blob)
        assert moved.id == f"{other_url}secrets/backed-up/{created[-1].properties.version}"
        assert (await other.get_secret("backed-up")).value == f"{FAKE_VALUE}-2"


async def test_not_found(aclient):
    with pytest.raises(ResourceNotFoundError) as e:
        await aclient.get_secret("never-set")
    assert e.value.status_code == 404
    assert e.value.error.code == "SecretNotFound"
    assert error_body(e.value)["message"] == NOT_FOUND.format("never-set")

    await aclient.set_secret("one-version", FAKE_VALUE)
    with pytest.raises(ResourceNotFoundError) as e:
        await aclient.get_secret("one-version", "f" * 32)
    assert e.value.error.code == "SecretNotFound"
    assert error_body(e.value)["message"] == NOT_FOUND.format(f"one-version/{'f' * 32}")

    with pytest.raises(ResourceNotFoundError) as e:
        await bounded(aclient.delete_secret("never-set"))
    assert e.value.error.code == "SecretNotFound"


async def test_disabled_secret_is_forbidden(aclient):
    await aclient.set_secret("switched-off", FAKE_VALUE)
    await aclient.update_secret_properties("switched-off", enabled=False)

    with pytest.raises(HttpResponseError) as e:
        await aclient.get_secret("switched-off")
    assert e.value.status_code == 403
    assert e.value.error.code == "Forbidden"
    assert inner_code(e.value) == "SecretDisabled"
    assert error_body(e.value)["message"] == "Operation get is not allowed on a disabled secret."
    [listed] = await collect(aclient.list_properties_of_secrets())
    assert listed.enabled is False


async def test_set_on_deleted_name_conflicts(aclient):
    await aclient.set_secret("in-limbo", FAKE_VALUE)
    await bounded(aclient.delete_secret("in-limbo"))

    with pytest.raises(ResourceExistsError) as e:
        await aclient.set_secret("in-limbo", FAKE_VALUE)
    assert e.value.status_code == 409
    assert e.value.error.code == "Conflict"
    assert inner_code(e.value) == "ObjectIsDeletedButRecoverable"


async def test_bad_input(aclient):
    with pytest.raises(HttpResponseError) as e:
        await aclient.set_secret("bad_name", FAKE_VALUE)
    assert (e.value.status_code, e.value.error.code) == (400, "BadParameter")
    assert error_body(e.value)["message"] == "The request URI contains an invalid name: bad_name"

    with pytest.raises(HttpResponseError) as e:
        await aclient.set_secret("too-big", "x" * (25 * 1024 + 1))
    assert (e.value.status_code, e.value.error.code) == (400, "BadParameter")
    assert inner_code(e.value) == "SecretTooLarge"


async def test_concurrent_sets_on_one_name_keep_every_version(aclient):
    results = await asyncio.gather(*(aclient.set_secret("busy", f"{FAKE_VALUE}-{i}") for i in range(40)))
    versions = await collect(aclient.list_properties_of_secret_versions("busy"))
    assert sorted(p.version for p in versions) == sorted(s.properties.version for s in results)
    assert len(versions) == 40
