"""api/upload.py's pieces: the part size, the hashes, and the shapes of 115's answers."""

from collections.abc import AsyncIterator
import hashlib

import pytest

from custom_components.open115.api import Open115UploadError
from custom_components.open115.api.upload import (
    MAX_PARTS,
    PART_SIZE,
    _credentials,
    _ticket,
    digest,
    part_size_for,
    range_sha1,
)

MIB = 1024 * 1024
DATA = bytes(range(256)) * 1500  # 384,000 bytes


def opener(data: bytes, chunk: int = 1000):
    """open_stream over `data` in chunks of `chunk` bytes."""

    async def open_stream() -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), chunk):
                yield data[start : start + chunk]

        return chunks()

    return open_stream


def upper_sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest().upper()


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, PART_SIZE),
        (PART_SIZE * MAX_PARTS, PART_SIZE),
        (PART_SIZE * MAX_PARTS + 1, PART_SIZE + MIB),
        (200 * 1024**3, 21 * MIB),
    ],
)
def test_part_size(size: int, expected: int) -> None:
    """16 MiB, grown by whole MiB only when 10,000 parts would not hold the file."""
    assert part_size_for(size, PART_SIZE) == expected
    assert -(-size // expected) <= MAX_PARTS


async def test_digest_and_range() -> None:
    """The whole SHA1, the first 128 KiB's, and an inclusive range across chunk borders."""
    found = await digest(opener(DATA))
    assert (found.size, found.sha1, found.preid) == (
        len(DATA),
        upper_sha1(DATA),
        upper_sha1(DATA[: 128 * 1024]),
    )
    assert await range_sha1(opener(DATA), 999, 5000) == upper_sha1(DATA[999:5001])
    assert await range_sha1(opener(DATA), 0, 0) == upper_sha1(DATA[:1])


@pytest.mark.parametrize(
    "callback",
    [
        {"callback": '{"u":1}', "callback_var": '{"x:a":"b"}'},
        [{"callback": '{"u":1}', "callback_var": '{"x:a":"b"}'}],
    ],
    ids=["object", "list"],
)
def test_ticket_shapes(callback: object) -> None:
    """upload/init's callback as an object or a one-item list; the strings kept as sent."""
    ticket = _ticket(
        {"status": "1", "bucket": "fhnfile", "object": "o/1", "callback": callback, "file_id": ""}
    )
    assert ticket.status == 1
    assert ticket.target is not None
    assert (ticket.target.callback, ticket.target.callback_var) == ('{"u":1}', '{"x:a":"b"}')


def test_instant_ticket_and_bad_answers() -> None:
    """Status 2 has no OSS target (callback []); an answer without data is refused."""
    ticket = _ticket({"status": 2, "file_id": "9", "pick_code": "pc", "callback": []})
    assert (ticket.status, ticket.file_id, ticket.pick_code, ticket.target) == (2, "9", "pc", None)
    with pytest.raises(Open115UploadError):
        _ticket(None)


def test_credentials_shapes() -> None:
    """get_token's answer as an object or a one-item list; the endpoint's host kept."""
    item = {
        "endpoint": "http://oss-cn-shenzhen.aliyuncs.com",
        "AccessKeyId": "STS.a",
        "AccessKeySecret": "s",
        "SecurityToken": "t",
        "Expiration": "2026-12-08T00:00:00Z",
    }
    for data in (item, [item]):
        creds = _credentials(data)
        assert (creds.endpoint, creds.region) == ("oss-cn-shenzhen.aliyuncs.com", "cn-shenzhen")
        assert creds.expiration is not None
        assert creds.expiration.isoformat() == "2026-12-08T00:00:00+00:00"
    naive = _credentials({**item, "Expiration": "2026-12-08T00:00:00"})
    assert naive.expiration == creds.expiration
    with pytest.raises(Open115UploadError):
        _credentials({**item, "SecurityToken": ""})


def test_callback_object_is_sent_as_compact_json() -> None:
    """A callback given as an object (never seen; strings are) goes out as compact JSON."""
    ticket = _ticket(
        {
            "status": 1,
            "bucket": "b",
            "object": "o",
            "callback": {"callback": {"callbackUrl": "u"}, "callback_var": '{"x:a":"b"}'},
        }
    )
    assert ticket.target is not None
    assert ticket.target.callback == '{"callbackUrl":"u"}'


def test_ticket_as_a_list_and_without_callback_var() -> None:
    """upload/init's data as the document's one-item list; a missing callback_var is ""."""
    ticket = _ticket(
        [{"status": 1, "bucket": "b", "object": "o", "callback": {"callback": '{"u":1}'}}]
    )
    assert ticket.status == 1
    assert ticket.target is not None
    assert (ticket.target.bucket, ticket.target.object) == ("b", "o")
    assert (ticket.target.callback, ticket.target.callback_var) == ('{"u":1}', "")


@pytest.mark.parametrize("expiration", [None, 1765152000, "next tuesday"])
def test_credentials_without_a_usable_expiration(expiration: object) -> None:
    """No Expiration, a number, or text that is no date: no expiry (renewed only when OSS
    says SecurityTokenExpired), not a failure."""
    item = {
        "endpoint": "oss-cn-shenzhen.aliyuncs.com",
        "AccessKeyId": "STS.a",
        "AccessKeySecret": "s",
        "SecurityToken": "t",
    }
    if expiration is not None:
        item["Expiration"] = expiration  # type: ignore[assignment]
    creds = _credentials(item)
    assert creds.expiration is None
    assert creds.endpoint == "oss-cn-shenzhen.aliyuncs.com"


async def test_range_past_the_end_of_a_shorter_stream() -> None:
    """The sign range is hashed from the bytes there are: chunks before it are skipped, a
    stream ending inside it gives the SHA1 of what it had."""
    assert await range_sha1(opener(DATA, 100_000), 300_000, 500_000) == upper_sha1(DATA[300_000:])
