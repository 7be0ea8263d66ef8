"""The instructor's service: learners post their check results, the instructor watches them arrive.

Starlette on uvicorn; the instructor page is one static HTML file that reads a
snapshot and then server-sent events (sse-starlette), so it is live without
reloads. Three kinds of caller, three credentials:

- anyone with the class code may join (``POST /api/join``), which gives a learner token;
- a learner token may post that learner's own results (``POST /api/results``) and nothing else;
- the instructor key (in the URL printed at start, then an HttpOnly cookie) opens the page,
  its event stream and the exports.

Run by JupyterHub with ``--hub-auth`` (`hub`), the hub says who is who instead: a learner is the
hub user their server's token belongs to (no class code joins anyone), and the instructor page
signs in through the hub.

Everything lives in one SQLite file in the workshop's directory, so a restart
keeps the class, its codes and its results. Imports only what serving needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import hmac
import html
import io
import json
import re
import secrets
import sqlite3
import threading
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from ..feedback import CORRECT, INCORRECT, RANK
from ..paths import PRIVATE_DIR, open_private, private
from . import records
from .hub import SESSION_SECONDS, Hub
from .records import Refused

CONFIG = "workshop.json"  # in the workshop's directory: the class code and the instructor key
DATABASE = "workshop.db"
COOKIE = "kvlab-instructor"
SESSION_COOKIE = "kvlab-instructor-session"  # --hub-auth: an instructor signed in through the hub
STATE_COOKIE = "kvlab-sign-in"  # --hub-auth: the sign-in under way, which the hub's answer must match
HUB_LEARNER = "hub:"  # what a hub learner's token column holds (before their name): never a token's digest
STUCK_MINUTES = 10
SUBSCRIBER_QUEUE = 1000  # events a slow page may fall behind by before it is sent a fresh snapshot

SCHEMA = """
CREATE TABLE IF NOT EXISTS learners (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, token TEXT NOT NULL UNIQUE, joined TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
  seq INTEGER PRIMARY KEY, learner INTEGER NOT NULL REFERENCES learners(id), sent TEXT NOT NULL,
  lesson TEXT NOT NULL, exercise TEXT NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL,
  time TEXT NOT NULL, received TEXT NOT NULL, UNIQUE (learner, sent));
CREATE TABLE IF NOT EXISTS cells (
  learner INTEGER NOT NULL, lesson TEXT NOT NULL, exercise TEXT NOT NULL, title TEXT NOT NULL,
  status TEXT NOT NULL, best TEXT NOT NULL, attempts INTEGER NOT NULL, time TEXT NOT NULL, solved TEXT,
  PRIMARY KEY (learner, lesson, exercise));
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def digest(token: str) -> str:
    """What is stored of a learner's token: a leaked database grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def reason(message: str) -> str:
    """What the instructor reads of an "incorrect" result: the first line of the check's message."""
    return (message.strip().splitlines() or [""])[0][:200]


def reason_key(text: str) -> str:
    """What makes two learners' reasons the same stumble: the text without its URLs and numbers, which differ
    from learner to learner (each has an emulator port of their own, their own counts)."""
    return re.sub(r"\d+", "#", re.sub(r"https?://\S+", "<url>", text))


