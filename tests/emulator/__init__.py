"""A loopback emulator of the 115 Open Platform token endpoints.

It models the rules of shared/spec/115-open-api.md: refresh-token rotation (a used token is
void, 40140120), the one-year refresh-token limit (40140119), the per-app authorization limit
(a newer authorization kills the oldest, 40140116), frequency control (40140117), expiring
access tokens on /open/user/info and the other proapi paths (40140125), cloud downloads
(/open/offline/*: tasks, quota, duplicates), proapi's rate limit, and per-request fault
injection. It never sleeps
for real time: a "hang" fault waits on an event until the client gives up or the emulator
stops, so it works under Home Assistant's frozen test clock.

Each group of endpoints is a module of its own (auth, account, device_code, offline) on a shared
core; `control` adds the standalone process. Run it alone with `python -m tests.emulator --port 8115` (scripts/develop does).
"""

from dataclasses import dataclass

from .account import DEFAULT_VIP_LEVEL, AccountEndpoints
from .auth import RefreshEndpoint
from .core import (
    FAULT_CODELESS,
    FAULT_DROP_AFTER_ROTATE,
    FAULT_EXPIRES_IN_BOOL,
    FAULT_EXPIRES_IN_FLOAT,
    FAULT_EXPIRES_IN_ZERO,
    FAULT_HANG,
    FAULT_HTML,
    FAULT_HTTP_429,
    FAULT_HTTP_500,
    FAULT_HTTP_502,
    FAULT_NO_ACCESS_TOKEN,
    FAULT_NO_EXPIRES_IN,
    FAULT_NO_REFRESH_TOKEN,
    FAULT_RESET,
    FAULTS,
    MALFORMED_FAULTS,
    REFRESH_PATH,
    USER_INFO_PATH,
    YEAR,
    AccessToken,
    Account,
    EmulatorCore,
    Grant,
    LoggedRequest,
    RunningEmulator,
)
from .device_code import (
    CHALLENGE_DIGESTS,
    CODE_BAD_APP_ID,
    CODE_BAD_CHALLENGE_METHOD,
    CODE_BAD_CLIENT_ID,
    CODE_BAD_DEVICE_CODE,
    CODE_BAD_SIGN,
    CODE_NO_CHALLENGE,
    CODE_NO_SIGN,
    CODE_VERIFIER_LENGTH,
    CODE_VERIFIER_MISMATCH,
    DEFAULT_APP_ID,
    DEVICE_CODE_PATH,
    DEVICE_TOKEN_PATH,
    QR_CANCELLED,
    QR_CONFIRMED,
    QR_EXPIRED,
    QR_SCANNED,
    QR_STATUS_PATH,
    QR_WAITING,
    DeviceCodeEndpoints,
    EmulatedDeviceCode,
)
from .offline import (
    ADD_URLS_PATH,
    CLEAR_TASK_PATH,
    CODE_BAD_LINK,
    CODE_NO_QUOTA,
    CODE_TASK_EXISTS,
    DEFAULT_TASK_SIZE,
    DEL_TASK_PATH,
    OFFLINE_PATHS,
    QUOTA_PATH,
    STATUS_ALLOCATING,
    STATUS_DONE,
    STATUS_DOWNLOADING,
    STATUS_FAILED,
    TASK_LIST_PATH,
    EmulatedTask,
    OfflineEndpoints,
    info_hash_of,
)
from .proapi import (
    CODE_LIMIT_REACHED,
    CODE_TOKEN_FORMAT,
    CODE_TOKEN_INVALID,
    CODE_TOO_FREQUENT,
    PROAPI_LIMIT_HTTP_429,
    ProapiEndpoints,
)


@dataclass
class Emulator115(RefreshEndpoint, AccountEndpoints, DeviceCodeEndpoints, OfflineEndpoints):
    """The emulated 115 service: every group of endpoints on one core; `app()` serves it."""


__all__ = [
    "ADD_URLS_PATH",
    "CHALLENGE_DIGESTS",
    "CLEAR_TASK_PATH",
    "CODE_BAD_APP_ID",
    "CODE_BAD_CHALLENGE_METHOD",
    "CODE_BAD_CLIENT_ID",
    "CODE_BAD_DEVICE_CODE",
    "CODE_BAD_LINK",
    "CODE_BAD_SIGN",
    "CODE_LIMIT_REACHED",
    "CODE_NO_CHALLENGE",
    "CODE_NO_QUOTA",
    "CODE_NO_SIGN",
    "CODE_TASK_EXISTS",
    "CODE_TOKEN_FORMAT",
    "CODE_TOKEN_INVALID",
    "CODE_TOO_FREQUENT",
    "CODE_VERIFIER_LENGTH",
    "CODE_VERIFIER_MISMATCH",
    "DEFAULT_APP_ID",
    "DEFAULT_TASK_SIZE",
    "DEFAULT_VIP_LEVEL",
    "DEL_TASK_PATH",
    "DEVICE_CODE_PATH",
    "DEVICE_TOKEN_PATH",
    "FAULTS",
    "FAULT_CODELESS",
    "FAULT_DROP_AFTER_ROTATE",
    "FAULT_EXPIRES_IN_BOOL",
    "FAULT_EXPIRES_IN_FLOAT",
    "FAULT_EXPIRES_IN_ZERO",
    "FAULT_HANG",
    "FAULT_HTML",
    "FAULT_HTTP_429",
    "FAULT_HTTP_500",
    "FAULT_HTTP_502",
    "FAULT_NO_ACCESS_TOKEN",
    "FAULT_NO_EXPIRES_IN",
    "FAULT_NO_REFRESH_TOKEN",
    "FAULT_RESET",
    "MALFORMED_FAULTS",
    "OFFLINE_PATHS",
    "PROAPI_LIMIT_HTTP_429",
    "QR_CANCELLED",
    "QR_CONFIRMED",
    "QR_EXPIRED",
    "QR_SCANNED",
    "QR_STATUS_PATH",
    "QR_WAITING",
    "QUOTA_PATH",
    "REFRESH_PATH",
    "STATUS_ALLOCATING",
    "STATUS_DONE",
    "STATUS_DOWNLOADING",
    "STATUS_FAILED",
    "TASK_LIST_PATH",
    "USER_INFO_PATH",
    "YEAR",
    "AccessToken",
    "Account",
    "DeviceCodeEndpoints",
    "EmulatedDeviceCode",
    "EmulatedTask",
    "Emulator115",
    "EmulatorCore",
    "Grant",
    "LoggedRequest",
    "OfflineEndpoints",
    "ProapiEndpoints",
    "RunningEmulator",
    "info_hash_of",
]
