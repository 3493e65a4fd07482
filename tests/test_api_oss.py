"""api/oss.py: its V4 signer against Alibaba's own (alibabacloud-oss-v2, a test-only
dependency), its answers, and its upload against the emulator's OSS when OSS is silent or
answers a malformed success.

Both signers sign the same generated requests (methods, object keys with any characters, OSS
query parameters, signed and unsigned headers, credentials, times, regions) and must produce the
same `Authorization` header, byte for byte.
"""

from collections.abc import Awaitable
from datetime import UTC, datetime
import os
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from alibabacloud_oss_v2.signer.v4 import SignerV4
from alibabacloud_oss_v2.types import Credentials, HttpRequest, SigningContext
from hypothesis import given, settings, strategies as st
import pytest

from custom_components.open115.api import Open115Client, oss as oss_module
from custom_components.open115.api.errors import (
    Open115CallbackFailedError,
    Open115OssError,
    Open115OssTokenExpiredError,
    Open115TransientError,
    Open115UploadError,
    oss_error_for,
)
from custom_components.open115.api.oss import (
    OssCredentials,
    OssTarget,
    OssUpload,
    _callback_answer,
    canonical_query,
    complete_body,
    endpoint_host,
    sign_v4,
)

from .api_fixtures import drive_api, fails, opener
from .conftest import USER_ID
from .emulator import FAULT_NO_ETAG, FAULT_NO_UPLOAD_ID, FAULT_OSS_HANG, Emulator115

