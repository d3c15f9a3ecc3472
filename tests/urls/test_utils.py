import ipaddress

import pytest

from src.urls.utils import UrlRejected, check_intake, is_allowed_address, normalise_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM:80/a/./b/../c?b=2&a=1#frag", "http://example.com/a/c?a=1&b=2"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        (
            "https://example.com/?utm_source=x&utm_medium=y&gclid=1&fbclid=2&q=1",
            "https://example.com/?q=1",
        ),
        ("https://bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
        ("  https://example.com/a%20b  ", "https://example.com/a%20b"),
        ("https://example.com/dir/", "https://example.com/dir/"),
        ("https://example.com/../../etc", "https://example.com/etc"),
        ("https://example.com./x", "https://example.com/x"),
        # numbers-only hosts are IPv4 addresses in inet_aton's forms: their dotted quad
        ("http://134744072/", "http://8.8.8.8/"),
        ("http://0x8.0x8.0x8.0x8/a", "http://8.8.8.8/a"),
        ("http://8.8.2056/", "http://8.8.8.8/"),
        ("http://123.example/", "http://123.example/"),  # a name with a numeric label
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("ftp://example.com/file", "unsupported_scheme"),
        ("javascript:alert(1)", "unsupported_scheme"),
        ("file:///etc/passwd", "unsupported_scheme"),
        ("https://", "no_host"),
        ("https://user:pass@example.com/", "credentials_in_url"),
        ("https://user@example.com/", "credentials_in_url"),
        ("https://example.com/" + "a" * 2100, "too_long"),
        ("http://127.0.0.1/", "private_address"),
        ("http://10.1.2.3/", "private_address"),
        ("http://192.168.0.1/", "private_address"),
        ("http://169.254.169.254/latest/meta-data/", "private_address"),
        ("http://[::1]/", "private_address"),
        ("http://[::ffff:127.0.0.1]/", "private_address"),
        ("http://100.64.0.1/", "private_address"),
        ("http://0.0.0.0/", "private_address"),
        # loopback and metadata addresses in the forms browsers and getaddrinfo accept
        ("http://127.1/", "private_address"),
        ("http://0x7f.1/", "private_address"),
        ("http://2130706433/", "private_address"),
        ("http://0177.0.0.1/", "private_address"),
        ("http://0/", "private_address"),
        ("http://0xa9fea9fe/latest/meta-data/", "private_address"),  # 169.254.169.254
        ("http://1.2.3.4.5/", "invalid_host"),
        ("http://256.1.1.1/", "invalid_host"),
        ("https://example.com:99999/", "invalid_url"),
    ],
)
def test_intake_rejections(raw: str, code: str) -> None:
    with pytest.raises(UrlRejected) as exc:
        check_intake(raw, [])
    assert exc.value.code == code


def test_allowed_networks_exempt_literal_addresses() -> None:
    assert check_intake("http://127.0.0.1:8080/x", ["127.0.0.0/8"]) == "http://127.0.0.1:8080/x"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "64:ff9b::a9fe:a9fe",
        "::127.0.0.1",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_allowed_address(ipaddress.ip_address(address), [])


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_allowed_address(ipaddress.ip_address(address), [])
