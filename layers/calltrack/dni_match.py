"""DNI pool matching and session attribution: pure functions shared by dni_lease and the demo.

A visitor (its first-touch utm values, click ids and referrer) is matched against an account's
``pools`` (account config, normalised by the admin function). The first matching pool wins.

Match rules of one pool (``pools[].match``; every value may be a string or a list of strings):

- ``utm_source`` / ``utm_medium`` / ``utm_campaign``: all utm rules given must match
  (case-insensitive, any of the listed values);
- ``click_ids``: the visitor carries one of these click ids (``gclid``, ``yclid`` ...). When a
  pool lists none, the pool's channel implies its usual click ids (google-ads: gclid, gbraid,
  wbraid; yahoo-ads: yclid; facebook/instagram: fbclid; microsoft-ads: msclkid);
- ``referrer_domains``: the referrer's host is one of these domains or a subdomain of one.

A visitor whose utm_source contradicts a pool's utm_source rule does not match that pool through
its click ids or referrer (``utm_source=instagram&fbclid=...`` is not the facebook pool's).

A pool matches when any of its rule kinds matches. A pool with no rules at all is a catch-all
(useful last, e.g. for organic / direct visitors), unless its channel implies click ids: then
it matches visitors carrying one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlparse, urlsplit, urlunsplit

from calltrack.attribution import AD_BROWSER_IDS

# A pool lease's length without a heartbeat (``pools[].lease_minutes``). A visible page renews it
# every third of it and releases it when hidden; the length only holds numbers of pages that
# vanished without a word (docs/decisions.md, 2026-12-01).
DEFAULT_LEASE_MINUTES = 10
CLICK_IDS = ("gclid", "gbraid", "wbraid", "fbclid", "yclid", "msclkid")
# What the ad platforms put in a click id (URL-safe base64, digits, dots as in Yahoo!'s
# "YSS.1000012345.xxx"). Anything else is not a click id: it is never sent to a platform or written
# to an import file (a cell such as =HYPERLINK(...) runs as a formula in Excel).
CLICK_ID = re.compile(r"^[A-Za-z0-9._~-]{1,512}$")
UTM_KEYS = ("source", "medium", "campaign", "term", "content")
# The ad platforms' browser ids dni.js reads from first-party cookies (issue 16, conversions): GA4's
# client id and session id (_ga, _ga_<container>), Meta's browser id and click id (_fbp, _fbc).
AD_COOKIE_KEYS = AD_BROWSER_IDS  # one list: what a lease stores is what a call's attribution reads
ATTRIBUTION_KEYS = (
    "keyword",
    *CLICK_IDS,
    "utm",
    "landing_page",
    "referrer",
    "visitor_id",
    "session_id",
    *AD_COOKIE_KEYS,
)

CHANNEL_CLICK_IDS: dict[str, tuple[str, ...]] = {
    "google-ads": ("gclid", "gbraid", "wbraid"),
    "yahoo-ads": ("yclid",),
    "facebook": ("fbclid",),
    "instagram": ("fbclid",),
    "microsoft-ads": ("msclkid",),
    "bing-ads": ("msclkid",),
}

# Search engines whose referrer URL may still carry the query (q= / p= for Yahoo! JAPAN).
_SEARCH_QUERY_PARAMS: tuple[tuple[str, str], ...] = (
    ("google.", "q"),
    ("bing.com", "q"),
    ("search.yahoo.", "p"),
    ("yahoo.co.jp", "p"),
    ("duckduckgo.com", "q"),
    ("baidu.com", "wd"),
    ("naver.com", "query"),
    ("ecosia.org", "q"),
)


def _values(rule: Any) -> list[str]:
    if rule is None:
        return []
    if isinstance(rule, str):
        return [rule.strip().lower()] if rule.strip() else []
    if isinstance(rule, Iterable):
        return [str(v).strip().lower() for v in rule if str(v).strip()]
    return [str(rule).strip().lower()]


def referrer_host(referrer: str | None) -> str:
    if not referrer:
        return ""
    try:
        return (urlparse(referrer).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def host_matches(host: str, domains: Sequence[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains if d)


def pool_matches(pool: Mapping[str, Any], visitor: Mapping[str, Any]) -> bool:
    """Does ``visitor`` (attribution dict: utm{...}, click ids, referrer) match ``pool``?"""
    match = pool.get("match") or {}
    utm = visitor.get("utm") or {}
    utm_rules = {key: _values(match.get(f"utm_{key}")) for key in ("source", "medium", "campaign")}
    utm_rules = {k: v for k, v in utm_rules.items() if v}
    click_ids = _values(match.get("click_ids")) or list(CHANNEL_CLICK_IDS.get(str(pool.get("channel")), ()))
    domains = [d.lstrip(".") for d in _values(match.get("referrer_domains"))]
    explicit_click_rule = bool(_values(match.get("click_ids")))
    if not utm_rules and not explicit_click_rule and not domains:
        # No explicit rules: the channel's usual click ids, or a catch-all for other channels.
        return not click_ids or any(visitor.get(c) for c in click_ids)
    if utm_rules and all(str(utm.get(k) or "").strip().lower() in vals for k, vals in utm_rules.items()):
        return True
    source = str(utm.get("source") or "").strip().lower()
    if source and "source" in utm_rules:
        # The visitor names another source (utm_source=instagram with an fbclid): the explicit
        # utm_source wins over click ids and referrers, so a later pool can claim the visitor.
        return False
    if any(visitor.get(c) for c in click_ids):
        return True
    return bool(domains) and host_matches(referrer_host(visitor.get("referrer")), domains)


def match_pool(pools: Sequence[Mapping[str, Any]], visitor: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first pool (with at least one number or an overflow number) that ``visitor`` matches."""
    for pool in pools or ():
        if not (pool.get("numbers") or pool.get("overflow_number")):
            continue
        if pool_matches(pool, visitor):
            return pool
    return None


