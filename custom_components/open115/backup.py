"""115 as a Home Assistant backup location: one backup agent per loaded entry.

The agent id is `open115.<user id>`, its name the entry's title. Backups go to the instance's
folder on the drive (backup_catalog.py) through 115's upload flow (api/upload.py, api/oss.py);
every proapi request takes its token from the keeper (`entry.runtime_data.client`). Failures
become translated `BackupAgentError`s; nothing half-written is left in the folder.
"""

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, override

from homeassistant.components.backup import (
    AgentBackup,
    BackupAgent,
    BackupAgentError,
    BackupNotFound,
    OnProgressCallback,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from .api import (
    DriveFile,
    Open115AccessTokenError,
    Open115AuthError,
    Open115CallbackFailedError,
    Open115ChecksumError,
    Open115Error,
    Open115OssError,
    Open115OssTokenExpiredError,
    Open115RateLimitError,
    Open115TransientError,
)
from .backup_catalog import (
    USER_AGENT,
    BackupCatalog,
    StoredBackup,
    backup_names,
    metadata_bytes,
)
from .const import DATA_BACKUP_AGENT_LISTENERS, DOMAIN, LOGGER
from .data import Open115ConfigEntry


async def async_get_backup_agents(hass: HomeAssistant, **kwargs: Any) -> list[BackupAgent]:
    """One agent per loaded entry."""
    entries: list[Open115ConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    return [Open115BackupAgent(hass, entry) for entry in entries]


@callback
def async_register_backup_agents_listener(
    hass: HomeAssistant, *, listener: Callable[[], None], **kwargs: Any
) -> Callable[[], None]:
    """Call `listener` when agents come or go (an entry loads or unloads)."""
    hass.data.setdefault(DATA_BACKUP_AGENT_LISTENERS, []).append(listener)

    @callback
    def remove_listener() -> None:
        hass.data[DATA_BACKUP_AGENT_LISTENERS].remove(listener)
        if not hass.data[DATA_BACKUP_AGENT_LISTENERS]:
            del hass.data[DATA_BACKUP_AGENT_LISTENERS]

    return remove_listener


def _agent_error(agent: Open115BackupAgent, err: Exception) -> BackupAgentError:
    """A translated BackupAgentError for `err` (most specific first; its text holds no secret)."""
    key = "backup_failed"
    if isinstance(err, Open115RateLimitError):
        key = "backup_rate_limited"
    elif isinstance(err, Open115AccessTokenError | Open115AuthError):
        key = "backup_token_refused"
    elif isinstance(err, Open115CallbackFailedError):
        key = "backup_callback_failed"
    elif isinstance(err, Open115OssTokenExpiredError):
        key = "backup_oss_expired"
    elif isinstance(err, Open115ChecksumError):
        key = "backup_checksum"
    elif isinstance(err, Open115OssError):
        key = "backup_oss_refused"
    elif isinstance(err, Open115TransientError):
        key = "backup_network"
    return BackupAgentError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"entry_title": agent.name, "error": str(err)},
    )


@contextmanager
def _translated(agent: Open115BackupAgent, what: str) -> Iterator[None]:
    """Turn the client's and the keeper's errors into translated BackupAgentErrors."""
    try:
        yield
    except BackupAgentError:
        raise
    except (Open115Error, HomeAssistantError) as err:
        LOGGER.warning("Backup %s of %s failed: %s", what, agent.name, err)
        raise _agent_error(agent, err) from err


