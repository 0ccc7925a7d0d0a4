// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscapePosition} from "./Escape.sol";
import {SparseMerkle} from "./SparseMerkle.sol";

/// @notice An account leaf's fields (clearline.core.encoding.encode_account_leaf, after its tag).
struct AccountLeaf {
    uint32 id;
    address owner;
    uint32 subaccount;
    int256 collateral;
    uint64 nonce;
    uint8 marginMode;
    uint8 flags;
    EscapePosition[] positions; // strictly increasing by instrument
}

/// @title AccountLeafLib
/// @notice An account leaf opened from its committed bytes and re-hashed after a change, for the
///         step verifiers that pay one holder (FundingVerifier: FUNDING_PAY, ExpiryVerifier:
///         SETTLE_POSITION) and the MatchVerifier (a meeting's maker and taker).
library AccountLeafLib {
    bytes32 internal constant ACCOUNT_TAG = keccak256("clearline.account.v1");
    uint256 internal constant ACCOUNTS_DEPTH = 32;

    error BadAccountWitness();

    /// @dev Account `id`'s leaf `raw`, proven against `root_` and decoded, and the index of its
    ///      position in `instrument` (positions.length when it holds none). Reverts on a leaf
    ///      or proof that does not fit.
    function open(
        bytes32 root_,
        uint256 id,
        bytes calldata raw,
        uint256 present,
        bytes32[] calldata siblings,
        uint256 instrument
    ) internal pure returns (AccountLeaf memory a, uint256 i) {
        if (
            raw.length < 288
                || SparseMerkle.rootFromCompressedProof(ACCOUNTS_DEPTH, id, keccak256(raw), present, siblings) != root_
        ) revert BadAccountWitness();
        a = decode(raw, id);
        while (i < a.positions.length && a.positions[i].instrument != instrument) ++i;
    }

    /// @dev Account `id`'s leaf decoded from `raw` (not proven: the caller proves it).
    function decode(bytes calldata raw, uint256 id) internal pure returns (AccountLeaf memory a) {
        if (raw.length < 288) revert BadAccountWitness();
        bytes32 tag;
        (tag, a.id, a.owner, a.subaccount, a.collateral, a.nonce, a.marginMode, a.flags, a.positions) =
            abi.decode(raw, (bytes32, uint32, address, uint32, int256, uint64, uint8, uint8, EscapePosition[]));
        if (tag != ACCOUNT_TAG || a.id != id) revert BadAccountWitness();
    }

    /// @dev The leaf hash of `a` (keccak256 of its encoding).
    function hash(AccountLeaf memory a) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(ACCOUNT_TAG, a.id, a.owner, a.subaccount, a.collateral, a.nonce, a.marginMode, a.flags, a.positions)
        );
    }

    /// @dev The accounts root once the leaf is `a` (same proof as `open`'s).
    function root(AccountLeaf memory a, uint256 present, bytes32[] calldata siblings) internal pure returns (bytes32) {
        return SparseMerkle.rootFromCompressedProof(ACCOUNTS_DEPTH, a.id, hash(a), present, siblings);
    }
}
