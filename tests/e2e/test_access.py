"""Users, access keys, ACLs, bucket policies, CORS and browser POST uploads (issue 4), end to end.

Users and keys are made with the real `cairn admin` CLI against the server under test; boto3
clients then act as those users, as the root user, and as an anonymous browser (botocore's
UNSIGNED). Each test states what Amazon S3 documents (API reference of the operation; User Guide:
"Access control list (ACL) overview", "Bucket policy examples", "Policy condition keys", "CORS",
"Browser-based uploads using POST"); every refusal is also checked for its effect: nothing was
stored or changed, as the root user sees it.

Run:
  /usr/bin/python3 -B -m pytest -q -p no:cacheprovider --rootdir=tests/e2e tests/e2e/test_access.py \
      --cairn-bin build/debug/src/cairn
"""

import base64
import collections
import hashlib
import http.client
import json
import os
import re
import subprocess
import urllib.parse
import uuid

import pytest
from botocore.exceptions import ClientError

import s3raw
import server as harness
from conftest import make_client, s3_error, start_server, status_of, unique_bucket_name

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
CANNED = ["private", "public-read", "public-read-write", "authenticated-read", "bucket-owner-read",
          "bucket-owner-full-control"]
CLI_TIMEOUT_S = 30


# ---- helpers ----

def denied():
    """AccessDenied, 403 (a HEAD has no body: its code is "403")."""
    return s3_error("AccessDenied", 403)


def md5_etag(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


def can(call):
    """True when `call` succeeds, False when it is refused with 403 (AccessDenied, or "403" for a
    HEAD); any other failure is raised."""
    try:
        call()
        return True
    except ClientError as e:
        code = e.response["Error"].get("Code")
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 403 and code in ("AccessDenied", "403"):
            return False
        raise


def exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise


def read(client, bucket, key):
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys_of(client, bucket, **kwargs):
    return [c["Key"] for c in client.list_objects_v2(Bucket=bucket, **kwargs).get("Contents", [])]


def grants_of(acl):
    """The grants of a GetBucketAcl/GetObjectAcl answer as sorted (type, id or uri, permission)."""
    out = []
    for g in acl["Grants"]:
        grantee = g["Grantee"]
        who = grantee.get("ID") if grantee["Type"] == "CanonicalUser" else grantee.get("URI")
        out.append((grantee["Type"], who, g["Permission"]))
    return sorted(out)


def user_grant(user_or_id, permission):
    return ("CanonicalUser", getattr(user_or_id, "id", user_or_id), permission)


def group_grant(uri, permission):
    return ("Group", uri, permission)


def canned_grants(canned, owner, bucket_owner, on_bucket):
    """The grants S3 documents for a canned ACL ("Canned ACL" in the ACL overview)."""
    grants = [user_grant(owner, "FULL_CONTROL")]
    if canned == "public-read":
        grants.append(group_grant(ALL_USERS, "READ"))
    elif canned == "public-read-write":
        grants += [group_grant(ALL_USERS, "READ"), group_grant(ALL_USERS, "WRITE")]
    elif canned == "authenticated-read":
        grants.append(group_grant(AUTH_USERS, "READ"))
    elif canned in ("bucket-owner-read", "bucket-owner-full-control") and not on_bucket and \
            getattr(bucket_owner, "id", bucket_owner) != getattr(owner, "id", owner):
        grants.append(user_grant(bucket_owner, "READ" if canned == "bucket-owner-read" else "FULL_CONTROL"))
    return sorted(grants)


def http_request(url_or_srv, method, path=None, body=None, headers=None):
    """One request with http.client (no redirects followed): (status, headers lower-case, body)."""
    if path is None:
        parsed = urllib.parse.urlsplit(url_or_srv)
        host, port = parsed.hostname, parsed.port
        path = parsed.path + ("?" + parsed.query if parsed.query else "")
    else:
        host, port = url_or_srv.host, url_or_srv.port
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def error_code(body):
    return s3raw.error_fields(body)["Code"]


def policy_doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def arn(bucket, key_pattern=None):
    return f"arn:aws:s3:::{bucket}" + (f"/{key_pattern}" if key_pattern is not None else "")


def iam_user(name):
    return {"AWS": f"arn:aws:iam::123456789012:user/{name}"}


# ---- `cairn admin` ----

class Admin:
    """Runs `cairn admin ...` against a server, with the root credentials in the environment."""

    def __init__(self, binary, srv):
        self.binary = os.path.abspath(binary)
        self.srv = srv

    def env(self):
        env = dict(os.environ)
        env.update(CAIRN_ENDPOINT=self.srv.endpoint, CAIRN_ROOT_ACCESS_KEY=self.srv.access_key,
                   CAIRN_ROOT_SECRET_KEY=self.srv.secret_key)
        return env

    def run(self, *args, env=None):
        return subprocess.run([self.binary, "admin", *args], env=env or self.env(), capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)

    def ok(self, *args):
        proc = self.run(*args)
        assert proc.returncode == 0, f"cairn admin {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"
        return proc

    def json(self, *args):
        return json.loads(self.ok(*args, "--json").stdout)

    def fails(self, *args, code=None):
        """Expects exit status 1 and an error on stderr (naming `code` when given)."""
        proc = self.run(*args)
        assert proc.returncode == 1, f"cairn admin {' '.join(args)}: exit {proc.returncode}, expected 1\n" \
                                     f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        assert proc.stderr.startswith("cairn admin: "), proc.stderr
        if code:
            assert code in proc.stderr, proc.stderr
        return proc

    def user(self, name):
        """Creates user `name` with one access key; returns a User."""
        made = self.json("user", "create", name)
        key = self.json("key", "create", name)
        return User(name, made["canonical_id"], key["access_key"], key["secret_key"])


class User:
    def __init__(self, name, canonical_id, access_key, secret_key):
        self.name = name
        self.id = canonical_id
        self.access_key = access_key
        self.secret_key = secret_key

    def client(self, srv, **config):
        return make_client(srv, self.access_key, self.secret_key, **config)

    def raw(self, srv):
        return s3raw.RawClient(srv.host, srv.port, s3raw.Credentials(self.access_key, self.secret_key, srv.region))


@pytest.fixture(scope="session")
def admin(pytestconfig, cairn):
    return Admin(pytestconfig.getoption("--cairn-bin"), cairn)


Actor = collections.namedtuple("Actor", "user s3")


@pytest.fixture(scope="session")
def people(admin, cairn):
    """alice, bob and carol (users made with `cairn admin`), each with a client."""
    out = {}
    for name in ("alice", "bob", "carol"):
        user = admin.user(name)
        out[name] = Actor(user, user.client(cairn))
    return out


@pytest.fixture(scope="session")
def alice(people):
    return people["alice"]


@pytest.fixture(scope="session")
def bob(people):
    return people["bob"]


@pytest.fixture(scope="session")
def carol(people):
    return people["carol"]


@pytest.fixture(scope="session")
def anon(cairn):
    return make_client(cairn, signed=False)


@pytest.fixture(scope="session")
def root_id(s3):
    return s3.list_buckets()["Owner"]["ID"]


def new_bucket(client, prefix="acc", **kwargs):
    name = unique_bucket_name(prefix)
    assert status_of(client.create_bucket(Bucket=name, **kwargs)) == 200
    return name


# ---- the `cairn admin` CLI ----

ISO8601 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_cli_users_and_keys(admin, cairn):
    name = "cli-" + uuid.uuid4().hex[:8]
    made = admin.json("user", "create", name)
    assert set(made) == {"name", "canonical_id", "created"}, made
    assert made["name"] == name
    assert re.fullmatch(r"[0-9a-f]{64}", made["canonical_id"]), made
    assert ISO8601.match(made["created"]), made
    admin.fails("user", "create", name, code="AlreadyExists")

    listed = admin.json("user", "list")
    assert set(listed) == {"users"}
    mine = [u for u in listed["users"] if u["name"] == name]
    assert mine == [made]
    plain = admin.ok("user", "list").stdout
    assert any(line.split()[:2] == [name, made["canonical_id"]] for line in plain.splitlines()), plain

    key = admin.json("key", "create", name)
    assert set(key) == {"access_key", "secret_key", "user", "enabled"}, key
    assert key["user"] == name and key["enabled"] is True
    assert re.fullmatch(r"[A-Z0-9]{16,32}", key["access_key"]), key
    assert len(key["secret_key"]) >= 30, key
    text = admin.ok("key", "create", name).stdout
    second = re.search(r"access key: (\S+)", text).group(1)
    assert re.search(r"secret key: (\S+)", text), text

    keys = admin.json("key", "list", name)
    assert set(keys) == {"keys"}
    assert sorted(k["access_key"] for k in keys["keys"]) == sorted([key["access_key"], second])
    for k in keys["keys"]:
        assert set(k) == {"access_key", "user", "enabled", "created"}, k  # never the secret
        assert k["user"] == name and k["enabled"] is True and ISO8601.match(k["created"])
    everyone = admin.json("key", "list")["keys"]
    assert {key["access_key"], second} <= {k["access_key"] for k in everyone}
    assert key["secret_key"] not in admin.ok("key", "list").stdout

    client = make_client(cairn, key["access_key"], key["secret_key"])
    assert status_of(client.list_buckets()) == 200

    disabled = admin.json("key", "disable", key["access_key"])
    assert disabled["access_key"] == key["access_key"] and disabled["enabled"] is False
    assert [k["enabled"] for k in admin.json("key", "list", name)["keys"] if k["access_key"] == key["access_key"]] \
        == [False]
    assert "disabled" in admin.ok("key", "list", name).stdout
    enabled = admin.json("key", "enable", key["access_key"])
    assert enabled["enabled"] is True

    assert admin.ok("key", "delete", second).stdout == ""
    assert [k["access_key"] for k in admin.json("key", "list", name)["keys"]] == [key["access_key"]]
    admin.fails("key", "delete", second)
    admin.fails("key", "disable", second)
    admin.fails("key", "enable", "NOSUCHKEY0000000000X")

    assert admin.ok("user", "delete", name).stdout == ""
    assert name not in [u["name"] for u in admin.json("user", "list")["users"]]
    # Listing the keys of a user who does not exist is an error, not an empty list (a typo shows).
    admin.fails("key", "list", name, code="NotFound")


@pytest.mark.parametrize("bad", ["bad name", "", "a" * 65, "x/y", "caf\u00e9", "root"])
def test_cli_bad_user_names(admin, bad):
    admin.fails("user", "create", bad)
    assert bad not in [u["name"] for u in admin.json("user", "list")["users"]]


def test_cli_unknown_user_and_key(admin):
    admin.fails("key", "create", "nobody-" + uuid.uuid4().hex[:6])
    admin.fails("user", "delete", "nobody-" + uuid.uuid4().hex[:6])
    admin.fails("key", "delete", "NOSUCHKEY0000000000X")
    admin.fails("key", "disable", "NOSUCHKEY0000000000X")


def test_cli_credentials(admin, cairn, alice):
    # Flags instead of the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    proc = admin.run("user", "list", "--json", "--endpoint", cairn.endpoint, "--access-key", cairn.access_key,
                     "--secret-key", cairn.secret_key, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "alice" in [u["name"] for u in json.loads(proc.stdout)["users"]]
    # No credentials at all.
    proc = admin.run("user", "list", env=dict(env, CAIRN_ENDPOINT=cairn.endpoint))
    assert proc.returncode == 1 and "credentials" in proc.stderr, proc
    # A wrong root secret, and a user's (valid) key: the admin API serves the root user only.
    proc = admin.run("user", "list", env=dict(admin.env(), CAIRN_ROOT_SECRET_KEY="x" * 40))
    assert proc.returncode == 1 and "SignatureDoesNotMatch" in proc.stderr, proc
    proc = admin.run("user", "create", "sneaky", env=dict(admin.env(), CAIRN_ROOT_ACCESS_KEY=alice.user.access_key,
                                                          CAIRN_ROOT_SECRET_KEY=alice.user.secret_key))
    assert proc.returncode == 1 and "AccessDenied" in proc.stderr, proc
    assert "sneaky" not in [u["name"] for u in admin.json("user", "list")["users"]]
    # Nothing listens there.
    proc = admin.run("user", "list", "--endpoint", "http://127.0.0.1:1")
    assert proc.returncode == 1, proc


# ---- ownership and isolation ----

def test_bucket_owner_and_list_isolation(s3, alice, bob, anon, root_id):
    a = new_bucket(alice.s3)
    b = new_bucket(bob.s3)
    for actor, mine, theirs in ((alice, a, b), (bob, b, a)):
        listed = actor.s3.list_buckets()
        assert listed["Owner"] == {"ID": actor.user.id, "DisplayName": actor.user.name}
        names = [x["Name"] for x in listed["Buckets"]]
        assert mine in names and theirs not in names
        acl = actor.s3.get_bucket_acl(Bucket=mine)
        assert acl["Owner"] == {"ID": actor.user.id, "DisplayName": actor.user.name}
        assert acl["Grants"] == [{"Grantee": {"Type": "CanonicalUser", "ID": actor.user.id,
                                              "DisplayName": actor.user.name}, "Permission": "FULL_CONTROL"}]
    everything = s3.list_buckets()
    assert everything["Owner"] == {"ID": root_id, "DisplayName": "root"}
    assert {a, b} <= {x["Name"] for x in everything["Buckets"]}
    with denied():
        anon.list_buckets()
    # The root user sees the real owner.
    assert s3.get_bucket_acl(Bucket=a)["Owner"]["ID"] == alice.user.id
    # Objects: owner of each object is its writer.
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x")
    assert s3.get_object_acl(Bucket=a, Key="k")["Owner"] == {"ID": alice.user.id, "DisplayName": "alice"}
    listed = alice.s3.list_objects(Bucket=a)
    assert listed["Contents"][0]["Owner"]["ID"] == alice.user.id


def test_other_users_bucket_is_denied(s3, alice, bob, anon):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"secret")
    b = new_bucket(bob.s3)
    policy = policy_doc({"Effect": "Allow", "Principal": iam_user("bob"), "Action": "s3:GetObject",
                         "Resource": arn(a, "*")})
    cors = {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}
    for who, c in (("bob", bob.s3), ("anonymous", anon)):
        calls = {
            "ListObjectsV2": lambda: c.list_objects_v2(Bucket=a),
            "ListObjects": lambda: c.list_objects(Bucket=a),
            "HeadBucket": lambda: c.head_bucket(Bucket=a),
            "GetObject": lambda: c.get_object(Bucket=a, Key="k"),
            "GetObject missing key": lambda: c.get_object(Bucket=a, Key="missing"),
            "HeadObject": lambda: c.head_object(Bucket=a, Key="k"),
            "PutObject": lambda: c.put_object(Bucket=a, Key="new", Body=b"x"),
            "PutObject overwrite": lambda: c.put_object(Bucket=a, Key="k", Body=b"overwritten"),
            "DeleteObject": lambda: c.delete_object(Bucket=a, Key="k"),
            "CreateMultipartUpload": lambda: c.create_multipart_upload(Bucket=a, Key="mp"),
            "ListMultipartUploads": lambda: c.list_multipart_uploads(Bucket=a),
            "GetBucketAcl": lambda: c.get_bucket_acl(Bucket=a),
            "PutBucketAcl": lambda: c.put_bucket_acl(Bucket=a, ACL="public-read-write"),
            "GetObjectAcl": lambda: c.get_object_acl(Bucket=a, Key="k"),
            "PutObjectAcl": lambda: c.put_object_acl(Bucket=a, Key="k", ACL="public-read"),
            "GetBucketPolicy": lambda: c.get_bucket_policy(Bucket=a),
            "PutBucketPolicy": lambda: c.put_bucket_policy(Bucket=a, Policy=policy),
            "DeleteBucketPolicy": lambda: c.delete_bucket_policy(Bucket=a),
            "GetBucketCors": lambda: c.get_bucket_cors(Bucket=a),
            "PutBucketCors": lambda: c.put_bucket_cors(Bucket=a, CORSConfiguration=cors),
            "DeleteBucketCors": lambda: c.delete_bucket_cors(Bucket=a),
            "GetBucketLocation": lambda: c.get_bucket_location(Bucket=a),
            "GetBucketVersioning": lambda: c.get_bucket_versioning(Bucket=a),
            "DeleteBucket": lambda: c.delete_bucket(Bucket=a),
        }
        if who == "bob":
            calls["CopyObject from it"] = lambda: c.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": a,
                                                                                                   "Key": "k"})
        allowed = sorted(op for op, call in calls.items() if can(call))
        assert allowed == [], f"{who} may do these on another user's private bucket: {allowed}"
        # DeleteObjects: S3 authorizes each key as a DeleteObject and reports AccessDenied per key;
        # a refusal of the whole request (403) tells the client no less. Either way nothing goes.
        try:
            result = c.delete_objects(Bucket=a, Delete={"Objects": [{"Key": "k"}]})
        except ClientError as e:
            assert (e.response["Error"]["Code"], status_of(e.response)) == ("AccessDenied", 403), e.response
        else:
            assert [(e["Key"], e["Code"]) for e in result.get("Errors", [])] == [("k", "AccessDenied")], result
            assert not result.get("Deleted")
    # Nothing changed.
    assert read(s3, a, "k") == b"secret"
    assert keys_of(s3, a) == ["k"]
    assert not exists(s3, b, "copy")
    assert s3.list_multipart_uploads(Bucket=a).get("Uploads", []) == []
    assert grants_of(s3.get_bucket_acl(Bucket=a)) == [user_grant(alice.user, "FULL_CONTROL")]
    assert grants_of(s3.get_object_acl(Bucket=a, Key="k")) == [user_grant(alice.user, "FULL_CONTROL")]
    with s3_error("NoSuchBucketPolicy", 404):
        s3.get_bucket_policy(Bucket=a)
    with s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=a)


