"""The emulator's clock, the soft-delete purge it drives, and Event Grid-style secret events.

The clock belongs to a state directory, so moving it would move time for every
test sharing the session emulator. These tests therefore run against an
emulator of their own (own state directory and port), which `kvlab.connect()`
points this process at for the module; the session emulator's environment is
put back afterwards and the clock is reset after every test.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

import kvlab
from kvlab.emulator import control

from runners import Arm, connection_kept, free_port, officer_vault
from runners import kvlab as run_kvlab

DAY = 86400
FAKE_VALUE = "not-a-real-password"  # pragma: allowlist secret
# What kvlab.connect() changes in this process's environment.
NEW_VERSION = "Microsoft.KeyVault.SecretNewVersionCreated"
NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"
EXPIRED = "Microsoft.KeyVault.SecretExpired"
NEAR_EXPIRY_SECONDS = 30 * DAY


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """An emulator for this module only: its clock can move without touching other tests."""
    state = tmp_path_factory.mktemp("kvlab-clock")
    with connection_kept():
        try:
            yield kvlab.connect(state_dir=state, port=free_port())
        finally:
            control.stop(state)


@pytest.fixture(autouse=True)
def real_time(lab):
    """Every test starts on real time and leaves the clock there."""
    lab.reset_clock()
    try:
        yield
    finally:
        lab.reset_clock()


@pytest.fixture
def vault(lab):
    url = officer_vault(lab, "clk")
    return url.split("//", 1)[1].split(".", 1)[0], url


@pytest.fixture
def client(vault):
    with DefaultAzureCredential() as credential, SecretClient(vault[1], credential) as c:
        yield c


def cli(lab, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_kvlab(*args, state=lab.state_dir, check=check)


def cli_json(lab, *args: str):
    return json.loads(cli(lab, *args).stdout)


def moment(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def assert_near(actual: datetime, expected: datetime, slack: float = 60) -> None:
    assert abs((actual - expected).total_seconds()) <= slack, (actual, expected)


# -- the clock ----------------------------------------------------------------


def test_clock_show_advance_and_reset_via_cli_and_python(lab):
    shown = cli_json(lab, "clock", "show")
    assert shown["offsetSeconds"] == 0 and shown["offsetDays"] == 0
    assert_near(moment(shown["now"]), datetime.now(timezone.utc), slack=5)

    moved = cli_json(lab, "clock", "advance", "--days", "2", "--hours", "3", "--minutes", "4")
    offset = 2 * DAY + 3 * 3600 + 4 * 60
    assert moved["offsetSeconds"] == offset
    assert moved["offsetDays"] == round(offset / DAY, 3)
    assert_near(moment(moved["now"]), datetime.now(timezone.utc) + timedelta(seconds=offset), slack=5)
    assert lab.clock()["offsetSeconds"] == offset  # Python sees what the CLI did

    assert lab.advance_clock(days=1.5)["offsetSeconds"] == offset + 36 * 3600
    assert lab.advance_clock(hours=1, minutes=30)["offsetSeconds"] == offset + 37 * 3600 + 1800
    assert cli_json(lab, "clock", "show")["offsetSeconds"] == offset + 37 * 3600 + 1800

    reset = cli_json(lab, "clock", "reset")
    assert reset["offsetSeconds"] == 0
    assert_near(moment(reset["now"]), datetime.now(timezone.utc), slack=5)
    assert lab.clock()["offsetSeconds"] == 0
    assert lab.advance_clock(days=3)["offsetDays"] == 3
    assert lab.reset_clock()["offsetSeconds"] == 0

    # never backwards: times already recorded stay in the past
    with pytest.raises(ValueError, match="only moves forward"):
        lab.advance_clock(days=-1)
    backwards = cli(lab, "clock", "advance", "--days", "-1", check=False)
    assert backwards.returncode != 0 and "Traceback" not in backwards.stderr
    assert lab.clock()["offsetSeconds"] == 0


def test_created_and_updated_follow_the_moved_clock(lab, vault, client):
    name, _ = vault
    before = client.set_secret("early", FAKE_VALUE).properties
    assert_near(before.created_on, datetime.now(timezone.utc))

    lab.advance_clock(days=10)
    created = client.set_secret("later", FAKE_VALUE).properties
    ten_days_on = datetime.now(timezone.utc) + timedelta(days=10)
    assert_near(created.created_on, ten_days_on)
    assert created.updated_on == created.created_on

    cli(lab, "clock", "advance", "--days", "1")
    updated = client.update_secret_properties("later", content_type="text/plain")
    assert updated.created_on == created.created_on
    assert_near(updated.updated_on, ten_days_on + timedelta(days=1))
    # the earlier secret keeps its real-time dates
    assert client.get_secret("early").properties.created_on == before.created_on
    # and the audit log is written on the same clock
    last = lab.audit(vault=name)[-1]
    assert last["operationName"] == "SecretGet"
    assert_near(moment(last["time"]), ten_days_on + timedelta(days=1))


def test_a_deleted_secret_is_purged_once_its_date_passes(lab, client):
    client.set_secret("old-password", FAKE_VALUE)
    deleted = client.begin_delete_secret("old-password").result()
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
    with pytest.raises(ResourceExistsError):  # the name is taken while the secret is in the bin
        client.set_secret("old-password", FAKE_VALUE)

    cli(lab, "clock", "advance", "--days", "91")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("old-password")
    assert [d.name for d in client.list_deleted_secrets()] == []
    with pytest.raises(ResourceNotFoundError):
        client.begin_recover_deleted_secret("old-password")

    # the name is free again: a new secret, with one version only
    fresh = client.set_secret("old-password", "not-a-real-password-2")  # pragma: allowlist secret
    assert fresh.value == "not-a-real-password-2"  # pragma: allowlist secret
    assert [p.version for p in client.list_properties_of_secret_versions("old-password")] == [fresh.properties.version]


def test_before_the_purge_date_it_stays_recoverable(lab, client):
    version = client.set_secret("kept", FAKE_VALUE).properties.version
    deleted = client.begin_delete_secret("kept").result()

    lab.advance_clock(days=89)
    still = client.get_deleted_secret("kept")
    assert still.scheduled_purge_date == deleted.scheduled_purge_date
    assert [d.name for d in client.list_deleted_secrets()] == ["kept"]
    with pytest.raises(ResourceExistsError):
        client.set_secret("kept", FAKE_VALUE)

    client.begin_recover_deleted_secret("kept").result()
    back = client.get_secret("kept")
    assert back.value == FAKE_VALUE and back.properties.version == version
    # recovered, it is no longer scheduled for purge: days later it is still there
    lab.advance_clock(days=30)
    assert client.get_secret("kept").value == FAKE_VALUE


# -- events -------------------------------------------------------------------


def of_secret(events: list[dict], secret: str) -> list[tuple[str, str]]:
    return [(e["eventType"], e["data"]["Version"]) for e in events if e["subject"] == secret]


def test_each_new_version_is_an_event(lab, vault, client):
    name, url = vault
    first = client.set_secret("api-key", FAKE_VALUE).properties
    second = client.set_secret("api-key", "not-a-real-password-2").properties  # pragma: allowlist secret

    events = lab.events(vault=name)
    assert of_secret(events, "api-key") == [(NEW_VERSION, first.version), (NEW_VERSION, second.version)]
    event = events[0]
    vault_id = next(v["id"] for v in lab.list_vaults() if v["name"] == name)
    assert event["topic"] == vault_id
    assert event["subject"] == "api-key"
    assert moment(event["eventTime"]) == first.created_on
    assert event["dataVersion"] == "1" and event["metadataVersion"] == "1"
    uuid.UUID(event["id"])
    assert event["data"] == {
        "Id": f"{url}secrets/api-key/{first.version}",
        "VaultName": name,
        "ObjectType": "Secret",
        "ObjectName": "api-key",
        "Version": first.version,
        "NBF": None,
        "EXP": None,
    }
    assert events[0]["id"] != events[1]["id"]
    assert FAKE_VALUE not in json.dumps(events)


def test_near_expiry_then_expired_each_once(lab, vault, client):
    name, _ = vault
    exp = int(time.time()) + 40 * DAY
    version = client.set_secret("rotating", FAKE_VALUE, expires_on=at(exp)).properties.version
    assert client.get_secret("rotating").properties.expires_on == at(exp)
    # A secret renewed before its expiry: only the current version's expiry counts.
    client.set_secret("renewed", FAKE_VALUE, expires_on=at(exp))
    renewed = client.set_secret("renewed", FAKE_VALUE).properties.version
    client.set_secret("forever", FAKE_VALUE)
    client.set_secret("next-year", FAKE_VALUE, expires_on=at(exp + 300 * DAY))

    assert of_secret(lab.events(vault=name), "rotating") == [(NEW_VERSION, version)]
    lab.advance_clock(days=9)  # 31 days left: not near yet
    assert of_secret(lab.events(vault=name), "rotating") == [(NEW_VERSION, version)]

    lab.advance_clock(days=2)  # 29 days left
    events = lab.events(vault=name)
    assert of_secret(events, "rotating") == [(NEW_VERSION, version), (NEAR_EXPIRY, version)]
    near = next(e for e in events if e["eventType"] == NEAR_EXPIRY)
    assert moment(near["eventTime"]) == at(exp - 30 * DAY)  # when it became true, not when seen
    assert near["data"]["EXP"] == exp and near["data"]["ObjectName"] == "rotating"
    assert of_secret(lab.events(vault=name), "rotating") == of_secret(events, "rotating")  # once only

    cli(lab, "clock", "advance", "--days", "30")  # one day past the expiry
    events = lab.events(vault=name)
    assert of_secret(events, "rotating") == [(NEW_VERSION, version), (NEAR_EXPIRY, version), (EXPIRED, version)]
    expired = next(e for e in events if e["eventType"] == EXPIRED)
    assert moment(expired["eventTime"]) == at(exp)

    lab.advance_clock(days=5)
    again = lab.events(vault=name)
    assert [e["eventType"] for e in again].count(NEAR_EXPIRY) == 1
    assert [e["eventType"] for e in again].count(EXPIRED) == 1
    assert of_secret(again, "renewed")[-1] == (NEW_VERSION, renewed)
    assert {t for t, _ in of_secret(again, "renewed")} == {NEW_VERSION}
    assert {t for t, _ in of_secret(again, "forever")} == {NEW_VERSION}
    assert {t for t, _ in of_secret(again, "next-year")} == {NEW_VERSION}

    # Key Vault does not enforce exp: the expired secret is still readable.
    expired_secret = client.get_secret("rotating")
    assert expired_secret.value == FAKE_VALUE and expired_secret.properties.expires_on == at(exp)


def test_a_version_comes_before_the_expiry_events_it_causes(lab, vault, client):
    """Set close to (or past) its expiry, a version's expiry events share its moment but follow it."""
    name, _ = vault
    soon = client.set_secret("soon", FAKE_VALUE, expires_on=at(int(time.time()) + 10 * DAY)).properties.version
    past = client.set_secret("past", FAKE_VALUE, expires_on=at(int(time.time()) - DAY)).properties.version

    events = cli_json(lab, "events", "--vault", name)
    assert of_secret(events, "soon") == [(NEW_VERSION, soon), (NEAR_EXPIRY, soon)]
    assert of_secret(events, "past") == [(NEW_VERSION, past), (NEAR_EXPIRY, past), (EXPIRED, past)]
    assert events == lab.events(vault=name)
    times = [moment(e["eventTime"]) for e in events]
    assert times == sorted(times)