class Class:
    """The workshop's learners and results, in SQLite (one connection, used under a lock)."""

    def __init__(self, directory: Path, code: str | None = None):
        directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        private(directory)
        self.directory = directory
        self.config = self._config(directory / CONFIG, code)
        path = directory / DATABASE
        open_private(path).close()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives the process; no fsync per result
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        # who a token belongs to: every learner's, in memory (a class is at most MAX_LEARNERS)
        self._tokens = {row["token"]: row["id"] for row in self._db.execute("SELECT id, token FROM learners")}

    @staticmethod
    def _config(path: Path, code: str | None) -> dict:
        """The class code and the instructor key: made once and kept, so a restart keeps every URL valid (a
        ``code`` given, e.g. by a deployment's configuration, replaces the class code)."""
        config = json.loads(path.read_text()) if path.exists() else {}
        if not {"code", "key"} <= set(config) or (code is not None and code != config["code"]):
            config = {"code": records.class_code(code) if code is not None else secrets.token_urlsafe(9),
                      "key": config.get("key") or secrets.token_urlsafe(24)}
            with open_private(path, "w") as f:
                json.dump(config, f)
        return config

    def is_code(self, code: str) -> bool:
        return hmac.compare_digest(code.encode(), self.config["code"].encode())

    def is_instructor(self, key: str | None) -> bool:
        return key is not None and key != "" and hmac.compare_digest(key.encode(), self.config["key"].encode())

    def join(self, name: str) -> tuple[dict, str]:
        token, joined = secrets.token_urlsafe(24), now()
        with self._lock:
            if self._db.execute("SELECT count(*) FROM learners").fetchone()[0] >= records.MAX_LEARNERS:
                raise Refused(403, f"the class is full ({records.MAX_LEARNERS} learners)")
            try:
                cursor = self._db.execute("INSERT INTO learners (name, token, joined) VALUES (?, ?, ?)",
                                          (name, digest(token), joined))
            except sqlite3.IntegrityError:
                raise Refused(409, f"someone named {name!r} has already joined this class: join under "
                                   "another name") from None
            self._tokens[digest(token)] = cursor.lastrowid
            return {"id": cursor.lastrowid, "name": name, "joined": joined}, token

    def learner(self, token: str) -> int | None:
        return self._tokens.get(digest(token))

    def hub_learner(self, name: str) -> tuple[dict, bool]:
        """The learner a hub user is, added at their first request; whether they are new."""
        with self._lock:
            found = self._db.execute("SELECT id, name, joined FROM learners WHERE token = ?",
                                     (HUB_LEARNER + name,)).fetchone()
            if found is not None:
                return dict(found), False
            if self._db.execute("SELECT count(*) FROM learners").fetchone()[0] >= records.MAX_LEARNERS:
                raise Refused(403, f"the class is full ({records.MAX_LEARNERS} learners)")
            joined = now()
            try:
                cursor = self._db.execute("INSERT INTO learners (name, token, joined) VALUES (?, ?, ?)",
                                          (name, HUB_LEARNER + name, joined))
            except sqlite3.IntegrityError:  # a learner who joined with the class code, before the hub
                raise Refused(409, f"someone named {name!r} joined this class with its code before it moved to "
                                   "the hub: the instructor renames or removes them") from None
            return {"id": cursor.lastrowid, "name": name, "joined": joined}, True

    def add(self, learner: int, results: list[dict]) -> list[dict]:
        """Store a learner's results (a repeated client id is skipped); the events they make."""
        events = []
        received = now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                kept = self._db.execute("SELECT count(*) FROM results WHERE learner = ?", (learner,)).fetchone()[0]
                if kept + len(results) > records.MAX_RESULTS_PER_LEARNER:
                    raise Refused(429, f"this learner has sent {kept} results, the most one learner may "
                                       f"send is {records.MAX_RESULTS_PER_LEARNER}")
                for r in results:
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO results (learner, sent, lesson, exercise, title, status, message, "
                        "time, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (learner, r["id"], r["lesson"], r["exercise"], r["title"], r["status"], r["message"],
                         r["time"], received))
                    if cursor.rowcount:
                        events.append(self._cell(learner, r, received))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return events

    def _cell(self, learner: int, r: dict, received: str) -> dict:
        """Fold one result into its learner's cell for the exercise: latest, best, attempts, first solved."""
        old = self._db.execute("SELECT * FROM cells WHERE learner = ? AND lesson = ? AND exercise = ?",
                               (learner, r["lesson"], r["exercise"])).fetchone()
        best = r["status"] if old is None or RANK[r["status"]] >= RANK[old["best"]] else old["best"]
        solved = old["solved"] if old is not None and old["solved"] else (received if r["status"] == CORRECT else None)
        cell = {"learner": learner, "lesson": r["lesson"], "exercise": r["exercise"], "title": r["title"] or (
            old["title"] if old else ""), "status": r["status"], "best": best,
            "attempts": (old["attempts"] if old else 0) + 1, "time": received, "solved": solved}
        self._db.execute("INSERT OR REPLACE INTO cells VALUES (:learner, :lesson, :exercise, :title, :status, :best, "
                         ":attempts, :time, :solved)", cell)
        text = reason(r["message"]) if r["status"] == INCORRECT else None
        return {**cell, "reason": text, "reasonKey": reason_key(text) if text is not None else None}

    def snapshot(self, stuck_minutes: int) -> dict:
        with self._lock:
            learners = [dict(r) for r in self._db.execute("SELECT id, name, joined FROM learners ORDER BY id")]
            cells = [dict(r) for r in self._db.execute("SELECT * FROM cells")]
            incorrect = self._db.execute("SELECT learner, lesson, exercise, message FROM results WHERE status = ?",
                                         (INCORRECT,)).fetchall()
        reasons: dict[tuple[str, str, str], dict] = {}  # one example's text, and who met it
        for row in incorrect:
            text = reason(row["message"])
            found = reasons.setdefault((row["lesson"], row["exercise"], reason_key(text)), {"text": text, "who": set()})
            found["who"].add(row["learner"])
        return {"now": now(), "stuckMinutes": stuck_minutes, "learners": learners, "cells": cells,
                "reasons": [{"lesson": k[0], "exercise": k[1], "reasonKey": k[2], "reason": v["text"],
                             "learners": sorted(v["who"])} for k, v in reasons.items()]}

    def export(self) -> list[dict]:
        """One row per learner and exercise they checked: latest and best status, attempts, times."""
        with self._lock:
            return [dict(r) for r in self._db.execute(
                "SELECT l.name AS learner, c.lesson, c.exercise, c.title, c.status AS latest, c.best, c.attempts, "
                "c.time AS lastChecked, c.solved FROM cells c JOIN learners l ON l.id = c.learner "
                "ORDER BY l.name COLLATE NOCASE, c.lesson, c.exercise")]

    def close(self) -> None:
        self._db.close()


