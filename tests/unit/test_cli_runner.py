"""The in-process CLI runner captures only the CLI's own output, not the local stack's threads."""

import threading
import time

from tests.support.cli import run_cli


def test_what_another_thread_prints_during_a_cli_run_stays_out_of_its_output():
    # Given a background thread (like the local stack's queue consumers) printing logs all the time
    stop = threading.Event()

    def consumer_logging() -> None:
        while not stop.is_set():
            print('{"service":"webhooks","message":"event planned"}')
            time.sleep(0.001)

    consumer = threading.Thread(target=consumer_logging)
    consumer.start()
    try:
        # When the CLI runs
        result = run_cli("--help")
    finally:
        stop.set()
        consumer.join()
    # Then its output is its own
    assert result.exit_code == 0
    assert "Usage" in result.output
    assert "event planned" not in result.output
