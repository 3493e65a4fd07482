"""The account endpoint: /open/user/info (proapi)."""

from dataclasses import dataclass, field

from aiohttp import web

from .core import USER_INFO_PATH, YEAR
from .proapi import ProapiEndpoints

DEFAULT_VIP_LEVEL = "VIP"


@dataclass
class AccountEndpoints(ProapiEndpoints):
    """GET /open/user/info: `user_id` a JSON number (as 115 sends it), storage, VIP.

    An account has VIP ("VIP", a year from the request) unless `set_vip` says otherwise;
    without VIP, `vip_info` holds neither `level_name` nor `expire`.
    """

    vip: dict[int, tuple[str, float] | None] = field(default_factory=dict)

    def set_vip(self, user_id: int, level: str | None = None, expires_at: float = 0.0) -> None:
        """Give an account VIP `level` until `expires_at`, or (level None) take VIP away."""
        self.vip[user_id] = None if level is None else (level, expires_at)

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_get(USER_INFO_PATH, self._user_info)

    async def _user_info(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, USER_INFO_PATH, self._answer_user_info)

    async def _answer_user_info(self, request: web.Request, user_id: int) -> web.StreamResponse:
        account = self.accounts[user_id]
        total, used = account.space_total, account.space_used
        vip = self.vip.get(user_id, (DEFAULT_VIP_LEVEL, self.clock() + YEAR))
        vip_info = {} if vip is None else {"level_name": vip[0], "expire": int(vip[1])}
        return self._proapi_ok(
            USER_INFO_PATH,
            {
                "user_id": account.user_id,
                "user_name": account.user_name,
                "user_face_s": "",
                "user_face_m": "",
                "user_face_l": "",
                "rt_space_info": {
                    "all_total": {
                        "size": self._size(total),
                        "size_format": f"{total / 1024**4:.1f}TB",
                    },
                    "all_remain": {
                        "size": self._size(max(total - used, 0)),
                        "size_format": f"{max(total - used, 0) / 1024**3:.1f}GB",
                    },
                    "all_use": {
                        "size": self._size(used),
                        "size_format": f"{used / 1024**3:.1f}GB",
                    },
                },
                "vip_info": vip_info,
            },
        )
