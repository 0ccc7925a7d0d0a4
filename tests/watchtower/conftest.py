"""The watchtower tests drive a whole rollup with the batcher tests' helpers."""

import sys
from pathlib import Path

_BATCHER_TESTS = str(Path(__file__).resolve().parents[1] / "batcher")
if _BATCHER_TESTS not in sys.path:
    sys.path.insert(0, _BATCHER_TESTS)