def search_keyword(referrer: str | None) -> str | None:
    """The search query in a search engine's referrer URL, if it still carries one."""
    host = referrer_host(referrer)
    if not host or not referrer:
        return None
    for marker, param in _SEARCH_QUERY_PARAMS:
        if marker in host:
            try:
                query = parse_qs(urlparse(referrer).query)
            except ValueError:
                return None
            values = [v.strip() for v in query.get(param, []) if v.strip()]
            return values[0] if values else None
    return None


def keyword_for(keyword: str | None, utm: Mapping[str, Any] | None, referrer: str | None) -> str | None:
    """Keyword: the explicit one, else utm_term, else a search referrer's query."""
    if keyword and keyword.strip():
        return keyword.strip()
    term = (utm or {}).get("term")
    if isinstance(term, str) and term.strip():
        return term.strip()
    return search_keyword(referrer)


def click_id_or_none(value: Any) -> str | None:
    """``value`` when it is a click id (``CLICK_ID``), else None."""
    return value if isinstance(value, str) and CLICK_ID.fullmatch(value) else None


# Query parameters that say which ad or visit brought the visitor, not which page it is: the
# landing page is kept without them (the click ids and utm are kept on their own), so the
# landing-page report has one row per page, not one per ad click.
_TRACKING_PARAMS = frozenset({*CLICK_IDS, "dclid", "gad_source", "gad_campaignid", "_gl", "_ga", "srsltid",
                              "twclid", "ttclid", "li_fat_id", "mc_cid", "mc_eid", "igshid", "yj_r"})


def landing_page_of(url: str | None) -> str | None:
    """``url`` without its fragment and its tracking parameters (``utm_*``, click ids, ...)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith("utm_")]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))


def session_attribution(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The attribution JSON stored on a lease (keys: ATTRIBUTION_KEYS; absent values None).

    ``fields`` is a validated lease request: visitor_id, session_id, page_url, landing_page,
    referrer, utm{...}, click ids, keyword.
    """
    utm_in = fields.get("utm") or {}
    utm = {key: (utm_in.get(key) or None) for key in UTM_KEYS}
    out: dict[str, Any] = {
        "keyword": keyword_for(fields.get("keyword"), utm, fields.get("referrer")),
        "utm": utm,
        "landing_page": landing_page_of(fields.get("landing_page") or fields.get("page_url")),
        "referrer": fields.get("referrer") or None,
        "visitor_id": fields.get("visitor_id"),
        "session_id": fields.get("session_id"),
    }
    for key in (*CLICK_IDS, *AD_COOKIE_KEYS):
        out[key] = fields.get(key) or None
    return {key: out.get(key) for key in ATTRIBUTION_KEYS}


def channel_of(pool: Mapping[str, Any] | None) -> str | None:
    return None if pool is None else (str(pool["channel"]) if pool.get("channel") else None)
