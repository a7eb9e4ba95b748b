"""Cluster mode end to end (issue 5): a real etcd and three `cairn server --cluster` processes.

What is checked, through the real `cairn admin status --json` of a node:
  - a single node (no --cluster) answers the same document, "mode": "single", and stores objects;
  - the cluster forms: three nodes registered, exactly one manager, `--chains 8 --replicas 3`
    chains of three members on three distinct nodes, all serving (a new cluster has nothing to
    copy), and every node sees the same table; /metrics carries the cluster gauges;
  - every node serves the same buckets, objects (small and multi-chunk, ranged reads, listings,
    multipart across nodes, conditional writes, deletes), users and access keys;
  - a node refuses to start without a cluster secret, with a short one, with a bad node id, and
    on a data directory that belongs to another node;
  - data through the chains (tests/tools/chain_kv writes keys from outside while it happens, and
    records every acknowledged write): a node killed with SIGKILL (not the manager) leaves within
    its lease (two nodes, no chain names its target) and writes go on; restarted, it registers
    again, becomes the syncing tail of its chains, copies, and is promoted; then every
    acknowledged write is read back from every member of its chain, and the three replicas of
    every chain hold identical state (equal digests). The same with the manager's node killed
    (another node takes the office), and with etcd itself killed and restarted;
  - S3 through the chains during those three failures (S3Workload: boto3 in a background thread,
    each request to the next live node, one attempt, short timeouts): PUTs of objects of 100 B to
    64 KiB and, one in ten, of 1 to 3 MiB (chunks on several chains), their bytes a function of
    the key; GETs of acknowledged keys checked byte for byte; DELETEs; paginated LISTs that must
    hold every key acknowledged before them and never deleted. PUTs go on after the departure
    and after the restart (some acknowledged by every node, the restarted one too), and never
    wait longer for an acknowledgement than the chain writer's writes may. Then, on every node:
    every acknowledged object not deleted reads back with its bytes and ETag, every acknowledged
    DELETE is NoSuchKey, and the listing (the same on every node) is exactly the acknowledged
    objects, plus possibly objects whose PUT or DELETE had no answer (a timeout, a reset),
    each of which either reads back whole or is NoSuchKey;
  - a node its peers cannot reach while it keeps its etcd lease (its RPC behind a relay that turns
    into a black hole, `--rpc-advertise`): its peers report it, the manager evicts it, it fences
    itself and registers again quarantined, every chain goes on without it; healed, it is placed
    again after the quarantine and resyncs; nothing acknowledged is lost (as above);
  - SIGTERM: a PUT in flight on the node finishes first, then the node leaves at once (its lease
    revoked) and exits 0.

Every wait is bounded; every process dies with this one (PR_SET_PDEATHSIG) and is stopped at the
end of the session, also when a test fails. A missing etcd fails the suite: it never skips.

Run by hand:
  /usr/bin/python3 -B -m pytest -q -p no:cacheprovider --rootdir=tests/e2e tests/e2e/test_cluster.py \
      --cairn-bin build/release/src/cairn --chain-kv-bin build/release/tests/chain_kv
"""

import collections
import hashlib
import http.client
import itertools
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import traceback
import urllib.parse

import botocore.exceptions
import pytest
import urllib3
from botocore.exceptions import ClientError

import conftest
import server as harness
from conftest import make_client, s3_error

LEASE_TTL_S = 2
CHAINS = 8
ORPHAN_INTERVAL_S = 2
ORPHAN_GRACE_S = 20
PEER_TIMEOUT_MS = 2000
EVICTION_QUARANTINE_S = 5
REPLICAS = 3
NODES = ("n1", "n2", "n3")
# A departure is seen within the lease TTL plus a manager round (0.5 s); the bound is generous
# for two busy cores.
DEPARTURE_TIMEOUT_S = 15
FORM_TIMEOUT_S = 30
CLI_TIMEOUT_S = 15
ETCD_START_TIMEOUT_S = 15
SECRET = "e2e-cluster-secret-0123456789abcdef"


def etcd_binary():
    return os.environ.get("CAIRN_ETCD_BIN") or "/usr/bin/etcd"


class Etcd:
    """One etcd member on free loopback ports, its data and log in a temporary directory."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="cairn-e2e-etcd-")
        self.log_path = os.path.join(self.tmp, "etcd.log")
        self.port = None
        self._proc = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, same_port=False):
        binary = etcd_binary()
        if not os.access(binary, os.X_OK):
            pytest.fail(f"no etcd at {binary}: run scripts/install-deps.sh (Debian's etcd-server), "
                        f"or set CAIRN_ETCD_BIN", pytrace=False)
        if not same_port:
            self.port = harness.free_port()
            self.peer_port = harness.free_port()
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [binary, "--name=e2e", f"--data-dir={self.tmp}/data",
                f"--listen-client-urls={self.endpoint}", f"--advertise-client-urls={self.endpoint}",
                f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=e2e={peer}", "--initial-cluster-state=new",
                # Short raft timing: etcd elects itself at once, and its shortest lease is 1 s.
                "--heartbeat-interval=20", "--election-timeout=200",
                "--logger=zap", "--log-outputs=stderr", "--log-level=error"]
        log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      preexec_fn=harness._die_with_parent)
        log.close()
        deadline = time.monotonic() + ETCD_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(f"etcd exited at start-up ({self._proc.returncode}):\n{self.log_tail()}", pytrace=False)
            if self._healthy():
                return self
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"etcd did not answer /health within {ETCD_START_TIMEOUT_S} s:\n{self.log_tail()}", pytrace=False)

    def _healthy(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", "/health")
            return b'"health":"true"' in conn.getresponse().read()
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return "(no etcd log)"

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class Cluster:
    """The etcd and the nodes of this suite; nodes by id (CairnServer objects of server.py)."""

    def __init__(self, binary, etcd):
        self.binary = os.path.abspath(binary)
        self.etcd = etcd
        self.tmp = tempfile.mkdtemp(prefix="cairn-e2e-cluster-")
        self.secret_file = os.path.join(self.tmp, "secret")
        with open(os.open(self.secret_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(SECRET + "\n")
        self.access_key, self.secret_key = harness.random_credentials()
        self.nodes = {}

    def cluster_args(self, node_id, rpc_port, zone):
        return ["--cluster", self.etcd.endpoint, "--node-id", node_id, "--rpc", f"127.0.0.1:{rpc_port}",
                "--zone", zone, "--cluster-secret-file", self.secret_file, "--lease-ttl", str(LEASE_TTL_S),
                "--chains", str(CHAINS), "--replicas", str(REPLICAS),
                # The orphan collector looks every 2 s and drops unnamed blobs older than 20 s: it runs
                # through every scenario below, and nothing acknowledged may lose a chunk to it.
                "--orphan-interval", str(ORPHAN_INTERVAL_S), "--orphan-grace", str(ORPHAN_GRACE_S),
                # Peer reports: a successor that takes no update for 2 s is reported; an evicted
                # node gets no new chain for 5 s.
                "--peer-timeout-ms", str(PEER_TIMEOUT_MS), "--eviction-quarantine", str(EVICTION_QUARANTINE_S)]

    def data_dir(self, node_id):
        return os.path.join(self.tmp, node_id)

    def add(self, node_id, zone):
        srv = harness.CairnServer(self.binary, data_dir=self.data_dir(node_id), access_key=self.access_key,
                                  secret_key=self.secret_key,
                                  extra_args=self.cluster_args(node_id, harness.free_port(), zone))
        conftest._servers.append(srv)  # logs shown on failure, stopped at the end of the session
        self.nodes[node_id] = srv
        return srv

    def admin(self, node_id, *args):
        """Runs `cairn admin ARGS` against a node; (exit status, stdout, stderr)."""
        srv = self.nodes[node_id]
        argv = [self.binary, "admin", "--endpoint", srv.endpoint, "--access-key", self.access_key,
                "--secret-key", self.secret_key, *args]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        return p.returncode, p.stdout, p.stderr

    def status(self, node_id, digests=False):
        """The status document as `cairn admin status --json` prints it, or None when it fails."""
        code, out, _ = self.admin(node_id, "status", "--json", *(["--digests"] if digests else []))
        return json.loads(out) if code == 0 else None

    def wait_for(self, node_id, predicate, timeout, what):
        """Polls a node's status until predicate(status) holds; fails with the last status seen."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.status(node_id)
            if last is not None and predicate(last):
                return last
            time.sleep(0.2)
        pytest.fail(f"{what}: not within {timeout} s; last status from {node_id}:\n{json.dumps(last, indent=1)}",
                    pytrace=False)

    def cleanup(self):
        for srv in self.nodes.values():
            srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def node_of(target):
    return target.split("/")[0]


