// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BatchHeader, BatchLib} from "./Batch.sol";
import {SparseMerkle} from "./SparseMerkle.sol";
import {IERC20Minimal, Vault} from "./Vault.sol";

/// @title Rollup
/// @notice The batch chain of the clearline optimistic rollup.
///
///  Deployment creates the Vault (`vault()`), records the genesis state root as batch 0
///  (finalized) and emits the genesis configuration bytes (`Genesis` event), so the whole state
///  can be rebuilt from L1 data alone. The constructor is payable: its value is the
///  sequencer's bond (must be > 0; `addBond` tops it up).
///
///  appendBatch (sequencer only): the contract builds the header itself from the arguments
///  and the calldata -- `txsHash = keccak256(txs)`, `stateRootsHash =
///  keccak256(abi.encodePacked(stateRoots))`, `postStateRoot = stateRoots[last]`, `queueStart`
///  = the previous batch's `queueEnd`, `l1Timestamp = block.timestamp` -- checks that
///  `number` is the next one, `prevHeaderHash` is the stored hash of the previous header and
///  `queueStart <= queueEnd <= Vault.queueLength`, then stores only the header hash and emits
///  the header. It reverts if the Vault is frozen, or if the oldest unconsumed queue item is
///  overdue (then anyone can freeze; see Vault). The contract does not parse `txs`: a batch
///  whose data does not decode, or whose roots are wrong, is fraud for the challenge game.
///
///  finalize (anyone): given the headers of the next batches in order, finalizes each whose
///  challenge period is over (block.timestamp >= l1Timestamp + challengePeriod). No batch
///  finalizes after a freeze.
contract Rollup {
    Vault public immutable vault;
    address public immutable sequencer;
    uint64 public immutable challengePeriod;
    bytes32 public immutable genesisConfigHash;

    // one storage slot
    uint48 private _lastBatch;
    uint64 private _queuePosition;
    uint48 private _lastFinalized;
    uint64 private _finalizedQueuePosition;

    bytes32 public finalizedStateRoot;
    uint256 public bond;
    mapping(uint256 => bytes32) private _headers;

    event Genesis(bytes32 indexed configHash, bytes32 stateRoot, bytes config);
    event BatchAppended(uint256 indexed number, bytes32 headerHash, BatchHeader header);
    event BatchFinalized(uint256 indexed number, bytes32 postStateRoot);
    event BondAdded(address indexed from, uint256 amount);

    error NoBond();
    error NotSequencer(address caller);
    error IsFrozen();
    error BadBatchNumber(uint256 expected, uint256 given);
    error BadPrevHeader(bytes32 expected, bytes32 given);
    error BadQueuePosition(uint256 queueStart, uint256 queueEnd, uint256 queueLength);
    error QueueItemOverdue(uint256 queueIndex, uint256 deadline);
    error NoStateRoots();
    error ZeroTxsPerRoot();
    error NothingToFinalize();
    error HeaderMismatch(uint256 number);
    error ChallengePeriodNotOver(uint256 number, uint256 finalizableAt);

    constructor(
        IERC20Minimal token,
        address sequencer_,
        uint64 challengePeriod_,
        uint64 forcedDeadline,
        bytes32 genesisStateRoot,
        bytes memory genesisConfig
    ) payable {
        if (msg.value == 0) revert NoBond();
        bond = msg.value;
        sequencer = sequencer_;
        challengePeriod = challengePeriod_;
        vault = new Vault(token, forcedDeadline);
        bytes32 configHash = keccak256(genesisConfig);
        genesisConfigHash = configHash;
        BatchHeader memory g;
        g.postStateRoot = genesisStateRoot;
        bytes32 h = BatchLib.hash(g);
        _headers[0] = h;
        finalizedStateRoot = genesisStateRoot;
        emit Genesis(configHash, genesisStateRoot, genesisConfig);
        emit BatchAppended(0, h, g);
        emit BondAdded(msg.sender, msg.value);
    }

    function addBond() external payable {
        bond += msg.value;
        emit BondAdded(msg.sender, msg.value);
    }

    // ------------------------------------------------------------------------------ batches
    /// @notice Append batch `number` (sequencer only). See the contract notice for the checks.
    /// @param txs          the batch data (opaque here; format in clearline.l1)
    /// @param stateRoots   state roots after each chunk of `txsPerRoot` transactions
    /// @return newHeaderHash keccak256(abi.encode(header))
    function appendBatch(
        uint64 number,
        bytes32 prevHeaderHash,
        uint64 queueEnd,
        bytes32 withdrawalsRoot,
        uint32 txsPerRoot,
        bytes calldata txs,
        bytes32[] calldata stateRoots
    ) external returns (bytes32 newHeaderHash) {
        if (msg.sender != sequencer) revert NotSequencer(msg.sender);
        uint256 expected = uint256(_lastBatch) + 1;
        if (number != expected) revert BadBatchNumber(expected, number);
        bytes32 prev = _headers[number - 1];
        if (prevHeaderHash != prev) revert BadPrevHeader(prev, prevHeaderHash);
        uint64 queueStart = _queuePosition;
        (uint64 queueLength, uint256 deadline, bool isFrozen) = vault.queueInfo(queueStart);
        if (isFrozen) revert IsFrozen();
        if (queueEnd < queueStart || queueEnd > queueLength) {
            revert BadQueuePosition(queueStart, queueEnd, queueLength);
        }
        if (block.timestamp > deadline) revert QueueItemOverdue(queueStart, deadline);
        uint256 nRoots = stateRoots.length;
        if (nRoots == 0) revert NoStateRoots();
        if (txsPerRoot == 0) revert ZeroTxsPerRoot();

        BatchHeader memory h;
        h.number = number;
        h.prevHeaderHash = prevHeaderHash;
        bytes32 txsHash;
        bytes32 rootsHash;
        assembly ("memory-safe") {
            // hash the calldata through scratch memory beyond the free memory pointer
            let p := mload(0x40)
            calldatacopy(p, txs.offset, txs.length)
            txsHash := keccak256(p, txs.length)
            calldatacopy(p, stateRoots.offset, shl(5, nRoots))
            rootsHash := keccak256(p, shl(5, nRoots))
        }
        h.txsHash = txsHash;
        h.stateRootsHash = rootsHash;
        h.postStateRoot = stateRoots[nRoots - 1];
        h.withdrawalsRoot = withdrawalsRoot;
        h.queueStart = queueStart;
        h.queueEnd = queueEnd;
        h.txsPerRoot = txsPerRoot;
        h.l1Timestamp = uint64(block.timestamp);
        newHeaderHash = BatchLib.hash(h);

        _headers[number] = newHeaderHash;
        _lastBatch = uint48(number);
        _queuePosition = queueEnd;
        emit BatchAppended(number, newHeaderHash, h);
    }

    /// @notice Finalize the next `headers.length` batches, in order (anyone).
    /// @return lastFinalized the number of the last finalized batch afterwards
    function finalize(BatchHeader[] calldata headers) external returns (uint256 lastFinalized) {
        uint256 n = headers.length;
        if (n == 0) revert NothingToFinalize();
        if (vault.frozen()) revert IsFrozen();
        lastFinalized = _lastFinalized;
        uint256 period = challengePeriod;
        for (uint256 i = 0; i < n; ++i) {
            BatchHeader calldata h = headers[i];
            uint256 number = h.number;
            if (number != lastFinalized + 1) revert BadBatchNumber(lastFinalized + 1, number);
            if (BatchLib.hashCalldata(h) != _headers[number]) revert HeaderMismatch(number);
            uint256 finalizableAt = uint256(h.l1Timestamp) + period;
            if (block.timestamp < finalizableAt) revert ChallengePeriodNotOver(number, finalizableAt);
            lastFinalized = number;
            emit BatchFinalized(number, h.postStateRoot);
        }
        BatchHeader calldata last = headers[n - 1];
        _lastFinalized = uint48(lastFinalized);
        _finalizedQueuePosition = last.queueEnd;
        finalizedStateRoot = last.postStateRoot;
    }

    // -------------------------------------------------------------------------------- views
    function lastBatch() external view returns (uint256) {
        return _lastBatch;
    }

    function lastFinalizedBatch() external view returns (uint256) {
        return _lastFinalized;
    }

    /// @notice L1 queue position after the last appended batch.
    function queuePosition() external view returns (uint256) {
        return _queuePosition;
    }

    /// @notice L1 queue position after the last finalized batch.
    function finalizedQueuePosition() external view returns (uint256) {
        return _finalizedQueuePosition;
    }

    /// @notice Stored header hash of batch `number` (0 if none).
    function headerHash(uint256 number) external view returns (bytes32) {
        return _headers[number];
    }

    /// @notice Header hash of batch `number` and the last finalized batch number.
    function batchInfo(uint256 number) external view returns (bytes32, uint256) {
        return (_headers[number], _lastFinalized);
    }

    function frozen() external view returns (bool) {
        return vault.frozen();
    }

    function hashHeader(BatchHeader calldata header) external pure returns (bytes32) {
        return BatchLib.hashCalldata(header);
    }

    /// @notice SparseMerkle.rootFromCompressedProof, for off-chain tools and tests.
    function merkleRoot(uint256 depth, uint256 index, bytes32 leaf, uint256 present, bytes32[] calldata siblings)
        external
        pure
        returns (bytes32)
    {
        return SparseMerkle.rootFromCompressedProof(depth, index, leaf, present, siblings);
    }

    /// @notice SparseMerkle.rootFromProof (full proof of `siblings.length` levels).
    function merkleRootFull(uint256 index, bytes32 leaf, bytes32[] calldata siblings) external pure returns (bytes32) {
        return SparseMerkle.rootFromProof(siblings.length, index, leaf, siblings);
    }
}
