"""The refresh endpoint: rotation, the one-year limit, revocation, frequency control."""

from dataclasses import dataclass

from aiohttp import web

from .core import (
    FAULT_CODELESS,
    FAULT_DROP_AFTER_ROTATE,
    FAULT_EXPIRES_IN_BOOL,
    FAULT_EXPIRES_IN_FLOAT,
    FAULT_EXPIRES_IN_ZERO,
    FAULT_NO_ACCESS_TOKEN,
    FAULT_NO_EXPIRES_IN,
    FAULT_NO_REFRESH_TOKEN,
    MALFORMED_FAULTS,
    REFRESH_PATH,
    AccessToken,
    EmulatorCore,
    Grant,
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
            form = await request.post()
            token = str(form.get("refresh_token", ""))
            grant = self._grant_of(token)
            answered = (FAULT_DROP_AFTER_ROTATE, FAULT_NO_REFRESH_TOKEN, *MALFORMED_FAULTS)
            if fault is not None and fault not in answered:
                # 115 itself answered: the request counts for frequency control. A gateway's
                # page, a reset or a hang may not have reached it, and does not count.
                if grant is not None and fault.startswith(("code:", "body:", FAULT_CODELESS)):
                    grant.last_request_at = self.clock()
                self._log(REFRESH_PATH, None, fault, grant.grant_id if grant else None)
                return await self._fault_response(request, fault)
            code, response = self._do_refresh(
                token, grant, keep_refresh_token=fault == FAULT_NO_REFRESH_TOKEN, malformed=fault
            )
            self._log(REFRESH_PATH, code, fault, grant.grant_id if grant else None)
            if fault == FAULT_DROP_AFTER_ROTATE:
                return await self._fault_response(request, fault)
            return response
        finally:
            self.in_flight -= 1
            self.in_flight_by_path[REFRESH_PATH] -= 1

    def _grant_of(self, token: str) -> Grant | None:
        """The authorization a refresh token belongs (or belonged) to."""
        if token in self.used_refresh_tokens:
            return self.grants.get(self.used_refresh_tokens[token])
        return next((g for g in self.grants.values() if g.refresh_token == token), None)

    def _do_refresh(
        self,
        token: str,
        grant: Grant | None,
        *,
        keep_refresh_token: bool = False,
        malformed: str | None = None,
    ) -> tuple[int, web.Response]:
        now = self.clock()
        if not token:
            return 40140114, self._error(40140114, "refresh_token invalid (empty)")
        if grant is None:
            return 40140114, self._error(40140114, "refresh token format error")
        last, grant.last_request_at = grant.last_request_at, now
        if self.dead_after_failures is not None and grant.refused >= self.dead_after_failures:
            # The 2026-08 document: a token that kept failing is dead for good.
            return 40140137, self._error(40140137, "请停止重试并重新授权")
        refused = self._refusal(token, grant, now)
        if refused is not None:
            grant.refused += 1
            return refused[0], self._error(*refused)
        if last is not None and now - last < self.min_refresh_interval:
            # Per authorization, counted from its last request that 115 answered; a refusal for
            # frequency does not extend the window.
            grant.last_request_at = last
            return 40140117, self._error(40140117, "refresh frequently")
        grant.last_refresh_at = now
        if self.strict_access_tokens:
            for access, at in list(self.access_tokens.items()):
                if at.grant_id == grant.grant_id:
                    del self.access_tokens[access]
        data: dict[str, object] = {"expires_in": self.expires_in}
        if not keep_refresh_token:
            self.used_refresh_tokens[token] = grant.grant_id
            grant.refresh_token = self._new_token("rt")
            data["refresh_token"] = grant.refresh_token
        access = self._new_token("at")
        self.access_tokens[access] = AccessToken(grant.grant_id, now + self.expires_in)
        data["access_token"] = access
        _malform(data, malformed)
        return 0, web.json_response({"state": 1, "code": 0, "message": "", "data": data})

    def _refusal(self, token: str, grant: Grant, now: float) -> tuple[int, str] | None:
        """Why a refresh token is refused (used, revoked, past the one-year limit), if it is."""
        if token in self.used_refresh_tokens:
            return 40140120, "refresh token error"  # a captured real answer's text
        if not grant.alive:
            return grant.dead_code, "refresh token invalid"
        if now >= grant.refresh_expires_at:
            return 40140119, "refresh token expired"
        return None


def _malform(data: dict[str, object], fault: str | None) -> None:
    """Spoil a successful answer the way `fault` says (the token has rotated all the same)."""
    if fault == FAULT_NO_EXPIRES_IN:
        del data["expires_in"]
    elif fault == FAULT_EXPIRES_IN_ZERO:
        data["expires_in"] = 0
    elif fault == FAULT_EXPIRES_IN_FLOAT:
        data["expires_in"] = float(str(data["expires_in"])) - 0.5
    elif fault == FAULT_EXPIRES_IN_BOOL:
        data["expires_in"] = True
    elif fault == FAULT_NO_ACCESS_TOKEN:
        del data["access_token"]
