"""No secret of the backup location (access tokens, OSS keys and security tokens, download
links) in logs, diagnostics, errors or events, through uploads, renewals, failures, listing
and downloads."""

from collections.abc import AsyncIterator
from http import HTTPStatus
import logging
import os
import traceback

from homeassistant.components.backup import DATA_MANAGER, BackupAgentError
from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.json import json_dumps
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.open115.api import upload as upload_module

from .backups import AGENT_ID, SMALL, download, make_backup, random_bytes, setup_backup, upload, ws
from .emulator import FAULT_CALLBACK_FAILED, FAULT_TOKEN_EXPIRED, Emulator115

pytestmark = pytest.mark.usefixtures("emulator_url")


def _chain(err: BaseException) -> str:
    """An error's message, repr and traceback, through its causes."""
    texts = []
    current: BaseException | None = err
    while current is not None:
        texts += [str(current), repr(current), "".join(traceback.format_exception(current))]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


async def test_no_secret_anywhere(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    hass_admin_user: MockUser,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """Everything shown while backing up, failing and restoring holds no issued secret."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(upload_module, "PART_SIZE", SMALL)
    events: list[Event] = []

    @callback
    def _any_event(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(MATCH_ALL, _any_event)
    texts: list[str] = []
    assert await async_setup_component(hass, "diagnostics", {})
    await setup_backup(hass, config_entry)

    data = random_bytes(4 * SMALL + 99)  # multipart with the sign check
    backup = make_backup(size=len(data))
    emulator.inject_oss(FAULT_TOKEN_EXPIRED)  # a renewal
    await upload(hass, hass_client, backup, data)
    texts.append(json_dumps(await ws(hass, hass_ws_client, type="backup/info")))
    emulator.download_cuts.append(SMALL)
    assert await download(hass_client, backup.backup_id) == (HTTPStatus.OK, data)

    emulator.inject_oss(FAULT_CALLBACK_FAILED)
    await upload(hass, hass_client, make_backup("second", size=SMALL), random_bytes(SMALL))

    agent = hass.data[DATA_MANAGER].backup_agents[AGENT_ID]

    async def changing() -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            yield os.urandom(SMALL)

        return chunks()

    with pytest.raises(BackupAgentError) as err:
        await agent.async_upload_backup(
            open_stream=changing, backup=make_backup("third"), on_progress=lambda **kw: None
        )
    texts.append(_chain(err.value))
    emulator.inject("/open/ufile/downurl", "code:40140125", "code:40140125")
    with pytest.raises(BackupAgentError) as err:
        await agent.async_download_backup(backup.backup_id)
    texts.append(_chain(err.value))

    refresh_token = next(iter(hass_admin_user.refresh_tokens.values()))
    client = await hass_client(hass.auth.async_create_access_token(refresh_token))
    resp = await client.get(f"/api/diagnostics/config_entry/{config_entry.entry_id}")
    assert resp.status == HTTPStatus.OK
    texts.append(await resp.text())
    await hass.async_block_till_done()

    # The emulator's own server logs its requests (download paths included) to aiohttp.access:
    # that log is the stand-in 115's, not open115's. The test harness's mock storage logs what
    # it writes (the token file; Home Assistant's Store does not log data).
    texts += [
        record.getMessage() + (record.exc_text or "")
        for record in caplog.records
        if record.name != "aiohttp.access"
        and not record.name.startswith("pytest_homeassistant_custom_component")
    ]
    texts += [repr(event) + json_dumps(event.data) for event in events]
    secrets = emulator.secrets_issued()
    kinds = {
        "download link": [s for s in secrets if "/cdn/" in s],
        "OSS key id": [s for s in secrets if s.startswith("STS.")],
        "OSS security token": [s for s in secrets if s.startswith("CAIS")],
    }
    assert all(kinds.values()), kinds  # the scan has every kind of secret to look for
    leaked = [s for s in secrets if any(s in text for text in texts)]
    assert leaked == []
    # The failures were seen (the scan covered them).
    assert "115 did not register the uploaded backup" in caplog.text
    assert any("did not match their SHA1" in text for text in texts)
    assert any("refused the access token" in text for text in texts)


def test_the_scan_would_find_a_link() -> None:
    """A secret inside a longer text is found by the same check."""
    secrets = {"http://127.0.0.1:1/cdn/abc?t=1"}
    texts = ["GET http://127.0.0.1:1/cdn/abc?t=1 failed"]
    assert [s for s in secrets if any(s in t for t in texts)] == list(secrets)
