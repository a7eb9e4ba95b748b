"""Bad input: every defective request gets an S3 error, the server stays up, and nothing stored
changes.

Requests are built byte by byte and signed correctly (s3raw's SigV4 signer) so that each test
exercises exactly one defect: malformed XML documents, bad signatures, unknown keys, expired
presigned URLs, clock skew, bodies cut short or longer or shorter than their Content-Length,
wrong Content-MD5 and x-amz-content-sha256, oversized headers, invalid bucket names, long keys,
a PUT announcing more than 5 GiB, and bytes that are not HTTP. Then thousands of requests made
by mangling valid signed ones (bytes flipped, inserted, deleted in the request line, the headers
and the body): each must be answered with an S3 <Error> document (HEAD: an error status without
a body), or be answered exactly like the unmangled request when the mangling left it valid.

The module has a server of its own, filled by the `store` fixture; the last test checks that the
server still answers and that the store (buckets, objects and their MD5s, pending uploads and
their parts) is what it was before, with no chunk more in the engine than it needs.

The fuzzing is seeded: the seed is printed; replay with CAIRN_E2E_FUZZ_SEED=<seed>
(CAIRN_E2E_FUZZ_COUNT sets the number of requests, default 10000). A violation is reported with
the exact bytes sent and received.
"""

import base64
import dataclasses
import datetime
import hashlib
import math
import os
import random
import re
import socket
import time

import pytest

import s3raw
from conftest import start_server
from s3raw import object_path

KiB = 1 << 10
MiB = 1 << 20
MINUTE = datetime.timedelta(minutes=1)
SECOND = datetime.timedelta(seconds=1)
REF = "ref-bucket"
OTHER = "ref-other"
SCRATCH = "scratch-bucket"
ANSWER_TIMEOUT_S = 10

FUZZ_SEED = int(os.environ.get("CAIRN_E2E_FUZZ_SEED") or random.SystemRandom().randrange(1 << 32))
FUZZ_COUNT = int(os.environ.get("CAIRN_E2E_FUZZ_COUNT", "10000"))
FUZZ_BUDGET_S = 100


def content(size, seed):
    return random.Random(f"bad-input:{seed}").randbytes(size)


def b64md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# ---- raw requests -----------------------------------------------------------------------------

@dataclasses.dataclass
class Answer:
    status: int
    headers: dict  # lower-case names
    body: bytes