def test_create_bucket_name_conflicts(s3, alice, bob, anon):
    a = new_bucket(alice.s3)
    with s3_error("BucketAlreadyExists", 409):
        bob.s3.create_bucket(Bucket=a)
    with s3_error("BucketAlreadyOwnedByYou", 409):
        alice.s3.create_bucket(Bucket=a)
    with s3_error("BucketAlreadyExists", 409):
        s3.create_bucket(Bucket=a)
    with denied():
        anon.create_bucket(Bucket=unique_bucket_name("anon"))
    assert s3.get_bucket_acl(Bucket=a)["Owner"]["ID"] == alice.user.id
    # The root user may delete any bucket; then the name is free for another user.
    s3.delete_bucket(Bucket=a)
    assert status_of(bob.s3.create_bucket(Bucket=a)) == 200
    assert s3.get_bucket_acl(Bucket=a)["Owner"]["ID"] == bob.user.id


# ---- canned ACLs ----

# What bob (another user) and an anonymous client may do on a bucket with each canned ACL:
# (bob lists, anonymous lists, bob writes, anonymous writes).
BUCKET_CANNED_EFFECT = {
    "private": (False, False, False, False),
    "public-read": (True, True, False, False),
    "public-read-write": (True, True, True, True),
    "authenticated-read": (True, False, False, False),
    # S3 ignores these two on a bucket: the bucket is private.
    "bucket-owner-read": (False, False, False, False),
    "bucket-owner-full-control": (False, False, False, False),
}


@pytest.mark.parametrize("how", ["CreateBucket", "PutBucketAcl"])
@pytest.mark.parametrize("canned", CANNED)
def test_canned_acl_on_bucket(s3, alice, bob, anon, canned, how):
    if how == "CreateBucket":
        a = new_bucket(alice.s3, ACL=canned)
    else:
        a = new_bucket(alice.s3)
        assert status_of(alice.s3.put_bucket_acl(Bucket=a, ACL=canned)) == 200
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x")
    expected = canned_grants(canned, alice.user, alice.user, on_bucket=True)
    assert grants_of(alice.s3.get_bucket_acl(Bucket=a)) == expected
    assert alice.s3.get_bucket_acl(Bucket=a)["Owner"]["ID"] == alice.user.id

    got = (can(lambda: bob.s3.list_objects_v2(Bucket=a)), can(lambda: anon.list_objects_v2(Bucket=a)),
           can(lambda: bob.s3.put_object(Bucket=a, Key="by-bob", Body=b"b")),
           can(lambda: anon.put_object(Bucket=a, Key="by-anon", Body=b"n")))
    assert got == BUCKET_CANNED_EFFECT[canned]
    assert exists(s3, a, "by-bob") == got[2] and exists(s3, a, "by-anon") == got[3]
    # HeadBucket follows listing.
    assert can(lambda: bob.s3.head_bucket(Bucket=a)) == got[0]
    # The owner keeps everything; nobody else may read or change the bucket's ACL.
    assert "k" in keys_of(alice.s3, a)
    assert alice.s3.put_object(Bucket=a, Key="k2", Body=b"y")
    for c in (bob.s3, anon):
        assert not can(lambda: c.get_bucket_acl(Bucket=a))
        assert not can(lambda: c.put_bucket_acl(Bucket=a, ACL="private"))
    assert grants_of(s3.get_bucket_acl(Bucket=a)) == expected
    # Bucket ACLs say nothing about objects: alice's private object stays unreadable to others.
    assert not can(lambda: bob.s3.get_object(Bucket=a, Key="k"))
    assert not can(lambda: anon.get_object(Bucket=a, Key="k"))
    if got[2]:
        # WRITE on a bucket lets one delete any object in it (S3: "create, overwrite and delete
        # any object").
        assert status_of(bob.s3.delete_object(Bucket=a, Key="k")) == 204
        assert not exists(s3, a, "k")


# (bob reads, anonymous reads) of alice's object in alice's private bucket.
OBJECT_CANNED_EFFECT = {
    "private": (False, False),
    "public-read": (True, True),
    "public-read-write": (True, True),
    "authenticated-read": (True, False),
    # The bucket owner is the object owner: nothing is added.
    "bucket-owner-read": (False, False),
    "bucket-owner-full-control": (False, False),
}


