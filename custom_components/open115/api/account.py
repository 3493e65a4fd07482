"""The account: who a token belongs to, its storage and its VIP membership (/open/user/info)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import Open115ApiError, Open115TransientError
from .transport import Transport
from .values import as_number, as_size


@dataclass(frozen=True, slots=True)
class Account:
    """Who a token belongs to, with the facts /open/user/info gave."""

    user_id: str
    user_name: str
    space_total: int | None = None
    space_used: int | None = None
    space_remain: int | None = None
    vip_level: str | None = None
    vip_expire: datetime | None = None


class AccountApi(Transport):
    """The account calls of the Open API."""

    async def user_info(self) -> Account:
        """Read the account that owns the client's access token."""
        body = await self._proapi("GET", "/open/user/info", "Reading the account")
        data = body.get("data")
        if not isinstance(data, dict):
            raise Open115TransientError("Reading the account failed: no data in the answer")
        user_id = data.get("user_id")
        if isinstance(user_id, float) and user_id.is_integer() and user_id > 0:
            user_id = int(user_id)  # a JSON number written as 310000001.0
        if (
            isinstance(user_id, bool)
            or not isinstance(user_id, (int, str))
            or not str(user_id).strip()
        ):
            raise Open115ApiError("Reading the account failed: no user id in the answer")
        uid = str(user_id).strip()
        name = data.get("user_name")
        space = data.get("rt_space_info")
        vip = data.get("vip_info")
        return Account(
            user_id=uid,
            user_name=name if isinstance(name, str) and name else uid,
            space_total=_space(space, "all_total"),
            space_used=_space(space, "all_use"),
            space_remain=_space(space, "all_remain"),
            vip_level=_vip_level(vip),
            vip_expire=_vip_expire(vip),
        )


def _space(space: Any, key: str) -> int | None:
    if not isinstance(space, dict):
        return None
    item = space.get(key)
    return as_size(item.get("size") if isinstance(item, dict) else item)


def _vip_level(vip: Any) -> str | None:
    if isinstance(vip, dict) and isinstance(vip.get("level_name"), str) and vip["level_name"]:
        return str(vip["level_name"])
    return None


def _vip_expire(vip: Any) -> datetime | None:
    if not isinstance(vip, dict):
        return None
    number = as_number(vip.get("expire"))  # a Unix time; seen with a fraction
    if number is None or number < 1:
        return None
    stamp = int(number)
    try:
        return datetime.fromtimestamp(stamp, UTC)
    except OverflowError, OSError, ValueError:
        return None
