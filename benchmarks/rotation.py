"""Lesson 06's rotation: how long its set-up and a run of the three consumers take, as a learner's kernel does them.

Prints the set-up (`kvlab.start_lesson("06")`: the week of reads, the database, the orders scene), then one
`Consumers(lesson).run(days)` with the solution's rotation subscribed, in seconds and milliseconds per simulated
day, then one JSON line. Uses its own state directory and a free port; nothing here asserts on a number.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from kvlab.paths import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=180, help="simulated days of the run (default 180)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kvlab-bench-rotation-"))
    port = free_port()
    os.environ.update(KVLAB_STATE_DIR=str(work / "state"), KVLAB_PORT=str(port))
    os.chdir(work)  # the factory folder the set-up writes beside the notebook

    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    import kvlab
    from kvlab import db
    from kvlab.checks.lesson06 import LOGINS, ORDERS_SECRET, ORDERS_VAULT, Consumers, connection_string
    from kvlab.emulator import control
    from kvlab.webhook import Webhook

    try:
        started = time.perf_counter()
        kvlab.connect()
        connected = time.perf_counter()
        lesson = kvlab.start_lesson("06")
        set_up = time.perf_counter()
        orders = SecretClient(lesson.vault_url(ORDERS_VAULT), DefaultAzureCredential())

        def rotate(event):
            active = orders.get_secret(ORDERS_SECRET).properties.tags["login"]
            standby = next(login for login in LOGINS if login != active)
            password = secrets.token_urlsafe(32)
            db.set_password(standby, password)
            orders.set_secret(ORDERS_SECRET, connection_string(standby, password), tags={"login": standby},
                              expires_on=event.event_time + timedelta(days=90))

        with Webhook(rotate) as hook:
            lesson.lab.create_event_subscription("bench-rotation", ORDERS_VAULT, hook.url, ["SecretNearExpiry"])
            before = time.perf_counter()
            report = Consumers(lesson).run(days=args.days)
            ran = time.perf_counter()
        figures = {"emulator_start_s": round(connected - started, 2), "set_up_s": round(set_up - connected, 2),
                   "run_days": args.days, "run_s": round(ran - before, 2),
                   "ms_per_day": round((ran - before) / args.days * 1000, 1),
                   "connections": int(report.connections.sum()), "failed": int(report.failed.sum())}
        print(f"emulator start  {figures['emulator_start_s']:6.2f} s")
        print(f"lesson set-up   {figures['set_up_s']:6.2f} s")
        print(f"consumers run   {figures['run_s']:6.2f} s for {args.days} days ({figures['ms_per_day']} ms a day, "
              f"{figures['connections']} connections, {figures['failed']} failed)")
        print(json.dumps(figures))
    finally:
        db.stop(work / "state")
        control.stop(work / "state")


if __name__ == "__main__":
    sys.exit(main())
