"""Print the emulator's start time and get_secret throughput next to a bare TLS server's.

    .venv/bin/python benchmarks/emulator.py [--runs 5] [--calls 2000] [--threads 4 8]

Start: wall time of the real `kvlab emulator start` (it returns once the emulator
answers its health request), cold (new state dir: CA and keys are created) and
warm (same state dir, after a stop). Throughput: `SecretClient.get_secret` with
`DefaultAzureCredential` after `kvlab.connect()`, against the emulator and against
the floor, a bare asyncio TLS server in its own process with a certificate from
the same local CA, which answers the SDK's first request with the emulator's
Bearer challenge and every authorised one with a fixed SecretBundle, and the
uvicorn floor, the emulator's own HTTP stack (uvicorn, httptools, the same TLS
context and event loop) around an ASGI callable with the same answers: the
emulator's ratio to it is the issue #14 target (0.9). Prints a
table (with the audit log's growth per 1,000 requests), then one JSON line. No
verification is switched off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kvlab.emulator import control
from kvlab.emulator.server import LOOP
from kvlab.paths import free_port

KVLAB = str(Path(sys.executable).with_name("kvlab"))
SECRET, VALUE = "bench-secret", "not-a-real-value"  # pragma: allowlist secret
started: list[tuple[Path, int]] = []  # (state dir, port) of every emulator we may have started




def stop_emulator(state: Path, port: int) -> None:
    control.stop(state)  # what `kvlab emulator stop` does
    answer = control.health(state, port, timeout=0.5)  # a start interrupted before it was recorded
    if answer:
        os.kill(int(answer["pid"]), signal.SIGTERM)


def cli_start(state: Path, port: int) -> float:
    started.append((state, port))
    t0 = time.perf_counter()
    done = subprocess.run([KVLAB, "emulator", "start", "--port", str(port), "--state-dir", str(state)],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"kvlab emulator start failed: {done.stderr.strip()}")
    return elapsed


def start_times(root: Path, runs: int) -> tuple[float, float]:
    cold, warm = [], []
    for i in range(runs):
        state, port = root / f"start-{i}", free_port()
        cold.append(cli_start(state, port))
        stop_emulator(state, port)
        warm.append(cli_start(state, port))
        stop_emulator(state, port)
    return statistics.median(cold), statistics.median(warm)


def serve_floor(state_dir: str, port: int, ready) -> None:
    """The floor, in its own process: an asyncio Protocol with two fixed answers, no HTTP framework."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    from kvlab.emulator.tls import LocalCA

    def answer(status: str, headers: str, body: dict) -> bytes:
        data = json.dumps(body, separators=(",", ":")).encode()
        return (f"HTTP/1.1 {status}\r\n{headers}Content-Type: application/json; charset=utf-8\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode() + data

    challenge = answer("401 Unauthorized", f'WWW-Authenticate: Bearer authorization="https://login.windows.net/'
                       f'{uuid.uuid4()}", resource="https://localhost:{port}"\r\n',
                       {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})
    now = int(time.time())
    ok = answer("200 OK", "", {"value": VALUE, "id": f"https://floor.localhost:{port}/secrets/{SECRET}/{uuid.uuid4().hex}",
                               "attributes": {"enabled": True, "created": now, "updated": now,
                                              "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}})
    length = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")

    class Floor(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buffer = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                head = self.buffer[:end].lower()
                size = end + 4 + (int(m[1]) if (m := length.search(head)) else 0)
                if len(self.buffer) < size:
                    return  # the body is still coming
                self.buffer = self.buffer[size:]
                self.transport.write(ok if b"\r\nauthorization:" in head else challenge)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            Floor, "127.0.0.1", port, ssl=LocalCA(Path(state_dir)).server_context())
        ready.set()
        await server.serve_forever()

    if LOOP == "uvloop":  # the emulator's event loop
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())


def serve_uvicorn_floor(state_dir: str, port: int, ready) -> None:
    """The framework floor, in its own process: the emulator's HTTP stack (uvicorn, httptools, the same TLS
    context, the same event loop) around an ASGI callable with the same two fixed answers. The emulator's ratio to
    it is the cost of its own work: token check, RBAC, the database thread, the audit record."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import uvicorn

    from kvlab.emulator.tls import LocalCA

    challenge_headers = [(b"www-authenticate", f'Bearer authorization="https://login.windows.net/{uuid.uuid4()}", '
                          f'resource="https://localhost:{port}"'.encode()),
                         (b"content-type", b"application/json; charset=utf-8")]
    challenge = json.dumps({"error": {"code": "Unauthorized",
                                      "message": "AKV10000: Request is missing a Bearer or PoP token."}}).encode()
    now = int(time.time())
    ok = json.dumps({"value": VALUE, "id": f"https://floor.localhost:{port}/secrets/{SECRET}/{uuid.uuid4().hex}",
                     "attributes": {"enabled": True, "created": now, "updated": now,
                                    "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}}).encode()

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        signed = any(name == b"authorization" for name, _ in scope["headers"])
        body = ok if signed else challenge
        headers = [(b"content-type", b"application/json; charset=utf-8")] if signed else challenge_headers
        await send({"type": "http.response.start", "status": 200 if signed else 401,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop=LOOP, http="httptools", lifespan="off",
                            log_level="warning", access_log=False, server_header=False)
    config.load()
    config.ssl = LocalCA(Path(state_dir)).server_context()
    server = uvicorn.Server(config)
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    while not server.started:
        time.sleep(0.01)
    ready.set()
    runner.join()


def timed_calls(clients: list, calls: int) -> float:
    """ops/s of `calls` get_secret calls spread over one thread per client."""
    for c in clients:  # challenge, token and TLS connection happen here, untimed
        if c.get_secret(SECRET).value != VALUE:
            sys.exit("get_secret answered a wrong value")
    each, barrier = calls // len(clients), threading.Barrier(len(clients) + 1)

    def work(client) -> None:
        barrier.wait()
        for _ in range(each):
            client.get_secret(SECRET)

    workers = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    return each * len(clients) / (time.perf_counter() - t0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def audit_bytes_per_1000(state: Path) -> float:
    """What 1,000 audited requests add to the audit log: its records' average size (the table's own overhead,
    a few bytes a row, aside)."""
    import sqlite3

    with sqlite3.connect(state / "kvlab.db") as db:
        average = db.execute("SELECT AVG(LENGTH(record) + LENGTH(COALESCE(vault, '')) + LENGTH(COALESCE(caller, '')) "
                             "+ 16) FROM audit").fetchone()[0]
    return (average or 0) * 1000


def throughput(root: Path, calls: int, warmup: int, rounds: int, threads: list[int]) -> dict:
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    import kvlab

    state, port = root / "throughput", free_port()
    started.append((state, port))
    lab = kvlab.connect(state_dir=state, port=port)
    spawn, floor_port, uvicorn_port = multiprocessing.get_context("spawn"), free_port(), free_port()
    floors = {}
    for name, serve, where in (("floor", serve_floor, floor_port), ("uvicorn_floor", serve_uvicorn_floor, uvicorn_port)):
        ready = spawn.Event()
        floors[name] = spawn.Process(target=serve, args=(str(state), where, ready), daemon=True)
        floors[name].start()
        if not ready.wait(30):
            sys.exit(f"the {name} server did not start")
    credential, clients = DefaultAzureCredential(), []
    try:
        lab.create_vault("bench")
        lab.assign_role("Key Vault Secrets Officer", "learner", "bench")
        urls = {"emulator": lab.vault_url("bench"), "floor": f"https://floor.localhost:{floor_port}/",
                "uvicorn_floor": f"https://floor.localhost:{uvicorn_port}/"}
        pids = {"emulator": int(lab.info["pid"]), **{name: process.pid for name, process in floors.items()}}
        clients = [SecretClient(url, credential) for url in urls.values()]
        one = dict(zip(urls, clients))
        one["emulator"].set_secret(SECRET, VALUE)
        for client in clients:
            for _ in range(warmup):
                client.get_secret(SECRET)
        spent, cpu, n = dict.fromkeys(urls, 0.0), dict.fromkeys(urls, 0.0), calls // rounds
        for _ in range(rounds):  # alternate, so drift hits both alike
            for name in urls:
                before = cpu_seconds(pids[name])
                spent[name] += n / timed_calls([one[name]], n)
                cpu[name] += cpu_seconds(pids[name]) - before
        figures = {}
        for name in urls:
            figures[f"{name}_ops"] = n * rounds / spent[name]
            figures[f"{name}_server_cpu_us"] = cpu[name] / (n * rounds) * 1e6
        for count in threads:
            for name, url in urls.items():
                group = [SecretClient(url, credential) for _ in range(count)]
                clients += group
                figures[f"{name}_ops_{count}_threads"] = timed_calls(group, calls)
        figures["audit_kb_per_1000_requests"] = audit_bytes_per_1000(state) / 1024
        return figures
    finally:
        for c in clients:
            c.close()
        credential.close()
        for floor in floors.values():
            floor.terminate()
            floor.join(5)
            if floor.is_alive():
                floor.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="start-time runs, cold and warm each (median)")
    parser.add_argument("--calls", type=int, default=2000, help="timed get_secret calls per target")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds the calls are split into")
    parser.add_argument("--threads", type=int, nargs="*", default=[4, 8],
                        help="client threads for the concurrent figures (none: skip)")
    args = parser.parse_args()
    if sys.platform == "linux":  # orphaned emulators become our children, so a stop reaps them at once
        import ctypes
        ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="kvlab-bench-")).resolve()
    try:
        f = dict(zip(("start_cold_s", "start_warm_s"), start_times(root, args.runs)))
        f.update(throughput(root, args.calls, args.warmup, args.rounds, args.threads))
    except KeyboardInterrupt:
        sys.exit("interrupted; stopping what was started")
    finally:
        for state, port in started:
            stop_emulator(state, port)
        shutil.rmtree(root, ignore_errors=True)
    f["ratio"] = f["emulator_ops"] / f["floor_ops"]
    f["ratio_uvicorn"] = f["emulator_ops"] / f["uvicorn_floor_ops"]
    f["over_service_limit"] = f["emulator_ops"] > 400
    ok = lambda good: "ok" if good else "MISSED"  # noqa: E731
    print(f"kvlab emulator benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, event loop {LOOP}")
    print(f"floor: bare asyncio Protocol TLS server on {LOOP}, no HTTP framework, own process, same local CA")
    print("uvicorn floor: the emulator's HTTP stack (uvicorn, httptools, TLS) around a fixed-answer ASGI callable")
    print(f"start (`kvlab emulator start` until it answers), median of {args.runs}")
    print(f"  cold, new state dir     {f['start_cold_s']:7.3f} s       target < 1 s    {ok(f['start_cold_s'] < 1)}")
    print(f"  warm, after a stop      {f['start_warm_s']:7.3f} s       target < 1 s    {ok(f['start_warm_s'] < 1)}")
    print(f"get_secret, 1 client thread, {args.calls} calls after {args.warmup} warm-up")
    print(f"  emulator                {f['emulator_ops']:7.0f} ops/s   server CPU {f['emulator_server_cpu_us']:4.0f} us/call")
    print(f"  floor                   {f['floor_ops']:7.0f} ops/s   server CPU {f['floor_server_cpu_us']:4.0f} us/call")
    print(f"  uvicorn floor           {f['uvicorn_floor_ops']:7.0f} ops/s   server CPU "
          f"{f['uvicorn_floor_server_cpu_us']:4.0f} us/call")
    print(f"  emulator / floor        {f['ratio']:7.0%}")
    print(f"  emulator / uvicorn floor{f['ratio_uvicorn']:7.0%}         target >= 90%   {ok(f['ratio_uvicorn'] >= 0.9)}")
    print(f"  emulator > 400 ops/s (the service's 4,000 per 10 s per vault)  {ok(f['over_service_limit'])}")
    for count in args.threads:
        print(f"get_secret, {count} client threads, {args.calls} calls")
        for name in ("emulator", "floor", "uvicorn_floor"):
            print(f"  {name.replace('_', ' '):24}{f[f'{name}_ops_{count}_threads']:7.0f} ops/s")
    print(f"audit log: {f['audit_kb_per_1000_requests']:.0f} KB per 1,000 requests")
    print(json.dumps({k: (round(v, 4) if v == v else None) if isinstance(v, float) else v for k, v in f.items()}))


if __name__ == "__main__":
    main()
