"""Async client for the 115 Open Platform, split by concern.

`transport` sends requests, `errors` maps 115's answers to typed errors (the one place that
does), `auth` refreshes tokens and signs in by QR code, `account` reads the account, `offline`
reads and adds cloud downloads, `token_source` is where the Open API calls get their access
token (asked before each request; a refused one is reported there once). The package imports nothing from Home Assistant, so that it
can become a library of its own, and never logs, formats or repr()s a token.
"""

from .account import Account, AccountApi
from .auth import (
    CHALLENGE_METHODS,
    DEVICE_CODE_POLL_TIMEOUT,
    VERIFIER_MAX_LENGTH,
    VERIFIER_MIN_LENGTH,
    AuthApi,
    DeviceCode,
    DeviceCodeStatus,
    Pkce,
    TokenPair,
    make_pkce,
    pkce_challenge,
)
from .errors import (
    ACCESS_TOKEN_CODES,
    CODE_RATE_LIMITED,
    CODE_TOO_MANY_APPS,
    PROAPI_RATE_LIMIT_CODES,
    REAUTH_REASONS,
    TRANSIENT_CODES,
    TRANSIENT_HTTP_STATUSES,
    Open115AccessTokenError,
    Open115ApiError,
    Open115AuthError,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
    Open115UnexplainedError,
)
from .offline import (
    CODE_TASK_EXISTS,
    AddResult,
    AddStatus,
    OfflineApi,
    OfflineQuota,
    OfflineTask,
    TaskPage,
    TaskStatus,
)
from .token_source import AccessTokenSource, StaticAccessToken
from .transport import DEFAULT_TIMEOUT, PASSPORT_URL, PROAPI_URL, QRCODE_URL
from .values import as_int, as_number, as_size


class Open115Client(AuthApi, AccountApi, OfflineApi):
    """The 115 Open Platform calls open115 makes, on one injected aiohttp session."""


__all__ = [
    "ACCESS_TOKEN_CODES",
    "CHALLENGE_METHODS",
    "CODE_RATE_LIMITED",
    "CODE_TASK_EXISTS",
    "CODE_TOO_MANY_APPS",
    "DEFAULT_TIMEOUT",
    "DEVICE_CODE_POLL_TIMEOUT",
    "PASSPORT_URL",
    "PROAPI_RATE_LIMIT_CODES",
    "PROAPI_URL",
    "QRCODE_URL",
    "REAUTH_REASONS",
    "TRANSIENT_CODES",
    "TRANSIENT_HTTP_STATUSES",
    "VERIFIER_MAX_LENGTH",
    "VERIFIER_MIN_LENGTH",
    "AccessTokenSource",
    "Account",
    "AddResult",
    "AddStatus",
    "DeviceCode",
    "DeviceCodeStatus",
    "OfflineApi",
    "OfflineQuota",
    "OfflineTask",
    "Open115AccessTokenError",
    "Open115ApiError",
    "Open115AuthError",
    "Open115Client",
    "Open115Error",
    "Open115RateLimitError",
    "Open115TransientError",
    "Open115UnexplainedError",
    "Pkce",
    "StaticAccessToken",
    "TaskPage",
    "TaskStatus",
    "TokenPair",
    "as_int",
    "as_number",
    "as_size",
    "make_pkce",
    "pkce_challenge",
]