class Wire:
    """Builds requests as bytes and exchanges them on fresh connections."""

    def __init__(self, srv):
        self.srv = srv
        self.host = srv.host
        self.port = srv.port
        self.host_header = f"{srv.host}:{srv.port}"
        self.creds = s3raw.Credentials(srv.access_key, srv.secret_key, srv.region)

    def build(self, method, path, query=(), headers=None, body=b"", payload_hash=None, when=None, creds=None,
              content_length=None, raw_query=None, sign=True):
        """The bytes of a request, signed with the Authorization header unless sign=False.

        content_length: the Content-Length to announce (default: len(body) when there is a body or
        the method is PUT/POST); the body is sent as given whatever it says."""
        h = {"Host": self.host_header}
        h.update(headers or {})
        if content_length is None and (body or method in ("PUT", "POST")):
            content_length = len(body)
        if content_length is not None:
            h["Content-Length"] = str(content_length)
        if sign:
            s3raw.sign_headers(creds or self.creds, method, path, list(query), h,
                               payload_hash or s3raw.sha256_hex(body), when=when)
        target = path
        q = raw_query if raw_query is not None else s3raw.canonical_query(query)
        if q:
            target += "?" + q
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        return head.encode() + body

    def exchange(self, data, close_write=True, timeout=ANSWER_TIMEOUT_S):
        """Sends `data` on a new connection, half-closes it (close_write), and returns what comes
        back until the server closes (None when it stays silent for `timeout` seconds)."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            try:
                sock.sendall(data)
                if close_write:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server answered and closed before reading everything: read the answer
            received = b""
            while True:
                try:
                    piece = sock.recv(1 << 20)
                except socket.timeout:
                    return None
                except ConnectionResetError:
                    return received
                if not piece:
                    return received
                received += piece

    def send_and_close(self, data):
        """Sends `data` and closes the connection without reading anything."""
        with socket.create_connection((self.host, self.port), timeout=ANSWER_TIMEOUT_S) as sock:
            try:
                sock.sendall(data)
            except OSError:
                pass  # the server refused it early and closed

    def one(self, data, head=False, **kwargs):
        """The single answer to `data`; fails when there is none, or more than one."""
        received = self.exchange(data, **kwargs)
        assert received is not None, f"no answer within {ANSWER_TIMEOUT_S} s to {data[:600]!r}"
        answers, rest = parse_answers(received, head)
        assert len(answers) == 1 and not rest, f"expected one answer, got {received[:2000]!r}"
        return answers[0]

    def request(self, *args, head=False, **kwargs):
        return self.one(self.build(*args, **kwargs), head=head)


def parse_answers(data, head_first=False):
    """The HTTP/1.1 responses in `data` and the bytes after the last one that parsed.

    A response carries Content-Length bytes of body, none for HEAD (the first response when
    head_first), 204 and 304."""
    answers = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].decode("latin-1").split("\r\n")
        m = re.fullmatch(r"HTTP/1\.1 (\d{3}) [^\r\n]*", lines[0])
        if not m:
            break
        headers = {}
        ok = True
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                ok = False
                break
            headers[name.lower()] = value.strip()
        if not ok:
            break
        status = int(m.group(1))
        length = 0
        if not (head_first and not answers) and status not in (204, 304):
            if not re.fullmatch(r"\d+", headers.get("content-length", "")):
                break
            length = int(headers["content-length"])
        if len(data) < end + 4 + length:
            break
        answers.append(Answer(status, headers, data[end + 4:end + 4 + length]))
        data = data[end + 4 + length:]
    return answers, data


def error_code(answer):
    """The Code of an S3 <Error> document, or None when the body is not one."""
    try:
        root = s3raw.parse_xml(answer.body)
    except Exception:  # noqa: BLE001 - any parse failure means "not an error document"
        return None
    if root.tag != "Error":
        return None
    return root.findtext("Code") or None


def assert_error(answer, code, status, message=None):
    assert (answer.status, error_code(answer)) == (status, code), answer
    assert answer.headers.get("content-type") == "application/xml", answer
    if message is not None:
        assert s3raw.parse_xml(answer.body).findtext("Message") == message, answer


# ---- the server and what it stores ------------------------------------------------------------

@dataclasses.dataclass
class Store:
    upload_id: str   # a pending upload of REF/pending with two parts
    part_etags: dict  # part number -> unquoted ETag
    snapshot: dict


REF_OBJECTS = {
    REF: {"empty": 0, "small": 1000, "chunked": MiB + 1, "big": 3 * MiB + 17, "dir/nested key é": 4 * KiB},
    OTHER: {"one": 10, "two": 20},
}


@pytest.fixture(scope="module")
def srv(pytestconfig):
    return start_server(pytestconfig)


@pytest.fixture(scope="module")
def wire(srv):
    return Wire(srv)


@pytest.fixture(scope="module")
def store(wire):
    for bucket in (REF, OTHER, SCRATCH):
        assert wire.request("PUT", f"/{bucket}").status == 200
    for bucket, objects in REF_OBJECTS.items():
        for key, size in objects.items():
            answer = wire.request("PUT", object_path(bucket, key), body=content(size, key))
            assert answer.status == 200, answer
    created = wire.request("POST", object_path(REF, "pending"), query=[("uploads", "")])
    assert created.status == 200, created
    upload_id = s3raw.parse_xml(created.body).findtext("UploadId")
    etags = {}
    for number, size in ((1, 5 * MiB), (2, 1234)):
        answer = wire.request("PUT", object_path(REF, "pending"), query=[("partNumber", str(number)),
                                                                         ("uploadId", upload_id)],
                              body=content(size, f"part{number}"))
        assert answer.status == 200, answer
        etags[number] = answer.headers["etag"].strip('"')
    return Store(upload_id, etags, snapshot(wire))


def list_keys(wire, bucket):
    answer = wire.request("GET", f"/{bucket}", query=[("list-type", "2"), ("max-keys", "1000")])
    assert answer.status == 200, answer
    root = s3raw.parse_xml(answer.body)
    assert root.findtext("IsTruncated") == "false"
    return {c.findtext("Key"): (int(c.findtext("Size")), c.findtext("ETag")) for c in root.findall("Contents")}


def snapshot(wire):
    """Buckets; objects with size, ETag and the MD5 of their body; uploads and their parts."""
    answer = wire.request("GET", "/")
    assert answer.status == 200, answer
    buckets = sorted(b.findtext("Name") for b in s3raw.parse_xml(answer.body).iter("Bucket"))
    out = {"buckets": buckets, "objects": {}, "uploads": {}}
    for bucket in buckets:
        for key, (size, etag) in list_keys(wire, bucket).items():
            got = wire.request("GET", object_path(bucket, key))
            assert got.status == 200, got
            out["objects"][(bucket, key)] = (size, etag, hashlib.md5(got.body).hexdigest())
        listed = wire.request("GET", f"/{bucket}", query=[("uploads", "")])
        assert listed.status == 200, listed
        for u in s3raw.parse_xml(listed.body).findall("Upload"):
            key, upload_id = u.findtext("Key"), u.findtext("UploadId")
            parts = wire.request("GET", object_path(bucket, key), query=[("uploadId", upload_id)])
            assert parts.status == 200, parts
            out["uploads"][(bucket, key, upload_id)] = sorted(
                (p.findtext("PartNumber"), p.findtext("Size"), p.findtext("ETag"))
                for p in s3raw.parse_xml(parts.body).findall("Part"))
    return out


def metric(wire, name):
    answer = wire.one(f"GET /metrics HTTP/1.1\r\nHost: {wire.host_header}\r\n\r\n".encode())
    assert answer.status == 200
    m = re.search(rb"^" + re.escape(name.encode()) + rb" (\S+)$", answer.body, re.M)
    return int(float(m.group(1))) if m else 0


def settle(wire):
    """Waits (bounded) until the server is serving no S3 request: what a closed connection left
    running has finished."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while metric(wire, "cairn_s3_requests_in_flight") != 0:
        assert time.monotonic() < deadline, "S3 requests still in flight"
        time.sleep(0.02)


