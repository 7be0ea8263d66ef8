"""The class dashboard under a class: N learners posting results at workshop pace, then all at once.

Starts `kvlab workshop serve` in its own process, joins N learners, keeps one instructor page's event stream open
(as the browser's EventSource does) and prints, for each phase, the learners' request latency and the page's
update delay (from a result's POST to its event on the page's stream): median, 95th percentile and worst.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from kvlab.paths import free_port

KVLAB = str(Path(sys.executable).with_name("kvlab"))


def start(directory: Path) -> tuple[subprocess.Popen, dict, str]:
    port = free_port()
    process = subprocess.Popen([KVLAB, "workshop", "serve", "--port", str(port), "--dir", str(directory)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    printed = ""
    assert process.stdout is not None
    for line in process.stdout:
        printed += line
        if line.rstrip() == "}":
            break
    return process, json.loads(printed), f"http://127.0.0.1:{port}"


def figures(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   worst {values[-1] * 1000:7.1f} ms"


async def page(base: str, key: str, seen: dict, ready: asyncio.Event) -> None:
    """The instructor page's event stream: when each result's event arrived."""
    async with httpx.AsyncClient(timeout=None) as client:
        async with client.stream("GET", f"{base}/instructor/events", headers={"Authorization": f"Bearer {key}"}) as s:
            event = ""
            async for line in s.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                    if event == "snapshot":
                        ready.set()
                elif line.startswith("data:") and event == "result":
                    cell = json.loads(line[5:])
                    seen[(cell["learner"], cell["exercise"])] = time.perf_counter()


async def run(learners: int, pace_seconds: float, per_learner: int) -> dict:
    with tempfile.TemporaryDirectory() as where:
        process, urls, base = start(Path(where) / "class")
        try:
            code, key = urls["joinUrl"].rsplit("/", 1)[1], urls["instructorUrl"].split("key=", 1)[1]
            limits = httpx.Limits(max_connections=learners)
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                tokens = []
                for i in range(learners):
                    answer = await client.post(f"{base}/api/join", json={"code": code, "name": f"learner {i:03d}"})
                    tokens.append((answer.json()["learner"], answer.json()["token"]))
                seen: dict = {}
                ready = asyncio.Event()
                watcher = asyncio.create_task(page(base, key, seen, ready))
                await ready.wait()
                sent: dict = {}
                latency: dict[str, list[float]] = {"pace": [], "burst": []}

                async def post(phase: str, learner: int, token: str, exercise: str) -> None:
                    record = {"id": os.urandom(8).hex(), "lesson": "02", "exercise": exercise, "title": "",
                              "status": random.choice(["correct", "incorrect"]), "message": "kv-sales-prod is missing.",
                              "time": "2026-12-03T10:00:00+00:00"}
                    sent[(learner, exercise)] = started = time.perf_counter()
                    answer = await client.post(f"{base}/api/results", json={"results": [record]},
                                               headers={"Authorization": f"Bearer {token}"})
                    latency[phase].append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.text

                async def at_pace(learner: int, token: str) -> None:
                    for n in range(per_learner):  # one result every pace_seconds, at a random moment in each
                        await asyncio.sleep(random.uniform(0, pace_seconds))
                        await post("pace", learner, token, f"ex{n + 1}")

                await asyncio.gather(*(at_pace(learner, token) for learner, token in tokens))
                await asyncio.gather(*(post("burst", learner, token, "ex99") for learner, token in tokens))
                deadline = time.perf_counter() + 30
                while len(seen) < len(sent) and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                watcher.cancel()
            delay = {phase: [seen[k] - sent[k] for k in sent if k in seen and (k[1] == "ex99") == (phase == "burst")]
                     for phase in ("pace", "burst")}
            return {"learners": learners, "latency": latency, "delay": delay, "missing": len(sent) - len(seen)}
        finally:
            process.terminate()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--pace", type=float, default=10.0, help="seconds in which each learner sends one result")
    parser.add_argument("--results", type=int, default=3, help="results per learner at pace")
    args = parser.parse_args()
    out = asyncio.run(run(args.learners, args.pace, args.results))
    rate = args.learners / args.pace
    print(f"class dashboard: {args.learners} learners, one instructor page's event stream, {os.cpu_count()} CPUs")
    print(f"at workshop pace ({args.results} results each, about {rate:.0f} a second in all)")
    print(f"  learner's POST        {figures(out['latency']['pace'])}")
    print(f"  page update delay     {figures(out['delay']['pace'])}")
    print(f"in a burst ({args.learners} results at once)")
    print(f"  learner's POST        {figures(out['latency']['burst'])}")
    print(f"  page update delay     {figures(out['delay']['burst'])}")
    print(f"results never seen on the page: {out['missing']}")
    summary = {f"{kind}_{phase}_{stat}_ms": round(f(out[kind][phase]) * 1000, 1)
               for kind in ("latency", "delay") for phase in ("pace", "burst")
               for stat, f in (("median", statistics.median), ("worst", max))}
    print(json.dumps({"learners": args.learners, **summary, "missing": out["missing"]}))


if __name__ == "__main__":
    main()
