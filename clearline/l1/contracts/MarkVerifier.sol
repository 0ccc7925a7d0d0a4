// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscapeState} from "./Escape.sol";
import {UnderlyingHead, UnderlyingLib, Window} from "./Underlying.sol";
import {FundingCall, FundingVerifier} from "./FundingVerifier.sol";
import {ExpiryCall, ExpiryVerifier} from "./ExpiryVerifier.sol";
import {StepLeaves} from "./MarketWords.sol";
import {OracleConfigIn, OracleStateIn, ReportIn} from "./OracleVerifier.sol";
import {MarkDecoder, MarkTx, OperatorTx} from "./MarkDecoder.sol";
import {SparseMerkle} from "./SparseMerkle.sol";
import {WithdrawalRecord, WithdrawalsLib} from "./Withdrawals.sol";
import {
    REASON_BAD_RECORD,
    REASON_MISSING_RECORD,
    REASON_RECORD_ORDER,
    REASON_RECORD_SUM,
    REASON_REJECTED,
    REASON_WRONG_POST_ROOT
} from "./Reasons.sol";

/// @notice One underlying's oracle configuration (clearline.core.underlying.UnderlyingConfig).
struct UnderlyingParams {
    uint32 id;
    OracleConfigIn oracle;
}

/// @notice The consensus parameters an operator transaction is re-executed with
///         (clearline/l1/params.py); the Rollup stores keccak256(abi.encode(params)).
struct ConsensusParams {
    address operator; //          signs MarkUpdates and OperatorActions
    uint64 settlementWindowMs;
    uint64 fundingIntervalMs;
    uint64 fundingSampleMs;
    int64 interestPpm;
    int64 premiumClampPpm;
    int64 fundingCapPpm;
    uint32 settlementFeePpm; //   of the underlying notional, capped at 1/8 of the payoff
    UnderlyingParams[] underlyings; // every configured underlying, ascending id
}

/// @notice The witness of a MarkUpdate proof (FraudVerifier KIND_MARK_UPDATE).
struct MarkWitness {
    EscapeState pre; //          preimage of the chunk's pre-root
    ConsensusParams params; //   preimage of the Rollup's paramsHash
    bytes[] markets; //          pre leaf bytes (45 words) of each listed instrument, transaction order ("" = none)
    uint256[] order; //          a permutation of the instruments' positions, ascending instrument id
    bytes[] underlyings; //      pre leaf bytes of each params.underlyings entry, same order
    bytes32[] siblings; //       multiproof of all those leaves against pre.marketsRoot (see _multiRoot)
    uint256[] present; //        bit i: sibling i of the walk is given (else the empty subtree)
}

/// @notice The witness of an OperatorAction proof (FraudVerifier KIND_OPERATOR_ACTION).
struct ActionWitness {
    EscapeState pre; //          preimage of the chunk's pre-root
    ConsensusParams params; //   preimage of the Rollup's paramsHash
    bytes leaf; //               CANCEL_ALL_ORDERS: the target's account leaf; FUNDING_SETTLE,
    //                           FUNDING_PAY, SETTLE_OPTION, SETTLE_POSITION: the target's market
    //                           leaf ("" for an empty slot); CLOSE_ORDER: the order's leaf (at
    //                           `leafIndex`, "" when none is open there); "" otherwise (unused)
    uint256 present; //          the leaf's compressed proof (SparseMerkle.rootFromCompressedProof)
    bytes32[] siblings;
    bytes leaf2; //              FUNDING_PAY, SETTLE_POSITION: account `arg`'s leaf; SETTLE_OPTION:
    //                           the option's underlying leaf; CLOSE_ORDER: the order's market leaf
    uint256 present2; //         its compressed proof (SETTLE_OPTION: against the markets tree with
    bytes32[] siblings2; //      the option's leaf already updated: ExpiryVerifier)
    uint256 leafIndex; //        CLOSE_ORDER: the order's id (its index in the orders tree)
    bytes leaf3; //              CLOSE_ORDER of an order that is not its side's head: the leaf of
    uint256 present3; //         the order before it, proven against the orders tree with the
    bytes32[] siblings3; //      closed order's leaf already emptied ("" otherwise)
}

