"""Download links (proapi downurl) and the CDN that serves them, on the emulator itself.

What is modelled, from which source (commits as in shared/spec/115-open-api.md):
- `POST /open/ufile/downurl` (form pick_code, header User-Agent → {file_id: {file_name,
  file_size, pick_code, sha1, url: {url}}}): qicfan/qmediasync@8abcfa6
  internal/v115open/upload.go GetDownloadUrl; OpenList@0b1e9d0 drivers/115_open/driver.go Link
  (the link is fetched with the User-Agent that asked for it); restic-115 client.rs
  download_file (Range, 206). The link is served by this emulator under /cdn/, bound to that
  User-Agent (another → 403), expiring after `download_link_lifetime` (115's CDN links carry
  `t=<expiry>`: p115client@608a443 modules/@p115/readme.md).
A download that is cut short (`download_cuts`) sends the full Content-Length, then fewer bytes.
"""

from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web

from .drive import DriveEndpoints

DOWNURL_PATH = "/open/ufile/downurl"
CDN_PREFIX = "/cdn"
CODE_NO_SUCH_FILE = 50003  # the emulator's choice: downurl of an unknown pick code


@dataclass
class DownloadLink:
    """A download link handed out by downurl: bound to a User-Agent, expiring."""

    file_id: str
    user_agent: str
    expires_at: float


@dataclass
class DownloadEndpoints(DriveEndpoints):
    """POST /open/ufile/downurl and GET /cdn/<token>/<name>."""

    download_links: dict[str, DownloadLink] = field(default_factory=dict)
    download_link_lifetime: float = 3600.0
    # The next downloads are cut short after this many bytes (one entry per download).
    download_cuts: list[int] = field(default_factory=list)

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_post(DOWNURL_PATH, self._downurl)
        app.router.add_get(CDN_PREFIX + "/{token}/{name}", self._cdn)

    async def _downurl(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, DOWNURL_PATH, self._answer_downurl)

    async def _answer_downurl(self, request: web.Request, user_id: int) -> web.StreamResponse:
        form = await request.post()
        pick_code = str(form.get("pick_code", ""))
        node = next(
            (
                n
                for n in self.nodes.values()
                if n.user_id == user_id and n.pick_code == pick_code and not n.is_dir
            ),
            None,
        )
        if node is None:
            self._log(DOWNURL_PATH, CODE_NO_SUCH_FILE)
            return self._error(CODE_NO_SUCH_FILE, "文件不存在或已删除", proapi=True)
        token = self._new_token("dl")
        expires = self.clock() + self.download_link_lifetime
        self.download_links[token] = DownloadLink(
            node.file_id, request.headers.get("User-Agent", ""), expires
        )
        url = (
            f"{request.url.origin()}{CDN_PREFIX}/{token}/{quote(node.name, safe='')}"
            f"?t={int(expires)}&u={user_id}"
        )
        self._issued.add(url)
        return self._proapi_ok(
            DOWNURL_PATH,
            {
                node.file_id: {
                    "file_name": node.name,
                    "file_size": self._size(node.size),
                    "pick_code": node.pick_code,
                    "sha1": node.sha1,
                    "url": {"url": url},
                }
            },
        )

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        """The download link: the same User-Agent, not expired; Range → 206."""
        self.counters[CDN_PREFIX] += 1
        link = self.download_links.get(request.match_info["token"])
        node = None if link is None else self.nodes.get(link.file_id)
        if (
            link is None
            or node is None
            or self.clock() >= link.expires_at
            or request.headers.get("User-Agent", "") != link.user_agent
        ):
            self._log(CDN_PREFIX, 403)
            return web.Response(status=403, text="403 Forbidden")
        start, end = 0, node.size - 1
        status = 200
        header = request.headers.get("Range")
        if header:
            parsed = _parse_range(header, node.size)
            if parsed is None:
                self._log(CDN_PREFIX, 416)
                return web.Response(status=416, headers={"Content-Range": f"bytes */{node.size}"})
            start, end = parsed
            status = 206
        length = max(end - start + 1, 0)
        response = web.StreamResponse(status=status)
        response.content_length = length
        response.content_type = "application/octet-stream"
        response.headers["Accept-Ranges"] = "bytes"
        if status == 206:
            response.headers["Content-Range"] = f"bytes {start}-{end}/{node.size}"
        await response.prepare(request)
        cut = self.download_cuts.pop(0) if self.download_cuts else None
        sent = 0
        for chunk in self.blobs[node.sha1].chunks(start, length):
            if cut is not None and sent + len(chunk) > cut:
                await response.write(chunk[: max(cut - sent, 0)])
                self._log(CDN_PREFIX, None, "cut")
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write(chunk)
            sent += len(chunk)
        await response.write_eof()
        self._log(CDN_PREFIX, 0)
        return response


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b`, `bytes=a-` or `bytes=-n` range, clipped to the file; None: unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if not first:
            start, end = max(size - int(last), 0), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    if start >= size or start > end:
        return None
    return start, end
