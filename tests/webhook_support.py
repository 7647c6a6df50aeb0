"""A local webhook receiver for the webhook and observability tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import httpx


class Receiver:
    """A webhook receiver whose answer the test decides per request: `answer(detail, attempt)` returns
    a status, or "hang" to hold the request until `release()`; by default 204, or 503 while `failing`
    (a receiver that is down). Every request is recorded before it is answered (`requests`; those
    answered with success: `events`). Single-threaded unless `threads`, and then one connection at a
    time in the order they were accepted (HTTP/1.0: one request per connection), so `barrier()` (a
    request of our own) returns only after every delivery that reached the receiver before it has
    been recorded; with `threads` that proves nothing, so it is not offered."""

    def __init__(self, answer=None, threads: bool = False):
        self.failing = False
        self.answer = answer or (lambda detail, attempt: 503 if self.failing else 204)
        self.requests: list[dict] = []
        self.released = threading.Event()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("X-Test-Barrier"):
                    self.send_response(204)
                    self.end_headers()
                    return
                doc = json.loads(body)
                attempt = int(self.headers["X-Arca-Delivery-Attempt"])
                record = {"detail": doc["detail"], "attempt": attempt, "id": self.headers["X-Arca-Event-Id"],
                          "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "json": doc,
                          "status": None}
                with outer.lock:
                    outer.requests.append(record)
                status = outer.answer(doc["detail"], attempt)
                if status == "hang":
                    outer.released.wait()
                    status = 204
                record["status"] = status
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.threads = threads
        self.httpd = (ThreadingHTTPServer if threads else HTTPServer)(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    @property
    def attempts(self) -> int:
        with self.lock:
            return len(self.requests)

    @property
    def events(self) -> list[dict]:
        """The requests answered with success."""
        with self.lock:
            return [r for r in self.requests if isinstance(r["status"], int) and r["status"] < 300]

    def barrier(self) -> None:
        """Returns once every request that reached this (one-at-a-time) receiver before it is recorded."""
        assert not self.threads
        assert httpx.post(self.url, content=b"{}", headers={"X-Test-Barrier": "1"}, timeout=60).status_code == 204

    def seen(self, predicate=lambda d: True) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if predicate(r["detail"])]

    def wait(self, predicate, count: int = 1, timeout: float = 120.0) -> list[dict]:
        """At least `count` requests whose detail matches, answered or not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.seen(predicate)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        got = [(r["detail"]["packageName"], r["detail"]["packageVersion"], r["attempt"]) for r in self.requests]
        raise AssertionError(f"{len(self.seen(predicate))} of {count} matching requests within {timeout}s; got {got}")

    def wait_delivered(self, predicate, timeout: float = 60.0) -> list[dict]:
        """The events whose detail matches, once there is one that was answered with success."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events if predicate(e["detail"])]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no matching event within {timeout}s; got {[e['detail'] for e in self.events]}")

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self.httpd.shutdown()
