"""A local webhook for alert tests: records what apprise POSTs to 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import threading
import time
from urllib.parse import parse_qs


class Receiver:
    """A webhook on 127.0.0.1 recording what is POSTed; ``/fail...`` answers 500,
    ``/slow...`` answers after half a second."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/slow"):
                    time.sleep(0.5)
                kind = self.headers.get("Content-Type", "")
                fields = (json.loads(raw) if "json" in kind
                          else {k: v[0] for k, v in parse_qs(raw.decode()).items()})
                with owner.lock:
                    owner.posts.append({"path": self.path, "raw": raw.decode(), **fields})
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def at(self, path: str) -> list[dict]:
        with self.lock:
            return [p for p in self.posts if p["path"] == "/" + path]
