#!/usr/bin/env python3
"""Writes the signed seeds of fuzz/corpus/fuzz_sigv4/, the seeds of fuzz/corpus/fuzz_http/ and the
encoded chain messages of fuzz/corpus/fuzz_chain_wire/ (the other targets' seeds are plain files).

The fuzz_sigv4 inputs follow the framing described at the top of fuzz/fuzz_sigv4.cc. Requests use
the credentials, clock and region of the published AWS S3 SigV4 examples; the three example
requests are written with their published signatures, which this script also recomputes as a
check. Two streaming uploads are signed here: a request whose small aws-chunked body verifies end
to end, and a bare aws-chunked body chained from the published streaming example's seed signature.

The fuzz_http inputs are HTTP/1.1 requests as they go on the wire (fuzz/fuzz_http.cc), signed with
the same credentials and clock where they carry a signature: one per kind of S3 operation, both
addressing styles, bodies framed by Content-Length, chunked and aws-chunked, conditional and ranged
requests, several requests on one connection, and heads the server refuses.

The fuzz_chain_wire inputs are chain message bodies laid out as src/replication/wire.h describes,
encoded here independently of the C++ codec: every message kind, edge values (empty and binary
strings, 0 and UINT64_MAX, absent values, status codes past one byte), a SyncData with records and
operations, and a few bodies the decoder refuses.

The fuzz_meta_command inputs are metadata commands, queries and replies laid out as
docs/formats/meta.md ("Commands and queries (cluster mode)") describes, encoded here independently
of the C++ codec, against the state fuzz/fuzz_meta_command.cc builds: commands that succeed and
fail, one with an embedded record (whose CRC32C is computed here), queries of every listing, and
replies; plus a few inputs every decoder refuses.
Run from anywhere: python3 fuzz/make_seeds.py
"""
import base64
import hashlib
import hmac
import pathlib

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TIMESTAMP = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
HOST = "examplebucket.s3.amazonaws.com"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
EXAMPLE_SEED_SIGNATURE = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def hmac256(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key():
    key = ("AWS4" + SECRET).encode()
    for part in ("20130524", "us-east-1", "s3", "aws4_request"):
        key = hmac256(key, part)
    return key


def sign(method, path, query, headers, payload_hash):
    """Signature over `headers` (lowercase name -> value, all signed); `query` is canonical already."""
    names = sorted(headers)
    canonical = "\n".join([method, path, query] + [f"{n}:{headers[n]}" for n in names] +
                          ["", ";".join(names), payload_hash])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", TIMESTAMP, SCOPE, hashlib.sha256(canonical.encode()).hexdigest()])
    return hmac.new(signing_key(), to_sign.encode(), hashlib.sha256).hexdigest(), ";".join(names)


def chunk_signature(previous, data):
    to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", TIMESTAMP, SCOPE, previous, EMPTY_SHA256,
                         hashlib.sha256(data).hexdigest()])
    return hmac.new(signing_key(), to_sign.encode(), hashlib.sha256).hexdigest()


def chunked_body(seed, chunks):
    body, previous = b"", seed
    for data in chunks + [b""]:
        previous = chunk_signature(previous, data)
        body += f"{len(data):x};chunk-signature={previous}\r\n".encode() + data + b"\r\n"
    return body


def request(secret, method, path, query, headers, body=b""):
    lines = [secret, method, path, query] + [f"{n}: {v}" for n, v in headers.items()] + [""]
    return "\n".join(lines).encode() + b"\n" + body


def header_auth(method, path, query, headers, payload_hash, published=None):
    signature, signed = sign(method, path, query, headers, payload_hash)
    assert published is None or signature == published, (path, signature)
    headers = dict(headers)
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},"
                                f"SignedHeaders={signed},Signature={signature}")
    return headers


