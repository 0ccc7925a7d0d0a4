"""Capture reference screenshots of the web UI (docs/screenshots/) from a real node.

    .venv/bin/python tests/e2e/browser/capture.py [--warmup 90] [--out docs/screenshots]

Starts ``clearline node --sim`` on a free loopback port, lets the simulated market run for
``--warmup`` seconds (so the charts have history), then a browser wallet gets demo funds,
rests a bid, buys the perpetual and a call, and each main view is saved as a PNG.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]
from browser_env import CHROMIUM_ARGS, VIEWPORT, chromium_path  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=float, default=90)
    ap.add_argument("--out", default=str(HERE.parents[2] / "docs" / "screenshots"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "clearline.cli", "node", "--sim", "--port", "0",
                             "--data-dir", tempfile.mkdtemp(prefix="clearline-capture-")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"UI: (http://127\.0\.0\.1:\d+/)", line)
            if m:
                url = m.group(1)
                break
        assert url, "node did not start"
        time.sleep(args.warmup)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            pg = b.new_context(viewport=VIEWPORT).new_page()
            pg.goto(url)
            pg.wait_for_selector("#app[data-ready='1']")
            pg.click("#chart-res button[data-res='15']")
            pg.click("#btn-faucet")
            pg.wait_for_selector("#app[data-account]", timeout=60_000)
            pg.wait_for_function("() => (window.__clearline.S.margin?.collateral ?? '0') !== '0'", timeout=60_000)
            pg.select_option("#book-group", "100")
            bid = Decimal(pg.evaluate("[...window.__clearline.S.book.bids.values()].map(v => v[0]).sort((a, b) => b - a)[0]"))
            pg.fill("#t-price", str((bid * Decimal("0.999")).quantize(Decimal("0.1"), rounding=ROUND_FLOOR)))
            pg.fill("#t-size", "0.05")
            pg.click("#t-submit")
            time.sleep(1)
            pg.click("#t-market")
            pg.fill("#t-size", "0.2")
            pg.click("#t-submit")
            time.sleep(1)
            # a call from the chain, so the risk view shows an option's convexity
            pg.click("#tabs button[data-tab='options']")
            pg.wait_for_selector("#chain tbody tr.atm")
            pg.click("#chain tbody tr.atm td:nth-child(2)")  # the ATM call's ask
            pg.wait_for_function("() => document.querySelector('#instrument').value.endsWith('-C')")
            pg.click("#t-buy")
            pg.fill("#t-size", "1")
            pg.click("#t-submit")
            time.sleep(1)
            pg.select_option("#instrument", "BTC-PERP")
            pg.click("#t-limit")
            pg.fill("#t-price", "")
            pg.fill("#t-size", "")
            pg.click("#tabs button[data-tab='l1']")
            pg.fill("#wd-amount", "250")
            pg.click("#btn-withdraw")
            pg.click("#tabs button[data-tab='positions']")
            time.sleep(3)
            pg.screenshot(path=str(out / "trading.png"))
            for tab in ("options", "risk", "l1"):
                pg.click(f"#tabs button[data-tab='{tab}']")
                time.sleep(3)
                pg.screenshot(path=str(out / f"{tab}.png"))
            b.close()
        print("saved", ", ".join(str(p) for p in sorted(out.glob("*.png"))))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
