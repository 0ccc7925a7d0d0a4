// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscapeState, EscapeAccount} from "./Escape.sol";
import {SparseMerkle} from "./SparseMerkle.sol";
import {IMarginVerifier, MarginWitness} from "./MarginWitness.sol";
import {WithdrawalRecord} from "./Withdrawals.sol";
import {ChunkDecoder, ChunkMalformed, Leb128} from "./ChunkDecoder.sol";
import {
    REASON_BAD_HEADER_VARINT,
    REASON_BAD_RECORD,
    REASON_BAD_TXS_PER_ROOT,
    REASON_BAD_VERSION,
    REASON_CHUNK_TABLE,
    REASON_QUEUE_END,
    REASON_QUEUE_ITEM_MISMATCH,
    REASON_QUEUE_OUT_OF_ORDER,
    REASON_REJECTED,
    REASON_ROOT_COUNT,
    REASON_WRONG_POST_ROOT
} from "./Reasons.sol";

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
    bytes32 paramsHash; //  the Rollup's (ConsensusParams, clearline/l1/params.py)
    bytes32 withdrawalsRoot; // the header's (computed by the Rollup from the posted records)
    bytes32 txsHash; //     the header's (the batch data's commitment)
}

/// @notice The MarkVerifier as the FraudVerifier calls it (MarkVerifier.sol).
interface IMarkVerifier {
    function judge(
        bytes32 preRoot,
        bytes32 postRoot,
        bytes32 paramsHash,
        address rollup,
        bytes calldata chunk,
        bytes calldata witness
    ) external view returns (uint256);

    function judgeAction(
        bytes32 preRoot,
        bytes32 postRoot,
        bytes32 paramsHash,
        address rollup,
        bytes calldata chunk,
        bytes calldata witness
    ) external view returns (uint256);

    /// @notice The FundingVerifier `judgeAction` calls (KIND_FUNDING_PENDING calls it too).
    function funding() external view returns (IFundingPending);

    function judgeNonces(
        uint256 chunkIndex,
        uint256 k,
        bytes32 txsHash,
        bytes calldata head,
        bytes calldata chunk,
        bytes calldata witness
    ) external view returns (uint256);

    function judgeRecords(
        bytes32 root,
        uint256 nChunks,
        uint256 chunkIndex,
        bytes32 preRoot,
        bytes32 postRoot,
        bytes calldata witness
    ) external pure returns (uint256 reason, uint256 mode, uint256 txIndex, WithdrawalRecord memory record);
}

/// @notice FundingVerifier.judgePending (FundingVerifier.sol).
interface IFundingPending {
    function judgePending(bytes32 preRoot, bytes calldata chunk, bytes calldata witness)
        external
        pure
        returns (uint256);
}