def test_a_new_version_does_not_swallow_the_expiry_event_its_predecessor_reached(lab, vault, client):
    """Renewed after the old version's near-expiry moment passed unseen, both stay in causal order."""
    name, _ = vault
    exp = int(time.time()) + NEAR_EXPIRY_SECONDS + 2
    old = client.set_secret("renew-me", FAKE_VALUE, expires_on=at(exp)).properties.version
    time.sleep(max(0.0, exp - NEAR_EXPIRY_SECONDS - time.time()) + 1.2)  # the moment passes; nobody looks
    new = client.set_secret("renew-me", FAKE_VALUE).properties.version

    events = lab.events(vault=name)
    assert of_secret(events, "renew-me") == [(NEW_VERSION, old), (NEAR_EXPIRY, old), (NEW_VERSION, new)]
    near = next(e for e in events if e["eventType"] == NEAR_EXPIRY)
    assert moment(near["eventTime"]) == at(exp - NEAR_EXPIRY_SECONDS)


def test_a_long_jump_publishes_both_expiry_events_with_their_own_times(lab, vault, client):
    name, _ = vault
    exp = int(time.time()) + 40 * DAY
    version = client.set_secret("jumped", FAKE_VALUE, expires_on=at(exp)).properties.version
    advanced = cli_json(lab, "clock", "advance", "--days", "45")
    assert advanced["offsetDays"] == 45
    events = [e for e in lab.events(vault=name) if e["subject"] == "jumped"]
    assert [(e["eventType"], moment(e["eventTime"])) for e in events[1:]] == [
        (NEAR_EXPIRY, at(exp - 30 * DAY)), (EXPIRED, at(exp)),
    ]
    assert {e["data"]["Version"] for e in events} == {version}


