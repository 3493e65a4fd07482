"""links.py: a magnet link's info hash, as 115 writes it (40 lowercase hex digits)."""

import base64

import pytest

from custom_components.open115.links import magnet_info_hash

HEX = "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0de"
BASE32 = base64.b32encode(bytes.fromhex(HEX)).decode()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"magnet:?xt=urn:btih:{HEX}&dn=demo.iso", HEX),
        (f"magnet:?xt=urn:btih:{HEX.upper()}", HEX),
        (f"MAGNET:?dn=a&XT=URN:BTIH:{HEX}", HEX),
        (f"magnet:?xt=urn:btih:{BASE32}&dn=a", HEX),
        (f"magnet:?xt=urn:btih:{BASE32.lower()}", HEX),
        (f"  magnet:?xt=urn:btih:{HEX}  ", HEX),
        # A v2-only link, other kinds of xt, or a link that is no magnet: no info hash.
        ("magnet:?xt=urn:btmh:1220" + "ab" * 32, None),
        (f"magnet:?xt=urn:ed2k:{HEX[:32]}", None),
        (f"magnet:?xt=urn:sha1:{BASE32}&xt=urn:btih:{HEX}", HEX),
        (f"magnet:?xt=urn:btih:{HEX[:39]}", None),
        (f"magnet:?xt=urn:btih:{HEX}0", None),
        (f"http://example.com/?xt=urn:btih:{HEX}", None),
        ("magnet:?dn=nothing", None),
    ],
)
def test_magnet_info_hash(url: str, expected: str | None) -> None:
    assert magnet_info_hash(url) == expected
