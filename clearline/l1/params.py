"""The consensus parameters an L1 proof needs, ABI-encoded, and their hash.

The Rollup stores the keccak of the genesis JSON, which no contract can parse. The parameters
that the FraudVerifier needs to re-execute operator transactions (the operator's address,
the funding and settlement-window constants, each underlying's oracle configuration) are
therefore also committed in a form L1 can check: ``paramsHash = keccak(abi.encode(
ConsensusParams))`` is a constructor argument of the Rollup, and a proof carries the struct
itself (a few hundred bytes). A watchtower checks the deployed hash against its genesis
(``check_params_hash``) before it trusts any proof built on it.

Solidity (clearline/l1/contracts/OperatorVerifier.sol)::

    struct UnderlyingParams { uint32 id; OracleConfigIn oracle; }
    struct ConsensusParams {
        address operator;
        uint64 settlementWindowMs;
        uint64 fundingIntervalMs;
        uint64 fundingSampleMs;
        int64 interestPpm;
        int64 premiumClampPpm;
        int64 fundingCapPpm;
        uint32 settlementFeePpm;
        UnderlyingParams[] underlyings;   // ascending id
    }
"""

from __future__ import annotations

from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from clearline.core.hashing import keccak
from clearline.core.state import Genesis

__all__ = ["CONSENSUS_PARAMS_ABI", "ParamsMismatch", "check_params_hash", "consensus_params", "params_hash"]

_ORACLE = "(address[],uint32,uint64,uint32,uint32)"
CONSENSUS_PARAMS_ABI = f"(address,uint64,uint64,uint64,int64,int64,int64,uint32,(uint32,{_ORACLE})[])"


class ParamsMismatch(ValueError):
    """The Rollup's paramsHash is not the hash of the genesis it announced."""


def consensus_params(genesis: Genesis) -> tuple:
    """The ``ConsensusParams`` tuple of ``genesis`` (eth_abi form)."""
    p = genesis.params
    underlyings = []
    for cfg in sorted(genesis.underlyings, key=lambda u: u.id):
        o = cfg.oracle
        underlyings.append((cfg.id, ([to_checksum_address(a) for a in o.reporters], o.quorum, o.staleness_ms,
                                     o.max_deviation_ppm, o.confirmations)))
    return (to_checksum_address(genesis.operator), p.settlement_window_ms, p.funding_interval_ms,
            p.funding_sample_ms, p.interest_ppm, p.premium_clamp_ppm, p.funding_cap_ppm, p.settlement_fee_ppm,
            underlyings)


def params_hash(genesis: Genesis) -> bytes:
    """``keccak(abi.encode(ConsensusParams))``: the Rollup's ``paramsHash``."""
    return keccak(abi_encode([CONSENSUS_PARAMS_ABI], [consensus_params(genesis)]))


def check_params_hash(genesis: Genesis, deployed: bytes) -> None:
    """Raise ``ParamsMismatch`` unless ``deployed`` is ``params_hash(genesis)``."""
    want = params_hash(genesis)
    if bytes(deployed) != want:
        raise ParamsMismatch(f"the Rollup's paramsHash 0x{bytes(deployed).hex()} is not its genesis's "
                             f"0x{want.hex()}: operator transactions cannot be proven against it")
