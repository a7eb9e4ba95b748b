"""kill -9 of `cairn server` in the middle of concurrent uploads, then a restart on the same data.

Several rounds over one data directory. In each, THREADS threads send single PUTs (0 B to
20 MiB) and multipart uploads (5 MiB parts, then Complete) with random content and a key of
their own per attempt, recording for every request whether an answer came back; at a random
moment the server gets SIGKILL. After the restart:

  - every object whose PUT or Complete was answered 200 is listed with its size and ETag, and
    its downloaded bytes have the SHA-256 of what was sent;
  - an object whose request got no answer is absent, or complete and correct (it may have
    committed just before the kill: counted and printed), never partial;
  - an upload whose Complete was not answered is either still listed by ListMultipartUploads,
    with exactly the parts that were acknowledged plus perhaps the one in flight (whole and
    correct), or completed; never both;
  - nothing else is listed, and /metrics' cairn_engine_chunks is exactly the number of chunks
    the listed objects and the stored parts of the listed uploads need (an object or part of
    s bytes holds ceil(s / 1 MiB) chunks): start-up deleted every chunk of a write the crash cut.

What one round established is checked again after every later crash. At the end the uploads
are aborted and the objects deleted, and the engine must come back to zero chunks.

The seed is printed; replay with CAIRN_E2E_CRASH_SEED=<seed>. Contents, sizes, the choice of
operation and the kill delay follow from it; where the kill lands among the requests depends on
timing. CAIRN_E2E_CRASH_ROUNDS overrides the number of rounds.
"""

import concurrent.futures
import dataclasses
import hashlib
import http.client
import math
import os
import random
import re
import threading
import time

import s3raw
from conftest import start_server
from s3raw import object_path

MiB = 1 << 20
PART_SIZE = 5 * MiB
MAX_PUT = 20 * MiB
THREADS = 6
ROUNDS = int(os.environ.get("CAIRN_E2E_CRASH_ROUNDS", "10"))
# A round starts only while the test has spent less than this; the first two always run.
TIME_BUDGET_S = 90
KILL_DELAY_S = (0.2, 4.0)
BUCKET = "crash"

