"""The audit log: every data-plane request is one AuditEvent-style record, never a value.

Completeness is measured from the client side: a client-level azure-core
``raw_response_hook`` (public API) sees every raw HTTP exchange the SDK makes,
the challenge round trip and the delete/recover pollers included, and the
vault must hold exactly one record per exchange, in order, each field matching
what was sent and answered.

Each test uses a vault of its own on the session emulator, so its records are
exactly that vault's records.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from runners import kvlab, officer_vault

PLANTED = "not-a-real-password"  # pragma: allowlist secret

# The record's fields, in order: Key Vault's AuditEvent, flattened for DataFrames.
COLUMNS = [
    "time", "vault", "operationName", "operationVersion", "category", "resultType",
    "resultSignature", "resultDescription", "httpStatusCode", "durationMs", "callerIpAddress",
    "correlationId", "identity", "callerOid", "callerAppId", "secretName", "secretVersion",
    "requestUri", "resourceId",
]
SIGNATURES = {200: "OK", 204: "NoContent", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
ALL_OPERATIONS = {
    "SecretGet", "SecretSet", "SecretList", "SecretListVersions", "SecretUpdate", "SecretDelete",
    "SecretListDeleted", "SecretGetDeleted", "SecretRecover", "SecretPurge", "SecretBackup",
    "SecretRestore",
}


def operation_of(method: str, segments: list[str]) -> str:
    """Key Vault's operationName for a request (written out here, independently of the emulator)."""
    match method, segments:
        case "GET", ["secrets"]:
            return "SecretList"
        case "POST", ["secrets", "restore"]:
            return "SecretRestore"
        case "GET", ["secrets", _, "versions"]:
            return "SecretListVersions"
        case "POST", ["secrets", _, "backup"]:
            return "SecretBackup"
        case "GET", ["secrets", _] | ["secrets", _, _]:
            return "SecretGet"
        case "PUT", ["secrets", _]:
            return "SecretSet"
        case "PATCH", ["secrets", _] | ["secrets", _, _]:
            return "SecretUpdate"
        case "DELETE", ["secrets", _]:
            return "SecretDelete"
        case "GET", ["deletedsecrets"]:
            return "SecretListDeleted"
        case "GET", ["deletedsecrets", _]:
            return "SecretGetDeleted"
        case "DELETE", ["deletedsecrets", _]:
            return "SecretPurge"
        case "POST", ["deletedsecrets", _, "recover"]:
            return "SecretRecover"
    raise AssertionError(f"the SDK sent an unexpected request: {method} {segments}")


@dataclass
class Exchange:
    """One raw HTTP request the SDK sent and the answer it got."""

    caller: str  # which identity the client was built for
    method: str
    url: str
    request_id: str
    authorized: bool
    status: int
    body: dict | None

    @property
    def segments(self) -> list[str]:
        return [unquote(s) for s in urlsplit(self.url).path.strip("/").split("/")]

    def expected_names(self) -> tuple[str | None, str | None]:
        """(secretName, secretVersion): from the path, or from the secret id in the answer."""
        segments = self.segments
        name = segments[1] if len(segments) > 1 and segments[1] not in ("restore",) else None
        version = segments[2] if len(segments) == 3 and segments[2] not in ("versions", "backup", "recover", "") else None
        sid = (self.body or {}).get("id")
        if isinstance(sid, str) and "/secrets/" in sid:
            parts = sid.split("/secrets/", 1)[1].split("/")
            name, version = parts[0], parts[1] if len(parts) > 1 else version
        return name, version


