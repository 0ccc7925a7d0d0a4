"""Deploy MockUSD (unless a token is given), the MarginVerifier, OracleVerifier,
FundingVerifier, ExpiryVerifier, MarkVerifier, ChunkDecoder and MatchVerifier and the FraudVerifier that calls them (unless a FraudVerifier is given) and the Rollup, which creates its Vault, on any ``Chain``; load the committed artifacts.

The Rollup address can be predicted before deployment (``predict_addresses``), so the core's
``Genesis`` (whose EIP-712 domain binds the Rollup address) and its state root can be built
first and passed to the constructor.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from clearline.core.hashing import keccak
from clearline.l1.chain import Chain

__all__ = [
    "ARTIFACTS_DIR",
    "Deployment",
    "contract_abi",
    "deploy",
    "load_artifact",
    "predict_addresses",
]

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
DEFAULT_BOND = 10**18  # wei
DEFAULT_CHALLENGE_PERIOD = 60  # seconds (demo); days in production
DEFAULT_FORCED_DEADLINE = 3600  # seconds


@functools.cache
def load_artifact(name: str) -> dict:
    """The committed artifact ``artifacts/<name>.json`` (see ``clearline.l1.compile``)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no artifact {path}: run `python -m clearline.l1.compile`")
    return json.loads(path.read_text(encoding="utf-8"))


def contract_abi(name: str) -> list:
    return load_artifact(name)["abi"]


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live and how they were configured (JSON-serialisable)."""

    chain_id: int
    token: str
    rollup: str
    vault: str
    sequencer: str
    deployer: str
    block_number: int  # block of the Rollup deployment (start of log scans)
    challenge_period: int
    forced_deadline: int
    genesis_state_root: str  # 0x-hex
    genesis_config_hash: str  # 0x-hex
    verifier: str = ""  # FraudVerifier address ("" in JSON written before fraud proofs)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Deployment":
        return cls(**json.loads(text))


def _create_address(sender: str, nonce: int) -> str:
    """The CREATE address: ``keccak(rlp([sender, nonce]))[12:]`` (RLP written out: a
    20-byte string and a small integer in a short list)."""
    raw = bytes.fromhex(sender[2:])
    if nonce == 0:
        enc_nonce = b"\x80"
    elif nonce < 0x80:
        enc_nonce = bytes((nonce,))
    else:
        body = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
        enc_nonce = bytes((0x80 + len(body),)) + body
    payload = b"\x94" + raw + enc_nonce
    return to_checksum_address(keccak(bytes((0xC0 + len(payload),)) + payload)[12:])


def predict_addresses(chain: Chain, deployer: LocalAccount | None = None, *, deploy_token: bool = True,
                      deploy_verifier: bool = True) -> dict:
    """``{"token", "verifier", "rollup", "vault"}`` addresses that ``deploy`` will create if
    ``deployer`` sends nothing else first (``token`` is None when an existing token is used,
    ``verifier`` when an existing FraudVerifier is: pass ``deploy_verifier=False``)."""
    deployer = deployer or chain.accounts[0]
    nonce = chain.w3.eth.get_transaction_count(deployer.address, "pending")
    token = verifier = None
    if deploy_token:
        token = _create_address(deployer.address, nonce)
        nonce += 1
    if deploy_verifier:
        # after its MarginVerifier, OracleVerifier, FundingVerifier, ExpiryVerifier, MarkVerifier, ChunkDecoder
        # and MatchVerifier
        verifier = _create_address(deployer.address, nonce + 7)
        nonce += 8
    rollup = _create_address(deployer.address, nonce)
    return {"token": token, "verifier": verifier, "rollup": rollup, "vault": _create_address(rollup, 1)}


def deploy(
    chain: Chain,
    *,
    deployer: LocalAccount | None = None,
    sequencer: str | None = None,
    token: str | None = None,
    verifier: str | None = None,
    challenge_period: int = DEFAULT_CHALLENGE_PERIOD,
    forced_deadline: int = DEFAULT_FORCED_DEADLINE,
    bond: int = DEFAULT_BOND,
    genesis_state_root: bytes = bytes(32),
    genesis_config: bytes = b"",
    params_hash: bytes | None = None,
) -> Deployment:
    """Deploy (MockUSD unless ``token``), the MarginVerifier, OracleVerifier, FundingVerifier,
    ExpiryVerifier, MarkVerifier, ChunkDecoder, MatchVerifier and the FraudVerifier (unless ``verifier``), then the
    Rollup with ``bond`` wei, which creates the Vault. ``sequencer`` defaults to the deployer. ``genesis_state_root`` is the core's
    ``State(genesis).root()``; ``genesis_config`` is ``Genesis.to_json()`` (emitted on chain
    so a watchtower can rebuild from L1 alone). ``params_hash`` (the Rollup's ``paramsHash``,
    ``clearline.l1.params``) defaults to the hash of ``genesis_config``'s consensus parameters
    (zero without a genesis config)."""
    deployer = deployer or chain.accounts[0]
    w3 = chain.w3
    if token is None:
        art = load_artifact("MockUSD")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        token = chain.transact(factory.constructor(), deployer)["contractAddress"]
    if verifier is None:
        art = load_artifact("MarginVerifier")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        margin = chain.transact(factory.constructor(), deployer)["contractAddress"]
        art = load_artifact("OracleVerifier")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        oracle = chain.transact(factory.constructor(), deployer)["contractAddress"]
        art = load_artifact("FundingVerifier")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        funding = chain.transact(factory.constructor(), deployer)["contractAddress"]
        art = load_artifact("ExpiryVerifier")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        expiry = chain.transact(factory.constructor(), deployer)["contractAddress"]
        art = load_artifact("MarkVerifier")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        mark = chain.transact(factory.constructor(oracle, funding, expiry), deployer)["contractAddress"]
        art = load_artifact("ChunkDecoder")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        decoder = chain.transact(factory.constructor(), deployer)["contractAddress"]
        art = load_artifact("MatchVerifier")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        matcher = chain.transact(factory.constructor(margin), deployer)["contractAddress"]
        art = load_artifact("FraudVerifier")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        verifier = chain.transact(factory.constructor(margin, mark, decoder, matcher), deployer)["contractAddress"]
    if params_hash is None:
        params_hash = bytes(32)
        if genesis_config:
            from clearline.core.state import Genesis
            from clearline.l1.params import params_hash as _params_hash

            params_hash = _params_hash(Genesis.from_json(bytes(genesis_config)))
    art = load_artifact("Rollup")
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    sequencer = to_checksum_address(sequencer or deployer.address)
    receipt = chain.transact(
        factory.constructor(to_checksum_address(token), to_checksum_address(verifier), sequencer, challenge_period, forced_deadline,
                            bytes(genesis_state_root), bytes(genesis_config), bytes(params_hash)),
        deployer,
        value=bond,
    )
    rollup = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    return Deployment(
        chain_id=chain.chain_id,
        token=to_checksum_address(token),
        rollup=rollup.address,
        vault=rollup.functions.vault().call(),
        sequencer=sequencer,
        deployer=deployer.address,
        block_number=int(receipt["blockNumber"]),
        challenge_period=challenge_period,
        forced_deadline=forced_deadline,
        genesis_state_root="0x" + bytes(genesis_state_root).hex(),
        genesis_config_hash="0x" + keccak(bytes(genesis_config)).hex(),
        verifier=to_checksum_address(verifier),
    )
