// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The header of one batch. The Rollup stores only `keccak256(abi.encode(header))`
///         (ten static 32-byte words) per batch; whoever needs a field later (finalize, claims,
///         fraud and escape proofs) passes the header back and the contract re-hashes it. Every
///         header is also emitted in full by `Rollup.BatchAppended`.
///
///         Genesis (number 0) is all zeros except `postStateRoot` = the genesis state root.
struct BatchHeader {
    uint64 number; //           1, 2, 3, ... consecutive (0 = genesis)
    bytes32 prevHeaderHash; //  hash of header `number - 1`
    bytes32 txsHash; //         keccak256(txs): the batch data, hashed by the contract itself
    bytes32 stateRootsHash; //  keccak256(abi.encodePacked(stateRoots)), hashed by the contract
    bytes32 postStateRoot; //   stateRoots[stateRoots.length - 1]: the state after the batch
    bytes32 withdrawalsRoot; // root of the batch's withdrawal records (SparseMerkle, depth 16)
    uint64 queueStart; //       L1 queue position before the batch (= previous queueEnd)
    uint64 queueEnd; //         L1 queue position after the batch (items [start, end) consumed)
    uint32 txsPerRoot; //       the largest chunk: stateRoots[c] is the root after chunk c (batch data v3)
    uint64 l1Timestamp; //      block.timestamp of the append: the challenge period starts here
}

library BatchLib {
    function hash(BatchHeader memory h) internal pure returns (bytes32) {
        return keccak256(abi.encode(h));
    }

    function hashCalldata(BatchHeader calldata h) internal pure returns (bytes32 r) {
        // A static struct in calldata is its ABI encoding: hash the 10 words in place.
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, h, 320)
            r := keccak256(p, 320)
        }
    }
}
