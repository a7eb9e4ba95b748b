#!/usr/bin/env python3
"""Writes the signed seeds of fuzz/corpus/fuzz_sigv4/ (the other seeds are plain files).

The inputs follow the framing described at the top of fuzz/fuzz_sigv4.cc. Requests use the
credentials, clock and region of the published AWS S3 SigV4 examples; the three example requests
are written with their published signatures, which this script also recomputes as a check. Two
streaming uploads are signed here: a request whose small aws-chunked body verifies end to end, and
a bare aws-chunked body chained from the published streaming example's seed signature.
Run from anywhere: python3 fuzz/make_seeds.py
"""
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
OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "fuzz_sigv4"


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


def main():
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

    OUT.mkdir(parents=True, exist_ok=True)
    for name, content in seeds.items():
        (OUT / name).write_bytes(content)


if __name__ == "__main__":
    main()
