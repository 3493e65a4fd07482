"""Aliyun OSS V4 signatures (OSS4-HMAC-SHA256) as the OSS stand-in checks them.

Exactly what Alibaba's SDK alibabacloud-oss-v2 1.4.1 (signer/v4.py, SignerV4) computes:
canonical request = method, URI `/{bucket}/{key}` (quoted, "/" kept), the raw query's pairs
sorted (a pair without a value as its bare key), the canonical headers (`x-oss-*`,
content-type, content-md5 and the `AdditionalHeaders`, lower-case, sorted, `name:value`), the
additional header names, and `x-oss-content-sha256` (UNSIGNED-PAYLOAD) as the payload hash;
string to sign = "OSS4-HMAC-SHA256", x-oss-date, the scope `{date}/{region}/oss/aliyun_v4_request`
and the canonical request's SHA256; the key is HMAC-SHA256 chained from "aliyun_v4" + secret
over date, region, "oss", "aliyun_v4_request". The region is the endpoint host's first label
without `oss-` (qicfan/qmediasync@8abcfa6 internal/v115open/upload.go signs V4 for
cn-shenzhen). x-oss-date must be within 15 minutes of the server's clock.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
import hashlib
import hmac
import re
from urllib.parse import quote, urlsplit

from aiohttp import web

MAX_SKEW = 15 * 60
_AUTH = re.compile(
    r"^OSS4-HMAC-SHA256 Credential=(?P<cred>[^,]+)"
    r"(?:,\s*AdditionalHeaders=(?P<extra>[^,]*))?,\s*Signature=(?P<sig>[0-9a-f]{64})$"
)


class OssError(Exception):
    """An OSS error answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Status, OSS error code, message."""
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def region_of(endpoint: str) -> str:
    """The region of an OSS endpoint: http://oss-cn-shenzhen.aliyuncs.com → cn-shenzhen."""
    host = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}").hostname or ""
    return host.split(".", 1)[0].removeprefix("oss-").removesuffix("-internal")


@dataclass
class V4Authorization:
    """The parts of a V4 Authorization header."""

    key_id: str
    scope: str
    additional: list[str]
    signature: str


def parse_authorization(request: web.Request) -> V4Authorization:
    """The request's V4 Authorization; 403 AccessDenied for anything else (V1 included)."""
    match = _AUTH.match(request.headers.get("Authorization", ""))
    if match is None:
        raise OssError(403, "AccessDenied", "Authorization V4 (OSS4-HMAC-SHA256) required.")
    key_id, _, scope = match["cred"].partition("/")
    extra = sorted(h for h in (match["extra"] or "").lower().split(";") if h)
    return V4Authorization(key_id, scope, extra, match["sig"])


def check_signature(
    request: web.Request, auth: V4Authorization, bucket: str, secret: str, region: str, now: float
) -> None:
    """Raise OssError unless `auth` signs this request with `secret` for `region`."""
    stamp = request.headers.get("x-oss-date", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise OssError(403, "AccessDenied", "x-oss-date is missing or invalid.") from None
    if abs(signed_at.timestamp() - now) > MAX_SKEW:
        raise OssError(403, "RequestTimeTooSkewed", "The request time is too skewed.")
    if auth.scope != f"{stamp[:8]}/{region}/oss/aliyun_v4_request":
        raise OssError(403, "SignatureDoesNotMatch", "The credential scope is invalid.")
    if "x-oss-content-sha256" not in request.headers:
        raise OssError(400, "InvalidArgument", "x-oss-content-sha256 is required.")
    canonical = canonical_request(request, bucket, auth.additional)
    string_to_sign = "\n".join(
        ["OSS4-HMAC-SHA256", stamp, auth.scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("aliyun_v4" + secret).encode()
    for part in (stamp[:8], region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth.signature):
        raise OssError(
            403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
        )


def canonical_request(request: web.Request, bucket: str, extra: list[str]) -> str:
    """The V4 canonical request, as alibabacloud-oss-v2's signer/v4.py builds it."""
    uri = quote(f"/{bucket}/{request.path.removeprefix('/')}", safe="/")
    pairs = []
    raw_query = request.rel_url.raw_query_string
    for pair in raw_query.split("&") if raw_query else []:
        key, _, value = pair.partition("=")
        pairs.append((key, value))
    query = "&".join(f"{k}={v}" if v else k for k, v in sorted(pairs))
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        lower = name.lower()
        if lower.startswith("x-oss-") or lower in ("content-type", "content-md5") or lower in extra:
            headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    payload = request.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
    return f"{request.method}\n{uri}\n{query}\n{canonical_headers}\n{';'.join(extra)}\n{payload}"
