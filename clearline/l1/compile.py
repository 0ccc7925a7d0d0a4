"""Compile ``contracts/*.sol`` with the pinned solc-js into ``artifacts/<Name>.json``.

The compiler is the npm package ``solc`` pinned exactly in the repository's ``package.json``
(install it with ``npm ci`` at the repository root); it runs offline under node through the
standard-JSON API. Settings: optimizer on, ``evmVersion`` cancun, no metadata hash in the
bytecode (so the output depends only on the sources, the settings and the compiler).

Artifacts are committed. They are deterministic: sorted-key JSON holding the ABI, the creation
and runtime bytecode, the compiler version, the settings and the keccak-256 of every source,
so ``python -m clearline.l1.compile --check`` (and a test) can recompile and compare them
byte for byte.

Usage::

    python -m clearline.l1.compile           # (re)write clearline/l1/artifacts/*.json
    python -m clearline.l1.compile --check   # exit 1 if the committed artifacts differ
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from clearline.core.hashing import keccak

__all__ = [
    "ARTIFACTS_DIR",
    "CONTRACTS_DIR",
    "REPO_ROOT",
    "SETTINGS",
    "CompileError",
    "check_artifacts",
    "compile_contracts",
    "render_artifact",
    "solc_available",
    "write_artifacts",
]

PACKAGE_DIR = Path(__file__).resolve().parent
CONTRACTS_DIR = PACKAGE_DIR / "contracts"
ARTIFACTS_DIR = PACKAGE_DIR / "artifacts"
REPO_ROOT = PACKAGE_DIR.parents[1]
SOLC_PACKAGE = REPO_ROOT / "node_modules" / "solc"

SETTINGS = {
    "evmVersion": "cancun",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 10_000},
    "metadata": {"bytecodeHash": "none"},
}

# Reads a standard-JSON input on stdin, prints {"version": ..., "output": <standard JSON>}.
_NODE_SCRIPT = r"""
const solc = require(process.argv[1]);
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const output = JSON.parse(solc.compile(input));
  process.stdout.write(JSON.stringify({version: solc.version(), output: output}));
});
"""


class CompileError(RuntimeError):
    """solc (or node) is missing, or the sources do not compile."""


def solc_available() -> bool:
    return shutil.which("node") is not None and (SOLC_PACKAGE / "package.json").is_file()


def _sources(contracts_dir: Path) -> dict[str, str]:
    files = sorted(contracts_dir.glob("*.sol"))
    if not files:
        raise CompileError(f"no .sol files in {contracts_dir}")
    return {f"contracts/{f.name}": f.read_text(encoding="utf-8") for f in files}


def compile_contracts(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, dict]:
    """Compile every source; return ``{contract name: artifact dict}`` for each contract or
    library with bytecode (interfaces are left out)."""
    node = shutil.which("node")
    if node is None:
        raise CompileError("node is not installed (needed to run solc-js)")
    if not (SOLC_PACKAGE / "package.json").is_file():
        raise CompileError(f"{SOLC_PACKAGE} is missing: run `npm ci` in {REPO_ROOT}")
    sources = _sources(contracts_dir)
    std_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            **SETTINGS,
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }
    proc = subprocess.run(
        [node, "-e", _NODE_SCRIPT, str(SOLC_PACKAGE)],
        input=json.dumps(std_input),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    if proc.returncode != 0:
        raise CompileError(f"solc-js failed: {proc.stderr.strip()}")
    result = json.loads(proc.stdout)
    version, output = result["version"], result["output"]
    # Warnings count as errors: the committed sources compile clean.
    errors = [e for e in output.get("errors", []) if e.get("severity") in ("error", "warning")]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    source_hashes = {name: "0x" + keccak(text.encode("utf-8")).hex() for name, text in sources.items()}
    artifacts: dict[str, dict] = {}
    for source_name in sorted(output.get("contracts", {})):
        for name, c in sorted(output["contracts"][source_name].items()):
            bytecode = c["evm"]["bytecode"]["object"]
            if not bytecode:  # interfaces
                continue
            if name in artifacts:
                raise CompileError(f"two contracts named {name}")
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "compiler": {"name": "solc-js", "version": version},
                "settings": SETTINGS,
                "sources": source_hashes,
                "abi": c["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
            }
    return artifacts


def render_artifact(artifact: dict) -> str:
    """The exact committed text of an artifact."""
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def write_artifacts(artifacts: dict[str, dict], out_dir: Path = ARTIFACTS_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = out_dir / f"{name}.json"
        path.write_text(render_artifact(artifact), encoding="utf-8")
        written.append(path)
    for stale in sorted(out_dir.glob("*.json")):
        if stale.stem not in artifacts:
            stale.unlink()
    return written


def check_artifacts(artifacts: dict[str, dict], out_dir: Path = ARTIFACTS_DIR) -> list[str]:
    """Names of artifacts that differ from (or are missing in, or extra in) ``out_dir``."""
    problems = []
    for name, artifact in sorted(artifacts.items()):
        path = out_dir / f"{name}.json"
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != render_artifact(artifact):
            problems.append(f"{name}: differs")
    for path in sorted(out_dir.glob("*.json")):
        if path.stem not in artifacts:
            problems.append(f"{path.stem}: stale")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    artifacts = compile_contracts()
    if "--check" in argv:
        problems = check_artifacts(artifacts)
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    for path in write_artifacts(artifacts):
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