/// @notice MatchVerifier.judgeStep (MatchVerifier.sol).
interface IMatchStep {
    function judgeStep(bytes32 preRoot, bytes32 postRoot, uint256 chunkLength, bytes calldata witness)
        external
        view
        returns (uint256);
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
///   1 FRAMING       (empty)  The data's framing (`head` = `0x03 || u k || u C || uint32
///                   end[C]`, batch data v3, or the whole data when the Rollup's walk found no
///                   valid chunk table) is wrong: not version 3, a bad varint, k = 0 or k !=
///                   txsPerRoot, C is not the number of table entries, or the number of state
///                   roots is not max(1, C) (reasons 1..5); or C = 0 and queueEnd != queueStart (23),
///                   or C = 0 and the header's withdrawal tree is not empty (40).
///   2 CHUNK_DECODE  (empty)  Chunk `chunkIndex` is not 1..k transactions parsing to its end with
///                   one MarkUpdate, OperatorAction, Withdraw, Transfer or ForcedWithdrawal alone (reason 10), or
///                   breaks one of batch_v2's strict rules, all of them (`decodeChunk`):
///                   10 structure (unknown head, varint overlong or > 10 bytes, zero time
///                   delta, a field past the chunk, wrong count, trailing bytes), 11 a value
///                   out of its field's range (uintN bounds, times, expiry and timestamps in
///                   uint64, instrument ids and runs in uint32, risk-array values in int64), 12
///                   a non-canonical form (a flag that must be 0, F1 with a zero expiry, F2
///                   with a zero clientId, a nonce not in its shortest form, consecutive
///                   instruments not written as a run, a run of 0, risk arrays without
///                   instruments, a risk-array mode that refers to missing arrays), 13 a bad
///                   ABI fallback (not the canonical encoding of a transaction, or one that
///                   has a packed form).
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
///   5 COLLATERAL_ROOT  (EscapeState pre, EscapeAccount[] accounts, MarginWitness[] margins,
///                   IndexWitness[] ix)  The chunk holds only packed Deposits, ForcedWithdrawals,
///                   Withdraws, Transfers, SetMarginModes, SetAccountFlags and LIQUIDATEs; re-executing
///                   them as clearline.core.apply
///                   does from `pre` gives another post-root than the committed one (reason
///                   30), or the core rejects one of them (reason 31: time going backwards; a
///                   deposit out of queue order or out of range; a withdrawal from an unknown
///                   account, not signed by its owner (EIP-712 under the domain {clearline, 1,
///                   chainid, this Rollup}, low-s), with a used nonce, a zero or out-of-range
///                   amount, or more than the free collateral; a transfer likewise, or to its own
///                   subaccount; a forced withdrawal out of queue order or range; a margin-mode
///                   or flags change from an unknown account, not the owner's, with a used
///                   nonce, an unknown mode or flag, or a mode under which the account is below
///                   its initial requirement; a LIQUIDATE of an account at or above its
///                   maintenance requirement). A forced
///                   withdrawal consumes its queue item and is served (debit) unless denied
///                   (unknown account, not the owner, zero, more than the collateral). A Deposit
///                   credits the account's collateral (the insurance
///                   fund for the zero owner), a Withdraw debits it and sets the nonce, a
///                   Transfer debits the source (nonce) and credits the owner's `toSubaccount`;
///                   a SetMarginMode or SetAccountFlags sets its field and the nonce; all move
///                   timeMs and their totals. `accounts` lists the account leaves in access
///                   order (one per transaction, two per Transfer: source, then destination),
///                   each with its compressed proof against the accounts root *after* the
///                   accesses before it (a placeholder for the zero owner and for an unknown
///                   account); `margins` one MarginVerifier witness per margin check (an
///                   account with positions); `ix` the account index's entries for each account
///                   created (proven absent, then inserted). A due LIQUIDATE is not re-executed
///                   (the call reverts).
///
///   6 MARK_UPDATE   (MarkWitness, MarkVerifier.sol)  The chunk is one MarkUpdate: the
///                   MarkVerifier re-executes it from the markets leaves it touches (one
///                   multiproof) and returns 31 when the core rejects it, 30 when the committed
///                   post-root is not the result. A MarkUpdate in the ABI fallback is 31 (every
///                   accepted one packs).
///
///   7 OPERATOR_ACTION  (ActionWitness, MarkVerifier.sol)  The chunk is one OperatorAction the
///                   core rejects (reason 31): time before the pre-state's, not signed by the
///                   operator (EIP-712, low s), a signed timestamp of 0 or after the time, an
///                   unknown action; CANCEL_ALL_ORDERS of an unknown account, with a trigger not
///                   1 or 2, or of an account that has not opted in (its account leaf);
///                   SETTLE_EXPIRY or LIST_OPTIONS of an unconfigured underlying; SETTLE_EXPIRY
///                   of an expiry the underlying leaf does not hold, or before it. FUNDING_SETTLE
///                   and FUNDING_PAY are re-executed from the market (and account) leaf by the
///                   FundingVerifier: 31 when rejected, 30 when the post-root is not the result.
///                   Judged by the MarkVerifier's `judgeAction`, without the strict walk (as
///                   kind 6). An OperatorAction in the ABI fallback is 31 (every accepted one packs).
///
///   8 WITHDRAWALS   (uint256 mode, uint256 txIndex, RecordProof[] records)  The header's
///                   withdrawal tree (its records are posted with the batch, WithdrawalsLib) is
///                   not the batch's. Each RecordProof opens one leaf of `withdrawalsRoot`. Mode
///                   1: record r names a chunk the batch does not have (any chunk is given), or
///                   names chunk `chunkIndex` and a transaction that is not there, is not a
///                   packed Withdraw or ForcedWithdrawal, or whose account, amount or owner
///                   (a ForcedWithdrawal's; a Withdraw's EIP-712 signer) differ from the
///                   record's (reason 40: a valid batch pays each record for the one accepted
///                   withdrawal it names). Mode 2: records i and i + 1 are not in strictly
///                   increasing (chunk, txIndex) order (reason 41). Mode 3: transaction
///                   `txIndex` of the chunk is a packed Withdraw (accepted in a valid batch, so
///                   it pays a record) and no record names it: records i < its position < i + 1
///                   (or leaf i + 1 empty; or record 0 after it, or leaf 0 empty) (reason 42).
///                   Mode 4 (witness: abi.encode(RecordsWitness, EscapeState pre, EscapeState
///                   post), the preimages of the chunk's pre- and post-root): the records that
///                   name this chunk (a run opened between record i, which names an earlier
///                   chunk, or the tree's start, and record j, which names a later chunk or is
///                   empty) do not sum to post.totalWithdrawals - pre.totalWithdrawals (reason
///                   43: every accepted Withdraw and served ForcedWithdrawal adds exactly its
///                   amount to totalWithdrawals and pays exactly one record; nothing else moves
///                   either). So a ForcedWithdrawal the state denies but a record pays, or one
///                   the state serves that no record pays, is proven once the roots around its
///                   chunk are right (a wrong root there is KIND_COLLATERAL_ROOT's). The chunk
///                   must decode.
///
///   9 NONCES        (NonceWitness, MarkVerifier.sol)  Two packed user-signed transactions of
///                   the batch (Order, Cancel, Replace, Withdraw, Transfer, SetMarginMode,
///                   SetAccountFlags), the
///                   second in this chunk, the first before it (this chunk or an earlier one,
///                   opened with the chunk hashes against txsHash), name the same account and
///                   the second's nonce is not above the first's: one of them was rejected
///                   (reason 31), since an accepted one moves the account's nonce to its own.
///
///  10 SIGNATURE    (uint256 j, EscapeState pre, EscapeAccount account)  Transaction `j` of the
///                   chunk is a packed user-signed one (Order, Cancel, Replace, Withdraw,
///                   Transfer, SetMarginMode, SetAccountFlags) naming an account that exists at
///                   `pre` (the chunk's pre-state; `account` its leaf, proven) and its EIP-712
///                   signer (low s; ChunkDecoder.signerOf) is not the account's owner, or its
///                   nonce is not above the account's nonce at `pre` (reason 31: the core
///                   rejects it, whatever else the chunk holds, orders included, since an
///                   account's owner never changes and its nonce only rises; a signature
///                   replayed from an earlier batch, say). The chunk must decode.
///
///  11 ORDER        (OrderWitness, ChunkDecoder.sol)  Transaction `j` of the chunk is a packed
///                   Order the core rejects for a reason its fields and its market's leaf at the
///                   chunk's pre-state show (reason 31; `ChunkDecoder.judgeOrder`): an unknown
///                   instrument, a market not active, expired at the order's time or without a
///                   mark; stp 3, a zero price or size, a market order not IOC/FOK, a post-only
///                   order that cannot rest, a GTT without expiry, an expiry not after its time.
///
///  12 FUNDING_PENDING  (EscapeState pre, bytes marketLeaf, uint256 present, bytes32[] siblings)
///                   A market at the chunk's pre-state is being paid its funding (unpaidLots
///                   > 0) and the chunk is not one packed FUNDING_PAY: the core accepts nothing
///                   else then (reason 31; FundingVerifier.judgePending). The chunk must decode.
///
///  The chunk decoder (`decodeChunk`, in the ChunkDecoder contract) reverts exactly when batch_v2's strict decoder
///  rejects the chunk (tests/fraud/test_decoder.py, both directions): an honest chunk is never
///  provably malformed and a malformed one always is. Kinds 3-5 read transactions through the
///  same decoder: they see exactly batch_v2's transactions.
contract FraudVerifier {
    uint8 public constant KIND_FRAMING = 1;
    uint8 public constant KIND_CHUNK_DECODE = 2;
    uint8 public constant KIND_QUEUE_ITEM = 3;
    uint8 public constant KIND_QUEUE_END = 4;
    uint8 public constant KIND_COLLATERAL_ROOT = 5;
    uint8 public constant KIND_MARK_UPDATE = 6;
    uint8 public constant KIND_OPERATOR_ACTION = 7;
    uint8 public constant KIND_WITHDRAWALS = 8;
    uint8 public constant KIND_NONCES = 9;
    uint8 public constant KIND_SIGNATURE = 10;
    uint8 public constant KIND_ORDER = 11;
    uint8 public constant KIND_FUNDING_PENDING = 12;
    uint8 public constant KIND_MATCH_STEP = 13;


    bytes32 internal constant STATE_TAG = keccak256("clearline.state.v1");
    bytes32 internal constant ACCOUNT_TAG = keccak256("clearline.account.v1");
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    uint256 internal constant ALL_ACCOUNT_FLAGS = 1; // clearline.core.txs.ALL_ACCOUNT_FLAGS (bit 0: the operator may cancel)
    uint256 internal constant ACCOUNTS_DEPTH = 32;
    bytes32 internal constant ACCOUNT_INDEX_TAG = keccak256("clearline.account_index.v1");
    uint256 internal constant MAX_ACCOUNTS = (1 << 31) - 1; // clearline.core.state: account ids below it
    uint256 internal constant ACCOUNT_INDEX_BASE = 1 << 31; // account i's index entry at this + i
    // the withdrawal tree of a batch without withdrawals: SparseMerkle.zeroHash(16)
    bytes32 internal constant EMPTY_WITHDRAWALS_ROOT = 0xa9942b0fabdf9bf32241f8245eb26737ffbd91822ac484ae857fc35d21fb652f;
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
    error NotAWithdrawal(uint256 txIndex); //  KIND_WITHDRAWALS mode 3 names a transaction that is not a packed Withdraw
    error NotASignedTransaction(uint256 txIndex); // KIND_SIGNATURE names one that is not packed and user-signed
    error NotAMarkUpdate(); //                KIND_MARK_UPDATE (7: OPERATOR_ACTION) on a chunk that is not one MarkUpdate (OperatorAction)

    /// @notice The MarginVerifier this contract calls for account health (kept apart for size).
    IMarginVerifier public immutable marginVerifier;
    /// @notice The MarkVerifier this contract calls for KIND_MARK_UPDATE.
    IMarkVerifier public immutable markVerifier;

    /// @notice The strict chunk decoder (its own contract, for this one's size).
    ChunkDecoder public immutable chunkDecoder;
    /// @notice The MatchVerifier this contract calls for KIND_MATCH_STEP.
    IMatchStep public immutable matchVerifier;

    constructor(IMarginVerifier margin, IMarkVerifier mark, ChunkDecoder decoder, IMatchStep matcher) {
        marginVerifier = margin;
        markVerifier = mark;
        chunkDecoder = decoder;
        matchVerifier = matcher;
    }

    /// @notice The reason code (non-zero) if the claim is fraud, else 0. Reverts on a witness
    ///         that does not match the committed data.
    function verify(FraudContext calldata x, bytes calldata head, bytes calldata chunk, bytes calldata witness)
        external
        view
        returns (uint256 reason)
    {
        (uint256 framingReason, uint256 k) = _framing(x, head);
        uint8 kind = x.kind;
        if (kind == KIND_FRAMING) return framingReason;
        if (framingReason != 0) revert FramingIsFraud();
        if (x.chunkIndex >= x.nChunks) revert ChunkOutOfRange(x.chunkIndex, x.nChunks);
        if (kind == KIND_MARK_UPDATE || kind == KIND_OPERATOR_ACTION) return _markUpdate(x, chunk, witness, kind);
        // one strict walk of the whole chunk: its validity, its transaction count, its L1 ones
        (uint256 bad,,, uint256 l1Total, uint256 count) = _walk(chunk, k, type(uint256).max);
        if (kind == KIND_CHUNK_DECODE) return bad;
        if (bad != 0) revert ChunkDoesNotDecode();
        if (kind == KIND_QUEUE_ITEM) return _queueItem(x, chunk, count, witness);
        if (kind == KIND_QUEUE_END) return _queueEnd(x, l1Total, witness);
        if (kind == KIND_COLLATERAL_ROOT) return _collateralRoot(x, chunk, count, witness);
        if (kind == KIND_WITHDRAWALS) return _withdrawals(x, chunk, count, witness);
        if (kind == KIND_NONCES) return markVerifier.judgeNonces(x.chunkIndex, k, x.txsHash, head, chunk, witness);
        if (kind == KIND_SIGNATURE) return _signature(x, chunk, count, witness);
        if (kind == KIND_ORDER) {
            // OrderWitness's first field (after its offset word) is the transaction index
            uint256 j = witness.length >= 64 ? uint256(bytes32(witness[32:64])) : type(uint256).max;
            if (j >= count) revert TxIndexOutOfRange(j, count);
            (,, uint256 at, uint256 prev,) = _walk(chunk, count, j);
            return chunkDecoder.judgeOrder(x.preRoot, chunk, at, prev, witness);
        }
        if (kind == KIND_FUNDING_PENDING) return markVerifier.funding().judgePending(x.preRoot, chunk, witness);
        if (kind == KIND_MATCH_STEP) return matchVerifier.judgeStep(x.preRoot, x.postRoot, chunk.length, witness);
        revert UnknownProofKind(kind);
    }

    /// @dev A chunk that begins with a MarkUpdate, without the strict walk (half the gas of a
    ///      large MarkUpdate): a chunk that is not exactly one valid MarkUpdate is malformed,
    ///      i.e. fraud whatever the verdict, and on a valid one the MarkVerifier's lenient
    ///      reading is the strict one. Packed: judged by the MarkVerifier. In the ABI fallback:
    ///      rejected, since every MarkUpdate the core accepts has a packed form (its signatures
    ///      recover, so they are 65 bytes with v 27/28 and low s; its fields are in the packed
    ///      ranges), and a strictly valid chunk holds a fallback only for what cannot be packed.
    ///      KIND_OPERATOR_ACTION likewise for an OperatorAction (head kind 8; every accepted
    ///      one packs: its signature recovers), judged by `judgeAction`.
    function _markUpdate(FraudContext calldata x, bytes calldata chunk, bytes calldata witness, uint8 kind)
        private
        view
        returns (uint256)
    {
        uint256 want = kind == KIND_MARK_UPDATE ? 7 : 8;
        if (chunk.length == 0) revert NotAMarkUpdate();
        uint256 head = uint8(chunk[0]);
        if (head == FALLBACK) {
            (, uint256 a, bool ok) = _u(chunk, 1);
            if (ok && a + 32 <= chunk.length && uint8(chunk[a + 31]) == want) return REASON_REJECTED;
            revert NotAMarkUpdate();
        }
        if (head & 0x0F != want) revert NotAMarkUpdate();
        if (want == 8) return markVerifier.judgeAction(x.preRoot, x.postRoot, x.paramsHash, msg.sender, chunk, witness);
        return markVerifier.judge(x.preRoot, x.postRoot, x.paramsHash, msg.sender, chunk, witness);
    }

    // ------------------------------------------------------------------------------ framing
    /// @dev (reason, k): reason 0 iff `head` is exactly `0x03 || u k || u C || uint32[C]`
    ///      (batch data v3) with k = txsPerRoot, C = nChunks and nRoots = max(1, C); an empty
    ///      batch (C = 0) must not move the queue.
    function _framing(FraudContext calldata x, bytes calldata head) private pure returns (uint256 reason, uint256 k) {
        if (head.length == 0 || uint8(head[0]) != 3) return (REASON_BAD_VERSION, 0);
        bool ok;
        uint256 p;
        uint256 c;
        (k, p, ok) = _u(head, 1);
        if (!ok) return (REASON_BAD_HEADER_VARINT, 0);
        (c, p, ok) = _u(head, p);
        if (!ok) return (REASON_BAD_HEADER_VARINT, 0);
        if (k == 0 || k != x.txsPerRoot) return (REASON_BAD_TXS_PER_ROOT, k);
        if (c != x.nChunks || head.length != p + 4 * c) return (REASON_CHUNK_TABLE, k);
        if (x.nRoots != (c == 0 ? 1 : c)) return (REASON_ROOT_COUNT, k);
        if (c == 0 && x.queueEnd != x.queueStart) return (REASON_QUEUE_END, k);
        if (c == 0 && x.withdrawalsRoot != EMPTY_WITHDRAWALS_ROOT) return (REASON_BAD_RECORD, k);
        return (0, k);
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
        (, uint256 l1Before, uint256 at,,) = _walk(chunk, count, txIndex); // valid: walked in verify
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

    function _queueEnd(FraudContext calldata x, uint256 l1Total, bytes calldata witness)
        private
        pure
        returns (uint256)
    {
        if (x.chunkIndex + 1 != x.nChunks) revert NotLastChunk(x.chunkIndex, x.nChunks);
        EscapeState memory pre = abi.decode(witness, (EscapeState));
        _checkState(pre, x.preRoot);
        return uint256(pre.l1QueuePos) + l1Total != x.queueEnd ? REASON_QUEUE_END : 0;
    }

    // ------------------------------------------------------------------------- signatures
    /// @dev KIND_SIGNATURE: transaction `j` of the chunk (walked, valid) is a packed user-signed
    ///      one naming an account that exists at the pre-state (its leaf `a`, proven against
    ///      pre.accountsRoot) and its EIP-712 signer is not the account's owner, or its nonce is
    ///      not above the account's nonce there: 31, since the core rejects it (NOT_ACCOUNT_OWNER,
    ///      BAD_SIGNATURE, BAD_NONCE) whatever else the chunk holds (an account's owner never
    ///      changes, and its nonce only rises). 0 otherwise.
    function _signature(FraudContext calldata x, bytes calldata chunk, uint256 count, bytes calldata witness)
        private
        view
        returns (uint256)
    {
        (uint256 j, EscapeState memory s, EscapeAccount memory a) = abi.decode(witness, (uint256, EscapeState, EscapeAccount));
        _checkState(s, x.preRoot);
        if (j >= count) revert TxIndexOutOfRange(j, count);
        (,, uint256 at, uint256 prev,) = _walk(chunk, count, j);
        (bool signed, uint256 account, uint256 nonce, address signer) = chunkDecoder.signerOf(chunk, at, prev, _domain());
        if (!signed) revert NotASignedTransaction(j);
        if (account >= s.nextAccountId || a.id != account) revert AccountMismatch(j);
        Ctx memory c;
        c.zs = SparseMerkle.ZERO_HASHES;
        _openAccount(c, s, a, j);
        return signer != a.owner || nonce <= a.nonce ? REASON_REJECTED : 0;
    }

    // ------------------------------------------------------------------ deposits, withdraws
    // ------------------------------------------------------------------------- withdrawals
    /// @dev KIND_WITHDRAWALS (see the contract notice): the records are opened and compared by
    ///      the MarkVerifier (`judgeRecords`, for size); the transactions they name are read here.
    ///      The chunk was walked (valid) in verify.
    function _withdrawals(FraudContext calldata x, bytes calldata chunk, uint256 count, bytes calldata witness)
        private
        view
        returns (uint256)
    {
        (uint256 reason, uint256 mode, uint256 txIndex, WithdrawalRecord memory w) =
            markVerifier.judgeRecords(x.withdrawalsRoot, x.nChunks, x.chunkIndex, x.preRoot, x.postRoot, witness);
        if (mode == 1 && reason == 0) return txIndex >= count || !_paysRecord(chunk, count, w) ? REASON_BAD_RECORD : 0;
        if (mode == 3 && reason != 0) {
            // no record names transaction txIndex: fraud if it is a packed Withdraw
            if (txIndex >= count) revert TxIndexOutOfRange(txIndex, count);
            (,, uint256 at,,) = _walk(chunk, count, txIndex);
            if (uint8(chunk[at]) & 0x0F != 5 || uint8(chunk[at]) == FALLBACK) revert NotAWithdrawal(txIndex);
        }
        return reason;
    }

    /// @dev Whether transaction `w.txIndex` of the chunk is a packed Withdraw or ForcedWithdrawal
    ///      that pays `w`: same account and amount, and the Withdraw's signer (EIP-712, low s) or
    ///      the ForcedWithdrawal's owner is `w.owner`.
    function _paysRecord(bytes calldata chunk, uint256 count, WithdrawalRecord memory w) private view returns (bool) {
        (,, uint256 at, uint256 prev,) = _walk(chunk, count, w.txIndex);
        uint256 head = uint8(chunk[at]);
        if (head == FALLBACK || (head & 0x0F != 5 && head & 0x0F != 10)) return false;
        (Op memory op,,) = _readOp(chunk, at, prev, w.txIndex);
        if (op.target != w.accountId || op.amount != w.amount) return false;
        if (op.kind == 10) return op.owner == w.owner;
        address signer = _signerAt(chunk, at, prev, _domain());
        return signer != address(0) && signer == w.owner;
    }

    function _domain() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("clearline"), keccak256("1"), block.chainid, msg.sender));
    }

    struct Ctx {
        bytes zs;
        uint256 p;
        uint256 prev;
        bytes32 domain;
        uint256 ai; // next entry of `accounts`
        uint256 mi; // next entry of `margins`
        uint256 xi; // next entry of `ix`
        IndexWitness[] ix;
    }

    /// @dev For an account created by a Deposit or a Transfer (KIND_COLLATERAL_ROOT): the
    ///      account index's entry that precedes the new key (account `pred`'s, or the sentinel's
    ///      when `pred` = MAX_ACCOUNTS) with its proof, and the proof of the new account's empty
    ///      entry once that one points to the new key (clearline.core.state's index).
    struct IndexWitness {
        uint32 pred;
        uint256 predKey;
        uint256 predNext;
        uint256 predPresent;
        bytes32[] predSiblings;
        uint256 newPresent;
        bytes32[] newSiblings;
    }

    /// @dev One decoded Deposit (kind 1), Withdraw (5), Transfer (6), LIQUIDATE operator action
    ///      (8), SetMarginMode (9), ForcedWithdrawal (10) or SetAccountFlags (11).
    struct Op {
        uint256 kind;
        uint256 time;
        uint256 queueIndex; //  deposit
        address owner; //       deposit
        uint256 target; //      deposit: subaccount; withdraw, transfer: account
        uint256 toSubaccount; // transfer
        uint256 amount; //      SetMarginMode: the mode; SetAccountFlags: the flags
        uint256 nonce; //       signed kinds
        address signer; //      signed kinds: the EIP-712 signer (ChunkDecoder.signerOf)
    }

    function _collateralRoot(FraudContext calldata x, bytes calldata chunk, uint256 count, bytes calldata witness)
        private
        view
        returns (uint256)
    {
        (EscapeState memory s, EscapeAccount[] memory accounts, MarginWitness[] memory margins, IndexWitness[] memory ix)
        = abi.decode(witness, (EscapeState, EscapeAccount[], MarginWitness[], IndexWitness[]));
        _checkState(s, x.preRoot); // the chunk was walked (valid) in verify
        if (count == 0) revert TxIndexOutOfRange(0, 0); // an empty chunk is a matching step, not this kind's
        Ctx memory c;
        c.zs = SparseMerkle.ZERO_HASHES;
        c.domain = _domain();
        c.ix = ix;
        for (uint256 i = 0; i < count; ++i) {
            Op memory op;
            bool valid;
            uint256 at = c.p;
            (op, c.p, valid) = _readOp(chunk, at, c.prev, i);
            if (!valid || op.time < s.timeMs) return REASON_REJECTED;
            if (op.kind != 1 && op.kind != 8 && op.kind != 10) op.signer = _signerAt(chunk, at, c.prev, c.domain);
            c.prev = op.time;
            uint256 r;
            if (op.kind == 1) r = _applyDeposit(c, s, _next(c, accounts), op, i);
            else if (op.kind == 10) r = _applyForced(c, s, _next(c, accounts), margins, op, i);
            else if (op.kind == 8) r = _liquidationRefused(c, s, _next(c, accounts), margins, op, i);
            else if (op.kind == 9 || op.kind == 11) r = _applySetting(c, s, _next(c, accounts), margins, op, i);
            else r = _applySigned(c, s, accounts, margins, op, i);
            if (r != 0) return r;
            s.timeMs = uint64(op.time);
        }
        if (c.ai != accounts.length) revert WitnessCount(c.ai, accounts.length);
        if (c.mi != margins.length) revert WitnessCount(c.mi, margins.length);
        if (c.xi != ix.length) revert WitnessCount(c.xi, ix.length);
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
        if (!_openOrCreate(c, s, a, i)) return REASON_REJECTED;
        a.collateral += int256(d.amount);
        s.accountsRoot = _rootMem(c.zs, ACCOUNTS_DEPTH, a.id, _accountLeaf(a), a.present, a.siblings);
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
        s.accountsRoot = _rootMem(c.zs, ACCOUNTS_DEPTH, a.id, _accountLeaf(a), a.present, a.siblings);
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
        if (w.signer != a.owner) return REASON_REJECTED;
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
        s.accountsRoot = _rootMem(c.zs, ACCOUNTS_DEPTH, a.id, _accountLeaf(a), a.present, a.siblings);
        if (!isTransfer) {
            s.totalWithdrawals += w.amount;
            return 0;
        }
        EscapeAccount memory d = _next(c, accounts);
        if (d.owner != a.owner || d.subaccount != w.toSubaccount) revert AccountMismatch(i);
        if (!_openOrCreate(c, s, d, i)) return REASON_REJECTED;
        d.collateral += int256(w.amount);
        s.accountsRoot = _rootMem(c.zs, ACCOUNTS_DEPTH, d.id, _accountLeaf(d), d.present, d.siblings);
        return 0;
    }

    /// @dev A SetMarginMode (kind 9) or SetAccountFlags (11), its byte in `w.amount`
    ///      (clearline.core.apply._set_margin_mode / _set_account_flags): rejected for an unknown
    ///      account, a signer other than the owner, a used nonce, a mode not 0 or 1 or flags
    ///      beyond ALL_ACCOUNT_FLAGS, and a new mode under which equity is below the initial
    ///      requirement (health in that mode; without positions: negative collateral).
    function _applySetting(
        Ctx memory c,
        EscapeState memory s,
        EscapeAccount memory a,
        MarginWitness[] memory margins,
        Op memory w,
        uint256 i
    ) private view returns (uint256) {
        if (w.target >= s.nextAccountId) return REASON_REJECTED; // unknown account
        if (a.id != w.target) revert AccountMismatch(i);
        _openAccount(c, s, a, i);
        if (w.signer != a.owner || w.nonce <= a.nonce) return REASON_REJECTED;
        if (w.kind == 11) {
            if (w.amount & ~ALL_ACCOUNT_FLAGS != 0) return REASON_REJECTED;
            a.flags = uint8(w.amount);
        } else {
            if (w.amount > 1) return REASON_REJECTED;
            a.marginMode = uint8(w.amount);
            if (a.positions.length == 0) {
                if (a.collateral < 0) return REASON_REJECTED;
            } else {
                (int256 eq, int256 im,,) = _health(c, s, a, margins);
                if (eq < im) return REASON_REJECTED;
            }
        }
        a.nonce = uint64(w.nonce);
        s.accountsRoot = _rootMem(c.zs, ACCOUNTS_DEPTH, a.id, _accountLeaf(a), a.present, a.siblings);
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

    /// @dev The EIP-712 signer (under `domain`) of the packed signed transaction at `at` of a
    ///      valid chunk, `prev` the time before it: ChunkDecoder.signerOf, the one reading of a
    ///      signed transaction's struct on L1 (0 unless canonical: low s, r and s > 0).
    function _signerAt(bytes calldata chunk, uint256 at, uint256 prev, bytes32 domain) private view returns (address s) {
        (,,, s) = chunkDecoder.signerOf(chunk, at, prev, domain);
    }

    /// @dev The witness's account `a` of (owner, subaccount): proven at its id, or, when its id
    ///      is the next one, created (clearline.core.state.State.account_for): proven absent by
    ///      the account index (the entry before its key has a larger next key), inserted there,
    ///      its empty leaf proven; false when the account space is full (the core rejects).
    function _openOrCreate(Ctx memory c, EscapeState memory s, EscapeAccount memory a, uint256 i)
        private
        pure
        returns (bool)
    {
        if (a.id != s.nextAccountId) {
            _openAccount(c, s, a, i);
            return true;
        }
        if (a.id >= MAX_ACCOUNTS) return false;
        if (a.collateral != 0 || a.nonce != 0 || a.marginMode != 0 || a.flags != 0 || a.positions.length != 0) {
            revert AccountMismatch(i);
        }
        if (c.xi >= c.ix.length) revert WitnessCount(c.xi + 1, c.ix.length);
        IndexWitness memory w = c.ix[c.xi++];
        uint256 key = uint256(keccak256(abi.encodePacked(a.owner, a.subaccount)));
        uint256 at = ACCOUNT_INDEX_BASE + w.pred;
        if (
            w.pred > MAX_ACCOUNTS || w.predKey >= key || (w.predNext != 0 && w.predNext <= key)
                || _rootMem(c.zs, ACCOUNTS_DEPTH, at, _indexLeaf(w.predKey, w.predNext), w.predPresent, w.predSiblings)
                    != s.accountsRoot
        ) revert InvalidAccountWitness(i);
        s.accountsRoot = _rootMem(c.zs, ACCOUNTS_DEPTH, at, _indexLeaf(w.predKey, key), w.predPresent, w.predSiblings);
        at = ACCOUNT_INDEX_BASE + a.id;
        if (_rootMem(c.zs, ACCOUNTS_DEPTH, at, bytes32(0), w.newPresent, w.newSiblings) != s.accountsRoot) {
            revert InvalidAccountWitness(i);
        }
        s.accountsRoot = _rootMem(c.zs, ACCOUNTS_DEPTH, at, _indexLeaf(key, w.predNext), w.newPresent, w.newSiblings);
        if (_rootMem(c.zs, ACCOUNTS_DEPTH, a.id, bytes32(0), a.present, a.siblings) != s.accountsRoot) {
            revert InvalidAccountWitness(i);
        }
        s.nextAccountId += 1;
        return true;
    }

    function _indexLeaf(uint256 key, uint256 next) private pure returns (bytes32) {
        return keccak256(abi.encode(ACCOUNT_INDEX_TAG, key, next));
    }

    function _openAccount(Ctx memory c, EscapeState memory s, EscapeAccount memory a, uint256 i) private pure {
        if (_rootMem(c.zs, ACCOUNTS_DEPTH, a.id, _accountLeaf(a), a.present, a.siblings) != s.accountsRoot) {
            revert InvalidAccountWitness(i);
        }
    }

    /// @dev Transaction i of a chunk at p (head byte included). `valid` false when its time
    ///      or nonce leaves uint64 (batch_v2 rejects those). Reverts unless a packed kind that
    ///      KIND_COLLATERAL_ROOT re-executes (1, 5, 6, 8, 9, 10, 11).
    function _readOp(bytes calldata c, uint256 p, uint256 prev, uint256 i)
        private
        pure
        returns (Op memory op, uint256, bool)
    {
        uint256 head = uint8(c[p]);
        op.kind = head & 0x0F;
        if (head == FALLBACK || op.kind < 5 && op.kind != 1 || op.kind == 7) revert NotACollateralChunk(i);
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
        if (op.kind == 9 || op.kind == 11) op.amount = uint8(c[p++]); // mode, flags
        else (op.amount, p,) = _u(c, p);
        uint256 n;
        (n, p,) = _u(c, p);
        if (head & 0x40 != 0) {
            int256 nonce = int256(op.time) + _unzz(n);
            if (nonce < 0 || nonce > int256(uint256(type(uint64).max))) return (op, p, false);
            op.nonce = uint256(nonce);
        } else {
            op.nonce = n;
        }
        return (op, p + 64, true); // the signature: read by ChunkDecoder.signerOf
    }

    function _unzz(uint256 z) private pure returns (int256) {
        return Leb128.unzz(z);
    }

    function _accountLeaf(EscapeAccount memory a) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                ACCOUNT_TAG, a.id, a.owner, a.subaccount, a.collateral, a.nonce, a.marginMode, a.flags, a.positions
            )
        );
    }

    /// @dev SparseMerkle.rootFromCompressedProof over memory siblings (1 when they do not fit:
    ///      a root no tree has). In assembly, with one scratch buffer: a kind-5 proof computes
    ///      several of these per transaction.
    function _rootMem(
        bytes memory zs,
        uint256 depth,
        uint256 index,
        bytes32 leaf,
        uint256 present,
        bytes32[] memory siblings
    ) private pure returns (bytes32 h) {
        if (present >> depth != 0 || index >> depth != 0) return bytes32(uint256(1));
        bool bad;
        assembly ("memory-safe") {
            let n := mload(siblings)
            let used := 0
            let buf := mload(0x40) // scratch beyond the free memory pointer (not allocated)
            mstore8(buf, 0x01)
            h := leaf
            for { let i := 0 } lt(i, depth) { i := add(i, 1) } {
                let sib := 0
                switch and(shr(i, present), 1)
                case 0 { sib := mload(add(zs, shl(5, add(i, 1)))) }
                default {
                    if iszero(lt(used, n)) {
                        bad := 1
                        break
                    }
                    sib := mload(add(add(siblings, 32), shl(5, used)))
                    used := add(used, 1)
                }
                switch and(shr(i, index), 1)
                case 0 {
                    mstore(add(buf, 1), h)
                    mstore(add(buf, 33), sib)
                }
                default {
                    mstore(add(buf, 1), sib)
                    mstore(add(buf, 33), h)
                }
                h := keccak256(buf, 65)
            }
            if iszero(eq(used, n)) { bad := 1 }
        }
        if (bad) return bytes32(uint256(1));
    }

    function _checkState(EscapeState memory s, bytes32 root) private pure {
        bytes32 h = keccak256(abi.encode(STATE_TAG, s));
        if (h != root) revert PreStateMismatch(root, h);
    }

    // ---------------------------------------------------------------------- chunk decoding
    function _u(bytes calldata d, uint256 p) internal pure returns (uint256 v, uint256 q, bool ok) {
        return Leb128.read(d, p);
    }

    /// @dev The ChunkDecoder's `decodeChunk`, caught: (reason, l1Before, at, l1Total), reason 0
    ///      when the chunk decodes (up to `target`), else its REASON_CHUNK_* code. Anything
    ///      but ChunkMalformed (out of gas) is re-thrown: never taken for a malformed chunk.
    function _walk(bytes calldata chunk, uint256 k, uint256 target)
        internal
        view
        returns (uint256 reason, uint256 l1Before, uint256 at, uint256 l1Total, uint256 count)
    {
        try chunkDecoder.decodeChunk(chunk, k, target) returns (uint256 b, uint256 a, uint256 t, uint256 n) {
            return (0, b, a, t, n);
        } catch (bytes memory err) {
            if (err.length != 36 || bytes4(err) != ChunkMalformed.selector) {
                assembly ("memory-safe") {
                    revert(add(err, 32), mload(err))
                }
            }
            assembly ("memory-safe") {
                reason := mload(add(err, 36))
            }
        }
    }

    /// @notice The chunk decoder (`ChunkDecoder.decodeChunk`), for callers of this contract
    ///         (MarkVerifier.judgeNonces, tests): reverts ChunkMalformed(reason) as it does.
    function decodeChunk(bytes calldata chunk, uint256 k, uint256 target)
        external
        view
        returns (uint256 l1Before, uint256 at, uint256 l1Total, uint256 count)
    {
        return chunkDecoder.decodeChunk(chunk, k, target);
    }
}
