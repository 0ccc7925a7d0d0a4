// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BatchHeader, BatchLib} from "./Batch.sol";
import {SparseMerkle} from "./SparseMerkle.sol";
import {IERC20Minimal, Vault} from "./Vault.sol";
import {FraudContext} from "./FraudVerifier.sol";
import {WithdrawalsLib} from "./Withdrawals.sol";

/// @notice The FraudVerifier as the Rollup calls it (deployed separately).
interface IFraudVerifier {
    function verify(FraudContext calldata x, bytes calldata head, bytes calldata chunk, bytes calldata witness)
        external
        view
        returns (uint256 reason);
}

/// @notice One fraud claim against chunk `chunkIndex` of pending batch `header.number`.
///         `head` and `chunkHashes` open the header's `txsHash` (see BatchDataLib), `chunk` is
///         chunk `chunkIndex` (ignored by KIND_FRAMING), `stateRoots` open `stateRootsHash`,
///         `prevHeader` is batch `number - 1`'s header (its post-root is chunk 0's pre-root),
///         `witness` is the kind's (FraudVerifier).
struct FraudProof {
    BatchHeader header;
    BatchHeader prevHeader;
    uint64 chunkIndex;
    uint8 kind;
    bytes head;
    bytes32[] chunkHashes;
    bytes chunk;
    bytes32[] stateRoots;
    bytes witness;
}

/// @title BatchDataLib
/// @notice The data commitment `txsHash`. The Rollup walks batch data v3's chunk table
///         (`0x03 || u k || u C || uint32 end[C] || chunks`, clearline/l1/batch_v3.py) and
///         commits
///
///           txsHash = keccak256(keccak256(head) || keccak256(chunk_0) || ... || keccak256(chunk_{C-1}))
///
///         with head = the bytes before chunk 0 (version, k, C and the table), so a proof
///         carries one chunk, the C chunk hashes and the head instead of the whole batch. The
///         walk is lenient: varints of at most 10 bytes, k > 0, C table entries that fit in
///         the data, ends non-decreasing from the table's end (an empty v3 chunk is one
///         matching step of an order), the last at the end of the data. v2 data (`0x02 || u k || u n || ...`, C = ceil(n / k)) walks the same way.
///         Data that does not walk (any other version included) is committed
///         as head = the whole data and no chunk: `keccak256(keccak256(data))`. Whether the
///         framing is right (k = txsPerRoot, C = number of roots, minimal varints) is for the
///         fraud game (FraudVerifier KIND_FRAMING), not for the append. Python mirror:
///         clearline.l1.formats.batch_data_hash.
library BatchDataLib {
    function txsHash(bytes calldata txs) internal pure returns (bytes32 h, uint256 nChunks) {
        (bool framed, uint256 tableStart, uint256 c) = _walk(txs);
        if (!framed) return (keccak256(abi.encodePacked(keccak256(txs))), 0);
        uint256 tableEnd = tableStart + 4 * c;
        bytes32[] memory hashes = new bytes32[](c + 1);
        hashes[0] = keccak256(txs[0:tableEnd]);
        uint256 start = tableEnd;
        for (uint256 i = 0; i < c; ++i) {
            uint256 end = uint32(bytes4(txs[tableStart + 4 * i:tableStart + 4 * i + 4]));
            hashes[i + 1] = keccak256(txs[start:end]);
            start = end;
        }
        assembly ("memory-safe") {
            h := keccak256(add(hashes, 32), shl(5, add(c, 1)))
        }
        nChunks = c;
    }

    /// @dev (framed, table start, C) as described above.
    function _walk(bytes calldata txs) private pure returns (bool, uint256, uint256) {
        uint256 len = txs.length;
        if (len == 0 || (uint8(txs[0]) != 3 && uint8(txs[0]) != 2)) return (false, 0, 0);
        (uint256 k, uint256 p, bool ok) = _varint(txs, 1);
        if (!ok || k == 0) return (false, 0, 0);
        uint256 c;
        (c, p, ok) = _varint(txs, p);
        if (!ok) return (false, 0, 0);
        if (uint8(txs[0]) == 2) c = (c + k - 1) / k; // v2 writes n: C = ceil(n / k)
        if (c > (len - p) / 4) return (false, 0, 0);
        uint256 start = p + 4 * c;
        for (uint256 i = 0; i < c; ++i) {
            uint256 end = uint32(bytes4(txs[p + 4 * i:p + 4 * i + 4]));
            if (end < start || end > len) return (false, 0, 0); // an empty chunk: a matching step
            start = end;
        }
        if (start != len) return (false, 0, 0);
        return (true, p, c);
    }

    function _varint(bytes calldata d, uint256 p) private pure returns (uint256 v, uint256 q, bool ok) {
        uint256 len = d.length;
        unchecked {
            for (uint256 i = 0; i < 10; ++i) {
                if (p >= len) return (0, p, false);
                uint256 b = uint8(d[p]);
                ++p;
                v |= (b & 0x7F) << (7 * i);
                if (b < 0x80) return (v, p, true);
            }
        }
        return (0, p, false);
    }
}

