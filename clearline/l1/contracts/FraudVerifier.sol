// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscapeState, EscapeAccount} from "./Escape.sol";
import {SparseMerkle} from "./SparseMerkle.sol";
import {IMarginVerifier, MarginWitness} from "./MarginWitness.sol";

/// @notice What the Rollup tells the verifier about the chunk under challenge. Everything here
///         has already been checked by the Rollup against the stored batch header: `head` and
///         `chunk` are the batch data's framing and chunk `chunkIndex` (their hashes are in
///         the header's `txsHash`), `preRoot`/`postRoot` the committed roots around the chunk.
struct FraudContext {
    uint8 kind; //          proof kind (FraudVerifier.KIND_*)
    uint64 chunkIndex;
    uint64 nChunks; //      chunk hashes committed by the Rollup's walk of the data
    uint64 nRoots; //       state roots committed
    uint32 txsPerRoot; //   the header's
    uint64 queueStart; //   the header's
    uint64 queueEnd; //     the header's
    bytes32 preRoot; //     state root before the chunk (previous batch's post-root for chunk 0)
    bytes32 postRoot; //    stateRoots[chunkIndex]
    address vault; //       for the L1 queue items
}

interface IVaultQueue {
    function queueLength() external view returns (uint64);
    function queueItem(uint256 index) external view returns (bytes32 itemHash, uint64 time);
}

