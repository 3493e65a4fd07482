"""Async client for the 115 Open Platform, split by concern.

`transport` sends requests, `errors` maps 115's answers to typed errors (the one place that
does), `auth` refreshes tokens and signs in by QR code, `account` reads the account, `offline`
reads and adds cloud downloads, `files` lists, deletes and downloads drive files, `upload`
and `oss` upload them, `token_source` is where the Open API calls get their access
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
    Open115CallbackFailedError,
    Open115ChecksumError,
    Open115Error,
    Open115NotFoundError,
    Open115OssError,
    Open115OssTokenExpiredError,
    Open115RateLimitError,
    Open115TransientError,
    Open115UnexplainedError,
    Open115UploadError,
)
from .files import DownloadLink, DriveFile, FilesApi
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
from .oss import OssCredentials, OssTarget, OssUpload
from .token_source import AccessTokenSource, StaticAccessToken
from .transport import DEFAULT_TIMEOUT, PASSPORT_URL, PROAPI_URL, QRCODE_URL
from .upload import Digest, UploadApi, UploadedFile, UploadTicket
from .values import as_int, as_number, as_size


class Open115Client(AuthApi, AccountApi, OfflineApi, FilesApi, UploadApi):
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
    "Digest",
    "DownloadLink",
    "DriveFile",
    "FilesApi",
    "OfflineApi",
    "OfflineQuota",
    "OfflineTask",
    "Open115AccessTokenError",
    "Open115ApiError",
    "Open115AuthError",
    "Open115CallbackFailedError",
    "Open115ChecksumError",
    "Open115Client",
    "Open115Error",
    "Open115NotFoundError",
    "Open115OssError",
    "Open115OssTokenExpiredError",
    "Open115RateLimitError",
    "Open115TransientError",
    "Open115UnexplainedError",
    "Open115UploadError",
    "OssCredentials",
    "OssTarget",
    "OssUpload",
    "Pkce",
    "StaticAccessToken",
    "TaskPage",
    "TaskStatus",
    "TokenPair",
    "UploadApi",
    "UploadTicket",
    "UploadedFile",
    "as_int",
    "as_number",
    "as_size",
    "make_pkce",
    "pkce_challenge",
]
