"""A local webhook for Key Vault's events: what an Azure Function with an Event Grid trigger does, in a notebook.

On Azure, the usual subscriber to ``SecretNearExpiry`` is a Function whose
trigger answers Event Grid's validation handshake and calls your code with each
event. Here the same shape runs in the kernel::

    from azure.eventgrid import EventGridEvent
    from kvlab.webhook import Webhook

    def on_event(event: EventGridEvent):          # your code, as in the Function
        ...

    hook = Webhook(on_event)                      # listening on 127.0.0.1
    lab.create_event_subscription("expiry-alerts", "kv-sales-dev", hook.url, ["SecretNearExpiry"])

Each event reaches the handler as azure-eventgrid's own ``EventGridEvent``. A
handler that raises makes the webhook answer 500, so the emulator delivers the
event again later, as Event Grid retries; the exception is kept in ``errors``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

VALIDATION = "SubscriptionValidation"  # the aeg-event-type header of Event Grid's handshake
MAX_BODY = 1_000_000  # Event Grid's batch limit is 1 MB


class Webhook:
    def __init__(self, handler: Callable, host: str = "127.0.0.1", port: int = 0, path: str = "/api/events"):
        from azure.eventgrid import EventGridEvent

        self.handler = handler
        self.received: list = []  # every event the handler took without raising, in order
        self.errors: list[BaseException] = []  # what the handler raised (each made the event come again)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                if self.path != path or length > MAX_BODY:
                    return self._answer(404 if self.path != path else 413, {})
                try:
                    events = json.loads(self.rfile.read(length))
                except ValueError:
                    return self._answer(400, {"error": "not JSON"})
                if self.headers.get("aeg-event-type") == VALIDATION:
                    try:
                        return self._answer(200, {"validationResponse": events[0]["data"]["validationCode"]})
                    except (KeyError, IndexError, TypeError):
                        return self._answer(400, {"error": "not a validation event"})
                for raw in events:
                    event = EventGridEvent.from_dict(raw)
                    try:
                        hook.handler(event)
                    except Exception as exc:  # the learner's handler failed: Event Grid will retry, as on Azure
                        hook.errors.append(exc)
                        return self._answer(500, {"error": type(exc).__name__})
                    hook.received.append(event)
                return self._answer(200, {})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # a notebook's output is no access log
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}{path}"
        threading.Thread(target=self._server.serve_forever, name="kvlab-webhook", daemon=True).start()

    def wait(self, count: int | None = None, timeout: float = 10.0, state_dir=None) -> list:
        """The events received, once there are ``count`` of them, or (without a count) once the emulator has
        delivered every event its subscriptions to this webhook had waiting (or one delivery failed and waits for
        its retry); at most ``timeout`` seconds in either case."""
        if count is None:
            from .admin import Admin

            Admin(state_dir).wait_delivered(endpoint=self.url, timeout=timeout)
            return list(self.received)
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "Webhook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Webhook(url={self.url!r}, received={len(self.received)}, errors={len(self.errors)})"