/// @title MarkVerifier
/// @notice Re-executes one MarkUpdate (clearline.core.apply._mark_update) on L1 and judges the
///         post-root committed after it. A MarkUpdate touches only the markets tree: the market
///         leaf of each instrument it lists (mark, mark time, risk array) and every underlying
///         leaf (the settlement accumulators advance to the transaction's time; an underlying
///         with reports takes the oracle round's new state), plus the state's timeMs. Expired
///         good-till-time orders are swept by OperatorAction EXPIRE_ORDERS, not here, so the
///         accounts and orders roots are unchanged. The underlyings are all of the genesis's
///         (ConsensusParams), so every leaf the transaction changes is in the witness, and one
///         multiproof of them gives both the pre-root check and the new markets root.
///
///         Returns 31 (REJECTED) when the core rejects the transaction: more than 48
///         instruments or 16 reports (the core's bounds), time before the pre-state's, not signed by the operator (EIP-712, low s), a signed timestamp of 0 or
///         after the time, nothing to update, an instrument listed twice, an unknown or not
///         active instrument, a zero price, a timestamp not after the market's mark time, a
///         report for an unknown underlying, or an oracle round the OracleVerifier rejects (bad
///         or high-s report signature, duplicate reporter, time going backwards); 30 when the
///         post-root is not the re-executed one; 0 otherwise. A witness that does not prove
///         against the committed roots reverts.
///
///         `judgeAction` judges one OperatorAction (KIND_OPERATOR_ACTION): 31 when the core
///         rejects it for a reason shown by the transaction, the pre-state, the params and one
///         leaf, 0 otherwise (see there).
///
///         `judgeRecords` opens the withdrawal records of a KIND_WITHDRAWALS proof (see there;
///         here for the FraudVerifier's size, which reads the transactions they name).
contract MarkVerifier {
    uint256 internal constant MARKETS_DEPTH = 24;
    uint256 internal constant UNDERLYING_BASE = 1 << 23;
    uint256 internal constant LEAF_WORDS = 45; // a market leaf: tag, 24 fields, int64[16], 4 fields
    uint8 internal constant ACTIVE = 0;
    bytes32 internal constant STATE_TAG = keccak256("clearline.state.v1");
    bytes32 internal constant MARKET_TAG = keccak256("clearline.market.v1");
    bytes32 internal constant UNDERLYING_TAG = UnderlyingLib.UNDERLYING_TAG;
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant MARK_TYPEHASH = keccak256(
        "MarkUpdate(uint64 timestamp,uint32[] instruments,uint64[] prices,int64[] riskArrays,bytes32 reportsHash)"
    );
    bytes32 internal constant OPERATOR_TYPEHASH =
        keccak256("OperatorAction(uint8 action,uint32 target,uint64 arg,uint64 timestamp)");
    bytes32 internal constant ACCOUNT_TAG = keccak256("clearline.account.v1");
    uint256 internal constant ACCOUNTS_DEPTH = 32;
    uint8 internal constant SETTLE_OPTION = 3;
    uint8 internal constant LIST_OPTIONS = 4;
    uint8 internal constant CANCEL_ALL_ORDERS = 5;
    uint8 internal constant EXPIRE_ORDERS = 6;
    uint8 internal constant FUNDING_SETTLE = 7;
    uint8 internal constant FUNDING_PAY = 8;
    uint256 internal constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    error ParamsMismatch(bytes32 committed, bytes32 given);
    error PreStateMismatch(bytes32 committed, bytes32 given);
    error WitnessShape(); //                  counts or the order permutation do not fit the transaction
    error NotAMarketLeaf(uint256 index);
    error NotAnUnderlyingLeaf(uint256 index);
    error InvalidMarketsProof(bytes32 committed, bytes32 given);
    error NotAnAccountLeaf(uint256 index);
    error InvalidAccountsProof(bytes32 committed, bytes32 given);
    error BadNonceWitness();
    error BadRecordWitness(uint256 i); //     a record not in the withdrawal tree, or not where the mode needs it

    /// @dev One leaf of a batch's withdrawal tree with its compressed proof; `empty`: the leaf
    ///      is empty (`record` ignored).
    struct RecordProof {
        uint256 index;
        bool empty;
        WithdrawalRecord record;
        uint256 present;
        bytes32[] siblings;
    }

    /// @dev abi.encode(NonceWitness): a KIND_NONCES witness. Transaction `i` of chunk `c1`
    ///      (`chunk1`, with every chunk hash of the batch, when it is not the judged chunk) and
    ///      transaction `j` of the judged chunk.
    struct NonceWitness {
        uint256 c1;
        uint256 i;
        uint256 j;
        bytes32[] hashes;
        bytes chunk1;
    }

    /// @dev abi.encode(RecordsWitness): a KIND_WITHDRAWALS witness.
    struct RecordsWitness {
        uint256 mode;
        uint256 txIndex;
        RecordProof[] records;
    }

    IOracle public immutable oracle;

    /// @notice Re-executes FUNDING_SETTLE and FUNDING_PAY for `judgeAction`.
    FundingVerifier public immutable funding;
    /// @notice Re-executes SETTLE_OPTION, SETTLE_POSITION and CLOSE_ORDER for `judgeAction`.
    ExpiryVerifier public immutable expiry;

    constructor(IOracle oracle_, FundingVerifier funding_, ExpiryVerifier expiry_) {
        oracle = oracle_;
        funding = funding_;
        expiry = expiry_;
    }

    /// @notice The verdict on chunk `chunk` (its first transaction a packed MarkUpdate) between
    ///         the committed `preRoot` and `postRoot` of the Rollup `rollup` (the EIP-712
    ///         domain); `witness` is abi.encode(MarkWitness). The chunk is read leniently: on a
    ///         chunk that is not exactly one valid MarkUpdate any verdict is sound (such a chunk
    ///         is itself fraud), on a valid one the lenient reading is the strict one.
    function judge(
        bytes32 preRoot,
        bytes32 postRoot,
        bytes32 paramsHash,
        address rollup,
        bytes calldata chunk,
        bytes calldata witness
    ) external view returns (uint256) {
        MarkWitness calldata w = _witness(witness);
        (EscapeState memory post, ConsensusParams memory params) = _open(w.pre, w.params, preRoot, paramsHash);
        MarkTx memory t = MarkDecoder.decodeMark(chunk);
        uint256 n = t.instruments.length;
        // bounded work: the core rejects a MarkUpdate over its bounds, read no further
        if (n > MarkDecoder.MAX_INSTRUMENTS || t.reports.length > MarkDecoder.MAX_REPORTS) return REASON_REJECTED;
        if (w.markets.length != n || w.order.length != n || w.underlyings.length != params.underlyings.length) {
            revert WitnessShape();
        }
        (uint256[] memory idx, bool duplicate) = _indices(t, w.order, params);
        // rejections visible in the transaction alone: no leaf is needed (nor proven)
        if (
            duplicate || idx.length == 0 || t.timeMs < post.timeMs || t.timestamp == 0 || t.timestamp > t.timeMs
                || (n == 0 && t.reports.length == 0) || _unknownAsset(t, params)
                || _signer(t, rollup) != params.operator
        ) return REASON_REJECTED;

        (bool rejected, bytes32 markets) = _markets(t, w, params, idx, rollup, post.marketsRoot);
        if (rejected) return REASON_REJECTED;
        post.marketsRoot = markets;
        post.timeMs = t.timeMs;
        return keccak256(abi.encode(STATE_TAG, post)) != postRoot ? REASON_WRONG_POST_ROOT : 0;
    }

    /// @notice The verdict on chunk `chunk` (its first transaction a packed OperatorAction) at
    ///         the committed `preRoot`; `witness` is abi.encode(ActionWitness). 31 when the core
    ///         (clearline.core.apply._operator_action, clearline.core.operator) rejects it for:
    ///         a time before the pre-state's; a signer other than params.operator (EIP-712
    ///         under {clearline, 1, chainid, rollup}, low s, r and s non-zero); a signed
    ///         timestamp of 0 or after the time; an unknown action (not 1..10); FUNDING_SETTLE
    ///         and FUNDING_PAY are re-executed by the FundingVerifier, SETTLE_OPTION,
    ///         SETTLE_POSITION and CLOSE_ORDER by the ExpiryVerifier (31, 30 against `postRoot`,
    ///         or 0); CANCEL_ALL_ORDERS of an unknown account, with a trigger not 1 or 2, or of an
    ///         account whose flags lack OPERATOR_MAY_CANCEL (bit 0; the account leaf, proven
    ///         against pre.accountsRoot); LIST_OPTIONS of an underlying not in
    ///         params.underlyings; EXPIRE_ORDERS (retired: CLOSE_ORDER closes one order a step). 0 otherwise (the refusals that need more state: no open
    ///         orders, nothing due, the listing rule, a healthy account for LIQUIDATE, which
    ///         KIND_COLLATERAL_ROOT proves). The chunk is read leniently, as by `judge`.
    function judgeAction(
        bytes32 preRoot,
        bytes32 postRoot,
        bytes32 paramsHash,
        address rollup,
        bytes calldata chunk,
        bytes calldata witness
    ) external view returns (uint256) {
        if (witness.length < 32) revert WitnessShape();
        ActionWitness calldata w;
        assembly ("memory-safe") {
            w := add(witness.offset, calldataload(witness.offset))
        }
        (EscapeState memory pre, ConsensusParams memory params) = _open(w.pre, w.params, preRoot, paramsHash);
        OperatorTx memory t = MarkDecoder.decodeOperator(chunk);
        uint8 action = t.action;
        if (
            t.timeMs < pre.timeMs || t.timestamp == 0 || t.timestamp > t.timeMs || action == 0 || action > 10
                || _actionSigner(t, rollup) != params.operator
        ) return REASON_REJECTED;
        if (action == SETTLE_OPTION || action >= FUNDING_SETTLE) { // the re-executed steps
            StepLeaves memory leaves =
                StepLeaves(w.leaf, w.present, w.siblings, w.leaf2, w.present2, w.siblings2, w.leafIndex, w.leaf3,
                    w.present3, w.siblings3);
            if (action == FUNDING_SETTLE || action == FUNDING_PAY) {
                return funding.judge(
                    FundingCall(
                        pre, postRoot, params.fundingIntervalMs, params.fundingSampleMs, params.interestPpm,
                        params.premiumClampPpm, params.fundingCapPpm, action, t.target, t.arg, t.timeMs
                    ),
                    leaves
                );
            }
            return expiry.judge(
                ExpiryCall(pre, postRoot, params.settlementWindowMs, params.settlementFeePpm, action, t.target, t.arg,
                    t.timeMs),
                leaves
            );
        }
        bytes calldata leaf = w.leaf;
        if (action == CANCEL_ALL_ORDERS) {
            if (t.target >= pre.nextAccountId || (t.arg != 1 && t.arg != 2)) return REASON_REJECTED;
            // abi.encode(ACCOUNT_TAG, id, owner, subaccount, collateral, nonce, marginMode, flags, positions)
            if (leaf.length < 288 || bytes32(leaf[0:32]) != ACCOUNT_TAG || uint256(bytes32(leaf[32:64])) != t.target) {
                revert NotAnAccountLeaf(t.target);
            }
            bytes32 h = SparseMerkle.rootFromCompressedProof(ACCOUNTS_DEPTH, t.target, keccak256(leaf), w.present, w.siblings);
            if (h != pre.accountsRoot) revert InvalidAccountsProof(pre.accountsRoot, h);
            return uint256(bytes32(leaf[224:256])) & 1 == 0 ? REASON_REJECTED : 0;
        }
        if (action == EXPIRE_ORDERS) return REASON_REJECTED; // retired: CLOSE_ORDER, one order a step
        if (action != LIST_OPTIONS) return 0;
        for (uint256 j = 0; j < params.underlyings.length; ++j) {
            if (params.underlyings[j].id == t.target) return 0;
        }
        return REASON_REJECTED;
    }

    /// @notice KIND_NONCES (FraudVerifier): two packed user-signed transactions of the batch
    ///         (`witness`: NonceWitness), the second in the judged chunk `chunk` (index
    ///         `chunkIndex`), the first before it in the same chunk or in an earlier one (opened
    ///         with the batch's chunk hashes against `txsHash`), name the same account and the
    ///         second's nonce is not above the first's: 31, since every accepted signed
    ///         transaction moves its account's nonce up to its own, so one of them was rejected
    ///         (a replayed signature, say). 0 otherwise. Both chunks are decoded by the caller's
    ///         strict `decodeChunk` (the caller has walked the judged one).
    function judgeNonces(
        uint256 chunkIndex,
        uint256 k,
        bytes32 txsHash,
        bytes calldata head,
        bytes calldata chunk,
        bytes calldata witness
    ) external view returns (uint256) {
        if (witness.length < 32) revert WitnessShape();
        NonceWitness calldata w;
        assembly ("memory-safe") {
            w := add(witness.offset, calldataload(witness.offset))
        }
        bytes calldata first = chunk;
        if (w.c1 == chunkIndex) {
            if (w.i >= w.j) revert BadNonceWitness();
        } else {
            bytes32[] calldata hs = w.hashes;
            if (
                w.c1 > chunkIndex || w.c1 >= hs.length || keccak256(w.chunk1) != hs[w.c1]
                    || keccak256(abi.encodePacked(keccak256(head), hs)) != txsHash
            ) revert BadNonceWitness();
            first = w.chunk1;
        }
        IChunkDecoder decoder = IChunkDecoder(msg.sender);
        (, uint256 at1, uint256 t1, uint256 n1) = decoder.decodeChunk(first, k, w.i);
        (, uint256 at2, uint256 t2, uint256 n2) = decoder.decodeChunk(chunk, k, w.j);
        if (n1 != w.i || n2 != w.j) revert BadNonceWitness(); // no such transaction
        (bool s1, uint256 a1, uint256 nonce1) = MarkDecoder.accountNonce(first, at1, t1);
        (bool s2, uint256 a2, uint256 nonce2) = MarkDecoder.accountNonce(chunk, at2, t2);
        return s1 && s2 && a1 == a2 && nonce2 <= nonce1 ? REASON_REJECTED : 0;
    }

    /// @notice KIND_WITHDRAWALS, the records' part (FraudVerifier): each record of `witness`
    ///         (abi.encode(RecordsWitness)) is proven against `root` (the header's
    ///         `withdrawalsRoot`), at consecutive indices, else the call reverts. Mode 1 (one
    ///         record): 40 if it names a chunk the batch does not have, else 0 with the record
    ///         for the FraudVerifier to check against the transaction it names in chunk
    ///         `chunkIndex` (it must name that chunk). Mode 2 (records i, i + 1): 41 if they are
    ///         not in strictly increasing (chunk, txIndex) order. Mode 3 (transaction `txIndex`
    ///         of chunk `chunkIndex`): 42 if no record names it: records i and i + 1 around it
    ///         (leaf i + 1 may be empty), or leaf 0 alone, after it or empty. The FraudVerifier
    ///         then checks that the transaction is a Withdraw (which always pays a record).
    ///         Mode 4 (witness: abi.encode(RecordsWitness, EscapeState pre, EscapeState post),
    ///         the preimages of `preRoot` and `postRoot`, the committed roots around chunk
    ///         `chunkIndex`): 43 if the records naming the chunk do not sum to the state's
    ///         withdrawals over it (see `_recordsSum`).
    function judgeRecords(
        bytes32 root,
        uint256 nChunks,
        uint256 chunkIndex,
        bytes32 preRoot,
        bytes32 postRoot,
        bytes calldata witness
    ) external pure returns (uint256 reason, uint256 mode, uint256 txIndex, WithdrawalRecord memory w) {
        if (witness.length < 32) revert WitnessShape();
        RecordsWitness calldata rw;
        assembly ("memory-safe") {
            rw := add(witness.offset, calldataload(witness.offset))
        }
        RecordProof[] calldata rs = rw.records;
        uint256 n = rs.length;
        mode = rw.mode;
        txIndex = rw.txIndex;
        for (uint256 i = 0; i < n; ++i) {
            RecordProof calldata r = rs[i];
            bytes32 leaf = r.empty ? bytes32(0) : WithdrawalsLib.leaf(r.record);
            if (
                r.index >> WithdrawalsLib.DEPTH != 0 || (i > 0 && r.index != rs[i - 1].index + 1)
                    || SparseMerkle.rootFromCompressedProof(WithdrawalsLib.DEPTH, r.index, leaf, r.present, r.siblings)
                        != root
            ) revert BadRecordWitness(i);
        }
        if (mode == 1) {
            if (n != 1 || rs[0].empty) revert BadRecordWitness(n);
            w = rs[0].record;
            if (w.chunk >= nChunks) return (REASON_BAD_RECORD, mode, w.txIndex, w);
            if (w.chunk != chunkIndex) revert BadRecordWitness(0);
            return (0, mode, w.txIndex, w);
        }
        if (mode == 2) {
            if (n != 2 || rs[0].empty || rs[1].empty) revert BadRecordWitness(n);
            return (_position(rs[0].record) >= _position(rs[1].record) ? REASON_RECORD_ORDER : 0, mode, 0, w);
        }
        if (mode == 4) return (_recordsSum(rs, chunkIndex, preRoot, postRoot, witness), mode, 0, w);
        uint256 pos = (chunkIndex << 16) | txIndex;
        if (mode != 3 || n == 0 || n > 2 || txIndex >> 16 != 0) revert BadRecordWitness(n);
        RecordProof calldata hi = rs[n - 1];
        if (n == 2 ? rs[0].empty || _position(rs[0].record) >= pos : hi.index != 0) revert BadRecordWitness(0);
        return (hi.empty || _position(hi.record) > pos ? REASON_MISSING_RECORD : 0, mode, txIndex, w);
    }

    /// @dev KIND_WITHDRAWALS mode 4: 43 if the records naming chunk `c` do not sum to
    ///      post.totalWithdrawals - pre.totalWithdrawals. In the core every accepted Withdraw
    ///      and served ForcedWithdrawal adds exactly its amount to totalWithdrawals and pays
    ///      exactly one record naming it, and nothing else moves either, so the two agree for
    ///      every chunk of a valid batch. The records `rs` (proven, consecutive) are: an
    ///      optional record naming an earlier chunk (else the run starts at leaf 0), the run
    ///      naming chunk `c`, then a record naming a later chunk or an empty leaf. Records out
    ///      of order are mode 2's; on ordered ones the run is the chunk's whole set.
    function _recordsSum(RecordProof[] calldata rs, uint256 c, bytes32 preRoot, bytes32 postRoot, bytes calldata witness)
        private
        pure
        returns (uint256)
    {
        uint256 n = rs.length;
        if (n == 0 || witness.length < 736) revert BadRecordWitness(n); // offset word and two 11-word states
        EscapeState calldata pre;
        EscapeState calldata post;
        assembly ("memory-safe") {
            pre := add(witness.offset, 32)
            post := add(witness.offset, 384)
        }
        bytes32 h = keccak256(abi.encode(STATE_TAG, pre));
        if (h != preRoot) revert PreStateMismatch(preRoot, h);
        h = keccak256(abi.encode(STATE_TAG, post));
        if (h != postRoot) revert PreStateMismatch(postRoot, h);
        uint256 start = !rs[0].empty && rs[0].record.chunk < c ? 1 : 0;
        if (start == 0 && rs[0].index != 0) revert BadRecordWitness(0);
        RecordProof calldata hi = rs[n - 1];
        if (n - 1 < start || !(hi.empty || hi.record.chunk > c)) revert BadRecordWitness(n - 1);
        uint256 sum;
        for (uint256 i = start; i + 1 < n; ++i) {
            if (rs[i].empty || rs[i].record.chunk != c) revert BadRecordWitness(i);
            sum += rs[i].record.amount;
        }
        uint256 before = pre.totalWithdrawals;
        uint256 after_ = post.totalWithdrawals;
        return after_ < before || after_ - before != sum ? REASON_RECORD_SUM : 0;
    }

    function _position(WithdrawalRecord calldata w) private pure returns (uint256) {
        return (uint256(w.chunk) << 16) | w.txIndex;
    }

    /// @dev Every leaf the update touches, proven against `preMarkets` (reverts otherwise):
    ///      whether the core rejects the update because of one, and the markets root after it.
    function _markets(
        MarkTx memory t,
        MarkWitness calldata w,
        ConsensusParams memory params,
        uint256[] memory idx,
        address rollup,
        bytes32 preMarkets
    ) private view returns (bool rejected, bytes32 postMarkets) {
        uint256 n = t.instruments.length;
        bytes32[] memory before = new bytes32[](idx.length);
        bytes32[] memory next = new bytes32[](idx.length);
        for (uint256 j = 0; j < n; ++j) {
            uint256 k = w.order[j];
            bool bad;
            (before[j], next[j], bad) = _markMarket(t, k, w.markets[k]);
            rejected = rejected || bad;
        }
        for (uint256 j = 0; j < params.underlyings.length; ++j) {
            bytes calldata leaf = w.underlyings[j];
            before[n + j] = keccak256(leaf);
            bool bad;
            (next[n + j], bad) = _markUnderlying(t, params, j, leaf, rollup);
            rejected = rejected || bad;
        }
        bytes32 root = _multiRoot(_copy(idx), before, w.siblings, w.present);
        if (root != preMarkets) revert InvalidMarketsProof(preMarkets, root);
        postMarkets = _multiRoot(idx, next, w.siblings, w.present);
    }

    /// @dev The witness's pre-state and parameters in memory, once they are shown to be the
    ///      preimages of the committed pre-root and of the Rollup's paramsHash.
    function _open(EscapeState calldata pre, ConsensusParams calldata p, bytes32 preRoot, bytes32 paramsHash)
        private
        pure
        returns (EscapeState memory s, ConsensusParams memory params)
    {
        s = pre;
        bytes32 h = keccak256(abi.encode(STATE_TAG, s));
        if (h != preRoot) revert PreStateMismatch(preRoot, h);
        params = p;
        h = keccak256(abi.encode(params));
        if (h != paramsHash) revert ParamsMismatch(paramsHash, h);
    }

    /// @dev The witness read in place from calldata (no copy of its ~1.3 KB market leaves):
    ///      abi.encode(MarkWitness) is one offset word, then the struct.
    function _witness(bytes calldata witness) private pure returns (MarkWitness calldata w) {
        if (witness.length < 32) revert WitnessShape();
        assembly ("memory-safe") {
            w := add(witness.offset, calldataload(witness.offset))
        }
    }

    // ---------------------------------------------------------------------------- leaves

    /// @dev Tree indices of the witness's leaves, ascending: the instruments (by `order`),
    ///      then the underlyings. `duplicate` when an instrument is listed twice (the order
    ///      cannot then be strictly increasing) or lies outside the markets' part of the tree:
    ///      the core rejects both, and the multiproof is then not walked.
    function _indices(MarkTx memory t, uint256[] calldata order, ConsensusParams memory p)
        private
        pure
        returns (uint256[] memory idx, bool duplicate)
    {
        uint256 n = t.instruments.length;
        uint256 m = p.underlyings.length;
        idx = new uint256[](n + m);
        bool[] memory seen = new bool[](n);
        for (uint256 j = 0; j < n; ++j) {
            uint256 k = order[j];
            if (k >= n || seen[k]) revert WitnessShape();
            seen[k] = true;
            uint256 id = t.instruments[k];
            if (j > 0 && id <= idx[j - 1]) {
                if (id < idx[j - 1]) revert WitnessShape(); // not the ascending order
                duplicate = true;
            }
            if (id >= UNDERLYING_BASE) duplicate = true; // no market there: UNKNOWN_INSTRUMENT
            idx[j] = id;
        }
        for (uint256 j = 0; j < m; ++j) {
            uint256 id = p.underlyings[j].id;
            if (id >= UNDERLYING_BASE || (j > 0 && id <= p.underlyings[j - 1].id)) revert WitnessShape();
            idx[n + j] = UNDERLYING_BASE + id;
        }
    }

    /// @dev The hashes of the market leaf of instrument position `k` before and after the
    ///      update, and whether the core rejects the update because of it (unknown, not
    ///      active, zero price, stale mark). The leaf is 45 static words (tag, 24 fields, the
    ///      16-value risk array, 2 funding fields, 2 book heads: clearline.core.encoding.encode_market_leaf); the update
    ///      rewrites words 15 (markPrice), 16 (markTime) and, with risk arrays, 25..40, in a
    ///      scratch copy that is never allocated.
    function _markMarket(MarkTx memory t, uint256 k, bytes calldata leaf)
        private
        pure
        returns (bytes32 pre, bytes32 post, bool bad)
    {
        if (leaf.length == 0) return (bytes32(0), bytes32(0), true);
        if (leaf.length != LEAF_WORDS * 32 || bytes32(leaf[0:32]) != MARKET_TAG
            || uint256(bytes32(leaf[32:64])) != t.instruments[k]) revert NotAMarketLeaf(t.instruments[k]);
        uint256 status = uint256(bytes32(leaf[14 * 32:15 * 32]));
        uint256 markTime = uint256(bytes32(leaf[16 * 32:17 * 32]));
        uint256 price = t.prices[k];
        uint256 ts = t.timestamp;
        bad = status != ACTIVE || price == 0 || ts <= markTime;
        bool arrays = t.riskArrays.length != 0;
        int64[16] memory arr;
        if (arrays) arr = t.riskArrays[k];
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, leaf.offset, leaf.length)
            pre := keccak256(m, leaf.length)
            mstore(add(m, 480), price) //  word 15
            mstore(add(m, 512), ts) //     word 16
            if arrays {
                for { let i := 0 } lt(i, 16) { i := add(i, 1) } {
                    mstore(add(m, add(800, mul(i, 32))), mload(add(arr, mul(i, 32)))) // words 25..40
                }
            }
            post := keccak256(m, leaf.length)
        }
    }

    /// @dev Underlying `j` after the update (Underlying.advance to timeMs with the old index,
    ///      then the oracle round of its reports, if any), and whether the round is rejected.
    function _markUnderlying(MarkTx memory t, ConsensusParams memory p, uint256 j, bytes calldata leaf, address rollup)
        private
        view
        returns (bytes32, bool)
    {
        UnderlyingParams memory cfg = p.underlyings[j];
        (bytes32 tag, UnderlyingHead memory u, Window[] memory ws) = abi.decode(leaf, (bytes32, UnderlyingHead, Window[]));
        if (tag != UNDERLYING_TAG || u.id != cfg.id) revert NotAnUnderlyingLeaf(UNDERLYING_BASE + cfg.id);
        UnderlyingLib.advance(u, ws, t.timeMs, p.settlementWindowMs);
        ReportIn[] memory mine = _reportsOf(t, cfg.id);
        if (mine.length != 0) {
            OracleStateIn memory s = OracleStateIn(
                cfg.id, u.indexPrice, u.indexTime, u.lastRoundMs, u.pendingPrice, u.pendingCount
            );
            (uint8 code,, OracleStateIn memory s2,,) =
                oracle.aggregateSigned(block.chainid, rollup, cfg.oracle, s, mine, t.timeMs);
            if (code != 0) return (bytes32(0), true);
            u.indexPrice = s2.indexPrice;
            u.indexTime = s2.indexTimeMs;
            u.lastRoundMs = s2.lastRoundMs;
            u.pendingPrice = s2.pendingPrice;
            u.pendingCount = uint32(s2.pendingCount);
            u.liquidationsPaused = s2.pendingCount > 0;
        }
        return (UnderlyingLib.leafHash(u, ws), false);
    }

    function _reportsOf(MarkTx memory t, uint32 asset) private pure returns (ReportIn[] memory out) {
        uint256 c;
        for (uint256 i = 0; i < t.reports.length; ++i) {
            if (t.reports[i].asset == asset) ++c;
        }
        out = new ReportIn[](c);
        c = 0;
        for (uint256 i = 0; i < t.reports.length; ++i) {
            if (t.reports[i].asset == asset) out[c++] = t.reports[i];
        }
    }

    function _unknownAsset(MarkTx memory t, ConsensusParams memory p) private pure returns (bool) {
        for (uint256 i = 0; i < t.reports.length; ++i) {
            uint32 a = t.reports[i].asset;
            bool known;
            for (uint256 j = 0; j < p.underlyings.length && !known; ++j) {
                known = p.underlyings[j].id == a;
            }
            if (!known) return true;
        }
        return false;
    }

    // ------------------------------------------------------------------------- signature

    /// @dev The operator's EIP-712 signer of the MarkUpdate (clearline.core.eip712._hash_mark),
    ///      0 unless canonical (low s, r and s non-zero; v is 27/28 by the packed form).
    function _signer(MarkTx memory t, address rollup) private view returns (address) {
        return _recover(_structHash(t), t.signature, rollup);
    }

    /// @dev The EIP-712 signer of struct hash `sh` under the domain of `rollup`, 0 unless
    ///      the signature is canonical.
    function _recover(bytes32 sh, bytes memory sig, address rollup) private view returns (address) {
        bytes32 r;
        bytes32 s;
        uint8 v = uint8(sig[64]);
        assembly ("memory-safe") {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        if (uint256(s) > HALF_N || r == 0 || s == 0) return address(0);
        bytes32 domain =
            keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("clearline"), keccak256("1"), block.chainid, rollup));
        bytes32 digest = keccak256(abi.encodePacked(bytes2(0x1901), domain, sh));
        return ecrecover(digest, v, r, s);
    }

    /// @dev The operator's EIP-712 signer of the OperatorAction (clearline.core.eip712._hash_operator).
    function _actionSigner(OperatorTx memory t, address rollup) private view returns (address) {
        bytes32 sh = keccak256(abi.encode(OPERATOR_TYPEHASH, t.action, t.target, t.arg, t.timestamp));
        return _recover(sh, t.signature, rollup);
    }

    function _structHash(MarkTx memory t) private pure returns (bytes32) {
        uint256 n = t.riskArrays.length;
        int256[] memory flat = new int256[](n * 16);
        for (uint256 j = 0; j < n; ++j) {
            for (uint256 i = 0; i < 16; ++i) {
                flat[j * 16 + i] = t.riskArrays[j][i];
            }
        }
        return keccak256(
            abi.encode(
                MARK_TYPEHASH,
                t.timestamp,
                keccak256(abi.encodePacked(t.instruments)),
                keccak256(abi.encodePacked(t.prices)),
                keccak256(abi.encodePacked(flat)),
                _reportsHash(t.reports)
            )
        );
    }

    /// @dev keccak of clearline.oracle.report.encode_reports: abi.encode of
    ///      (uint32 asset, uint64 price, uint64 timestamp, uint64 round, bytes32 r, bytes32 s, uint8 v)[].
    function _reportsHash(ReportIn[] memory reps) private pure returns (bytes32) {
        uint256 n = reps.length;
        bytes memory out = new bytes(64 + 224 * n);
        assembly ("memory-safe") {
            mstore(add(out, 32), 32)
            mstore(add(out, 64), n)
        }
        for (uint256 i = 0; i < n; ++i) {
            ReportIn memory r = reps[i];
            bytes memory sig = r.signature;
            uint256 at = 96 + 224 * i;
            (uint256 asset, uint256 price, uint256 ts, uint256 round) = (r.asset, r.price, r.timestamp, r.round);
            assembly ("memory-safe") {
                let p := add(out, at)
                mstore(p, asset)
                mstore(add(p, 32), price)
                mstore(add(p, 64), ts)
                mstore(add(p, 96), round)
                mstore(add(p, 128), mload(add(sig, 32)))
                mstore(add(p, 160), mload(add(sig, 64)))
                mstore(add(p, 192), byte(0, mload(add(sig, 96))))
            }
        }
        return keccak256(out);
    }

    // ------------------------------------------------------------------------ multiproof

    /// @dev The markets root from leaves `h` at ascending distinct indices `idx`, hashing level
    ///      by level: a node whose sibling is also known pairs with it, any other takes the next
    ///      sibling of the proof, which is `siblings[next]` when its bit in `present` is set
    ///      and the empty subtree of its height otherwise (clearline/watchtower/mark_witness.py
    ///      builds them in this order). Overwrites `idx` and `h`.
    function _multiRoot(uint256[] memory idx, bytes32[] memory h, bytes32[] calldata siblings, uint256[] calldata present)
        private
        pure
        returns (bytes32)
    {
        bytes memory zs = SparseMerkle.ZERO_HASHES;
        uint256 n = idx.length;
        uint256 bit;
        uint256 given;
        for (uint256 level = 0; level < MARKETS_DEPTH; ++level) {
            uint256 out;
            for (uint256 i = 0; i < n;) {
                uint256 a = idx[i];
                bytes32 left;
                bytes32 right;
                if (a & 1 == 0 && i + 1 < n && idx[i + 1] == a + 1) {
                    (left, right) = (h[i], h[i + 1]);
                    i += 2;
                } else {
                    bytes32 sib;
                    if ((present[bit >> 8] >> (bit & 255)) & 1 == 1) {
                        sib = siblings[given++];
                    } else {
                        assembly ("memory-safe") {
                            sib := mload(add(add(zs, 32), mul(level, 32)))
                        }
                    }
                    ++bit;
                    (left, right) = a & 1 == 0 ? (h[i], sib) : (sib, h[i]);
                    ++i;
                }
                idx[out] = a >> 1;
                bytes32 parent;
                assembly ("memory-safe") {
                    let m := mload(0x40) // scratch, not allocated: 0x01 || left || right
                    mstore(m, shl(248, 1))
                    mstore(add(m, 1), left)
                    mstore(add(m, 33), right)
                    parent := keccak256(m, 65)
                }
                h[out] = parent;
                ++out;
            }
            n = out;
        }
        if (given != siblings.length) revert WitnessShape();
        return h[0];
    }

    function _copy(uint256[] memory a) private pure returns (uint256[] memory b) {
        b = new uint256[](a.length);
        for (uint256 i = 0; i < a.length; ++i) {
            b[i] = a[i];
        }
    }
}

/// @notice The OracleVerifier as the MarkVerifier calls it.
/// @notice The FraudVerifier's strict chunk decoder, as `judgeNonces` calls it back.
interface IChunkDecoder {
    function decodeChunk(bytes calldata chunk, uint256 k, uint256 target)
        external
        pure
        returns (uint256 l1Before, uint256 at, uint256 l1TotalOrTime, uint256 count);
}

interface IOracle {
    function aggregateSigned(
        uint256 chainId,
        address verifyingContract,
        OracleConfigIn calldata cfg,
        OracleStateIn calldata st,
        ReportIn[] calldata reports,
        uint64 nowMs
    )
        external
        pure
        returns (uint8 rejectCode, uint8 outcome, OracleStateIn memory next, uint64 medianPrice, uint256 usedCount);
}
