"""The refresh endpoint: rotation, the one-year limit, revocation, frequency control."""

from dataclasses import dataclass

from aiohttp import web

from .core import (
    FAULT_DROP_AFTER_ROTATE,
    REFRESH_PATH,
    AccessToken,
    EmulatorCore,
)


@dataclass
class RefreshEndpoint(EmulatorCore):
    """POST /open/refreshToken."""

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_post(REFRESH_PATH, self._refresh)

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        fault = await self._begin(request)
        try:
            if fault is not None and fault != FAULT_DROP_AFTER_ROTATE:
                self._log(REFRESH_PATH, None, fault)
                return await self._fault_response(request, fault)
            form = await request.post()
            token = str(form.get("refresh_token", ""))
            code, response = self._do_refresh(token)
            self._log(REFRESH_PATH, code, fault)
            if fault == FAULT_DROP_AFTER_ROTATE:
                return await self._fault_response(request, fault)
            return response
        finally:
            self.in_flight -= 1
            self.in_flight_by_path[REFRESH_PATH] -= 1

    def _do_refresh(self, token: str) -> tuple[int, web.Response]:
        now = self.clock()
        if not token:
            return 40140114, self._error(40140114, "refresh_token invalid (empty)")
        if token in self.used_refresh_tokens:
            return 40140120, self._error(40140120, "refresh token check failed")
        grant = next((g for g in self.grants.values() if g.refresh_token == token), None)
        if grant is None:
            return 40140114, self._error(40140114, "refresh token format error")
        if not grant.alive:
            return grant.dead_code, self._error(grant.dead_code, "refresh token invalid")
        if now >= grant.refresh_expires_at:
            return 40140119, self._error(40140119, "refresh token expired")
        last = max(
            (
                g.last_refresh_at
                for g in self.grants.values()
                if g.user_id == grant.user_id and g.last_refresh_at is not None
            ),
            default=None,
        )
        if last is not None and now - last < self.min_refresh_interval:
            return 40140117, self._error(40140117, "refresh frequently")
        grant.last_refresh_at = now
        self.used_refresh_tokens[token] = grant.grant_id
        grant.refresh_token = self._new_token("rt")
        access = self._new_token("at")
        self.access_tokens[access] = AccessToken(grant.grant_id, now + self.expires_in)
        return 0, web.json_response(
            {
                "state": 1,
                "code": 0,
                "message": "",
                "data": {
                    "access_token": access,
                    "refresh_token": grant.refresh_token,
                    "expires_in": self.expires_in,
                },
            }
        )
