"""Soak the emulator: many SDK clients at once for a while, then print what it answered and how its state grew.

    .venv/bin/python benchmarks/soak.py [--clients 8] [--seconds 60]

The review that filed issue #14 ran 8 clients for 60 seconds: 0 errors, and the database grew 33 MB a minute with
nothing ever trimmed. Each client here is a real `SecretClient` with `DefaultAzureCredential`, in its own thread,
looping over set, get, list (25 a page) and a get that is refused (403), against an emulator of its own state directory; a
ninth thread asks `kvlab emulator status` once a second, as the CLI would. Prints requests, errors by kind,
throughput, the database's growth per minute and the audit log's record count, then one JSON line.
"""

from __future__ import annotations

import argparse
import collections
import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from kvlab.emulator import control
from kvlab.paths import free_port

VALUE = "not-a-real-value"  # pragma: allowlist secret


def size(state: Path) -> int:
    return sum(p.stat().st_size for p in state.glob("kvlab.db*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--keep", type=int, default=None,
                        help="audit records to keep (`kvlab audit retention --records`); default: the emulator's")
    args = parser.parse_args()

    from azure.core.exceptions import HttpResponseError
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    import kvlab

    state = Path(tempfile.mkdtemp(prefix="kvlab-bench-soak-")) / "state"
    lab = kvlab.connect(state, port=free_port())
    try:
        lab.create_vault("kvsoak")
        lab.create_vault("kvsoak-locked")  # nobody holds a role here: every read is a 403
        lab.assign_role("Key Vault Secrets Officer", "learner", "kvsoak")
        if args.keep is not None:
            lab.retention(records=args.keep)
        url, locked = lab.vault_url("kvsoak"), lab.vault_url("kvsoak-locked")
        counts: collections.Counter = collections.Counter()
        statuses: collections.Counter = collections.Counter()
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds
        before, audited_before = size(state), lab.audit_position()

        def client(n: int) -> None:
            with DefaultAzureCredential() as credential, SecretClient(url, credential) as c, \
                    SecretClient(locked, credential, retry_total=0) as refused:
                i = 0
                while time.monotonic() < deadline:
                    name = f"soak-{n}-{i % 50}"
                    try:
                        c.set_secret(name, VALUE)
                        c.get_secret(name)
                        sum(1 for _ in c.list_properties_of_secrets(max_page_size=25))
                        try:
                            refused.get_secret("anything")
                        except HttpResponseError as exc:
                            kind = "refused 403 (expected)" if exc.status_code == 403 else f"error {exc.status_code}"
                        else:
                            kind = "error: a locked vault answered"
                        with lock:
                            counts["rounds"] += 1
                            counts[kind] += 1
                    except Exception as exc:  # counted, never fatal: the figure is what failed
                        with lock:
                            counts[f"error: {type(exc).__name__}"] += 1
                    i += 1

        def watcher() -> None:
            while time.monotonic() < deadline:
                answer = control.status(state)
                with lock:
                    statuses["answering" if answer.get("answering") else "NOT answering"] += 1
                time.sleep(1)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        threads.append(threading.Thread(target=watcher))
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        grown = size(state) - before
        requests = lab.audit_position() - audited_before  # every vault request has its record
        with sqlite3.connect(state / "kvlab.db") as db:
            records = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    finally:
        control.stop(state)
    errors = {k: v for k, v in counts.items() if k.startswith("error")}
    figures = {"clients": args.clients, "seconds": round(elapsed, 1), "rounds": counts["rounds"], "requests": requests,
               "requests_per_s": round(requests / elapsed), "errors": errors,
               "status_probes": dict(statuses), "db_growth_mb_per_minute": round(grown / 2**20 / elapsed * 60, 1),
               "audit_records": records}
    print(f"{args.clients} clients for {elapsed:.0f} s: {counts['rounds']} rounds of set, get, list and a refused get, "
          f"{requests} vault requests ({figures['requests_per_s']}/s), errors: {errors or 'none'}")
    print(f"`kvlab emulator status` once a second: {dict(statuses)}")
    print(f"database growth: {figures['db_growth_mb_per_minute']} MB a minute; audit records kept: {records}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
