"""`calltrack doctor` on the local stack and the fake Twilio: green when set up, and each check red
when its cause is injected, green again once fixed."""

from __future__ import annotations

import json
import secrets

import pytest

from calltrack.accounts import account_reader
from calltrack_cli.local.stack import free_port
from tests.support import unique_number
from tests.support.cli import run_cli
from tests.support.stack import tokens
from tests.support.twilio_numbers import ELSEWHERE, OUR, TinySite, pointing_at, serve_twilio_numbers

fake = pytest.fixture(scope="module", name="fake")(serve_twilio_numbers)
SITE_NUMBER = "+81312345678"


class Setup:
    """One account set up as the README says: numbers synced, a site page with dni.js, a pool, an
    ops topic with a subscriber."""

    def __init__(self, stack, fake) -> None:
        self.stack, self.fake = stack, fake
        self.site = TinySite()
        self.account = "doctor-" + secrets.token_hex(5)
        self.static, self.pooled = unique_number(), unique_number()
        self.apply(pool=[self.pooled])
        self.admin = tokens(stack, self.account, "admin")["admin"]
        for number in (self.static, self.pooled):
            fake.numbers.add_number(OUR, number, **pointing_at(stack))
        self.page()
        sns = stack.stack.client("sns")
        self.topic = sns.create_topic(Name="ops-" + secrets.token_hex(4))["TopicArn"]
        queue = stack.stack.client("sqs").create_queue(QueueName="ops-" + secrets.token_hex(4))["QueueUrl"]
        self.queue_arn = stack.stack.client("sqs").get_queue_attributes(
            QueueUrl=queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]

    def apply(self, *, pool, origins=None, consent=False) -> None:
        self.stack.apply(
            {
                "dni": {"wait_for_consent": consent},
                "account": self.account,
                "forward_to": "+81398765432",
                "numbers": [{"number": self.static, "channel": "flyer"}],
                "pools": [
                    {
                        "id": "google-ads",
                        "channel": "google-ads",
                        "match": {"utm_source": "google"},
                        "numbers": pool,
                    }
                ],
                "site": {"origins": origins or [self.site.url], "numbers": [SITE_NUMBER]},
            }
        )

    def page(self, *, script=True, account=None, shown="03-1234-5678", consent="") -> None:
        waits = f' data-consent="{consent}"' if consent else ""
        tag = (
            f'<script src="{self.stack.url}/dni.js" data-account="{account or self.account}"{waits} async>'
            "</script>"
            if script
            else ""
        )
        self.site.html = f"<html><head>{tag}</head><body><a href='tel:{shown}'>☎ {shown}</a></body></html>"

    def subscribe(self) -> None:
        self.stack.stack.client("sns").subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=self.queue_arn)

    def lease(self) -> None:
        body = {
            "account": self.account,
            "visitor_id": "v-" + secrets.token_hex(6),
            "session_id": "s-" + secrets.token_hex(6),
            "page_url": f"{self.site.url}/?utm_source=google",
            "utm": {"source": "google"},
        }
        resp = self.stack.request(
            "POST",
            "/dni/lease",
            data=json.dumps(body),
            headers={
                "Origin": self.site.url,
                "Content-Type": "text/plain",
                "X-Forwarded-For": f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.7",
            },
        )
        assert resp.status_code == 200, resp.text

    def doctor(self, *extra, url=None, token=None):
        result = run_cli(
            "doctor",
            "--account",
            self.account,
            "--site",
            self.site.url,
            "--ops-topic-arn",
            self.topic,
            "--json",
            "--url",
            url or self.stack.url,
            "--token",
            token or self.admin,
            *extra,
        )
        body = json.loads(result.stdout.strip().splitlines()[-1])  # the stack runs in process: its logs too
        whole = ("webhook", "public url")  # checks of the stack; the others are "<check> <account>"
        return result.exit_code, {
            c["check"] if c["check"].startswith(whole) else c["check"].split(" ")[0]: c
            for c in body["checks"]
        }