class Broadcast:
    """Each open instructor page's queue of events; a page that falls too far behind is sent away to reconnect
    (EventSource does so by itself) and starts again from a snapshot."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue] = set()

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.queues.discard(queue)

    def publish(self, kind: str, data: dict) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait((kind, data))
            except asyncio.QueueFull:  # what it missed is dropped; its stream ends after one more event
                self.queues.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(("reconnect", {}))


def refused(status: int, message: str) -> JSONResponse:
    """Every 4xx the service gives: ``{"error": {"code": ..., "message": ...}}``, one line."""
    codes = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
             413: "PayloadTooLarge", 415: "UnsupportedMediaType", 429: "TooManyRequests"}
    return JSONResponse({"error": {"code": codes.get(status, "Error"), "message": message}}, status)


async def body_json(request: Request):
    """The request's JSON body, at most MAX_BODY bytes, or Refused."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Refused(415, "send JSON (Content-Type: application/json)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > records.MAX_BODY:
        raise Refused(413, f"a request is at most {records.MAX_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > records.MAX_BODY:
            raise Refused(413, f"a request is at most {records.MAX_BODY} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise Refused(400, "the body is not valid JSON") from None


def bearer(request: Request) -> str:
    """The request's token: ``Authorization: Bearer ...`` (or ``token ...``, as JupyterHub's clients send it)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "token") else ""


def create_app(directory: Path, stuck_minutes: int = STUCK_MINUTES, prefix: str = "",
               code: str | None = None, hub_auth: bool = False) -> Starlette:
    """The service; ``prefix``: the path it is served under behind a proxy (JupyterHub's /services/NAME);
    ``hub_auth``: JupyterHub says who learners and instructors are (kvlab.workshop.hub)."""
    hub = Hub() if hub_auth else None
    the_class = Class(directory, code)
    broadcast = Broadcast()
    page = resources.files(__package__).joinpath("instructor.html").read_text()

    def instructor(request: Request) -> bool:
        if hub is not None and hub.instructor(request.cookies.get(SESSION_COOKIE)):
            return True
        return the_class.is_instructor(request.cookies.get(COOKIE) or bearer(request))

    async def hub_learner(request: Request) -> int | None:
        """--hub-auth: the learner the request's hub token is (added at their first request)."""
        name = await hub.learner(bearer(request)) if hub is not None else None
        if name is None:
            return None
        learner, new = await run_in_threadpool(the_class.hub_learner, name)
        if new:
            broadcast.publish("learner", learner)
        return learner["id"]

    async def join(request: Request) -> Response:
        if hub is not None:  # a hub learner's first request: they appear on the page as their lesson starts
            try:
                hub_id = await hub_learner(request)
                if hub_id is None:
                    raise Refused(403, "this class signs in with JupyterHub, not a class code: open the workbook "
                                       "from the hub")
            except Refused as exc:
                return refused(exc.status, str(exc))
            return JSONResponse({"learner": hub_id}, 200)
        try:
            body = await body_json(request)
            if not isinstance(body, dict) or not isinstance(body.get(records.CODE_PARAMETER), str):
                raise Refused(400, "send {\"code\": <the class code>, \"name\": <your name>}")
            if not the_class.is_code(body[records.CODE_PARAMETER]):
                raise Refused(403, "that is not this class's code: check the join URL the instructor gave")
            learner, token = await run_in_threadpool(the_class.join, records.learner_name(body.get("name")))
        except Refused as exc:
            return refused(exc.status, str(exc))
        broadcast.publish("learner", learner)
        return JSONResponse({"learner": learner["id"], "name": learner["name"], "token": token}, 201)

    async def post_results(request: Request) -> Response:
        try:
            learner = the_class.learner(bearer(request)) or await hub_learner(request)
            if learner is None:
                raise Refused(401, "a learner token is required: join the class first (kvlab workshop join)")
            body = await body_json(request)
            raw = body.get("results") if isinstance(body, dict) else None
            if not isinstance(raw, list) or not raw:
                raise Refused(400, "send {\"results\": [<check result>, ...]}")
            if len(raw) > records.MAX_BATCH:
                raise Refused(413, f"at most {records.MAX_BATCH} results a request")
            results = [records.result(r) for r in raw]
            events = await run_in_threadpool(the_class.add, learner, results)
        except Refused as exc:
            return refused(exc.status, str(exc))
        for event in events:
            broadcast.publish("result", event)
        return JSONResponse({"accepted": len(results), "new": len(events)})

    async def open_page(request: Request) -> Response:
        key = request.query_params.get("key")
        if key is not None:
            if not the_class.is_instructor(key):
                return HTMLResponse("<p>That instructor link is not this workshop's.</p>", 403)
            # the key leaves the address bar (and the browser's history) for an HttpOnly cookie
            response = RedirectResponse(request.url.path, 303)  # relative: right behind any proxy
            response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path=request.url.path)
            return response
        if instructor(request):
            return HTMLResponse(page, headers={"Cache-Control": "no-store"})
        if hub is not None:  # sign in through the hub; it comes back to /oauth_callback
            url, state = hub.sign_in()
            response = RedirectResponse(url, 302)
            response.set_cookie(STATE_COOKIE, state, max_age=600, httponly=True, samesite="lax",
                                path=request.url.path.removesuffix("instructor") + "oauth_callback")
            return response
        return HTMLResponse("<p>Open the instructor URL that <code>kvlab workshop serve</code> printed.</p>", 401)

    async def oauth_callback(request: Request) -> Response:
        """--hub-auth: the hub's answer to an instructor's sign-in."""
        if hub is None:
            return refused(404, "this service does not sign in through JupyterHub")
        try:
            name, session = await hub.signed_in(request.query_params.get("code"), request.query_params.get("state"),
                                                request.cookies.get(STATE_COOKIE))
        except Refused as exc:
            return HTMLResponse(f"<p>{html.escape(str(exc), quote=False)}</p>", exc.status)
        response = RedirectResponse("instructor", 303)  # relative: right behind any proxy
        response.delete_cookie(STATE_COOKIE, path=request.url.path)
        response.set_cookie(SESSION_COOKIE, session, max_age=SESSION_SECONDS, httponly=True, samesite="lax",
                            path=request.url.path.removesuffix("oauth_callback") + "instructor")
        return response

    async def events(request: Request) -> Response:
        from sse_starlette import EventSourceResponse

        if not instructor(request):
            return refused(401, "the instructor's key is required")
        queue = broadcast.subscribe()
        snapshot = await run_in_threadpool(the_class.snapshot, stuck_minutes)

        async def stream():
            try:
                yield {"event": "snapshot", "data": json.dumps(snapshot)}
                while True:
                    kind, data = await queue.get()
                    if kind == "reconnect":
                        return
                    yield {"event": kind, "data": json.dumps(data)}
            finally:
                broadcast.unsubscribe(queue)

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    async def export(request: Request) -> Response:
        if not instructor(request):
            return refused(401, "the instructor's key is required")
        rows = await run_in_threadpool(the_class.export)
        if request.path_params["format"] == "json":
            return JSONResponse(rows, headers={"Content-Disposition": "attachment; filename=workshop.json"})
        out = io.StringIO()
        writer = csv.DictWriter(out, ["learner", "lesson", "exercise", "title", "latest", "best", "attempts",
                                      "lastChecked", "solved"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": "attachment; filename=workshop.csv"})

    async def join_page(request: Request) -> Response:
        """A join URL opened in a browser says what to do with it."""
        return PlainTextResponse(f"Join this workshop from the workbook's terminal:\n\n  kvlab workshop join "
                                 f"{request.url} --name \"Your Name\"\n")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        the_class.close()

    routes = [
        Route("/api/join", join, methods=["POST"]),
        Route("/api/results", post_results, methods=["POST"]),
        Route("/api/health", health),
        Route("/join/{code}", join_page),
        Route("/instructor", open_page),
        Route("/instructor/events", events),
        Route("/instructor/export.{format:str}", export),
        Route("/oauth_callback", oauth_callback),
    ]
    app = Starlette(routes=[Mount(prefix.rstrip("/"), routes=routes)] if prefix.strip("/") else routes,
                    lifespan=lifespan)
    app.state.the_class = the_class
    return app


def urls(base: str, config: dict, prefix: str = "", hub_auth: bool = False) -> dict:
    base = base.rstrip("/") + prefix.rstrip("/")
    if hub_auth:  # learners' servers are given the service's URL; the instructor signs in through the hub
        return {"joinUrl": f"{base}/", "instructorUrl": f"{base}/instructor"}
    return {"joinUrl": f"{base}/join/{config['code']}", "instructorUrl": f"{base}/instructor?key={config['key']}"}
