"""Hand-signed HTTP requests against `cairn server`: what boto3 cannot be made to send.

Signing at a chosen time (skew, expired presigned URLs), wrong scope or payload hash, aws-chunked
(STREAMING-AWS4-HMAC-SHA256-PAYLOAD) bodies, virtual-host addressing through the Host header,
the exact XML of errors and of encoding-type=url listings, and bytes that are not HTTP.
"""

import base64
import datetime
import hashlib
import http.client
import random
import re
import xml.etree.ElementTree as ET

import pytest

import s3raw
from conftest import VHOST_DOMAIN
from s3raw import object_path

MINUTE = datetime.timedelta(minutes=1)


def md5_etag(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


def assert_error(response, code, status):
    assert response.status == status, response
    fields = s3raw.error_fields(response.body)
    assert fields["Code"] == code, response
    return fields


def test_health_needs_no_auth(raw):
    assert raw.send("GET", "/health").status == 200


def test_error_document(raw, bucket):
    response = raw.request("GET", object_path(bucket, "missing"))
    assert response.headers["content-type"] == "application/xml"
    fields = assert_error(response, "NoSuchKey", 404)
    assert fields["Message"]
    assert fields["Resource"] == f"/{bucket}/missing"
    assert fields["RequestId"]
    assert fields["RequestId"] == response.headers["x-amz-request-id"]
    missing_bucket = raw.request("GET", object_path("no-such-bucket-e2e", "k"))
    assert_error(missing_bucket, "NoSuchBucket", 404)


def test_head_error_has_no_body(raw, bucket):
    response = raw.request("HEAD", object_path(bucket, "missing"))
    assert response.status == 404
    assert response.body == b""


def test_head_has_length_but_no_body(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"12345")
    response = raw.request("HEAD", object_path(bucket, "k"))
    assert response.status == 200
    assert response.headers["content-length"] == "5"
    assert response.headers["etag"] == md5_etag(b"12345")
    assert response.body == b""


def test_default_content_type(raw, bucket):
    # S3 stores binary/octet-stream when a PUT has no Content-Type.
    assert raw.request("PUT", object_path(bucket, "untyped"), body=b"bytes").status == 200
    response = raw.request("GET", object_path(bucket, "untyped"))
    assert response.status == 200
    assert response.headers["content-type"] == "binary/octet-stream"


def test_anonymous_requests_are_denied(raw, bucket):
    for method, path in [("GET", "/"), ("GET", f"/{bucket}"), ("GET", object_path(bucket, "k")),
                         ("PUT", object_path(bucket, "k")), ("DELETE", f"/{bucket}")]:
        assert_error(raw.send(method, path, headers={"Content-Length": "0"}), "AccessDenied", 403)


def test_wrong_secret(raw, bucket):
    creds = s3raw.Credentials(raw.creds.access_key, "not-the-secret", raw.creds.region)
    assert_error(raw.request("GET", f"/{bucket}", creds=creds), "SignatureDoesNotMatch", 403)


def test_unknown_access_key(raw, bucket):
    creds = s3raw.Credentials("AKIAIOSFODNN7EXAMPLE", raw.creds.secret_key, raw.creds.region)
    assert_error(raw.request("GET", f"/{bucket}", creds=creds), "InvalidAccessKeyId", 403)


@pytest.mark.parametrize("offset", [-20 * MINUTE, 20 * MINUTE])
def test_clock_skew(raw, bucket, offset):
    # S3 accepts requests within 15 minutes of its clock.
    when = s3raw.utcnow() + offset
    assert_error(raw.request("GET", f"/{bucket}", when=when), "RequestTimeTooSkewed", 403)


def test_small_skew_is_accepted(raw, bucket):
    assert raw.request("GET", f"/{bucket}", when=s3raw.utcnow() - 5 * MINUTE).status == 200


def test_wrong_region_in_scope(raw, bucket):
    assert_error(raw.request("GET", f"/{bucket}", region="eu-west-1"), "AuthorizationHeaderMalformed", 400)


def test_payload_hash_mismatch(raw, bucket):
    response = raw.request("PUT", object_path(bucket, "k"), body=b"the body",
                           payload_hash=s3raw.sha256_hex(b"another body"))
    assert_error(response, "XAmzContentSHA256Mismatch", 400)
    assert raw.request("GET", object_path(bucket, "k")).status == 404


def test_unsigned_payload(raw, bucket):
    response = raw.request("PUT", object_path(bucket, "k"), body=b"unsigned body", payload_hash=s3raw.UNSIGNED_PAYLOAD)
    assert response.status == 200
    assert response.headers["etag"] == md5_etag(b"unsigned body")
    assert raw.request("GET", object_path(bucket, "k")).body == b"unsigned body"


def test_content_md5_mismatch(raw, bucket):
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    response = raw.request("PUT", object_path(bucket, "k"), body=b"body", headers={"Content-MD5": wrong})
    assert_error(response, "BadDigest", 400)


# ---- STREAMING-AWS4-HMAC-SHA256-PAYLOAD ----

def streaming_chunks():
    rng = random.Random(7)
    return [rng.randbytes(64 * 1024), rng.randbytes(64 * 1024), rng.randbytes(1000)]


def test_streaming_signed_upload(raw, bucket):
    chunks = streaming_chunks()
    data = b"".join(chunks)
    path = object_path(bucket, "streamed object")
    response = raw.put_streaming(path, chunks, headers={"Content-Type": "text/x-streamed"})
    assert response.status == 200, response
    assert response.headers["etag"] == md5_etag(data)
    got = raw.request("GET", path)
    assert got.status == 200
    assert got.body == data
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["content-type"] == "text/x-streamed"
    # aws-chunked is the transfer framing, not a property of the object.
    assert "aws-chunked" not in got.headers.get("content-encoding", "")


def test_streaming_single_small_chunk(raw, bucket):
    path = object_path(bucket, "tiny")
    assert raw.put_streaming(path, [b"tiny body"]).status == 200
    assert raw.request("GET", path).body == b"tiny body"


def test_streaming_bad_chunk_signature(raw, bucket):
    path = object_path(bucket, "tampered")
    assert_error(raw.put_streaming(path, streaming_chunks(), tamper_chunk=1), "SignatureDoesNotMatch", 403)
    assert raw.request("GET", path).status == 404


# ---- presigned URLs ----

def presigned_get(raw, path, expires, when=None):
    return raw.send("GET", path, raw_query=s3raw.presign(raw.creds, "GET", raw.host_header, path, expires, when))


def test_presigned_get(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    response = presigned_get(raw, object_path(bucket, "p"), 60)
    assert (response.status, response.body) == (200, b"presigned")


def test_presigned_expired(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    response = presigned_get(raw, object_path(bucket, "p"), 60, when=s3raw.utcnow() - 120 * MINUTE)
    fields = assert_error(response, "AccessDenied", 403)
    assert fields["Message"] == "Request has expired"


def test_presigned_tampered(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    path = object_path(bucket, "p")
    query = s3raw.presign(raw.creds, "GET", raw.host_header, path, 60)
    signature = re.search(r"X-Amz-Signature=([0-9a-f]{64})", query).group(1)
    tampered = query.replace(signature, signature[:-1] + ("0" if signature[-1] != "0" else "1"))
    assert_error(raw.send("GET", path, raw_query=tampered), "SignatureDoesNotMatch", 403)
    other_key = raw.send("GET", object_path(bucket, "other"), raw_query=query)
    assert_error(other_key, "SignatureDoesNotMatch", 403)


def test_presigned_expiry_over_a_week(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    response = presigned_get(raw, object_path(bucket, "p"), 604801)
    assert_error(response, "AuthorizationQueryParametersError", 400)


# ---- malformed requests ----

def test_put_without_content_length(raw, bucket):
    path = object_path(bucket, "k")
    headers = {"Host": raw.host_header}
    s3raw.sign_headers(raw.creds, "PUT", path, [], headers, s3raw.EMPTY_SHA256)
    assert_error(raw.send("PUT", path, headers=headers), "MissingContentLength", 411)


def test_garbage_is_refused_and_server_lives(raw):
    for garbage in [b"NOT HTTP AT ALL\r\n\r\n", b"GET\r\n\r\n", b"\x00\xff\x10garbage" * 100 + b"\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"]:
        reply = raw.send_bytes(garbage)
        assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply[:200]
    assert raw.send("GET", "/health").status == 200


def test_malformed_xml_bodies(raw, s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    response = raw.request("POST", object_path(bucket, "mp"), query=[("uploadId", upload_id)], body=b"<Complete")
    assert_error(response, "MalformedXML", 400)
    body = b"<Delete><Object><Key>k</Key></Object"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    response = raw.request("POST", f"/{bucket}", query=[("delete", "")], body=body, headers={"Content-MD5": md5})
    assert_error(response, "MalformedXML", 400)


def test_keep_alive(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"again")
    conn = http.client.HTTPConnection(raw.host, raw.port, timeout=s3raw.REQUEST_TIMEOUT_S)
    try:
        for _ in range(5):
            headers = {"Host": raw.host_header}
            s3raw.sign_headers(raw.creds, "GET", object_path(bucket, "k"), [], headers, s3raw.EMPTY_SHA256)
            conn.request("GET", object_path(bucket, "k"), headers=headers)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"again")
    finally:
        conn.close()


# ---- virtual-host addressing ----

def test_virtual_host_addressing(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir/file name", Body=b"virtual")
    vhost = s3raw.RawClient(raw.host, raw.port, raw.creds)
    host = f"{bucket}.{VHOST_DOMAIN}:{raw.port}"
    path = "/" + s3raw.uri_encode("dir/file name", keep_slash=True)
    got = vhost.request("GET", path, headers={"Host": host})
    assert (got.status, got.body) == (200, b"virtual")
    listed = vhost.request("GET", "/", query=[("list-type", "2")], headers={"Host": host})
    assert listed.status == 200
    root = s3raw.parse_xml(listed.body)
    assert root.findtext("Name") == bucket
    assert [c.findtext("Key") for c in root.findall("Contents")] == ["dir/file name"]
    put = vhost.request("PUT", "/new", body=b"put through vhost", headers={"Host": host})
    assert put.status == 200
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"put through vhost"


# ---- XML of listings ----

def test_listing_xml_namespace(raw, bucket):
    root = ET.fromstring(raw.request("GET", "/").body)
    assert root.tag == s3raw.S3_NS + "ListAllMyBucketsResult"
    root = ET.fromstring(raw.request("GET", f"/{bucket}", query=[("list-type", "2")]).body)
    assert root.tag == s3raw.S3_NS + "ListBucketResult"


def test_listing_encoding_type_url(raw, s3, bucket):
    for key in ["sp ace+plus%pct/é", "a&b<c>", "x*y~z"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    v2 = s3raw.parse_xml(raw.request("GET", f"/{bucket}", query=[("list-type", "2"), ("encoding-type", "url")]).body)
    assert v2.findtext("EncodingType") == "url"
    assert [c.findtext("Key") for c in v2.findall("Contents")] == ["a%26b%3Cc%3E", "sp+ace%2Bplus%25pct/%C3%A9",
                                                                   "x*y%7Ez"]
    v1 = s3raw.parse_xml(raw.request("GET", f"/{bucket}", query=[
        ("prefix", "sp ace"), ("delimiter", "/"), ("encoding-type", "url")]).body)
    assert v1.findtext("EncodingType") == "url"
    assert v1.findtext("Prefix") == "sp+ace"
    assert v1.findtext("Delimiter") == "/"
    assert [p.findtext("Prefix") for p in v1.findall("CommonPrefixes")] == ["sp+ace%2Bplus%25pct/"]
    plain = s3raw.parse_xml(raw.request("GET", f"/{bucket}", query=[("list-type", "2")]).body)
    assert plain.find("EncodingType") is None
    assert [c.findtext("Key") for c in plain.findall("Contents")] == ["a&b<c>", "sp ace+plus%pct/é", "x*y~z"]
