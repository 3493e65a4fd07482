"""The account endpoint: /open/user/info (proapi)."""

from dataclasses import dataclass

from aiohttp import web

from .core import (
    USER_INFO_PATH,
    YEAR,
    EmulatorCore,
)


@dataclass
class AccountEndpoints(EmulatorCore):
    """GET /open/user/info."""

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_get(USER_INFO_PATH, self._user_info)

    async def _user_info(self, request: web.Request) -> web.StreamResponse:
        fault = await self._begin(request)
        try:
            return await self._answer_user_info(request, fault)
        finally:
            self.in_flight -= 1
            self.in_flight_by_path[USER_INFO_PATH] -= 1

    async def _answer_user_info(
        self, request: web.Request, fault: str | None
    ) -> web.StreamResponse:
        if fault is not None:
            self._log(USER_INFO_PATH, None, fault)
            return await self._fault_response(request, fault)
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        at = self.access_tokens.get(token)
        if at is None:
            self._log(USER_INFO_PATH, 40140123)
            return self._error(40140123, "access_token format error", proapi=True)
        if self.clock() >= at.expires_at:
            self._log(USER_INFO_PATH, 40140125)
            return self._error(40140125, "access_token invalid", proapi=True)
        account = self.accounts[self.grants[at.grant_id].user_id]
        self._log(USER_INFO_PATH, 0)
        total, used = account.space_total, account.space_used
        return web.json_response(
            {
                "state": True,
                "code": 0,
                "message": "",
                "data": {
                    "user_id": str(account.user_id),
                    "user_name": account.user_name,
                    "user_face_s": "",
                    "rt_space_info": {
                        "all_total": {"size": total, "size_format": f"{total / 1024**4:.1f}TB"},
                        "all_remain": {"size": total - used, "size_format": ""},
                        "all_use": {"size": used, "size_format": ""},
                    },
                    "vip_info": {"level_name": "VIP", "expire": int(self.clock()) + YEAR},
                },
            }
        )
