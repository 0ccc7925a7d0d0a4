"""The committed artifacts are exactly what the pinned solc-js produces from the sources."""

from __future__ import annotations

import json
import re

import pytest

from clearline.core.merkle import ZERO_HASHES
from clearline.l1 import compile as l1compile


def test_package_json_pins_the_js_tools_exactly():
    pkg = json.loads((l1compile.REPO_ROOT / "package.json").read_text())
    deps = {**pkg["dependencies"], **pkg["optionalDependencies"]}
    assert "solc" in pkg["dependencies"]  # besides the UI's pinned libraries (chart.js, ethers, ...)
    assert set(pkg["optionalDependencies"]) == {"@foundry-rs/anvil-linux-amd64"}  # optional: Linux x64 only
    for name, version in deps.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} must be pinned exactly, got {version}"
    lock = json.loads((l1compile.REPO_ROOT / "package-lock.json").read_text())
    for name, version in deps.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    for artifact in l1compile.ARTIFACTS_DIR.glob("*.json"):
        compiler = json.loads(artifact.read_text())["compiler"]["version"]
        assert compiler.startswith(deps["solc"] + "+"), artifact.name


def test_solidity_zero_hashes_are_the_core_ones():
    source = (l1compile.CONTRACTS_DIR / "SparseMerkle.sol").read_text()
    block = source[source.index("bytes internal constant ZERO_HASHES"):]
    block = block[: block.index(";")]
    literals = [bytes.fromhex(h) for h in re.findall(r'hex"([0-9a-f]*)"', block)]
    assert tuple(literals) == ZERO_HASHES


def test_artifacts_recompile_identically():
    if not l1compile.solc_available():
        pytest.skip("solc-js unavailable: node or node_modules/solc missing (run `npm ci` at the repo root)")
    artifacts = l1compile.compile_contracts()
    assert {"MockUSD", "Rollup", "Vault"} <= set(artifacts)
    assert l1compile.check_artifacts(artifacts) == []
    for name, artifact in artifacts.items():
        assert artifact["settings"]["evmVersion"] == "cancun"
        assert artifact["settings"]["optimizer"]["enabled"] is True
        committed = (l1compile.ARTIFACTS_DIR / f"{name}.json").read_bytes()
        assert committed == l1compile.render_artifact(artifact).encode()
