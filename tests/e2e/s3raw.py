"""Hand-made S3 requests for the end-to-end tests: a small SigV4 signer and an http.client wrapper.

boto3 only sends well-formed requests; these build what it does not: requests signed at a chosen
time (clock skew, expired presigned URLs), with a wrong secret, scope or payload hash,
STREAMING-AWS4-HMAC-SHA256-PAYLOAD (aws-chunked) bodies, a Host header for virtual-host
addressing, and bytes that are not HTTP at all. The signing follows the AWS Signature Version 4
documentation for S3 ("Authenticating Requests: Using the Authorization Header", "Using Query
Parameters", "Transferring Payload in Multiple Chunks").

Thread-safety: RawClient holds no connection between requests; use one per thread to be safe.
"""

import collections
import datetime
import hashlib
import hmac
import http.client
import socket
import urllib.parse
import xml.etree.ElementTree as ET

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
REQUEST_TIMEOUT_S = 30

Response = collections.namedtuple("Response", "status reason headers body")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def amz_date(when):
    return when.strftime("%Y%m%dT%H%M%SZ")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def uri_encode(value, keep_slash):
    """SigV4's URI encoding: everything but unreserved characters (and '/' in paths) as %XX."""
    return urllib.parse.quote(value, safe="-_.~/" if keep_slash else "-_.~")


def object_path(bucket, key=""):
    """The path-style request path of an object (or of the bucket when key is empty)."""
    path = "/" + uri_encode(bucket, keep_slash=False)
    return path + "/" + uri_encode(key, keep_slash=True) if key else path


def canonical_query(query):
    pairs = sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in query)
    return "&".join(f"{k}={v}" for k, v in pairs)


class Credentials:
    def __init__(self, access_key, secret_key, region="us-east-1"):
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region

    def scope(self, when, region=None):
        return f"{when.strftime('%Y%m%d')}/{region or self.region}/s3/aws4_request"

    def signing_key(self, when, region=None):
        key = ("AWS4" + self.secret_key).encode()
        for part in (when.strftime("%Y%m%d"), region or self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return key


def _sign(creds, when, canonical_request, region=None):
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date(when), creds.scope(when, region), sha256_hex(canonical_request.encode())])
    return hmac.new(creds.signing_key(when, region), string_to_sign.encode(), hashlib.sha256).hexdigest()


def sign_headers(creds, method, path, query, headers, payload_hash, when=None, region=None):
    """Adds x-amz-date, x-amz-content-sha256 and Authorization to `headers` (which must hold Host).

    query: a list of (name, value) pairs, unencoded. path: already URI-encoded. region: the region
    written into the credential scope (default: the credentials' region). Returns the signature.
    """
    when = when or utcnow()
    headers["x-amz-date"] = amz_date(when)
    headers["x-amz-content-sha256"] = payload_hash
    canonical = {}
    for name, value in headers.items():
        canonical[name.lower()] = " ".join(str(value).split())
    signed = ";".join(sorted(canonical))
    canonical_request = "\n".join([
        method, path, canonical_query(query),
        "".join(f"{name}:{canonical[name]}\n" for name in sorted(canonical)),
        signed, payload_hash])
    signature = _sign(creds, when, canonical_request, region)
    headers["Authorization"] = (f"{ALGORITHM} Credential={creds.access_key}/{creds.scope(when, region)}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    return signature


def presign(creds, method, host, path, expires, when=None, query=()):
    """The query string (without '?') of a presigned URL signed at `when` for `expires` seconds."""
    when = when or utcnow()
    params = list(query) + [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{creds.access_key}/{creds.scope(when)}"),
        ("X-Amz-Date", amz_date(when)),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    canonical_request = "\n".join([method, path, canonical_query(params), f"host:{host}\n", "host", UNSIGNED_PAYLOAD])
    params.append(("X-Amz-Signature", _sign(creds, when, canonical_request)))
    return canonical_query(params)


def chunk_signature(creds, when, previous_signature, chunk):
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date(when), creds.scope(when), previous_signature,
                                EMPTY_SHA256, sha256_hex(chunk)])
    return hmac.new(creds.signing_key(when), string_to_sign.encode(), hashlib.sha256).hexdigest()


