// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BatchHeader, BatchLib} from "./Batch.sol";
import {SparseMerkle} from "./SparseMerkle.sol";
import {EscapeLib, EscapeState, EscapeAccount, EscapeMarket} from "./Escape.sol";
import {WithdrawalRecord, WithdrawalsLib} from "./Withdrawals.sol";

interface IERC20Minimal {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @notice What the Vault reads from its Rollup.
interface IRollupState {
    function queuePosition() external view returns (uint256);
    function finalizedQueuePosition() external view returns (uint256);
    function batchInfo(uint256 number) external view returns (bytes32 headerHash, uint256 lastFinalized);
    function finalizedStateRoot() external view returns (bytes32);
    function paramsHash() external view returns (bytes32);
}

/// @title Vault
/// @notice Custody of the stablecoin, the L1 queue (deposits and forced withdrawals), payment
///         of withdrawals contained in finalized batches, and the freeze.
///
///  L1 queue. Items are numbered 0, 1, 2, ... and must be consumed by batches in order. For
///  each item the Vault stores its hash and its L1 time (block.timestamp, uint64, packed four
///  per storage word):
///
///    item hash = keccak256(abi.encode(uint8 kind, uint64 queueIndex, address owner,
///                                     uint32 target, uint64 amount))
///
///    kind 1 DEPOSIT:           owner = depositor, target = subaccount, amount in token units
///                              (usd6). This is the core's Deposit tx encoding without its
///                              timeMs word: abi.encode(kind, timeMs, queueIndex, owner,
///                              subaccount, amount).
///    kind 2 FORCED_WITHDRAWAL: owner = requester, target = account id, amount requested (usd6).
///
///  (Queue kinds are their own namespace, not clearline.core.txs.TxKind.)
///
///  Deadline. An item is overdue once block.timestamp > its time + forcedDeadline while it is
///  not consumed by an appended batch (index >= Rollup.queuePosition()). Then anyone may call
///  `freeze()`, and the Rollup refuses further appends (so an item cannot be served late).
///
///  Withdrawal records. Each batch commits `withdrawalsRoot`: the root of a SparseMerkle tree
///  of depth WITHDRAWALS_DEPTH (16) whose leaf i (i = 0, 1, ... in transaction order over the
///  batch's successful withdrawals, user and forced alike) is
///
///    keccak256(abi.encode(bytes32 WITHDRAWAL_TAG, uint32 accountId, address owner, uint64 amount,
///                         uint32 chunk, uint16 txIndex))
///
///  with WITHDRAWAL_TAG = keccak256("clearline.withdrawal.v2") and (chunk, txIndex) the
///  transaction that paid it (WithdrawalsLib: the Rollup computes the root from the records the
///  sequencer posts with the batch, so the records are L1 data and a bad one can be proven
///  during the challenge period); unused positions are empty (zero) leaves. Once the batch is
///  finalized, `claimWithdrawal` pays `amount` to `owner`, once per (batch, index).
///
///  Freeze. `freeze()` (an overdue queue item) or `freezeByRollup` (a proven fraud, from the
///  Rollup). After it, batches appended but not finalized are void: the system state is
///  the last finalized one. Deposits at queue index >= Rollup.finalizedQueuePosition() were
///  never consumed by it and are refunded by `refundDeposit`, once.
///
///  Escape. After `freeze()`, `escape` pays each account, once, its equity at the last
///  finalized state (Rollup.finalizedStateRoot), proven by Merkle proofs (see Escape.sol):
///  max(0, collateral + sum(quote + size * markPrice * tickValue)) usd6, to the account's owner
///  (anyone may call). Withdrawals of finalized batches stay claimable (the state already
///  debited them) and unconsumed deposits stay refundable: all three are paid from the same
///  balance, first come first served. If the Vault's token balance is below an escape's
///  amount the escape reverts with `InsufficientVaultBalance` (nothing is paid partially; an
///  honest finalized state is solvent: sum of equities <= deposits - withdrawals).
contract Vault {
    uint8 public constant KIND_DEPOSIT = 1;
    uint8 public constant KIND_FORCED_WITHDRAWAL = 2;
    uint256 public constant WITHDRAWALS_DEPTH = 16;
    bytes32 public constant WITHDRAWAL_TAG = WithdrawalsLib.TAG;

    IERC20Minimal public immutable token;
    IRollupState public immutable rollup;
    uint64 public immutable forcedDeadline;

    // one storage slot
    uint64 public queueLength;
    bool public frozen;
    uint64 public frozenAt;

    mapping(uint256 => bytes32) private _itemHashes; // queue index -> item hash (0 once refunded)
    mapping(uint256 => uint256) private _itemTimes; // index / 4 -> four uint64 times
    mapping(uint256 => uint256) private _claimed; // (batch << 8 | index >> 8) -> bitmap
    mapping(uint256 => uint256) private _escaped; // accountId >> 8 -> bitmap

    event QueueItemAdded(
        uint256 indexed index,
        uint8 indexed kind,
        address indexed owner,
        uint32 target,
        uint64 amount,
        uint64 time,
        bytes32 itemHash
    );
    event Frozen(uint256 queueIndex, uint256 itemTime, uint256 deadline);
    event FrozenByFraud(uint256 batch);
    event WithdrawalClaimed(
        uint256 indexed batch, uint256 indexed index, uint32 accountId, address indexed owner, uint64 amount
    );
    event DepositRefunded(uint256 indexed queueIndex, address indexed owner, uint64 amount);
    event Escaped(uint32 indexed accountId, address indexed owner, uint256 amount, int256 equity);

    error ZeroAmount();
    error IsFrozen();
    error NotFrozen();
    error AlreadyFrozen();
    error NothingOverdue(uint256 queuePosition, uint256 queueLength);
    error NotOverdue(uint256 queueIndex, uint256 deadline);
    error TransferFailed();
    error NotFinalized(uint256 batch, uint256 lastFinalized);
    error HeaderMismatch(uint256 batch);
    error WithdrawalIndexOutOfRange(uint256 index);
    error InvalidWithdrawalProof(uint256 batch, uint256 index);
    error AlreadyClaimed(uint256 batch, uint256 index);
    error NoSuchQueueItem(uint256 queueIndex);
    error DepositConsumed(uint256 queueIndex, uint256 finalizedQueuePosition);
    error QueueItemMismatch(uint256 queueIndex);
    error AlreadyRefunded(uint256 queueIndex);
    error AlreadyEscaped(uint32 accountId);
    error ParamsMismatch();
    error InsufficientVaultBalance(uint256 amount, uint256 balance);
    error NotRollup(address caller);

    constructor(IERC20Minimal token_, uint64 forcedDeadline_) {
        token = token_;
        rollup = IRollupState(msg.sender);
        forcedDeadline = forcedDeadline_;
    }

    // ------------------------------------------------------------------------------- queue
    /// @notice Lock `amount` (usd6) from the caller for (caller, `subaccount`); enters the queue.
    function deposit(uint32 subaccount, uint64 amount) external returns (uint256 queueIndex) {
        if (amount == 0) revert ZeroAmount();
        if (frozen) revert IsFrozen();
        _safeTransferFrom(msg.sender, amount);
        queueIndex = _enqueue(KIND_DEPOSIT, msg.sender, subaccount, amount);
    }

    /// @notice Lock `amount` (usd6) from the caller for (`owner`, `subaccount`): a deposit paid by
    ///         someone else (a faucet, a custodian, a contract); it enters the queue exactly like a
    ///         deposit by `owner`. Only the owner can later move the funds off-chain.
    function depositFor(address owner, uint32 subaccount, uint64 amount) external returns (uint256 queueIndex) {
        if (amount == 0) revert ZeroAmount();
        if (frozen) revert IsFrozen();
        _safeTransferFrom(msg.sender, amount);
        queueIndex = _enqueue(KIND_DEPOSIT, owner, subaccount, amount);
    }

    /// @notice Ask, on L1, to withdraw `amount` (usd6) from account `accountId` owned by the
    ///         caller. The sequencer must serve it (or reject it by a rule of the core) within
    ///         `forcedDeadline` seconds, or anyone can `freeze()` the system.
    function requestForcedWithdrawal(uint32 accountId, uint64 amount) external returns (uint256 queueIndex) {
        if (frozen) revert IsFrozen();
        queueIndex = _enqueue(KIND_FORCED_WITHDRAWAL, msg.sender, accountId, amount);
    }

    function _enqueue(uint8 kind, address owner, uint32 target, uint64 amount) private returns (uint256 index) {
        index = queueLength;
        bytes32 h = keccak256(abi.encode(kind, uint64(index), owner, target, amount));
        _itemHashes[index] = h;
        uint64 t = uint64(block.timestamp);
        _itemTimes[index >> 2] |= uint256(t) << ((index & 3) << 6);
        queueLength = uint64(index + 1);
        emit QueueItemAdded(index, kind, owner, target, amount, t, h);
    }

    function _itemTime(uint256 index) private view returns (uint64) {
        return uint64(_itemTimes[index >> 2] >> ((index & 3) << 6));
    }

    /// @notice The stored hash (0 after a refund) and L1 time of queue item `index`.
    function queueItem(uint256 index) external view returns (bytes32 itemHash, uint64 time) {
        if (index >= queueLength) revert NoSuchQueueItem(index);
        return (_itemHashes[index], _itemTime(index));
    }

    /// @notice For the Rollup's append: queue length, the deadline of the item at `position`
    ///         (type(uint256).max if there is none) and the freeze flag, in one call.
    function queueInfo(uint256 position) external view returns (uint64 length, uint256 deadline, bool isFrozen) {
        length = queueLength;
        isFrozen = frozen;
        deadline = position < length ? uint256(_itemTime(position)) + forcedDeadline : type(uint256).max;
    }

    // ------------------------------------------------------------------------------ freeze
    /// @notice Anyone: freeze the system once the oldest unconsumed queue item is overdue.
    function freeze() external {
        if (frozen) revert AlreadyFrozen();
        uint256 position = rollup.queuePosition();
        uint256 length = queueLength;
        if (position >= length) revert NothingOverdue(position, length);
        uint256 t = _itemTime(position);
        uint256 deadline = t + forcedDeadline;
        if (block.timestamp <= deadline) revert NotOverdue(position, deadline);
        frozen = true;
        frozenAt = uint64(block.timestamp);
        emit Frozen(position, t, deadline);
    }

    /// @notice Rollup only: freeze after a successful fraud proof against `batch` (the Rollup
    ///         has already deleted that batch and every later one).
    function freezeByRollup(uint256 batch) external {
        if (msg.sender != address(rollup)) revert NotRollup(msg.sender);
        if (frozen) revert AlreadyFrozen();
        frozen = true;
        frozenAt = uint64(block.timestamp);
        emit FrozenByFraud(batch);
    }

    // -------------------------------------------------------------------------- withdrawals
    function withdrawalLeaf(WithdrawalRecord calldata record) public pure returns (bytes32) {
        return WithdrawalsLib.leaf(record);
    }

    function isClaimed(uint256 batch, uint256 index) public view returns (bool) {
        return (_claimed[(batch << 8) | (index >> 8)] >> (index & 255)) & 1 == 1;
    }

    /// @notice Pay withdrawal `index` of finalized batch `header.number` to `owner` (anyone may
    ///         call). `present`/`siblings`: a compressed SparseMerkle proof (see SparseMerkle).
    function claimWithdrawal(
        BatchHeader calldata header,
        uint256 index,
        WithdrawalRecord calldata record,
        uint256 present,
        bytes32[] calldata siblings
    ) external {
        uint256 batch = _checkWithdrawal(header, index, WithdrawalsLib.leaf(record), present, siblings);
        uint256 key = (batch << 8) | (index >> 8);
        uint256 bit = 1 << (index & 255);
        uint256 word = _claimed[key];
        if (word & bit != 0) revert AlreadyClaimed(batch, index);
        _claimed[key] = word | bit;
        emit WithdrawalClaimed(batch, index, record.accountId, record.owner, record.amount);
        _safeTransfer(record.owner, record.amount);
    }

    /// @dev Reverts unless `leaf` is withdrawal `index` of finalized batch `header`; returns
    ///      the batch number.
    function _checkWithdrawal(
        BatchHeader calldata header,
        uint256 index,
        bytes32 leaf,
        uint256 present,
        bytes32[] calldata siblings
    ) private view returns (uint256 batch) {
        batch = header.number;
        (bytes32 stored, uint256 lastFinalized) = rollup.batchInfo(batch);
        if (batch > lastFinalized || batch == 0) revert NotFinalized(batch, lastFinalized);
        if (BatchLib.hashCalldata(header) != stored) revert HeaderMismatch(batch);
        if (index >> WITHDRAWALS_DEPTH != 0) revert WithdrawalIndexOutOfRange(index);
        bytes32 root = SparseMerkle.rootFromCompressedProof(WITHDRAWALS_DEPTH, index, leaf, present, siblings);
        if (root != header.withdrawalsRoot) revert InvalidWithdrawalProof(batch, index);
    }

    // ------------------------------------------------------------------------------ refunds
    /// @notice After a freeze: return a deposit that the last finalized batch did not consume
    ///         to its owner (anyone may call), once.
    function refundDeposit(uint64 queueIndex, address owner, uint32 subaccount, uint64 amount) external {
        if (!frozen) revert NotFrozen();
        if (queueIndex >= queueLength) revert NoSuchQueueItem(queueIndex);
        uint256 consumed = rollup.finalizedQueuePosition();
        if (queueIndex < consumed) revert DepositConsumed(queueIndex, consumed);
        bytes32 stored = _itemHashes[queueIndex];
        if (stored == 0) revert AlreadyRefunded(queueIndex);
        if (keccak256(abi.encode(KIND_DEPOSIT, queueIndex, owner, subaccount, amount)) != stored) {
            revert QueueItemMismatch(queueIndex);
        }
        delete _itemHashes[queueIndex];
        emit DepositRefunded(queueIndex, owner, amount);
        _safeTransfer(owner, amount);
    }

    // ------------------------------------------------------------------------------- escape
    function isEscaped(uint32 accountId) public view returns (bool) {
        return (_escaped[accountId >> 8] >> (accountId & 255)) & 1 == 1;
    }

    /// @notice After a freeze: pay account `account.id` its equity at the last finalized state,
    ///         once, to its owner (anyone may call). `state`: the preimage of
    ///         Rollup.finalizedStateRoot(); `account`: the account leaf with its compressed
    ///         proof against `state.accountsRoot` (depth 32, index = id); `markets[i]`: the
    ///         market leaf of `account.positions[i].instrument` with its compressed proof
    ///         against `state.marketsRoot` (depth 24). See EscapeLib for the arithmetic.
    ///         `params`: "" or abi.encode(ConsensusParams), the preimage of Rollup.paramsHash;
    ///         needed (for its settlementFeePpm) when a position is in a settled option still
    ///         being paid and has a payoff, whose settlement fee the escape deducts as
    ///         SETTLE_POSITION would.
    /// @return amount the usd6 paid (0 when the equity is not positive)
    function escape(
        EscapeState calldata state,
        EscapeAccount calldata account,
        EscapeMarket[] calldata markets,
        bytes calldata params
    ) external returns (uint256 amount) {
        if (!frozen) revert NotFrozen();
        uint32 id = account.id;
        uint256 key = id >> 8;
        uint256 bit = 1 << (id & 255);
        uint256 word = _escaped[key];
        if (word & bit != 0) revert AlreadyEscaped(id);
        int256 feePpm = -1;
        if (params.length != 0) {
            // ConsensusParams: an offset word, then operator, six int64/uint64 fields, settlementFeePpm
            if (params.length < 288 || keccak256(params) != rollup.paramsHash()) revert ParamsMismatch();
            feePpm = int256(uint256(uint32(uint256(bytes32(params[256:288])))));
        }
        int256 equity = EscapeLib.equity(rollup.finalizedStateRoot(), state, account, markets, feePpm);
        _escaped[key] = word | bit;
        amount = equity > 0 ? uint256(equity) : 0;
        address owner = account.owner;
        emit Escaped(id, owner, amount, equity);
        if (amount != 0) {
            uint256 balance = _balance();
            if (amount > balance) revert InsufficientVaultBalance(amount, balance);
            _safeTransfer(owner, amount);
        }
    }

    function _balance() private view returns (uint256) {
        (bool ok, bytes memory ret) =
            address(token).staticcall(abi.encodeWithSignature("balanceOf(address)", address(this)));
        if (!ok || ret.length < 32) revert TransferFailed();
        return abi.decode(ret, (uint256));
    }

    // ------------------------------------------------------------------------------- token
    function _safeTransfer(address to, uint256 amount) private {
        _call(abi.encodeCall(IERC20Minimal.transfer, (to, amount)));
    }

    function _safeTransferFrom(address from, uint256 amount) private {
        _call(abi.encodeCall(IERC20Minimal.transferFrom, (from, address(this), amount)));
    }

    /// @dev Accepts tokens that return nothing or `true`; anything else reverts.
    function _call(bytes memory data) private {
        (bool ok, bytes memory ret) = address(token).call(data);
        if (!ok || (ret.length != 0 && (ret.length != 32 || abi.decode(ret, (uint256)) != 1))) {
            revert TransferFailed();
        }
        if (ret.length == 0 && address(token).code.length == 0) revert TransferFailed();
    }
}
