// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SparseMerkle} from "./SparseMerkle.sol";

/// @title MarketWords
/// @notice A market leaf (clearline.core.encoding.encode_market_leaf: 43 static words, the tag
///         first) as a memory copy read and rewritten by word, for the step verifiers
///         (FundingVerifier, ExpiryVerifier) that re-execute one market's change.
library MarketWords {
    bytes32 internal constant MARKET_TAG = keccak256("clearline.market.v1");
    uint256 internal constant MARKETS_DEPTH = 24;
    uint256 internal constant LEAF_BYTES = 43 * 32;

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
