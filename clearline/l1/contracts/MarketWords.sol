// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SparseMerkle} from "./SparseMerkle.sol";

// Words of a market leaf (the tag is word 0; clearline.core.encoding.encode_market_leaf).
uint256 constant W_KIND = 3;
uint256 constant W_UNDERLYING = 4;
uint256 constant W_TICK_SIZE = 5;
uint256 constant W_LOT_SIZE = 6;
uint256 constant W_EXPIRY = 11;
uint256 constant W_STRIKE = 12;
uint256 constant W_OPTION_TYPE = 13;
uint256 constant W_STATUS = 14;
uint256 constant W_MARK = 15;
uint256 constant W_INDEX = 17;
uint256 constant W_OPEN_INTEREST = 18;
uint256 constant W_PREMIUM_SUM = 19;
uint256 constant W_SAMPLES = 20;
uint256 constant W_FUNDING_TIME = 21;
uint256 constant W_RATE = 22;
uint256 constant W_SETTLEMENT_PRICE = 23;
uint256 constant W_SAMPLE_TIME = 24;
uint256 constant W_UNPAID = 41;
uint256 constant W_FLOAT = 42;
uint256 constant W_BID_HEAD = 43;
uint256 constant W_ASK_HEAD = 44;

/// @notice The leaves a bounded step touches (MarkVerifier.ActionWitness's), with compressed
///         proofs: `leaf` the target's market leaf ("" = an empty slot; CLOSE_ORDER: the order's
///         leaf at slot `index`), `leaf2` the second one (FUNDING_PAY, SETTLE_POSITION: the
///         account's leaf; SETTLE_OPTION: the underlying's; CLOSE_ORDER: the order's market).
struct StepLeaves {
    bytes leaf;
    uint256 present;
    bytes32[] siblings;
    bytes leaf2;
    uint256 present2;
    bytes32[] siblings2;
    uint256 index;
    bytes leaf3;
    uint256 present3;
    bytes32[] siblings3;
}

/// @title MarketWords
/// @notice A market leaf (clearline.core.encoding.encode_market_leaf: 45 static words, the tag
///         first) as a memory copy read and rewritten by word, for the step verifiers
///         (FundingVerifier, ExpiryVerifier) that re-execute one market's change.
library MarketWords {
    bytes32 internal constant MARKET_TAG = keccak256("clearline.market.v1");
    uint256 internal constant MARKETS_DEPTH = 24;
    uint256 internal constant LEAF_BYTES = 45 * 32;

    error BadMarketWitness();

    /// @dev The leaf `leaf` of market `id`, proven against `root_` and copied to memory;
    ///      present = false for an empty slot. Reverts on a proof or leaf that does not fit.
    function open(bytes32 root_, uint256 id, bytes calldata leaf, uint256 present_, bytes32[] calldata siblings)
        internal
        pure
        returns (bytes memory m, bool present)
    {
        m = leaf;
        bytes32 h = m.length == 0 ? bytes32(0) : keccak256(m);
        if (SparseMerkle.rootFromCompressedProof(MARKETS_DEPTH, id, h, present_, siblings) != root_) {
            revert BadMarketWitness();
        }
        if (m.length == 0) return (m, false);
        if (m.length != LEAF_BYTES || word(m, 0) != uint256(MARKET_TAG) || word(m, 1) != id) {
            revert BadMarketWitness();
        }
        present = true;
    }

    /// @dev The root after market `id`'s leaf became `m` (same proof as `open`'s).
    function root(uint256 id, bytes memory m, uint256 present_, bytes32[] calldata siblings)
        internal
        pure
        returns (bytes32)
    {
        return SparseMerkle.rootFromCompressedProof(MARKETS_DEPTH, id, keccak256(m), present_, siblings);
    }

    function word(bytes memory b, uint256 i) internal pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := mload(add(b, add(32, mul(i, 32))))
        }
    }

    function set(bytes memory b, uint256 i, uint256 v) internal pure {
        assembly ("memory-safe") {
            mstore(add(b, add(32, mul(i, 32))), v)
        }
    }
}