def aws_chunked_length(sizes):
    """Content-Length of an aws-chunked body with data chunks of `sizes` (the final empty one added)."""
    total = 0
    for size in list(sizes) + [0]:
        total += len(f"{size:x};chunk-signature=") + 64 + 2 + size + 2
    return total


def aws_chunked_body(creds, when, seed_signature, chunks, tamper_chunk=None):
    """The aws-chunked encoding of `chunks`, each signed and chained from `seed_signature`.

    tamper_chunk: index of a chunk whose data is altered after signing (a bad signature).
    """
    out = []
    previous = seed_signature
    for index, chunk in enumerate(list(chunks) + [b""]):
        signature = chunk_signature(creds, when, previous, chunk)
        previous = signature
        data = chunk
        if index == tamper_chunk:
            data = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
        out.append(f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + data + b"\r\n")
    return b"".join(out)


class RawClient:
    """Sends one request per connection to the server and returns a Response (headers lower-case)."""

    def __init__(self, host, port, creds):
        self.host = host
        self.port = port
        self.creds = creds

    @property
    def host_header(self):
        return f"{self.host}:{self.port}"

    def send(self, method, path, query=(), headers=None, body=b"", raw_query=None):
        """Sends exactly what it is given (no signing). raw_query overrides the encoded `query`."""
        target = path
        encoded_query = raw_query if raw_query is not None else canonical_query(query)
        if encoded_query:
            target += "?" + encoded_query
        headers = dict(headers or {})
        headers.setdefault("Host", self.host_header)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            if body and not any(name.lower() in ("content-length", "transfer-encoding") for name in headers):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def request(self, method, path, query=(), headers=None, body=b"", payload_hash=None, when=None,
                creds=None, region=None):
        """Signs with the Authorization header (payload hash: SHA-256 of body unless given) and sends."""
        headers = dict(headers or {})
        headers.setdefault("Host", self.host_header)
        if body or method in ("PUT", "POST"):
            headers.setdefault("Content-Length", str(len(body)))
        sign_headers(creds or self.creds, method, path, list(query), headers,
                     payload_hash or sha256_hex(body), when=when, region=region)
        return self.send(method, path, query, headers, body)

    def put_streaming(self, path, chunks, headers=None, when=None, tamper_chunk=None):
        """PUT with a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body made of `chunks`."""
        when = when or utcnow()
        sizes = [len(c) for c in chunks]
        headers = dict(headers or {})
        headers.update({
            "Host": self.host_header,
            "Content-Encoding": "aws-chunked",
            "Content-Length": str(aws_chunked_length(sizes)),
            "x-amz-decoded-content-length": str(sum(sizes)),
        })
        seed = sign_headers(self.creds, "PUT", path, [], headers, STREAMING_PAYLOAD, when=when)
        body = aws_chunked_body(self.creds, when, seed, chunks, tamper_chunk=tamper_chunk)
        return self.send("PUT", path, (), headers, body)

    def send_bytes(self, data, timeout=5):
        """Writes `data` on a new connection and returns what comes back before the server closes
        or goes quiet for `timeout` seconds."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed before reading everything
            received = b""
            try:
                while True:
                    piece = sock.recv(65536)
                    if not piece:
                        break
                    received += piece
            except (socket.timeout, ConnectionResetError):
                pass
            return received


def parse_xml(body):
    """The root element of an S3 XML document with the S3 namespace stripped from every tag."""
    root = ET.fromstring(body)
    for element in root.iter():
        if element.tag.startswith(S3_NS):
            element.tag = element.tag[len(S3_NS):]
    return root


def error_fields(body):
    """{child tag: text} of an <Error> document."""
    root = parse_xml(body)
    assert root.tag == "Error", body
    return {child.tag: child.text or "" for child in root}
