"""What every Open API (proapi) endpoint shares: faults, the Bearer check, the rate-limit switch."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from .core import EmulatorCore

# The access-token answers of every proapi path (as /open/user/info gives them).
CODE_TOKEN_FORMAT = 40140123
CODE_TOKEN_INVALID = 40140125
# proapi's rate-limit answers (qmediasync's constants): 770004 "too frequent", 406 "the access
# limit is reached"; PROAPI_LIMIT_HTTP_429 answers HTTP 429 instead.
CODE_TOO_FREQUENT = 770004
CODE_LIMIT_REACHED = 406
PROAPI_LIMIT_HTTP_429 = 429

type ProapiAnswer = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


@dataclass
class ProapiEndpoints(EmulatorCore):
    """The checks before a proapi endpoint answers; tests set the switches.

    `proapi_limit`: while set, every proapi request is refused with that code (770004, 406)
    or, for 429, with HTTP 429. `float_sizes`: sizes are sent as JSON floats (as 115 has done).
    `proapi_refusal`: while set, every proapi request is refused with that 401xxxxx code
    whatever its token, so a new token does not cure it: 40140118 (developer certification
    expired) or 40100000 (parameter error), shared/spec/115-open-api.md's error table;
    OpenListTeam/115-sdk-go refreshes on any 401xxxxx answer, which cannot help here.
    """

    proapi_limit: int | None = None
    proapi_refusal: int | None = None
    float_sizes: bool = False

    def _size(self, value: int) -> int | float:
        return float(value) if self.float_sizes else value

    async def _serve_proapi(
        self, request: web.Request, path: str, answer: ProapiAnswer
    ) -> web.StreamResponse:
        """Count the request, apply a queued fault or a refusal, else `answer(request, user_id)`."""
        fault = await self._begin(request)
        try:
            if fault is not None:
                self._log(path, None, fault)
                return await self._fault_response(request, fault)
            refused = self._proapi_refusal(request, path)
            if isinstance(refused, web.Response):
                return refused
            return await answer(request, refused)
        finally:
            self.in_flight -= 1
            self.in_flight_by_path[path] -= 1

    def _proapi_refusal(self, request: web.Request, path: str) -> int | web.Response:
        """The user id of the request's access token, or the answer that refuses it."""
        if self.proapi_limit is not None:
            self._log(path, self.proapi_limit)
            if self.proapi_limit == PROAPI_LIMIT_HTTP_429:
                return web.Response(status=429, text="Too Many Requests")
            return self._error(self.proapi_limit, "访问频率过高", proapi=True)
        if self.proapi_refusal is not None:
            self._log(path, self.proapi_refusal)
            return self._error(self.proapi_refusal, "refused", proapi=True)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        at = self.access_tokens.get(token)
        if at is None:
            self._log(path, CODE_TOKEN_FORMAT)
            return self._error(CODE_TOKEN_FORMAT, "access_token format error", proapi=True)
        if self.clock() >= at.expires_at:
            self._log(path, CODE_TOKEN_INVALID)
            return self._error(CODE_TOKEN_INVALID, "access_token invalid", proapi=True)
        return self.grants[at.grant_id].user_id

    def _proapi_ok(self, path: str, data: object) -> web.Response:
        """A successful proapi answer with `data`."""
        self._log(path, 0)
        return web.json_response({"state": True, "code": 0, "message": "", "data": data})
