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
            time.sleep(0)

    consumer = threading.Thread(target=consumer_logging)
    consumer.start()
    try:
        # When the CLI runs, again and again (a print landing while the runner swaps the streams
        # in is what leaked once)
        results = [run_cli("--help") for _ in range(100)]
    finally:
        stop.set()
        consumer.join()
    # Then each run's output is its own
    for result in results:
        assert result.exit_code == 0
        assert "Usage" in result.output
        assert "event planned" not in result.output
