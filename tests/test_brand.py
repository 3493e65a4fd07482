"""Brand icons: real PNGs of the right size with a transparent background, served by Home Assistant."""

from pathlib import Path
import struct
import zlib

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.open115.const import DOMAIN

BRAND_DIR = Path(__file__).resolve().parents[1] / "custom_components" / DOMAIN / "brand"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ICONS = {"icon.png": 256, "icon@2x.png": 512}


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split a PNG into (type, payload) chunks, checking every CRC."""
    assert data[:8] == PNG_SIGNATURE
    chunks: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + payload) == crc, kind
        chunks.append((kind, payload))
        pos += 12 + length
    return chunks


@pytest.mark.parametrize(("name", "size"), ICONS.items())
def test_icon_is_square_rgba_png_of_the_right_size(name: str, size: int) -> None:
    chunks = _chunks((BRAND_DIR / name).read_bytes())
    kind, header = chunks[0]
    assert kind == b"IHDR"
    width, height, bit_depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (width, height) == (size, size)
    # 8-bit RGBA (color type 6), not interlaced: a real alpha channel.
    assert (bit_depth, color_type, interlace) == (8, 6, 0)
    assert chunks[-1][0] == b"IEND"


@pytest.mark.parametrize("name", ICONS)
def test_icon_background_is_transparent(name: str) -> None:
    """The top left pixel lies outside the rounded square, so it must be fully transparent."""
    chunks = _chunks((BRAND_DIR / name).read_bytes())
    pixels = zlib.decompressobj().decompress(b"".join(p for k, p in chunks if k == b"IDAT"), 5)
    # Every PNG filter leaves the first pixel of the first row as is (no left or upper
    # neighbour), so bytes 1..4 after the filter type byte are its raw RGBA.
    assert pixels[0] in range(5)
    assert pixels[4] == 0


async def test_home_assistant_serves_our_icons(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """Home Assistant 2026.3+ serves a custom integration's brand/ folder to the frontend."""
    assert await async_setup_component(hass, "brands", {})
    client = await hass_client()
    for name in ICONS:
        resp = await client.get(f"/api/brands/integration/{DOMAIN}/{name}")
        assert resp.status == 200
        assert resp.content_type == "image/png"
        assert await resp.read() == (BRAND_DIR / name).read_bytes()