def assert_absent(wire, bucket, key):
    answer = wire.request("HEAD", object_path(bucket, key), head=True)
    assert answer.status == 404, f"{bucket}/{key} exists after a rejected write: {answer}"


def part_numbers(wire, store):
    answer = wire.request("GET", object_path(REF, "pending"), query=[("uploadId", store.upload_id)])
    assert answer.status == 200, answer
    return sorted(int(p.findtext("PartNumber")) for p in s3raw.parse_xml(answer.body).findall("Part"))


# ---- malformed XML ----------------------------------------------------------------------------

MALFORMED_XML = [
    b"<Complete", b"not xml at all", b"<a></b>", b"<?xml version=\"1.0\"?>", b"\x00\x01\x02\xff",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>trailing",
    b"<CompleteMultipartUpload><Part><PartNumber>1<ETag>x</ETag></Part></CompleteMultipartUpload>",
    b"<Delete><Object><Key>small</Key></Object>", b"<Delete><Object><Key>small</Key></Object></Delete",
    b"<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint>",
    b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>",
    b"<" * 5000, b"<a>" * 5000,
]


def test_malformed_complete_multipart_upload(wire, store):
    path = object_path(REF, "pending")
    for body in MALFORMED_XML + [b"<Delete/>", b"<CompleteMultipartUpload></CompleteMultipartUpload>"]:
        answer = wire.request("POST", path, query=[("uploadId", store.upload_id)], body=body)
        assert_error(answer, "MalformedXML", 400)
    # The document that would be valid, cut short.
    valid = ("<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>\"{e}\"</ETag></Part>" for n, e in sorted(store.part_etags.items()))
        + "</CompleteMultipartUpload>").encode()
    for cut in (1, 10, len(valid) // 2, len(valid) - 1):
        answer = wire.request("POST", path, query=[("uploadId", store.upload_id)], body=valid[:cut])
        assert_error(answer, "MalformedXML", 400)
    assert part_numbers(wire, store) == [1, 2]
    assert_absent(wire, REF, "pending")


def test_malformed_delete_objects(wire, store):
    for body in MALFORMED_XML + [b"<CompleteMultipartUpload/>", b"<Delete></Delete>"]:
        answer = wire.request("POST", f"/{REF}", query=[("delete", "")], body=body,
                              headers={"Content-MD5": b64md5(body)})
        assert_error(answer, "MalformedXML", 400)
    assert "small" in list_keys(wire, REF)


def test_malformed_create_bucket_configuration(wire, store):
    for body in MALFORMED_XML + [b"<Delete/>"]:
        answer = wire.request("PUT", "/new-bucket-from-bad-xml", body=body)
        assert_error(answer, "MalformedXML", 400)
        assert wire.request("HEAD", "/new-bucket-from-bad-xml", head=True).status == 404


# ---- authentication ---------------------------------------------------------------------------

def flip_signature(data):
    """The request with the last hex digit of its Signature changed."""
    head, sep, rest = data.partition(b"Signature=")
    sig, tail = rest[:64], rest[64:]
    flipped = sig[:-1] + (b"0" if sig[-1:] != b"0" else b"1")
    return head + sep + flipped + tail


def writes(store):
    """(method, path, query, body) of writes that must not take effect when rejected."""
    return [
        ("PUT", object_path(REF, "written-by-a-bad-request"), [], b"payload"),
        ("PUT", object_path(REF, "small"), [], b"overwrite"),
        ("DELETE", object_path(REF, "small"), [], b""),
        ("DELETE", f"/{OTHER}", [], b""),
        ("PUT", "/bucket-by-a-bad-request", [], b""),
        ("PUT", object_path(REF, "pending"), [("partNumber", "3"), ("uploadId", store.upload_id)], b"part"),
        ("DELETE", object_path(REF, "pending"), [("uploadId", store.upload_id)], b""),
    ]


def test_bad_signature(wire, store):
    for method, path, query, body in writes(store) + [("GET", object_path(REF, "small"), [], b"")]:
        answer = wire.one(flip_signature(wire.build(method, path, query, body=body)))
        assert_error(answer, "SignatureDoesNotMatch", 403)
        wrong = s3raw.Credentials(wire.creds.access_key, "not-the-secret-key", wire.creds.region)
        assert_error(wire.request(method, path, query, body=body, creds=wrong), "SignatureDoesNotMatch", 403)
    # The signature covers the path: a valid signature for another key does not do.
    data = wire.build("DELETE", object_path(REF, "other-key"))
    answer = wire.one(data.replace(b"/other-key ", b"/small ", 1))
    assert_error(answer, "SignatureDoesNotMatch", 403)


def test_unknown_access_key(wire, store):
    unknown = s3raw.Credentials("AKIAIOSFODNN7EXAMPLE", wire.creds.secret_key, wire.creds.region)
    for method, path, query, body in writes(store) + [("GET", object_path(REF, "small"), [], b"")]:
        assert_error(wire.request(method, path, query, body=body, creds=unknown), "InvalidAccessKeyId", 403)


def presigned(wire, method, path, expires, when, query=()):
    return s3raw.presign(wire.creds, method, wire.host_header, path, expires, when=when, query=query)


def test_expired_presigned_urls(wire, store):
    when = s3raw.utcnow() - 30 * MINUTE
    for method, path, query, body in writes(store) + [("GET", object_path(REF, "small"), [], b"")]:
        data = wire.build(method, path, body=body, raw_query=presigned(wire, method, path, 60, when, query),
                          sign=False)
        assert_error(wire.one(data), "AccessDenied", 403, message="Request has expired")
    # One second past its expiry.
    path = object_path(REF, "small")
    when = s3raw.utcnow() - 2 * SECOND
    data = wire.build("GET", path, raw_query=presigned(wire, "GET", path, 1, when), sign=False)
    assert_error(wire.one(data), "AccessDenied", 403, message="Request has expired")


@pytest.mark.parametrize("skew_minutes", [-16, 16, -24 * 60, 365 * 24 * 60])
def test_request_time_too_skewed(wire, store, skew_minutes):
    when = s3raw.utcnow() + skew_minutes * MINUTE
    for method, path, query, body in writes(store) + [("GET", object_path(REF, "small"), [], b"")]:
        assert_error(wire.request(method, path, query, body=body, when=when), "RequestTimeTooSkewed", 403)


# ---- bodies -----------------------------------------------------------------------------------

def put_variants(wire, store, body):
    """(description, key, request builder(content_length, body) -> bytes) of PUT-like
    requests whose result can be checked: object `key` of REF, or (key None) part 3 of the
    pending upload. Their payload hash and Content-MD5 are those of `body`."""
    part_query = [("partNumber", "3"), ("uploadId", store.upload_id)]

    def put(key, payload_hash, extra=None):
        def make(length, data):
            return wire.build("PUT", object_path(REF, key), body=data, content_length=length,
                              payload_hash=payload_hash or s3raw.sha256_hex(body), headers=extra)
        return make

    def part(payload_hash):
        def make(length, data):
            return wire.build("PUT", object_path(REF, "pending"), part_query, body=data, content_length=length,
                              payload_hash=payload_hash or s3raw.sha256_hex(body))
        return make

    return [
        ("PUT, signed payload", "cut-signed", put("cut-signed", None)),
        ("PUT, UNSIGNED-PAYLOAD", "cut-unsigned", put("cut-unsigned", s3raw.UNSIGNED_PAYLOAD)),
        ("PUT, UNSIGNED-PAYLOAD with Content-MD5", "cut-md5",
         put("cut-md5", s3raw.UNSIGNED_PAYLOAD, {"Content-MD5": b64md5(body)})),
        ("UploadPart, signed payload", None, part(None)),
        ("UploadPart, UNSIGNED-PAYLOAD", None, part(s3raw.UNSIGNED_PAYLOAD)),
    ]


def assert_not_written(wire, store, key):
    settle(wire)
    if key is None:
        assert part_numbers(wire, store) == [1, 2], "a part was stored from a rejected request"
    else:
        assert_absent(wire, REF, key)


@pytest.mark.parametrize("size", [1000, 3 * MiB])
def test_truncated_body_then_close(wire, store, size):
    body = content(size, "truncated")
    for name, key, make in put_variants(wire, store, body):
        for cut in (0, 1, size // 2, size - 1):
            data = make(size, body[:cut])
            # The client goes away without reading: nothing may be stored.
            wire.send_and_close(data)
            assert_not_written(wire, store, key)
            # The client half-closes and reads: an IncompleteBody error.
            answer = wire.one(data)
            assert_error(answer, "IncompleteBody", 400)
            assert_not_written(wire, store, key)


def streaming_request(wire, path, chunks, content_length=None, extra=None):
    """(head, body) of an aws-chunked PUT of `chunks` (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)."""
    when = s3raw.utcnow()
    sizes = [len(c) for c in chunks]
    headers = {"Host": wire.host_header, "Content-Encoding": "aws-chunked",
               "Content-Length": str(content_length if content_length is not None else s3raw.aws_chunked_length(sizes)),
               "x-amz-decoded-content-length": str(sum(sizes))}
    headers.update(extra or {})
    seed = s3raw.sign_headers(wire.creds, "PUT", path, [], headers, s3raw.STREAMING_PAYLOAD, when=when)
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode(), s3raw.aws_chunked_body(wire.creds, when, seed, chunks)


def test_truncated_aws_chunked_body(wire, store):
    chunks = [content(64 * KiB, "c1"), content(64 * KiB, "c2"), content(100, "c3")]
    path = object_path(REF, "cut-streamed")
    head, body = streaming_request(wire, path, chunks)
    ends = []  # where each chunk (header, data, CRLF) ends
    for c in chunks:
        ends.append((ends[-1] if ends else 0) + s3raw.aws_chunked_length([len(c)]) - s3raw.aws_chunked_length([]))
    first_data = s3raw.aws_chunked_length([len(chunks[0])]) - s3raw.aws_chunked_length([]) - len(chunks[0]) - 2
    # Inside a chunk header, inside chunk data, at each chunk boundary (the last one: before the
    # final zero-length chunk), inside the final chunk: every one leaves the object absent.
    cuts = [10, first_data + 100, ends[0], ends[1], ends[2], len(body) - 1]
    assert body[ends[2]:].startswith(b"0;chunk-signature=")
    for cut in cuts:
        wire.send_and_close(head + body[:cut])
        assert_not_written(wire, store, "cut-streamed")
        assert_error(wire.one(head + body[:cut]), "IncompleteBody", 400)
        assert_not_written(wire, store, "cut-streamed")
    # The same cuts with a Content-Length that matches them: the HTTP body is complete, the
    # aws-chunked stream is not (no final chunk; the decoded length falls short).
    for cut in cuts:
        short_head, short_body = streaming_request(wire, path, chunks, content_length=cut)
        answer = wire.one(short_head + short_body[:cut])
        assert answer.status == 400 and error_code(answer), answer
        assert_not_written(wire, store, "cut-streamed")


def test_content_length_larger_than_body(wire, store):
    body = content(5000, "longer")
    for name, key, make in put_variants(wire, store, body):
        for extra in (1, 100, MiB):
            assert_error(wire.one(make(len(body) + extra, body)), "IncompleteBody", 400)
            assert_not_written(wire, store, key)


def test_content_length_smaller_than_body(wire, store):
    """The server reads Content-Length bytes; the rest is the next request on the connection and
    is not HTTP. With a signed payload or a Content-MD5 of the whole body the short body fails its
    digest; every answer is an error, and nothing is stored."""
    body = content(5000, "shorter")
    expected = {"PUT, signed payload": "XAmzContentSHA256Mismatch", "UploadPart, signed payload":
                "XAmzContentSHA256Mismatch", "PUT, UNSIGNED-PAYLOAD with Content-MD5": "BadDigest"}
    for name, key, make in put_variants(wire, store, body):
        if name not in expected:
            continue  # an unsigned body without a digest is whatever Content-Length says
        for less in (1, 100, 4999):
            data = make(len(body) - less, body)
            received = wire.exchange(data)
            assert received is not None, f"no answer to {name} with Content-Length {len(body) - less}"
            answers, rest = parse_answers(received)
            assert answers and not rest, received[:2000]
            assert_error(answers[0], expected[name], 400)
            for extra in answers[1:]:
                assert_error(extra, "InvalidRequest", 400)
            assert_not_written(wire, store, key)


def write_targets(store):
    """(path, query, key) of a PUT and of an UploadPart; key None: the part of the pending upload."""
    return [(object_path(REF, "rejected"), [], "rejected"),
            (object_path(REF, "pending"), [("partNumber", "3"), ("uploadId", store.upload_id)], None)]


def test_content_md5_mismatch(wire, store):
    body = content(3000, "md5")
    for path, query, key in write_targets(store):
        for payload_hash in (None, s3raw.UNSIGNED_PAYLOAD):
            for md5 in (b64md5(b"other"), b64md5(body[:-1])):
                answer = wire.request("PUT", path, query, body=body, headers={"Content-MD5": md5},
                                      payload_hash=payload_hash)
                assert_error(answer, "BadDigest", 400)
                assert_not_written(wire, store, key)
        for md5 in ("not base64!", base64.b64encode(b"short").decode(), ""):
            answer = wire.request("PUT", path, query, body=body, headers={"Content-MD5": md5})
            assert_error(answer, "InvalidDigest", 400)
            assert_not_written(wire, store, key)


def test_payload_sha256_mismatch(wire, store):
    body = content(3000, "sha")
    for path, query, key in write_targets(store):
        for payload_hash in (s3raw.sha256_hex(b"another body"), s3raw.sha256_hex(body[:-1])):
            answer = wire.request("PUT", path, query, body=body, payload_hash=payload_hash)
            assert_error(answer, "XAmzContentSHA256Mismatch", 400)
            assert_not_written(wire, store, key)
    complete = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"{store.part_etags[1]}\"</ETag>"
                f"</Part><Part><PartNumber>2</PartNumber><ETag>\"{store.part_etags[2]}\"</ETag></Part>"
                "</CompleteMultipartUpload>").encode()
    answer = wire.request("POST", object_path(REF, "pending"), [("uploadId", store.upload_id)], body=complete,
                          payload_hash=s3raw.sha256_hex(b"not this document"))
    assert_error(answer, "XAmzContentSHA256Mismatch", 400)
    delete = b"<Delete><Object><Key>small</Key></Object></Delete>"
    answer = wire.request("POST", f"/{REF}", [("delete", "")], body=delete, headers={"Content-MD5": b64md5(delete)},
                          payload_hash=s3raw.sha256_hex(b"not this document"))
    assert_error(answer, "XAmzContentSHA256Mismatch", 400)
    assert part_numbers(wire, store) == [1, 2]
    assert "small" in list_keys(wire, REF)


# ---- sizes and names --------------------------------------------------------------------------

def test_oversized_header_section(wire, store):
    cases = [
        wire.build("GET", object_path(REF, "small"), headers={"X-Padding": "a" * (17 * KiB)}),
        wire.build("PUT", object_path(REF, "big-headers"), body=b"body",
                   headers={f"X-Pad-{i}": "b" * 1000 for i in range(20)}),
        wire.build("GET", "/" + "k" * (17 * KiB)),
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"c" * (MiB) + b"\r\n\r\n",
    ]
    for data in cases:
        assert_error(wire.one(data), "RequestHeaderSectionTooLarge", 400)
    assert_not_written(wire, store, "big-headers")
    # Just under the limit is a request like any other.
    answer = wire.request("GET", object_path(REF, "small"), headers={"X-Padding": "a" * (14 * KiB)})
    assert answer.status == 200 and answer.body == content(1000, "small")


@pytest.mark.parametrize("name", [
    "ab", "a" * 64, "UpperCase", "under_score", "-leading-dash", "trailing-dash-", ".leading-dot",
    "trailing-dot.", "double..dot", "dash.-dot", "192.168.1.1", "xn--punycode", "bucket-s3alias",
    "sp%20ace", "%C3%A9t%C3%A9"])
def test_invalid_bucket_name(wire, store, name):
    assert_error(wire.request("PUT", f"/{name}"), "InvalidBucketName", 400)


def test_key_too_long(wire, store):
    for key in ["k" * 1025, "é" * 512 + "k", "d/" * 600]:
        assert len(key.encode()) > 1024
        path = object_path(REF, key)
        assert_error(wire.request("PUT", path, body=b"x"), "KeyTooLongError", 400)
        assert_error(wire.request("GET", path), "KeyTooLongError", 400)
        assert_error(wire.request("POST", path, query=[("uploads", "")]), "KeyTooLongError", 400)
    # 1024 bytes is allowed; removed again so that the store is unchanged.
    path = object_path(SCRATCH, "k" * 1024)
    assert wire.request("PUT", path, body=b"x").status == 200
    assert wire.request("DELETE", path).status == 204


def test_entity_too_large_from_headers_alone(wire, store):
    """A PUT announcing more than 5 GiB is refused from its headers: only they are sent."""
    too_large = str(5 * (1 << 30) + 1)
    path = object_path(REF, "too-large")
    part = [("partNumber", "3"), ("uploadId", store.upload_id)]
    for query in ([], part):
        for headers in ({"Expect": "100-continue"}, {}):
            data = wire.build("PUT", path if not query else object_path(REF, "pending"), query,
                              headers=headers, content_length=too_large, payload_hash=s3raw.UNSIGNED_PAYLOAD)
            started = time.monotonic()
            answer = wire.one(data, close_write=False)
            assert_error(answer, "EntityTooLarge", 400)
            assert time.monotonic() - started < ANSWER_TIMEOUT_S
    # aws-chunked: the decoded length is what counts (Expect: a body of 1000 bytes is announced,
    # and the server may read it before answering).
    data, _ = streaming_request(wire, path, [b"x" * 10], content_length=1000,
                                extra={"x-amz-decoded-content-length": too_large, "Expect": "100-continue"})
    assert_error(wire.one(data, close_write=False), "EntityTooLarge", 400)
    assert_not_written(wire, store, "too-large")
    assert_not_written(wire, store, None)


NOT_HTTP = [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),  # a TLS ClientHello's start
    b"\x00" * 64,
    b"GET\r\n\r\n",
    b"GET / HTTP/1.1",  # then the connection half-closes
    b"GET / HTTP/1.1\r\n",  # cut right after a complete line: the parser has consumed it
    b"GET / HTTP/1.1\r\nHost: x\r\n\rX",
    b"GET / HTTP/1.1\r\nHost",
    b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"G\xffT / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/9.9.9\r\nHost: x\r\n\r\n",
    b"GET  HTTP/1.1\r\n\r\n",
    bytes(random.Random(1).randbytes(4096)),
]


