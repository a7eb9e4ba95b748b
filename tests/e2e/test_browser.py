"""A real browser against `cairn server`: POST policy uploads and CORS (issue 4).

Debian's chromium, headless, driven through chromedriver by Selenium, loads pages from another
origin: a small HTTP server of this test on 127.0.0.1 and a port of its own (PageServer), which
serves only pages the test generates. boto3 (root credentials) makes the bucket, its CORS rule,
the signed POST policies and the presigned URLs that the pages embed.

  test_form_upload_and_cors_read: a real <form method=post enctype=multipart/form-data> with the
    policy's fields and a file input. Cairn answers 303 to success_action_redirect (done.html on
    the page origin, with bucket, key and etag in the query), and done.html fetch()es the object
    through a presigned GET URL: the body and the exposed ETag header are readable under the
    CORS rule. Then the rule is deleted and the same form is sent again: the form still stores
    (a navigation is not governed by CORS) but done.html's fetch() is refused.
  test_fetch_upload_and_read_with_and_without_cors: fetch.html POSTs a FormData (the policy's
    fields and a Blob, success_action_status 201) with fetch() and reads the PostResponse XML,
    GETs the object back, PUTs another through a presigned URL (a request with a preflight), and
    POSTs more than the policy's content-length-range allows, reading the EntityTooLarge error.
    All of it works under the rule. Without it the same page is refused every fetch(); the POST,
    a simple request, was still sent and stored, and the PUT was not (its preflight was refused).

A page reports what happened as JSON in <pre id=result data-state=done>, and what its scripts
logged or threw in <pre id=log> (chromedriver's browser log is not dependable with Selenium 4.8);
a failure prints both with the page's source. Every wait is bounded (WAIT_S). The browser gets a
temporary profile, --no-sandbox (tests run as root), and no network beyond 127.0.0.1: host names
do not resolve and every other address goes to a proxy that does not exist.
"""

import hashlib
import html
import http.server
import json
import os
import shutil
import tempfile
import threading
import urllib.parse

import botocore.exceptions
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import server as harness

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The longest any one page load, navigation or page script may take.
WAIT_S = 20
MAX_UPLOAD = 1 << 20
PAGE_SOURCE_CHARS = 6000


# ---- the other origin -------------------------------------------------------------------------


class PageServer:
    """An HTTP server on 127.0.0.1 (a free port) serving the pages put into it, nothing else."""

    def __init__(self):
        self._pages = {}
        self._lock = threading.Lock()
        self.requests = []  # "GET /path -> status", for failure messages
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                with outer._lock:
                    page = outer._pages.get(path)
                    outer.requests.append(f"GET {self.path} -> {200 if page is not None else 404}")
                body = (page if page is not None else "not found\n").encode()
                self.send_response(200 if page is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8" if page is not None else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="page-server", daemon=True)
        self._thread.start()

    def put(self, path, page):
        """Serves `page` (HTML text) at `path`; returns its URL."""
        with self._lock:
            self._pages[path] = page
        return self.origin + path

    def recent_requests(self, n=10):
        with self._lock:
            return self.requests[-n:]

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def pages():
    srv = PageServer()
    yield srv
    srv.close()


# ---- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: install chromium chromium-driver python3-selenium "
                        "(scripts/install-deps.sh)")
    tmp = tempfile.mkdtemp(prefix="cairn-e2e-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--user-data-dir={os.path.join(tmp, 'profile')}",
        # Nothing beyond 127.0.0.1: no name resolves, and any other address goes to a proxy on
        # a port where nothing listens (loopback is never proxied).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--disable-default-apps", "--no-first-run", "--no-default-browser-check",
        "--window-size=1024,768",
    ]:
        options.add_argument(arg)
    # chromedriver dies with this process (a test killed by its timeout leaves nothing behind).
    service = Service(CHROMEDRIVER, log_path=os.path.join(tmp, "chromedriver.log"),
                      popen_kw={"preexec_fn": harness._die_with_parent})
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except WebDriverException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"cannot start chromium through chromedriver: {e}")
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    yield driver
    driver.quit()
    shutil.rmtree(tmp, ignore_errors=True)


