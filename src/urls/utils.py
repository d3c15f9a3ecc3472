"""URL normalisation and intake checks (no network: literal addresses only)."""

import ipaddress
import posixpath
import re
import socket
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from src.urls.constants import MAX_URL_LENGTH

TRACKING_PARAMS = {"gclid", "fbclid", "dclid", "msclkid", "yclid", "mc_cid", "mc_eid", "_ga"}
DEFAULT_PORTS = {"http": 80, "https": 443}
# A host of numbers only is an IPv4 address in one of inet_aton's forms (`127.1`, `0x7f.1`,
# `2130706433`, octal `0177.0.0.1`), which browsers and getaddrinfo accept as well.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*", re.I)


class UrlRejected(ValueError):
    """The URL cannot be accepted; `code` says why (stable, for API clients)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith("utm_") or lowered in TRACKING_PARAMS


def _normalise_path(path: str) -> str:
    if not path:
        return "/"
    trailing = path.endswith("/")
    resolved = posixpath.normpath(path)
    if resolved.startswith("//"):
        resolved = "/" + resolved.lstrip("/")
    if trailing and resolved != "/":
        resolved += "/"
    # Re-quote consistently: decode then quote, keeping reserved characters.
    return quote(unquote(resolved), safe="/:@!$&'()*+,;=-._~%")


def normalise_url(raw: str) -> str:
    """Canonical form used for dedupe: lowercase scheme/host, IDNA, no default port, no
    fragment, no tracking parameters, sorted query, dot segments resolved."""
    text = raw.strip()
    if len(text) > MAX_URL_LENGTH:
        raise UrlRejected("too_long", f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise UrlRejected("invalid_url", str(exc)) from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRejected("unsupported_scheme", "only http and https URLs are accepted")
    if parts.username is not None or parts.password is not None:
        raise UrlRejected("credentials_in_url", "URLs must not carry user:password@")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRejected("no_host", "the URL has no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise UrlRejected("invalid_url", "invalid port") from exc
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = _legacy_ipv4(host)
    if ip is None:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise UrlRejected("invalid_host", "the host name is not valid") from exc
        if any(c in host for c in " <>\"'`{}|\\^"):
            raise UrlRejected("invalid_host", "the host name is not valid")
        netloc = host
    else:
        netloc = f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    )
    normalised = urlunsplit(
        (scheme, netloc, _normalise_path(parts.path), urlencode(query, quote_via=quote), "")
    )
    if len(normalised) > MAX_URL_LENGTH:
        raise UrlRejected("too_long", f"longer than {MAX_URL_LENGTH} characters")
    return normalised


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a numbers-only host stands for, in its dotted-quad form (so intake sees
    `http://127.1/` as the loopback address it is, and dedupes it with `127.0.0.1`)."""
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    invalid = UrlRejected("invalid_host", "the host is not a valid IPv4 address")
    if host.count(".") > 3:  # `1.2.3.4.5`: no address, as in browsers
        raise invalid
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError as exc:  # `256.1.1.1`, `08` (not octal)
        raise invalid from exc


def literal_ip(url: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form smuggles: IPv4-mapped, 6to4, NAT64, Teredo, compatible."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    packed = ip.packed
    if ip in ipaddress.ip_network("64:ff9b::/96") or ip in ipaddress.ip_network("64:ff9b:1::/48"):
        return ipaddress.IPv4Address(packed[-4:])
    if packed[:12] == b"\x00" * 12 and packed[12:] != b"\x00\x00\x00\x00":  # ::a.b.c.d
        return ipaddress.IPv4Address(packed[-4:])
    return None


def is_allowed_address(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allowed_networks: list[str]
) -> bool:
    """Globally routable, or inside an explicitly allowed network."""
    for net in allowed_networks:
        if ip in ipaddress.ip_network(net, strict=False):
            return True
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_allowed_address(inner, allowed_networks)
    return bool(
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
        and not ip.is_link_local
        and not ip.is_loopback
        and not ip.is_private
    )


def check_intake(raw: str, allowed_networks: list[str]) -> str:
    """Normalise and refuse what can be refused without the network."""
    url = normalise_url(raw)
    ip = literal_ip(url)
    if ip is not None and not is_allowed_address(ip, allowed_networks):
        raise UrlRejected("private_address", "the URL points at a non-public address")
    return url