/// @title Rollup
/// @notice The batch chain of the clearline optimistic rollup.
///
///  Deployment creates the Vault (`vault()`), records the genesis state root as batch 0
///  (finalized) and emits the genesis configuration bytes (`Genesis` event), so the whole state
///  can be rebuilt from L1 data alone. The constructor is payable: its value is the
///  sequencer's bond (must be > 0; `addBond` tops it up).
///
///  appendBatch (sequencer only): the contract builds the header itself from the arguments
///  and the calldata -- `txsHash` = BatchDataLib.txsHash(txs) (per-chunk hashes), `stateRootsHash =
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
///
///  Dispute game (docs/fraud-proofs.md): anyone commits `keccak256(abi.encode(challenger,
///  batchNumber, chunkIndex, salt))` with `commitChallenge`, then, in a later block and while
///  batch `batchNumber` is pending (appended, not finalized, block.timestamp < l1Timestamp +
///  challengePeriod, system not frozen), reveals with `proveFraud(proof, salt)`. The Rollup
///  checks the header against its stored hash, the data (head, chunk hashes, chunk) against
///  `txsHash` and the roots against `stateRootsHash`, then asks the `verifier`. A non-zero
///  reason: batches `number..lastBatch` are deleted (lastBatch = number - 1, the queue position
///  returns to the batch's queueStart), half the bond (rounded down) is paid to the challenger
///  and the rest is burnt (sent to 0x...dEaD, from which nothing can be spent), and the Vault
///  freezes: escape then pays against the last finalized root. A zero reason reverts
///  (`NotFraud`); so does a witness that does not match the committed data (in the verifier).
contract Rollup {
    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;

    Vault public immutable vault;
    IFraudVerifier public immutable verifier;
    address public immutable sequencer;
    uint64 public immutable challengePeriod;
    bytes32 public immutable genesisConfigHash;
    /// @notice keccak256(abi.encode(ConsensusParams)) of the genesis (clearline/l1/params.py):
    ///         the parameters a proof of an operator transaction re-executes with.
    bytes32 public immutable paramsHash;

    // one storage slot
    uint48 private _lastBatch;
    uint64 private _queuePosition;
    uint48 private _lastFinalized;
    uint64 private _finalizedQueuePosition;

    bytes32 public finalizedStateRoot;
    uint256 public bond;
    mapping(uint256 => bytes32) private _headers;
    mapping(bytes32 => uint256) private _commitments; // commitment -> block number committed

    event Genesis(bytes32 indexed configHash, bytes32 stateRoot, bytes config);
    event BatchAppended(uint256 indexed number, bytes32 headerHash, BatchHeader header);
    event BatchFinalized(uint256 indexed number, bytes32 postStateRoot);
    event BondAdded(address indexed from, uint256 amount);
    event ChallengeCommitted(bytes32 indexed commitment, address indexed by, uint256 blockNumber);
    event FraudProven(
        uint256 indexed number,
        uint256 chunkIndex,
        address indexed challenger,
        uint8 kind,
        uint256 reason,
        uint256 reward,
        uint256 burnt,
        uint256 batchesReverted
    );

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
    error NoVerifier();
    error AlreadyCommitted(bytes32 commitment);
    error NoCommitment(bytes32 commitment);
    error RevealTooEarly(bytes32 commitment, uint256 committedAt);
    error NotPending(uint256 number, uint256 lastBatch, uint256 lastFinalized);
    error ChallengePeriodOver(uint256 number, uint256 endedAt);
    error PrevHeaderMismatch(uint256 number);
    error DataMismatch(uint256 number);
    error StateRootsMismatch(uint256 number);
    error ChunkMismatch(uint256 number, uint256 chunkIndex);
    error NotFraud(uint256 number, uint256 chunkIndex, uint8 kind);
    error PaymentFailed(address to, uint256 amount);

    constructor(
        IERC20Minimal token,
        IFraudVerifier verifier_,
        address sequencer_,
        uint64 challengePeriod_,
        uint64 forcedDeadline,
        bytes32 genesisStateRoot,
        bytes memory genesisConfig,
        bytes32 paramsHash_
    ) payable {
        if (msg.value == 0) revert NoBond();
        if (address(verifier_).code.length == 0) revert NoVerifier();
        verifier = verifier_;
        bond = msg.value;
        sequencer = sequencer_;
        challengePeriod = challengePeriod_;
        vault = new Vault(token, forcedDeadline);
        bytes32 configHash = keccak256(genesisConfig);
        genesisConfigHash = configHash;
        paramsHash = paramsHash_;
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
    /// @param withdrawals  the batch's withdrawal records, packed (WithdrawalsLib): the header's
    ///                     `withdrawalsRoot` is computed from them here
    /// @param txs          the batch data (opaque here; format in clearline.l1)
    /// @param stateRoots   state roots after each chunk (at most `txsPerRoot` transactions each)
    /// @return newHeaderHash keccak256(abi.encode(header))
    function appendBatch(
        uint64 number,
        bytes32 prevHeaderHash,
        uint64 queueEnd,
        bytes calldata withdrawals,
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
        (bytes32 txsHash,) = BatchDataLib.txsHash(txs);
        bytes32 rootsHash = _rootsHash(stateRoots);
        h.txsHash = txsHash;
        h.stateRootsHash = rootsHash;
        h.postStateRoot = stateRoots[nRoots - 1];
        h.withdrawalsRoot = WithdrawalsLib.root(withdrawals);
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

    // ---------------------------------------------------------------------------- disputes
    /// @notice Commit to a challenge: `keccak256(abi.encode(challenger, batchNumber,
    ///         chunkIndex, salt))`; reveal with `proveFraud` from `challenger` in a later block.
    function commitChallenge(bytes32 commitment) external {
        if (_commitments[commitment] != 0) revert AlreadyCommitted(commitment);
        _commitments[commitment] = block.number;
        emit ChallengeCommitted(commitment, msg.sender, block.number);
    }

    /// @notice Block number of `commitment` (0 if none or used).
    function commitmentBlock(bytes32 commitment) external view returns (uint256) {
        return _commitments[commitment];
    }

    /// @notice Prove chunk `p.chunkIndex` of pending batch `p.header.number` wrong (see the
    ///         contract notice). Returns the verifier's reason code.
    function proveFraud(FraudProof calldata p, bytes32 salt) external returns (uint256 reason) {
        BatchHeader calldata h = p.header;
        uint256 number = h.number;
        {
            bytes32 c = keccak256(abi.encode(msg.sender, number, uint256(p.chunkIndex), salt));
            uint256 at = _commitments[c];
            if (at == 0) revert NoCommitment(c);
            if (block.number <= at) revert RevealTooEarly(c, at);
            delete _commitments[c];
        }
        if (vault.frozen()) revert IsFrozen();
        uint256 last = _lastBatch;
        uint256 fin = _lastFinalized;
        if (number <= fin || number > last) revert NotPending(number, last, fin);
        if (BatchLib.hashCalldata(h) != _headers[number]) revert HeaderMismatch(number);
        uint256 endsAt = uint256(h.l1Timestamp) + challengePeriod;
        if (block.timestamp >= endsAt) revert ChallengePeriodOver(number, endsAt);
        if (BatchLib.hashCalldata(p.prevHeader) != h.prevHeaderHash) revert PrevHeaderMismatch(number);
        if (_rootsHash(p.stateRoots) != h.stateRootsHash) revert StateRootsMismatch(number);
        if (_openData(p.head, p.chunkHashes) != h.txsHash) revert DataMismatch(number);

        uint256 ci = p.chunkIndex;
        FraudContext memory x;
        x.kind = p.kind;
        x.chunkIndex = p.chunkIndex;
        x.nChunks = uint64(p.chunkHashes.length);
        x.nRoots = uint64(p.stateRoots.length);
        x.txsPerRoot = h.txsPerRoot;
        x.queueStart = h.queueStart;
        x.queueEnd = h.queueEnd;
        x.vault = address(vault);
        x.paramsHash = paramsHash;
        x.withdrawalsRoot = h.withdrawalsRoot;
        x.txsHash = h.txsHash;
        if (p.kind != 1) {
            // every kind but FRAMING judges one chunk: it must be the committed one
            if (ci >= p.chunkHashes.length || ci >= p.stateRoots.length || keccak256(p.chunk) != p.chunkHashes[ci]) {
                revert ChunkMismatch(number, ci);
            }
            x.preRoot = ci == 0 ? p.prevHeader.postStateRoot : p.stateRoots[ci - 1];
            x.postRoot = p.stateRoots[ci];
        }
        reason = verifier.verify(x, p.head, p.chunk, p.witness);
        if (reason == 0) revert NotFraud(number, ci, p.kind);

        // consequences: revert batches number..last, slash the bond, freeze. The reverted headers
        // are cut off by _lastBatch (the views report none above it, and a frozen Rollup never
        // appends again), so the proof costs the same however many batches follow: a sequencer
        // cannot price a proof out of a block by posting more batches after a bad one.
        delete _headers[number];
        _lastBatch = uint48(number - 1);
        _queuePosition = h.queueStart;
        uint256 total = bond;
        uint256 reward = total / 2;
        uint256 burnt = total - reward;
        bond = 0;
        vault.freezeByRollup(number);
        emit FraudProven(number, ci, msg.sender, p.kind, reason, reward, burnt, last - number + 1);
        _pay(msg.sender, reward);
        _pay(BURN_ADDRESS, burnt);
    }

    function _pay(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert PaymentFailed(to, amount);
    }

    function _rootsHash(bytes32[] calldata roots) private pure returns (bytes32 r) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, roots.offset, shl(5, roots.length))
            r := keccak256(p, shl(5, roots.length))
        }
    }

    /// @dev keccak256(keccak256(head) || chunkHashes): BatchDataLib's commitment, opened.
    function _openData(bytes calldata head, bytes32[] calldata chunkHashes) private pure returns (bytes32 r) {
        bytes32 hh = keccak256(head);
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, hh)
            calldatacopy(add(p, 32), chunkHashes.offset, shl(5, chunkHashes.length))
            r := keccak256(p, add(32, shl(5, chunkHashes.length)))
        }
    }

    /// @notice BatchDataLib.txsHash of `txs` and its number of chunks (for off-chain tools).
    function dataHash(bytes calldata txs) external pure returns (bytes32 h, uint256 nChunks) {
        return BatchDataLib.txsHash(txs);
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

    /// @notice Stored header hash of batch `number` (0 if none, or reverted by a fraud proof).
    function headerHash(uint256 number) external view returns (bytes32) {
        return _header(number);
    }

    /// @notice Header hash of batch `number` and the last finalized batch number.
    function batchInfo(uint256 number) external view returns (bytes32, uint256) {
        return (_header(number), _lastFinalized);
    }

    function _header(uint256 number) private view returns (bytes32) {
        return number > _lastBatch ? bytes32(0) : _headers[number];
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