def chain_nodes(chain):
    return [node_of(m["target"]) for m in chain["members"]]


def targets_in_chains(status):
    return {m["target"] for c in status["chains"] for m in c["members"]}


def node_ids(status):
    return sorted(n["id"] for n in status["nodes"])


def formed(status):
    """Three nodes, a manager, and the full table of three serving members on distinct nodes."""
    return (node_ids(status) == list(NODES) and status["manager"] in NODES and len(status["chains"]) == CHAINS and
            all(sorted(chain_nodes(c)) == list(NODES) and all(m["state"] == "serving" for m in c["members"])
                for c in status["chains"]))


def metrics(srv):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    values = {}
    for line in text.splitlines():
        if line.startswith(("cairn_cluster_", "cairn_lease_", "cairn_chunk_local_read_misses_total",
                            "cairn_local_extra_blobs_dropped_total")):
            name, value = line.split()
            values[name] = float(value)
    return values


def run_server(binary, args, env_overrides=(), timeout=20):
    """Runs `cairn server ARGS` expecting it to refuse to start; (exit status, output)."""
    env = dict(os.environ)
    env.pop("CAIRN_CLUSTER_SECRET", None)
    env.update(dict(env_overrides))
    p = subprocess.run([os.path.abspath(binary), "server", *args], capture_output=True, text=True, timeout=timeout,
                       env=env, preexec_fn=harness._die_with_parent)
    return p.returncode, p.stdout + p.stderr


# ---- fixtures ----

@pytest.fixture(scope="module")
def etcd():
    e = Etcd().start()
    yield e
    e.stop()
    e.cleanup()


@pytest.fixture(scope="module")
def cluster(pytestconfig, etcd):
    c = Cluster(pytestconfig.getoption("--cairn-bin"), etcd)
    try:
        for i, node_id in enumerate(NODES):
            c.add(node_id, f"z{i + 1}").start()
        c.wait_for("n1", formed, FORM_TIMEOUT_S, "three nodes, one manager, 8 full chains")
        yield c
    finally:
        c.cleanup()


@pytest.fixture
def s3_workload(cluster):
    """Starts S3Workloads against the cluster; each one's thread is ended at the end of the test,
    also when the test fails before its stop() (no workload outlives its test)."""
    started = []

    def start():
        started.append(S3Workload(cluster))
        return started[-1]

    yield start
    for workload in started:
        workload.halt()


# ---- start-up refusals (no etcd needed: each is refused before it is dialled) ----

def test_refuses_to_start_without_a_cluster_secret(pytestconfig, tmp_path):
    binary = pytestconfig.getoption("--cairn-bin")
    base = ["--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0", "--cluster", "http://127.0.0.1:9",
            "--node-id", "n9", "--rpc", "127.0.0.1:9"]
    code, out = run_server(binary, base)
    assert code != 0 and "cluster secret" in out and "CAIRN_CLUSTER_SECRET" in out, out
    code, out = run_server(binary, base, {"CAIRN_CLUSTER_SECRET": "too-short"})
    assert code != 0 and "at least 16" in out, out
    short = tmp_path / "short"
    short.write_text("0123456789\n")
    code, out = run_server(binary, base + ["--cluster-secret-file", str(short)])
    assert code != 0 and "at least 16" in out, out
    code, out = run_server(binary, base + ["--cluster-secret-file", str(tmp_path / "absent")])
    assert code != 0 and "does not exist" in out, out
    assert not (tmp_path / "d").exists(), "a refused start must not create the data directory"


def test_refuses_bad_node_ids_and_half_configured_nodes(pytestconfig, tmp_path):
    binary = pytestconfig.getoption("--cairn-bin")
    secret = {"CAIRN_CLUSTER_SECRET": SECRET}
    for bad in ("n/1", "n 1", "x" * 65):
        code, out = run_server(binary, ["--data", str(tmp_path / "d"), "--cluster", "http://127.0.0.1:9",
                                        "--node-id", bad, "--rpc", "127.0.0.1:9"], secret)
        assert code != 0 and "cluster.node_id" in out, out
    # A node id without --cluster would otherwise start a single node that takes writes.
    code, out = run_server(binary, ["--data", str(tmp_path / "d"), "--node-id", "n1"], secret)
    assert code != 0 and "--cluster" in out, out


