"""115's error answers, mapped to typed errors in one place.

Every module of the client raises through `error_for` (an error answer) or the transport (the
network, HTTP statuses, bodies that are not JSON). Messages never hold a token.
"""

from collections.abc import Mapping
from typing import Any, Final

from .values import as_int

# Refresh-token codes: the token is gone; only a new authorization helps.
REAUTH_REASONS: Final[Mapping[int, str]] = {
    40140114: "malformed",
    40140115: "bad_signature",
    40140116: "revoked",
    40140119: "expired",
    40140120: "used",
    # The 2026-08 document: a token that kept failing is marked dead ("stop retrying and
    # authorize again"); every later refresh answers this.
    40140137: "dead",
    # "Your access permission has expired": the app behind the token lost its access.
    40140110: "app_expired",
}
CODE_RATE_LIMITED: Final = 40140117
CODE_TOO_MANY_APPS: Final = 40140122  # the account authorized too many apps
TRANSIENT_CODES: Final = frozenset({40140121, 40110000})
ACCESS_TOKEN_CODES: Final = frozenset({40140123, 40140124, 40140125, 40140126})
# proapi refuses an access token with these too (115-sdk-go refreshes on 99 or any 401xxxxx;
# 40100000 "parameter error" is its answer to an empty or unusable token).
CODE_PROAPI_TOKEN_REFUSED: Final = 99
CODE_PROAPI_BAD_PARAMETER: Final = 40100000
TRANSIENT_HTTP_STATUSES: Final = frozenset({405, 408, 425, 429})

# ----- proapi (the Open API) rate limiting: back off, keep the tokens -------------------------
# qmediasync (internal/v115open/constants.go) knows 770004 "访问频率过高" (too frequent) and 406
# "已达到当前访问上限" (the access limit is reached; a higher VIP level gets more); see the spec's
# "Limits on the Open API itself". HTTP 429 from proapi means the same (transport.py).
PROAPI_RATE_LIMIT_CODES: Final = frozenset({770004, 406})
PROAPI_RATE_LIMIT_HTTP_STATUS: Final = 429