SEED = int(os.environ.get("CAIRN_E2E_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))

# What happened to one request.
OK = "ok"          # answered 2xx
FAILED = "failed"  # answered with an error
LOST = "lost"      # no (complete) answer: refused, reset, or cut by the kill


def chunks_of(size):
    return math.ceil(size / MiB)


class Content:
    """Random bytes of attempts, as slices of one random pool behind a per-attempt prefix."""

    def __init__(self, seed):
        self.pool = random.Random(f"{seed}:pool").randbytes(MAX_PUT + 4096)

    def make(self, rng, size):
        prefix = rng.randbytes(min(size, 32))
        start = rng.randrange(len(self.pool) - size + 1)
        return prefix + self.pool[start:start + size - len(prefix)]


@dataclasses.dataclass
class Expect:
    """An object that must exist, exactly."""
    size: int
    etag: str      # unquoted
    sha256: str
    chunks: int


@dataclasses.dataclass
class Part:
    number: int
    size: int
    md5: str
    outcome: str = LOST


@dataclasses.dataclass
class PutAttempt:
    key: str
    expect: Expect
    outcome: str = LOST
    answer: str = ""


@dataclasses.dataclass
class MultipartAttempt:
    key: str
    parts: list = dataclasses.field(default_factory=list)
    sha256: object = dataclasses.field(default_factory=hashlib.sha256)
    create: str = LOST
    upload_id: str = ""
    complete: str = ""  # "" when Complete was never sent
    answer: str = ""

    def expected_object(self):
        digest = hashlib.md5(b"".join(bytes.fromhex(p.md5) for p in self.parts)).hexdigest()
        return Expect(size=sum(p.size for p in self.parts), etag=f"{digest}-{len(self.parts)}",
                      sha256=self.sha256.hexdigest(), chunks=sum(chunks_of(p.size) for p in self.parts))


class Model:
    """What the store must hold: established by acknowledged requests, or by an earlier check."""

    def __init__(self):
        self.objects = {}   # key -> Expect
        self.absent = set()  # keys that must not exist
        self.uploads = {}   # upload id -> (key, {part number: (size, etag)})

    def expected_chunks(self):
        return (sum(e.chunks for e in self.objects.values()) +
                sum(chunks_of(size) for _, parts in self.uploads.values() for size, _ in parts.values()))


def client_for(srv):
    return s3raw.RawClient(srv.host, srv.port, s3raw.Credentials(srv.access_key, srv.secret_key, srv.region))


def call(client, *args, **kwargs):
    """(outcome, response or None, a description of the answer) of one signed request."""
    try:
        response = client.request(*args, **kwargs)
    except (OSError, http.client.HTTPException) as e:
        return LOST, None, f"{type(e).__name__}: {e}"
    outcome = OK if 200 <= response.status < 300 else FAILED
    return outcome, response, f"{response.status} {response.body[:300]!r}"


# ---- traffic ----------------------------------------------------------------------------------

class Traffic:
    def __init__(self, srv, content, round_no):
        self.srv = srv
        self.content = content
        self.round_no = round_no
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.attempts = []
        # Error answers, and answers with a wrong ETag: none is expected while the server runs.
        self.errors = []

    def record(self, attempt):
        with self.lock:
            self.attempts.append(attempt)

    def error(self, what, text):
        with self.lock:
            self.errors.append(f"{what}: {text}")

    def run(self, tid):
        rng = random.Random(f"{SEED}:{self.round_no}:{tid}")
        client = client_for(self.srv)
        n = 0
        while not self.stop.is_set():
            n += 1
            key = f"r{self.round_no}/t{tid}/{n:04d}"
            alive = self.multipart(client, rng, key + "-mpu") if rng.random() < 0.3 else self.put(client, rng, key)
            if not alive:
                return

    def put(self, client, rng, key):
        size = rng.choice([0, 1, rng.randrange(64 * 1024), MiB - 1, MiB, MiB + 1,
                           rng.randrange(MAX_PUT + 1), rng.randrange(MAX_PUT + 1)])
        data = self.content.make(rng, size)
        md5 = hashlib.md5(data).hexdigest()
        attempt = PutAttempt(key, Expect(size, md5, hashlib.sha256(data).hexdigest(), chunks_of(size)))
        self.record(attempt)
        attempt.outcome, response, attempt.answer = call(client, "PUT", object_path(BUCKET, key), body=data)
        if attempt.outcome == OK and response.headers.get("etag") != f'"{md5}"':
            self.error(f"PUT {key}", f"ETag {response.headers.get('etag')}, expected \"{md5}\"")
        elif attempt.outcome == FAILED:
            self.error(f"PUT {key}", attempt.answer)
        return attempt.outcome != LOST

    def multipart(self, client, rng, key):
        attempt = MultipartAttempt(key)
        self.record(attempt)
        path = object_path(BUCKET, key)
        attempt.create, response, attempt.answer = call(client, "POST", path, query=[("uploads", "")])
        if attempt.create != OK:
            if attempt.create == FAILED:
                self.error(f"CreateMultipartUpload {key}", attempt.answer)
            return attempt.create != LOST
        attempt.upload_id = s3raw.parse_xml(response.body).findtext("UploadId")
        count = rng.randint(2, 4)
        for number in range(1, count + 1):
            size = PART_SIZE if number < count else rng.randint(1, PART_SIZE)
            data = self.content.make(rng, size)
            part = Part(number, size, hashlib.md5(data).hexdigest())
            attempt.parts.append(part)
            attempt.sha256.update(data)
            part.outcome, response, answer = call(
                client, "PUT", path, query=[("partNumber", str(number)), ("uploadId", attempt.upload_id)], body=data)
            if part.outcome != OK:
                if part.outcome == FAILED:
                    self.error(f"UploadPart {key} #{number}", answer)
                return part.outcome != LOST
            if response.headers.get("etag") != f'"{part.md5}"':
                self.error(f"UploadPart {key} #{number}",
                           f"ETag {response.headers.get('etag')}, expected \"{part.md5}\"")
        body = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{p.number}</PartNumber><ETag>\"{p.md5}\"</ETag></Part>" for p in attempt.parts
        ) + "</CompleteMultipartUpload>"
        attempt.complete, response, attempt.answer = call(
            client, "POST", path, query=[("uploadId", attempt.upload_id)], body=body.encode())
        if attempt.complete == OK:
            got = s3raw.parse_xml(response.body).findtext("ETag")
            expected = f'"{attempt.expected_object().etag}"'
            if got != expected:
                self.error(f"CompleteMultipartUpload {key}", f"ETag {got}, expected {expected}")
        elif attempt.complete == FAILED:
            self.error(f"CompleteMultipartUpload {key}", attempt.answer)
        return attempt.complete != LOST


# ---- checks -----------------------------------------------------------------------------------

def engine_chunks(client):
    response = client.send("GET", "/metrics")
    assert response.status == 200, response
    match = re.search(rb"^cairn_engine_chunks (\S+)$", response.body, re.M)
    assert match, "no cairn_engine_chunks in /metrics"
    return int(float(match.group(1)))


def list_objects(client):
    """{key: (size, etag unquoted)} of the bucket."""
    out = {}
    token = None
    while True:
        query = [("list-type", "2")] + ([("continuation-token", token)] if token else [])
        response = client.request("GET", f"/{BUCKET}", query=query)
        assert response.status == 200, response
        root = s3raw.parse_xml(response.body)
        for c in root.findall("Contents"):
            out[c.findtext("Key")] = (int(c.findtext("Size")), c.findtext("ETag").strip('"'))
        if root.findtext("IsTruncated") != "true":
            return out
        token = root.findtext("NextContinuationToken")


def list_uploads(client):
    """{upload id: key} of the bucket."""
    out = {}
    markers = []
    while True:
        response = client.request("GET", f"/{BUCKET}", query=[("uploads", "")] + markers)
        assert response.status == 200, response
        root = s3raw.parse_xml(response.body)
        for u in root.findall("Upload"):
            out[u.findtext("UploadId")] = u.findtext("Key")
        if root.findtext("IsTruncated") != "true":
            return out
        markers = [("key-marker", root.findtext("NextKeyMarker")),
                   ("upload-id-marker", root.findtext("NextUploadIdMarker"))]


def list_parts(client, key, upload_id):
    """{part number: (size, etag unquoted)}."""
    out = {}
    marker = "0"
    while True:
        response = client.request("GET", object_path(BUCKET, key),
                                  query=[("uploadId", upload_id), ("part-number-marker", marker)])
        assert response.status == 200, response
        root = s3raw.parse_xml(response.body)
        for p in root.findall("Part"):
            out[int(p.findtext("PartNumber"))] = (int(p.findtext("Size")), p.findtext("ETag").strip('"'))
        if root.findtext("IsTruncated") != "true":
            return out
        marker = root.findtext("NextPartNumberMarker")


def download_problem(srv, key, expect):
    """None when GET returns exactly `expect`; otherwise what differs."""
    response = client_for(srv).request("GET", object_path(BUCKET, key))
    if response.status != 200:
        return f"{key}: GET answered {response.status} {response.body[:200]!r}"
    problems = []
    if len(response.body) != expect.size:
        problems.append(f"{len(response.body)} bytes instead of {expect.size}")
    if hashlib.sha256(response.body).hexdigest() != expect.sha256:
        problems.append("content differs from what was sent")
    if response.headers.get("etag") != f'"{expect.etag}"':
        problems.append(f"ETag {response.headers.get('etag')} instead of \"{expect.etag}\"")
    return f"{key}: " + "; ".join(problems) if problems else None


class Checker:
    """Checks the restarted server against the model and this round's attempts; settles the
    attempts without an answer into the model."""

    def __init__(self, srv, model):
        self.srv = srv
        self.model = model
        self.client = client_for(srv)
        self.problems = []
        self.committed_in_flight = 0
        self.absent_in_flight = 0
        self.uploads_left = 0

    def fail(self, text):
        self.problems.append(text)

    def object_state(self, key, listed, expect, to_download):
        """Checks a key that must be absent or exactly `expect`; True when present."""
        if key not in listed:
            return False
        if listed[key] != (expect.size, expect.etag):
            self.fail(f"{key}: listed with (size, ETag) {listed[key]}, expected ({expect.size}, {expect.etag}): "
                      f"a partial or corrupt object")
        to_download.append((key, expect))
        return True

    def check(self, attempts):
        chunks = engine_chunks(self.client)  # first, before anything could change it
        listed = list_objects(self.client)
        uploads = list_uploads(self.client)
        to_download = []
        model = self.model

        # What earlier rounds established.
        for key, expect in model.objects.items():
            if key not in listed:
                self.fail(f"{key}: established in an earlier round, now missing")
            else:
                self.object_state(key, listed, expect, to_download)
        for key in model.absent:
            if key in listed:
                self.fail(f"{key}: was absent after an earlier crash, now listed {listed[key]}")
        for upload_id, (key, parts) in model.uploads.items():
            if upload_id not in uploads:
                self.fail(f"upload {upload_id} of {key}: listed after an earlier crash, now gone")
                continue
            got = list_parts(self.client, key, upload_id)
            if got != parts:
                self.fail(f"upload {upload_id} of {key}: parts {got}, earlier {parts}")

        # This round.
        for a in attempts:
            if isinstance(a, PutAttempt):
                self.settle_put(a, listed, to_download)
            else:
                self.settle_multipart(a, listed, uploads, to_download)

        # Nothing that no attempt explains.
        for key in listed:
            if key not in model.objects:
                self.fail(f"{key}: listed {listed[key]}, but no request could have written it")
        for upload_id, key in uploads.items():
            if upload_id not in model.uploads:
                self.fail(f"upload {upload_id} of {key}: listed, but no request created it (or it completed)")

        # Every byte of every object, in parallel.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for problem in pool.map(lambda ke: download_problem(self.srv, *ke), to_download):
                if problem:
                    self.fail(problem)

        expected = model.expected_chunks()
        if chunks != expected:
            self.fail(f"cairn_engine_chunks is {chunks} after the restart; the {len(model.objects)} objects and "
                      f"{len(model.uploads)} uploads listed need {expected}: "
                      f"{'orphaned chunks remain' if chunks > expected else 'chunks are missing'}")
        return self.problems

    def settle_put(self, a, listed, to_download):
        model = self.model
        present = self.object_state(a.key, listed, a.expect, to_download)
        if a.outcome == OK and not present:
            self.fail(f"{a.key}: PUT answered 200, object missing after the restart")
        if a.outcome == FAILED and present:
            self.fail(f"{a.key}: PUT answered an error ({a.answer}), yet the object exists")
        if a.outcome == LOST:
            if present:
                self.committed_in_flight += 1
            else:
                self.absent_in_flight += 1
        if present:
            model.objects[a.key] = a.expect
        else:
            model.absent.add(a.key)

    def settle_multipart(self, a, listed, uploads, to_download):
        model = self.model
        mine = [u for u, k in uploads.items() if k == a.key]
        if a.create == OK and a.upload_id not in mine and a.complete == "":
            self.fail(f"{a.key}: upload {a.upload_id} was created (200) and never completed, but is not listed")
        if a.create != OK:
            if a.create == FAILED and mine:
                self.fail(f"{a.key}: CreateMultipartUpload answered an error, yet uploads {mine} are listed")
            if len(mine) > 1:
                self.fail(f"{a.key}: one CreateMultipartUpload without an answer, {len(mine)} uploads listed: {mine}")
            if a.create == LOST:
                if mine:
                    self.committed_in_flight += 1
                else:
                    self.absent_in_flight += 1
        elif set(mine) - {a.upload_id}:
            self.fail(f"{a.key}: uploads {mine} listed, only {a.upload_id} was created")

        expect = a.expected_object() if a.complete else None
        present = a.complete != "" and self.object_state(a.key, listed, expect, to_download)
        if a.key in listed and a.complete == "":
            self.fail(f"{a.key}: listed {listed[a.key]}, but Complete was never sent")
        if a.complete == OK and not present:
            self.fail(f"{a.key}: CompleteMultipartUpload answered 200, object missing after the restart")
        if a.complete == FAILED and present:
            self.fail(f"{a.key}: CompleteMultipartUpload answered an error ({a.answer}), yet the object exists")
        if a.complete == LOST:
            still_listed = a.upload_id in mine
            if present == still_listed:
                self.fail(f"{a.key}: Complete in flight at the kill left the object "
                          f"{'present' if present else 'absent'} and the upload "
                          f"{'listed' if still_listed else 'gone'}: it must be one or the other")
            if present:
                self.committed_in_flight += 1
            else:
                self.absent_in_flight += 1
        if present:
            model.objects[a.key] = expect
        else:
            model.absent.add(a.key)

        for upload_id in mine:
            if present and upload_id == a.upload_id:
                self.fail(f"{a.key}: completed, but its upload {upload_id} is still listed")
                continue
            got = list_parts(self.client, a.key, upload_id)
            parts = {}
            for p in a.parts:
                if p.number in got:
                    if got[p.number] != (p.size, p.md5):
                        self.fail(f"{a.key} upload {upload_id} part {p.number}: listed {got[p.number]}, "
                                  f"sent ({p.size}, {p.md5}): a partial or corrupt part")
                    if p.outcome == LOST:
                        self.committed_in_flight += 1
                    parts[p.number] = got[p.number]
                elif p.outcome == OK:
                    self.fail(f"{a.key} upload {upload_id}: part {p.number} was answered 200 but is not listed")
                elif p.outcome == LOST:
                    self.absent_in_flight += 1
            for number in set(got) - {p.number for p in a.parts}:
                self.fail(f"{a.key} upload {upload_id}: part {number} listed, never sent")
            model.uploads[upload_id] = (a.key, parts)
            self.uploads_left += 1


# ---- the test ---------------------------------------------------------------------------------

def restart(srv):
    started = time.monotonic()
    srv.start()
    return time.monotonic() - started


def test_kill9_during_uploads(pytestconfig):
    print(f"\ncrash test seed {SEED} (replay: CAIRN_E2E_CRASH_SEED={SEED}), up to {ROUNDS} rounds")
    replay = f"(seed {SEED}: replay with CAIRN_E2E_CRASH_SEED={SEED})"
    began = time.monotonic()
    content = Content(SEED)
    srv = start_server(pytestconfig)
    setup = client_for(srv).request("PUT", f"/{BUCKET}")
    assert setup.status == 200, setup
    model = Model()
    totals = {"attempts": 0, "committed in flight": 0, "absent in flight": 0}

    for round_no in range(ROUNDS):
        if round_no >= 2 and time.monotonic() - began > TIME_BUDGET_S:
            print(f"time budget spent: stopping after {round_no} rounds")
            break
        rng = random.Random(f"{SEED}:{round_no}:kill")
        traffic = Traffic(srv, content, round_no)
        threads = [threading.Thread(target=traffic.run, args=(t,), daemon=True) for t in range(THREADS)]
        for t in threads:
            t.start()
        delay = rng.uniform(*KILL_DELAY_S)
        time.sleep(delay)
        status = srv.kill()
        traffic.stop.set()
        for t in threads:
            t.join(timeout=60)
            assert not t.is_alive(), f"a client thread is stuck after the kill {replay}"
        assert status == -9, f"server exit status {status} before the kill {replay}"
        assert not traffic.errors, f"error answers while the server ran {replay}:\n" + "\n".join(traffic.errors)

        took = restart(srv)
        checker = Checker(srv, model)
        problems = checker.check(traffic.attempts)
        sent = len(traffic.attempts)
        acked = sum(1 for a in traffic.attempts if (a.outcome if isinstance(a, PutAttempt) else a.complete) == OK)
        print(f"round {round_no}: killed after {delay:.2f} s; {sent} attempts, {acked} acknowledged; "
              f"in flight at the kill: {checker.committed_in_flight} committed, {checker.absent_in_flight} absent; "
              f"{checker.uploads_left} uploads left; restart {took:.1f} s; "
              f"{len(model.objects)} objects, {model.expected_chunks()} chunks in all")
        assert not problems, f"round {round_no} {replay}:\n" + "\n".join(problems)
        totals["attempts"] += sent
        totals["committed in flight"] += checker.committed_in_flight
        totals["absent in flight"] += checker.absent_in_flight

    # The end: abort what is left, delete everything; the engine must hold nothing.
    client = client_for(srv)
    for upload_id, (key, _) in list(model.uploads.items()):
        response = client.request("DELETE", object_path(BUCKET, key), query=[("uploadId", upload_id)])
        assert response.status == 204, response
        del model.uploads[upload_id]
    assert list_uploads(client) == {}
    wait_for_chunks(client, model.expected_chunks(), f"after aborting the uploads {replay}")
    for key in list(model.objects):
        response = client.request("DELETE", object_path(BUCKET, key))
        assert response.status == 204, response
    assert list_objects(client) == {}
    wait_for_chunks(client, 0, f"after deleting every object {replay}")
    assert srv.stop() == 0, "no graceful stop after the crash rounds"
    print(f"totals: {totals}; {time.monotonic() - began:.0f} s")


def wait_for_chunks(client, expected, when, timeout_s=15):
    """Reclamation may run after the answer: waits a bounded time for the count to settle."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = engine_chunks(client)
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert got == expected, f"cairn_engine_chunks {got}, expected {expected} {when}"
