"""The backup folder on the drive: its backups (tar + metadata JSON) and a metadata cache.

One folder per Home Assistant instance, in the drive's root: "Home Assistant backups
(<instance id>)". Each backup is its tar (Home Assistant's suggested file name) and beside it
`<name>.metadata.json` = {"open115_backup": 1, "tar": <tar name>, "backup": AgentBackup.as_dict()}.
A listing reads the folder (every page); metadata files are downloaded once and kept on disk
keyed by their file id (a file id never changes content), so an unchanged folder costs one
request per 1,150 files. Other files in the folder are left alone.
"""

from dataclasses import dataclass
import json
import time
from typing import Any, Final

from homeassistant.components.backup import AgentBackup, suggested_filename
from homeassistant.core import HomeAssistant
from homeassistant.helpers import instance_id
from homeassistant.helpers.storage import Store

from .api import DriveFile, Open115Client
from .const import BACKUP_STORE_KEY

FOLDER_PREFIX: Final = "Home Assistant backups"
METADATA_SUFFIX: Final = ".metadata.json"
METADATA_MARK: Final = "open115_backup"
METADATA_VERSION: Final = 1
STORE_VERSION: Final = 1  # of the metadata cache (BACKUP_STORE_KEY)
MAX_METADATA_SIZE: Final = 1024 * 1024
RECENT_FOR: Final = 900.0  # s a stored backup is listed before 115's listing shows it
# A download link is bound to the User-Agent that asked for it: one for both requests.
USER_AGENT: Final = "open115-home-assistant-backup/1"


def backup_names(backup: AgentBackup) -> tuple[str, str]:
    """The tar's and the metadata file's names."""
    base = suggested_filename(backup).removesuffix(".tar")
    return f"{base}.tar", f"{base}{METADATA_SUFFIX}"


def metadata_bytes(backup: AgentBackup, tar_name: str) -> bytes:
    """The metadata file's content."""
    return json.dumps(
        {METADATA_MARK: METADATA_VERSION, "tar": tar_name, "backup": backup.as_dict()},
        ensure_ascii=False,
        sort_keys=True,
    ).encode()


def parse_metadata(raw: bytes) -> dict[str, Any] | None:
    """The metadata file's content, when it is open115's; None otherwise."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if (
        not isinstance(body, dict)
        or body.get(METADATA_MARK) != METADATA_VERSION
        or not isinstance(body.get("tar"), str)
        or not isinstance(body.get("backup"), dict)
    ):
        return None
    try:
        AgentBackup.from_dict(body["backup"])
    except KeyError, TypeError, ValueError:
        return None
    return body


@dataclass(frozen=True, slots=True)
class StoredBackup:
    """A backup on the drive: its metadata and both files."""

    backup: AgentBackup
    tar: DriveFile
    metadata: DriveFile


class BackupCatalog:
    """One entry's backup folder: finds or makes it, lists its backups, caches metadata."""

    def __init__(self, hass: HomeAssistant, client: Open115Client, entry_id: str) -> None:
        """Keep the metadata cache in `.storage/open115.<entry id>.backups`."""
        self._hass = hass
        self._client = client
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, BACKUP_STORE_KEY.format(entry_id=entry_id)
        )
        self._cache: dict[str, dict[str, Any]] | None = None
        self._recent: dict[str, StoredBackup] = {}
        self._recent_at: dict[str, float] = {}
        self.folder_id: str | None = None

    async def folder_name(self) -> str:
        """The folder's name, from this instance's id."""
        return f"{FOLDER_PREFIX} ({await instance_id.async_get(self._hass)})"

    async def async_folder(self, *, create: bool) -> str | None:
        """The folder's id (made when `create` and missing); None when missing."""
        if self.folder_id is None:
            name = await self.folder_name()
            self.folder_id = await self._client.folder_id(f"/{name}")
            if self.folder_id is None and create:
                self.folder_id = await self._client.add_folder("0", name)
        return self.folder_id

    async def async_backups(self) -> dict[str, StoredBackup]:
        """Every backup in the folder by backup id (one listing; metadata from the cache)."""
        folder = await self.async_folder(create=False)
        if folder is None:
            return {}
        files = await self._client.list_folder(folder)
        cache = await self._async_cache()
        tars = {f.name: f for f in files if not f.is_folder and f.name.endswith(".tar")}
        found: dict[str, StoredBackup] = {}
        seen: set[str] = set()
        changed = False
        for meta in files:
            if meta.is_folder or not meta.name.endswith(METADATA_SUFFIX):
                continue
            seen.add(meta.file_id)
            body = cache.get(meta.file_id)
            if body is None:
                # Not open115's (or unreadable): cached as {} so that it is read only once.
                body = cache[meta.file_id] = await self._async_read_metadata(meta) or {}
                changed = True
            if not body:
                continue
            tar = tars.get(body["tar"])
            if tar is None:
                continue  # a metadata file without its tar is not a backup
            backup = AgentBackup.from_dict(body["backup"])
            found[backup.backup_id] = StoredBackup(backup, tar, meta)
        self._add_recent(found, seen)
        if stale := set(cache) - seen - {s.metadata.file_id for s in self._recent.values()}:
            for file_id in stale:
                del cache[file_id]
        if changed or stale:
            await self._store.async_save({"metadata": cache})
        return found

    async def async_remember(self, stored: StoredBackup, raw: bytes) -> None:
        """Remember a backup this agent stored.

        Its metadata is cached (no download needed to list it), and it is listed even while
        115's listing does not show the new files yet.
        """
        cache = await self._async_cache()
        if (body := parse_metadata(raw)) is not None:
            cache[stored.metadata.file_id] = body
            await self._store.async_save({"metadata": cache})
        self._recent[stored.backup.backup_id] = stored
        self._recent_at[stored.backup.backup_id] = time.monotonic()

    def forget(self, backup_id: str) -> None:
        """A backup was deleted."""
        self._recent.pop(backup_id, None)
        self._recent_at.pop(backup_id, None)

    def _add_recent(self, found: dict[str, StoredBackup], seen: set[str]) -> None:
        """Add backups stored lately that the listing does not show yet.

        115 lists new files late (restic-115 docs/debugging-notes.md); for RECENT_FOR seconds
        at most.
        """
        now = time.monotonic()
        for backup_id, stored in list(self._recent.items()):
            if (
                stored.metadata.file_id in seen
                or backup_id in found
                or now - self._recent_at[backup_id] > RECENT_FOR
            ):
                self.forget(backup_id)
            else:
                found[backup_id] = stored

    async def _async_cache(self) -> dict[str, dict[str, Any]]:
        if self._cache is None:
            stored = await self._store.async_load() or {}
            metadata = stored.get("metadata")
            self._cache = dict(metadata) if isinstance(metadata, dict) else {}
        return self._cache

    async def _async_read_metadata(self, meta: DriveFile) -> dict[str, Any] | None:
        if not meta.pick_code or meta.size > MAX_METADATA_SIZE:
            return None
        link = await self._client.download_link(meta.pick_code, USER_AGENT)
        raw = b"".join([chunk async for chunk in self._client.download(link)])
        return parse_metadata(raw)