def dump(driver, pages, what):
    """What the browser shows, for a failure message."""
    def safe(fn):
        try:
            return fn()
        except WebDriverException as e:
            return f"(unavailable: {e.msg})"

    def cut(text):
        if isinstance(text, str) and len(text) > PAGE_SOURCE_CHARS:
            return text[:PAGE_SOURCE_CHARS] + f"... ({len(text)} characters)"
        return text

    script = "const e = document.getElementById(arguments[0]); return e ? e.textContent : '(none)';"
    # The text first: on an error document of Cairn's, the XML viewer's styles fill the source.
    text = cut(safe(lambda: driver.execute_script("return document.documentElement.innerText;")))
    source = cut(safe(lambda: driver.page_source))
    return "\n".join([
        f"{what}",
        f"  browser at: {safe(lambda: driver.current_url)}",
        f"  #result: {safe(lambda: driver.execute_script(script, 'result'))}",
        "  #log:",
        f"{safe(lambda: driver.execute_script(script, 'log'))}",
        "  page origin requests: " + "; ".join(pages.recent_requests()),
        "  page text:",
        f"{text}",
        "  page source:",
        f"{source}",
    ])


def wait_for_result(driver, pages, page_url, what, stop_at=None):
    """Waits (WAIT_S at most) until the page at page_url (query aside) has reported its result,
    and returns it. Fails with what the browser shows when it does not, or when the browser
    lands on a URL starting with stop_at (a page of Cairn's own: the form was refused)."""
    result_js = ("const e = document.getElementById('result');"
                 "return e && e.dataset.state === 'done' ? e.textContent : null;")

    def settled(d):
        url = d.current_url
        if stop_at and url.startswith(stop_at):
            return "stopped"
        if url.split("?")[0] == page_url:
            return d.execute_script(result_js)
        return None

    try:
        outcome = WebDriverWait(driver, WAIT_S, poll_frequency=0.1,
                                ignored_exceptions=(WebDriverException,)).until(settled)
    except TimeoutException:
        pytest.fail(dump(driver, pages, f"{what}: no result from {page_url} within {WAIT_S} s"))
    if outcome == "stopped":
        pytest.fail(dump(driver, pages, f"{what}: the browser shows Cairn's answer instead of {page_url}"))
    return json.loads(outcome)


def check(condition, driver, pages, what):
    if not condition:
        pytest.fail(dump(driver, pages, what))


# ---- pages --------------------------------------------------------------------------------------

# Shared by every page: a log of what the scripts said or threw, and finish(result).
PAGE_HEAD = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head><body>
<pre id="log"></pre>
<pre id="result"></pre>
<script>
const logElement = document.getElementById('log');
function log(message) { logElement.textContent += message + '\\n'; }
window.addEventListener('error', e => log('error: ' + e.message));
window.addEventListener('unhandledrejection', e => log('unhandled rejection: ' + e.reason));
for (const level of ['log', 'warn', 'error']) {
  const original = console[level];
  console[level] = (...args) => { log(level + ': ' + args.join(' ')); original.apply(console, args); };
}
function describe(e) { return e && e.name ? e.name + ': ' + e.message : String(e); }
function finish(result) {
  const element = document.getElementById('result');
  element.textContent = JSON.stringify(result);
  element.dataset.state = 'done';
}
</script>
"""


def js(value):
    """A JavaScript literal of `value` that is safe inside <script>."""
    return json.dumps(value).replace("<", "\\u003c")


def page_head(title):
    return PAGE_HEAD.replace("{title}", html.escape(title))


def form_page(post):
    """index.html: the POST policy as a real form, the file input last."""
    hidden = "\n".join(f'  <input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
                       for name, value in post["fields"].items())
    return page_head("form upload") + f"""
<form id="upload" method="post" enctype="multipart/form-data" action="{html.escape(post['url'])}">
{hidden}
  <input type="file" id="file" name="file">
  <button type="submit" id="submit">Upload</button>
</form>
</body></html>
"""


def done_page(get_url):
    """done.html: where the form's 303 leads. Reads the object back with fetch()."""
    return page_head("uploaded") + f"""
<script>
const GET_URL = {js(get_url)};
async function main() {{
  const query = new URLSearchParams(location.search);
  const result = {{bucket: query.get('bucket'), key: query.get('key'), etag: query.get('etag')}};
  try {{
    const response = await fetch(GET_URL, {{cache: 'no-store'}});
    result.status = response.status;
    result.etag_header = response.headers.get('ETag');
    result.body = await response.text();
  }} catch (e) {{
    result.error = describe(e);
  }}
  finish(result);
}}
main().catch(e => finish({{fatal: describe(e)}}));
</script>
</body></html>
"""