def test_cli_events_filters_by_vault(lab, vault, client):
    name, _ = vault
    client.set_secret("mine", FAKE_VALUE)
    other_url = officer_vault(lab, "clk")
    other = other_url.split("//", 1)[1].split(".", 1)[0]
    with DefaultAzureCredential() as credential, SecretClient(other_url, credential) as elsewhere:
        elsewhere.set_secret("theirs", FAKE_VALUE)

    mine = cli_json(lab, "events", "--vault", name)
    assert [(e["eventType"], e["subject"], e["data"]["VaultName"]) for e in mine] == [(NEW_VERSION, "mine", name)]
    assert mine == lab.events(vault=name)
    assert cli_json(lab, "events", "--vault", name.upper()) == mine
    assert [e["subject"] for e in cli_json(lab, "events", "--vault", other)] == ["theirs"]
    everything = cli_json(lab, "events")
    assert {"mine", "theirs"} <= {e["subject"] for e in everything}

    table = cli(lab, "events", "--vault", name, "-o", "table").stdout.splitlines()
    assert table[0].split() == ["eventTime", "eventType", "vault", "secret", "version"]
    assert table[2].split()[1:4] == ["SecretNewVersionCreated", name, "mine"]


def recorded(lab, vault: str, secret: str) -> list[str]:
    """The events the emulator recorded for ``secret``, read from its database (no sweep, as a webhook's
    delivery sees them), oldest first."""
    import sqlite3

    with sqlite3.connect(lab.state_dir / "kvlab.db") as db:
        return [kind for (kind,) in db.execute("SELECT kind FROM events WHERE vault = ? AND name = ? ORDER BY seq",
                                               (vault, secret))]