@pytest.mark.parametrize("how", ["PutObject", "PutObjectAcl"])
@pytest.mark.parametrize("canned", CANNED)
def test_canned_acl_on_object(s3, alice, bob, anon, canned, how):
    a = new_bucket(alice.s3)
    if how == "PutObject":
        alice.s3.put_object(Bucket=a, Key="k", Body=b"data", ACL=canned)
    else:
        alice.s3.put_object(Bucket=a, Key="k", Body=b"data")
        assert status_of(alice.s3.put_object_acl(Bucket=a, Key="k", ACL=canned)) == 200
    expected = canned_grants(canned, alice.user, alice.user, on_bucket=False)
    acl = alice.s3.get_object_acl(Bucket=a, Key="k")
    assert grants_of(acl) == expected
    assert acl["Owner"]["ID"] == alice.user.id
    got = (can(lambda: bob.s3.get_object(Bucket=a, Key="k")), can(lambda: anon.get_object(Bucket=a, Key="k")))
    assert got == OBJECT_CANNED_EFFECT[canned]
    assert can(lambda: bob.s3.head_object(Bucket=a, Key="k")) == got[0]
    if got[1]:
        assert read(anon, a, "k") == b"data"
    # Object ACLs say nothing about the bucket: nobody else may list or write it.
    for c in (bob.s3, anon):
        assert not can(lambda: c.list_objects_v2(Bucket=a))
        assert not can(lambda: c.put_object(Bucket=a, Key="k", Body=b"overwritten"))
        assert not can(lambda: c.delete_object(Bucket=a, Key="k"))
        assert not can(lambda: c.get_object_acl(Bucket=a, Key="k"))
        assert not can(lambda: c.put_object_acl(Bucket=a, Key="k", ACL="public-read-write"))
    assert read(s3, a, "k") == b"data"
    assert grants_of(s3.get_object_acl(Bucket=a, Key="k")) == expected
    assert read(alice.s3, a, "k") == b"data"


@pytest.mark.parametrize("setup", ["public-read-write", "grant-write"])
def test_bucket_owner_canned_acls_on_other_users_objects(s3, alice, bob, anon, setup):
    if setup == "public-read-write":
        a = new_bucket(alice.s3, ACL="public-read-write")
    else:
        a = new_bucket(alice.s3)
        alice.s3.put_bucket_acl(Bucket=a, GrantFullControl=f'id="{alice.user.id}"', GrantWrite=f'id="{bob.user.id}"')
        assert not can(lambda: bob.s3.list_objects_v2(Bucket=a))  # WRITE only
    for canned in ("private", "bucket-owner-read", "bucket-owner-full-control"):
        bob.s3.put_object(Bucket=a, Key=canned, Body=canned.encode(), ACL=canned)
        acl = s3.get_object_acl(Bucket=a, Key=canned)
        assert acl["Owner"] == {"ID": bob.user.id, "DisplayName": "bob"}
        assert grants_of(acl) == canned_grants(canned, bob.user, alice.user, on_bucket=False)
        # bob owns it: reads it and its ACL.
        assert read(bob.s3, a, canned) == canned.encode()
        assert can(lambda: bob.s3.get_object_acl(Bucket=a, Key=canned))
    # The bucket owner does not own bob's objects (ObjectWriter ownership).
    effect = {k: (can(lambda: alice.s3.get_object(Bucket=a, Key=k)),
                  can(lambda: alice.s3.get_object_acl(Bucket=a, Key=k)))
              for k in ("private", "bucket-owner-read", "bucket-owner-full-control")}
    assert effect == {"private": (False, False), "bucket-owner-read": (True, False),
                      "bucket-owner-full-control": (True, True)}
    # Only FULL_CONTROL lets alice change the ACL.
    assert not can(lambda: alice.s3.put_object_acl(Bucket=a, Key="bucket-owner-read", ACL="public-read"))
    assert not can(lambda: alice.s3.put_object_acl(Bucket=a, Key="private", ACL="public-read"))
    assert not can(lambda: anon.get_object(Bucket=a, Key="bucket-owner-read"))
    assert status_of(alice.s3.put_object_acl(Bucket=a, Key="bucket-owner-full-control", ACL="public-read")) == 200
    assert read(anon, a, "bucket-owner-full-control") == b"bucket-owner-full-control"
    # The ACL keeps its owner (bob) when the bucket owner rewrites it.
    assert s3.get_object_acl(Bucket=a, Key="bucket-owner-full-control")["Owner"]["ID"] == bob.user.id
    # The bucket owner may still delete any object in its bucket.
    assert status_of(alice.s3.delete_object(Bucket=a, Key="private")) == 204
    assert not exists(s3, a, "private")


# ---- explicit grants ----

def test_grant_headers_on_bucket(s3, alice, bob, carol, anon):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x")
    alice.s3.put_bucket_acl(Bucket=a, GrantFullControl=f'id="{alice.user.id}"', GrantRead=f'id="{bob.user.id}"',
                            GrantReadACP=f'id="{carol.user.id}"')
    acl = alice.s3.get_bucket_acl(Bucket=a)
    assert grants_of(acl) == sorted([user_grant(alice.user, "FULL_CONTROL"), user_grant(bob.user, "READ"),
                                     user_grant(carol.user, "READ_ACP")])
    names = {g["Grantee"]["ID"]: g["Grantee"].get("DisplayName") for g in acl["Grants"]}
    assert names == {alice.user.id: "alice", bob.user.id: "bob", carol.user.id: "carol"}
    assert keys_of(bob.s3, a) == ["k"]
    assert not can(lambda: bob.s3.put_object(Bucket=a, Key="b", Body=b"b"))
    assert not can(lambda: bob.s3.get_bucket_acl(Bucket=a))
    assert not can(lambda: carol.s3.list_objects_v2(Bucket=a))
    assert grants_of(carol.s3.get_bucket_acl(Bucket=a)) == grants_of(acl)
    assert not can(lambda: carol.s3.put_bucket_acl(Bucket=a, ACL="public-read"))
    assert not can(lambda: anon.list_objects_v2(Bucket=a))

    # WRITE, WRITE_ACP; several grantees in one header.
    alice.s3.put_bucket_acl(Bucket=a, GrantFullControl=f'id="{alice.user.id}"',
                            GrantWrite=f'id="{bob.user.id}", id="{carol.user.id}"',
                            GrantWriteACP=f'id="{carol.user.id}"')
    assert grants_of(s3.get_bucket_acl(Bucket=a)) == sorted([
        user_grant(alice.user, "FULL_CONTROL"), user_grant(bob.user, "WRITE"), user_grant(carol.user, "WRITE"),
        user_grant(carol.user, "WRITE_ACP")])
    assert status_of(bob.s3.put_object(Bucket=a, Key="b", Body=b"b")) == 200
    assert not can(lambda: bob.s3.list_objects_v2(Bucket=a))
    assert not can(lambda: carol.s3.get_bucket_acl(Bucket=a))
    # carol, with WRITE_ACP, rewrites the ACL (an AccessControlPolicy body) to read the bucket.
    carol.s3.put_bucket_acl(Bucket=a, AccessControlPolicy={
        "Owner": {"ID": alice.user.id},
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": alice.user.id}, "Permission": "FULL_CONTROL"},
                   {"Grantee": {"Type": "CanonicalUser", "ID": carol.user.id}, "Permission": "READ"}]})
    assert sorted(keys_of(carol.s3, a)) == ["b", "k"]
    assert not can(lambda: bob.s3.put_object(Bucket=a, Key="b2", Body=b"b"))

    # Group grants.
    alice.s3.put_bucket_acl(Bucket=a, GrantFullControl=f'id="{alice.user.id}"', GrantRead=f'uri="{AUTH_USERS}"')
    assert grants_of(s3.get_bucket_acl(Bucket=a)) == sorted([user_grant(alice.user, "FULL_CONTROL"),
                                                           group_grant(AUTH_USERS, "READ")])
    assert can(lambda: carol.s3.list_objects_v2(Bucket=a))
    assert not can(lambda: anon.list_objects_v2(Bucket=a))
    alice.s3.put_bucket_acl(Bucket=a, GrantFullControl=f'id="{alice.user.id}"', GrantRead=f'uri="{ALL_USERS}"',
                            GrantWrite=f'uri="{ALL_USERS}"')
    assert can(lambda: anon.list_objects_v2(Bucket=a))
    assert status_of(anon.put_object(Bucket=a, Key="anon", Body=b"n")) == 200
    assert exists(s3, a, "anon")

    # Grants at creation time.
    c = new_bucket(alice.s3, GrantFullControl=f'id="{alice.user.id}"', GrantRead=f'id="{bob.user.id}"')
    assert grants_of(s3.get_bucket_acl(Bucket=c)) == sorted([user_grant(alice.user, "FULL_CONTROL"),
                                                           user_grant(bob.user, "READ")])
    assert can(lambda: bob.s3.list_objects_v2(Bucket=c))