def fetch_page(post, runs):
    """fetch.html?run=N: a FormData upload with fetch() (filename fetched-N.txt, body 'fetch upload
    N'), a GET of it, a PUT of 'put N' through a presigned URL (runs[N] has the URLs), and an
    upload larger than the policy allows (too-large-N), whose error the page reads."""
    fields = list(post["fields"].items())  # in order; the file goes last
    return page_head("fetch upload") + f"""
<script>
const POST_URL = {js(post['url'])};
const FIELDS = {js(fields)};
const RUNS = {js(runs)};
const MAX_UPLOAD = {MAX_UPLOAD};
async function step(result, name, action) {{
  try {{
    result[name] = await action();
  }} catch (e) {{
    result[name] = {{error: describe(e)}};
  }}
}}
async function main() {{
  const run = new URLSearchParams(location.search).get('run');
  const urls = RUNS[run];
  const result = {{run: run}};
  async function upload(content, filename) {{
    const form = new FormData();
    for (const [name, value] of FIELDS) form.append(name, value);
    form.append('file', new Blob([content], {{type: 'text/plain'}}), filename);
    const response = await fetch(POST_URL, {{method: 'POST', body: form, cache: 'no-store'}});
    const text = await response.text();
    const xml = new DOMParser().parseFromString(text, 'application/xml');
    const element = name => {{
      const e = xml.getElementsByTagName(name)[0];
      return e ? e.textContent : null;
    }};
    return {{status: response.status, etag_header: response.headers.get('ETag'), text: text,
             location: element('Location'), bucket: element('Bucket'), key: element('Key'), etag: element('ETag'),
             code: element('Code')}};
  }}
  await step(result, 'post', () => upload('fetch upload ' + run, 'fetched-' + run + '.txt'));
  await step(result, 'get', async () => {{
    const response = await fetch(urls.get, {{cache: 'no-store'}});
    return {{status: response.status, etag_header: response.headers.get('ETag'), body: await response.text()}};
  }});
  await step(result, 'put', async () => {{
    // A Content-Type outside the CORS-safelisted ones: the browser asks with a preflight first.
    const response = await fetch(urls.put, {{method: 'PUT', body: 'put ' + run, cache: 'no-store',
                                             headers: {{'Content-Type': 'application/octet-stream'}}}});
    return {{status: response.status, etag_header: response.headers.get('ETag'), body: await response.text()}};
  }});
  await step(result, 'too_large', () => upload('x'.repeat(MAX_UPLOAD + 1), 'too-large-' + run + '.txt'));
  finish(result);
}}
main().catch(e => finish({{fatal: describe(e)}}));
</script>
</body></html>
"""


# ---- helpers ------------------------------------------------------------------------------------


def quoted_md5(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def put_cors(s3, bucket, origin):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [origin],
        "AllowedMethods": ["GET", "POST", "PUT"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
    }]})


def delete_cors(s3, bucket):
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert e.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"


def presigned_get(s3, bucket, key):
    return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600)


def presigned_put(s3, bucket, key):
    return s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600)