class Open115Error(Exception):
    """Base class of every error of this client; messages never hold a token."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        """Keep the 115 error code, when there is one."""
        super().__init__(message)
        self.code = code


class Open115AuthError(Open115Error):
    """The refresh token can no longer be used: the user must authorize again."""

    def __init__(self, message: str, *, code: int, reason: str) -> None:
        """Keep why the token is dead (one of REAUTH_REASONS' values)."""
        super().__init__(message, code=code)
        self.reason = reason


class Open115RateLimitError(Open115Error):
    """115 put the caller under frequency control (40140117, proapi's limits): retry later."""


class Open115TransientError(Open115Error):
    """A failure that says nothing about the tokens: network, timeout, 5xx, non-JSON, retry codes."""


class Open115AccessTokenError(Open115Error):
    """The access token was refused (expired, revoked or malformed): refresh it.

    `reported`: the client already told its token source, and got no token that 115 took
    (a refusal a new token does not cure, such as 40140118 or 40100000); do not report it again.
    """

    def __init__(self, message: str, *, code: int | None = None, reported: bool = False) -> None:
        """Keep the code, and whether the refusal was reported to the token source."""
        super().__init__(message, code=code)
        self.reported = reported


class Open115ApiError(Open115Error):
    """Any other error answer from 115 (bad AppID, certification expired, ...)."""


class Open115UnexplainedError(Open115ApiError):
    """An error answer without a usable code (seen: errno 0, "refresh token error")."""


def is_success(body: Mapping[str, Any]) -> bool:
    """Tell success by `state` (0/1 or false/true), falling back to a zero code."""
    state = body.get("state")
    if state is not None:
        return as_int(state) == 1
    return (as_int(body.get("code")) or as_int(body.get("errno")) or 0) == 0


def is_access_token_refused(code: int) -> bool:
    """Whether a proapi answer's code says the access token was refused."""
    return (
        code in ACCESS_TOKEN_CODES
        or code in (CODE_PROAPI_TOKEN_REFUSED, CODE_PROAPI_BAD_PARAMETER)
        or str(code).startswith("401")
    )


def error_for(
    body: Mapping[str, Any], what: str, secret: str | None, *, proapi: bool = False
) -> Open115Error:
    """Map an error answer to the typed error a caller can act on.

    The server's message is quoted, with the token that was sent blanked out of it. `proapi`:
    the answer is the Open API's, where any 401xxxxx (and 99) refuses the access token; on the
    passport hosts 401401xx are refresh-token and parameter codes.
    """
    code = as_int(body.get("code")) or as_int(body.get("errno"))
    raw = body.get("message") or body.get("error") or ""
    text = raw.strip() if isinstance(raw, str) else ""
    if secret:
        text = text.replace(secret, "***")
    head = f"{what} failed with code {code}" if code else f"{what} failed without an error code"
    detail = head + (f" ({text})" if text else "")
    if code is not None and code in REAUTH_REASONS:
        return Open115AuthError(detail, code=code, reason=REAUTH_REASONS[code])
    if code == CODE_RATE_LIMITED:
        return Open115RateLimitError(detail, code=code)
    if proapi and code in PROAPI_RATE_LIMIT_CODES:
        return Open115RateLimitError(detail, code=code)
    if code in TRANSIENT_CODES:
        return Open115TransientError(detail, code=code)
    if code in ACCESS_TOKEN_CODES or (proapi and code and is_access_token_refused(code)):
        return Open115AccessTokenError(detail, code=code)
    if not code:
        return Open115UnexplainedError(detail)
    return Open115ApiError(detail, code=code)


# ----- the drive, uploads and Aliyun OSS (the backup location) ---------------------------------
# folder/add: a folder of that name exists already (p115client's error table).
CODE_FOLDER_EXISTS: Final = 20004
# folder/get_info: no such folder.
CODE_FOLDER_MISSING: Final = 430004
OSS_CALLBACK_FAILED_STATUS: Final = 203
OSS_TOKEN_EXPIRED: Final = "SecurityTokenExpired"  # noqa: S105 (an OSS error code)


class Open115NotFoundError(Open115ApiError):
    """The file or folder is not (or no longer) on the drive."""


class Open115ChecksumError(Open115Error):
    """Bytes do not have the SHA1 they should.

    A download differs from 115's SHA1, or a backup stream changed between the opening that
    was hashed and the opening that was sent.
    """


class Open115UploadError(Open115ApiError):
    """115 refused an upload: the sign check failed, or an answer was unusable."""


class Open115OssError(Open115Error):
    """Aliyun OSS refused a request of an upload; `oss_code` is its error code (never a key)."""

    def __init__(self, message: str, *, oss_code: str | None = None, status: int = 0) -> None:
        """Keep OSS's error code and the HTTP status."""
        super().__init__(message)
        self.oss_code = oss_code
        self.status = status


class Open115CallbackFailedError(Open115OssError):
    """OSS stored the bytes but 115's callback failed (HTTP 203 CallbackFailed)."""


class Open115OssTokenExpiredError(Open115OssError):
    """The temporary OSS credentials expired (SecurityTokenExpired), even after a renewal."""


def oss_error_for(status: int, body: bytes, what: str) -> Open115OssError:
    """Map an OSS error answer (XML `<Error><Code>`) to a typed error, quoting only its code."""
    code = _xml_text(body, "Code")
    detail = f"{what} failed with HTTP {status}" + (f" ({code})" if code else "")
    if status == OSS_CALLBACK_FAILED_STATUS:
        return Open115CallbackFailedError(detail, oss_code=code or "CallbackFailed", status=status)
    if code == OSS_TOKEN_EXPIRED:
        return Open115OssTokenExpiredError(detail, oss_code=code, status=status)
    return Open115OssError(detail, oss_code=code, status=status)


def _xml_text(body: bytes, tag: str) -> str | None:
    """The text of the first `<tag>` in an XML body; only a plain identifier is kept."""
    start = body.find(f"<{tag}>".encode())
    end = body.find(f"</{tag}>".encode(), start + 1)
    if start < 0 or end < 0:
        return None
    text = body[start + len(tag) + 2 : end].decode("utf-8", "replace").strip()
    return text if text.isascii() and text.replace("_", "").replace(".", "").isalnum() else None