def sigv4_seeds():
    seeds = {}
    get_headers = {"host": HOST, "range": "bytes=0-9", "x-amz-content-sha256": EMPTY_SHA256,
                   "x-amz-date": TIMESTAMP}
    seeds["get_object"] = request(SECRET, "GET", "/test.txt", "", header_auth(
        "GET", "/test.txt", "", get_headers, EMPTY_SHA256,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"))
    list_headers = {"host": HOST, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": TIMESTAMP}
    seeds["list_objects"] = request(SECRET, "GET", "/", "max-keys=2&prefix=J", header_auth(
        "GET", "/", "max-keys=2&prefix=J", list_headers, EMPTY_SHA256,
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"))

    presign_query = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                     "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
                     "X-Amz-SignedHeaders=host")
    signature, _ = sign("GET", "/test.txt", presign_query, {"host": HOST}, "UNSIGNED-PAYLOAD")
    assert signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    seeds["presigned_get"] = request(SECRET, "GET", "/test.txt", presign_query + "&X-Amz-Signature=" + signature,
                                     {"host": HOST})

    data = [b"hello ", b"world"]
    put_headers = {"content-encoding": "aws-chunked", "host": HOST,
                   "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-date": TIMESTAMP,
                   "x-amz-decoded-content-length": str(sum(map(len, data)))}
    signed = header_auth("PUT", "/examplebucket/hello.txt", "", put_headers, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    seed = signed["authorization"].rsplit("Signature=", 1)[1]
    # One data chunk: the only one may be under S3's 8 KiB minimum.
    seeds["streaming_put"] = request(SECRET, "PUT", "/examplebucket/hello.txt", "", signed,
                                     chunked_body(seed, [b"".join(data)]))

    # The published streaming example's headers (its seed signature verifies), without the 66 KB body.
    example_headers = {"content-encoding": "aws-chunked", "content-length": "66824", "host": "s3.amazonaws.com",
                       "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-date": TIMESTAMP,
                       "x-amz-decoded-content-length": "66560", "x-amz-storage-class": "REDUCED_REDUNDANCY"}
    seeds["streaming_example_headers"] = request(SECRET, "PUT", "/examplebucket/chunkObject.txt", "", header_auth(
        "PUT", "/examplebucket/chunkObject.txt", "", example_headers, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        EXAMPLE_SEED_SIGNATURE))
    seeds["anonymous_get"] = request("", "GET", "/examplebucket/a%20b.txt", "versionId=3&x", {"host": HOST})

    # Bare bodies: flags (bit 0: no minimum chunk size, bit 1: expected length), offset of the
    # expected length from the true one (int16 LE), piece sizes.
    body = chunked_body(EXAMPLE_SEED_SIGNATURE, data)
    control = bytes([3, 0, 0, 5, 1, 40])
    seeds["chunked_two_chunks"] = b"aws-chunked\n" + control + body
    seeds["chunked_empty_object"] = b"aws-chunked\n" + bytes([2, 0, 0, 0, 0, 0]) + chunked_body(
        EXAMPLE_SEED_SIGNATURE, [])
    return seeds


def wire(method, target, headers, body=b"", version="HTTP/1.1"):
    """One HTTP request as sent; `headers` is a list of (name, value), names written as given."""
    head = f"{method} {target} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    return head.encode() + body


def title(name):
    return "-".join(part.capitalize() for part in name.split("-"))


def signed_wire(method, raw_path, canonical_path, query, headers, payload_hash, body=b"", unsigned=(),
                published=None):
    """A request signed over every header of `headers` (lowercase names; sent title-cased) plus
    headers sent unsigned. `query` is already canonical (sorted and encoded), so it is also sent as
    is; `canonical_path` is `raw_path` as CanonicalUri spells it."""
    signed = header_auth(method, canonical_path, query, headers, payload_hash, published)
    target = raw_path + ("?" + query if query else "")
    return wire(method, target, [(title(n), v) for n, v in signed.items()] + list(unsigned), body)


def http_seeds():
    seeds = {}
    local = "localhost:9000"  # the domain itself: path style
    empty = {"x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": TIMESTAMP}

    # The published examples, virtual-host style.
    seeds["get_object_example"] = signed_wire(
        "GET", "/test.txt", "/test.txt", "", {"host": HOST, "range": "bytes=0-9", **empty}, EMPTY_SHA256,
        published="f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    seeds["list_objects_example"] = signed_wire(
        "GET", "/", "/", "max-keys=2&prefix=J", {"host": HOST, **empty}, EMPTY_SHA256,
        published="34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    presign_query = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                     "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
                     "X-Amz-SignedHeaders=host")
    signature, _ = sign("GET", "/test.txt", presign_query, {"host": HOST}, "UNSIGNED-PAYLOAD")
    seeds["presigned_get_example"] = wire("GET", "/test.txt?" + presign_query + "&X-Amz-Signature=" + signature,
                                          [("Host", HOST)])

    # Path style, a key with an escaped space and a raw '+', a signed body.
    body = b"Welcome to Cairn.\n"
    put_headers = {"content-length": str(len(body)), "content-type": "text/plain", "host": local,
                   "x-amz-content-sha256": hashlib.sha256(body).hexdigest(), "x-amz-date": TIMESTAMP,
                   "x-amz-meta-colour": "blue"}
    seeds["put_object"] = signed_wire("PUT", "/examplebucket/photos/a%20b+c.txt", "/examplebucket/photos/a%20b%2Bc.txt",
                                      "", put_headers, put_headers["x-amz-content-sha256"], body)

    data = b"hello world"
    stream_headers = {"content-encoding": "aws-chunked", "host": local,
                      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-date": TIMESTAMP,
                      "x-amz-decoded-content-length": str(len(data))}
    signed = header_auth("PUT", "/examplebucket/hello.txt", "", stream_headers, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    stream_body = chunked_body(signed["authorization"].rsplit("Signature=", 1)[1], [data])
    seeds["streaming_put"] = wire("PUT", "/examplebucket/hello.txt",
                                  [(title(n), v) for n, v in signed.items()] +
                                  [("Content-Length", str(len(stream_body)))], stream_body)

    # Transfer-Encoding: chunked, which the signature does not cover.
    seeds["chunked_transfer_put"] = signed_wire(
        "PUT", "/examplebucket/chunked.txt", "/examplebucket/chunked.txt", "",
        {"host": local, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": TIMESTAMP}, "UNSIGNED-PAYLOAD",
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", unsigned=[("Transfer-Encoding", "chunked")])

    copy_headers = {"host": local, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": TIMESTAMP,
                    "x-amz-copy-source": "/sourcebucket/photos/a%20b.txt?versionId=null",
                    "x-amz-copy-source-if-match": '"d41d8cd98f00b204e9800998ecf8427e"',
                    "x-amz-copy-source-if-unmodified-since": "Fri, 24 May 2013 00:00:00 GMT",
                    "x-amz-copy-source-range": "bytes=0-1048575"}
    seeds["upload_part_copy"] = signed_wire("PUT", "/examplebucket/big.bin", "/examplebucket/big.bin",
                                            "partNumber=2&uploadId=VXBsb2FkSWQ", copy_headers, "UNSIGNED-PAYLOAD")

    conditional = {"host": local, "if-match": '"d41d8cd98f00b204e9800998ecf8427e", W/"other"',
                   "if-modified-since": "Thu, 23 May 2013 12:00:00 GMT", "if-none-match": '"other"',
                   "if-unmodified-since": "Sat, 25 May 2013 00:00:00 GMT", "range": "bytes=-500", **empty}
    seeds["conditional_get"] = signed_wire("GET", "/examplebucket/a.txt", "/examplebucket/a.txt", "", conditional,
                                           EMPTY_SHA256)

    delete = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Delete><Quiet>true</Quiet>'
              b'<Object><Key>a.txt</Key></Object><Object><Key>b/c.txt</Key></Object></Delete>')
    delete_headers = {"content-length": str(len(delete)),
                      "content-md5": base64.b64encode(hashlib.md5(delete).digest()).decode(), "host": local,
                      "x-amz-content-sha256": hashlib.sha256(delete).hexdigest(), "x-amz-date": TIMESTAMP}
    seeds["delete_objects"] = signed_wire("POST", "/examplebucket", "/examplebucket", "delete=", delete_headers,
                                          delete_headers["x-amz-content-sha256"], delete)

    seeds["create_multipart_upload"] = signed_wire("POST", "/examplebucket/big.bin", "/examplebucket/big.bin",
                                                   "uploads=", {"host": local, **empty}, EMPTY_SHA256)

    # Anonymous requests: the server refuses them after authentication, but they are parsed first.
    seeds["pipelined"] = (wire("HEAD", "/examplebucket/a.txt", [("Host", local)]) +
                          wire("GET", "/?list-type=2&prefix=a%2Fb&delimiter=%2F",
                               [("Host", "examplebucket.localhost:9000")]) +
                          wire("DELETE", "/examplebucket/a.txt?uploadId=x", [("Host", local), ("Connection", "close")]) +
                          wire("GET", "/never-read", [("Host", local)]))
    seeds["unimplemented_policy"] = wire("PUT", "/examplebucket?policy", [("Host", local), ("Content-Length", "2")],
                                         b"{}")
    seeds["ipv6_host_odd_key"] = wire("GET", "/examplebucket/..//a%2Fb/%E2%9C%93?versionId=null",
                                      [("Host", "[::1]:9000"), ("Range", "bytes=5-"), ("Range", "bytes=0-1")])
    seeds["absolute_form"] = wire("GET", "http://examplebucket.s3.amazonaws.com/test.txt", [("Host", HOST)])
    seeds["http10_no_host"] = wire("GET", "/examplebucket/a.txt", [("If-None-Match", "*")], version="HTTP/1.0")
    seeds["obs_fold"] = wire("GET", "/examplebucket/a.txt", [("Host", local), ("X-Amz-Meta-Note", "one\r\n two")])
    seeds["header_too_large"] = wire("GET", "/examplebucket/a.txt",
                                     [("Host", local), ("X-Amz-Meta-Big", "x" * (17 * 1024))])
    # Over 16 KiB, but only 8000 bytes after a long request line: Beast accepts it when the head
    # arrives in one read and refuses it when it arrives in pieces (kMaxAcceptedHead in fuzz_http.cc).
    seeds["long_request_line"] = wire("GET", "/examplebucket/" + "k" * 9000,
                                      [("Host", local), ("X-Amz-Meta-Pad", "p" * 7950)])
    return seeds


# ---- fuzz_chain_wire: src/replication/wire.h --------------------------------------------------

U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
STATUS_OK, STATUS_NOT_FOUND, STATUS_BUSY, STATUS_NO_SUCH_BUCKET = 0, 2, 8, 600  # common/error_codes.h


def u8(v):
    return v.to_bytes(1, "little")


def u16(v):
    return v.to_bytes(2, "little")


def u32(v):
    return v.to_bytes(4, "little")


def u64(v):
    return v.to_bytes(8, "little")


def string(b):
    return u32(len(b)) + b


def optional(b):
    return u8(0) if b is None else u8(1) + string(b)


def status(code, message=b""):
    return u16(code) + string(message)


def record(value, seq):
    return optional(value) + u64(seq)


def write_result(seq, result, stamp=0):
    return u64(seq) + string(result) + u64(stamp)


def op_ids(ids):
    return u32(len(ids)) + b"".join(u64(i) for i in ids)


def mutations(pairs):
    """`pairs`: [(key, value or None)], in the order they apply."""
    return u32(len(pairs)) + b"".join(string(k) + optional(v) for k, v in pairs)


def store_state(records, ops, last_seq, stamp=0):
    """`records`: {key: (value or None, seq)}, `ops`: {op id: (seq, result[, stamp])}; written in key
    order."""
    out = u32(len(records)) + b"".join(string(k) + record(*records[k]) for k in sorted(records))
    out += u32(len(ops)) + b"".join(u64(op) + write_result(*ops[op]) for op in sorted(ops))
    return out + u64(last_seq) + u64(stamp)


def message(tag, fields):
    return u8(5) + u8(tag) + fields


def chain_wire_seeds():
    binary = b"\x00k\xff\x01\x00"
    snapshot = store_state(
        {b"a": (b"1", 1), b"b/\x00": (None, 2), b"\x80": (b"", 3), b"photos/2024/cat.jpg": (b"\x00" * 40, 4)},
        {1: (1, b"0", 1700000000000), 2: (2, b"1", 1700000000001), U64_MAX: (4, b"\x00result", 1700000000002)},
        4, 1700000000002)
    seeds = {
        "update": message(0, u32(1) + u64(3) + u64(17) + u64(12) + u64(0x500000001) +
                          mutations([(b"key", b"value")]) + string(b"0") + u8(0) + u64(1700000000000) +
                          op_ids([5, 9]) + u32(1) + string(b"deleted/key")),
        "update_delete_edges": message(0, u32(U32_MAX) + u64(U64_MAX) + u64(U64_MAX) + u64(0) + u64(U64_MAX) +
                                       mutations([(binary, None), (b"a", b""), (binary, b"x")]) + string(binary) + u8(0) +
                                       u64(U64_MAX) + op_ids([U64_MAX, 0]) + u32(2) + string(binary) + string(b"")),
        "update_empty": message(0, u32(1) + u64(3) + u64(18) + u64(12) + u64(7) + mutations([]) + string(b"?") + u8(0) +
                                u64(0) + op_ids([]) + u32(0)),
        "ack": message(1, u32(1) + u64(3) + u64(17) + u64(19)),
        "commit": message(2, u32(1) + u64(3) + u64(16)),
        "stale_chain": message(3, u32(1) + u64(0)),
        "client_write": message(4, u64(77) + u32(1) + u64(3) + u64(0x500000002) + string(b"P\x01\x00\x00\x00kv") +
                                u8(0) + u32(0) + u64(1700000000000)),
        "client_write_reply_busy": message(5, u64(77) + u64(0x500000002) + status(STATUS_BUSY, b"not the head") +
                                           write_result(0, b"") + u64(3)),
        "client_write_reply_ok": message(5, u64(78) + u64(9) + status(STATUS_OK) + write_result(18, b"1", 1700000000000) +
                                         u64(3)),
        "client_read": message(6, u64(79) + u32(1) + u64(3) + string(binary)),
        "client_read_reply": message(7, u64(79) + status(STATUS_OK) + record(b"v" * 100, 12) + u64(3)),
        "client_read_reply_tombstone": message(7, u64(80) + status(STATUS_NOT_FOUND, binary) + record(None, 13) +
                                               u64(3)),
        "sync_request": message(8, u32(1) + u64(4)),
        "sync_data": message(9, u32(1) + u64(4) + snapshot),
        "sync_data_empty": message(9, u32(0) + u64(0) + store_state({}, {}, 0)),
        "version_query": message(10, u32(1) + u64(3) + u64(5) + string(b"key")),
        "version_reply": message(11, u32(1) + u64(3) + u64(5) + status(STATUS_NO_SUCH_BUCKET, b"x") + u64(U64_MAX)),
        "update_blob": message(0, u32(2) + u64(3) + u64(19) + u64(12) + u64(8) +
                               mutations([(b"\xff\xffblob/c1", u64(3) + u32(0x12345678) + u64(1700000000003))]) + string(b"") +
                               u8(1) + string(b"c1") + string(b"abc") + u32(0x12345678) + u64(1700000000003) + op_ids([]) +
                               u32(0)),
        "client_write_blob": message(4, u64(82) + u32(2) + u64(3) + u64(9) + string(b"") + u8(1) + string(b"c2") +
                                     string(b"\x00" * 64) + u32(1) + u32(2) + string(b"c0") + string(binary) + u64(0)),
        "blob_read": message(14, u64(83) + u32(2) + u64(3) + string(b"c2") + u64(0) + u64(64)),
        "blob_read_reply": message(15, u64(83) + status(STATUS_OK) + string(b"\x00" * 64) + u64(3)),
        "client_query": message(12, u64(81) + u32(0) + u64(3) + string(binary)),
        "client_query_reply": message(13, u64(81) + status(STATUS_OK) + string(b"=" + binary) + u64(3)),
    }
    # Refused: a truncated body, trailing bytes, an unknown tag, and a record count past the end.
    seeds["refused_truncated"] = seeds["sync_data"][:-3]
    seeds["refused_trailing"] = seeds["ack"] + b"\x00"
    seeds["refused_tag"] = message(16, u32(1) + u64(3))
    seeds["refused_count"] = message(9, u32(1) + u64(4) + u32(U32_MAX) + u32(0) + u64(0) + u64(0))
    return seeds


# ---- fuzz_meta_command: src/meta/meta_commands.h ------------------------------------------------

META_VERSION = 1


def crc32c(data):
    """CRC-32C (Castagnoli), bitwise: the seeds are short."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def user_value(name, canonical_id, created_ms):
    """A user record as meta/format.h encodes it under "I/" name (format version 3)."""
    value = b"I" + u8(3) + varint(len(canonical_id)) + canonical_id + u64(created_ms)
    return value + u32(crc32c(b"I/" + name + value))


def meta(tag, fields):
    return u8(META_VERSION) + u8(tag) + fields


def meta_acl(owner, grants):
    """`grants`: [(grantee type, grantee, permission)]."""
    return string(owner) + u32(len(grants)) + b"".join(u8(t) + string(g) + u8(p) for t, g, p in grants)


def meta_command_seeds():
    all_users = b"http://acs.amazonaws.com/groups/global/AllUsers"
    seeds = {
        "create_user": meta(0x0B, string(b"bob") + string(user_value(b"bob", b"id-b", 5))),
        "create_user_exists": meta(0x0B, string(b"alice") + string(user_value(b"alice", b"id", 1))),
        "delete_bucket_expected": meta(0x02, string(b"empty") + u8(1) + string(b"o") + u64(2)),
        "delete_bucket_not_empty": meta(0x02, string(b"b") + u8(0)),
        "set_object_acl": meta(0x05, string(b"b") + string(b"dir/k") +
                               meta_acl(b"o", [(1, b"o", 5), (2, all_users, 1)]) + u8(1) + string(b"e") + u64(0)),
        "delete_object": meta(0x06, string(b"b") + string(b"dir/\x00x")),
        "complete_upload": meta(0x09, string(b"b") + string(b"m") + string(b"u") + u32(1) + u32(1) + string(b'"p"') +
                                string(b"etag-1") + u64(99) + u8(0) + u8(0)),
        "complete_upload_if_none_match": meta(0x09, string(b"b") + string(b"m") + string(b"u") + u32(1) + u32(1) +
                                              string(b"p") + string(b"e") + u64(U64_MAX) + u8(1) + string(b"*") +
                                              u8(1)),
        "abort_upload": meta(0x0A, string(b"b") + string(b"m") + string(b"u")),
        "delete_user": meta(0x0C, string(b"alice")),
        "set_access_key_enabled": meta(0x0E, string(b"AKIA") + u8(0)),
        "query_get_object": meta(0x43, string(b"b") + string(b"dir/k")),
        "query_list_objects": meta(0x44, string(b"b") + string(b"dir/") + string(b"/") + string(b"") + u32(1)),
        "query_list_buckets": meta(0x42, b""),
        "query_get_upload": meta(0x45, string(b"b") + string(b"m") + string(b"u")),
        "query_list_parts": meta(0x47, string(b"b") + string(b"m") + string(b"u") + u32(0) + u32(U32_MAX)),
        "query_list_uploads": meta(0x48, string(b"b") + string(b"") + string(b"") + string(b"") + u32(1000)),
        "query_list_chunk_refs": meta(0x4B, string(b"") + u32(1)),
        "query_stats": meta(0x4C, b""),
        "reply_not_found": meta(0x43, u16(STATUS_NOT_FOUND) + string(b"object k")),
        "reply_stats": meta(0x4C, u16(STATUS_OK) + string(b"") + u32(2) + string(b"buckets") + u64(2) +
                            string(b"objects") + u64(1)),
        "reply_update_bucket": meta(0x03, u16(STATUS_OK) + string(b"") + u8(0)),
    }
    # Refused: a truncated command, trailing bytes, an unknown tag and version, a bool of 2.
    seeds["refused_truncated"] = seeds["complete_upload"][:-1]
    seeds["refused_trailing"] = seeds["query_stats"] + b"\x00"
    seeds["refused_tag"] = meta(0x10, b"")
    seeds["refused_version"] = u8(2) + seeds["query_stats"][1:]
    seeds["refused_bool"] = meta(0x0E, string(b"AKIA") + u8(2))
    return seeds


def main():
    for target, seeds in (("fuzz_sigv4", sigv4_seeds()), ("fuzz_http", http_seeds()),
                          ("fuzz_chain_wire", chain_wire_seeds()), ("fuzz_meta_command", meta_command_seeds())):
        out = CORPUS / target
        out.mkdir(parents=True, exist_ok=True)
        for name, content in seeds.items():
            (out / name).write_bytes(content)


if __name__ == "__main__":
    main()
