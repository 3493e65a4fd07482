"""A plain PUT sink for benchmarks: the baseline "one aiohttp PUT of the file to the same
loopback server" (issue 18's benchmark) against which OSS uploads are measured.

`PUT /_sink` reads the body a chunk at a time and writes it to a file in the storage
directory, as the OSS stand-in does with an object, then deletes it (`?discard=1`: nothing is
written); it answers `{"bytes": n}`. Not a 115 path: no token, no faults.
"""

from dataclasses import dataclass
import secrets

from aiohttp import web

from .blob import CHUNK
from .drive import DriveEndpoints

SINK_PATH = "/_sink"


@dataclass
class SinkEndpoints(DriveEndpoints):
    """PUT /_sink."""

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_put(SINK_PATH, self._sink)

    async def _sink(self, request: web.Request) -> web.Response:
        self.counters[SINK_PATH] += 1
        size = 0
        if request.query.get("discard") == "1":
            while chunk := await request.content.read(CHUNK):
                size += len(chunk)
            return web.json_response({"bytes": size})
        path = self.storage_dir() / f"sink-{secrets.token_hex(8)}"
        try:
            with path.open("wb") as out:
                while chunk := await request.content.read(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
        finally:
            path.unlink(missing_ok=True)
        return web.json_response({"bytes": size})
