"""The committed OpenAPI schema (docs/openapi.json): regenerate or check it.

    python -m clearline.api.schema --write   # after changing a route or a body
    python -m clearline.api.schema --check   # exit 1 if docs/openapi.json is stale

A test compares the schema a running node serves at /openapi.json with the committed file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["SCHEMA_PATH", "current_schema", "render"]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def current_schema() -> dict:
    """The schema of the app, built around a throwaway in-memory node."""
    from ..journal import open_journal
    from ..node import NodeService
    from ..sequencer import Sequencer
    from ..sim.market import demo_genesis
    from .app import create_app

    seq = Sequencer(open_journal("sqlite://"), demo_genesis(1), workers=1)
    try:
        return create_app(NodeService(seq)).openapi()
    finally:
        seq.close()


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render(current_schema())
    if "--write" in args:
        SCHEMA_PATH.write_text(text)
        print(f"wrote {SCHEMA_PATH}")
        return 0
    if SCHEMA_PATH.exists() and SCHEMA_PATH.read_text() == text:
        print("docs/openapi.json is up to date")
        return 0
    print("docs/openapi.json is stale: run python -m clearline.api.schema --write", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
