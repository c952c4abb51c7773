"""`calltrack apply` / `token create` input handling: one-line errors and exit codes (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from calltrack_cli.admin_cmds import CliFailure, load_yaml, read_piped
from tests.support.cli import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-dental.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "account.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("account: acme\n  name: [unclosed\n", "account.yaml:2:7: YAML syntax error"),
        ("account: acme\nnumbers: [\n", "account.yaml:3:1: YAML syntax error"),
        ("- just\n- a list\n", "expected a mapping of keys to values at the top level, got list"),
        ("", "the file is empty"),
        ("account: a\naccount: b\n", "account.yaml:2:1: YAML syntax error: duplicate key 'account'"),
        # a stray bracket makes a list a key (it was a traceback: unhashable type)
        ('account: acme\nsite: {origins: ["https://a.jp"], ["https://b.jp"]}\n',
         "account.yaml:2:35: YAML syntax error: a key that is a list or mapping"),
        # a key repeated next to a merge is still a duplicate
        ("base: &b {channel: flyer}\nn: {<<: *b, number: a, number: b}\n", "duplicate key 'number'"),
        # nested 2,000 deep (the parser recurses) and 40 deep (parsed, but deeper than 32 levels)
        ("account: acme\nx: " + "[" * 2000 + "1" + "]" * 2000 + "\n", "YAML nested too deeply"),
        ("account: acme\nx: " + "[" * 40 + "1" + "]" * 40 + "\n", "YAML nested too deeply"),
        # a 'billion laughs' of aliases
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join('*' + chr(97 + i) for _ in range(10))}]\n"
                   for i in range(6))
         + "account: acme\n", "YAML too large"),
    ],
)
def test_unreadable_yaml_is_one_line_naming_the_problem_and_exit_2(tmp_path, text, expected):
    result = run_cli("apply", str(_write(tmp_path, text)), "--token", "t", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'account: acme\nforward_to: "+81312345678"\nnumbers:\n  - {number: "123", channel: flyer}\n',
            "numbers[0].number: not a phone number",
        ),
        ('account: acme\nforward_to: "+81312345678"\nfax: yes\n', "fax: unknown key"),
        ("account: acme\nforward_to: +81312345678\n", "forward_to: phone numbers must be quoted strings"),
    ],
)
def test_invalid_config_is_refused_locally_naming_the_field(tmp_path, text, expected):
    # the URL is unroutable: a local refusal never reaches the server (sockets are disabled here anyway)
    result = run_cli("apply", str(_write(tmp_path, text)), "--token", "t", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr


def test_a_missing_file_is_exit_2(tmp_path):
    result = run_cli("apply", str(tmp_path / "nope.yaml"), "--token", "t")
    assert result.exit_code == 2


def test_without_a_token_apply_exits_2_before_sending(tmp_path, monkeypatch):
    monkeypatch.delenv("CALLTRACK_TOKEN", raising=False)
    result = run_cli("apply", str(EXAMPLE))
    assert result.exit_code == 2 and "CALLTRACK_TOKEN" in result.stderr


def test_dates_stay_text_so_campaigns_can_look_like_dates(tmp_path):
    data = load_yaml(_write(tmp_path, "campaign: 2026-11-01\n"))
    assert data == {"campaign": "2026-11-01"}


def test_the_example_file_is_valid():
    from calltrack.account_config import normalize_config, parse_config, tracking_rows

    config = parse_config(load_yaml(EXAMPLE))
    rows = tracking_rows(normalize_config(config))
    channels = {row["channel"] for row in rows.values()}
    assert {
        "newspaper",
        "flyer",
        "signboard",
        "radio",
        "google-ads",
        "yahoo-ads",
        "facebook",
        "instagram",
        "organic",
        "direct",
    } <= channels
    assert all(n.startswith("+8150") for n in rows)
    assert config.recording.enabled and config.recording.announcement


def test_a_merge_key_brings_in_an_anchors_keys_and_the_mappings_own_keys_override_them(tmp_path):
    # Given numbers written once with an anchor and reused with a merge key, one field changed
    # (it was refused as a duplicate key 'number')
    path = _write(tmp_path, (
        "account: acme\nnumbers:\n"
        '  - &n1 {number: "+815012340001", channel: flyer, medium: offline}\n'
        "  - <<: *n1\n"
        '    number: "+815012340002"\n'
    ))
    # When the file is read
    numbers = load_yaml(path)["numbers"]
    # Then the second number has the first's channel and medium and its own number
    assert numbers[1] == {"number": "+815012340002", "channel": "flyer", "medium": "offline"}
    assert numbers[0]["number"] == "+815012340001"


def test_load_yaml_raises_a_cli_failure_not_a_traceback(tmp_path):
    with pytest.raises(CliFailure) as err:
        load_yaml(_write(tmp_path, "a: [\n"))
    assert err.value.code == 2


def test_token_create_with_an_unknown_role_exits_2_without_output(monkeypatch):
    result = run_cli("token", "create", "--account", "acme", "--role", "owner", "--token", "t")
    assert result.exit_code == 2 and result.stdout == "" and "--role" in result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://api.example.com", "must be https"),  # the token would cross the network in clear
        ("api.example.com", "not an http(s) URL"),
        ("http://[::1", "not an http(s) URL"),
    ],
)
def test_a_url_the_token_must_not_go_to_is_refused_before_sending(url, expected):
    args = ("--account", "acme", "--role", "manager", "--token", "t", "--url", url)
    result = run_cli("token", "create", *args)
    assert result.exit_code == 2 and result.stdout == "" and expected in result.stderr
    assert "Traceback" not in result.output


def test_apply_warns_when_pools_would_be_leased_from_any_site() -> None:
    import yaml

    from calltrack.account_config import parse_config
    from calltrack_cli.admin_cmds import config_warnings

    # Given the example clinic (pools, and its site's origins), and the same without the origins
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    without_origins = {**example, "site": {**example["site"], "origins": []}}
    no_site = {k: v for k, v in example.items() if k != "site"}
    no_pools = {**without_origins, "pools": []}
    # Then only a config with pools and no origins is warned about, naming the key
    assert config_warnings(parse_config(example)) == []
    for config in (without_origins, no_site):
        [warning] = config_warnings(parse_config(config))
        assert warning.startswith("site.origins is not set")
    assert config_warnings(parse_config(no_pools)) == []


def test_a_password_piped_from_a_windows_file_is_sent_without_its_line_end(monkeypatch):
    # Given the API's answer recorded (the unit tier has no sockets), and stdin as Python opens it
    # (no newline translation: the click runner's stdin would turn \r\n into \n)
    import io

    sent: list[Any] = []

    def answer(method: str, url: str, token: str, body: Any) -> dict[str, Any]:
        sent.append(body)
        return {"email": body["email"], "role": body["role"], "status": "CONFIRMED"}

    monkeypatch.setattr("calltrack_cli.users_cmds._request", answer)
    monkeypatch.setattr("calltrack_cli.users_cmds.read_piped",
                        lambda _: read_piped(io.StringIO("Pass-word-1\r\n", newline="")))
    # When a password file written on Windows is piped in
    result = run_cli("users", "create", "--account", "acme", "--role", "manager", "--email", "m@example.jp",
                     "--password-stdin", "--token", "t", "--url", "http://127.0.0.1:9", input="x")
    # Then the password sent is the file's line without \r\n (the \r was kept: nobody could sign in)
    assert result.exit_code == 0, result.output
    assert sent[0]["password"] == "Pass-word-1"
