"""The emulator's V4 check (tests/emulator/oss_signature.py) against Alibaba's own signer:
alibabacloud-oss-v2's SignerV4 signs, the emulator must accept exactly that and refuse any
change to a signed header, the query, the secret, the region, the token or the time."""

import random
from urllib.parse import quote

import aiohttp
import pytest

from .api_fixtures import FakeClock
from .conftest import USER_ID
from .emulator import OSS_BUCKET, UPLOAD_TOKEN_PATH, Emulator115
from .emulator_requests import OCTET, Proapi, multipart, send, sign, start

SMALL = bytes(range(256)) * 1200


@pytest.fixture
async def api(session: aiohttp.ClientSession, base_url: str, emu: Emulator115) -> Proapi:
    return Proapi(session, base_url, emu, emu.authorize(USER_ID))


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("header", "SignatureDoesNotMatch"),
        ("query", "SignatureDoesNotMatch"),
        ("secret", "SignatureDoesNotMatch"),
        ("region", "SignatureDoesNotMatch"),
        ("host", "SignatureDoesNotMatch"),
        ("token", "InvalidSecurityToken"),
        ("key_id", "InvalidAccessKeyId"),
        ("expired", "SecurityTokenExpired"),
        ("skewed", "RequestTimeTooSkewed"),
        ("v1", "AccessDenied"),
    ],
)
async def test_the_verifier_refuses_what_the_signer_did_not_sign(
    session: aiohttp.ClientSession,
    base_url: str,
    clock: FakeClock,
    emu: Emulator115,
    api: Proapi,
    tamper: str,
    code: str,
) -> None:
    up = await start(api, SMALL)
    upload_id, _ = await multipart(session, base_url, clock, up, 200 * 1024)
    query = f"partNumber=1&uploadId={upload_id}"
    token = dict(up.token)
    if tamper == "secret":
        token["AccessKeySecret"] += "x"
    region = "cn-hangzhou" if tamper == "region" else "cn-shenzhen"
    when = clock.utc()
    if tamper == "skewed":
        clock.advance(16 * 60)
    headers = sign(
        token,
        "PUT",
        up.bucket,
        up.key,
        when=when,
        query=query,
        headers={**OCTET, "x-oss-meta-a": "1"},
        additional={"host"},
        region=region,
    )
    assert "AdditionalHeaders=host," in headers["Authorization"]
    if tamper == "header":
        headers["x-oss-meta-a"] = "2"
    if tamper == "query":
        query = f"partNumber=2&uploadId={upload_id}"
    if tamper == "host":
        headers["Host"] = headers["Host"].replace("fhnfile.", "fhnfile.x.", 1)
    if tamper == "token":
        headers["x-oss-security-token"] += "x"
    if tamper == "key_id":
        headers["Authorization"] = headers["Authorization"].replace("STS.", "STS.X", 1)
    if tamper == "expired":
        clock.advance(emu.oss_token_lifetime)
    if tamper == "v1":
        headers["Authorization"] = f"OSS {token['AccessKeyId']}:c2lnbmF0dXJl"
    status, _, body = await send(
        session, base_url, "PUT", up.key, headers, query=query, body=b"x" * 1024
    )
    if tamper == "host":
        assert status == 404  # another bucket
        return
    assert status == 403
    assert f"<Code>{code}</Code>" in body.decode()
    sizes = {n: part[2] for n, part in emu.multipart[upload_id].parts.items()}
    assert sizes == {1: 200 * 1024, 2: 100 * 1024}  # nothing replaced


async def test_the_verifier_accepts_generated_requests_as_the_sdk_signs_them(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    """Keys, queries and headers of many shapes: every SDK-signed request gets past the check
    (404 NoSuchUpload comes after it), and the same request with one signed byte changed not."""
    token = (await api.get(UPLOAD_TOKEN_PATH))["data"]
    rng = random.Random(115)
    alphabet = "abcXYZ019-_.~ +%&=/!*'()中文"
    for _ in range(40):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))).strip("/.")
        key = key.replace("//", "/") or "k"
        pairs = [("uploadId", "none")] + [
            (
                quote(rng.choice(["a", "b-c", "x y", "é"]), safe=""),
                quote(rng.choice(["", "1", "a b", "%/"]), safe=""),
            )
            for _ in range(rng.randint(0, 3))
        ]
        query = "&".join(f"{k}={v}" if v else k for k, v in pairs)
        headers = {
            f"x-oss-meta-{i}": rng.choice(["v", "a b", "0"]) for i in range(rng.randint(0, 2))
        }
        if rng.random() < 0.5:
            headers["Content-Type"] = "application/octet-stream"
        additional = {"host"} if rng.random() < 0.5 else None
        signed = sign(
            token,
            "GET",
            OSS_BUCKET,
            key,
            when=clock.utc(),
            query=query,
            headers=headers,
            additional=additional,
        )
        status, _, body = await send(session, base_url, "GET", key, signed, query=query)
        assert (status, b"<Code>NoSuchUpload</Code>" in body) == (404, True), (key, query, body)
        signed["x-oss-date"] = signed["x-oss-date"][:-3] + "59Z"
        status, _, body = await send(session, base_url, "GET", key, signed, query=query)
        assert (status, b"<Code>SignatureDoesNotMatch</Code>" in body) == (403, True), body
