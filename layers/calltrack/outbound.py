"""Where calltrack may send a request on an account's behalf (SSRF guard).

An account config names URLs (webhooks, the kintone domain); calltrack must never be the tool that
reaches into its own network. The rule, shared by ``calltrack apply`` (a literal address in a URL is
refused at once) and the senders (the resolved address is checked again right before connecting,
and the connection goes to that checked address, so DNS cannot change its answer in between):

- outside local mode only ``https``; in local mode ``http`` too, for receivers on 127.0.0.1;
- the address must be public: no loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
  link-local (169.254/16 with the instance metadata at 169.254.169.254, fe80::/10), shared
  (100.64/10), unspecified, multicast or reserved address, IPv4-mapped IPv6 included;
- in local mode the loopback address 127.0.0.1 (and ::1) is allowed, nothing else internal.

Clients that call fixed https endpoints (the ad platforms, Twilio's media host, Cognito's keys)
open their requests with ``direct_opener``: no redirect is followed (urllib would carry the
``Authorization`` header to wherever a 3xx points, http or an internal address) and no proxy is
taken from the environment.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit


class RefusedDestination(ValueError):
    """The URL or the address it resolves to is not one calltrack sends to."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path + query, at least "/"


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = value.strip("[]").split("%", 1)[0]
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = _inet_aton(text)
        if address is None:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a resolver reads from a numeric host ``ipaddress`` refuses ("2130706433",
    "0x7f.1", "017700000001", "127.1"): the name connects there, so it is that address."""
    if not text or not all(c in "0123456789abcdefxABCDEFX." for c in text) or not text[0].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def address_refusal(value: str, *, local_mode: bool) -> str | None:
    """Why calltrack does not send to this IP address, or None when it may."""
    address = _ip(value)
    if address is None:
        return f"not an IP address: {value!r}"
    if address.is_loopback:
        return None if local_mode else f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is link-local (instance metadata lives at 169.254.169.254)"
    if address.is_private or address.is_reserved or address.is_unspecified or address.is_multicast:
        return f"{address} is not a public address"
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"):
        return f"{address} is not a public address"
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None:
        # 6to4 (2002::/16) carries an IPv4 address a relay delivers to, which may be internal:
        # refused whatever it carries (newer Pythons count 2002::/16 as private; older ones did not)
        return f"{address} is a 6to4 address (for {address.sixtofour}), not a public address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def check_url(url: str, *, local_mode: bool) -> Target:
    """Scheme and literal-address checks (no DNS): what ``calltrack apply`` refuses at once."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedDestination(f"not an http(s) URL: {url[:100]!r}")
    if parts.scheme != "https" and not local_mode:
        raise RefusedDestination("must be https")
    host = parts.hostname
    name = host.rstrip(".")  # a fully qualified name's trailing dot names the same host
    if not name:
        raise RefusedDestination(f"not an http(s) URL: {url[:100]!r}")
    if _ip(name) is not None:
        why = address_refusal(name, local_mode=local_mode)
        if why:
            raise RefusedDestination(why)
    elif name == "localhost" or name.endswith((".localhost", ".internal", ".local")):
        if not (local_mode and name == "localhost"):
            raise RefusedDestination(f"{name} is an internal name")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise RefusedDestination("bad port") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # As a browser sends an IRI: characters a request line cannot carry (non-ASCII, spaces,
    # controls) percent-encoded as UTF-8; what is already encoded, and the reserved set, as written.
    path = quote(path, safe="/?#[]@!$&'()*+,;=:%~")
    return Target(parts.scheme, host, port, path)


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _ipv4_first(address: str) -> tuple[int, str]:
    return (0 if ":" not in address else 1, address)


def public_addresses(target: Target, *, local_mode: bool, resolver: Resolver = resolve) -> list[str]:
    """The addresses to connect to, IPv4 first (a Lambda outside a VPC has no IPv6 route): every
    address the host resolves to must be allowed (one bad answer refuses the host: an attacker's
    DNS may rotate answers)."""
    try:
        addresses = resolver(target.host, target.port)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve {target.host}: {exc}") from None
    if not addresses:
        raise ConnectionError(f"{target.host} has no address")
    for address in addresses:
        why = address_refusal(address, local_mode=local_mode)
        if why:
            # the account's admin reads the refusal (a delivery's reason): it must not tell them
            # how names resolve inside this network; the operator's log has the address
            logging.getLogger(__name__).warning("destination refused",
                                                extra={"host": target.host, "why": why})
            raise RefusedDestination(f"{target.host} does not resolve to public addresses only")
    return sorted(addresses, key=_ipv4_first)


def direct_opener() -> Any:
    """A ``urllib.request`` opener that follows no redirect (a 3xx is the answer, as an
    ``HTTPError``) and ignores proxy variables (see the module docstring)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    return urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())

