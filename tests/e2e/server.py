#!/usr/bin/python3
"""Starts a `cairn server` for the end-to-end tests, and stops it.

The one place that knows how to run the server under test: the pytest suite imports
CairnServer, and the client scripts (awscli.sh, s3cmd.sh, rclone.sh) run themselves under
`server.py --run -- COMMAND...`.

A server gets a free port on 127.0.0.1, a fresh data directory in a temporary directory (unless
one is given, to restart over the same data), random root credentials, and its log in that
temporary directory. start() returns once GET /health answers 200; stop() sends SIGTERM and waits,
then kills. Every wait is bounded, and the server is also killed if this process dies
(PR_SET_PDEATHSIG), so that a test killed by its timeout leaves nothing running.

Command line:
  server.py [--bin CAIRN] [--server-arg ARG]... [--timeout SECONDS] --run -- COMMAND [ARG]...
runs COMMAND with the server's address and keys in its environment:
  CAIRN_E2E_ENDPOINT    http://127.0.0.1:PORT
  CAIRN_E2E_HOST, CAIRN_E2E_PORT
  CAIRN_E2E_ACCESS_KEY, CAIRN_E2E_SECRET_KEY, CAIRN_E2E_REGION
  CAIRN_E2E_TMP         a scratch directory for the command, removed afterwards
and exits with COMMAND's status, or 1 when the server did not stop cleanly (exit status 0 after
SIGTERM). The server log is printed when either fails. CAIRN defaults to $CAIRN_BIN.

Not thread-safe: one thread drives a CairnServer.
"""

import argparse
import ctypes
import http.client
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time

REGION = "us-east-1"
# Generous: after a kill -9 the engine rescans what it wrote since its last checkpoint (up to
# 1 GiB by default) before the server listens, and CI runs other suites on the same two cores.
# The server logs each start-up phase, so a slow start shows where the time went.
STARTUP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
# A start that fails before /health answers is retried on a new port this many times: another
# process may take the free port between our probe and the server's bind.
START_ATTEMPTS = 3
LOG_TAIL_LINES = 400

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when the process that started it exits."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_credentials():
    """An access key and secret shaped like AWS's (20 upper-case characters; 40 with '/' and '+')."""
    access = "CAIRN" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(15))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "/+") for _ in range(40))
    return access, secret


class ServerError(Exception):
    pass


