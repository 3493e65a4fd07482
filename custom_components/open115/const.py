"""Constants for open115."""

from collections.abc import Callable
from datetime import timedelta
import logging
from typing import Final

from homeassistant.util.hass_dict import HassKey

DOMAIN: Final = "open115"
LOGGER = logging.getLogger(__package__)

# Entry data keys (the token state; written by the keeper only).
CONF_REFRESH_TOKEN: Final = "refresh_token"
CONF_EXPIRES_AT: Final = "expires_at"
CONF_EXPIRES_IN: Final = "expires_in"
CONF_REFRESHED_AT: Final = "refreshed_at"
CONF_AUTHORIZED_AT: Final = "authorized_at"
# The 115 Open Platform AppID a QR-code sign-in used (kept for the next re-authentication).
CONF_APP_ID: Final = "app_id"
# Set when 115 refused the stored refresh token for good ({"reason": ..., "code": ...}): it is
# never sent again, also not after a restart; a new authorization replaces it.
CONF_REFUSED: Final = "refused"

# Options.
CONF_REFRESH_MARGIN: Final = "refresh_margin"
DEFAULT_REFRESH_MARGIN: Final = 600
MIN_REFRESH_MARGIN: Final = 60
MAX_REFRESH_MARGIN: Final = 3600

# Development: one base URL that replaces all three 115 hosts.
ENV_BASE_URL: Final = "OPEN115_BASE_URL"

# Keeper timing.
MIN_REFRESH_INTERVAL: Final = timedelta(seconds=60)
MAX_SCHEDULE_JITTER: Final = 30.0  # seconds a proactive refresh may start early
# The network, HTTP 5xx and 115's "retry" codes: soon (never within MIN_REFRESH_INTERVAL).
RETRY_BACKOFF_START: Final = timedelta(seconds=60)
RETRY_BACKOFF_MAX: Final = timedelta(minutes=15)
# Rate limited (40140117), or an error answer without a usable code: slowly.
SLOW_BACKOFF_START: Final = timedelta(minutes=5)
SLOW_BACKOFF_MAX: Final = timedelta(hours=1)
BACKOFF_JITTER: Final = 0.1  # +-10 %
REFRESH_TOKEN_LIFETIME: Final = timedelta(days=365)

# Consumer API and services.
DEFAULT_MIN_VALIDITY: Final = 60
MAX_MIN_VALIDITY: Final = 86400
ATTR_MIN_VALIDITY: Final = "min_validity"
SERVICE_GET_ACCESS_TOKEN: Final = "get_access_token"
SERVICE_REFRESH_TOKEN: Final = "refresh_token"
EVENT_TOKEN_REFRESHED: Final = "open115_token_refreshed"

# The account and cloud downloads (read by the entry's client, with the keeper's token).
ACCOUNT_INTERVAL: Final = timedelta(hours=1)  # storage, VIP and the quota, at least this often
IDLE_TASKS_INTERVAL: Final = timedelta(minutes=30)  # the task list while nothing downloads
ACTIVE_TASKS_INTERVAL: Final = timedelta(seconds=60)  # while a task allocates or downloads
READ_RETRY_START: Final = timedelta(seconds=60)  # after a failed read (doubling, to 30 min)
MAX_TASK_PAGES: Final = 5  # task-list pages read at most (for tasks running or not yet seen)
MAX_REPORTED_TASKS: Final = 500  # tasks remembered (by hash and add time): none reported twice
CLOUD_DOWNLOAD_FINISHED: Final = "finished"
CLOUD_DOWNLOAD_FAILED: Final = "failed"
ATTR_URLS: Final = "urls"
MAX_LINKS_PER_CALL: Final = 200  # open115.add_cloud_download: links per call (README, action)
ATTR_FOLDER_ID: Final = "folder_id"
SERVICE_ADD_CLOUD_DOWNLOAD: Final = "add_cloud_download"
# A report that 115 refused the access token rotates it at most this often (unless it is due).
REJECTION_ROTATION_INTERVAL: Final = timedelta(minutes=10)

BACKUP_STORE_KEY: Final = DOMAIN + ".{entry_id}.backups"  # the metadata cache on disk
# The backup location: Home Assistant's backup manager listens here for agents coming and going.
DATA_BACKUP_AGENT_LISTENERS: HassKey[list[Callable[[], None]]] = HassKey(
    f"{DOMAIN}.backup_agent_listeners"
)