@pytest.mark.parametrize("index", range(len(NOT_HTTP)))
def test_not_http(wire, store, index):
    received = wire.exchange(NOT_HTTP[index])
    assert received is not None, f"no answer to {NOT_HTTP[index][:200]!r}"
    answers, rest = parse_answers(received)
    assert len(answers) == 1 and not rest, received
    assert_error(answers[0], "InvalidRequest", 400)


# ---- fuzzing ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Base:
    """A valid request, rebuilt at each use (its signature carries the time)."""
    name: str
    build: object          # () -> bytes
    head: bool = False
    # For a request whose body no signature or digest covers, a mangled body is another valid
    # request: this says whether a 2xx answer to it is right. None: a 2xx must be the original's.
    accepts: object = None
    original: Answer = None


SCRATCH_PUTS = {  # key -> body: the only objects a request that survives mangling may write
    "fuzz/put-signed": content(1500, "fuzz-put-signed"),
    "fuzz/put-md5": content(700, "fuzz-put-md5"),
    "fuzz/put-streamed": content(10000, "fuzz-put-streamed"),
}


def fuzz_bases(wire, store):
    def req(*args, **kwargs):
        return lambda: wire.build(*args, **kwargs)

    def streamed():
        data = SCRATCH_PUTS["fuzz/put-streamed"]
        # Every chunk but the last holds at least 8 KiB, as S3 requires.
        head, body = streaming_request(wire, object_path(SCRATCH, "fuzz/put-streamed"),
                                       [data[:8 * KiB], data[8 * KiB:]])
        return head + body

    def presigned_get():
        path = object_path(REF, "small")
        return wire.build("GET", path, raw_query=presigned(wire, "GET", path, 600, s3raw.utcnow()), sign=False)

    delete_doc = (b"<Delete><Quiet>false</Quiet><Object><Key>fuzz/never-1</Key></Object>"
                  b"<Object><Key>fuzz/never-2</Key></Object></Delete>")
    wrong_complete = (b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                      b"<ETag>\"00000000000000000000000000000000\"</ETag></Part><Part><PartNumber>2</PartNumber>"
                      b"<ETag>\"" + store.part_etags[2].encode() + b"\"</ETag></Part></CompleteMultipartUpload>")
    md5_body = SCRATCH_PUTS["fuzz/put-md5"]
    return [
        Base("ListBuckets", req("GET", "/")),
        Base("ListObjectsV2", req("GET", f"/{REF}", [("list-type", "2"), ("prefix", "d"), ("delimiter", "/")])),
        Base("ListObjects", req("GET", f"/{REF}", [("max-keys", "2"), ("marker", "big")])),
        Base("GetBucketLocation", req("GET", f"/{REF}", [("location", "")])),
        Base("HeadBucket", req("HEAD", f"/{OTHER}"), head=True),
        Base("ListMultipartUploads", req("GET", f"/{REF}", [("uploads", "")])),
        Base("ListParts", req("GET", object_path(REF, "pending"), [("uploadId", store.upload_id)])),
        Base("GetObject", req("GET", object_path(REF, "small"))),
        Base("GetObject range", req("GET", object_path(REF, "chunked"), headers={"Range": "bytes=1048570-1048576"})),
        Base("GetObject nested", req("GET", object_path(REF, "dir/nested key é"))),
        Base("HeadObject", req("HEAD", object_path(REF, "big")), head=True),
        Base("GetObject presigned", presigned_get),
        Base("PutObject signed", req("PUT", object_path(SCRATCH, "fuzz/put-signed"),
                                     body=SCRATCH_PUTS["fuzz/put-signed"])),
        Base("PutObject Content-MD5", req("PUT", object_path(SCRATCH, "fuzz/put-md5"), body=md5_body,
                                          headers={"Content-MD5": b64md5(md5_body)},
                                          payload_hash=s3raw.UNSIGNED_PAYLOAD)),
        Base("PutObject aws-chunked", streamed),
        Base("DeleteObject", req("DELETE", object_path(SCRATCH, "fuzz/never-0"))),
        Base("DeleteObjects", req("POST", f"/{SCRATCH}", [("delete", "")], body=delete_doc,
                                  payload_hash=s3raw.UNSIGNED_PAYLOAD), accepts=is_delete_result),
        Base("DeleteObjects Content-MD5", req("POST", f"/{SCRATCH}", [("delete", "")], body=delete_doc,
                                              headers={"Content-MD5": b64md5(delete_doc)})),
        Base("CompleteMultipartUpload wrong ETag", req("POST", object_path(REF, "pending"),
                                                       [("uploadId", store.upload_id)], body=wrong_complete,
                                                       payload_hash=s3raw.UNSIGNED_PAYLOAD)),
        Base("CreateBucket existing", req("PUT", f"/{SCRATCH}", body=(
            b"<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint>"
            b"</CreateBucketConfiguration>"))),
    ]


