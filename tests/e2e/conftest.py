"""Fixtures of the pytest suites in this directory: the session's `cairn server` (`cairn`), boto3
clients (`s3`, make_client), a raw signing client (`raw`), a fresh bucket per test (`bucket`), and
start_server for suites that need servers of their own (restarts, crashes).

The server binary comes from --cairn-bin or $CAIRN_BIN (CTest passes $<TARGET_FILE:cairn>). Clients
are configured here and nowhere else: SigV4, path-style addressing, us-east-1, no retries (a
retried request would hide the first answer), bounded timeouts, and no configuration read from
the home directory. When a test fails, the end of each server's log is printed after the summary.

Run by hand (Debian's python3, which has boto3 and pytest):
  /usr/bin/python3 -m pytest -p no:cacheprovider tests/e2e/test_boto3.py tests/e2e/test_raw_http.py \
      --cairn-bin build/release/src/cairn
"""

import contextlib
import os
import uuid

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

import s3raw
import server as harness

# Clients must not read ~/.aws or an ambient profile.
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
    os.environ.pop(_name, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["NO_PROXY"] = "127.0.0.1,localhost,.localhost"

# The domain under which <bucket>.<domain> is virtual-host addressing.
VHOST_DOMAIN = "localhost"
SERVER_ARGS = ["--domain", VHOST_DOMAIN]

# Every server the session started, so that their logs can be shown and removed at the end.
_servers = []


def pytest_addoption(parser):
    parser.addoption("--cairn-bin", default=os.environ.get("CAIRN_BIN"),
                     help="the cairn binary to test (default: $CAIRN_BIN)")
    parser.addoption("--chain-kv-bin", default=os.environ.get("CAIRN_CHAIN_KV_BIN"),
                     help="tests/tools/chain_kv, for the cluster suite (default: $CAIRN_CHAIN_KV_BIN)")


def start_server(config, **kwargs):
    """A started CairnServer (see server.py), shown and cleaned up at the end of the session."""
    srv = harness.CairnServer(config.getoption("--cairn-bin"), extra_args=SERVER_ARGS, **kwargs)
    _servers.append(srv)
    return srv.start()


@pytest.fixture(scope="session")
def cairn(pytestconfig):
    try:
        srv = start_server(pytestconfig)
    except harness.ServerError as e:
        pytest.exit(f"cannot start the server under test: {e}", returncode=1)
    yield srv
    status = srv.stop()
    assert status == 0, f"cairn server exit status {status} after SIGTERM (expected 0: a graceful stop)"


def make_client(srv, access_key=None, secret_key=None, signed=True, **config_overrides):
    """A boto3 S3 client for `srv`; config_overrides are botocore Config arguments."""
    options = {
        "signature_version": "s3v4" if signed else UNSIGNED,
        "s3": {"addressing_style": "path"},
        "region_name": srv.region,
        "retries": {"mode": "standard", "total_max_attempts": 1},
        "connect_timeout": 5,
        "read_timeout": 60,
        "max_pool_connections": 16,
    }
    config = Config(**{**options, **config_overrides})
    credentials = {}
    if signed:
        credentials = {"aws_access_key_id": access_key or srv.access_key,
                       "aws_secret_access_key": secret_key or srv.secret_key}
    return boto3.session.Session().client("s3", endpoint_url=srv.endpoint, region_name=srv.region, config=config,
                                          **credentials)


@pytest.fixture(scope="session")
def s3(cairn):
    return make_client(cairn)


@pytest.fixture(scope="session")
def raw(cairn):
    return s3raw.RawClient(cairn.host, cairn.port, s3raw.Credentials(cairn.access_key, cairn.secret_key, cairn.region))


def unique_bucket_name(prefix="e2e"):
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


@pytest.fixture
def bucket(s3):
    """A new, empty bucket for one test (the session's data directory is thrown away afterwards)."""
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    return name


def pytest_terminal_summary(terminalreporter):
    if not (terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")):
        return
    for srv in _servers:
        terminalreporter.write_sep("-", f"cairn server at port {srv.port}, data {srv.data_dir}")
        terminalreporter.write_line(srv.log_tail())


def pytest_unconfigure(config):
    for srv in _servers:
        srv.stop()
        srv.cleanup()


# ---- assertions the suites share ----

@contextlib.contextmanager
def s3_error(code, status):
    """Expects the block to fail with S3 error `code` and HTTP `status`."""
    with pytest.raises(ClientError) as info:
        yield info
    response = info.value.response
    got = (response["Error"].get("Code"), response["ResponseMetadata"]["HTTPStatusCode"])
    assert got == (code, status), response


def status_of(response):
    return response["ResponseMetadata"]["HTTPStatusCode"]