/// @title FraudVerifier
/// @notice Stateless judge of one chunk of one batch (docs/fraud-proofs.md). The Rollup checks
///         that the data it is given is the committed data, then calls `verify`, which returns
///         a non-zero reason code when the chunk (or the batch framing) is provably wrong and 0
///         when it is not. A witness that does not match the committed roots reverts (the
///         challenger's mistake is never fraud).
///
///  Proof kinds and their `witness` (ABI-encoded):
///
///   1 FRAMING       (empty)  The data's framing (`head` = `0x02 || u k || u n || uint32
///                   end[C]`, or the whole data when the Rollup's walk found no valid chunk
///                   table) is wrong: not version 2, a bad varint, k = 0 or k != txsPerRoot,
///                   the table is not C = ceil(n / k) entries, or the number of state roots is
///                   not max(1, C) (reasons 1..5); or n = 0 and queueEnd != queueStart (23).
///   2 CHUNK_DECODE  (empty)  Chunk `chunkIndex` does not hold exactly min(k, n - c*k)
///                   transactions under the v2 rules checked here (known heads, varints of at
///                   most 10 bytes and minimal, no zero time delta, every field inside the
///                   chunk, no trailing byte). Reason 10.
///   3 QUEUE_ITEM    (uint256 txIndex, EscapeState pre)  Transaction `txIndex` of the chunk is
///                   a Deposit or ForcedWithdrawal that is not the next L1 queue item: its queue
///                   index is not pre.l1QueuePos + (L1 transactions before it in the chunk)
///                   (reason 20), or its fields are not that item's as the Vault stored it, or
///                   there is no such item (reason 21). `pre` is the preimage of `preRoot`.
///   4 QUEUE_END     (EscapeState pre)  For the last chunk: pre.l1QueuePos plus the chunk's
///                   L1 transactions is not the header's queueEnd (reason 23). (A batch without
///                   transactions whose queueEnd is not its queueStart is KIND_FRAMING's reason
///                   23.) The pre-state is the last chunk's, known to a watchtower whenever the
///                   roots before it are right (otherwise it proves an earlier chunk).
///
///   5 COLLATERAL_ROOT  (EscapeState pre, EscapeAccount[] accounts)  The chunk holds only
///                   packed Deposits, ForcedWithdrawals, Withdraws and Transfers; re-executing
///                   them as clearline.core.apply
///                   does from `pre` gives another post-root than the committed one (reason
///                   30), or the core rejects one of them (reason 31: time going backwards; a
///                   deposit out of queue order or out of range; a withdrawal from an unknown
///                   account, not signed by its owner (EIP-712 under the domain {clearline, 1,
///                   chainid, this Rollup}, low-s), with a used nonce, a zero or out-of-range
///                   amount, or more than the collateral; a transfer likewise, or to its own
///                   subaccount; a forced withdrawal out of queue order or range). A forced
///                   withdrawal consumes its queue item and is served (debit) unless denied
///                   (unknown account, not the owner, zero, more than the collateral). A Deposit
///                   credits the account's collateral (the insurance
///                   fund for the zero owner), a Withdraw debits it and sets the nonce, a
///                   Transfer debits the source (nonce) and credits the owner's `toSubaccount`;
///                   all move timeMs and their totals. `accounts` lists the account leaves in
///                   access order (one per Deposit, ForcedWithdrawal and Withdraw, two per Transfer: source,
///                   then destination), each with its compressed proof against the accounts
///                   root *after* the accesses before it (a placeholder for the zero owner and
///                   for an unknown account). Limits: a deposit or transfer that creates an
///                   account (its absence cannot be shown without an index by owner) and a
///                   withdrawal or transfer from an account with positions (its margin is not
///                   re-computed here) make the call revert.
///
///  The chunk decoder here checks a subset of batch_v2's strict rules (every rule it checks is
///  one of batch_v2's, so a chunk batch_v2 accepts never fails here); the rest (field ranges,
///  flag bits, shortest nonce form, fallbacks for packable transactions, ABI fallbacks) is
///  left for later proof kinds. Kinds 3 and 4 read transactions through the same decoder: on
///  a chunk batch_v2 accepts they see exactly its transactions.
contract FraudVerifier {
    uint8 public constant KIND_FRAMING = 1;
    uint8 public constant KIND_CHUNK_DECODE = 2;
    uint8 public constant KIND_QUEUE_ITEM = 3;
    uint8 public constant KIND_QUEUE_END = 4;
    uint8 public constant KIND_COLLATERAL_ROOT = 5;

    uint256 public constant REASON_BAD_VERSION = 1;
    uint256 public constant REASON_BAD_HEADER_VARINT = 2;
    uint256 public constant REASON_BAD_TXS_PER_ROOT = 3;
    uint256 public constant REASON_CHUNK_TABLE = 4;
    uint256 public constant REASON_ROOT_COUNT = 5;
    uint256 public constant REASON_CHUNK_UNDECODABLE = 10;
    uint256 public constant REASON_QUEUE_OUT_OF_ORDER = 20;
    uint256 public constant REASON_QUEUE_ITEM_MISMATCH = 21;
    uint256 public constant REASON_QUEUE_END = 23;
    uint256 public constant REASON_WRONG_POST_ROOT = 30;
    uint256 public constant REASON_REJECTED = 31;

    bytes32 internal constant STATE_TAG = keccak256("clearline.state.v1");
    bytes32 internal constant ACCOUNT_TAG = keccak256("clearline.account.v1");
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant WITHDRAW_TYPEHASH = keccak256("Withdraw(uint32 account,uint64 amount,uint64 nonce)");
    bytes32 internal constant TRANSFER_TYPEHASH =
        keccak256("Transfer(uint32 account,uint32 toSubaccount,uint64 amount,uint64 nonce)");
    uint256 internal constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint256 internal constant ACCOUNTS_DEPTH = 32;
    uint256 private constant FALLBACK = 0xFF;

    error UnknownProofKind(uint8 kind);
    error FramingIsFraud(); //                the framing is wrong: prove KIND_FRAMING instead
    error ChunkOutOfRange(uint256 chunkIndex, uint256 nChunks);
    error ChunkDoesNotDecode(); //           prove KIND_CHUNK_DECODE instead
    error TxIndexOutOfRange(uint256 txIndex, uint256 count);
    error NotAQueueTransaction(uint256 txIndex, uint256 head);
    error PreStateMismatch(bytes32 committed, bytes32 given);
    error NotLastChunk(uint256 chunkIndex, uint256 nChunks);
    error NotACollateralChunk(uint256 txIndex);
    error AccountHasPositions(uint256 txIndex);
    error WitnessCount(uint256 expected, uint256 given);
    error AccountMismatch(uint256 txIndex);
    error InvalidAccountWitness(uint256 txIndex);
    error LiquidationNotReexecuted(uint256 txIndex); // a due liquidation: not re-executed on L1 yet

    /// @notice The MarginVerifier this contract calls for account health (kept apart for size).
    IMarginVerifier public immutable marginVerifier;

    constructor(IMarginVerifier margin) {
        marginVerifier = margin;
    }

    /// @notice The reason code (non-zero) if the claim is fraud, else 0. Reverts on a witness
    ///         that does not match the committed data.
    function verify(FraudContext calldata x, bytes calldata head, bytes calldata chunk, bytes calldata witness)
        external
        view
        returns (uint256 reason)
    {
        (uint256 framingReason, uint256 k, uint256 n) = _framing(x, head);
        uint8 kind = x.kind;
        if (kind == KIND_FRAMING) return framingReason;
        if (framingReason != 0) revert FramingIsFraud();
        if (x.chunkIndex >= x.nChunks) revert ChunkOutOfRange(x.chunkIndex, x.nChunks);
        uint256 count = n - uint256(x.chunkIndex) * k;
        if (count > k) count = k;
        if (kind == KIND_CHUNK_DECODE) {
            (bool ok,,,) = _walk(chunk, count, type(uint256).max);
            return ok ? 0 : REASON_CHUNK_UNDECODABLE;
        }
        if (kind == KIND_QUEUE_ITEM) return _queueItem(x, chunk, count, witness);
        if (kind == KIND_QUEUE_END) return _queueEnd(x, chunk, count, witness);
        if (kind == KIND_COLLATERAL_ROOT) return _collateralRoot(x, chunk, count, witness);
        revert UnknownProofKind(kind);
    }

    // ------------------------------------------------------------------------------ framing
    /// @dev (reason, k, n): reason 0 iff `head` is exactly `0x02 || u k || u n || uint32[C]`
    ///      with k = txsPerRoot, C = ceil(n / k) = nChunks and nRoots = max(1, C).
    function _framing(FraudContext calldata x, bytes calldata head)
        private
        pure
        returns (uint256 reason, uint256 k, uint256 n)
    {
        if (head.length == 0 || uint8(head[0]) != 2) return (REASON_BAD_VERSION, 0, 0);
        bool ok;
        uint256 p;
        (k, p, ok) = _u(head, 1);
        if (!ok) return (REASON_BAD_HEADER_VARINT, 0, 0);
        (n, p, ok) = _u(head, p);
        if (!ok) return (REASON_BAD_HEADER_VARINT, 0, 0);
        if (k == 0 || k != x.txsPerRoot) return (REASON_BAD_TXS_PER_ROOT, k, n);
        uint256 c = (n + k - 1) / k;
        if (head.length != p + 4 * c || c != x.nChunks) return (REASON_CHUNK_TABLE, k, n);
        if (x.nRoots != (c == 0 ? 1 : c)) return (REASON_ROOT_COUNT, k, n);
        if (c == 0 && x.queueEnd != x.queueStart) return (REASON_QUEUE_END, k, n);
        return (0, k, n);
    }

    // ------------------------------------------------------------------------------ queue
    function _queueItem(FraudContext calldata x, bytes calldata chunk, uint256 count, bytes calldata witness)
        private
        view
        returns (uint256)
    {
        (uint256 txIndex, EscapeState memory pre) = abi.decode(witness, (uint256, EscapeState));
        _checkState(pre, x.preRoot);
        if (txIndex >= count) revert TxIndexOutOfRange(txIndex, count);
        (bool ok, uint256 l1Before, uint256 at,) = _walk(chunk, count, txIndex);
        if (!ok) revert ChunkDoesNotDecode();
        uint256 head = uint8(chunk[at]);
        uint256 kind = head & 0x0F;
        if (head == FALLBACK || (kind != 1 && kind != 10)) revert NotAQueueTransaction(txIndex, head);
        uint256 p = at + 1;
        if (head & 0x80 != 0) (, p,) = _u(chunk, p);
        uint256 queueIndex;
        uint256 target;
        uint256 amount;
        (queueIndex, p,) = _u(chunk, p);
        address owner = address(bytes20(chunk[p:p + 20]));
        (target, p,) = _u(chunk, p + 20);
        (amount,,) = _u(chunk, p);
        uint256 expected = uint256(pre.l1QueuePos) + l1Before;
        if (queueIndex != expected) return REASON_QUEUE_OUT_OF_ORDER;
        IVaultQueue vault = IVaultQueue(x.vault);
        if (expected >= vault.queueLength()) return REASON_QUEUE_ITEM_MISMATCH;
        if (target > type(uint32).max || amount > type(uint64).max) return REASON_QUEUE_ITEM_MISMATCH;
        (bytes32 stored,) = vault.queueItem(expected);
        uint8 queueKind = kind == 1 ? 1 : 2;
        bytes32 h = keccak256(abi.encode(queueKind, uint64(expected), owner, uint32(target), uint64(amount)));
        return h == stored ? 0 : REASON_QUEUE_ITEM_MISMATCH;
    }

    function _queueEnd(FraudContext calldata x, bytes calldata chunk, uint256 count, bytes calldata witness)
        private
        pure
        returns (uint256)
    {
        if (x.chunkIndex + 1 != x.nChunks) revert NotLastChunk(x.chunkIndex, x.nChunks);
        EscapeState memory pre = abi.decode(witness, (EscapeState));
        _checkState(pre, x.preRoot);
        (bool ok,,, uint256 l1Total) = _walk(chunk, count, type(uint256).max);
        if (!ok) revert ChunkDoesNotDecode();
        return uint256(pre.l1QueuePos) + l1Total != x.queueEnd ? REASON_QUEUE_END : 0;
    }

    // ------------------------------------------------------------------ deposits, withdraws
    struct Ctx {
        bytes zs;
        uint256 p;
        uint256 prev;
        bytes32 domain;
        uint256 ai; // next entry of `accounts`
        uint256 mi; // next entry of `margins`
    }

    /// @dev One decoded Deposit (kind 1), Withdraw (5), Transfer (6), LIQUIDATE operator action
    ///      (8) or ForcedWithdrawal (10).
    struct Op {
        uint256 kind;
        uint256 time;
        uint256 queueIndex; //  deposit
        address owner; //       deposit
        uint256 target; //      deposit: subaccount; withdraw, transfer: account
        uint256 toSubaccount; // transfer
        uint256 amount;
        uint256 nonce; //       withdraw, transfer
        bytes32 r;
        bytes32 vs;
    }

    function _collateralRoot(FraudContext calldata x, bytes calldata chunk, uint256 count, bytes calldata witness)
        private
        view
        returns (uint256)
    {
        (EscapeState memory s, EscapeAccount[] memory accounts, MarginWitness[] memory margins) =
            abi.decode(witness, (EscapeState, EscapeAccount[], MarginWitness[]));
        _checkState(s, x.preRoot);
        (bool ok,,,) = _walk(chunk, count, type(uint256).max);
        if (!ok) revert ChunkDoesNotDecode();
        Ctx memory c;
        c.zs = SparseMerkle.ZERO_HASHES;
        c.domain = keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("clearline"), keccak256("1"), block.chainid, msg.sender));
        for (uint256 i = 0; i < count; ++i) {
            Op memory op;
            bool valid;
            (op, c.p, valid) = _readOp(chunk, c.p, c.prev, i);
            if (!valid || op.time < s.timeMs) return REASON_REJECTED;
            c.prev = op.time;
            uint256 r;
            if (op.kind == 1) r = _applyDeposit(c, s, _next(c, accounts), op, i);
            else if (op.kind == 10) r = _applyForced(c, s, _next(c, accounts), margins, op, i);
            else if (op.kind == 8) r = _liquidationRefused(c, s, _next(c, accounts), margins, op, i);
            else r = _applySigned(c, s, accounts, margins, op, i);
            if (r != 0) return r;
            s.timeMs = uint64(op.time);
        }
        if (c.ai != accounts.length) revert WitnessCount(c.ai, accounts.length);
        if (c.mi != margins.length) revert WitnessCount(c.mi, margins.length);
        return keccak256(abi.encode(STATE_TAG, s)) != x.postRoot ? REASON_WRONG_POST_ROOT : 0;
    }

    function _next(Ctx memory c, EscapeAccount[] memory accounts) private pure returns (EscapeAccount memory a) {
        if (c.ai >= accounts.length) revert WitnessCount(c.ai + 1, accounts.length);
        a = accounts[c.ai++];
    }

    function _applyDeposit(Ctx memory c, EscapeState memory s, EscapeAccount memory a, Op memory d, uint256 i)
        private
        pure
        returns (uint256)
    {
        if (d.queueIndex != s.l1QueuePos) return REASON_REJECTED;
        if (d.target > type(uint32).max || d.amount > type(uint64).max) return REASON_REJECTED;
        s.totalDeposits += d.amount;
        s.l1QueuePos += 1;
        if (d.owner == address(0)) {
            s.insuranceFund += d.amount;
            return 0;
        }
        if (a.owner != d.owner || a.subaccount != d.target) revert AccountMismatch(i);
        _openAccount(c, s, a, i);
        a.collateral += int256(d.amount);
        s.accountsRoot = _rootMem(c.zs, a.id, _accountLeaf(a), a.present, a.siblings);
        return 0;
    }

    /// @dev clearline.core.apply._forced_withdrawal: served or denied, the item is consumed.
    function _applyForced(
        Ctx memory c,
        EscapeState memory s,
        EscapeAccount memory a,
        MarginWitness[] memory margins,
        Op memory f,
        uint256 i
    ) private view returns (uint256)
    {
        if (f.queueIndex != s.l1QueuePos) return REASON_REJECTED;
        if (f.target > type(uint32).max || f.amount > type(uint64).max) return REASON_REJECTED;
        s.l1QueuePos += 1;
        if (f.target >= s.nextAccountId) return 0; // denied: unknown account
        if (a.id != f.target) revert AccountMismatch(i);
        _openAccount(c, s, a, i);
        if (a.owner != f.owner || f.amount == 0 || int256(f.amount) > a.collateral) return 0; // denied
        if (a.positions.length != 0) {
            (int256 eq, int256 im,,) = _health(c, s, a, margins);
            if (eq - int256(f.amount) < im) return 0; // denied: not free collateral
        }
        a.collateral -= int256(f.amount);
        s.totalWithdrawals += f.amount;
        s.accountsRoot = _rootMem(c.zs, a.id, _accountLeaf(a), a.present, a.siblings);
        return 0;
    }

    /// @dev A Withdraw or a Transfer (clearline.core.apply._withdraw / _transfer).
    function _applySigned(
        Ctx memory c,
        EscapeState memory s,
        EscapeAccount[] memory accounts,
        MarginWitness[] memory margins,
        Op memory w,
        uint256 i
    ) private view returns (uint256)
    {
        EscapeAccount memory a = _next(c, accounts);
        if (w.target >= s.nextAccountId) return REASON_REJECTED; // unknown account
        if (a.id != w.target) revert AccountMismatch(i);
        _openAccount(c, s, a, i);
        if (w.target > type(uint32).max || w.amount > type(uint64).max || w.nonce > type(uint64).max) {
            return REASON_REJECTED;
        }
        if (_signer(c, w) != a.owner) return REASON_REJECTED;
        if (w.nonce <= a.nonce) return REASON_REJECTED;
        if (w.amount == 0) return REASON_REJECTED;
        bool isTransfer = w.kind == 6;
        if (isTransfer && (w.toSubaccount > type(uint32).max || w.toSubaccount == a.subaccount)) {
            return REASON_REJECTED;
        }
        if (int256(w.amount) > a.collateral) return REASON_REJECTED; // before the margin, as the core
        if (a.positions.length != 0) {
            (int256 eq, int256 im,,) = _health(c, s, a, margins);
            if (eq - int256(w.amount) < im) return REASON_REJECTED; // more than the free collateral
        }
        a.nonce = uint64(w.nonce);
        a.collateral -= int256(w.amount);
        s.accountsRoot = _rootMem(c.zs, a.id, _accountLeaf(a), a.present, a.siblings);
        if (!isTransfer) {
            s.totalWithdrawals += w.amount;
            return 0;
        }
        EscapeAccount memory d = _next(c, accounts);
        if (d.owner != a.owner || d.subaccount != w.toSubaccount) revert AccountMismatch(i);
        _openAccount(c, s, d, i);
        d.collateral += int256(w.amount);
        s.accountsRoot = _rootMem(c.zs, d.id, _accountLeaf(d), d.present, d.siblings);
        return 0;
    }

    /// @dev An operator LIQUIDATE (clearline.core.liquidation.liquidate): the core refuses it for
    ///      an unknown account, an account at or above its maintenance requirement, or one holding
    ///      an underlying whose index jump is unconfirmed, whoever signed it. A liquidation that is
    ///      due is not re-executed here (it reverts: not provable by this kind).
    function _liquidationRefused(
        Ctx memory c,
        EscapeState memory s,
        EscapeAccount memory a,
        MarginWitness[] memory margins,
        Op memory op,
        uint256 i
    ) private view returns (uint256) {
        if (op.target >= s.nextAccountId) return REASON_REJECTED;
        if (a.id != op.target) revert AccountMismatch(i);
        _openAccount(c, s, a, i);
        (int256 eq,, int256 mm, bool paused) = _health(c, s, a, margins);
        if (eq >= mm || paused) return REASON_REJECTED;
        revert LiquidationNotReexecuted(i);
    }

    function _health(Ctx memory c, EscapeState memory s, EscapeAccount memory a, MarginWitness[] memory margins)
        private
        view
        returns (int256, int256, int256, bool)
    {
        if (c.mi >= margins.length) revert WitnessCount(c.mi + 1, margins.length);
        return marginVerifier.provenHealth(s.marketsRoot, a, margins[c.mi++]);
    }

    /// @dev The EIP-712 signer under the Rollup's domain; 0 unless canonical (low s, r, s > 0).
    function _signer(Ctx memory c, Op memory w) private pure returns (address) {
        bytes32 structHash = w.kind == 6
            ? keccak256(abi.encode(TRANSFER_TYPEHASH, w.target, w.toSubaccount, w.amount, w.nonce))
            : keccak256(abi.encode(WITHDRAW_TYPEHASH, w.target, w.amount, w.nonce));
        bytes32 digest = keccak256(abi.encodePacked(bytes2(0x1901), c.domain, structHash));
        uint256 sv = uint256(w.vs);
        bytes32 sigS = bytes32(sv & ((1 << 255) - 1));
        if (uint256(sigS) > HALF_N || w.r == 0 || sigS == 0) return address(0);
        return ecrecover(digest, uint8(27 + (sv >> 255)), w.r, sigS);
    }

    function _openAccount(Ctx memory c, EscapeState memory s, EscapeAccount memory a, uint256 i) private pure {
        if (_rootMem(c.zs, a.id, _accountLeaf(a), a.present, a.siblings) != s.accountsRoot) {
            revert InvalidAccountWitness(i);
        }
    }

    /// @dev Transaction i of a chunk at p (head byte included). `valid` false when its time
    ///      or nonce leaves uint64 (batch_v2 rejects those). Reverts unless a packed Deposit
    ///      or Withdraw.
    function _readOp(bytes calldata c, uint256 p, uint256 prev, uint256 i)
        private
        pure
        returns (Op memory op, uint256, bool)
    {
        uint256 head = uint8(c[p]);
        op.kind = head & 0x0F;
        if (head == FALLBACK || (op.kind != 1 && op.kind != 5 && op.kind != 6 && op.kind != 8 && op.kind != 10)) {
            revert NotACollateralChunk(i);
        }
        ++p;
        op.time = prev;
        if (head & 0x80 != 0) {
            uint256 z;
            (z, p,) = _u(c, p);
            int256 t = int256(prev) + _unzz(z);
            if (t < 0 || t > int256(uint256(type(uint64).max))) return (op, p, false);
            op.time = uint256(t);
        }
        if (op.kind == 8) {
            if (uint8(c[p]) != 2) revert NotACollateralChunk(i); // operator actions other than LIQUIDATE
            (op.target, p,) = _u(c, p + 1); // the account
            (, p,) = _u(c, p); //              arg (unused)
            (, p,) = _u(c, p); //              signed timestamp (the signature is not needed:
            return (op, p + 64, true); //      the core refuses a healthy account's liquidation from anyone)
        }
        if (op.kind == 1 || op.kind == 10) {
            (op.queueIndex, p,) = _u(c, p);
            op.owner = address(bytes20(c[p:p + 20]));
            (op.target, p,) = _u(c, p + 20);
            (op.amount, p,) = _u(c, p);
            return (op, p, true);
        }
        (op.target, p,) = _u(c, p);
        if (op.kind == 6) (op.toSubaccount, p,) = _u(c, p);
        (op.amount, p,) = _u(c, p);
        uint256 n;
        (n, p,) = _u(c, p);
        if (head & 0x40 != 0) {
            int256 nonce = int256(op.time) + _unzz(n);
            if (nonce < 0 || nonce > int256(uint256(type(uint64).max))) return (op, p, false);
            op.nonce = uint256(nonce);
        } else {
            op.nonce = n;
        }
        op.r = bytes32(c[p:p + 32]);
        op.vs = bytes32(c[p + 32:p + 64]);
        return (op, p + 64, true);
    }

    function _unzz(uint256 z) private pure returns (int256) {
        return z & 1 == 0 ? int256(z >> 1) : -int256((z + 1) >> 1);
    }

    function _accountLeaf(EscapeAccount memory a) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                ACCOUNT_TAG, a.id, a.owner, a.subaccount, a.collateral, a.nonce, a.marginMode, a.flags, a.positions
            )
        );
    }

    /// @dev SparseMerkle.rootFromCompressedProof (depth 32) over memory siblings.
    function _rootMem(bytes memory zs, uint256 index, bytes32 leaf, uint256 present, bytes32[] memory siblings)
        private
        pure
        returns (bytes32 h)
    {
        if (present >> ACCOUNTS_DEPTH != 0 || index >> ACCOUNTS_DEPTH != 0) return bytes32(uint256(1));
        uint256 used;
        uint256 n = siblings.length;
        h = leaf;
        for (uint256 i = 0; i < ACCOUNTS_DEPTH; ++i) {
            bytes32 sib;
            if ((present >> i) & 1 == 0) {
                assembly ("memory-safe") {
                    sib := mload(add(zs, shl(5, add(i, 1))))
                }
            } else {
                if (used >= n) return bytes32(uint256(1)); // matches no root
                sib = siblings[used++];
            }
            h = (index >> i) & 1 == 0
                ? keccak256(abi.encodePacked(bytes1(0x01), h, sib))
                : keccak256(abi.encodePacked(bytes1(0x01), sib, h));
        }
        if (used != n) return bytes32(uint256(1));
    }

    function _checkState(EscapeState memory s, bytes32 root) private pure {
        bytes32 h = keccak256(abi.encode(STATE_TAG, s));
        if (h != root) revert PreStateMismatch(root, h);
    }

    // ---------------------------------------------------------------------- chunk decoding
    /// @dev Unsigned LEB128 at `p`: (value, next position, ok). Not ok: past the end, more than
    ///      10 bytes, or not minimal (a last byte of 0 after the first) -- batch_v2's rules.
    function _u(bytes calldata d, uint256 p) internal pure returns (uint256 v, uint256 q, bool ok) {
        uint256 len = d.length;
        unchecked {
            for (uint256 i = 0; i < 10; ++i) {
                if (p >= len) return (0, p, false);
                uint256 b = uint8(d[p]);
                ++p;
                v |= (b & 0x7F) << (7 * i);
                if (b < 0x80) return (v, p, !(b == 0 && i > 0));
            }
        }
        return (0, p, false);
    }

    /// @dev Walk `count` transactions of `chunk`. ok: they parse and end exactly at the chunk's
    ///      end. `at`: position of transaction `target`'s head (if target < count; the walk
    ///      then stops there); `l1Before`: Deposits/ForcedWithdrawals before it (or in the
    ///      whole chunk when it does not stop); `l1Total`: in the whole chunk.
    function _walk(bytes calldata chunk, uint256 count, uint256 target)
        internal
        pure
        returns (bool ok, uint256 l1Before, uint256 at, uint256 l1Total)
    {
        uint256 p;
        uint256 len = chunk.length;
        for (uint256 i = 0; i < count; ++i) {
            if (p >= len) return (false, 0, 0, 0);
            if (i == target) return (true, l1Total, p, 0);
            uint256 head = uint8(chunk[p]);
            bool l1;
            (p, ok, l1) = _skipTx(chunk, p + 1, head);
            if (!ok || p > len) return (false, 0, 0, 0);
            if (l1) ++l1Total;
        }
        if (p != len) return (false, 0, 0, 0);
        return (true, l1Total, 0, l1Total);
    }

    function _skipU(bytes calldata d, uint256 p, uint256 times) private pure returns (uint256, bool) {
        bool ok = true;
        for (uint256 i = 0; i < times && ok; ++i) (, p, ok) = _u(d, p);
        return (p, ok);
    }

    /// @dev Skip one transaction body (after its head byte at p - 1). Returns (next, ok, isL1).
    function _skipTx(bytes calldata d, uint256 p, uint256 head) private pure returns (uint256, bool, bool) {
        bool ok;
        uint256 v;
        if (head == FALLBACK) {
            (v, p, ok) = _u(d, p);
            if (!ok || v > d.length) return (p, false, false);
            return (p + v, true, false);
        }
        uint256 kind = head & 0x0F;
        if (kind == 0 || kind > 10) return (p, false, false);
        if (head & 0x80 != 0) {
            (v, p, ok) = _u(d, p);
            if (!ok || v == 0) return (p, false, false);
        }
        if (kind == 1 || kind == 10) {
            (p, ok) = _skipU(d, p, 1);
            if (!ok) return (p, false, false);
            (p, ok) = _skipU(d, p + 20, 2);
            return (p, ok, true);
        }
        if (kind == 2) {
            (p, ok) = _skipU(d, p, 2);
            if (!ok) return (p, false, false);
            uint256 optional = 3 + (head & 0x10 != 0 ? 1 : 0) + (head & 0x20 != 0 ? 1 : 0);
            (p, ok) = _skipU(d, p + 1, optional); // shape byte, price, size, [expiry], [clientId], nonce
            return (p + 64, ok, false);
        }
        if (kind == 3 || kind == 4) {
            (p, ok) = _skipU(d, p, 5);
            return (p + 64, ok, false);
        }
        if (kind == 5 || kind == 6) {
            (p, ok) = _skipU(d, p, kind == 5 ? 3 : 4);
            return (p + 64, ok, false);
        }
        if (kind == 8) {
            (p, ok) = _skipU(d, p + 1, 3);
            return (p + 64, ok, false);
        }
        if (kind == 9) {
            (p, ok) = _skipU(d, p, 1);
            if (!ok) return (p, false, false);
            (p, ok) = _skipU(d, p + 1, 1);
            return (p + 64, ok, false);
        }
        return _skipMark(d, p, head);
    }

    function _skipMark(bytes calldata d, uint256 p, uint256 head) private pure returns (uint256, bool, bool) {
        bool ok;
        uint256 n;
        (p, ok) = _skipU(d, p, 1); // timestamp delta
        if (!ok) return (p, false, false);
        (n, p, ok) = _u(d, p);
        if (!ok || n > d.length) return (p, false, false);
        (p, ok) = _skipU(d, p, (head & 0x10 != 0 ? 1 : n) + n); // instruments, prices
        if (!ok) return (p, false, false);
        if (head & 0x20 != 0) {
            for (uint256 j = 0; j < n && ok; ++j) (p, ok) = _skipU(d, p + 1, 16); // mode byte, 16 residuals
            if (!ok) return (p, false, false);
        }
        uint256 r;
        (r, p, ok) = _u(d, p);
        if (!ok || r > d.length) return (p, false, false);
        for (uint256 j = 0; j < r && ok; ++j) {
            (p, ok) = _skipU(d, p, 4);
            p += 64;
        }
        return (p + 64, ok, false);
    }
}