def test_access_control_policy_body(s3, alice, bob, carol, anon):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x")
    policy = {
        "Owner": {"ID": alice.user.id, "DisplayName": "ignored"},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": alice.user.id}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": bob.user.id}, "Permission": "READ"},
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ_ACP"},
            {"Grantee": {"Type": "Group", "URI": AUTH_USERS}, "Permission": "WRITE"},
        ]}
    assert status_of(alice.s3.put_bucket_acl(Bucket=a, AccessControlPolicy=policy)) == 200
    acl = alice.s3.get_bucket_acl(Bucket=a)
    assert acl["Owner"] == {"ID": alice.user.id, "DisplayName": "alice"}
    assert grants_of(acl) == sorted([user_grant(alice.user, "FULL_CONTROL"), user_grant(bob.user, "READ"),
                                     group_grant(ALL_USERS, "READ_ACP"), group_grant(AUTH_USERS, "WRITE")])
    assert keys_of(bob.s3, a) == ["k"]
    assert can(lambda: anon.get_bucket_acl(Bucket=a))
    assert status_of(carol.s3.put_object(Bucket=a, Key="c", Body=b"c")) == 200
    assert not can(lambda: anon.put_object(Bucket=a, Key="n", Body=b"n"))

    # On an object.
    assert status_of(alice.s3.put_object_acl(Bucket=a, Key="k", AccessControlPolicy={
        "Owner": {"ID": alice.user.id},
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": carol.user.id}, "Permission": "READ"}]})) == 200
    assert grants_of(s3.get_object_acl(Bucket=a, Key="k")) == [user_grant(carol.user, "READ")]
    assert read(carol.s3, a, "k") == b"x"
    assert not can(lambda: bob.s3.get_object(Bucket=a, Key="k"))
    # The owner keeps READ_ACP and WRITE_ACP without a grant.
    assert grants_of(alice.s3.get_object_acl(Bucket=a, Key="k")) == [user_grant(carol.user, "READ")]
    alice.s3.put_object_acl(Bucket=a, Key="k", ACL="private")
    assert not can(lambda: carol.s3.get_object(Bucket=a, Key="k"))

    # An empty AccessControlList is valid: no grants at all.
    alice.s3.put_object_acl(Bucket=a, Key="k", AccessControlPolicy={"Owner": {"ID": alice.user.id}, "Grants": []})
    assert s3.get_object_acl(Bucket=a, Key="k").get("Grants", []) == []


def test_grant_headers_on_object(s3, alice, bob, carol, anon):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x", GrantRead=f'id="{bob.user.id}"',
                        GrantFullControl=f'id="{alice.user.id}"')
    assert grants_of(alice.s3.get_object_acl(Bucket=a, Key="k")) == sorted([user_grant(alice.user, "FULL_CONTROL"),
                                                                           user_grant(bob.user, "READ")])
    assert read(bob.s3, a, "k") == b"x"
    assert not can(lambda: carol.s3.get_object(Bucket=a, Key="k"))
    assert not can(lambda: bob.s3.get_object_acl(Bucket=a, Key="k"))

    alice.s3.put_object_acl(Bucket=a, Key="k", GrantReadACP=f'id="{carol.user.id}"',
                            GrantWriteACP=f'id="{bob.user.id}"')
    assert grants_of(s3.get_object_acl(Bucket=a, Key="k")) == sorted([user_grant(carol.user, "READ_ACP"),
                                                                     user_grant(bob.user, "WRITE_ACP")])
    assert not can(lambda: carol.s3.get_object(Bucket=a, Key="k"))
    assert grants_of(carol.s3.get_object_acl(Bucket=a, Key="k")) == sorted([user_grant(carol.user, "READ_ACP"),
                                                                           user_grant(bob.user, "WRITE_ACP")])
    # bob (WRITE_ACP) may rewrite the ACL; it stays alice's.
    bob.s3.put_object_acl(Bucket=a, Key="k", GrantRead=f'uri="{ALL_USERS}"')
    assert read(anon, a, "k") == b"x"
    acl = s3.get_object_acl(Bucket=a, Key="k")
    assert acl["Owner"]["ID"] == alice.user.id
    assert grants_of(acl) == [group_grant(ALL_USERS, "READ")]


@pytest.mark.parametrize("target", ["bucket", "object"])
def test_grant_errors_change_nothing(s3, alice, bob, target):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x")
    kwargs = {"Bucket": a} if target == "bucket" else {"Bucket": a, "Key": "k"}
    put_acl = alice.s3.put_bucket_acl if target == "bucket" else alice.s3.put_object_acl
    get_acl = s3.get_bucket_acl if target == "bucket" else s3.get_object_acl
    before = grants_of(get_acl(**kwargs))
    unknown = "0" * 64
    with s3_error("InvalidArgument", 400):
        put_acl(GrantRead=f'id="{unknown}"', **kwargs)
    with s3_error("UnresolvableGrantByEmailAddress", 400):
        put_acl(GrantRead='emailAddress="someone@example.com"', **kwargs)
    with s3_error("InvalidArgument", 400):
        put_acl(GrantRead='uri="http://acs.amazonaws.com/groups/global/NoSuchGroup"', **kwargs)
    with s3_error("InvalidRequest", 400):
        put_acl(ACL="public-read", GrantRead=f'id="{bob.user.id}"', **kwargs)
    with s3_error("InvalidArgument", 400):
        put_acl(ACL="no-such-canned-acl", **kwargs)
    owner = {"ID": alice.user.id}
    with s3_error("InvalidArgument", 400):
        put_acl(AccessControlPolicy={"Owner": owner, "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": unknown}, "Permission": "READ"}]}, **kwargs)
    with s3_error("UnresolvableGrantByEmailAddress", 400):
        put_acl(AccessControlPolicy={"Owner": owner, "Grants": [
            {"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "someone@example.com"},
             "Permission": "READ"}]}, **kwargs)
    # The Owner of the document must be the resource's owner.
    with denied():
        put_acl(AccessControlPolicy={"Owner": {"ID": bob.user.id}, "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": bob.user.id}, "Permission": "FULL_CONTROL"}]}, **kwargs)
    assert grants_of(get_acl(**kwargs)) == before
    assert not can(lambda: bob.s3.list_objects_v2(Bucket=a))


def test_grant_errors_on_create_and_put(s3, alice, bob):
    a = new_bucket(alice.s3)
    for name, headers, code in (
            ("unknown id", {"GrantRead": 'id="%s"' % ("0" * 64)}, "InvalidArgument"),
            ("email", {"GrantRead": 'emailAddress="someone@example.com"'}, "UnresolvableGrantByEmailAddress"),
            ("canned and grant", {"ACL": "public-read", "GrantRead": f'id="{bob.user.id}"'}, "InvalidRequest"),
            ("unknown canned", {"ACL": "world-writable"}, "InvalidArgument")):
        with s3_error(code, 400):
            alice.s3.put_object(Bucket=a, Key=name, Body=b"x", **headers)
        assert not exists(s3, a, name), name
        missing = unique_bucket_name("bad")
        with s3_error(code, 400):
            alice.s3.create_bucket(Bucket=missing, **headers)
        with s3_error("404", 404):
            s3.head_bucket(Bucket=missing)
    assert keys_of(s3, a) == []


# ---- bucket policies ----

def test_policy_allows_user_on_prefix(s3, alice, bob, carol, anon):
    a = new_bucket(alice.s3)
    for key in ("pub/a", "pub/deep/b", "priv/c", "carol/d"):
        alice.s3.put_object(Bucket=a, Key=key, Body=key.encode())
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Sid": "BobReadsPub", "Effect": "Allow", "Principal": iam_user("bob"), "Action": "s3:GetObject",
         "Resource": arn(a, "pub/*")},
        {"Effect": "Allow", "Principal": {"CanonicalUser": carol.user.id}, "Action": ["s3:GetObject"],
         "Resource": [arn(a, "carol/*")]}))
    assert read(bob.s3, a, "pub/a") == b"pub/a"
    assert read(bob.s3, a, "pub/deep/b") == b"pub/deep/b"
    assert can(lambda: bob.s3.head_object(Bucket=a, Key="pub/a"))
    assert not can(lambda: bob.s3.get_object(Bucket=a, Key="priv/c"))
    assert not can(lambda: bob.s3.get_object(Bucket=a, Key="carol/d"))
    assert not can(lambda: bob.s3.list_objects_v2(Bucket=a))
    assert not can(lambda: bob.s3.put_object(Bucket=a, Key="pub/new", Body=b"x"))
    assert not can(lambda: bob.s3.get_object_acl(Bucket=a, Key="pub/a"))
    assert read(carol.s3, a, "carol/d") == b"carol/d"
    assert not can(lambda: carol.s3.get_object(Bucket=a, Key="pub/a"))
    assert not can(lambda: anon.get_object(Bucket=a, Key="pub/a"))
    assert not exists(s3, a, "pub/new")


def test_missing_key_needs_list_permission_to_be_reported(s3, alice, bob, anon):
    # S3 (GetObject, HeadObject, "Permissions"): "If the object you request doesn't exist, the
    # error that Amazon S3 returns depends on whether you also have the s3:ListBucket permission.
    # If you have the s3:ListBucket permission on the bucket, Amazon S3 returns an HTTP status
    # code 404 Not Found error. If you don't have the s3:ListBucket permission, Amazon S3 returns
    # an HTTP status code 403 Access Denied error." A policy granting s3:GetObject alone must not
    # let its grantees probe which keys exist.
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="pub/present", Body=b"x")
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(a, "pub/*")}))
    assert read(anon, a, "pub/present") == b"x"
    for c in (bob.s3, anon):
        with denied():
            c.get_object(Bucket=a, Key="pub/missing")
        with s3_error("403", 403):
            c.head_object(Bucket=a, Key="pub/missing")
    # With s3:ListBucket as well, the absence is reported.
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(a, "pub/*")},
        {"Effect": "Allow", "Principal": iam_user("bob"), "Action": "s3:ListBucket", "Resource": arn(a)}))
    with s3_error("NoSuchKey", 404):
        bob.s3.get_object(Bucket=a, Key="pub/missing")
    with denied():
        anon.get_object(Bucket=a, Key="pub/missing")
    # The same through ACLs: READ on the bucket (listing) reports the absence, to its grantees only.
    alice.s3.delete_bucket_policy(Bucket=a)
    alice.s3.put_bucket_acl(Bucket=a, GrantFullControl=f'id="{alice.user.id}"', GrantRead=f'id="{bob.user.id}"')
    with s3_error("NoSuchKey", 404):
        bob.s3.get_object(Bucket=a, Key="missing")
    with denied():
        anon.get_object(Bucket=a, Key="missing")


def test_policy_with_unknown_principal_is_malformed(s3, alice):
    # S3 checks that the principals of a bucket policy exist when the policy is put and answers
    # MalformedPolicy "Invalid principal in policy" otherwise. Accepting the name of a user that
    # does not exist would also give that name's future owner the access.
    a = new_bucket(alice.s3)
    with s3_error("MalformedPolicy", 400):
        alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
            {"Effect": "Allow", "Principal": iam_user("nosuchuser"), "Action": "s3:GetObject",
             "Resource": arn(a, "*")}))
    with s3_error("MalformedPolicy", 400):
        alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
            {"Effect": "Allow", "Principal": {"CanonicalUser": "0" * 64}, "Action": "s3:GetObject",
             "Resource": arn(a, "*")}))
    with s3_error("NoSuchBucketPolicy", 404):
        s3.get_bucket_policy(Bucket=a)


def test_policy_public_read(s3, alice, bob, anon):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="site/index.html", Body=b"<html/>")
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(a, "*")}))
    assert read(anon, a, "site/index.html") == b"<html/>"
    assert read(bob.s3, a, "site/index.html") == b"<html/>"
    assert not can(lambda: anon.list_objects_v2(Bucket=a))
    assert not can(lambda: anon.put_object(Bucket=a, Key="x", Body=b"x"))
    assert not can(lambda: anon.delete_object(Bucket=a, Key="site/index.html"))
    assert exists(s3, a, "site/index.html") and not exists(s3, a, "x")
    # {"AWS": "*"} is everyone as well, for listing here.
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:ListBucket"], "Resource": arn(a)}))
    assert keys_of(anon, a) == ["site/index.html"]
    assert not can(lambda: anon.get_object(Bucket=a, Key="site/index.html"))


