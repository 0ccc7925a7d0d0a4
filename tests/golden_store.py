"""Golden vector files: read the committed JSON, or rewrite it first when
``CLEARLINE_REGEN_GOLDEN=1`` (then review the diff before committing it)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

REGEN = os.environ.get("CLEARLINE_REGEN_GOLDEN") == "1"


def load_vectors(path: Path, build: Callable[[], dict]) -> dict:
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(build(), indent=2) + "\n")
    return json.loads(path.read_text())