@pytest.fixture()
def setup(local_stack, fake):
    s = Setup(local_stack, fake)
    s.subscribe()
    yield s
    s.site.stop()


def _statuses(checks):
    return {name: c["status"] for name, c in checks.items()}


def test_doctor_is_green_on_a_set_up_account(setup):
    code, checks = setup.doctor()
    assert _statuses(checks) == {
        "api": "pass",
        "token": "pass",
        "public url": "pass",
        "webhook signed": "pass",
        "webhook unsigned": "pass",
        "numbers": "pass",
        "site": "pass",
        "ops": "pass",
        "pools": "pass",
        "destinations": "skip",
    }, checks
    assert code == 0
    assert checks["token"]["detail"] == f"admin token of account {setup.account}"
    assert "not configured" in checks["destinations"]["detail"]
    human = run_cli(
        "doctor",
        "--account",
        setup.account,
        "--ops-topic-arn",
        setup.topic,
        "--url",
        setup.stack.url,
        "--token",
        setup.admin,
    )
    assert human.exit_code == 0 and "✔ api:" in human.stdout and "✘" not in human.stdout


def test_numbers_pointing_elsewhere_fail_until_synced(setup):
    setup.fake.numbers.configure(setup.static, **ELSEWHERE)
    code, checks = setup.doctor()
    assert code == 1 and checks["numbers"]["status"] == "fail"
    assert setup.static in checks["numbers"]["detail"]
    assert checks["numbers"]["fix"].startswith(f"calltrack numbers sync --account {setup.account}")
    run_cli("numbers", "sync", "--account", setup.account, "--url", setup.stack.url, "--token", setup.admin)
    assert setup.doctor()[1]["numbers"]["status"] == "pass"


def test_site_without_dni_js_wrong_account_origin_or_number_fails_until_fixed(setup):
    for broken, words in (
        ({"script": False}, "does not load dni.js"),
        ({"account": "someone-else"}, "data-account"),
        ({"shown": "03-0000-0000"}, "shows none of site.numbers"),
    ):
        setup.page(**broken)
        code, checks = setup.doctor()
        assert code == 1 and checks["site"]["status"] == "fail" and words in checks["site"]["detail"], checks[
            "site"
        ]
    setup.page()
    setup.apply(pool=[setup.pooled], origins=["https://www.example.jp"])
    code, checks = setup.doctor()
    assert code == 1 and "not in site.origins" in checks["site"]["detail"]
    setup.apply(pool=[setup.pooled])
    assert setup.doctor()[1]["site"]["status"] == "pass"
    # an account that waits for consent needs a tag that names the consent event
    setup.apply(pool=[setup.pooled], consent=True)
    account_reader().forget()
    code, checks = setup.doctor()
    assert code == 1 and "data-consent" in checks["site"]["detail"]
    assert "data-consent" in checks["site"]["fix"]
    setup.page(consent="cookie-consent-given")
    assert setup.doctor()[1]["site"]["status"] == "pass"
    setup.apply(pool=[setup.pooled])


def test_a_pool_smaller_than_its_peak_fails_until_it_grows(setup):
    setup.lease()
    setup.lease()  # two sessions at once on a one-number pool: recommended ceil(2 / 0.75) = 3
    code, checks = setup.doctor()
    assert code == 1 and checks["pools"]["status"] == "fail"
    assert "recommended 3" in checks["pools"]["detail"] and "--count 2" in checks["pools"]["fix"]
    more = [unique_number(), unique_number()]
    for number in more:
        setup.fake.numbers.add_number(OUR, number, **pointing_at(setup.stack))
    setup.apply(pool=[setup.pooled, *more])
    account_reader().forget()  # warm functions see a config within 30 s: skip the wait
    assert setup.doctor()[1]["pools"]["status"] == "pass"
    advice = run_cli(
        "pools",
        "advise",
        "--account",
        setup.account,
        "--price-per-number",
        "4.5",
        "--json",
        "--url",
        setup.stack.url,
        "--token",
        setup.admin,
    )
    [pool] = json.loads(advice.stdout)["pools"]
    assert pool["size"] == 3 and pool["recommended_size"] == 3 and pool["monthly_cost_change"] == 0