SAFE = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
KEYS = st.text(SAFE, min_size=1, max_size=40)
QUERY_NAMES = st.sampled_from(["uploads", "uploadId", "partNumber", "acl", "x-oss-process"])
QUERY_VALUES = st.one_of(st.just(""), st.text(SAFE, max_size=20))
HEADER_VALUES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
HEADER_NAMES = st.sampled_from(
    [
        "Content-Type",
        "Content-MD5",
        "x-oss-callback",
        "x-oss-callback-var",
        "X-Oss-Meta-Backup",
        "User-Agent",
        "Content-Length",
    ]
)
REGIONS = st.sampled_from(["cn-shenzhen", "cn-hangzhou", "cn-beijing", "ap-southeast-1"])
TIMES = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 (hypothesis: naive bounds)
    max_value=datetime(2035, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
SECRETS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


def sdk_authorization(
    method: str,
    bucket: str,
    key: str,
    query: dict[str, str],
    headers: dict[str, str],
    creds: OssCredentials,
    when: datetime,
) -> str:
    """The SDK's signature of the request (its URL built the way its client builds it)."""
    url = f"https://{bucket}.{creds.endpoint}/{quote(key)}"
    if query:
        url += "?" + urlencode(query, quote_via=quote)
    request = HttpRequest(method, url, headers=dict(headers))
    context = SigningContext(
        product="oss",
        region=creds.region,
        bucket=bucket,
        key=key,
        request=request,
        credentials=Credentials(creds.access_key_id, creds.access_key_secret, creds.security_token),
        signing_time=when,
    )
    SignerV4().sign(context)
    return str(request.headers["Authorization"])


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["PUT", "POST", "GET", "DELETE", "HEAD"]),
    bucket=st.from_regex(r"[a-z0-9][a-z0-9-]{2,20}[a-z0-9]", fullmatch=True),
    key=KEYS,
    query=st.dictionaries(QUERY_NAMES, QUERY_VALUES, max_size=3),
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=5),
    region=REGIONS,
    key_id=SECRETS,
    secret=SECRETS,
    token=st.one_of(st.just(""), SECRETS),
    when=TIMES,
)
def test_signature_is_the_sdks(
    method: str,
    bucket: str,
    key: str,
    query: dict[str, str],
    headers: dict[str, str],
    region: str,
    key_id: str,
    secret: str,
    token: str,
    when: datetime,
) -> None:
    """Every generated request gets the SDK's Authorization header."""
    creds = OssCredentials(f"oss-{region}.aliyuncs.com", key_id, secret, token)
    ours = dict(headers)
    sign_v4(
        method=method,
        bucket=bucket,
        key=key,
        query=query,
        headers=ours,
        credentials=creds,
        now=when,
    )
    assert ours["Authorization"] == sdk_authorization(
        method, bucket, key, query, headers, creds, when
    )
    assert ours["x-oss-date"] == when.strftime("%Y%m%dT%H%M%SZ")
    assert ours["x-oss-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert ours.get("x-oss-security-token", "") == token


def test_a_known_signature() -> None:
    """A fixed request's signature (pins the algorithm independently of the SDK's version)."""
    creds = OssCredentials("oss-cn-shenzhen.aliyuncs.com", "STS.id", "secret", "tok")
    headers = {"Content-Type": "application/octet-stream"}
    when = datetime(2026, 12, 7, 23, 0, 0, tzinfo=UTC)
    sign_v4(
        method="PUT",
        bucket="fhnfile",
        key="1/abc.tar",
        query={"partNumber": "1", "uploadId": "ID"},
        headers=headers,
        credentials=creds,
        now=when,
    )
    expected = sdk_authorization(
        "PUT",
        "fhnfile",
        "1/abc.tar",
        {"partNumber": "1", "uploadId": "ID"},
        {"Content-Type": "application/octet-stream"},
        creds,
        when,
    )
    assert headers["Authorization"] == expected
    assert headers["Authorization"].startswith(
        "OSS4-HMAC-SHA256 Credential=STS.id/20261207/cn-shenzhen/oss/aliyun_v4_request,Signature="
    )


@pytest.mark.parametrize(
    ("endpoint", "host", "region"),
    [
        ("http://oss-cn-shenzhen.aliyuncs.com", "oss-cn-shenzhen.aliyuncs.com", "cn-shenzhen"),
        ("oss-cn-hangzhou.aliyuncs.com", "oss-cn-hangzhou.aliyuncs.com", "cn-hangzhou"),
        (
            "https://oss-cn-beijing-internal.aliyuncs.com/",
            "oss-cn-beijing-internal.aliyuncs.com",
            "cn-beijing",
        ),
    ],
)
def test_endpoint_and_region(endpoint: str, host: str, region: str) -> None:
    """get_token's endpoint (a URL or a host) gives the host and the signing region."""
    assert endpoint_host(endpoint) == host
    assert OssCredentials(host, "a", "b", "c").region == region


def test_query_and_complete_body() -> None:
    """An empty value is a bare key; parts are listed in order with their ETags."""
    assert canonical_query({"uploads": ""}) == "uploads"
    assert canonical_query({"uploadId": "X", "partNumber": "2"}) == "partNumber=2&uploadId=X"
    assert complete_body(['"A"', '"B"']) == (
        b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"A"</ETag>'
        b'</Part><Part><PartNumber>2</PartNumber><ETag>"B"</ETag></Part>'
        b"</CompleteMultipartUpload>"
    )


def test_credentials_repr_holds_no_secret() -> None:
    """A repr of the credentials shows the endpoint only."""
    creds = OssCredentials("oss-cn-shenzhen.aliyuncs.com", "KEYID", "KEYSECRET", "STSTOKEN")
    assert "KEYID" not in repr(creds)
    assert "KEYSECRET" not in repr(creds)
    assert "STSTOKEN" not in repr(creds)


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (
            203,
            b"<Error><Code>CallbackFailed</Code></Error>",
            Open115CallbackFailedError,
            "CallbackFailed",
        ),
        (
            403,
            b"<Error><Code>SecurityTokenExpired</Code><Message>x</Message></Error>",
            Open115OssTokenExpiredError,
            "SecurityTokenExpired",
        ),
        (
            403,
            b"<Error><Code>SignatureDoesNotMatch</Code><StringToSign>KEY</StringToSign></Error>",
            Open115OssError,
            "SignatureDoesNotMatch",
        ),
        (500, b"not xml", Open115OssError, None),
    ],
)
def test_oss_errors(status: int, body: bytes, kind: type[Exception], code: str | None) -> None:
    """OSS's XML errors are typed by code; only the code is quoted."""
    err = oss_error_for(status, body, "Sending")
    assert type(err) is kind
    assert err.oss_code == code
    assert "KEY" not in str(err)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html>", "115's callback answer is not JSON"),
        (b"[1]", "115's callback answer is not an object"),
        (
            b'{"state": false, "code": 10002, "data": {}}',
            "115 did not accept the upload (code 10002)",
        ),
        (b'{"state": true, "data": {"pick_code": "pc"}}', "115 did not accept the upload"),
    ],
    ids=["not_json", "not_object", "refused", "no_file_id"],
)
def test_callback_answer_refusals(raw: bytes, message: str) -> None:
    """OSS relays 115's callback answer: anything but an accepted file with an id fails."""
    with pytest.raises(Open115UploadError) as info:
        _callback_answer(raw)
    assert str(info.value) == message


def test_callback_answer_accepted() -> None:
    """An accepted callback gives its data (file id, pick code)."""
    raw = b'{"state": true, "code": 0, "data": {"file_id": "7", "pick_code": "pc"}}'
    assert _callback_answer(raw) == {"file_id": "7", "pick_code": "pc"}