def object_body(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def refused(step):
    """A fetch() the browser refused: the page saw only a network error."""
    return isinstance(step, dict) and step.get("error", "").startswith("TypeError")


# ---- tests --------------------------------------------------------------------------------------


def test_form_upload_and_cors_read(cairn, s3, bucket, browser, pages, tmp_path):
    base = f"/{bucket}"
    done_url = pages.origin + base + "/done.html"
    key = "uploads/hello.txt"
    post = s3.generate_presigned_post(
        bucket, "uploads/${filename}", Fields={"success_action_redirect": done_url},
        Conditions=[{"success_action_redirect": done_url}, ["content-length-range", 1, MAX_UPLOAD]],
        ExpiresIn=600)
    assert post["url"] == f"{cairn.endpoint}/{bucket}"
    index_url = pages.put(base + "/index.html", form_page(post))
    pages.put(base + "/done.html", done_page(presigned_get(s3, bucket, key)))
    put_cors(s3, bucket, pages.origin)
    upload = tmp_path / "hello.txt"

    def submit(content, what):
        upload.write_bytes(content)
        browser.get(index_url)
        browser.find_element(By.ID, "file").send_keys(str(upload))
        browser.find_element(By.ID, "submit").click()
        return wait_for_result(browser, pages, done_url, what, stop_at=cairn.endpoint)

    # With the rule: stored, redirected, and readable from the page's origin.
    first = b"hello from a real browser form\n"
    result = submit(first, "form upload under the CORS rule")
    check(result.get("bucket") == bucket and result.get("key") == key and result.get("etag") == quoted_md5(first),
          browser, pages, f"redirect query: expected bucket={bucket} key={key} etag={quoted_md5(first)}")
    check(result.get("status") == 200 and result.get("body") == first.decode(), browser, pages,
          "fetch() of the uploaded object under the CORS rule: expected 200 and the file's content")
    check(result.get("etag_header") == quoted_md5(first), browser, pages,
          f"the ETag header (ExposeHeaders ETag) must be readable: expected {quoted_md5(first)}")
    assert object_body(s3, bucket, key) == first

    # Without it: the form (a navigation) still stores, but the page may not read the object.
    delete_cors(s3, bucket)
    second = b"the same form, no CORS rule\n"
    result = submit(second, "form upload without a CORS rule")
    check(result.get("key") == key and result.get("etag") == quoted_md5(second), browser, pages,
          f"redirect query without CORS: expected key={key} etag={quoted_md5(second)}")
    check(refused(result) and "body" not in result, browser, pages,
          "fetch() without a CORS rule must be refused (TypeError), not read")
    assert object_body(s3, bucket, key) == second


def test_fetch_upload_and_read_with_and_without_cors(cairn, s3, bucket, browser, pages):
    base = f"/{bucket}"
    post = s3.generate_presigned_post(
        bucket, "uploads/${filename}", Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}, ["content-length-range", 1, MAX_UPLOAD]], ExpiresIn=600)
    # Each run its own keys and URLs, so that nothing the browser cached (responses, preflight
    # results) from the first run answers for the second.
    runs = {str(n): {"get": presigned_get(s3, bucket, f"uploads/fetched-{n}.txt"),
                     "put": presigned_put(s3, bucket, f"uploads/put-{n}.txt")} for n in (1, 2)}
    page_url = pages.put(base + "/fetch.html", fetch_page(post, runs))
    put_cors(s3, bucket, pages.origin)

    def load(run, what):
        browser.get(f"{page_url}?run={run}")
        return wait_for_result(browser, pages, page_url, what)

    result = load(1, "fetch() upload under the CORS rule")
    key, body = "uploads/fetched-1.txt", b"fetch upload 1"
    etag = quoted_md5(body)
    posted = result.get("post", {})
    # Location: the object's URL, absolute or relative to the form's (S3 gives an absolute one).
    location = urllib.parse.urljoin(post["url"], posted.get("location") or "")
    check(posted.get("status") == 201 and posted.get("bucket") == bucket and posted.get("key") == key
          and posted.get("etag") == etag and location.startswith(cairn.endpoint + "/")
          and urllib.parse.unquote(urllib.parse.urlsplit(location).path) == f"/{bucket}/{key}",
          browser, pages, f"POST with fetch(): expected 201 and a PostResponse for {bucket}/{key} ETag {etag}")
    check(posted.get("etag_header") == etag, browser, pages,
          f"POST response: the ETag header must be readable ({etag})")
    got = result.get("get", {})
    check(got.get("status") == 200 and got.get("body") == body.decode() and got.get("etag_header") == etag,
          browser, pages, f"GET with fetch(): expected 200, {body!r} and ETag {etag}")
    put = result.get("put", {})
    check(put.get("status") == 200 and put.get("etag_header") == quoted_md5(b"put 1"), browser, pages,
          "PUT with fetch() after a preflight: expected 200 and a readable ETag")
    too_large = result.get("too_large", {})
    check(too_large.get("status") == 400 and too_large.get("code") == "EntityTooLarge", browser, pages,
          "POST with fetch() of more than the policy's content-length-range: expected 400 EntityTooLarge, readable "
          "by the page (errors carry the CORS headers too)")
    assert object_body(s3, bucket, key) == body
    assert object_body(s3, bucket, "uploads/put-1.txt") == b"put 1"

    delete_cors(s3, bucket)
    result = load(2, "the same fetch() page without a CORS rule")
    for step in ("post", "get", "put", "too_large"):
        check(refused(result.get(step)), browser, pages, f"{step} with fetch() without a CORS rule must be refused")
    # CORS hides answers, it does not stop requests: the POST (a simple request) was sent and
    # stored; the PUT was never sent, its preflight refused.
    assert object_body(s3, bucket, "uploads/fetched-2.txt") == b"fetch upload 2"
    for absent in ("uploads/put-2.txt", "uploads/too-large-1.txt", "uploads/too-large-2.txt"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.head_object(Bucket=bucket, Key=absent)
        assert e.value.response["Error"]["Code"] == "404", absent
