"""`calltrack local ...` argument handling (no stack needed)."""

from __future__ import annotations

from typer.testing import CliRunner

from calltrack_cli.main import app

runner = CliRunner()


def test_local_help_teaches_with_examples():
    result = runner.invoke(app, ["local", "--help"])
    assert result.exit_code == 0
    assert "serve" in result.output and "run-job" in result.output and "outbox" in result.output


def test_run_job_rejects_a_malformed_instant_with_exit_2():
    result = runner.invoke(app, ["local", "run-job", "weekly-unanswered-alert", "--at", "next monday"])
    assert result.exit_code == 2
    assert "ISO 8601" in result.output


def test_run_job_requires_at():
    result = runner.invoke(app, ["local", "run-job", "weekly-unanswered-alert"])
    assert result.exit_code == 2


def test_serve_shows_a_generated_operator_token_but_never_one_the_user_set():
    from calltrack_cli.local_cmds import operator_token_line

    # Given a token the user set (perhaps a deployment's) and one generated for the run
    # Then only the generated one is printed
    assert "ct_operator_prod_secret" not in operator_token_line("ct_operator_prod_secret", generated=False)
    assert "ct_operator_generated" in operator_token_line("ct_operator_generated", generated=True)


def test_the_demo_refuses_a_url_that_is_not_a_local_stack_before_sending_anything():
    # Given a deployed API's address (or any host but this machine)
    for url in ("https://abc123.execute-api.ap-northeast-1.amazonaws.com", "http://10.0.0.5:8787", "ftp://127.0.0.1"):
        # When the demo is pointed at it (the unit tier has no sockets: a request would fail the test
        # with a different error)
        result = runner.invoke(app, ["demo", "--url", url, "--token", "ct_operator_x"])
        # Then it exits 2 naming --url, having applied nothing there
        assert result.exit_code == 2, result.output
        assert "--url" in result.output and "local stack only" in result.output


class _NotALocalStack:
    """requests' Session answering as a deployed API or a plain web server does (unit tier: no sockets)."""

    def __init__(self, status: int, content_type: str, text: str) -> None:
        self.status, self.content_type, self.text = status, content_type, text

    def request(self, method: str, url: str, **kwargs: object) -> object:
        import requests

        resp = requests.Response()
        resp.status_code = self.status
        resp.headers["Content-Type"] = self.content_type
        resp._content = self.text.encode()
        return resp


def test_local_commands_pointed_at_a_server_that_is_no_local_stack_say_so_in_one_line(monkeypatch):
    from calltrack_cli.local import client

    # Given CALLTRACK_URL naming a deployed API (404 JSON) or a web server (an HTML error page)
    for answer in (_NotALocalStack(404, "application/json", '{"message":"Not Found"}'),
                   _NotALocalStack(404, "text/html", "<html>\n<body>\n<h1>Not Found</h1>\n</body></html>")):
        monkeypatch.setattr(client.requests, "Session", lambda answer=answer: answer)
        # When `local outbox` and `local drain` are run
        for command in ("outbox", "drain"):
            result = runner.invoke(app, ["local", command, "--url", "http://127.0.0.1:9"])
            # Then each fails with one line naming the question, no traceback, no HTML page
            assert result.exit_code != 0, result.output
            assert result.exception is None or isinstance(result.exception, SystemExit)
            assert "calltrack local stack" in result.output and "<html>" not in result.output


def test_the_demo_run_outside_the_checkout_finds_its_example_config_in_the_checkout(tmp_path, monkeypatch):
    from pathlib import Path

    from calltrack_cli.demo import runner as demo_runner

    # Given a shell in another directory (an editable install finds the checkout itself)
    monkeypatch.chdir(tmp_path)
    asked: list[Path] = []

    def run_demo(opts, console):
        asked.append(opts.config)
        raise KeyboardInterrupt  # stop before starting anything

    monkeypatch.setattr(demo_runner, "run_demo", run_demo)
    # When the demo runs without --config
    result = runner.invoke(app, ["demo"])
    # Then it applies the checkout's example (it looked for examples/acme-dental.yaml here)
    assert result.exit_code == 130, result.output
    assert asked[0].is_absolute() and asked[0].is_file() and asked[0].name == "acme-dental.yaml"
