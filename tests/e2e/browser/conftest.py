"""Browser-test harness: Debian's headless Chromium driven by Playwright (Python).

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` by path
(``make test`` and ``.ci/run`` install Debian's ``chromium`` when it is missing). Every
browser gets a fresh profile (Playwright's temporary ``--user-data-dir``), so the demo
wallet's localStorage starts empty.

Fixtures:
- ``browser``: one Chromium per test module.
- ``static_server``: the UI's static files on 127.0.0.1 (free port), no node behind it (for the
  signing and number-conversion checks, which need only the page's modules).
- ``shot(page, name)``: saves a PNG under tests/e2e/browser/screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from browser_env import CHROMIUM_ARGS, SHOTS, STATIC, VIEWPORT, chromium_path


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is missing (.ci/run installs it: apt-get install -y chromium)")
        pytest.skip("no /usr/bin/chromium (run `make test`, which installs Debian's chromium)")
    if not (STATIC / "vendor" / ".installed").exists():
        pytest.fail("UI vendor libraries missing: run `make ui` (make test does it)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        if self.path == "/__blank__":  # an empty page on the UI's origin, for module imports
            body = b'<!doctype html><title>blank</title><link rel="icon" href="/favicon.svg">'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


_Quiet.extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                         ".js": "text/javascript", ".mjs": "text/javascript", ".svg": "image/svg+xml"}


@pytest.fixture(scope="module")
def static_server():
    handler = functools.partial(_Quiet, directory=str(STATIC))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on("console", lambda msg: pg.errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield pg
    finally:
        ctx.close()


@pytest.fixture
def shot():
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(pg, name: str, **kw) -> Path:
        path = SHOTS / f"{name}.png"
        pg.screenshot(path=str(path), **kw)
        return path

    return take


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so fixtures can screenshot a failed test."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