class Recorder:
    """A client-level raw_response_hook per client: every exchange, in the order answered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.exchanges: list[Exchange] = []

    def hook(self, caller: str):
        def on_response(response) -> None:
            request, answer = response.http_request, response.http_response
            try:
                body = json.loads(answer.text()) if answer.text() else None
            except ValueError:
                body = None
            with self.lock:
                self.exchanges.append(Exchange(
                    caller=caller, method=request.method, url=request.url,
                    request_id=request.headers["x-ms-client-request-id"],
                    authorized="Authorization" in request.headers,
                    status=answer.status_code, body=body if isinstance(body, dict) else None,
                ))
        return on_response


def vault_name(url: str) -> str:
    return urlsplit(url).hostname.split(".", 1)[0]


def kvlab_cli(emulator, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return kvlab(*args, state=emulator.state_dir, check=check)


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


@pytest.fixture(scope="module")
def workload(emulator):
    """A mixed workload in a new vault; returns what the clients saw and the values planted.

    Run once per module (per xdist worker): the tests below only read its records. It starts the clock at
    today: a notebook run earlier in this process may have left it a month on.
    """
    emulator.reset_clock()
    url = officer_vault(emulator, "aud")
    name = vault_name(url)
    stranger = emulator.create_identity(f"id-audit-{uuid.uuid4().hex[:8]}")  # holds no role
    learner = emulator.identity("learner")
    token = uuid.uuid4().hex
    values = {key: f"{PLANTED}-{key}-{token}" for key in ("a1", "a2", "b", "c", "d", "denied")}
    recorder = Recorder()
    assert emulator.audit(vault=name) == []

    with DefaultAzureCredential() as credential, SecretClient(
        url, credential, raw_response_hook=recorder.hook("learner")
    ) as client:
        v1 = client.set_secret("alpha", values["a1"]).properties.version  # the 401 challenge first
        v2 = client.set_secret("alpha", values["a2"]).properties.version
        client.set_secret("bravo", values["b"])
        client.set_secret("charlie", values["c"], content_type="text/plain", tags={"env": "lab"})
        client.set_secret("delta", values["d"])
        assert client.get_secret("alpha").value == values["a2"]
        assert client.get_secret("alpha", v1).value == values["a1"]
        with pytest.raises(ResourceNotFoundError):
            client.get_secret("missing")
        names = [p.name for p in client.list_properties_of_secrets(max_page_size=2)]
        assert names == ["alpha", "bravo", "charlie", "delta"]
        assert [p.version for p in client.list_properties_of_secret_versions("alpha", max_page_size=1)] == [v1, v2]
        client.update_secret_properties("alpha", v1, content_type="text/plain")
        blob = client.backup_secret("bravo")
        client.begin_delete_secret("bravo").result()
        client.purge_deleted_secret("bravo")
        client.restore_secret_backup(blob)
        client.begin_delete_secret("charlie").result()
        assert [d.name for d in client.list_deleted_secrets()] == ["charlie"]
        client.get_deleted_secret("charlie")
        client.begin_recover_deleted_secret("charlie").result()
        with pytest.raises(ResourceNotFoundError):
            client.get_deleted_secret("never-deleted")

    with ManagedIdentityCredential(client_id=stranger["clientId"]) as credential, SecretClient(
        url, credential, raw_response_hook=recorder.hook(stranger["name"])
    ) as client:
        for attempt in (lambda: client.get_secret("alpha"), lambda: client.set_secret("alpha", values["denied"])):
            with pytest.raises(HttpResponseError) as denied:
                attempt()
            assert denied.value.status_code == 403

    with DefaultAzureCredential() as credential, SecretClient(
        url, credential, raw_response_hook=recorder.hook("learner")
    ) as client:  # a fresh client, as a new kernel would have
        assert client.get_secret("delta").value == values["d"]

    return {
        "name": name, "url": url, "exchanges": recorder.exchanges, "values": values,
        "learner": learner, "stranger": stranger, "versions": (v1, v2),
    }


def test_every_request_is_one_record_with_the_right_fields(emulator, workload):
    started = datetime.now(timezone.utc)
    records = emulator.audit(vault=workload["name"])
    exchanges: list[Exchange] = workload["exchanges"]
    # the workload covers every operation and every kind of outcome
    assert {operation_of(e.method, e.segments) for e in exchanges} == ALL_OPERATIONS
    assert {e.status for e in exchanges} >= {200, 204, 401, 403, 404}
    assert sum(1 for e in exchanges if e.status == 401 and not e.authorized) >= 1
    assert len(records) == len(exchanges)

    vault_id = next(v["id"] for v in emulator.list_vaults() if v["name"] == workload["name"])
    who = {"learner": workload["learner"], workload["stranger"]["name"]: workload["stranger"]}
    for index, (record, sent) in enumerate(zip(records, exchanges)):
        where = f"record {index}: {sent.method} {sent.url} -> {sent.status}"
        assert list(record) == COLUMNS, where
        assert record["vault"] == workload["name"], where
        assert record["category"] == "AuditEvent", where
        assert record["operationName"] == operation_of(sent.method, sent.segments), where
        assert record["httpStatusCode"] == sent.status, where
        assert record["resultSignature"] == SIGNATURES[sent.status], where
        assert record["resultType"] == ("Success" if sent.status < 400 else "Failure"), where
        assert record["correlationId"] == sent.request_id, where
        assert record["requestUri"] == sent.url, where
        assert record["resourceId"] == vault_id, where
        assert record["callerIpAddress"] == "127.0.0.1", where
        assert isinstance(record["durationMs"], (int, float)) and 0 <= record["durationMs"] < 30_000, where
        assert abs((parse_time(record["time"]) - started).total_seconds()) < 120, where
        assert (record["secretName"], record["secretVersion"]) == sent.expected_names(), where
        if sent.authorized:
            identity = who[sent.caller]
            assert record["identity"] == identity["name"], where
            assert record["callerOid"] == identity["principalId"], where
            assert record["callerAppId"] == identity["clientId"], where
            assert record["operationVersion"] == parse_qs(urlsplit(sent.url).query)["api-version"][0], where
        else:  # the SDK's first, unauthenticated request: answered with the challenge
            assert sent.status == 401, where
            assert (record["identity"], record["callerOid"], record["callerAppId"]) == (None, None, None), where
        description = {401: "Unauthorized", 403: "ForbiddenByRbac"}.get(sent.status, "")
        if sent.status == 404:
            description = "SecretNotFound"
        assert record["resultDescription"] == description, where

    # Spot checks written out in full, so the generic derivation above cannot hide a mistake.
    v1, v2 = workload["versions"]
    first = records[0]
    assert (first["operationName"], first["httpStatusCode"], first["secretName"], first["identity"]) == (
        "SecretSet", 401, "alpha", None
    )
    assert (records[1]["operationName"], records[1]["httpStatusCode"], records[1]["secretVersion"]) == (
        "SecretSet", 200, v1
    )
    assert records[1]["correlationId"] == records[0]["correlationId"]  # one call, two requests
    gets = [(r["secretName"], r["secretVersion"], r["httpStatusCode"]) for r in records
            if r["operationName"] == "SecretGet" and r["identity"] == "learner"]
    assert gets[:3] == [("alpha", v2, 200), ("alpha", v1, 200), ("missing", None, 404)]
    denied = [r for r in records if r["httpStatusCode"] == 403]
    assert [(r["operationName"], r["identity"], r["secretName"], r["resultDescription"]) for r in denied] == [
        ("SecretGet", workload["stranger"]["name"], "alpha", "ForbiddenByRbac"),
        ("SecretSet", workload["stranger"]["name"], "alpha", "ForbiddenByRbac"),
    ]
    pages = [r for r in records if r["operationName"] == "SecretList"]
    assert len(pages) == 2 and "$skiptoken=" in pages[1]["requestUri"]
    assert [r["secretVersion"] for r in records if r["operationName"] == "SecretUpdate"] == [v1]
    assert [r["httpStatusCode"] for r in records if r["operationName"] == "SecretPurge"] == [204]
    assert [r["secretName"] for r in records if r["operationName"] == "SecretRestore"] == ["bravo"]


def test_no_secret_value_is_ever_recorded_or_logged(emulator, workload):
    records = emulator.audit(vault=workload["name"])
    assert records
    dumped = json.dumps(records)
    for value in workload["values"].values():
        assert value not in dumped
    assert PLANTED not in dumped
    assert all("value" not in record for record in records)

    cli = kvlab_cli(emulator, "audit", "--vault", workload["name"]).stdout
    table = kvlab_cli(emulator, "audit", "--vault", workload["name"], "-o", "table").stdout
    log = (Path(emulator.state_dir) / "emulator.log").read_text(errors="replace")
    for value in workload["values"].values():
        assert value not in cli
        assert value not in table
        assert value not in log


def test_filters_in_python(emulator, workload):
    name, stranger = workload["name"], workload["stranger"]
    everything = emulator.audit(vault=name)
    assert emulator.audit(vault=name.upper()) == everything  # vault names are case-insensitive

    by_stranger = emulator.audit(identity=stranger["name"])
    assert len(by_stranger) == 2 and {r["identity"] for r in by_stranger} == {stranger["name"]}
    assert emulator.audit(identity=stranger["clientId"]) == by_stranger  # by id, as `az` allows
    assert emulator.audit(identity=stranger["principalId"]) == by_stranger

    learner = emulator.audit(vault=name, identity="learner")
    authorized = [e for e in workload["exchanges"] if e.authorized and e.caller == "learner"]
    assert len(learner) == len(authorized)
    assert {r["identity"] for r in learner} == {"learner"}
    unauthenticated = [r for r in everything if r["identity"] is None]
    assert len(learner) + len(by_stranger) + len(unauthenticated) == len(everything)

    assert emulator.audit(vault=name, since="15m") == everything
    assert emulator.audit(vault=name, since="2h") == everything
    future = datetime.fromtimestamp(time.time() + 3600, tz=timezone.utc).isoformat()
    assert emulator.audit(vault=name, since=future) == []
    with pytest.raises(ValueError, match="invalid --since"):
        emulator.audit(vault=name, since="yesterday")
    with pytest.raises(ValueError, match="no identity"):
        emulator.audit(identity=f"nobody-{uuid.uuid4().hex[:6]}")


def test_since_splits_the_log_at_a_moment(emulator, client, vault_url):
    name = vault_name(vault_url)
    client.set_secret("before", f"{PLANTED}-before")
    assert [r["secretName"] for r in emulator.audit(vault=name)][-1] == "before"
    moment = int(time.time()) + 1  # records carry whole seconds: start the second half on a new one
    while time.time() < moment:
        time.sleep(0.02)
    client.get_secret("before")
    client.set_secret("after", f"{PLANTED}-after")

    iso = datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = emulator.audit(vault=name, since=iso)
    assert [(r["operationName"], r["secretName"]) for r in later] == [("SecretGet", "before"), ("SecretSet", "after")]
    assert all(parse_time(r["time"]).timestamp() >= moment for r in later)
    # a time without a zone is UTC
    assert emulator.audit(vault=name, since=iso[:-1]) == later
    assert json.loads(kvlab_cli(emulator, "audit", "--vault", name, "--since", iso).stdout) == later
    earlier = [r for r in emulator.audit(vault=name) if r not in later]
    assert earlier and all(parse_time(r["time"]).timestamp() < moment for r in earlier)


def test_cli_prints_json_and_filters(emulator, workload):
    name, stranger = workload["name"], workload["stranger"]
    printed = json.loads(kvlab_cli(emulator, "audit", "--vault", name).stdout)
    assert printed == emulator.audit(vault=name)
    assert len(printed) == len(workload["exchanges"])

    by_stranger = json.loads(kvlab_cli(emulator, "audit", "--identity", stranger["name"]).stdout)
    assert [(r["operationName"], r["httpStatusCode"]) for r in by_stranger] == [("SecretGet", 403), ("SecretSet", 403)]
    both = json.loads(kvlab_cli(emulator, "audit", "--vault", name, "--identity", "learner", "--since", "15m").stdout)
    assert both == emulator.audit(vault=name, identity="learner")
    other_vault = officer_vault(emulator, "aud")
    assert json.loads(kvlab_cli(emulator, "audit", "--vault", vault_name(other_vault)).stdout) == []

    bad = kvlab_cli(emulator, "audit", "--since", "yesterday", check=False)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("error: invalid --since 'yesterday'") and len(bad.stderr.strip().splitlines()) == 1
    unknown = kvlab_cli(emulator, "audit", "--identity", "nobody-here", check=False)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: no identity 'nobody-here'")


def test_cli_table_output(emulator, workload, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that no cell wraps (tables fit the terminal)
    name, stranger = workload["name"], workload["stranger"]
    lines = kvlab_cli(emulator, "audit", "--vault", name, "-o", "table").stdout.rstrip("\n").splitlines()
    assert lines[0].split() == [
        "time", "vault", "operationName", "identity", "secretName", "httpStatusCode", "resultDescription",
    ]
    assert set(lines[1]) <= {"-", " "}
    rows = lines[2:]
    assert len(rows) == len(workload["exchanges"])
    assert rows[0].split()[1:] == [name, "SecretSet", "alpha", "401", "Unauthorized"]  # no identity yet
    denied = [row.split() for row in rows if " 403 " in row]
    assert [row[1:] for row in denied] == [
        [name, "SecretGet", stranger["name"], "alpha", "403", "ForbiddenByRbac"],
        [name, "SecretSet", stranger["name"], "alpha", "403", "ForbiddenByRbac"],
    ]
    empty = kvlab_cli(emulator, "audit", "--vault", vault_name(officer_vault(emulator, "aud")), "-o", "table")
    assert empty.stdout.strip() == "(none)"


def test_records_drop_straight_into_a_dataframe(emulator, workload):
    pandas = pytest.importorskip("pandas")
    records = emulator.audit(vault=workload["name"])
    frame = pandas.DataFrame(records)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == len(workload["exchanges"])
    assert str(frame["httpStatusCode"].dtype) == "int64"
    counts = frame.groupby("operationName").size().to_dict()
    assert set(counts) == ALL_OPERATIONS
    assert counts["SecretList"] == 2 and counts["SecretRestore"] == 1 and counts["SecretPurge"] == 1
    denied = frame[frame["resultDescription"] == "ForbiddenByRbac"]
    assert denied["identity"].tolist() == [workload["stranger"]["name"]] * 2
    assert pandas.to_datetime(frame["time"]).is_monotonic_increasing


def test_a_request_to_an_unknown_vault_is_recorded_too(emulator):
    name = f"gone{uuid.uuid4().hex[:10]}"
    recorder = Recorder()
    with DefaultAzureCredential() as credential, SecretClient(
        emulator.vault_url(name), credential, raw_response_hook=recorder.hook("learner")
    ) as client:
        with pytest.raises(ResourceNotFoundError):
            client.get_secret("anything")
    records = emulator.audit(vault=name)
    assert [e.status for e in recorder.exchanges] == [401, 404]
    assert [(r["operationName"], r["httpStatusCode"], r["resultDescription"], r["identity"]) for r in records] == [
        ("SecretGet", 401, "Unauthorized", None),
        ("SecretGet", 404, "VaultNotFound", "learner"),
    ]
    assert [r["correlationId"] for r in records] == [e.request_id for e in recorder.exchanges]