def is_delete_result(answer):
    """A DeleteObjects answer naming only keys that no fuzzed request writes."""
    try:
        root = s3raw.parse_xml(answer.body)
    except Exception:  # noqa: BLE001
        return False
    keys = [e.findtext("Key") for e in root]
    return answer.status == 200 and root.tag == "DeleteResult" and not set(keys) & set(SCRATCH_PUTS)


INTERESTING = b"\r\n: \t\x00\x7f\xff0123456789%/?&=;,\"<>-"


def mangle(rng, data):
    """1 to 3 edits of `data`, each in the request line, the headers or the body (chosen first,
    so that each gets its share): a byte replaced, a bit flipped, bytes inserted or deleted, or
    (rarely) the request cut short there. Returns the bytes and a description of the edits."""
    data = bytearray(data)
    edits = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        line_end = data.find(b"\r\n")
        head_end = data.find(b"\r\n\r\n")
        regions = [("line", 0, line_end if line_end > 0 else len(data))]
        if 0 <= line_end < head_end:
            regions.append(("headers", line_end, head_end + 4))
        if 0 <= head_end and head_end + 4 < len(data):
            regions.append(("body", head_end + 4, len(data)))
        region, lo, hi = rng.choice(regions)
        if hi <= lo:
            continue
        at = rng.randrange(lo, hi)
        op = rng.choices(["replace", "flip", "insert", "delete", "cut"], weights=[3, 3, 3, 3, 1])[0]
        if op == "replace":
            data[at] = rng.choice(INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
        elif op == "flip":
            data[at] ^= 1 << rng.randrange(8)
        elif op == "insert":
            n = rng.choice([1, 1, 2, 4, 16])
            data[at:at] = bytes(rng.choice(INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
                                for _ in range(n))
        elif op == "delete":
            del data[at:at + rng.choice([1, 1, 2, 3, 8])]
        else:
            del data[at:]
        edits.append(f"{op} {region}@{at}")
        if not data:
            data = bytearray(b"\r\n")
    return bytes(data), edits


def judge(base, sent, received):
    """None when the answers to a mangled request are acceptable, else why not."""
    if received is None:
        return f"no answer within {ANSWER_TIMEOUT_S} s"
    if not received:
        return "the connection closed without an answer"
    # A request the server read as HEAD has a first answer without a body; one it could not
    # parse, or read as another method, has one with a body.
    head = sent.startswith(b"HEAD ")
    answers, rest = parse_answers(received, head_first=head)
    if head and rest:
        head = False
        answers, rest = parse_answers(received)
    if not answers:
        return "the answer is not an HTTP/1.1 response"
    if rest:
        return f"bytes after the last response that parsed: {rest[:200]!r}"
    for i, a in enumerate(answers):
        if a.status >= 500:
            return f"server error {a.status} {error_code(a)}: bad input is the client's fault (4xx)"
        if a.status >= 400:
            if i == 0 and head:
                if a.body:
                    return f"HEAD error {a.status} with a body"
            elif error_code(a) is None:
                return f"error {a.status} without an S3 <Error> document with a Code"
            continue
        if i > 0:
            return f"response {i + 1} on the connection is a {a.status}: only the first request was valid"
        o = base.original
        if base.accepts is not None:
            if not base.accepts(a):
                return f"answered {a.status}, and that is not an answer to any request of this kind"
            continue
        if o.status >= 400:
            return f"answered {a.status}, but the unmangled request is refused ({o.status})"
        if a.status != o.status or (not head and a.body != o.body) or a.headers.get("etag") != o.headers.get("etag"):
            return f"answered {a.status}, but not as the unmangled request ({o.status})"
    return None


def test_fuzzed_requests(wire, store):
    try:
        fuzz(wire, store)
    finally:
        for key in SCRATCH_PUTS:  # so that the last test compares the store, whatever happened
            wire.request("DELETE", object_path(SCRATCH, key))


def fuzz(wire, store):
    bases = fuzz_bases(wire, store)
    for base in bases:
        base.original = wire.one(base.build(), head=base.head)
        assert base.original.status < 500, (base.name, base.original)
        if base.name.startswith("PutObject"):
            assert base.original.status == 200, (base.name, base.original)
    print(f"\nfuzz seed {FUZZ_SEED} (replay: CAIRN_E2E_FUZZ_SEED={FUZZ_SEED}), {FUZZ_COUNT} requests, "
          f"{len(bases)} kinds")
    violations = []
    counts = {"2xx": 0, "error": 0}  # by the first answer
    codes = {}
    started = time.monotonic()
    done = 0
    for i in range(FUZZ_COUNT):
        if time.monotonic() - started > FUZZ_BUDGET_S:
            break
        rng = random.Random(f"{FUZZ_SEED}:{i}")
        base = rng.choice(bases)
        sent, edits = mangle(rng, base.build())
        received = wire.exchange(sent)
        problem = judge(base, sent, received)
        done += 1
        if problem:
            violations.append(f"#{i} ({base.name}; {', '.join(edits)}): {problem}\n  sent:     {sent[:3000]!r}\n"
                              f"  received: {(received or b'')[:3000]!r}")
            if len(violations) >= 20:
                break
            continue
        answers, rest = parse_answers(received, head_first=sent.startswith(b"HEAD "))
        if rest:
            answers, _ = parse_answers(received)
        first = answers[0]
        if first.status < 400:
            counts["2xx"] += 1
        else:
            counts["error"] += 1
            code = error_code(first) or str(first.status)
            codes[code] = codes.get(code, 0) + 1
    elapsed = time.monotonic() - started
    print(f"fuzz: {done} requests in {elapsed:.1f} s; still valid after mangling (2xx): {counts['2xx']}, "
          f"errors: {counts['error']}; codes: {dict(sorted(codes.items(), key=lambda kv: -kv[1]))}")
    replay = f"(seed {FUZZ_SEED}: replay with CAIRN_E2E_FUZZ_SEED={FUZZ_SEED})"
    assert not violations, f"{len(violations)} mangled requests answered wrongly {replay}:\n" + "\n".join(violations)
    assert done == FUZZ_COUNT or elapsed > FUZZ_BUDGET_S

    # What requests that stayed valid could write is exactly what the unmangled ones wrote.
    scratch = list_keys(wire, SCRATCH)
    assert sorted(scratch) == sorted(SCRATCH_PUTS), scratch
    for key, body in SCRATCH_PUTS.items():
        got = wire.request("GET", object_path(SCRATCH, key))
        assert got.status == 200 and got.body == body, f"{key}: {got.status}, {len(got.body)} bytes"


# ---- after all of it --------------------------------------------------------------------------

def test_server_alive_and_nothing_changed(srv, wire, store):
    """Last in the module: the server answers, and the store is as the fixture left it."""
    assert srv.healthy()
    settle(wire)
    after = snapshot(wire)
    assert after == store.snapshot
    expected = sum(math.ceil(size / MiB) for size, _, _ in after["objects"].values())
    expected += sum(math.ceil(int(size) / MiB) for parts in after["uploads"].values() for _, size, _ in parts)
    deadline = time.monotonic() + 15
    while (chunks := metric(wire, "cairn_engine_chunks")) != expected and time.monotonic() < deadline:
        time.sleep(0.1)  # chunks of a refused write may be reclaimed after the answer
    assert chunks == expected, f"{chunks} chunks in the engine; what is stored needs {expected}"
