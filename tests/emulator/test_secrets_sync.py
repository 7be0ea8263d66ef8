"""The secrets data plane through the real, unpatched sync ``SecretClient``.

Every operation a learner can call, with the values and errors the real
service gives (see the notes on Key Vault's error bodies): versions are new
32-hex ids, soft delete keeps 90 days, backups are opaque, bad input is a
``BadParameter`` 400, a disabled secret is 403 ``Forbidden``/``SecretDisabled``.
Raw HTTPS (``requests``) is used only where the SDK never sends the request.
"""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import ApiVersion, SecretClient

from runners import officer_vault

FAKE_VALUE = "not-a-real-password"  # pragma: allowlist secret
HEX32 = re.compile(r"^[0-9a-f]{32}$")
LATEST_API_VERSION = "2026-04-01"
POLL_TIMEOUT = 30  # seconds; a poller that never finishes fails the test instead of hanging it
NOT_FOUND = (
    "A secret with (name/id) {} was not found in this key vault. If you recently deleted this "
    "secret you may be able to recover it using the correct recovery command. For help resolving "
    "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)
DELETED_CONFLICT = (
    "Secret {} is currently in a deleted but recoverable state, and its name cannot be reused; "
    "in this state, the secret can only be recovered or purged."
)


# -- helpers ------------------------------------------------------------------


def error_body(exc: HttpResponseError) -> dict:
    """The service's error object, straight from the response JSON."""
    return exc.response.json()["error"]


def inner_code(exc: HttpResponseError) -> str | None:
    return error_body(exc).get("innererror", {}).get("code")


def now_s() -> datetime:
    """Now, whole seconds (Key Vault dates are Unix seconds)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def finish(poller):
    """Wait for a delete/recover poller, within bounds, and return its result."""
    poller.wait(timeout=POLL_TIMEOUT)
    assert poller.done(), f"the poller did not finish within {POLL_TIMEOUT} s"
    return poller.result()


def delete(client: SecretClient, name: str):
    return finish(client.begin_delete_secret(name))


def names_of(items) -> list[str]:
    return [item.name for item in items]


def token_for(emulator) -> str:
    """A managed-identity token for the emulator's vaults, fetched the App Service way."""
    answer = requests.get(
        os.environ["IDENTITY_ENDPOINT"],
        headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]},
        params={"api-version": "2019-08-01", "resource": f"https://localhost:{emulator.port}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


# -- set and get --------------------------------------------------------------


def test_set_creates_a_new_32_hex_version_each_time(client, vault_url):
    results = [client.set_secret("db-password", f"{FAKE_VALUE}-{i}") for i in range(3)]

    versions = [s.properties.version for s in results]
    assert all(HEX32.match(v) for v in versions), versions
    assert len(set(versions)) == 3
    for i, secret in enumerate(results):
        assert secret.name == "db-password"
        assert secret.value == f"{FAKE_VALUE}-{i}"
        assert secret.id == f"{vault_url}secrets/db-password/{versions[i]}"
        assert secret.properties.vault_url == vault_url.rstrip("/")
        assert secret.properties.enabled is True
        assert secret.properties.content_type is None
        assert secret.properties.tags is None
        assert secret.properties.not_before is None
        assert secret.properties.expires_on is None
        assert secret.properties.recovery_level == "Recoverable+Purgeable"
        assert secret.properties.recoverable_days == 90
        assert secret.properties.created_on == secret.properties.updated_on
        assert abs(secret.properties.created_on - datetime.now(timezone.utc)) < timedelta(seconds=30)


def test_set_with_content_type_tags_and_attributes(client):
    not_before = now_s() - timedelta(hours=1)
    expires_on = now_s() + timedelta(days=30)
    tags = {"env": "dev", "owner": "data-eng"}

    created = client.set_secret(
        "sql-conn", FAKE_VALUE, content_type="text/plain", tags=tags,
        enabled=True, not_before=not_before, expires_on=expires_on,
    )
    fetched = client.get_secret("sql-conn")

    for secret in (created, fetched):
        assert secret.value == FAKE_VALUE
        assert secret.properties.content_type == "text/plain"
        assert secret.properties.tags == tags
        assert secret.properties.enabled is True
        assert secret.properties.not_before == not_before
        assert secret.properties.expires_on == expires_on
    assert fetched.properties.version == created.properties.version


def test_set_disabled_secret_then_get_is_forbidden(client):
    created = client.set_secret("off-from-start", FAKE_VALUE, enabled=False)
    assert created.properties.enabled is False
    with pytest.raises(HttpResponseError) as e:
        client.get_secret("off-from-start")
    assert e.value.status_code == 403


def test_get_latest_and_a_specific_version(client, vault_url):
    v1 = client.set_secret("api-key", "not-a-real-key-1").properties.version  # pragma: allowlist secret
    v2 = client.set_secret("api-key", "not-a-real-key-2").properties.version  # pragma: allowlist secret

    latest = client.get_secret("api-key")
    assert latest.value == "not-a-real-key-2"  # pragma: allowlist secret
    assert latest.properties.version == v2
    assert latest.id == f"{vault_url}secrets/api-key/{v2}"

    old = client.get_secret("api-key", v1)
    assert old.value == "not-a-real-key-1"  # pragma: allowlist secret
    assert old.properties.version == v1
    assert old.id == f"{vault_url}secrets/api-key/{v1}"


def test_empty_string_value_is_accepted(client):
    created = client.set_secret("empty", "")
    assert created.value == ""
    assert client.get_secret("empty").value == ""


def test_expired_and_not_yet_valid_secrets_remain_readable(client):
    # The service does not enforce exp/nbf on get; only clients may choose to.
    client.set_secret("expired", "not-a-real-old-password", expires_on=now_s() - timedelta(days=1))  # pragma: allowlist secret
    client.set_secret("future", "not-a-real-new-password", not_before=now_s() + timedelta(days=1))  # pragma: allowlist secret

    expired = client.get_secret("expired")
    assert expired.value == "not-a-real-old-password"  # pragma: allowlist secret
    assert expired.properties.expires_on < datetime.now(timezone.utc)
    future = client.get_secret("future")
    assert future.value == "not-a-real-new-password"  # pragma: allowlist secret
    assert future.properties.not_before > datetime.now(timezone.utc)


def test_names_are_case_insensitive(client, vault_url):
    first = client.set_secret("Sql-Password", "not-a-real-password-1")  # pragma: allowlist secret
    assert client.get_secret("sql-password").value == "not-a-real-password-1"  # pragma: allowlist secret
    assert client.get_secret("SQL-PASSWORD", first.properties.version).value == "not-a-real-password-1"  # pragma: allowlist secret

    # Setting another spelling adds a version to the same secret.
    second = client.set_secret("SQL-PASSWORD", "not-a-real-password-2")  # pragma: allowlist secret
    assert client.get_secret("Sql-Password").value == "not-a-real-password-2"  # pragma: allowlist secret
    versions = {p.version for p in client.list_properties_of_secret_versions("sql-password")}
    assert versions == {first.properties.version, second.properties.version}

    # The list keeps the spelling the secret was created with.
    listed = list(client.list_properties_of_secrets())
    assert names_of(listed) == ["Sql-Password"]
    assert listed[0].id == f"{vault_url}secrets/Sql-Password"


def test_version_ids_are_case_insensitive(client):
    created = client.set_secret("case-version", FAKE_VALUE)
    version = created.properties.version
    assert client.get_secret("case-version", version.upper()).properties.version == version


# -- update -------------------------------------------------------------------


def test_update_secret_properties(client, vault_url):
    created = client.set_secret("rotate-me", FAKE_VALUE, content_type="text/plain", tags={"a": "1"})
    version = created.properties.version
    not_before = now_s() - timedelta(minutes=5)
    expires_on = now_s() + timedelta(days=60)

    updated = client.update_secret_properties(
        "rotate-me", content_type="application/json", tags={"owner": "data-eng", "env": "prod"},
        enabled=False, not_before=not_before, expires_on=expires_on,
    )
    assert updated.version == version  # updating never makes a new version
    assert updated.id == f"{vault_url}secrets/rotate-me/{version}"
    assert updated.content_type == "application/json"
    assert updated.tags == {"owner": "data-eng", "env": "prod"}
    assert updated.enabled is False
    assert updated.not_before == not_before
    assert updated.expires_on == expires_on
    assert updated.created_on == created.properties.created_on
    assert updated.updated_on >= created.properties.updated_on

    # The update is stored: the (now disabled) version shows it in the versions list.
    [listed] = list(client.list_properties_of_secret_versions("rotate-me"))
    assert (listed.version, listed.enabled, listed.content_type, listed.tags) == (
        version, False, "application/json", {"owner": "data-eng", "env": "prod"},
    )
    assert (listed.not_before, listed.expires_on) == (not_before, expires_on)

    with pytest.raises(HttpResponseError) as e:
        client.get_secret("rotate-me")
    assert e.value.status_code == 403

    # Re-enable: the value comes back unchanged, and fields not sent stay as they were.
    again = client.update_secret_properties("rotate-me", enabled=True)
    assert again.enabled is True
    assert again.content_type == "application/json"
    assert again.tags == {"owner": "data-eng", "env": "prod"}
    assert again.expires_on == expires_on
    secret = client.get_secret("rotate-me")
    assert secret.value == FAKE_VALUE
    assert secret.properties.version == version
    assert len(list(client.list_properties_of_secret_versions("rotate-me"))) == 1


def test_update_a_specific_version(client):
    v1 = client.set_secret("two-versions", "not-a-real-password-1").properties.version  # pragma: allowlist secret
    v2 = client.set_secret("two-versions", "not-a-real-password-2").properties.version  # pragma: allowlist secret

    updated = client.update_secret_properties("two-versions", v1, enabled=False, tags={"old": "yes"})
    assert updated.version == v1
    assert updated.enabled is False

    with pytest.raises(HttpResponseError) as e:
        client.get_secret("two-versions", v1)
    assert e.value.status_code == 403
    assert inner_code(e.value) == "SecretDisabled"
    latest = client.get_secret("two-versions")
    assert latest.properties.version == v2
    assert latest.properties.enabled is True
    assert latest.properties.tags is None
    by_version = {p.version: p for p in client.list_properties_of_secret_versions("two-versions")}
    assert by_version[v1].enabled is False and by_version[v1].tags == {"old": "yes"}
    assert by_version[v2].enabled is True and by_version[v2].tags is None


def test_update_unknown_secret_is_not_found(client):
    with pytest.raises(ResourceNotFoundError) as e:
        client.update_secret_properties("never-set", enabled=False)
    assert e.value.status_code == 404
    assert e.value.error.code == "SecretNotFound"
    assert error_body(e.value)["message"] == NOT_FOUND.format("never-set")


# -- listing ------------------------------------------------------------------


@pytest.fixture
def sixty(client) -> list[str]:
    """60 secrets (more than two default pages), every third one tagged and typed."""
    names = [f"secret-{i:02d}" for i in range(60)]
    for i, name in enumerate(names):
        if i % 3 == 0:
            client.set_secret(name, FAKE_VALUE, content_type="text/plain", tags={"i": str(i)})
        else:
            client.set_secret(name, FAKE_VALUE)
    return names


def test_list_secrets_pages_past_25(client, vault_url, sixty):
    pages = [list(page) for page in client.list_properties_of_secrets().by_page()]

    assert len(pages) >= 3  # the service pages at 25 items
    assert all(len(page) <= 25 for page in pages)
    items = [item for page in pages for item in page]
    assert sorted(names_of(items)) == sixty
    for item in items:
        i = int(item.name.split("-")[1])
        assert item.id == f"{vault_url}secrets/{item.name}"
        assert item.version is None  # list items name the secret, not a version
        assert item.enabled is True
        assert item.recovery_level == "Recoverable+Purgeable"
        if i % 3 == 0:
            assert (item.content_type, item.tags) == ("text/plain", {"i": str(i)})
        else:
            assert (item.content_type, item.tags) == (None, None)


def test_list_secrets_with_max_page_size(client, sixty):
    pages = [list(page) for page in client.list_properties_of_secrets(max_page_size=7).by_page()]

    assert len(pages) >= 9  # 60 / 7
    assert all(len(page) <= 7 for page in pages)
    assert sorted(names_of(item for page in pages for item in page)) == sixty


def test_list_secrets_resumes_from_a_continuation_token(client, sixty):
    pager = client.list_properties_of_secrets(max_page_size=25).by_page()
    first = names_of(next(pager))
    token = pager.continuation_token
    assert token  # more pages follow

    rest = [
        name
        for page in client.list_properties_of_secrets(max_page_size=25).by_page(continuation_token=token)
        for name in names_of(page)
    ]
    assert not set(first) & set(rest)
    assert sorted(first + rest) == sixty


def test_list_shows_disabled_secrets(client):
    client.set_secret("visible-but-off", FAKE_VALUE, enabled=False)
    [item] = list(client.list_properties_of_secrets())
    assert (item.name, item.enabled) == ("visible-but-off", False)


def test_list_secrets_of_an_empty_vault(client):
    assert list(client.list_properties_of_secrets()) == []


def test_list_versions_pages_past_25(client, vault_url):
    created = [client.set_secret("many", f"{FAKE_VALUE}-{i}").properties.version for i in range(30)]

    pages = [list(p) for p in client.list_properties_of_secret_versions("many").by_page()]
    assert len(pages) >= 2
    assert all(len(page) <= 25 for page in pages)
    items = [item for page in pages for item in page]
    assert sorted(item.version for item in items) == sorted(created)
    for item in items:
        assert item.name == "many"
        assert item.id == f"{vault_url}secrets/many/{item.version}"

    small = [list(p) for p in client.list_properties_of_secret_versions("many", max_page_size=4).by_page()]
    assert len(small) >= 8 and all(len(page) <= 4 for page in small)
    assert sorted(item.version for page in small for item in page) == sorted(created)


def test_list_versions_of_unknown_secret_is_empty(client):
    # The service answers 200 with no items, not 404.
    assert list(client.list_properties_of_secret_versions("no-such-secret")) == []


# -- delete, deleted secrets, recover, purge -----------------------------------


def test_delete_secret(client, vault_url):
    client.set_secret("to-delete", "not-a-real-password-1")  # pragma: allowlist secret
    latest = client.set_secret("to-delete", "not-a-real-password-2", content_type="text/plain")  # pragma: allowlist secret

    before = now_s()
    deleted = delete(client, "to-delete")
    after = datetime.now(timezone.utc)

    assert deleted.name == "to-delete"
    assert deleted.id == f"{vault_url}secrets/to-delete/{latest.properties.version}"
    assert deleted.recovery_id == f"{vault_url}deletedsecrets/to-delete"
    assert before - timedelta(seconds=2) <= deleted.deleted_date <= after + timedelta(seconds=2)
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
    assert deleted.properties.recovery_level == "Recoverable+Purgeable"
    assert deleted.properties.recoverable_days == 90
    assert deleted.properties.version == latest.properties.version
    assert deleted.properties.content_type == "text/plain"

    with pytest.raises(ResourceNotFoundError) as e:
        client.get_secret("to-delete")
    assert e.value.error.code == "SecretNotFound"
    assert list(client.list_properties_of_secrets()) == []

    got = client.get_deleted_secret("to-delete")
    assert (got.name, got.id, got.recovery_id) == (deleted.name, deleted.id, deleted.recovery_id)
    assert (got.deleted_date, got.scheduled_purge_date) == (deleted.deleted_date, deleted.scheduled_purge_date)
    assert got.properties.recovery_level == "Recoverable+Purgeable"

    [listed] = list(client.list_deleted_secrets())
    assert listed.name == "to-delete"
    assert listed.recovery_id == deleted.recovery_id
    assert listed.deleted_date == deleted.deleted_date
    assert listed.scheduled_purge_date == deleted.scheduled_purge_date


def test_list_deleted_secrets_pages_past_25(client):
    names = [f"gone-{i:02d}" for i in range(27)]
    for name in names:
        client.set_secret(name, FAKE_VALUE)
    client.set_secret("still-here", FAKE_VALUE)
    for name in names:
        finish(client.begin_delete_secret(name))

    pages = [list(page) for page in client.list_deleted_secrets().by_page()]
    assert len(pages) >= 2 and all(len(page) <= 25 for page in pages)
    assert sorted(names_of(item for page in pages for item in page)) == names
    small = [list(page) for page in client.list_deleted_secrets(max_page_size=5).by_page()]
    assert len(small) >= 6 and all(len(page) <= 5 for page in small)
    assert names_of(client.list_properties_of_secrets()) == ["still-here"]


def test_set_on_a_deleted_name_conflicts(client):
    client.set_secret("in-limbo", FAKE_VALUE)
    delete(client, "in-limbo")

    with pytest.raises(ResourceExistsError) as e:
        client.set_secret("in-limbo", "not-a-real-password-2")  # pragma: allowlist secret
    assert e.value.status_code == 409
    assert e.value.error.code == "Conflict"
    assert inner_code(e.value) == "ObjectIsDeletedButRecoverable"
    assert error_body(e.value)["message"] == DELETED_CONFLICT.format("in-limbo")

    # The name comparison ignores case.
    with pytest.raises(ResourceExistsError) as e:
        client.set_secret("IN-LIMBO", "not-a-real-password-3")  # pragma: allowlist secret
    assert inner_code(e.value) == "ObjectIsDeletedButRecoverable"


def test_recover_deleted_secret(client):
    v1 = client.set_secret("recover-me", "not-a-real-password-1").properties.version  # pragma: allowlist secret
    v2 = client.set_secret("recover-me", "not-a-real-password-2", tags={"t": "x"}).properties.version  # pragma: allowlist secret
    delete(client, "recover-me")

    recovered = finish(client.begin_recover_deleted_secret("recover-me"))
    assert recovered.name == "recover-me"
    assert recovered.version == v2
    assert recovered.tags == {"t": "x"}

    assert client.get_secret("recover-me").value == "not-a-real-password-2"  # pragma: allowlist secret
    assert client.get_secret("recover-me", v1).value == "not-a-real-password-1"  # pragma: allowlist secret
    assert {p.version for p in client.list_properties_of_secret_versions("recover-me")} == {v1, v2}
    with pytest.raises(ResourceNotFoundError) as e:
        client.get_deleted_secret("recover-me")
    assert error_body(e.value)["message"] == "Deleted Secret not found: recover-me"
    assert list(client.list_deleted_secrets()) == []
    # The name is live again, so it takes new versions.
    assert client.set_secret("recover-me", "not-a-real-password-3").value == "not-a-real-password-3"  # pragma: allowlist secret


def test_purge_deleted_secret(client):
    client.set_secret("purge-me", "not-a-real-password-1")  # pragma: allowlist secret
    client.set_secret("purge-me", "not-a-real-password-2")  # pragma: allowlist secret
    delete(client, "purge-me")

    assert client.purge_deleted_secret("purge-me") is None

    with pytest.raises(ResourceNotFoundError) as e:
        client.get_deleted_secret("purge-me")
    assert e.value.error.code == "SecretNotFound"
    assert list(client.list_deleted_secrets()) == []
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("purge-me")
    # The name is free again and starts over with one version.
    fresh = client.set_secret("purge-me", "not-a-real-password-3")  # pragma: allowlist secret
    assert [p.version for p in client.list_properties_of_secret_versions("purge-me")] == [fresh.properties.version]


def test_purge_is_raw_204_without_body(client):
    client.set_secret("purge-raw", FAKE_VALUE)
    delete(client, "purge-raw")
    seen = []
    client.purge_deleted_secret("purge-raw", raw_response_hook=lambda r: seen.append(r.http_response))
    assert seen[0].status_code == 204
    assert seen[0].body() == b""


def test_deleted_secret_errors(client):
    with pytest.raises(ResourceNotFoundError) as e:
        client.get_deleted_secret("never-deleted")
    assert e.value.error.code == "SecretNotFound"
    assert error_body(e.value)["message"] == "Deleted Secret not found: never-deleted"

    with pytest.raises(ResourceNotFoundError) as e:
        client.begin_recover_deleted_secret("never-deleted")
    assert e.value.error.code == "SecretNotFound"
    assert error_body(e.value)["message"] == NOT_FOUND.format("never-deleted")

    with pytest.raises(ResourceNotFoundError) as e:
        client.begin_delete_secret("never-set")
    assert e.value.error.code == "SecretNotFound"
    assert error_body(e.value)["message"] == NOT_FOUND.format("never-set")

    with pytest.raises(ResourceNotFoundError) as e:
        client.purge_deleted_secret("never-deleted")
    assert e.value.status_code == 404

    # A live secret is not a deleted one.
    client.set_secret("alive", FAKE_VALUE)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("alive")
    with pytest.raises(ResourceNotFoundError):
        client.purge_deleted_secret("alive")
    assert client.get_secret("alive").value == FAKE_VALUE


# -- backup and restore -------------------------------------------------------


def test_backup_blob_is_opaque(client):
    client.set_secret("backed-up", FAKE_VALUE, content_type="text/plain")
    client.set_secret("backed-up", FAKE_VALUE + "-2")
    blob = client.backup_secret("backed-up")

    assert isinstance(blob, bytes) and len(blob) > 0
    with pytest.raises(ValueError):  # neither text JSON nor anything that decodes to it
        json.loads(blob)
    value = FAKE_VALUE.encode()
    for encoded in (value, base64.b64encode(value), base64.urlsafe_b64encode(value), value.hex().encode()):
        assert encoded not in blob
    # Two backups of the same state differ: the blob is sealed, not just encoded.
    assert client.backup_secret("backed-up") != blob


def test_backup_of_unknown_secret_is_not_found(client):
    with pytest.raises(ResourceNotFoundError) as e:
        client.backup_secret("never-set")
    assert e.value.error.code == "SecretNotFound"


def test_restore_over_an_existing_name_conflicts(client, vault_url):
    client.set_secret("taken", "not-a-real-password-1")  # pragma: allowlist secret
    latest = client.set_secret("taken", "not-a-real-password-2").properties.version  # pragma: allowlist secret
    blob = client.backup_secret("taken")

    with pytest.raises(ResourceExistsError) as e:
        client.restore_secret_backup(blob)
    assert e.value.status_code == 409
    assert e.value.error.code == "Conflict"
    assert error_body(e.value)["message"].startswith(
        f"There was a conflict restoring the secret '{vault_url}secrets/taken/{latest}'. "
    )

    # Deleted but not purged: the name is still taken.
    delete(client, "taken")
    with pytest.raises(ResourceExistsError) as e:
        client.restore_secret_backup(blob)
    assert e.value.status_code == 409


def test_restore_after_purge_restores_all_versions(client, vault_url):
    created = [
        client.set_secret("restore-me", "not-a-real-password-1", content_type="text/plain"),  # pragma: allowlist secret
        client.set_secret("restore-me", "not-a-real-password-2", tags={"v": "2"}),  # pragma: allowlist secret
        client.set_secret("restore-me", "not-a-real-password-3", expires_on=now_s() + timedelta(days=7)),  # pragma: allowlist secret
    ]
    client.update_secret_properties("restore-me", created[0].properties.version, enabled=False)
    blob = client.backup_secret("restore-me")
    delete(client, "restore-me")
    client.purge_deleted_secret("restore-me")
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("restore-me")

    restored = client.restore_secret_backup(blob)

    assert restored.name == "restore-me"
    assert restored.version == created[-1].properties.version
    assert restored.id == f"{vault_url}secrets/restore-me/{created[-1].properties.version}"
    versions = {p.version: p for p in client.list_properties_of_secret_versions("restore-me")}
    assert set(versions) == {s.properties.version for s in created}
    assert versions[created[0].properties.version].enabled is False
    for secret in created[1:]:
        again = client.get_secret("restore-me", secret.properties.version)
        assert again.value == secret.value
        assert again.properties.tags == secret.properties.tags
        assert again.properties.content_type == secret.properties.content_type
        assert again.properties.expires_on == secret.properties.expires_on
        assert again.properties.created_on == secret.properties.created_on
    assert client.get_secret("restore-me").value == "not-a-real-password-3"  # pragma: allowlist secret


def test_restore_into_another_vault(client, emulator, vault_url):
    created = client.set_secret("portable", FAKE_VALUE, tags={"from": "first"})
    blob = client.backup_secret("portable")
    other_url = officer_vault(emulator, "r")

    with DefaultAzureCredential() as credential, SecretClient(other_url, credential) as other:
        restored = other.restore_secret_backup(blob)
        assert restored.id == f"{other_url}secrets/portable/{created.properties.version}"
        secret = other.get_secret("portable")
        assert secret.value == FAKE_VALUE
        assert secret.properties.tags == {"from": "first"}
    # The original is untouched.
    assert client.get_secret("portable").properties.version == created.properties.version


def test_restore_garbage_is_malformed_backup_blob(client):
    with pytest.raises(HttpResponseError) as e:
        client.restore_secret_backup(b"non-existing")
    assert e.value.status_code == 400
    assert e.value.error.code == "Malformed backup blob"
    assert error_body(e.value)["message"] == "Backup blob is corrupt."

    client.set_secret("tamper", FAKE_VALUE)
    blob = bytearray(client.backup_secret("tamper"))
    blob[-1] ^= 0x01
    with pytest.raises(HttpResponseError) as e:
        client.restore_secret_backup(bytes(blob))
    assert e.value.status_code == 400
    assert e.value.error.code == "Malformed backup blob"


# -- errors -------------------------------------------------------------------


def test_unknown_secret_is_not_found(client):
    with pytest.raises(ResourceNotFoundError) as e:
        client.get_secret("never-set")
    assert e.value.status_code == 404
    assert e.value.error.code == "SecretNotFound"
    assert error_body(e.value) == {"code": "SecretNotFound", "message": NOT_FOUND.format("never-set")}


def test_unknown_version_is_not_found(client):
    client.set_secret("has-one-version", FAKE_VALUE)
    missing = "0" * 32
    with pytest.raises(ResourceNotFoundError) as e:
        client.get_secret("has-one-version", missing)
    assert e.value.status_code == 404
    assert e.value.error.code == "SecretNotFound"
    assert error_body(e.value)["message"] == NOT_FOUND.format(f"has-one-version/{missing}")


def test_disabled_secret_is_forbidden(client):
    client.set_secret("switched-off", FAKE_VALUE)
    client.update_secret_properties("switched-off", enabled=False)

    with pytest.raises(HttpResponseError) as e:
        client.get_secret("switched-off")
    assert e.value.status_code == 403
    assert e.value.error.code == "Forbidden"
    assert inner_code(e.value) == "SecretDisabled"
    assert error_body(e.value)["message"] == "Operation get is not allowed on a disabled secret."


@pytest.mark.parametrize("name", ["bad_name", "bad.name", "x" * 128], ids=["underscore", "dot", "128-chars"])
def test_invalid_names_are_bad_parameter(client, name):
    with pytest.raises(HttpResponseError) as e:
        client.set_secret(name, FAKE_VALUE)
    assert e.value.status_code == 400
    assert e.value.error.code == "BadParameter"
    assert error_body(e.value)["message"] == f"The request URI contains an invalid name: {name}"

    with pytest.raises(HttpResponseError) as e:
        client.get_secret(name)
    assert e.value.status_code == 400
    assert e.value.error.code == "BadParameter"


def test_longest_and_odd_valid_names_are_accepted(client):
    for name in ("x" * 127, "1-starts-with-digit", "-leading-hyphen", "a"):
        assert client.set_secret(name, FAKE_VALUE).name == name
        assert client.get_secret(name).value == FAKE_VALUE


def test_value_larger_than_25_kib_is_bad_parameter(client):
    limit = 25 * 1024
    assert len(client.set_secret("at-limit", "x" * limit).value) == limit

    with pytest.raises(HttpResponseError) as e:
        client.set_secret("too-big", "x" * (limit + 1))
    assert e.value.status_code == 400
    assert e.value.error.code == "BadParameter"
    assert inner_code(e.value) == "SecretTooLarge"
    assert error_body(e.value)["message"] == (
        "Secret is beyond the maximum permitted length of 25600 characters."
    )
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("too-big")


def test_more_than_15_tags_is_bad_parameter(client):
    fifteen = {f"tag{i}": str(i) for i in range(15)}
    assert client.set_secret("fifteen-tags", FAKE_VALUE, tags=fifteen).properties.tags == fifteen

    sixteen = {f"tag{i}": str(i) for i in range(16)}
    with pytest.raises(HttpResponseError) as e:
        client.set_secret("sixteen-tags", FAKE_VALUE, tags=sixteen)
    assert e.value.status_code == 400
    assert e.value.error.code == "BadParameter"
    assert error_body(e.value)["message"] == "Property has invalid value\r\n"

    with pytest.raises(HttpResponseError) as e:
        client.update_secret_properties("fifteen-tags", tags=sixteen)
    assert e.value.status_code == 400
    assert client.get_secret("fifteen-tags").properties.tags == fifteen


# -- vault isolation ----------------------------------------------------------


def test_vaults_are_isolated(client, emulator, vault_url):
    client.set_secret("shared-name", "not-a-real-password-a")  # pragma: allowlist secret
    client.set_secret("only-in-a", FAKE_VALUE)
    other_url = officer_vault(emulator, "i")
    assert other_url != vault_url

    with DefaultAzureCredential() as credential, SecretClient(other_url, credential) as other:
        with pytest.raises(ResourceNotFoundError) as e:
            other.get_secret("only-in-a")
        assert e.value.error.code == "SecretNotFound"
        assert list(other.list_properties_of_secrets()) == []
        assert list(other.list_properties_of_secret_versions("shared-name")) == []

        other.set_secret("shared-name", "not-a-real-password-b")  # pragma: allowlist secret
        assert other.get_secret("shared-name").value == "not-a-real-password-b"  # pragma: allowlist secret
        finish(other.begin_delete_secret("shared-name"))
        assert names_of(other.list_deleted_secrets()) == ["shared-name"]

    assert client.get_secret("shared-name").value == "not-a-real-password-a"  # pragma: allowlist secret
    assert list(client.list_deleted_secrets()) == []
    assert sorted(names_of(client.list_properties_of_secrets())) == ["only-in-a", "shared-name"]


# -- api-versions -------------------------------------------------------------


@pytest.mark.parametrize("api_version", list(ApiVersion), ids=lambda v: v.value)
def test_every_sdk_api_version(vault_url, api_version):
    seen: list[tuple[int, str]] = []

    def record(response) -> None:
        seen.append((response.http_response.status_code, response.http_request.url))

    with DefaultAzureCredential() as credential, SecretClient(
        vault_url, credential, api_version=api_version
    ) as client:
        created = client.set_secret("versioned", FAKE_VALUE, raw_response_hook=record)
        assert HEX32.match(created.properties.version)
        got = client.get_secret("versioned", raw_response_hook=record)
        assert (got.value, got.properties.version) == (FAKE_VALUE, created.properties.version)
        listed = list(client.list_properties_of_secrets(raw_response_hook=record))
        assert names_of(listed) == ["versioned"]
        deleted = client.begin_delete_secret("versioned", raw_response_hook=record).result()
        assert deleted.recovery_id == f"{vault_url}deletedsecrets/versioned"
        with pytest.raises(ResourceNotFoundError):
            client.get_secret("versioned")

    # The first request is answered with the challenge, then set, get, list, delete succeed.
    assert [status for status, _ in seen] == [401, 200, 200, 200, 200], seen
    assert all(f"api-version={api_version.value}" in url for _, url in seen), seen


def test_latest_api_version_is_one_the_sdk_lists():
    assert LATEST_API_VERSION in {v.value for v in ApiVersion}


def test_unknown_api_version_is_bad_parameter(emulator, vault_url):
    token = token_for(emulator)
    answer = requests.get(
        f"{vault_url}secrets",
        params={"api-version": "1999-01-01"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    assert answer.json() == {"error": {
        "code": "BadParameter",
        "message": "The specified version (1999-01-01) is not recognized. Consider using the "
        f"latest supported version ({LATEST_API_VERSION}).",
    }}

    # The same token and vault work with a known version, so the 400 was the version.
    ok = requests.get(
        f"{vault_url}secrets",
        params={"api-version": LATEST_API_VERSION},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert ok.status_code == 200
    assert ok.json() == {"value": [], "nextLink": None}


def test_missing_token_is_challenged_before_the_body_is_validated(emulator, vault_url):
    answer = requests.put(
        f"{vault_url}secrets/challenged",
        params={"api-version": LATEST_API_VERSION},
        data=b'{"value": "not-a-real-password",',  # malformed JSON  # pragma: allowlist secret
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer authorization="https://login.windows.net/')
    assert f'resource="https://localhost:{emulator.port}"' in challenge
    assert answer.json() == {"error": {
        "code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token.",
    }}

    # With a token the same malformed body is a 400, and nothing was stored.
    token = token_for(emulator)
    bad = requests.put(
        f"{vault_url}secrets/challenged",
        params={"api-version": LATEST_API_VERSION},
        data=b'{"value": "not-a-real-password",',  # pragma: allowlist secret
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "BadParameter"
    missing = requests.get(
        f"{vault_url}secrets/challenged",
        params={"api-version": LATEST_API_VERSION},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert missing.status_code == 404