class Open115BackupAgent(BackupAgent):
    """Backups in the instance's folder of one 115 account."""

    domain = DOMAIN

    def __init__(self, hass: HomeAssistant, entry: Open115ConfigEntry) -> None:
        """The agent of a loaded entry."""
        super().__init__()
        self._hass = hass
        self._entry = entry
        self._client = entry.runtime_data.client
        self.name = entry.title
        self.unique_id = entry.unique_id or entry.entry_id
        self.catalog = BackupCatalog(hass, self._client, entry.entry_id)

    @override
    async def async_upload_backup(
        self,
        *,
        open_stream: Callable[[], Coroutine[Any, Any, AsyncIterator[bytes]]],
        backup: AgentBackup,
        on_progress: OnProgressCallback,
        **kwargs: Any,
    ) -> None:
        """Upload the tar, then its metadata file; on failure remove what was stored."""
        with _translated(self, "upload"):
            await self._upload(open_stream, backup, on_progress)

    async def _upload(
        self,
        open_stream: Callable[[], Coroutine[Any, Any, AsyncIterator[bytes]]],
        backup: AgentBackup,
        on_progress: OnProgressCallback,
    ) -> None:
        folder = await self.catalog.async_folder(create=True) or ""
        tar_name, meta_name = backup_names(backup)
        tar = await self._client.upload(
            folder_id=folder,
            file_name=tar_name,
            open_stream=open_stream,
            on_progress=lambda sent: on_progress(bytes_uploaded=sent),
        )
        meta = metadata_bytes(backup, tar_name)

        async def open_metadata() -> AsyncIterator[bytes]:
            return _one(meta)

        try:
            stored = await self._client.upload(
                folder_id=folder, file_name=meta_name, open_stream=open_metadata
            )
        except BaseException:
            # No tar without its metadata file.
            try:
                await self._client.delete_files([tar.file_id], folder)
            except Open115Error as err:
                LOGGER.warning(
                    "Removing the tar of a failed backup failed, so %s stays in the backup "
                    "folder of %s (not listed as a backup; delete it in 115): %s",
                    tar_name,
                    self.name,
                    err,
                )
            raise
        self._nudge_account()
        await self.catalog.async_remember(
            StoredBackup(
                backup,
                DriveFile(tar.file_id, tar_name, tar.size, tar.sha1, tar.pick_code, False),
                DriveFile(
                    stored.file_id, meta_name, stored.size, stored.sha1, stored.pick_code, False
                ),
            ),
            meta,
        )
        LOGGER.debug(
            "Backup %s stored in %s%s",
            backup.backup_id,
            self.name,
            " (instant upload)" if tar.instant else "",
        )

    @override
    async def async_download_backup(self, backup_id: str, **kwargs: Any) -> AsyncIterator[bytes]:
        """Stream the tar from its download link, checked against 115's SHA1."""
        with _translated(self, "download"):
            stored = await self._find(backup_id)
            link = await self._client.download_link(stored.tar.pick_code, USER_AGENT)
        return self._checked(self._client.download(link))

    async def _checked(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The chunks, with a failure mid-way (a corrupt download) made a BackupAgentError."""
        with _translated(self, "download"):
            async for chunk in chunks:
                yield chunk

    @override
    async def async_delete_backup(self, backup_id: str, **kwargs: Any) -> None:
        """Delete the tar and its metadata file in one request."""
        with _translated(self, "delete"):
            stored = await self._find(backup_id)
            files = [stored.tar.file_id, stored.metadata.file_id]
            await self._client.delete_files(files, self.catalog.folder_id or "")
            self.catalog.forget(backup_id)
            self._nudge_account()

    @override
    async def async_list_backups(self, **kwargs: Any) -> list[AgentBackup]:
        """The backups in the folder."""
        with _translated(self, "list"):
            return [stored.backup for stored in (await self.catalog.async_backups()).values()]

    @override
    async def async_get_backup(self, backup_id: str, **kwargs: Any) -> AgentBackup:
        """One backup's metadata."""
        with _translated(self, "get"):
            return (await self._find(backup_id)).backup

    async def _find(self, backup_id: str) -> StoredBackup:
        stored = (await self.catalog.async_backups()).get(backup_id)
        if stored is None:
            raise BackupNotFound(f"Backup {backup_id} not found")
        return stored

    def _nudge_account(self) -> None:
        """Let the account's storage sensors show the change (one read, no extra polling)."""
        self._entry.runtime_data.account.async_read_storage_soon()


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
