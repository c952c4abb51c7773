"""Outbound requests (webhooks, kintone, HubSpot) end within their deadline, however slowly a
receiver answers: a real socket server on 127.0.0.1 that drips its answer."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from webhooks.outgoing import request


def dripping_receiver(seconds_per_byte: float, *, tls: bool = False) -> tuple[str, threading.Event]:
    """A receiver that reads the request, then sends its answer one byte at a time (``tls``: its
    TLS handshake instead: a record header announcing 16 KB, then the bytes, one by one)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    done = threading.Event()
    http = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    answer = b"\x16\x03\x03\x40\x00" + b"\x00" * 16384 if tls else http

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        try:
            for byte in answer:
                conn.send(bytes([byte]))
                if done.wait(seconds_per_byte):
                    break
        except OSError:
            pass  # the sender cut the connection
        finally:
            conn.close()
            server.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"{'https' if tls else 'http'}://127.0.0.1:{server.getsockname()[1]}/hook", done


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_deadline() -> None:
    # Given a receiver that sends a byte every 0.2 s: within every 3 s socket timeout, 8 s in all
    url, done = dripping_receiver(0.2)
    # When a delivery is sent with a 1.5 s deadline
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="within 1.5 s"):
        request("POST", url, b"{}", {}, local_mode=True, timeout_s=3.0, deadline_s=1.5)
    # Then it ends at the deadline (a retry, with backoff), not when the receiver is done (room
    # left for a loaded machine)
    assert time.monotonic() - started < 5.0
    done.set()


def test_a_receiver_that_drips_its_tls_handshake_is_cut_off_at_the_deadline_too() -> None:
    # Given an https receiver whose handshake comes a byte every 0.2 s
    url, done = dripping_receiver(0.2, tls=True)
    # When a delivery is sent with a 1 s deadline (and 6 s for each socket operation, the handshake
    # included)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="within 1 s"):
        request("POST", url, b"{}", {}, local_mode=True, timeout_s=6.0, deadline_s=1.0)
    # Then it ends at the deadline, not when the handshake's own 6 s run out (the timer found no
    # socket to shut while the handshake ran)
    assert time.monotonic() - started < 4.0
    done.set()


def test_a_receiver_that_answers_in_time_is_not_cut() -> None:
    url, done = dripping_receiver(0.01)
    answer = request("POST", url, b"{}", {}, local_mode=True, timeout_s=1.0, deadline_s=5.0)
    assert (answer.status, answer.body) == (200, b"ok")
    done.set()


def test_a_slow_name_lookup_counts_towards_the_deadline() -> None:
    # Given a receiver's name servers (the account chooses them) that take 3 s to answer
    def slow_resolver(host: str, port: int) -> list[str]:
        time.sleep(3.0)
        return ["127.0.0.1"]

    # When a delivery is sent with a 1 s deadline
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="within 1 s"):
        request("POST", "http://hooks.example.jp:9/hook", b"{}", {}, local_mode=True, timeout_s=1.0,
                deadline_s=1.0, resolver=slow_resolver)
    # Then it ends at the deadline, not when the lookup is done (it took 3 s and then went on)
    assert time.monotonic() - started < 2.5
