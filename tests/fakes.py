"""Stand-ins for the outside world that tests run themselves, on loopback.

`RecordingServer` is a real HTTP server (http.server in a thread) that records
every request and answers with what the test says: it plays Kannel's sendsms
interface or a geocoder. Never the internet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    port: int = 0
    status: int = 202
    body: str = "0: Accepted for delivery"
    requests: list[Recorded] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def recording_server(status: int = 202, body: str = "0: Accepted for delivery"
                     ) -> Iterator[RecordingServer]:
    """A loopback HTTP server recording requests; change `.status`/`.body` to answer otherwise."""
    state = RecordingServer(status=status, body=body)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else b""
            state.requests.append(Recorded(self.command, parts.path,
                                           dict(parse_qsl(parts.query)), payload))
            data = state.body.encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    # Notices stop within 50 ms (serve_forever polls every 0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
