#!/usr/bin/python3
"""Compares small-object S3 throughput of two cairn binaries by interleaved runs (A B A B ...).

This machine's speed drifts from minute to minute, so two builds are compared only by runs that
alternate between them, and by the medians of those runs. Each binary serves its own fresh data
directory; the load comes from A's `cairn bench s3` (the client is the same for both sides).
With --user, B is also measured with a user's key (not root), which exercises the authorization
path that reads the bucket and the object's ACL before the operation.

  scripts/bench-s3-ab.py OLD_CAIRN NEW_CAIRN [--rounds 5] [--seconds 4] [--user] [--dir DIR]

Prints one line per run and then, per workload, the median ops/s of each side and B/A.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

WORKLOADS = [("get", "4KiB", 16), ("put", "4KiB", 64)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, workdir, name):
        self.binary = binary
        self.dir = os.path.join(workdir, name)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, CAIRN_ROOT_ACCESS_KEY="benchroot", CAIRN_ROOT_SECRET_KEY="benchrootsecret0")
        log = open(os.path.join(workdir, name + ".log"), "w")
        self.proc = subprocess.Popen([binary, "--log-level", "warn", "server", "--data", self.dir, "--listen",
                                      f"127.0.0.1:{self.port}"], env=self.env, stdout=log, stderr=log)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{binary} did not start; see {log.name}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def make_user(binary, server):
    env = dict(server.env, CAIRN_ENDPOINT=server.endpoint)
    subprocess.run([binary, "admin", "user", "create", "bench"], env=env, check=True, capture_output=True)
    out = subprocess.run([binary, "admin", "key", "create", "bench", "--json"], env=env, check=True,
                         capture_output=True, text=True).stdout
    key = json.loads(out)
    return key["access_key"], key["secret_key"]


def run(client, server, access, secret, bucket, op, size, conc, seconds):
    out = subprocess.run([client, "bench", "s3", "--endpoint", server.endpoint, "--access-key", access,
                          "--secret-key", secret, "--bucket", bucket, "--op", op, "--size", size,
                          "--concurrency", str(conc), "--duration", str(seconds), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["ops_per_sec"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--user", action="store_true")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="cairn-ab-", dir=args.dir)
    print(f"machine: {os.cpu_count()} cpus, {os.uname().release}; method: {args.rounds} interleaved rounds of "
          f"{args.seconds:g} s per workload and side, client on the same machine", flush=True)
    servers = {"A": Server(args.a, workdir, "a"), "B": Server(args.b, workdir, "b")}
    sides = [("A", "benchroot", "benchrootsecret0"), ("B", "benchroot", "benchrootsecret0")]
    try:
        if args.user:
            access, secret = make_user(args.b, servers["B"])
            # The user's own bucket: created by a first run with the user's key.
            sides.append(("B-user", access, secret))
        results = {}
        for op, size, conc in WORKLOADS:
            for rnd in range(args.rounds):
                for side, access, secret in sides:
                    server = servers[side[0]]
                    bucket = "ab-user" if side == "B-user" else "ab-root"
                    ops = run(args.a, server, access, secret, bucket, op, size, conc, args.seconds)
                    results.setdefault((op, size, conc, side), []).append(ops)
                    print(f"  {op} {size} c{conc} round {rnd + 1} {side}: {ops:,.0f} ops/s", flush=True)
        print("medians:")
        for op, size, conc in WORKLOADS:
            a = statistics.median(results[(op, size, conc, "A")])
            line = f"  {op} {size} c{conc}: A {a:,.0f}"
            for side, _, _ in sides[1:]:
                v = statistics.median(results[(op, size, conc, side)])
                line += f", {side} {v:,.0f} ({v / a:.2f}x A)"
            print(line)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
