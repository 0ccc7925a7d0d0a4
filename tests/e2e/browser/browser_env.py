"""Constants and helpers of the browser tests, importable under a unique module name (every
test directory has a ``conftest``, so ``from conftest import ...`` would depend on the order
in which pytest collects them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "clearline" / "ui" / "static"
SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("CLEARLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--font-render-hinting=none",
]
VIEWPORT = {"width": 1680, "height": 1000}


def chromium_path() -> str | None:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    return path


def failed(request) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return bool(rep and rep.failed)
