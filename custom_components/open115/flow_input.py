"""What users type into the flow's forms, cleaned and checked; what the dialog shows of it."""

import re
import unicodedata

from homeassistant.helpers.selector import TextSelector, TextSelectorConfig, TextSelectorType
import segno
import voluptuous as vol

from .api import Open115Error
from .const import CONF_APP_ID, CONF_REFRESH_TOKEN

# What a refresh token can look like: printable, no inner white space, a sane length.
TOKEN_RE = re.compile(r"^[\x21-\x7e]{16,4096}$")
# What an AppID can look like: 115's are numbers (checked before anything is sent).
APP_ID_RE = re.compile(r"^[0-9]{1,20}$")
# 115's own text at the end of an error's message: "... failed with code N (text)".
_SERVER_TEXT_RE = re.compile(r" \((.*)\)\Z", re.DOTALL)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"

TOKEN_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_REFRESH_TOKEN): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        )
    }
)
# Re-authentication and reconfigure: submitting it empty goes back to the menu (to the QR code).
REPLACE_TOKEN_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_REFRESH_TOKEN): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        )
    }
)
APP_ID_SCHEMA = vol.Schema({vol.Required(CONF_APP_ID): TextSelector()})


def clean_refresh_token(value: str) -> str:
    """Strip what users paste around a token: white space, quotes, a `Bearer ` prefix."""
    token = value.strip().strip(_QUOTES).strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip().strip(_QUOTES).strip()
    return token


def clean_app_id(value: str) -> str:
    """Strip white space around a typed AppID; full-width digits become ASCII ones (NFKC)."""
    return unicodedata.normalize("NFKC", value).strip()


def refusal(err: Open115Error) -> dict[str, str]:
    """115's error code and message of a refusal, for the dialog (they hold no token)."""
    match = _SERVER_TEXT_RE.search(str(err))
    return {"code": str(err.code or "-"), "message": match.group(1) if match else str(err)}


def qr_markdown(text: str) -> str:
    """The QR code of `text` as a Markdown image: a PNG data URI, drawn here (no web service).

    Dark modules on white with a quiet zone, so that it scans in dark themes too; the
    frontend's Markdown sanitizer keeps `data:image/` sources of images.
    """
    uri = segno.make(text, error="m", micro=False).png_data_uri(scale=5, border=4)
    return f"![QR code]({uri})"