def test_an_ops_topic_without_subscribers_fails_until_someone_subscribes(local_stack, fake):
    s = Setup(local_stack, fake)
    try:
        code, checks = s.doctor()
        assert code == 1 and checks["ops"]["status"] == "fail" and "aws sns subscribe" in checks["ops"]["fix"]
        s.subscribe()
        assert s.doctor()[1]["ops"]["status"] == "pass"
    finally:
        s.site.stop()


def test_bad_token_unreachable_api_and_webhook_mismatches_fail(setup):
    code, checks = setup.doctor(token="ct_not-a-token")
    assert code == 1 and checks["token"]["status"] == "fail"
    code, checks = setup.doctor(url=f"http://127.0.0.1:{free_port()}")
    assert code == 1 and checks["api"]["status"] == "fail"
    # A public URL other than the one the stack signs with: the signed callback is refused
    wrong_public = setup.stack.public_url.replace("127.0.0.1", "localhost")
    code, checks = setup.doctor("--public-url", wrong_public)
    assert code == 1 and checks["webhook signed"]["status"] == "fail"
    # and the stack itself says it signs another URL (a check that needs no Twilio credentials)
    said = checks["public url"]
    assert said["status"] == "fail" and setup.stack.public_url in said["detail"]
    assert checks["webhook unsigned"]["status"] == "pass"
    # A "webhook" that checks no signature: the unsigned callback is accepted
    code, checks = setup.doctor("--public-url", setup.site.url)
    assert code == 1 and checks["webhook unsigned"]["status"] == "fail"


def test_a_destination_whose_secret_is_not_set_fails_until_it_is(setup):
    # Given the account sends conversions to Meta with the secret "meta", which nobody has set
    config = setup.stack.request("GET", f"/v1/accounts/{setup.account}", token=setup.admin).json()["config"]
    config["destinations"] = {"meta": {"pixel_id": "1234567890", "secret": "meta"}}
    setup.stack.apply(config)
    code, checks = setup.doctor()
    assert code == 1 and checks["destinations"]["status"] == "fail"
    assert checks["destinations"]["detail"] == "secrets not set: meta"
    assert checks["destinations"]["fix"] == f"calltrack secret set --account {setup.account} meta"
    # When its admin sets it, the check is green
    run_cli(
        "secret",
        "set",
        "--account",
        setup.account,
        "meta",
        "--url",
        setup.stack.url,
        "--token",
        setup.admin,
        input="EAAB-token\n",
    )
    assert setup.doctor()[1]["destinations"]["status"] == "pass"


def test_twilio_settings_set_in_part_fail_the_numbers_check_but_not_the_webhook_checks(setup, monkeypatch):
    # Given a marketer's shell with the auth token but no TWILIO_ACCOUNT_SID
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    # When doctor runs
    code, checks = setup.doctor()
    # Then the webhook checks still sign and send well-formed callbacks, and pass
    assert checks["webhook signed"]["status"] == "pass", checks["webhook signed"]
    assert checks["webhook unsigned"]["status"] == "pass", checks["webhook unsigned"]
    # And the numbers check, whose settings are set but unusable, fails naming the missing one
    assert code == 1 and checks["numbers"]["status"] == "fail"
    assert "TWILIO_ACCOUNT_SID" in checks["numbers"]["detail"]
    # And with no TWILIO_* setting at all, the Twilio checks are skipped, not failed
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code, checks = setup.doctor()
    assert code == 0, checks
    assert checks["numbers"]["status"] == "skip" and checks["webhook signed"]["status"] == "skip"
