"""parse_ip_literal answers names at once and still reads every IPv4 and IPv6 spelling."""

from __future__ import annotations

import ipaddress

import pytest

from importer.rows.urlsafety import parse_ip_literal


@pytest.mark.parametrize(
    "host", ["media.example.com", "s3.amazonaws.com", "cdn-1.example", "exa%mple", "localhost."]
)
def test_a_name_is_not_an_address(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7F.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("10.0.0.1%eth0", "10.0.0.1"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
    ],
)
def test_every_spelling_of_an_address_is_read(host: str, address: str) -> None:
    assert parse_ip_literal(host) == ipaddress.ip_address(address)
