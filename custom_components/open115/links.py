"""What a link says about itself: a magnet link's info hash, as 115 writes it."""

import base64
import re
from urllib.parse import parse_qsl, urlsplit

_BTIH = re.compile(r"urn:btih:([0-9a-f]{40}|[a-z2-7]{32})\Z", re.IGNORECASE)


def magnet_info_hash(url: str) -> str | None:
    """The BitTorrent info hash of a magnet link (hex or base32) as lowercase hex, like 115's."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "magnet":
        return None
    for key, value in parse_qsl(parts.query):
        if key.lower() != "xt" or (match := _BTIH.match(value.strip())) is None:
            continue
        found = match.group(1)
        # 32 base32 digits are exactly 20 bytes: the pattern admits only valid ones.
        return found.lower() if len(found) == 40 else base64.b32decode(found.upper()).hex()
    return None