class CairnServer:
    """One `cairn server` process.

    data_dir: reuse this directory (a restart); by default a new one inside the temporary
    directory. extra_args: further command-line arguments for `cairn server`.
    """

    def __init__(self, binary, data_dir=None, access_key=None, secret_key=None, extra_args=()):
        if not binary:
            raise ServerError("no server binary: pass --bin or set CAIRN_BIN")
        self.binary = os.path.abspath(binary)
        if not os.access(self.binary, os.X_OK):
            raise ServerError(f"server binary {self.binary} is not executable (is it built?)")
        self.tmp = tempfile.mkdtemp(prefix="cairn-e2e-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        generated = random_credentials()
        self.access_key = access_key or generated[0]
        self.secret_key = secret_key or generated[1]
        self.region = REGION
        self.extra_args = list(extra_args)
        self.host = "127.0.0.1"
        self.port = None
        self.log_path = os.path.join(self.tmp, "server.log")
        self.exit_status = None
        self._proc = None
        self._log = None

    @property
    def endpoint(self):
        return f"http://{self.host}:{self.port}"

    def env(self):
        """The variables a client command is given (see the module comment)."""
        return {
            "CAIRN_E2E_ENDPOINT": self.endpoint,
            "CAIRN_E2E_HOST": self.host,
            "CAIRN_E2E_PORT": str(self.port),
            "CAIRN_E2E_ACCESS_KEY": self.access_key,
            "CAIRN_E2E_SECRET_KEY": self.secret_key,
            "CAIRN_E2E_REGION": self.region,
        }

    def start(self):
        """Starts the server and waits for /health. Raises ServerError, log included, on failure."""
        os.makedirs(self.data_dir, exist_ok=True)
        failures = []
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            problem = self._start_once()
            if problem is None:
                return self
            failures.append(problem)
        raise ServerError("cairn server did not start:\n  " + "\n  ".join(failures) + "\n" + self.log_tail())

    def _start_once(self):
        """None once healthy; otherwise what went wrong, with the process gone."""
        argv = [self.binary, "server", "--data", self.data_dir, "--listen", f"{self.host}:{self.port}"]
        argv += self.extra_args
        env = dict(os.environ)
        env["CAIRN_ROOT_ACCESS_KEY"] = self.access_key
        env["CAIRN_ROOT_SECRET_KEY"] = self.secret_key
        self._log = open(self.log_path, "ab")
        self._log.write(("$ " + " ".join(argv) + "\n").encode())
        self._log.flush()
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                      env=env, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            status = self._proc.poll()
            if status is not None:
                self._close_log()
                return f"exited with status {status} before /health answered (port {self.port})"
            if self._health() == 200:
                return None
            time.sleep(0.05)
        self._kill()
        return f"/health did not answer 200 within {STARTUP_TIMEOUT_S:.0f} s (port {self.port})"

    def _health(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status
        except OSError:
            return None
        finally:
            conn.close()

    def healthy(self):
        return self._proc is not None and self._proc.poll() is None and self._health() == 200

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S. Returns the exit status (negative: signal).

        A clean stop is status 0; the caller decides what else means."""
        if self._proc is None:
            return self.exit_status
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill()
                with open(self.log_path, "ab") as log:
                    log.write(f"[server.py] no exit {STOP_TIMEOUT_S:.0f} s after SIGTERM: killed\n".encode())
        self.exit_status = self._proc.returncode
        self._proc = None
        self._close_log()
        return self.exit_status

    def kill(self):
        """SIGKILL at once (a crash: no graceful stop) and wait. Returns the exit status (-9).

        The data directory is kept: start() again restarts the server on it (on a new port)."""
        if self._proc is None:
            return self.exit_status
        self._kill()
        with open(self.log_path, "ab") as log:
            log.write(b"[server.py] killed with SIGKILL\n")
        self.exit_status = self._proc.returncode
        self._proc = None
        return self.exit_status

    def _kill(self):
        self._proc.kill()
        self._proc.wait()
        self._close_log()

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines=LOG_TAIL_LINES):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no server log)"
        skipped = len(text) - lines
        head = [f"... {skipped} earlier lines in {self.log_path}"] if skipped > 0 else []
        return "\n".join(["----- cairn server log -----"] + head + text[-lines:] + ["----- end of log -----"])

    def cleanup(self):
        """Removes the temporary directory (data and log). REQUIRES: stopped."""
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def run(args):
    server = CairnServer(args.bin, extra_args=args.server_arg)
    try:
        server.start()
    except ServerError as e:
        print(f"server.py: {e}", file=sys.stderr)
        server.cleanup()
        return 1
    scratch = os.path.join(server.tmp, "client")
    os.makedirs(scratch)
    env = dict(os.environ, **server.env(), CAIRN_E2E_TMP=scratch)
    print(f"server.py: cairn server at {server.endpoint}; running {' '.join(args.command)}", flush=True)
    status = 1
    try:
        proc = subprocess.Popen(args.command, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        try:
            status = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            print(f"server.py: command still running after {args.timeout} s: killed", file=sys.stderr)
            status = 124
    finally:
        alive = server.healthy()
        stopped = server.stop()
    if not alive:
        print("server.py: the server was not healthy when the command finished", file=sys.stderr)
    if stopped != 0:
        print(f"server.py: SIGTERM did not stop the server cleanly: exit status {stopped}", file=sys.stderr)
    if status != 0 or stopped != 0 or not alive:
        print(server.log_tail(), file=sys.stderr)
        status = status or 1
    server.cleanup()
    return status


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.environ.get("CAIRN_BIN"), help="the cairn binary (default $CAIRN_BIN)")
    parser.add_argument("--server-arg", action="append", default=[], help="an extra argument for `cairn server`")
    parser.add_argument("--timeout", type=float, default=540, help="seconds COMMAND may run (default 540)")
    parser.add_argument("--run", action="store_true", required=True, help="run COMMAND against a fresh server")
    parser.add_argument("command", nargs="+", help="the command, after --")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
