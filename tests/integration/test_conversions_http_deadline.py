"""The ad platforms' client (``conversions.http.post``) ends within ``timeout_s`` for the whole
request, however slowly a platform answers: a real socket server on 127.0.0.1 that takes the request
and then sends its answer as scripted (pauses, and bytes dripped one at a time)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from conversions import http

Step = tuple[float, bytes]  # a pause, then the bytes sent after it
Platform = Callable[..., str]

ANSWER = json.dumps({"results": [{"gclid": "Cj0KCQ"}]}).encode()


def headers(status: str = "200 OK", length: int = len(ANSWER), extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            f"{extra}\r\n").encode()


def drip(data: bytes, every_s: float) -> list[Step]:
    return [(every_s, bytes([byte])) for byte in data]


def _read_request(conn: socket.socket) -> None:
    """The whole request (closing on an unread body would reset the connection under the answer)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


@pytest.fixture
def platform() -> Iterator[Platform]:
    """``platform(*steps, tls=False)`` -> the URL of a one-request server answering with ``steps``
    (``tls``: it takes the ClientHello and drips ``steps`` as its handshake, never reading HTTP)."""
    stop = threading.Event()

    def start(*steps: Step, tls: bool = False) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(10)

        def serve() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                server.close()
                return
            try:
                if tls:
                    conn.recv(65536)
                else:
                    _read_request(conn)
                for pause_s, data in steps:
                    if stop.wait(pause_s):
                        break
                    conn.sendall(data)
            except OSError:
                pass  # the client cut the connection
            finally:
                conn.close()
                server.close()

        threading.Thread(target=serve, daemon=True).start()
        return f"{'https' if tls else 'http'}://127.0.0.1:{server.getsockname()[1]}/v1/upload"

    yield start
    stop.set()


def test_a_platform_dripping_its_body_is_cut_off_at_the_deadline(platform: Platform) -> None:
    # Given a platform that sends its headers at once, then its body a byte every 0.2 s (about 8 s
    # in all, each gap well within a 1 s wait on the socket)
    url = platform((0.0, headers()), *drip(ANSWER, 0.2))
    # When a conversion is posted with its token and a 1 s timeout
    started = time.monotonic()
    with pytest.raises(http.Unreachable) as err:
        http.post(url, json_body={"conversions": []}, headers={"Authorization": "Bearer ya29.secret"},
                  timeout_s=1.0)
    # Then it ends at the deadline as Unreachable (retried like a 5xx), not when the body is done
    # (room left for a loaded machine), and the message says so without the token
    assert time.monotonic() - started < 2.5
    assert "deadline exceeded" in str(err.value)
    assert "ya29" not in str(err.value)


def test_a_platform_dripping_its_header_lines_is_cut_off_at_the_deadline(platform: Platform) -> None:
    # Given a platform that sends its status and header lines a byte every 0.2 s
    url = platform(*drip(headers() + ANSWER, 0.2))
    # When a conversion is posted with a 1 s timeout
    started = time.monotonic()
    with pytest.raises(http.Unreachable, match="deadline exceeded"):
        http.post(url, json_body={}, timeout_s=1.0)
    # Then it ends at the deadline, before the headers are even whole
    assert time.monotonic() - started < 2.5


def test_the_wait_for_the_headers_counts_towards_the_deadline_of_the_body(platform: Platform) -> None:
    # Given a platform that takes 0.7 s to send its headers and 0.7 s more to send its body (each
    # wait shorter than the timeout, both together longer)
    url = platform((0.7, headers()), (0.7, ANSWER))
    # When a conversion is posted with a 1 s timeout, Then there is no answer: the body was due
    # within what the headers left of the second
    with pytest.raises(http.Unreachable, match="deadline exceeded"):
        http.post(url, json_body={}, timeout_s=1.0)


def test_an_error_answer_dripping_its_body_is_cut_off_at_the_deadline(platform: Platform) -> None:
    # Given a platform answering 500 (urllib's HTTPError) and dripping the error's body
    body = b'{"error": {"code": 500, "message": "internal error"}}'
    url = platform((0.0, headers("500 Internal Server Error", len(body))), *drip(body, 0.2))
    # When a conversion is posted with a 1 s timeout
    started = time.monotonic()
    with pytest.raises(http.Unreachable, match="deadline exceeded"):
        http.post(url, json_body={}, timeout_s=1.0)
    # Then the error's body is read under the same deadline
    assert time.monotonic() - started < 2.5


def test_a_platform_dripping_its_tls_handshake_is_cut_off_at_the_deadline(platform: Platform) -> None:
    # Given an https platform whose handshake comes a byte every 0.2 s (a record header announcing
    # 16 KB, then its bytes)
    url = platform(*drip(b"\x16\x03\x03\x40\x00" + b"\x00" * 64, 0.2), tls=True)
    # When a conversion is posted with a 1 s timeout
    started = time.monotonic()
    with pytest.raises(http.Unreachable, match="deadline exceeded"):
        http.post(url, json_body={}, timeout_s=1.0)
    # Then it ends at the deadline, the handshake counted in it
    assert time.monotonic() - started < 2.5


def test_a_platform_answering_in_time_returns_its_parsed_json(platform: Platform) -> None:
    url = platform((0.0, headers() + ANSWER))
    answer = http.post(url, json_body={"conversions": []}, timeout_s=5.0)
    assert (answer.status, answer.body) == (200, {"results": [{"gclid": "Cj0KCQ"}]})


def test_an_error_answer_in_time_is_returned_with_its_body_and_retry_after(platform: Platform) -> None:
    body = b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}'
    url = platform((0.0, headers("429 Too Many Requests", len(body), "Retry-After: 30\r\n") + body))
    answer = http.post(url, json_body={}, timeout_s=5.0)
    assert answer == http.Answer(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}, "30")
