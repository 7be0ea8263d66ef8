"""Print what one `set_secret` costs as the vault grows, through the real SDK (issue #14's target: within 1.5x of
the 10-secret figure at 1,000 and 10,000 secrets, and with 300 of them expiring within 30 days).

    .venv/bin/python benchmarks/writes.py [--calls 1000]

Each scenario is a new state directory and a new emulator (`kvlab emulator start`); the vault is filled through
the emulator's own domain objects in this process (as fast as SQLite allows), then `SecretClient.set_secret`
with `DefaultAzureCredential` writes new versions of one secret, one client thread, in four rounds that take
the scenarios in turn (the emulator restarted each time). Prints a table (median and
95th percentile in ms), then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kvlab.emulator import control
from kvlab.emulator.clock import DAY
from kvlab.emulator.state import State
from kvlab.emulator.vaults import Attributes

SCENARIOS = (("10 secrets", 10, 0), ("1,000 secrets", 1000, 0), ("10,000 secrets", 10_000, 0),
             ("1,000 secrets, 300 expiring within 30 days", 1000, 300))
VALUE = "not-a-real-value"  # pragma: allowlist secret
ROUNDS = 4


def fill(state_dir: Path, vault: str, secrets: int, expiring: int) -> None:
    with State(state_dir) as state:
        now = state.clock.now()
        for i in range(secrets):
            exp = now + (1 + i % 29) * DAY if i < expiring else None
            state.vaults.set_secret(vault, f"filler-{i}", VALUE, attributes=Attributes(exp=exp))


def scenario(state_dir: Path, secrets: int, expiring: int, calls: int) -> list[float]:
    """``calls`` timed writes against the emulator of ``state_dir``, filled on the first visit."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    import kvlab

    new = not state_dir.exists()
    lab = kvlab.connect(state_dir)
    try:
        url = lab.vault_url("kvbench") if not new else lab.create_vault("kvbench")["vaultUri"]
        if new:
            lab.assign_role("Key Vault Secrets Officer", "learner", "kvbench")
            fill(state_dir, "kvbench", secrets, expiring)
        with DefaultAzureCredential() as credential, SecretClient(url, credential) as client:
            for _ in range(20):  # warm-up: token, connection, caches
                client.set_secret("bench", VALUE)
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                client.set_secret("bench", VALUE)
                times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        control.stop(state_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="kvlab-bench-writes-") as root:
        os.environ.pop("KVLAB_STATE_DIR", None)
        times: dict[str, list[float]] = {label: [] for label, _, _ in SCENARIOS}
        for _ in range(ROUNDS):  # in turn, so that a busy moment of the machine does not fall on one scenario
            for label, secrets, expiring in SCENARIOS:
                times[label] += scenario(Path(root) / f"s{secrets}-{expiring}", secrets, expiring,
                                         args.calls // ROUNDS)
        for label, measured in times.items():
            figures[label] = {"median_ms": round(statistics.median(measured), 2),
                              "p95_ms": round(statistics.quantiles(measured, n=20)[-1], 2)}
    base = figures[SCENARIOS[0][0]]["median_ms"]
    print(f"{'vault':<45} {'median ms':>10} {'p95 ms':>8} {'x 10 secrets':>13}")
    for label, figure in figures.items():
        print(f"{label:<45} {figure['median_ms']:>10.2f} {figure['p95_ms']:>8.2f} {figure['median_ms'] / base:>13.2f}")
    print(json.dumps({"set_secret": figures, "calls": args.calls, "python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