class _NoDns(aiohttp.abc.AbstractResolver):
    """A resolver that finds no host (nothing leaves this machine)."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[Any]:
        raise OSError(f"no address for {host}")

    async def close(self) -> None:
        """Nothing to close."""


async def test_requests_go_to_the_bucket_host_over_https() -> None:
    """Without a development base URL, OSS requests go to https://<bucket>.<endpoint>/<object>
    (no Host override); a host that cannot be reached is a transient error, named by type."""
    sent: list[tuple[str, str, bool]] = []

    async def on_start(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        sent.append((params.method, str(params.url), "Host" in params.headers))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    target = OssTarget(bucket="fhnfile", object="o/1 a", callback="{}", callback_var="{}")
    creds = OssCredentials("oss-cn-shenzhen.aliyuncs.com", "STS.id", "secret", "token")

    async def renew() -> OssCredentials:
        raise AssertionError("no renewal")

    connector = aiohttp.TCPConnector(resolver=_NoDns())
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:
        oss = OssUpload(session, target, creds, renew)
        with pytest.raises(Open115TransientError) as info:
            await oss.initiate()
        with pytest.raises(Open115UploadError) as not_started:
            await oss.upload_part(b"x")  # no upload id: nothing is sent
    assert str(info.value).startswith("Starting the OSS upload failed: cannot connect (")
    for secret in ("STS.id", "secret", "token"):
        assert secret not in repr(info.value)
    assert sent == [("POST", "https://fhnfile.oss-cn-shenzhen.aliyuncs.com/o/1%20a?uploads", False)]
    assert str(not_started.value) == "The OSS upload was not started"
    assert oss.requests == 1


# ----- against the emulator's OSS: a silent server and malformed successes ---------------------


api = drive_api
PART = 100 * 1024  # 300,000 bytes: 3 parts


def _multipart(api: Open115Client, name: str) -> Awaitable[object]:
    """An upload of 300,000 new bytes in 3 parts (new: never an instant upload)."""
    return api.upload(
        folder_id="0", file_name=name, open_stream=opener(os.urandom(300_000)), part_size=PART
    )


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """OSS requests time out after 0.2 s (60 s plus the body's time at 64 KiB/s in use)."""
    monkeypatch.setattr(oss_module, "BASE_TIMEOUT", 0.2)
    monkeypatch.setattr(oss_module, "MIN_RATE", 1 << 40)


@pytest.mark.usefixtures("short_timeout")
async def test_a_silent_oss_times_out_and_stores_nothing(
    api: Open115Client, emu: Emulator115
) -> None:
    """OSS never answers the PutObject: the upload fails as a timeout, with no secret in it."""
    emu.inject_oss(FAULT_OSS_HANG)
    err = await fails(
        Open115TransientError,
        api.upload(folder_id="0", file_name="h.tar", open_stream=opener(os.urandom(3000))),
        emu,
    )
    assert str(err) == "Sending the file to OSS timed out"
    assert [op for op, _, code in emu.oss_requests if code == FAULT_OSS_HANG] == ["PutObject"]
    assert emu.find(USER_ID, "0", "h.tar") is None


@pytest.mark.usefixtures("short_timeout")
async def test_a_part_oss_leaves_unanswered_is_sent_again(
    api: Open115Client, emu: Emulator115
) -> None:
    """One part unanswered: it is sent once more and the upload completes; every part unanswered:
    the upload fails as a timeout and is aborted at OSS."""
    data = os.urandom(300_000)
    emu.inject_oss(FAULT_OSS_HANG)
    stored = await api.upload(
        folder_id="0", file_name="p.tar", open_stream=opener(data), part_size=PART
    )
    assert emu.read_bytes(emu.nodes[stored.file_id]) == data
    assert emu.oss_count("UploadPart") == 3 + 1
    emu.inject_oss(FAULT_OSS_HANG, FAULT_OSS_HANG)
    err = await fails(
        Open115TransientError,
        _multipart(api, "q.tar"),
        emu,
    )
    assert str(err) == "Sending part 1 to OSS timed out"
    assert emu.multipart == {}
    assert emu.find(USER_ID, "0", "q.tar") is None


async def test_a_multipart_start_without_an_upload_id_fails_cleanly(
    api: Open115Client, emu: Emulator115
) -> None:
    """OSS answers 200 without an UploadId: nothing more is sent and nothing is stored."""
    emu.inject_oss(FAULT_NO_UPLOAD_ID)
    err = await fails(
        Open115UploadError,
        _multipart(api, "u.tar"),
        emu,
    )
    assert str(err) == "Starting the OSS upload failed: no upload id"
    assert [op for op, _, _ in emu.oss_requests] == ["InitiateMultipartUpload"]
    assert emu.find(USER_ID, "0", "u.tar") is None


async def test_a_part_answered_without_an_etag_aborts_the_upload(
    api: Open115Client, emu: Emulator115
) -> None:
    """A part's 200 carries no ETag (the completion would need it): the upload fails and is
    aborted at OSS, and nothing is stored."""
    emu.inject_oss(FAULT_NO_ETAG)
    err = await fails(
        Open115UploadError,
        _multipart(api, "e.tar"),
        emu,
    )
    assert str(err) == "Sending part 1 to OSS failed: no ETag in the answer"
    assert emu.oss_count("AbortMultipartUpload") == 1
    assert emu.multipart == {}
    assert emu.find(USER_ID, "0", "e.tar") is None