def test_a_write_records_the_expiry_events_that_came_due_since_the_last(lab, vault, client):
    """Issue #14: a write looks only at the moments passed since the last sweep (its cost no longer grows with
    the secrets that expire), yet records its own version's due events and those that came due since."""
    name, _ = vault
    client.set_secret("first", FAKE_VALUE)
    client.set_secret("soon", FAKE_VALUE, expires_on=at(int(time.time()) + 10 * DAY))  # the same second, likely
    assert recorded(lab, name, "soon") == [NEW_VERSION, NEAR_EXPIRY]
    exp = int(time.time()) + NEAR_EXPIRY_SECONDS + 2
    client.set_secret("later", FAKE_VALUE, expires_on=at(exp))
    assert recorded(lab, name, "later") == [NEW_VERSION]
    time.sleep(max(0.0, exp - NEAR_EXPIRY_SECONDS - time.time()) + 1.2)  # its near-expiry moment passes
    client.set_secret("unrelated", FAKE_VALUE)  # any write
    assert recorded(lab, name, "later") == [NEW_VERSION, NEAR_EXPIRY]


def test_a_deleted_vault_publishes_no_events_and_is_purged_on_its_date(lab, vault, client):
    """Deleted through Resource Manager (`az keyvault delete`), a vault's secrets come near their expiry unseen;
    its scheduled purge date passes and its name is free again."""
    name, _ = vault
    client.set_secret("due-soon", FAKE_VALUE, expires_on=at(int(time.time()) + 40 * DAY))
    learner = Arm(lab)
    path = f"{learner.sub}/resourceGroups/kvlab/providers/Microsoft.KeyVault/vaults/{name}"
    assert learner("DELETE", path).status_code == 200
    lab.advance_clock(days=11)  # 29 days left: a live vault would publish SecretNearExpiry now
    assert NEAR_EXPIRY not in {e["eventType"] for e in lab.events(vault=name)}
    assert name in lab.list_deleted_vaults()
    deleted = learner("GET", f"{learner.sub}/providers/Microsoft.KeyVault/locations/kvlab/deletedVaults/{name}")
    until = deleted.json()["properties"]["scheduledPurgeDate"][:10]
    with pytest.raises(ValueError) as taken:  # from a notebook: the one line a learner sees
        lab.create_vault(name)
    assert str(taken.value) == (f"vault '{name}' is deleted and its name stays taken until {until} (the vault's "
                                f"clock): recover it (az keyvault recover --name {name}) or purge it (az keyvault "
                                f"purge --name {name})")
    lab.advance_clock(days=80)  # past its 90 days of retention
    assert name not in lab.list_deleted_vaults()
    lab.create_vault(name)  # the name is free again