def test_policy_deny_beats_acl_and_allow(s3, alice, bob, anon):
    a = new_bucket(alice.s3, ACL="public-read")
    alice.s3.put_object(Bucket=a, Key="secret/x", Body=b"s", ACL="public-read")
    alice.s3.put_object(Bucket=a, Key="open/y", Body=b"o", ACL="public-read")
    alice.s3.put_object(Bucket=a, Key="granted/z", Body=b"g", GrantRead=f'id="{bob.user.id}"')
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(a, "*")},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(a, "secret/*")},
        {"Effect": "Deny", "Principal": iam_user("bob"), "Action": "s3:*", "Resource": [arn(a, "granted/*"), arn(a)]}))
    # Deny beats the object's public-read ACL grant and the policy's own Allow, for the owner too.
    for c in (anon, bob.s3, alice.s3):
        assert not can(lambda: c.get_object(Bucket=a, Key="secret/x"))
        assert read(c, a, "open/y") == b"o"
    # Deny beats bob's explicit ACL grant, and the bucket's public-read for listing.
    assert not can(lambda: bob.s3.get_object(Bucket=a, Key="granted/z"))
    assert not can(lambda: bob.s3.list_objects_v2(Bucket=a))
    assert can(lambda: anon.list_objects_v2(Bucket=a))
    # The root user is above policies.
    assert read(s3, a, "secret/x") == b"s"
    # NotPrincipal: a Deny for everyone but alice.
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Deny", "NotPrincipal": iam_user("alice"), "Action": "s3:GetObject", "Resource": arn(a, "open/*")}))
    assert read(alice.s3, a, "open/y") == b"o"
    assert not can(lambda: bob.s3.get_object(Bucket=a, Key="open/y"))
    assert not can(lambda: anon.get_object(Bucket=a, Key="open/y"))


def test_policy_denies_delete_for_one_user(s3, alice, bob, carol):
    a = new_bucket(alice.s3)
    alice.s3.put_bucket_acl(Bucket=a, GrantFullControl=f'id="{alice.user.id}"',
                            GrantWrite=f'id="{bob.user.id}", id="{carol.user.id}"')
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Sid": "NoDeletesByBob", "Effect": "Deny", "Principal": iam_user("bob"), "Action": "s3:DeleteObject",
         "Resource": arn(a, "*")}))
    bob.s3.put_object(Bucket=a, Key="b1", Body=b"1")
    bob.s3.put_object(Bucket=a, Key="b2", Body=b"2")
    assert status_of(bob.s3.put_object(Bucket=a, Key="b1", Body=b"1 again")) == 200  # overwriting is not deleting
    with denied():
        bob.s3.delete_object(Bucket=a, Key="b1")
    result = bob.s3.delete_objects(Bucket=a, Delete={"Objects": [{"Key": "b1"}, {"Key": "b2"}]})
    assert sorted((e["Key"], e["Code"]) for e in result["Errors"]) == [("b1", "AccessDenied"), ("b2", "AccessDenied")]
    assert sorted(keys_of(s3, a)) == ["b1", "b2"]
    assert status_of(carol.s3.delete_object(Bucket=a, Key="b1")) == 204
    assert status_of(alice.s3.delete_object(Bucket=a, Key="b2")) == 204
    assert keys_of(s3, a) == []


def test_policy_conditions(s3, alice, bob):
    a = new_bucket(alice.s3)
    for key in ("ip-ok/a", "ip-no/b", "tls/c", "home/bob/1", "home/alice/2"):
        alice.s3.put_object(Bucket=a, Key=key, Body=b"x")
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": iam_user("bob"), "Action": "s3:GetObject", "Resource": arn(a, "ip-ok/*"),
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
        {"Effect": "Allow", "Principal": iam_user("bob"), "Action": "s3:GetObject", "Resource": arn(a, "ip-no/*"),
         "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}},
        {"Effect": "Allow", "Principal": iam_user("bob"), "Action": "s3:GetObject", "Resource": arn(a, "tls/*")},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(a, "tls/*"),
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Effect": "Allow", "Principal": iam_user("bob"), "Action": "s3:ListBucket", "Resource": arn(a),
         "Condition": {"StringLike": {"s3:prefix": ["home/bob/*"]}}}))
    assert can(lambda: bob.s3.get_object(Bucket=a, Key="ip-ok/a"))
    assert not can(lambda: bob.s3.get_object(Bucket=a, Key="ip-no/b"))
    # Plain http: the SecureTransport deny applies to everyone but the root user.
    assert not can(lambda: bob.s3.get_object(Bucket=a, Key="tls/c"))
    assert not can(lambda: alice.s3.get_object(Bucket=a, Key="tls/c"))
    assert read(s3, a, "tls/c") == b"x"
    # s3:prefix on ListBucket.
    assert keys_of(bob.s3, a, Prefix="home/bob/") == ["home/bob/1"]
    assert [c["Key"] for c in bob.s3.list_objects(Bucket=a, Prefix="home/bob/")["Contents"]] == ["home/bob/1"]
    assert not can(lambda: bob.s3.list_objects_v2(Bucket=a, Prefix="home/alice/"))
    assert not can(lambda: bob.s3.list_objects_v2(Bucket=a))
    assert not can(lambda: bob.s3.list_objects_v2(Bucket=a, Prefix="home/"))
    # NotIpAddress: a Deny for every address outside 127.0.0.0/8 leaves local requests alone.
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(a, "*")},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": arn(a, "*"),
         "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}))
    assert can(lambda: bob.s3.get_object(Bucket=a, Key="ip-no/b"))


def test_policy_round_trip(s3, alice, bob):
    a = new_bucket(alice.s3)
    with s3_error("NoSuchBucketPolicy", 404):
        alice.s3.get_bucket_policy(Bucket=a)
    first = policy_doc({"Sid": "One", "Effect": "Allow", "Principal": iam_user("bob"), "Action": "s3:GetObject",
                        "Resource": arn(a, "*")})
    assert status_of(alice.s3.put_bucket_policy(Bucket=a, Policy=first)) == 204
    assert json.loads(alice.s3.get_bucket_policy(Bucket=a)["Policy"]) == json.loads(first)
    second = policy_doc({"Sid": "Two", "Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                         "Resource": arn(a)})
    alice.s3.put_bucket_policy(Bucket=a, Policy=second)
    assert json.loads(alice.s3.get_bucket_policy(Bucket=a)["Policy"]) == json.loads(second)
    assert json.loads(s3.get_bucket_policy(Bucket=a)["Policy"]) == json.loads(second)

    # Only the owner (and the root user) manage it.
    for call in (lambda: bob.s3.get_bucket_policy(Bucket=a),
                 lambda: bob.s3.put_bucket_policy(Bucket=a, Policy=first),
                 lambda: bob.s3.delete_bucket_policy(Bucket=a)):
        with denied():
            call()
    assert json.loads(s3.get_bucket_policy(Bucket=a)["Policy"]) == json.loads(second)

    assert status_of(alice.s3.delete_bucket_policy(Bucket=a)) == 204
    with s3_error("NoSuchBucketPolicy", 404):
        alice.s3.get_bucket_policy(Bucket=a)
    assert status_of(alice.s3.delete_bucket_policy(Bucket=a)) == 204  # none: still 204
    with s3_error("NoSuchBucket", 404):
        alice.s3.get_bucket_policy(Bucket=unique_bucket_name("missing"))


def test_bucket_owner_can_always_manage_its_policy(s3, alice):
    # S3 (PutBucketPolicy, DeleteBucketPolicy, GetBucketPolicy): "To ensure that bucket owners
    # don't inadvertently lock themselves out of their own buckets, the root principal in a bucket
    # owner's account can perform GetBucketPolicy, PutBucketPolicy and DeleteBucketPolicy, even if
    # their bucket policy explicitly denies the root principal's access." A Cairn user owns its
    # buckets as an account does.
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x")
    lockout = policy_doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [arn(a), arn(a, "*")]})
    alice.s3.put_bucket_policy(Bucket=a, Policy=lockout)
    assert not can(lambda: alice.s3.get_object(Bucket=a, Key="k"))
    assert not can(lambda: alice.s3.list_objects_v2(Bucket=a))
    assert json.loads(alice.s3.get_bucket_policy(Bucket=a)["Policy"]) == json.loads(lockout)
    assert status_of(alice.s3.delete_bucket_policy(Bucket=a)) == 204
    assert read(alice.s3, a, "k") == b"x"


BAD_POLICIES = {
    "not JSON": lambda b: "{this is not json",
    "empty object": lambda b: "{}",
    "missing Effect": lambda b: policy_doc({"Principal": "*", "Action": "s3:GetObject", "Resource": arn(b, "*")}),
    "bad Effect": lambda b: policy_doc({"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject",
                                        "Resource": arn(b, "*")}),
    "resource of another bucket": lambda b: policy_doc({"Effect": "Allow", "Principal": "*",
                                                        "Action": "s3:GetObject",
                                                        "Resource": arn("some-other-bucket", "*")}),
    "unknown condition operator": lambda b: policy_doc({"Effect": "Allow", "Principal": "*",
                                                        "Action": "s3:GetObject", "Resource": arn(b, "*"),
                                                        "Condition": {"StringSortOf": {"aws:username": "bob"}}}),
    "action outside s3": lambda b: policy_doc({"Effect": "Allow", "Principal": "*", "Action": "ec2:RunInstances",
                                               "Resource": arn(b, "*")}),
    "missing Principal": lambda b: policy_doc({"Effect": "Allow", "Action": "s3:GetObject",
                                               "Resource": arn(b, "*")}),
    "bad CIDR": lambda b: policy_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                      "Resource": arn(b, "*"),
                                      "Condition": {"IpAddress": {"aws:SourceIp": "300.1.2.0/8"}}}),
    "bad Version": lambda b: json.dumps({"Version": "2030-01-01", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(b, "*")}]}),
}


def test_malformed_policies_store_nothing(s3, alice):
    a = new_bucket(alice.s3)
    for name, make in BAD_POLICIES.items():
        with s3_error("MalformedPolicy", 400):
            alice.s3.put_bucket_policy(Bucket=a, Policy=make(a))
        with s3_error("NoSuchBucketPolicy", 404):
            s3.get_bucket_policy(Bucket=a)
    good = policy_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(a, "*")})
    alice.s3.put_bucket_policy(Bucket=a, Policy=good)
    for name, make in BAD_POLICIES.items():
        with s3_error("MalformedPolicy", 400):
            alice.s3.put_bucket_policy(Bucket=a, Policy=make(a))
        assert json.loads(s3.get_bucket_policy(Bucket=a)["Policy"]) == json.loads(good), name
    # Larger than 20 KB.
    huge = policy_doc(*[{"Sid": f"S{i}", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                         "Resource": arn(a, f"{'x' * 100}/{i}/*")} for i in range(200)])
    assert len(huge) > 20 * 1024
    with s3_error("MalformedPolicy", 400):
        alice.s3.put_bucket_policy(Bucket=a, Policy=huge)
    assert json.loads(s3.get_bucket_policy(Bucket=a)["Policy"]) == json.loads(good)


# ---- keys and users take effect at once ----

def test_key_disable_enable_delete(admin, cairn):
    name = "keys-" + uuid.uuid4().hex[:8]
    user = admin.user(name)
    spare = admin.json("key", "create", name)
    c = user.client(cairn)
    c2 = make_client(cairn, spare["access_key"], spare["secret_key"])
    a = new_bucket(c)
    c.put_object(Bucket=a, Key="k", Body=b"x")
    url = c.generate_presigned_url("get_object", Params={"Bucket": a, "Key": "k"}, ExpiresIn=300)
    assert http_request(url, "GET")[0] == 200

    admin.json("key", "disable", user.access_key)
    with s3_error("InvalidAccessKeyId", 403):
        c.list_buckets()
    with s3_error("InvalidAccessKeyId", 403):
        c.put_object(Bucket=a, Key="while-disabled", Body=b"x")
    status, _, body = http_request(url, "GET")
    assert (status, error_code(body)) == (403, "InvalidAccessKeyId")
    assert read(c2, a, "k") == b"x"  # the user's other key still works
    assert not exists(c2, a, "while-disabled")

    admin.json("key", "enable", user.access_key)
    assert read(c, a, "k") == b"x"
    assert http_request(url, "GET")[0] == 200

    admin.ok("key", "delete", user.access_key)
    with s3_error("InvalidAccessKeyId", 403):
        c.list_buckets()
    assert http_request(url, "GET")[0] == 403
    admin.fails("key", "enable", user.access_key)
    assert [b["Name"] for b in c2.list_buckets()["Buckets"]] == [a]


def test_user_delete(admin, cairn, s3, alice):
    name = "gone-" + uuid.uuid4().hex[:8]
    user = admin.user(name)
    c = user.client(cairn)
    b = new_bucket(c)
    c.put_object(Bucket=b, Key="k", Body=b"x")
    # alice grants the user a read of one of her objects.
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="shared", Body=b"s", GrantRead=f'id="{user.id}"')

    proc = admin.fails("user", "delete", name, code="UserOwnsBuckets")
    assert b in proc.stderr, proc.stderr
    assert name in [u["name"] for u in admin.json("user", "list")["users"]]
    assert read(c, b, "k") == b"x"

    c.delete_object(Bucket=b, Key="k")
    c.delete_bucket(Bucket=b)
    admin.ok("user", "delete", name)
    with s3_error("InvalidAccessKeyId", 403):
        c.list_buckets()
    admin.fails("key", "list", name, code="NotFound")
    assert name not in [k["user"] for k in admin.json("key", "list")["keys"]]
    assert name not in [u["name"] for u in admin.json("user", "list")["users"]]
    # The id is unknown from now on: no new grants to it.
    with s3_error("InvalidArgument", 400):
        alice.s3.put_object_acl(Bucket=a, Key="shared", GrantRead=f'id="{user.id}"')
    # A new user of the same name is a new identity, with nothing of the old one's grants.
    again = admin.user(name)
    assert again.id != user.id
    assert not can(lambda: again.client(cairn).get_object(Bucket=a, Key="shared"))


def test_restart_keeps_users_keys_acls_policies_and_cors(pytestconfig):
    srv = start_server(pytestconfig)
    cli = Admin(pytestconfig.getoption("--cairn-bin"), srv)
    owner = cli.user("owner")
    reader = cli.user("reader")
    off = cli.json("key", "create", "reader")
    cli.json("key", "disable", off["access_key"])
    users_before = cli.json("user", "list")
    keys_before = cli.json("key", "list")

    o = owner.client(srv)
    a = new_bucket(o, ACL="public-read")
    o.put_object(Bucket=a, Key="granted", Body=b"g", GrantRead=f'id="{reader.id}"')
    o.put_object(Bucket=a, Key="pub/p", Body=b"p")
    o.put_object(Bucket=a, Key="private", Body=b"q")
    policy = policy_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": arn(a, "pub/*")})
    o.put_bucket_policy(Bucket=a, Policy=policy)
    cors = {"CORSRules": [{"AllowedOrigins": ["https://example.com"], "AllowedMethods": ["GET"],
                           "MaxAgeSeconds": 60}]}
    o.put_bucket_cors(Bucket=a, CORSConfiguration=cors)
    bucket_acl = grants_of(o.get_bucket_acl(Bucket=a))
    object_acl = grants_of(o.get_object_acl(Bucket=a, Key="granted"))

    assert srv.stop() == 0
    srv.start()

    assert cli.json("user", "list") == users_before
    assert cli.json("key", "list") == keys_before
    o = owner.client(srv)
    r = reader.client(srv)
    anon = make_client(srv, signed=False)
    assert sorted(keys_of(o, a)) == ["granted", "private", "pub/p"]
    assert o.list_buckets()["Owner"] == {"ID": owner.id, "DisplayName": "owner"}
    assert grants_of(o.get_bucket_acl(Bucket=a)) == bucket_acl
    assert grants_of(o.get_object_acl(Bucket=a, Key="granted")) == object_acl
    assert json.loads(o.get_bucket_policy(Bucket=a)["Policy"]) == json.loads(policy)
    assert o.get_bucket_cors(Bucket=a)["CORSRules"] == [{"AllowedOrigins": ["https://example.com"],
                                                         "AllowedMethods": ["GET"], "MaxAgeSeconds": 60}]
    assert read(r, a, "granted") == b"g"
    assert not can(lambda: r.get_object(Bucket=a, Key="private"))
    assert read(anon, a, "pub/p") == b"p"
    assert sorted(keys_of(anon, a)) == ["granted", "private", "pub/p"]
    with s3_error("InvalidAccessKeyId", 403):
        make_client(srv, off["access_key"], off["secret_key"]).list_buckets()
    cli.json("key", "enable", off["access_key"])
    assert read(make_client(srv, off["access_key"], off["secret_key"]), a, "granted") == b"g"
    status, headers, _ = http_request(srv, "OPTIONS", f"/{a}/pub/p", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "GET"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://example.com"
    assert srv.stop() == 0


# ---- presigned URLs of users ----

def test_presigned_urls_of_a_user(s3, alice, bob):
    a = new_bucket(alice.s3)
    put = alice.s3.generate_presigned_url("put_object", Params={"Bucket": a, "Key": "p"}, ExpiresIn=300)
    status, headers, _ = http_request(put, "PUT", body=b"presigned body")
    assert status == 200 and headers["etag"] == md5_etag(b"presigned body")
    assert s3.get_object_acl(Bucket=a, Key="p")["Owner"]["ID"] == alice.user.id
    get = alice.s3.generate_presigned_url("get_object", Params={"Bucket": a, "Key": "p"}, ExpiresIn=300)
    status, _, body = http_request(get, "GET")
    assert (status, body) == (200, b"presigned body")

    # bob's presigned URLs for alice's bucket: bob's permissions, so 403.
    for method, op, params in (("GET", "get_object", {"Key": "p"}), ("PUT", "put_object", {"Key": "q"}),
                               ("DELETE", "delete_object", {"Key": "p"}), ("GET", "list_objects_v2", {})):
        url = bob.s3.generate_presigned_url(op, Params={"Bucket": a, **params}, ExpiresIn=300)
        status, _, body = http_request(url, method, body=b"x" if method == "PUT" else None)
        assert (status, error_code(body)) == (403, "AccessDenied"), (op, body)
    assert not exists(s3, a, "q")
    assert read(s3, a, "p") == b"presigned body"

    delete = alice.s3.generate_presigned_url("delete_object", Params={"Bucket": a, "Key": "p"}, ExpiresIn=300)
    assert http_request(delete, "DELETE")[0] == 204
    assert not exists(s3, a, "p")

    # Once bob may read (an object ACL grant), his presigned GET works.
    alice.s3.put_object(Bucket=a, Key="shared", Body=b"s", GrantRead=f'id="{bob.user.id}"')
    url = bob.s3.generate_presigned_url("get_object", Params={"Bucket": a, "Key": "shared"}, ExpiresIn=300)
    assert http_request(url, "GET")[:3:2] == (200, b"s")


# ---- CORS ----

CORS_RULES = [
    {"ID": "app", "AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag", "x-amz-request-id"],
     "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["http://*.example.org"], "AllowedMethods": ["HEAD", "GET"]},
]


def preflight(srv, path, origin, method, request_headers=None):
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if request_headers:
        headers["Access-Control-Request-Headers"] = request_headers
    return http_request(srv, "OPTIONS", path, headers=headers)


def test_cors_configuration_and_preflight(cairn, s3, alice, bob):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x", ACL="public-read")
    with s3_error("NoSuchCORSConfiguration", 404):
        alice.s3.get_bucket_cors(Bucket=a)
    status, _, body = preflight(cairn, f"/{a}/k", "https://app.example.com", "GET")
    assert (status, error_code(body)) == (403, "AccessForbidden")

    assert status_of(alice.s3.put_bucket_cors(Bucket=a, CORSConfiguration={"CORSRules": CORS_RULES})) == 200
    assert alice.s3.get_bucket_cors(Bucket=a)["CORSRules"] == CORS_RULES
    for call in (lambda: bob.s3.get_bucket_cors(Bucket=a),
                 lambda: bob.s3.put_bucket_cors(Bucket=a, CORSConfiguration={"CORSRules": CORS_RULES[1:]}),
                 lambda: bob.s3.delete_bucket_cors(Bucket=a)):
        with denied():
            call()
    assert s3.get_bucket_cors(Bucket=a)["CORSRules"] == CORS_RULES

    # A matching preflight (no credentials: preflights are never signed).
    status, headers, _ = preflight(cairn, f"/{a}/k", "https://app.example.com", "PUT", "Content-Type, X-Amz-Meta-Foo")
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-allow-methods"] == "GET, PUT"
    assert headers["access-control-allow-headers"] == "content-type, x-amz-meta-foo"
    assert headers["access-control-max-age"] == "600"
    assert headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert headers.get("access-control-allow-credentials") == "true"
    assert "origin" in headers.get("vary", "").lower()
    # The bucket itself (no key) answers the same way.
    assert preflight(cairn, f"/{a}", "https://app.example.com", "GET")[0] == 200
    # The wildcard origin of the second rule.
    status, headers, _ = preflight(cairn, f"/{a}/k", "http://www.example.org", "HEAD")
    assert status == 200 and headers["access-control-allow-origin"] == "http://www.example.org"
    assert headers["access-control-allow-methods"] == "HEAD, GET"
    assert "access-control-max-age" not in headers

    for origin, method, request_headers in (("https://evil.example.com", "GET", None),     # origin
                                            ("https://APP.example.com", "GET", None),      # case-sensitive
                                            ("https://app.example.com", "DELETE", None),   # method
                                            ("https://app.example.com", "PUT", "authorization, x-other"),  # header
                                            ("http://www.example.org", "PUT", None)):
        status, headers, body = preflight(cairn, f"/{a}/k", origin, method, request_headers)
        assert (status, error_code(body)) == (403, "AccessForbidden"), (origin, method, request_headers)
        assert "access-control-allow-origin" not in headers
    # A preflight without Origin is a bad request.
    status, _, body = http_request(cairn, "OPTIONS", f"/{a}/k", headers={"Access-Control-Request-Method": "GET"})
    assert status == 400, body

    # The actual request: CORS headers when the Origin matches a rule, none otherwise.
    status, headers, body = http_request(cairn, "GET", f"/{a}/k", headers={"Origin": "https://app.example.com"})
    assert (status, body) == (200, b"x")
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert headers["access-control-allow-methods"] == "GET, PUT"
    status, headers, _ = http_request(cairn, "GET", f"/{a}/k", headers={"Origin": "https://evil.example.com"})
    assert status == 200 and "access-control-allow-origin" not in headers
    status, headers, _ = http_request(cairn, "GET", f"/{a}/k")
    assert status == 200 and "access-control-allow-origin" not in headers
    # A signed request from the page (presigned URL) gets them too.
    url = alice.s3.generate_presigned_url("get_object", Params={"Bucket": a, "Key": "k"}, ExpiresIn=300)
    status, headers, _ = http_request(url, "GET", headers={"Origin": "https://app.example.com"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://app.example.com"

    assert status_of(alice.s3.delete_bucket_cors(Bucket=a)) == 204
    with s3_error("NoSuchCORSConfiguration", 404):
        alice.s3.get_bucket_cors(Bucket=a)
    status, _, body = preflight(cairn, f"/{a}/k", "https://app.example.com", "GET")
    assert (status, error_code(body)) == (403, "AccessForbidden")
    status, headers, _ = http_request(cairn, "GET", f"/{a}/k", headers={"Origin": "https://app.example.com"})
    assert status == 200 and "access-control-allow-origin" not in headers
    # No such bucket: refused like an unconfigured one.
    assert preflight(cairn, f"/{unique_bucket_name('missing')}/k", "https://app.example.com", "GET")[0] == 403


def test_cors_star_origin(cairn, alice):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x", ACL="public-read")
    alice.s3.put_bucket_cors(Bucket=a, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["*"]}]})
    status, headers, _ = preflight(cairn, f"/{a}/k", "https://anywhere.example", "GET", "X-Custom, Range")
    assert status == 200
    assert headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in headers
    assert headers["access-control-allow-headers"] == "x-custom, range"
    status, headers, _ = http_request(cairn, "GET", f"/{a}/k", headers={"Origin": "https://anywhere.example"})
    assert status == 200 and headers["access-control-allow-origin"] == "*"


def test_malformed_cors_stores_nothing(cairn, s3, alice):
    a = new_bucket(alice.s3)
    raw = alice.user.raw(cairn)

    def put_cors(body):
        body = body.encode()
        return raw.request("PUT", f"/{a}", query=[("cors", "")], body=body,
                           headers={"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()})

    for body in ("this is not xml",
                 "<CORSConfiguration></CORSConfiguration>",
                 "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
                 "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
                 "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                 "<MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule></CORSConfiguration>"):
        resp = put_cors(body)
        assert (resp.status, error_code(resp.body)) == (400, "MalformedXML"), (body, resp)
    with s3_error("InvalidRequest", 400):
        alice.s3.put_bucket_cors(Bucket=a, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "PATCH"]}]})
    with s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=a)
    # Nor is a good configuration replaced by a bad one.
    alice.s3.put_bucket_cors(Bucket=a, CORSConfiguration={"CORSRules": CORS_RULES[1:]})
    assert put_cors("<CORSConfiguration/>").status == 400
    with s3_error("InvalidRequest", 400):
        alice.s3.put_bucket_cors(Bucket=a, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["*"], "AllowedMethods": ["OPTIONS"]}]})
    assert s3.get_bucket_cors(Bucket=a)["CORSRules"] == CORS_RULES[1:]


# ---- malformed ACL documents ----

def test_malformed_acl_documents_store_nothing(cairn, s3, alice, bob):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x")
    raw = alice.user.raw(cairn)
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    owner = f"<Owner><ID>{alice.user.id}</ID></Owner>"

    def grant(permission, grantee=None):
        grantee = grantee or f'<Grantee {xsi} xsi:type="CanonicalUser"><ID>{bob.user.id}</ID></Grantee>'
        return f"<Grant>{grantee}<Permission>{permission}</Permission></Grant>"

    bodies = {
        "not XML": "this is not xml",
        "truncated": f"<AccessControlPolicy {ns}>{owner}<AccessControlList>",
        "wrong root": f"<AccessPolicy {ns}>{owner}<AccessControlList>{grant('READ')}</AccessControlList></AccessPolicy>",
        "unknown permission": f"<AccessControlPolicy {ns}>{owner}<AccessControlList>{grant('READ_ALL')}"
                              f"</AccessControlList></AccessControlPolicy>",
        "no AccessControlList": f"<AccessControlPolicy {ns}>{owner}</AccessControlPolicy>",
        "no xsi:type": f"<AccessControlPolicy {ns}>{owner}<AccessControlList>"
                       f"{grant('READ', f'<Grantee><ID>{bob.user.id}</ID></Grantee>')}"
                       f"</AccessControlList></AccessControlPolicy>",
    }
    before = {"bucket": grants_of(s3.get_bucket_acl(Bucket=a)), "object": grants_of(s3.get_object_acl(Bucket=a, Key="k"))}
    for name, body in bodies.items():
        for target, path in (("bucket", f"/{a}"), ("object", f"/{a}/k")):
            resp = raw.request("PUT", path, query=[("acl", "")], body=body.encode())
            assert (resp.status, error_code(resp.body)) == (400, "MalformedACLError"), (name, target, resp)
    assert grants_of(s3.get_bucket_acl(Bucket=a)) == before["bucket"]
    assert grants_of(s3.get_object_acl(Bucket=a, Key="k")) == before["object"]
    assert not can(lambda: bob.s3.list_objects_v2(Bucket=a))
    # A well-formed body through the same path works (the test's XML is right).
    good = f"<AccessControlPolicy {ns}>{owner}<AccessControlList>{grant('READ')}</AccessControlList></AccessControlPolicy>"
    assert raw.request("PUT", f"/{a}", query=[("acl", "")], body=good.encode()).status == 200
    assert keys_of(bob.s3, a) == ["k"]


# ---- browser POST uploads ----

def encode_form(fields, file_data=None, filename="upload.bin", file_type="application/octet-stream"):
    """A multipart/form-data body (RFC 7578): the fields in order, then the file part."""
    boundary = "----cairnform" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                   + str(value).encode() + b"\r\n")
    if file_data is not None:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                   f"Content-Type: {file_type}\r\n\r\n".encode() + file_data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def post_form(srv, bucket, fields, file_data=None, **kwargs):
    items = list(fields.items()) if isinstance(fields, dict) else list(fields)
    body, content_type = encode_form(items, file_data, **kwargs)
    return http_request(srv, "POST", f"/{bucket}", body=body, headers={"Content-Type": content_type})


def presigned_post(client, bucket, key, fields=None, conditions=None, expires=300):
    post = client.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires)
    assert post["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4, as the tests intend
    return post["fields"]


def object_path_of(location):
    """The decoded path of a POST answer's Location (S3 percent-encodes the key's '/' there)."""
    return urllib.parse.unquote(urllib.parse.urlsplit(location).path)


@pytest.fixture
def post_bucket(alice):
    return new_bucket(alice.s3)


def test_post_upload_default_204(cairn, s3, alice, post_bucket):
    data = b"hello from a form"
    fields = presigned_post(alice.s3, post_bucket, "post/a.txt")
    status, headers, body = post_form(cairn, post_bucket, fields, data)
    assert (status, body) == (204, b"")
    assert headers["etag"] == md5_etag(data)
    assert object_path_of(headers["location"]) == f"/{post_bucket}/post/a.txt"
    assert read(s3, post_bucket, "post/a.txt") == data
    acl = s3.get_object_acl(Bucket=post_bucket, Key="post/a.txt")
    assert acl["Owner"]["ID"] == alice.user.id  # the signer owns what it uploads
    assert grants_of(acl) == [user_grant(alice.user, "FULL_CONTROL")]
    # The file part's own Content-Type is kept when the form has none.
    assert s3.head_object(Bucket=post_bucket, Key="post/a.txt")["ContentType"] == "application/octet-stream"


def test_post_upload_201_and_200(cairn, s3, alice, post_bucket):
    fields = presigned_post(alice.s3, post_bucket, "post/201", {"success_action_status": "201"},
                            [{"success_action_status": "201"}])
    status, headers, body = post_form(cairn, post_bucket, fields, b"created")
    assert status == 201, body
    doc = s3raw.parse_xml(body)
    assert doc.tag == "PostResponse"
    got = {child.tag: child.text for child in doc}
    assert got["Bucket"] == post_bucket and got["Key"] == "post/201" and got["ETag"] == md5_etag(b"created")
    assert object_path_of(got["Location"]) == f"/{post_bucket}/post/201"
    assert read(s3, post_bucket, "post/201") == b"created"

    fields = presigned_post(alice.s3, post_bucket, "post/200", {"success_action_status": "200"},
                            [{"success_action_status": "200"}])
    status, headers, body = post_form(cairn, post_bucket, fields, b"ok")
    assert (status, body) == (200, b"")
    assert headers["etag"] == md5_etag(b"ok")
    assert read(s3, post_bucket, "post/200") == b"ok"


def test_post_location_is_the_objects_url(cairn, alice, post_bucket):
    # S3's POST Object answer: Location is the URL of the new object, an absolute one
    # ("https://bucket.s3.amazonaws.com/key", as CompleteMultipartUpload's Location is); a browser
    # page resolves a bare path against its own origin, not against the store.
    fields = presigned_post(alice.s3, post_bucket, "loc/k", {"success_action_status": "201"},
                            [{"success_action_status": "201"}])
    status, headers, body = post_form(cairn, post_bucket, fields, b"x")
    assert status == 201, body
    location = {child.tag: child.text for child in s3raw.parse_xml(body)}["Location"]
    for url in (location, headers["location"]):
        parts = urllib.parse.urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("http", f"{cairn.host}:{cairn.port}"), url
        assert urllib.parse.unquote(parts.path) == f"/{post_bucket}/loc/k", url


def test_post_upload_redirect(cairn, s3, alice, post_bucket):
    target = "https://example.com/done?from=form"
    fields = presigned_post(alice.s3, post_bucket, "post/redirected key.txt", {"success_action_redirect": target},
                            [{"success_action_redirect": target}])
    status, headers, _ = post_form(cairn, post_bucket, fields, b"redirect me")
    assert status == 303
    location = urllib.parse.urlsplit(headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "example.com", "/done")
    query = urllib.parse.parse_qs(location.query)
    assert query == {"from": ["form"], "bucket": [post_bucket], "key": ["post/redirected key.txt"],
                     "etag": [md5_etag(b"redirect me")]}
    assert read(s3, post_bucket, "post/redirected key.txt") == b"redirect me"


def test_post_upload_filename_and_conditions(cairn, s3, alice, anon, post_bucket):
    # ${filename}: boto3 turns the key into a starts-with condition on "uploads/".
    fields = presigned_post(alice.s3, post_bucket, "uploads/${filename}")
    assert post_form(cairn, post_bucket, fields, b"photo", filename="photo.jpg")[0] == 204
    assert read(s3, post_bucket, "uploads/photo.jpg") == b"photo"

    # starts-with on Content-Type and a metadata field, exact acl, content-length-range.
    fields = presigned_post(
        alice.s3, post_bucket, "img/pic.png",
        {"Content-Type": "image/png", "x-amz-meta-origin": "form", "acl": "public-read"},
        [["starts-with", "$Content-Type", "image/"], {"x-amz-meta-origin": "form"}, {"acl": "public-read"},
         ["content-length-range", 1, 100]])
    status, _, body = post_form(cairn, post_bucket, fields, b"p" * 50)
    assert status == 204, body
    head = s3.head_object(Bucket=post_bucket, Key="img/pic.png")
    assert head["ContentType"] == "image/png" and head["Metadata"] == {"origin": "form"}
    assert read(anon, post_bucket, "img/pic.png") == b"p" * 50
    # The range is inclusive.
    for size, key in ((1, "edge/one"), (100, "edge/hundred")):
        fields = presigned_post(alice.s3, post_bucket, key, None, [["content-length-range", 1, 100]])
        assert post_form(cairn, post_bucket, fields, b"e" * size)[0] == 204, size
        assert s3.head_object(Bucket=post_bucket, Key=key)["ContentLength"] == size


def test_post_refusals_store_nothing(cairn, s3, alice, bob, post_bucket):
    def refused(fields, data, status, code, key, **kwargs):
        got_status, _, body = post_form(cairn, post_bucket, fields, data, **kwargs)
        assert (got_status, error_code(body)) == (status, code), body
        assert not exists(s3, post_bucket, key), key

    good = presigned_post(alice.s3, post_bucket, "r/tampered")
    # Forged: a policy changed after signing (any key would do), and a policy signed with a wrong secret.
    policy = json.loads(base64.b64decode(good["policy"]))
    policy["conditions"] = [c for c in policy["conditions"] if not (isinstance(c, dict) and "key" in c)]
    policy["conditions"].append(["starts-with", "$key", ""])
    tampered = dict(good, policy=base64.b64encode(json.dumps(policy).encode()).decode(), key="r/anything")
    refused(tampered, b"x", 403, "SignatureDoesNotMatch", "r/anything")
    wrong = make_client(cairn, alice.user.access_key, "W" * 40)
    refused(presigned_post(wrong, post_bucket, "r/wrong-secret"), b"x", 403, "SignatureDoesNotMatch", "r/wrong-secret")
    unknown = make_client(cairn, "CKNOSUCHKEY000000000", "W" * 40)
    refused(presigned_post(unknown, post_bucket, "r/unknown"), b"x", 403, "InvalidAccessKeyId", "r/unknown")
    # Expired.
    refused(presigned_post(alice.s3, post_bucket, "r/expired", expires=-60), b"x", 403, "AccessDenied", "r/expired")
    # A key outside the starts-with.
    fields = dict(presigned_post(alice.s3, post_bucket, "inbox/${filename}"), key="elsewhere/x")
    refused(fields, b"x", 403, "AccessDenied", "elsewhere/x")
    # A key the exact condition does not name.
    fields = dict(presigned_post(alice.s3, post_bucket, "r/exact"), key="r/other")
    refused(fields, b"x", 403, "AccessDenied", "r/other")
    # An extra field the policy does not name.
    fields = dict(presigned_post(alice.s3, post_bucket, "r/extra"))
    fields["x-amz-meta-smuggled"] = "yes"
    refused(fields, b"x", 403, "AccessDenied", "r/extra")
    # A field with another value than the policy's.
    fields = presigned_post(alice.s3, post_bucket, "r/acl", {"acl": "private"}, [{"acl": "private"}])
    refused(dict(fields, acl="public-read"), b"x", 403, "AccessDenied", "r/acl")
    # content-length-range.
    fields = presigned_post(alice.s3, post_bucket, "r/size", None, [["content-length-range", 10, 20]])
    refused(fields, b"x" * 5, 400, "EntityTooSmall", "r/size")
    refused(fields, b"x" * 30, 400, "EntityTooLarge", "r/size")
    refused(fields, b"", 400, "EntityTooSmall", "r/size")
    assert post_form(cairn, post_bucket, fields, b"x" * 15)[0] == 204
    s3.delete_object(Bucket=post_bucket, Key="r/size")
    # A form signed for another bucket.
    other = new_bucket(alice.s3)
    refused(presigned_post(alice.s3, other, "r/elsewhere"), b"x", 403, "AccessDenied", "r/elsewhere")
    # A Content-Type outside the starts-with.
    fields = presigned_post(alice.s3, post_bucket, "r/type", {"Content-Type": "image/png"},
                            [["starts-with", "$Content-Type", "image/"]])
    refused(dict(fields, **{"Content-Type": "text/html"}), b"x", 403, "AccessDenied", "r/type")
    # No file.
    refused(presigned_post(alice.s3, post_bucket, "r/nofile"), None, 400, "InvalidArgument", "r/nofile")
    # A valid form of a user without WRITE on the bucket.
    refused(presigned_post(bob.s3, post_bucket, "r/bob"), b"x", 403, "AccessDenied", "r/bob")
    # Without a policy, the form is anonymous: refused on a private bucket.
    refused({"key": "r/anon"}, b"x", 403, "AccessDenied", "r/anon")
    assert keys_of(s3, post_bucket) == []


def test_post_for_other_users_per_acl_and_policy(cairn, s3, alice, bob):
    # bob may POST into alice's bucket once he has WRITE on it, or a policy allows s3:PutObject.
    a = new_bucket(alice.s3)
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": iam_user("bob"), "Action": "s3:PutObject", "Resource": arn(a, "bob/*")}))
    assert post_form(cairn, a, presigned_post(bob.s3, a, "bob/1"), b"1")[0] == 204
    status, _, body = post_form(cairn, a, presigned_post(bob.s3, a, "alice/1"), b"1")
    assert (status, error_code(body)) == (403, "AccessDenied")
    assert s3.get_object_acl(Bucket=a, Key="bob/1")["Owner"]["ID"] == bob.user.id
    assert not exists(s3, a, "alice/1")
    # An anonymous form (no policy field) into a public-read-write bucket.
    p = new_bucket(alice.s3, ACL="public-read-write")
    assert post_form(cairn, p, {"key": "anon/1"}, b"a")[0] == 204
    assert read(s3, p, "anon/1") == b"a"


# ---- what a review of the access paths found (each was a way around the rules) ----

def test_bucket_policy_cannot_open_another_users_object(s3, alice, bob, anon):
    """S3: a bucket policy speaks for the bucket owner, who may not read (or re-ACL) an object
    another user wrote privately; only a Deny in it applies to such objects."""
    a = new_bucket(alice.s3)
    alice.s3.put_bucket_acl(Bucket=a, GrantFullControl=f'id="{alice.user.id}"', GrantWrite=f'id="{bob.user.id}"')
    bob.s3.put_object(Bucket=a, Key="secret", Body=b"bob's", ACL="private")
    alice.s3.put_object(Bucket=a, Key="hers", Body=b"alice's")
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:PutObjectAcl"], "Resource": arn(a, "*")}))
    assert not can(lambda: anon.get_object(Bucket=a, Key="secret"))
    assert not can(lambda: alice.s3.get_object(Bucket=a, Key="secret"))
    assert not can(lambda: alice.s3.put_object_acl(Bucket=a, Key="secret", ACL="public-read"))
    assert read(bob.s3, a, "secret") == b"bob's"
    assert read(anon, a, "hers") == b"alice's"  # the bucket owner's own objects: the policy applies
    assert grants_of(s3.get_object_acl(Bucket=a, Key="secret")) == [user_grant(bob.user, "FULL_CONTROL")]


def test_multipart_uploads_belong_to_their_initiator(s3, alice, bob, carol):
    a = new_bucket(alice.s3, ACL="public-read-write")
    up = bob.s3.create_multipart_upload(Bucket=a, Key="report")["UploadId"]
    part = bob.s3.upload_part(Bucket=a, Key="report", UploadId=up, PartNumber=1, Body=b"bob")
    # carol may write the bucket, but not into bob's upload.
    assert not can(lambda: carol.s3.upload_part(Bucket=a, Key="report", UploadId=up, PartNumber=1, Body=b"evil"))
    done = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    assert not can(lambda: carol.s3.complete_multipart_upload(Bucket=a, Key="report", UploadId=up,
                                                              MultipartUpload=done))
    assert not can(lambda: carol.s3.abort_multipart_upload(Bucket=a, Key="report", UploadId=up))
    assert not can(lambda: carol.s3.list_parts(Bucket=a, Key="report", UploadId=up))
    # The bucket owner may list and would be allowed to abort; the initiator completes.
    assert [p["PartNumber"] for p in alice.s3.list_parts(Bucket=a, Key="report", UploadId=up)["Parts"]] == [1]
    bob.s3.complete_multipart_upload(Bucket=a, Key="report", UploadId=up, MultipartUpload=done)
    assert read(bob.s3, a, "report") == b"bob"


def test_expected_bucket_owner(alice, bob):
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x", ExpectedBucketOwner=alice.user.id)
    with denied():
        alice.s3.put_object(Bucket=a, Key="k2", Body=b"x", ExpectedBucketOwner=bob.user.id)
    assert keys_of(alice.s3, a) == ["k"]


def test_anonymous_get_may_not_override_response_headers(alice, anon):
    a = new_bucket(alice.s3, ACL="public-read")
    alice.s3.put_object(Bucket=a, Key="page", Body=b"<script>", ACL="public-read")
    assert read(anon, a, "page") == b"<script>"
    with s3_error("InvalidRequest", 400):
        anon.get_object(Bucket=a, Key="page", ResponseContentType="text/html")
    got = alice.s3.get_object(Bucket=a, Key="page", ResponseContentType="text/plain")
    assert got["ContentType"] == "text/plain"


def test_admin_api_refuses_presigned_requests(cairn, s3):
    url = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": "x"}, ExpiresIn=60)
    parts = urllib.parse.urlsplit(url)
    status, _, body = http_request(cairn, "GET", "/_cairn/admin/v1/users?" + parts.query)
    assert status == 403, body


def test_policy_names_the_user_that_had_the_name(admin, alice):
    """A user deleted and created again under the same name is a new principal: a policy put for
    the old one does not speak for the new one (S3 resolves names to ids when a policy is put)."""
    name = "again-" + uuid.uuid4().hex[:8]
    first = admin.user(name)
    a = new_bucket(alice.s3)
    alice.s3.put_object(Bucket=a, Key="k", Body=b"x")
    alice.s3.put_bucket_policy(Bucket=a, Policy=policy_doc(
        {"Effect": "Allow", "Principal": iam_user(name), "Action": "s3:GetObject", "Resource": arn(a, "*")}))
    assert read(first.client(admin.srv), a, "k") == b"x"
    admin.ok("user", "delete", name)
    second = admin.user(name)
    assert not can(lambda: second.client(admin.srv).get_object(Bucket=a, Key="k"))


def test_an_unreadable_server_key_is_never_replaced(pytestconfig):
    srv = start_server(pytestconfig)
    cli = Admin(pytestconfig.getoption("--cairn-bin"), srv)
    user = cli.user("keeper")
    srv.stop()
    key_path = os.path.join(srv.data_dir, "server.key")
    original = open(key_path).read()
    os.rename(key_path, key_path + ".away")
    # Missing while sealed secrets exist: the server refuses to start rather than make a new key.
    with pytest.raises(harness.ServerError, match="server.key is missing"):
        srv.start()
    assert not os.path.exists(key_path)
    os.rename(key_path + ".away", key_path)
    srv.start()
    assert open(key_path).read() == original
    assert status_of(user.client(srv).list_buckets()) == 200
