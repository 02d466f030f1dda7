"""An HTTP proxy on 127.0.0.1 in front of the real vLLM server that injects faults on cue.

Each request takes the next action from `plan` ("pass" once the plan is used up):
  "pass"     forward to the upstream server and return its answer
  "500"/"503" answer with that status, without forwarding
  "sleep:S"  wait S seconds (past the client's timeout), then forward
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class FaultyProxy:
    def __init__(self, upstream: str, plan: list[str] | None = None, port: int = 0):
        self.upstream = upstream.rstrip("/").removesuffix("/v1")
        self.plan = list(plan or [])
        self.seen: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self, method):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    action = proxy.plan.pop(0) if proxy.plan else "pass"
                    proxy.seen.append(f"{method} {self.path} {action}")
                if action.isdigit():
                    self.send_response(int(action))
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": "injected fault"}')
                    return
                if action.startswith("sleep:"):
                    time.sleep(float(action.split(":")[1]))
                resp = httpx.request(
                    method,
                    proxy.upstream + self.path,
                    content=body,
                    timeout=300,
                    headers={"Content-Type": "application/json"},
                )
                self.send_response(resp.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                try:
                    self.wfile.write(resp.content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
