"""A one-answer HTTP server on 127.0.0.1 for the CLI's tests (not the calltrack API)."""

from __future__ import annotations


class OneAnswer:
    """A server on 127.0.0.1 that answers every request with one body, and keeps what it got."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        import http.server
        import threading

        self.got: list[bytes] = []
        answers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                answers.got.append(self.rfile.read(length))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
