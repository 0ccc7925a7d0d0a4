// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SparseMerkle} from "./SparseMerkle.sol";

/// @notice One withdrawal a batch pays: `amount` usd6 to `owner` from account `accountId`, for
///         transaction `txIndex` of chunk `chunk` of the batch (a user Withdraw or a served
///         ForcedWithdrawal). The position lets a fraud proof check a record against the one
///         transaction it names, without the rest of the batch.
struct WithdrawalRecord {
    uint32 accountId;
    address owner;
    uint64 amount;
    uint32 chunk;
    uint16 txIndex;
}

error BadWithdrawalRecords(uint256 length);

/// @title WithdrawalsLib
/// @notice The batch's withdrawal records (clearline.l1.formats: `withdrawal_leaf`,
///         `encode_withdrawals`, `withdrawals_tree`). The sequencer posts them with the batch
///         (packed, RECORD_BYTES each: uint32 accountId, address owner, uint64 amount,
///         uint32 chunk, uint16 txIndex, big-endian) and the Rollup computes the header's
///         `withdrawalsRoot` from them: the root of a SparseMerkle tree of depth DEPTH whose
///         leaf i is `leaf(record i)`. Posting them makes the tree public L1 data, so anyone can
///         prove a bad record (FraudVerifier KIND_WITHDRAWALS) before a claim pays it.
library WithdrawalsLib {
    uint256 internal constant DEPTH = 16;
    uint256 internal constant RECORD_BYTES = 38;
    bytes32 internal constant TAG = keccak256("clearline.withdrawal.v2");

    /// @notice keccak256(abi.encode(TAG, accountId, owner, amount, chunk, txIndex)).
    function leaf(WithdrawalRecord memory r) internal pure returns (bytes32) {
        return keccak256(abi.encode(TAG, r.accountId, r.owner, r.amount, r.chunk, r.txIndex));
    }

    /// @notice The root of the tree of the packed records (ZERO_HASHES[DEPTH] for none).
    function root(bytes calldata packed) internal pure returns (bytes32) {
        uint256 n = packed.length / RECORD_BYTES;
        if (n * RECORD_BYTES != packed.length || n > 1 << DEPTH) revert BadWithdrawalRecords(packed.length);
        bytes memory zs = SparseMerkle.ZERO_HASHES;
        if (n == 0) return SparseMerkle.zeroHash(DEPTH);
        bytes32[] memory level = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 p = i * RECORD_BYTES;
            WithdrawalRecord memory r;
            r.accountId = uint32(bytes4(packed[p:p + 4]));
            r.owner = address(bytes20(packed[p + 4:p + 24]));
            r.amount = uint64(bytes8(packed[p + 24:p + 32]));
            r.chunk = uint32(bytes4(packed[p + 32:p + 36]));
            r.txIndex = uint16(bytes2(packed[p + 36:p + 38]));
            level[i] = leaf(r);
        }
        for (uint256 h = 0; h < DEPTH; ++h) {
            uint256 m = (n + 1) >> 1;
            assembly ("memory-safe") {
                let z := mload(add(zs, shl(5, add(h, 1)))) // the empty subtree of height h
                let buf := mload(0x40)
                mstore8(buf, 0x01)
                let base := add(level, 32)
                for { let j := 0 } lt(j, m) { j := add(j, 1) } {
                    let l := mload(add(base, shl(6, j)))
                    let r := z
                    if lt(add(shl(1, j), 1), n) { r := mload(add(base, add(shl(6, j), 32))) }
                    mstore(add(buf, 1), l)
                    mstore(add(buf, 33), r)
                    mstore(add(base, shl(5, j)), keccak256(buf, 65))
                }
            }
            n = m;
        }
        return level[0];
    }
}
