"""Pool matching, keyword extraction and session attribution (calltrack.dni_match)."""

from __future__ import annotations

from calltrack.dni_match import ATTRIBUTION_KEYS, keyword_for, match_pool, search_keyword, session_attribution

POOLS = [
    {
        "id": "google",
        "channel": "google-ads",
        "numbers": ["+815011110001"],
        "match": {"utm_source": ["google", "adwords"], "click_ids": ["gclid", "gbraid", "wbraid"]},
    },
    {"id": "yahoo", "channel": "yahoo-ads", "numbers": ["+815011110002"], "match": {"utm_source": "yahoo"}},
    {"id": "fb", "channel": "facebook", "numbers": ["+815011110003"], "match": {}},
    {
        "id": "organic",
        "channel": "organic",
        "numbers": ["+815011110004"],
        "match": {"referrer_domains": ["google.co.jp", "bing.com", "yahoo.co.jp"]},
    },
    {"id": "direct", "channel": "direct", "numbers": ["+815011110005"], "match": {}},
]


def _visitor(**kw):
    utm = kw.pop("utm", {})
    return {"utm": utm, **kw}


def test_utm_source_matches_case_insensitively_and_first_pool_wins():
    assert match_pool(POOLS, _visitor(utm={"source": "Google"}))["id"] == "google"
    assert match_pool(POOLS, _visitor(utm={"source": "yahoo"}))["id"] == "yahoo"


def test_click_ids_match_without_utm():
    assert match_pool(POOLS, _visitor(gbraid="x1"))["id"] == "google"


def test_channel_implies_its_click_ids_when_the_pool_lists_no_rules():
    # Given a facebook pool without rules, a visitor with fbclid lands there...
    assert match_pool(POOLS, _visitor(fbclid="fb.1"))["id"] == "fb"
    # ...while a visitor without it is not caught by the facebook pool.
    assert match_pool(POOLS, _visitor())["id"] == "direct"


def test_referrer_domain_matches_subdomains_only_on_a_label_boundary():
    assert match_pool(POOLS, _visitor(referrer="https://www.google.co.jp/"))["id"] == "organic"
    assert match_pool(POOLS, _visitor(referrer="https://evilgoogle.co.jp/"))["id"] == "direct"


def test_no_pool_matches_returns_none_and_pools_without_numbers_are_skipped():
    pools = [{"id": "g", "channel": "google-ads", "numbers": [], "match": {}}]
    assert match_pool(pools, _visitor(gclid="x")) is None
    assert match_pool([POOLS[0]], _visitor(utm={"source": "bing"})) is None


def test_keyword_prefers_explicit_then_utm_term_then_search_referrer():
    assert keyword_for("歯医者 渋谷", {"term": "x"}, None) == "歯医者 渋谷"
    assert keyword_for(None, {"term": "インプラント"}, None) == "インプラント"
    assert keyword_for(None, {}, "https://www.bing.com/search?q=dentist+tokyo") == "dentist tokyo"
    assert search_keyword("https://search.yahoo.co.jp/search?p=%E6%AD%AF%E7%A7%91") == "歯科"
    assert search_keyword("https://example.com/?q=nope") is None


def test_session_attribution_has_exactly_the_contract_keys():
    attribution = session_attribution(
        {
            "visitor_id": "v" * 10,
            "session_id": "s" * 10,
            "page_url": "https://a.example/p",
            "utm": {"source": "google", "term": "歯医者"},
            "gclid": "G1",
            "referrer": "https://www.google.com/",
        }
    )
    assert tuple(attribution) == ATTRIBUTION_KEYS
    assert attribution["keyword"] == "歯医者"
    assert attribution["gclid"] == "G1"
    assert attribution["landing_page"] == "https://a.example/p"
    assert attribution["utm"] == {
        "source": "google",
        "medium": None,
        "campaign": None,
        "term": "歯医者",
        "content": None,
    }


def test_an_explicit_utm_source_beats_another_pools_click_id_rule():
    pools = [
        {
            "id": "fb",
            "channel": "facebook",
            "numbers": ["+815011110003"],
            "match": {"utm_source": ["facebook", "fb"], "click_ids": ["fbclid"]},
        },
        {
            "id": "ig",
            "channel": "instagram",
            "numbers": ["+815011110006"],
            "match": {"utm_source": "instagram"},
        },
    ]
    assert match_pool(pools, _visitor(utm={"source": "instagram"}, fbclid="f1"))["id"] == "ig"
    assert match_pool(pools, _visitor(fbclid="f1"))["id"] == "fb"


def test_the_landing_page_is_the_page_without_the_ads_parameters() -> None:
    from calltrack.dni_match import landing_page_of

    # Given three ad clicks landing on one page, each URL with its own gclid and utm
    urls = [f"https://acme.example.jp/implant?utm_source=google&gclid=Cj0K{i}&p=2#top" for i in range(3)]
    # Then they are one landing page (the report had a row per click), keeping what names the page
    assert {landing_page_of(u) for u in urls} == {"https://acme.example.jp/implant?p=2"}
    assert landing_page_of("https://acme.example.jp/?YCLID=x&fbclid=y&UTM_term=z") == "https://acme.example.jp/"
    assert landing_page_of(None) is None