def test_a_single_node_reports_itself_as_its_own_cluster(pytestconfig):
    srv = conftest.start_server(pytestconfig)
    try:
        p = subprocess.run([os.path.abspath(pytestconfig.getoption("--cairn-bin")), "admin", "--endpoint", srv.endpoint,
                            "--access-key", srv.access_key, "--secret-key", srv.secret_key, "status", "--json"],
                           capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        assert p.returncode == 0, p.stderr
        status = json.loads(p.stdout)
        assert status["mode"] == "single" and status["node"] == "local" and status["manager"] is None, status
        assert [n["id"] for n in status["nodes"]] == ["local"] and status["nodes"][0]["s3"] == srv.endpoint
        assert status["chains"] == [] and status["fenced"] is False
        # Without --cluster nothing is refused.
        make_client(srv).create_bucket(Bucket="single-node-bucket")
    finally:
        assert srv.stop() == 0


# ---- the running cluster ----

def test_cluster_forms_with_one_manager_and_full_chains(cluster):
    views = {node_id: cluster.wait_for(node_id, formed, FORM_TIMEOUT_S, f"{node_id} sees the cluster formed")
             for node_id in NODES}
    managers = {v["manager"] for v in views.values()}
    assert len(managers) == 1, views
    manager = managers.pop()
    for node_id, v in views.items():
        assert v["mode"] == "cluster" and v["node"] == node_id and v["cluster"] == "default"
        assert v["fenced"] is False and v["is_manager"] == (node_id == manager), v
        assert v["replicas"] == REPLICAS and v["chain_count"] == CHAINS and v["resync"] == []
        assert sorted(c["id"] for c in v["chains"]) == list(range(CHAINS))
        for c in v["chains"]:
            assert len(set(chain_nodes(c))) == REPLICAS, c  # distinct nodes
        by_id = {n["id"]: n for n in v["nodes"]}
        for i, n in enumerate(NODES):
            assert by_id[n]["targets"] == [f"{n}/0"] and by_id[n]["zone"] == f"z{i + 1}"
            assert by_id[n]["s3"] == cluster.nodes[n].endpoint and by_id[n]["lease"] > 0
    # Every node reads the same table.
    assert len({json.dumps(v["chains"], sort_keys=True) for v in views.values()}) == 1

    # The readable form says the same.
    code, out, err = cluster.admin("n2", "status")
    assert code == 0, err
    assert "mode:      cluster" in out and f"manager:   {manager}" in out and "nodes (3)" in out, out
    assert f"chains ({CHAINS}" in out and "every chain has 3 members" in out, out

    # /metrics: the gauges, refreshed every 0.5 s.
    deadline = time.monotonic() + 10
    while True:
        m = {node_id: metrics(cluster.nodes[node_id]) for node_id in NODES}
        ok = all(v.get("cairn_cluster_nodes") == 3 and v.get("cairn_cluster_chains") == CHAINS and
                 v.get("cairn_cluster_fenced") == 0 and v.get("cairn_lease_renewals_total", 0) > 0 and
                 v.get("cairn_cluster_is_manager") == (1 if node_id == manager else 0) for node_id, v in m.items())
        if ok:
            break
        assert time.monotonic() < deadline, m
        time.sleep(0.3)


def test_every_node_serves_the_same_buckets_objects_users_and_keys(cluster):
    cluster.wait_for("n1", all_full_and_serving, FORM_TIMEOUT_S, "the cluster formed")
    s1, s2, s3 = (make_client(cluster.nodes[n]) for n in NODES)
    s1.create_bucket(Bucket="shared")
    assert "shared" in [b["Name"] for b in s2.list_buckets()["Buckets"]]
    with s3_error("BucketAlreadyOwnedByYou", 409):
        s3.create_bucket(Bucket="shared")
    # Small and multi-chunk objects (chunks of 1 MiB spread over the chains), written on one node,
    # read, ranged and listed on the others.
    small = b"small object through the chains"
    big = os.urandom(5 * 1024 * 1024 + 12345)
    s1.put_object(Bucket="shared", Key="dir/small.txt", Body=small)
    etag = s2.put_object(Bucket="shared", Key="dir/big.bin", Body=big)["ETag"]
    assert s3.get_object(Bucket="shared", Key="dir/small.txt")["Body"].read() == small
    got = s1.get_object(Bucket="shared", Key="dir/big.bin")
    assert got["ETag"] == etag and got["Body"].read() == big
    ranged = s3.get_object(Bucket="shared", Key="dir/big.bin", Range="bytes=1048570-2097160")["Body"].read()
    assert ranged == big[1048570:2097161]
    listing = s3.list_objects_v2(Bucket="shared", Prefix="dir/", Delimiter="/")
    assert [o["Key"] for o in listing["Contents"]] == ["dir/big.bin", "dir/small.txt"], listing
    # Multipart across nodes: created on one, parts on two others, completed on the first.
    up = s1.create_multipart_upload(Bucket="shared", Key="mp")["UploadId"]
    p1 = os.urandom(5 * 1024 * 1024)
    p2 = b"tail part"
    e1 = s2.upload_part(Bucket="shared", Key="mp", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket="shared", Key="mp", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    s1.complete_multipart_upload(Bucket="shared", Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert s2.get_object(Bucket="shared", Key="mp")["Body"].read() == p1 + p2
    # Conditional writes are decided once, at the metadata chain's head (Debian's boto3 has no
    # IfNoneMatch on PutObject: the header goes in before signing).
    def if_none_match(request, **_):
        request.headers["If-None-Match"] = "*"

    s3.meta.events.register("before-sign.s3.PutObject", if_none_match)
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket="shared", Key="dir/small.txt", Body=b"no")
    s3.put_object(Bucket="shared", Key="dir/new.txt", Body=b"created once")
    s3.meta.events.unregister("before-sign.s3.PutObject", if_none_match)
    assert s1.get_object(Bucket="shared", Key="dir/new.txt")["Body"].read() == b"created once"
    s2.delete_object(Bucket="shared", Key="dir/small.txt")
    with s3_error("NoSuchKey", 404):
        s1.get_object(Bucket="shared", Key="dir/small.txt")
    # A bad signature is refused as such.
    with s3_error("SignatureDoesNotMatch", 403):
        make_client(cluster.nodes["n1"], secret_key="wrong" * 8).list_buckets()
    # Users and keys are the cluster's: made on one node, they work on another (nodes re-read
    # them every second).
    code, out, err = cluster.admin("n3", "user", "create", "alice")
    assert code == 0 and "alice" in out, err
    code, out, err = cluster.admin("n3", "key", "create", "alice", "--json")
    assert code == 0, err
    key = json.loads(out)
    alice = make_client(cluster.nodes["n1"], access_key=key["access_key"], secret_key=key["secret_key"])
    deadline = time.monotonic() + 10
    while True:
        try:
            alice.list_buckets()
            break
        except Exception:  # noqa: BLE001 - not known on n1 yet
            assert time.monotonic() < deadline, "a key made on n3 is not accepted by n1"
            time.sleep(0.3)
    code, out, err = cluster.admin("n2", "user", "list")
    assert code == 0 and "alice" in out, err


def crc32c(data):
    """CRC32C (Castagnoli), bit by bit: what meta::BucketShard hashes a bucket's name with."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_buckets_spread_over_the_metadata_chains(cluster):
    """The metadata is split by bucket over a quarter of the chains (CHAINS // 4): buckets of
    either metadata chain are created, filled, listed and deleted through different nodes, and
    ListBuckets on every node merges the chains' lists in name order."""
    cluster.wait_for("n1", all_full_and_serving, FORM_TIMEOUT_S, "the cluster formed")
    assert crc32c(b"123456789") == 0xE3069283
    shards = CHAINS // 4
    names = [f"spread-{i}" for i in range(8)]
    assert len({crc32c(n.encode()) % shards for n in names}) == shards, "the names must reach every chain"
    s1, s2, s3 = (make_client(cluster.nodes[n]) for n in NODES)
    for i, name in enumerate(names):
        (s1, s2, s3)[i % 3].create_bucket(Bucket=name)
        (s1, s2, s3)[(i + 1) % 3].put_object(Bucket=name, Key=f"k{i}", Body=name.encode())
    for client in (s1, s2, s3):
        listed = [b["Name"] for b in client.list_buckets()["Buckets"]]
        assert [n for n in listed if n.startswith("spread-")] == names, listed
        assert listed == sorted(listed), listed
    for i, name in enumerate(names):
        assert s3.get_object(Bucket=name, Key=f"k{i}")["Body"].read() == name.encode()
        assert [o["Key"] for o in s2.list_objects_v2(Bucket=name)["Contents"]] == [f"k{i}"]
        with s3_error("BucketNotEmpty", 409):
            s1.delete_bucket(Bucket=name)
        with s3_error("BucketAlreadyOwnedByYou", 409):
            s2.create_bucket(Bucket=name)
    for i, name in enumerate(names[:4]):
        s2.delete_object(Bucket=name, Key=f"k{i}")
        s3.delete_bucket(Bucket=name)
    for client in (s1, s2, s3):
        listed = [b["Name"] for b in client.list_buckets()["Buckets"]]
        assert [n for n in listed if n.startswith("spread-")] == names[4:], listed
    with s3_error("NoSuchBucket", 404):
        s1.put_object(Bucket=names[0], Key="late", Body=b"x")


def test_data_directory_of_another_node_is_refused(cluster, pytestconfig):
    code, out = run_server(pytestconfig.getoption("--cairn-bin"),
                           ["--data", cluster.data_dir("n1"), "--listen", "127.0.0.1:0"] +
                           cluster.cluster_args("n7", harness.free_port(), "z1"))
    assert code != 0 and "belongs to node n1" in out, out
    # Started without --cluster, a node's directory is refused too (it would take writes alone).
    code, out = run_server(pytestconfig.getoption("--cairn-bin"),
                           ["--data", cluster.data_dir("n1"), "--listen", "127.0.0.1:0"])
    assert code != 0 and "belongs to node n1" in out, out


def test_sigterm_while_joining_stops_at_once(cluster, pytestconfig, tmp_path):
    """A second process under a live node's id waits for that id's lease (up to its start
    timeout); a SIGTERM meanwhile stops it at once, cleanly, and the live node stays."""
    cluster.wait_for("n1", lambda s: "n1" in node_ids(s), FORM_TIMEOUT_S, "n1 registered")
    env = dict(os.environ)
    env.pop("CAIRN_CLUSTER_SECRET", None)
    log = open(tmp_path / "second.log", "w+")
    p = subprocess.Popen([os.path.abspath(pytestconfig.getoption("--cairn-bin")), "server",
                          "--data", str(tmp_path / "second"), "--listen", "127.0.0.1:0"] +
                         cluster.cluster_args("n1", harness.free_port(), "z1"),
                         stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=harness._die_with_parent)
    deadline = time.monotonic() + 15
    while "cannot register yet" not in open(tmp_path / "second.log").read():
        assert p.poll() is None and time.monotonic() < deadline, open(tmp_path / "second.log").read()
        time.sleep(0.1)
    sent = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0, open(tmp_path / "second.log").read()
    assert time.monotonic() - sent < 3, "the join's wait outlasted the signal"
    assert "n1" in node_ids(cluster.status("n2"))


def all_full_and_serving(status):
    return len(status["chains"]) == CHAINS and all(
        len(c["members"]) == REPLICAS and all(m["state"] == "serving" for m in c["members"]) for c in status["chains"])


class ChainWriter:
    """tests/tools/chain_kv writing through the chains in the background until stopped, every write
    a key of its own (so that every acknowledged write is checked, not only each key's last);
    every acknowledged write goes to its log."""

    def __init__(self, kv_bin, cluster, tmp_path):
        self.kv_bin, self.cluster = kv_bin, cluster
        self.log = str(tmp_path / "acked.log")
        self.stop_file = str(tmp_path / "stop")
        self.proc = subprocess.Popen(
            # Keys of their own per test (the cluster lives on): a lost write cannot be covered
            # by an earlier test's copy. The stop file ends the run; --seconds only bounds it.
            self._argv("write", "--unique-keys", "--prefix", f"{tmp_path.name}-", "--threads", "2", "--seconds", "600",
                       "--until-file", self.stop_file),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=harness._die_with_parent)

    def _argv(self, *args):
        return [self.kv_bin, "--etcd", self.cluster.etcd.endpoint, "--secret-file", self.cluster.secret_file,
                *args, "--log", self.log]

    def acked(self):
        try:
            with open(self.log) as f:
                return sum(1 for line in f if line.startswith("A "))
        except OSError:
            return 0

    def wait_for_progress(self, what, count=20, timeout=20):
        """Waits until `count` more writes are acknowledged: writes go on."""
        start = self.acked()
        wait_until(lambda: self.acked() >= start + count, timeout, f"{what}: {count} more writes acknowledged")

    def finish(self, timeout=60):
        open(self.stop_file, "w").close()
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err[-3000:]
        return json.loads(out.strip().splitlines()[-1])

    def verify(self):
        p = subprocess.run(self._argv("verify"), capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"acknowledged writes missing or wrong:\n{p.stdout}\n{p.stderr[-3000:]}"
        return json.loads(p.stdout.strip().splitlines()[-1])


# ---- an S3 workload through the cluster (boto3, every node in turn) ----

S3_PREFIX = "w/"
S3_SMALL = (100, 64 * 1024)
S3_LARGE = (1024 * 1024, 3 * 1024 * 1024)  # several 1 MiB chunks: blobs of several chains
S3_LARGE_ONE_IN = 10
S3_LIST_EVERY = 16
S3_DELETE_EVERY = 9
S3_PAGE = 100  # keys per LIST page: listings take several pages
# A request that never left (the node is down): the same operation goes to the next node.
S3_UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)
# A request whose answer was lost (a timeout, a connection reset): its outcome is unknown.
S3_LOST = (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError, OSError)


def s3_body(key):
    """The bytes of the object at `key`, a function of the key alone: about one in S3_LARGE_ONE_IN
    of S3_LARGE bytes, the others of S3_SMALL bytes."""
    rng = random.Random(key)
    size = rng.randint(*S3_LARGE) if rng.randrange(S3_LARGE_ONE_IN) == 0 else rng.randint(*S3_SMALL)
    return rng.randbytes(size)


def s3_etag(body):
    return f'"{hashlib.md5(body).hexdigest()}"'


def s3_failure(e):
    """How a failed request is counted: its HTTP status and S3 code, or the exception's name."""
    if isinstance(e, ClientError):
        return f"{e.response['ResponseMetadata']['HTTPStatusCode']} {e.response['Error'].get('Code')}"
    return type(e).__name__


def s3_client(srv, read_timeout=15):
    """One attempt per request, short timeouts: a request to a node that is gone fails quickly."""
    return make_client(srv, retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=3,
                       read_timeout=read_timeout)


def s3_list(client, bucket, max_pages=10000):
    """Every object under S3_PREFIX, page by page: {key: (etag, size)}; pages must not repeat a key."""
    listed, token = {}, None
    for _ in range(max_pages):
        page = client.list_objects_v2(Bucket=bucket, Prefix=S3_PREFIX, MaxKeys=S3_PAGE,
                                      **({"ContinuationToken": token} if token else {}))
        for o in page.get("Contents", []):
            assert o["Key"] not in listed, f"{o['Key']} listed twice"
            listed[o["Key"]] = (o["ETag"], o["Size"])
        if not page.get("IsTruncated"):
            return listed
        token = page["NextContinuationToken"]
    raise AssertionError(f"a listing of more than {max_pages} pages")


def node_alive(srv):
    """The node's process runs (the harness's own record: kill() and stop() clear it)."""
    proc = srv._proc
    return proc is not None and proc.returncode is None


class S3Workload:
    """S3 clients' PUT, GET, DELETE and LIST in a loop in a background thread, each request to the
    next live node in turn (a node that cannot be reached: the same request to the next one), in a
    bucket of its own, every PUT a key of its own. Every acknowledged result is recorded:
      - PUT (bytes a function of the key, s3_body): acknowledged (key -> ETag), or unknown (an
        error or a timeout: it may have applied);
      - GET of an acknowledged key never deleted: the bytes and ETag must be right, and a
        NoSuchKey is a lost write (failures and timeouts are only counted);
      - DELETE of an acknowledged key: acknowledged, or maybe deleted (its outcome unknown);
      - LIST of the prefix (paginated): every key acknowledged before it started and never
        subject to a DELETE must be in it, and no key whose DELETE was acknowledged.
    A wrong answer is recorded in `errors` (stop() fails the test with them); max_gap is the
    longest time without an acknowledged PUT, the wait after the last one included."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.bucket = conftest.unique_bucket_name("s3w")
        self.rng = random.Random()
        self.acked = {}  # key -> ETag of an acknowledged PUT
        self.unknown = set()  # PUTs without an answer: each may or may not have applied
        self.present = []  # acknowledged, never subject to a DELETE (GET and DELETE pick here)
        self.deleted = set()  # acknowledged DELETEs
        self.maybe_deleted = set()  # DELETEs without an answer
        self.counts = collections.Counter()  # "<op> ok" / "<op> failed", and each failure's kind
        self.errors = []
        self.puts_acked = 0
        self.puts_acked_by = collections.Counter()  # node id -> PUTs it acknowledged
        self.max_gap = 0.0
        self._seq = 0
        self._turn = 0
        self._clients = {}
        self._stats = None
        self._stop = threading.Event()
        s3_client(cluster.nodes[NODES[0]]).create_bucket(Bucket=self.bucket)
        self._started = self._last_put = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="s3-workload", daemon=True)
        self._thread.start()

    # -- the loop (the thread's own state: nothing below is read by the test until stop()) --

    def _run(self):
        try:
            for n in itertools.count():
                if self._stop.is_set():
                    break
                # A LIST every S3_LIST_EVERY operations, a DELETE every S3_DELETE_EVERY (even a
                # short run has some), else a GET or (more often) a PUT.
                if n % S3_LIST_EVERY == S3_LIST_EVERY - 1 and self.present:
                    self._on_nodes("list", self._list)
                elif n % S3_DELETE_EVERY == S3_DELETE_EVERY - 1 and self.present:
                    self._delete(self.present.pop(self.rng.randrange(len(self.present))))
                elif self.rng.random() < 0.4 and self.present:
                    key = self.rng.choice(self.present)
                    self._on_nodes("get", lambda c: self._get(c, key))
                else:
                    self._put()
        except Exception:  # noqa: BLE001 - a bug of the workload itself: stop() reports it
            self.errors.append("the workload stopped:\n" + traceback.format_exc())

    def _client(self):
        """The next live node and its client; (None, None) when no node runs."""
        for _ in NODES:
            node_id = NODES[self._turn % len(NODES)]
            self._turn += 1
            srv = self.cluster.nodes[node_id]
            if node_alive(srv):
                endpoint = srv.endpoint
                if endpoint not in self._clients:  # a restarted node listens on another port
                    self._clients[endpoint] = s3_client(srv)
                return node_id, self._clients[endpoint]
        return None, None

    def _on_nodes(self, op, request):
        """request(client) on the next live node, on the next one while a node cannot be reached.
        The node that answered; False: failed (counted); None: no node could be reached."""
        for _ in NODES:
            node_id, client = self._client()
            if client is None:
                break
            try:
                request(client)
                self.counts[f"{op} ok"] += 1
                return node_id
            except S3_UNREACHABLE:
                self.counts["unreachable"] += 1
            except (ClientError, *S3_LOST) as e:
                self.counts[f"{op} failed"] += 1
                self.counts[f"{op} {s3_failure(e)}"] += 1
                return False
        self._stop.wait(0.1)
        return None

    def _put(self):
        key = f"{S3_PREFIX}{self._seq:07d}"
        self._seq += 1
        body = s3_body(key)
        answer = {}
        done = self._on_nodes("put", lambda c: answer.update(c.put_object(Bucket=self.bucket, Key=key, Body=body)))
        if done is False:
            self.unknown.add(key)
        elif done:
            self.puts_acked_by[done] += 1
            if answer["ETag"] != s3_etag(body):
                self.errors.append(f"PUT {key}: ETag {answer['ETag']}, expected {s3_etag(body)}")
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - self._last_put)
            self._last_put = now
            self.acked[key] = answer["ETag"]
            self.present.append(key)
            self.puts_acked += 1

    def _get(self, client, key):
        try:
            got = client.get_object(Bucket=self.bucket, Key=key)
            body = got["Body"].read()
        except ClientError as e:
            if e.response["Error"].get("Code") == "NoSuchKey":
                self.errors.append(f"GET {key} (acknowledged, never deleted): NoSuchKey")
            raise
        expected = s3_body(key)
        if body != expected or got["ETag"] != self.acked[key]:
            self.errors.append(f"GET {key} from {client.meta.endpoint_url}: {len(body)} bytes (MD5 "
                               f"{s3_etag(body)}), ETag {got['ETag']}; expected {len(expected)} bytes (MD5 "
                               f"{s3_etag(expected)}), ETag {self.acked[key]}")

    def _delete(self, key):
        done = self._on_nodes("delete", lambda c: c.delete_object(Bucket=self.bucket, Key=key))
        if done:
            self.deleted.add(key)
        elif done is False:
            self.maybe_deleted.add(key)
        else:
            self.present.append(key)  # never sent

    def _list(self, client):
        expected, deleted = set(self.present), set(self.deleted)
        listed = s3_list(client, self.bucket)
        missing, resurrected = expected - set(listed), deleted & set(listed)
        if missing or resurrected:
            self.errors.append(f"LIST: {len(missing)} acknowledged keys missing {sorted(missing)[:10]}, "
                               f"{len(resurrected)} deleted keys listed {sorted(resurrected)[:10]}")

    # -- the test's side --

    def wait_for_progress(self, what, count=20, timeout=20, every_node=False):
        """Waits until `count` more PUTs are acknowledged (every_node: at least one by each node):
        S3 writes go on."""
        start, start_by = self.puts_acked, dict(self.puts_acked_by)
        done = (lambda: self.puts_acked >= start + count and
                (not every_node or all(self.puts_acked_by[n] > start_by.get(n, 0) for n in NODES)))
        wait_until(lambda: done() or not self._thread.is_alive(), timeout,
                   f"{what}: {count} more S3 PUTs acknowledged{', some by every node' if every_node else ''}")
        assert self._thread.is_alive(), self.errors

    def halt(self, timeout=60):
        """Ends the loop after the request in flight (each is bounded by the client's timeouts)."""
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the S3 workload did not stop within {timeout} s"

    def stop(self):
        """Ends the loop and returns the figures; fails on a wrong answer seen meanwhile."""
        if self._stats is None:
            stopped = time.monotonic()
            self.halt()
            self._stats = dict(self.counts, max_gap_ms=int(1000 * max(self.max_gap, stopped - self._last_put)),
                               seconds=round(stopped - self._started, 1))
        assert not self.errors, "wrong S3 answers during the run:\n" + "\n".join(self.errors[:20])
        return self._stats

    def verify(self, node_id):
        """On one node's endpoint: every acknowledged PUT never (maybe) deleted reads back with its
        bytes and ETag; every acknowledged DELETE is NoSuchKey; the listing holds exactly the
        acknowledged keys never deleted, plus some of those whose PUT or DELETE had no answer (those
        listed read back whole, those not listed are NoSuchKey). Returns the listing and the bytes read."""
        client = s3_client(self.cluster.nodes[node_id], read_timeout=30)
        problems, read = [], 0

        def get(key):
            nonlocal read
            try:
                got = client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as e:
                return s3_failure(e), None
            body = got["Body"].read()
            read += len(body)
            return got["ETag"], body

        listed = s3_list(client, self.bucket)
        live = set(self.acked) - self.deleted - self.maybe_deleted
        assert len(live) == len(self.present), "the workload's records disagree"
        if live - set(listed):
            problems.append(f"acknowledged keys not listed: {sorted(live - set(listed))[:10]}")
        if self.deleted & set(listed):
            problems.append(f"deleted keys listed: {sorted(self.deleted & set(listed))[:10]}")
        strays = set(listed) - live - self.unknown - self.maybe_deleted
        if strays:
            problems.append(f"keys listed that no PUT wrote: {sorted(strays)[:10]}")
        for key, (etag, size) in sorted(listed.items()):
            body = s3_body(key)
            if (etag, size) != (s3_etag(body), len(body)):
                problems.append(f"{key} listed with ETag {etag}, {size} bytes; expected {s3_etag(body)}, {len(body)}")
        for key in sorted(live | self.unknown | self.maybe_deleted):
            etag, body = get(key)
            body_ok = body == s3_body(key) and etag == s3_etag(s3_body(key))
            if key in live and not (body_ok and etag == self.acked[key]):
                problems.append(f"GET {key} (acknowledged): {etag}, {len(body or b'')} bytes; expected "
                                f"{self.acked[key]}, {len(s3_body(key))} bytes")
            elif key not in live and key in listed and not body_ok:
                problems.append(f"GET {key} (listed, its outcome unknown): {etag}, not its bytes")
            elif key not in live and key not in listed and etag != "404 NoSuchKey":
                problems.append(f"GET {key} (not listed, its outcome unknown): {etag}, expected 404 NoSuchKey")
        for key in sorted(self.deleted):
            etag, _ = get(key)
            if etag != "404 NoSuchKey":
                problems.append(f"GET {key} (deleted): {etag}, expected 404 NoSuchKey")
        assert not problems, f"S3 data on {node_id} ({len(problems)} problems):\n" + "\n".join(problems[:30])
        return listed, read


def check_s3_after(cluster, workload, what):
    """With the failure repaired and the workload stopped: it saw no wrong answer, PUTs waited
    within the chain writer's bound, and every node serves exactly its acknowledged objects (the
    same listing on every node)."""
    stats = workload.stop()
    ok = {op: stats.get(f"{op} ok", 0) for op in ("put", "get", "delete", "list")}
    failed = {op: stats.get(f"{op} failed", 0) for op in ("put", "get", "delete", "list")}
    assert ok["put"] > 20 and ok["get"] > 0 and ok["delete"] > 0 and ok["list"] > 0, stats
    # PUTs waited at most what the chain writer's writes may wait (check_data_after).
    assert stats["max_gap_ms"] < (LEASE_TTL_S + 8) * 1000, stats
    listings, read = {}, 0
    for node_id in NODES:
        listings[node_id], n = workload.verify(node_id)
        read += n
    assert all(listing == listings[NODES[0]] for listing in listings.values()), "the nodes list different objects"
    # Each node read every object, the chunks of the chains it serves from its own disk: none may
    # have been missing there (the local extras' collection runs every 2 s on every node).
    counters = {n: metrics(cluster.nodes[n]) for n in NODES}
    misses = {n: c.get("cairn_chunk_local_read_misses_total", 0) for n, c in counters.items()}
    assert not any(misses.values()), f"chunks missing from a node's own disk for a chain it serves: {misses}"
    extras = sum(c.get("cairn_local_extra_blobs_dropped_total", 0) for c in counters.values())
    listed = set(listings[NODES[0]])
    failures = ", ".join(f"{k} x{v}" for k, v in sorted(stats.items())
                         if k not in ("max_gap_ms", "seconds") and not k.endswith((" ok", " failed"))) or "none"
    by_node = ", ".join(f"{n} {workload.puts_acked_by[n]}" for n in NODES)
    print(f"{what}, S3 over {stats['seconds']} s: {ok['put']} PUTs acknowledged ({by_node}; {failed['put']} failed), "
          f"{ok['get']} GETs checked ({failed['get']} failed), {ok['delete']} DELETEs ({failed['delete']} failed), "
          f"{ok['list']} LISTs checked ({failed['list']} failed); failures: {failures}; longest wait for a PUT "
          f"acknowledgement {stats['max_gap_ms']} ms; on each node the {len(workload.present)} objects kept read "
          f"back ({read / len(NODES) / 2**20:.1f} MiB), the {len(workload.deleted)} deleted absent, the listing "
          f"exactly those plus {len(listed & workload.unknown)} of {len(workload.unknown)} unanswered PUTs and "
          f"{len(listed & workload.maybe_deleted)} of {len(workload.maybe_deleted)} unanswered DELETEs; no chunk "
          f"missing from a serving node's disk; {extras:.0f} local extras deleted since the nodes started")

def replicas_agree(cluster):
    """Every chain's three replicas (each node reports those the table names it for) are ready,
    with equal digests."""
    by_chain = {}
    for node_id in NODES:
        s = cluster.status(node_id, digests=True)
        if s is None:
            return False
        for r in s["local_replicas"]:
            by_chain.setdefault(r["chain"], []).append(r)
    return len(by_chain) == CHAINS and all(
        len(rs) == REPLICAS and all(r["phase"] == "ready" and r["digest"] == rs[0]["digest"] for r in rs)
        for rs in by_chain.values())


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout} s", pytrace=False)


def check_data_after(cluster, writer, workload, what):
    """After a failure and its repair, with the writer and the S3 workload still running: writes go
    on, then every acknowledged write is read back from every member of its chain, every chain's
    replicas are identical, and every node serves exactly the S3 objects acknowledged
    (check_s3_after)."""
    cluster.wait_for("n1", all_full_and_serving, FORM_TIMEOUT_S, f"{what}: every chain full and serving again")
    writer.wait_for_progress(f"{what}, every chain serving again")
    workload.wait_for_progress(f"{what}, every chain serving again", every_node=True)
    result = writer.finish()
    workload.stop()  # quiet chains for the digests; its figures are checked below
    acked = writer.acked()
    assert result["acked"] == acked > 100, result
    # Writes waited at most a lease TTL for the departure, plus the manager's round, plus slack
    # for two busy cores.
    assert result["max_gap_ms"] < (LEASE_TTL_S + 8) * 1000, result
    checked = writer.verify()
    assert checked["bad"] == 0 and checked["keys"] == acked, checked
    wait_until(lambda: replicas_agree(cluster), FORM_TIMEOUT_S, f"{what}: the replicas of every chain identical")
    print(f"{what}: {acked} writes acknowledged ({result['failed']} failed), longest wait for an "
          f"acknowledgement {result['max_gap_ms']} ms; each of the {checked['keys']} acknowledged writes read back "
          f"from every member ({checked['reads']} reads); every chain's replicas identical")
    check_s3_after(cluster, workload, what)


def kill_and_restart(cluster, writer, workload, victim, witness):
    target = f"{victim}/0"
    assert cluster.nodes[victim].kill() == -signal.SIGKILL
    started = time.monotonic()
    status = cluster.wait_for(
        witness, lambda s: victim not in node_ids(s) and target not in targets_in_chains(s),
        DEPARTURE_TIMEOUT_S, f"{victim} (killed) gone from the nodes and from every chain")
    assert len(status["nodes"]) == 2, status
    assert all(len(c["members"]) == 2 for c in status["chains"]), status
    print(f"{victim} killed: gone from the table after {time.monotonic() - started:.1f} s")
    writer.wait_for_progress(f"{victim} gone")
    workload.wait_for_progress(f"{victim} gone")
    cluster.nodes[victim].start()
    # Back with a new lease (a new incarnation): every chain takes it back at its tail, syncing
    # until its copy is complete, then serving.
    cluster.wait_for(witness, lambda s: victim in node_ids(s) and all(
        c["members"][-1]["target"] == target for c in s["chains"]), DEPARTURE_TIMEOUT_S,
        f"{victim} (restarted) the tail of every chain")
    return status


def test_killed_node_leaves_returns_resyncs_and_loses_nothing(cluster, pytestconfig, tmp_path, s3_workload):
    status = cluster.wait_for("n1", all_full_and_serving, FORM_TIMEOUT_S, "the cluster formed")
    manager = status["manager"]
    victim = next(n for n in NODES if n != manager)
    writer = ChainWriter(pytestconfig.getoption("--chain-kv-bin"), cluster, tmp_path)
    workload = s3_workload()
    writer.wait_for_progress("before the kill", count=50)
    workload.wait_for_progress("before the kill", every_node=True)
    kill_and_restart(cluster, writer, workload, victim, witness=manager)
    check_data_after(cluster, writer, workload, f"{victim} killed and restarted")


def test_killed_manager_passes_the_office_on_and_loses_nothing(cluster, pytestconfig, tmp_path, s3_workload):
    status = cluster.wait_for("n1", all_full_and_serving, FORM_TIMEOUT_S, "the cluster formed")
    manager = status["manager"]
    witness = next(n for n in NODES if n != manager)
    writer = ChainWriter(pytestconfig.getoption("--chain-kv-bin"), cluster, tmp_path)
    workload = s3_workload()
    writer.wait_for_progress("before the kill", count=50)
    workload.wait_for_progress("before the kill", every_node=True)
    started = time.monotonic()
    kill_and_restart(cluster, writer, workload, manager, witness)
    status = cluster.status(witness)
    assert status["manager"] not in (None, manager), status
    print(f"manager {manager} killed: {status['manager']} holds the office ({time.monotonic() - started:.1f} s)")
    check_data_after(cluster, writer, workload, f"manager {manager} killed and restarted")


def test_etcd_restart_loses_nothing(cluster, pytestconfig, tmp_path, s3_workload):
    cluster.wait_for("n1", all_full_and_serving, FORM_TIMEOUT_S, "the cluster formed")
    writer = ChainWriter(pytestconfig.getoption("--chain-kv-bin"), cluster, tmp_path)
    workload = s3_workload()
    writer.wait_for_progress("before etcd stops", count=50)
    workload.wait_for_progress("before etcd stops", every_node=True)
    cluster.etcd.stop()
    time.sleep(1)
    cluster.etcd.start(same_port=True)
    check_data_after(cluster, writer, workload, "etcd killed and restarted")
    cluster.wait_for("n1", lambda s: len(s["nodes"]) == 3 and s["manager"] in NODES, FORM_TIMEOUT_S,
                     "three nodes and a manager after etcd restarted")


def test_orphan_collection_spares_every_named_chunk(cluster):
    """The orphan collector has run every 2 s since the cluster formed, dropping unnamed blobs older
    than 20 s: the objects the first tests wrote, now older than that, still read back whole, on
    every node."""
    cluster.wait_for("n1", all_full_and_serving, FORM_TIMEOUT_S, "every chain full and serving")
    for node in NODES:
        s3 = make_client(cluster.nodes[node])
        got = s3.get_object(Bucket="shared", Key="dir/big.bin")
        body = got["Body"].read()
        assert len(body) == 5 * 1024 * 1024 + 12345
        assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest()
        assert len(s3.get_object(Bucket="shared", Key="mp")["Body"].read()) == 5 * 1024 * 1024 + len(b"tail part")
        for i in range(4, 8):
            assert s3.get_object(Bucket=f"spread-{i}", Key=f"k{i}")["Body"].read() == f"spread-{i}".encode()
    figures = collections.Counter()
    for node in NODES:
        conn = http.client.HTTPConnection("127.0.0.1", int(cluster.nodes[node].endpoint.rsplit(":", 1)[1]), timeout=10)
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            for name in ("cairn_orphan_passes_total", "cairn_orphan_blobs_dropped_total"):
                if line.startswith(name + " "):
                    figures[name] += int(float(line.split()[-1]))
        conn.close()
    assert figures["cairn_orphan_passes_total"] >= 1, "the collector never completed a pass"
    print(f"orphan collection: {figures['cairn_orphan_passes_total']} passes (on the nodes running now), "
          f"{figures['cairn_orphan_blobs_dropped_total']} unnamed blobs dropped")


class BlackHoleRelay:
    """A TCP relay on loopback in front of one node's RPC port. cut(): it stops moving bytes either
    way but keeps every connection open, and accepts new ones it never serves (a black hole:
    nothing is refused, nothing arrives); heal(): bytes flow again."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    def cut(self):
        self._flowing.clear()

    def heal(self):
        self._flowing.set()

    def close(self):
        self._closed.set()
        self._flowing.set()
        self._listener.close()

    def _accept(self):
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                continue
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst), name="relay-pump", daemon=True).start()

    def _pump(self, src, dst):
        try:
            while not self._closed.is_set():
                self._flowing.wait()
                readable, _, _ = select.select([src], [], [], 0.1)
                if not readable or not self._flowing.is_set():
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def lease_of(status, node_id):
    return next((n["lease"] for n in status["nodes"] if n["id"] == node_id), None)


def test_node_its_peers_cannot_reach_is_evicted_and_returns(cluster, pytestconfig, tmp_path, s3_workload):
    cluster.wait_for("n1", all_full_and_serving, FORM_TIMEOUT_S, "the cluster formed")
    victim, witness = "n3", "n1"
    srv = cluster.nodes[victim]
    plain_args = list(srv.extra_args)
    rpc_port = int(plain_args[plain_args.index("--rpc") + 1].rsplit(":", 1)[1])
    relay = BlackHoleRelay(rpc_port)
    try:
        # The victim again, its peers dialling it through the relay; its etcd and S3 stay direct.
        assert srv.stop() == 0
        srv.extra_args = plain_args + ["--rpc-advertise", f"127.0.0.1:{relay.port}"]
        srv.start()
        cluster.wait_for(witness, lambda s: all_full_and_serving(s) and any(
            n["id"] == victim and n["rpc"] == f"127.0.0.1:{relay.port}" for n in s["nodes"]), FORM_TIMEOUT_S,
            f"{victim} back behind the relay, every chain full and serving")
        writer = ChainWriter(pytestconfig.getoption("--chain-kv-bin"), cluster, tmp_path)
        workload = s3_workload()
        writer.wait_for_progress("before the cut", count=50)
        workload.wait_for_progress("before the cut", every_node=True)
        lease = lease_of(cluster.status(witness), victim)

        relay.cut()
        started = time.monotonic()
        # Reported by its peers, evicted: it registered again (another lease) quarantined, and no
        # chain names it. Its lease never lapsed: only the reports can have done this.
        status = cluster.wait_for(
            witness, lambda s: lease_of(s, victim) not in (None, lease) and f"{victim}/0" not in targets_in_chains(s),
            DEPARTURE_TIMEOUT_S, f"{victim} (cut off from its peers, not from etcd) evicted")
        evicted_after = time.monotonic() - started
        record = next(n for n in status["nodes"] if n["id"] == victim)
        assert record.get("quarantined_until_ms", 0) > 0, record
        print(f"{victim} cut off from its peers: evicted from every chain after {evicted_after:.1f} s "
              f"(peer timeout {PEER_TIMEOUT_MS} ms); registered again under lease {record['lease']}, quarantined")
        writer.wait_for_progress(f"{victim} evicted")
        workload.wait_for_progress(f"{victim} evicted")

        relay.heal()
        check_data_after(cluster, writer, workload, f"{victim} cut off from its peers, evicted, healed")
    finally:
        relay.close()
        if srv.extra_args != plain_args:
            srv.stop()
            srv.extra_args = plain_args
            srv.start()
            cluster.wait_for(witness, all_full_and_serving, FORM_TIMEOUT_S, f"{victim} back without the relay")


def test_sigterm_leaves_at_once_and_exits_cleanly(cluster):
    status = cluster.wait_for("n1", lambda s: all_full_and_serving(s) and s["manager"] in NODES, FORM_TIMEOUT_S,
                              "three nodes, a manager and every chain full")
    leaving = next(n for n in NODES if n != status["manager"])
    witness = status["manager"]
    # A PUT in flight on the leaving node when SIGTERM comes finishes first: the node drains while
    # it is still a member of its chains, then leaves. Half the body is sent before the signal, the
    # rest after, through a presigned URL on a raw connection.
    make_client(cluster.nodes[witness]).create_bucket(Bucket="drain")
    body = os.urandom(3 * 1024 * 1024 + 5)
    url = urllib.parse.urlsplit(make_client(cluster.nodes[leaving]).generate_presigned_url(
        "put_object", Params={"Bucket": "drain", "Key": "in-flight"}, ExpiresIn=120))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("PUT", url.path + "?" + url.query, skip_accept_encoding=True)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[:len(body) // 2])
    exit_status = []
    stopper = threading.Thread(target=lambda: exit_status.append(cluster.nodes[leaving].stop()))
    stopper.start()
    time.sleep(1.0)
    if not stopper.is_alive():
        answer = conn.getresponse()
        pytest.fail(f"the node exited (status {exit_status}) with a request in flight, which got "
                    f"{answer.status} {answer.read()[:500]!r}")
    conn.send(body[len(body) // 2:])
    response = conn.getresponse()
    assert response.status == 200, (response.status, response.read())
    conn.close()
    stopper.join(timeout=60)
    assert exit_status == [0], exit_status
    assert make_client(cluster.nodes[witness]).get_object(Bucket="drain", Key="in-flight")["Body"].read() == body
    # Its lease was revoked on the way out: gone at once, not a lease TTL later.
    status = cluster.status(witness)
    assert leaving not in node_ids(status), status
