"""No version is lost under concurrent writers, and state survives a restart.

(a) runs against the session emulator. (b) starts a separate emulator with its
own state directory and port, so stopping it cannot disturb other tests;
`kvlab.connect()` points this process at it, and monkeypatch puts the session
emulator's environment back afterwards.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

import kvlab
from kvlab.emulator import control

from runners import connection_kept, free_port

THREADS = 8
SETS_PER_THREAD = 100
FAKE_VALUE = "not-a-real-password"  # pragma: allowlist secret
# What kvlab.connect() changes in this process's environment.


def test_concurrent_sets_on_one_name_keep_every_version(vault_url):
    barrier = threading.Barrier(THREADS)

    def writer(thread: int) -> list[str]:
        with DefaultAzureCredential() as credential, SecretClient(vault_url, credential) as client:
            try:
                client.set_secret("contended", f"{FAKE_VALUE}-{thread}-warmup")  # token + challenge first
            except BaseException:
                barrier.abort()  # the other writers fail fast instead of waiting forever
                raise
            barrier.wait(timeout=60)
            return [
                client.set_secret("contended", f"{FAKE_VALUE}-{thread}-{i}").properties.version
                for i in range(SETS_PER_THREAD)
            ]

    with ThreadPoolExecutor(THREADS) as pool:
        per_thread = list(pool.map(writer, range(THREADS)))

    written = [v for versions in per_thread for v in versions]
    assert len(written) == THREADS * SETS_PER_THREAD
    assert len(set(written)) == len(written)  # every set got its own version id

    with DefaultAzureCredential() as credential, SecretClient(vault_url, credential) as client:
        listed = [p.version for p in client.list_properties_of_secret_versions("contended")]
        assert len(listed) == THREADS * SETS_PER_THREAD + THREADS  # plus one warm-up per thread
        assert len(set(listed)) == len(listed)
        assert set(written) <= set(listed)
        # The latest version is one of the last writes of some thread.
        latest = client.get_secret("contended")
        assert latest.properties.version in {versions[-1] for versions in per_thread}
        assert latest.value.endswith(f"-{SETS_PER_THREAD - 1}")
        # Every stored version still holds the value its writer sent.
        thread, i = 3, 57
        sample = client.get_secret("contended", per_thread[thread][i])
        assert sample.value == f"{FAKE_VALUE}-{thread}-{i}"


@pytest.fixture
def restore_connect_env(emulator):
    """Let a test call kvlab.connect() for another emulator; the session emulator's connection comes back after."""
    with connection_kept():
        yield


def test_state_survives_stop_and_start(tmp_path, restore_connect_env):
    port = free_port()
    state = tmp_path / "restart-state"
    try:
        lab = kvlab.connect(state_dir=state, port=port)
        assert lab.port == port
        first_pid = lab.info["pid"]
        url = lab.create_vault("kv-durable", exist_ok=True)["vaultUri"]
        lab.assign_role("Key Vault Secrets Officer", "learner", "kv-durable")
        assert url == f"https://kv-durable.localhost:{port}/"

        with DefaultAzureCredential() as credential, SecretClient(url, credential) as client:
            v1 = client.set_secret("sql-password", "not-a-real-password-1").properties.version  # pragma: allowlist secret
            v2 = client.set_secret(
                "sql-password", "not-a-real-password-2", content_type="text/plain",  # pragma: allowlist secret
                tags={"owner": "data-eng"},
            ).properties.version
            client.set_secret("switched-off", FAKE_VALUE, enabled=False)
            client.set_secret("in-the-bin", FAKE_VALUE)
            deleted = client.begin_delete_secret("in-the-bin").result()
            client.set_secret("backed-up", "not-a-real-backup-value")  # pragma: allowlist secret
            blob = client.backup_secret("backed-up")
            poller = client.begin_delete_secret("backed-up")
            poller.wait(timeout=30)
            assert poller.done()
            client.purge_deleted_secret("backed-up")

            control.stop(state)
            assert control.status(state)["running"] is False
            info = control.start(state, port)
            assert info["running"] is True and info["pid"] != first_pid

            # The same client (and its cached token) keeps working: the signing key persisted.
            assert client.get_secret("sql-password").value == "not-a-real-password-2"  # pragma: allowlist secret

        # A new client, as a new kernel would have.
        with DefaultAzureCredential() as credential, SecretClient(url, credential) as client:
            latest = client.get_secret("sql-password")
            assert latest.value == "not-a-real-password-2"  # pragma: allowlist secret
            assert latest.properties.version == v2
            assert latest.properties.content_type == "text/plain"
            assert latest.properties.tags == {"owner": "data-eng"}
            assert client.get_secret("sql-password", v1).value == "not-a-real-password-1"  # pragma: allowlist secret
            versions = {p.version for p in client.list_properties_of_secret_versions("sql-password")}
            assert versions == {v1, v2}

            with pytest.raises(HttpResponseError) as e:
                client.get_secret("switched-off")
            assert e.value.status_code == 403
            assert e.value.response.json()["error"]["innererror"]["code"] == "SecretDisabled"

            still_deleted = client.get_deleted_secret("in-the-bin")
            assert still_deleted.deleted_date == deleted.deleted_date
            assert still_deleted.scheduled_purge_date - still_deleted.deleted_date == timedelta(days=90)
            with pytest.raises(ResourceExistsError):
                client.set_secret("in-the-bin", FAKE_VALUE)

            # A backup taken before the restart restores after it: the backup key persisted.
            with pytest.raises(ResourceNotFoundError):
                client.get_secret("backed-up")
            client.restore_secret_backup(blob)
            assert client.get_secret("backed-up").value == "not-a-real-backup-value"  # pragma: allowlist secret

            assert sorted(p.name for p in client.list_properties_of_secrets()) == [
                "backed-up", "sql-password", "switched-off",
            ]
        assert [v["name"] for v in lab.list_vaults()] == ["kv-durable"]
    finally:
        control.stop(state)
    assert control.status(state)["running"] is False
