// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccountLeaf, AccountLeafLib} from "./AccountLeaf.sol";
import {EscapeAccount, EscapeLib, EscapeMarket, EscapePosition, EscapeState, MarketLeaf} from "./Escape.sol";
import {IMarginVerifier, MarginWitness, UnderlyingWitness} from "./MarginWitness.sol";
import {
    MarketWords,
    W_ASK_HEAD,
    W_BID_HEAD,
    W_INDEX,
    W_KIND,
    W_LOT_SIZE,
    W_MARK,
    W_OPEN_INTEREST,
    W_TICK_SIZE,
    W_UNDERLYING
} from "./MarketWords.sol";
import {REASON_REJECTED, REASON_WRONG_POST_ROOT} from "./Reasons.sol";
import {SparseMerkle} from "./SparseMerkle.sol";

/// @notice The incoming (taker) order while it matches: what one meeting needs of it.
struct MatchTaker {
    uint32 account;
    uint8 side; //        0 buy (meets the asks), 1 sell (meets the bids)
    uint64 limit; //      ticks
    uint64 remaining; //  lots still to match, > 0
    uint8 stp; //         self-trade prevention: 0 cancel resting, 1 cancel taker, 2 cancel both
    bool reduceOnly;
}

/// @notice One meeting to re-execute: the state before it, the instrument, the taker, the time.
struct MatchCall {
    EscapeState pre;
    uint32 instrument;
    MatchTaker taker;
    uint64 timeMs;
}

/// @notice The leaves one meeting reads and writes, with compressed proofs.
struct MatchWitness {
    bytes market; //              the instrument's market leaf, against pre.marketsRoot
    uint256 marketPresent;
    bytes32[] marketSiblings;
    bytes maker; //               the order at the head of the side the taker meets ("" when
    uint256 makerPresent; //      there is none), at its id against pre.ordersRoot
    bytes32[] makerSiblings;
    bytes makerAccount; //        the maker's account leaf, against pre.accountsRoot
    uint256 makerAccountPresent;
    bytes32[] makerAccountSiblings;
    bytes takerAccount; //        the taker's account leaf, against the accounts root after the
    uint256 takerAccountPresent; // maker's leaf is written (pre.accountsRoot when it is not)
    bytes32[] takerAccountSiblings;
    MarginWitness margin; //      the market leaves of both accounts' positions and the
    //                            instrument (ascending, each once), and their underlyings,
    //                            against pre.marketsRoot; empty when no gate needs a health
    bytes underlying; //          options: the underlying leaf of the instrument (fee index),
    uint256 underlyingPresent; // against pre.marketsRoot; "" for perpetuals
    bytes32[] underlyingSiblings;
}

/// @notice What the meeting did. `met` false: the side the taker meets is empty or its head
///         does not cross the limit (matching ends, nothing changed). `makerReason` is the
///         CloseReason of the resting order when it left the book, NONE (255) when it stays.
struct MatchResult {
    bool met;
    uint64 filled;
    uint8 stop; //        CloseReason that ends the taker's matching (0: none)
    uint8 makerReason;
    EscapeState post;
}

/// @notice One MatchStep to re-execute: the state before it (the pending order's leaf at id
///         nextOrderId - 1 in its orders tree) and the step's time (the order's: pre.timeMs).
struct StepCall {
    EscapeState pre;
    uint64 timeMs;
}

/// @notice The leaves one MatchStep reads and writes. Orders-tree proofs are sequential: the
///         meeting's maker against pre.ordersRoot; `pending`, `head` and `next` against the orders
///         root after the meeting (the meeting never writes them); `prev` against the root after
///         the pending order's own leaf is written.
struct StepWitness {
    bytes pending; //          the pending order's leaf (PENDING_ORDER_TAG) at nextOrderId - 1
    uint256 pendingPresent;
    bytes32[] pendingSiblings;
    MatchWitness meeting; //   the one meeting, as for meet (taker: the pending order)
    bytes head; //             the opposite side's head after the meeting ("" when there is none,
    uint256 headPresent; //    or when the order is filled or stopped): crosses or not
    bytes32[] headSiblings;
    bytes next; //             a remainder that rests: the order it goes before (its own side's
    uint256 nextPresent; //    head, or prev's next), strictly worse; "" when there is none
    bytes32[] nextSiblings;
    bytes prev; //             a remainder that rests: the last order of its side at a price at
    uint256 prevPresent; //    least as good, whose next it takes; "" when it becomes the head
    bytes32[] prevSiblings;
}

/// @notice KIND_MATCH_STEP's witness (MatchVerifier.judgeStep): the pre-state, the leaf at id
///         nextOrderId - 1 ("" for an empty one) with its proof against pre.ordersRoot, and, for
///         a step of a pending order, what `step` reads.
struct StepProof {
    EscapeState pre;
    bytes leaf;
    uint256 present;
    bytes32[] siblings;
    StepWitness step;
}

/// @notice What the step did: the meeting's outcome (as MatchResult), how the order ends
///         (`end`: 0 still matching, 1 filled, 2 rested, 3 closed with `reason`, a CloseReason;
///         `reason` 255 unless closed), its remaining lots after the step, the post-state.
struct StepResult {
    bool met;
    uint64 filled;
    uint8 stop;
    uint8 makerReason;
    uint8 end;
    uint8 reason;
    uint64 remaining;
    EscapeState post;
}

/// @title MatchVerifier
/// @notice One meeting of an incoming order with the head of the book's opposite side,
///         re-executed on L1 exactly as clearline.core.matching.plan_match (one resting order
///         met) and clearline.core.ledger.settle_plan do, with each gate evaluated on the state
///         before the meeting:
///
///         1. the head (market leaf bidHead / askHead, then the order leaf at that id) must cross
///            the taker's limit, else nothing is met;
///         2. a resting order past its own expiry is cancelled (EXPIRED);
///         3. a resting order of the taker's owner: stp 0 cancels it (SELF_TRADE), 1 stops the
///            taker, 2 does both;
///         4. the maker's gate for min(its remaining, the taker's): 0 cancels it (REDUCE_ONLY or
///            INSUFFICIENT_MARGIN), a reduce-only cap fills that much and cancels the rest;
///         5. the taker's gate for what the maker admits: 0 stops the taker; less fills that much
///            (if the maker's gate admits it) and stops;
///         6. the fill at the resting order's price: both positions (realised P&L, flips, closes),
///            fees (options: on the underlying notional at the index, capped at 1/8 of the
///            premium) to the fee pool, open interest, the resting order reduced or removed (the
///            head moves to its next).
///
///         A gate (clearline.core.margin.MarginGate.check): a new position beyond 32 is refused;
///         reduce-only admits at most the reducible size; a reduction at a price no worse than the
///         mark is admitted; else the account's health with the fill and its fee applied
///         (MarginVerifier.healthAfter, over market leaves proven once for both accounts) must
///         keep equity >= 0 (a reduction) or >= the initial requirement. `step` re-executes one
///         MatchStep of batch data v3 (an empty chunk) around `meet`; `judgeStep` is the
///         FraudVerifier's KIND_MATCH_STEP (docs/fraud-proofs.md, "Orders in steps").
contract MatchVerifier {
    bytes32 internal constant ORDER_TAG = keccak256("clearline.order.v1");
    bytes32 internal constant PENDING_ORDER_TAG = keccak256("clearline.pending-order.v1");
    bytes32 internal constant STATE_TAG = keccak256("clearline.state.v1");
    uint256 internal constant MAX_MAKERS_PER_ORDER = 16;
    uint8 internal constant GTT = 1; //   time in force: GTC (0) and GTT (1) rest a remainder
    // StepResult.end
    uint8 internal constant END_MATCHING = 0;
    uint8 internal constant END_FILLED = 1;
    uint8 internal constant END_RESTED = 2;
    uint8 internal constant END_CLOSED = 3;
    bytes32 internal constant UNDERLYING_TAG = keccak256("clearline.underlying.v1");
    uint256 internal constant ORDERS_DEPTH = 48;
    uint256 internal constant ACCOUNTS_DEPTH = 32;
    uint256 internal constant MARKETS_DEPTH = 24;
    uint256 internal constant UNDERLYING_BASE = 1 << 23;
    uint256 internal constant ORDER_BYTES = 14 * 32;
    uint256 internal constant MAX_POSITIONS = 32;
    int256 internal constant PPM = 1e6;
    int256 internal constant UNDERLYING_ATOMS = 1e8;
    uint256 internal constant OPTION = 1;
    uint8 internal constant BUY = 0;
    uint8 internal constant REDUCE_ONLY_FLAG = 2;
    // CloseReason (clearline.core.matching)
    uint8 internal constant FILLED = 0;
    uint8 internal constant EXPIRED = 2;
    uint8 internal constant SELF_TRADE = 3;
    uint8 internal constant INSUFFICIENT_MARGIN = 4;
    uint8 internal constant REDUCE_ONLY = 5;
    uint8 internal constant IOC_REMAINDER = 6;
    uint8 internal constant NO_LIQUIDITY = 8;
    uint8 internal constant MAKER_LIMIT = 12;
    uint8 internal constant NONE = 255;

    error BadMatchWitness(uint256 which);
    /// @notice A StepWitness leaf that does not fit (0 pending, 1 head, 2 next, 3 prev).
    error BadStepWitness(uint256 which);
    /// @notice A step is re-executed at its order's time (the state's), as the core requires.
    error StepAtOtherTime(uint64 timeMs, uint64 orderTimeMs);
    /// @notice KIND_MATCH_STEP on a chunk that holds transactions while no order is pending.
    error NotAStepChunk();

    IMarginVerifier public immutable margin;

    constructor(IMarginVerifier margin_) {
        margin = margin_;
    }

    /// @dev The resting order met (its leaf's fields that matter).
    struct Maker {
        uint256 id;
        uint256 account;
        int256 price;
        uint256 remaining;
        uint256 expiry;
        bool reduceOnly;
        uint256 next;
    }

    /// @dev What every gate and the fill read.
    struct Ctx {
        bytes market; //        the market leaf (memory copy; written last)
        bytes32 marketsRoot; // pre.marketsRoot, which the margin witness proves against
        bool proven; //         the margin witness's leaves are proven (on the first health)
        uint256[] ids; //       its market leaves' instruments, ascending
        uint256[] at; //        where each leaf is in the calldata (1408 static bytes)
        uint256[] indices; //   the index (usd6) of each one's underlying (0: none given)
        uint32 instrument;
        int256 price; //        the resting order's price
        int256 mark;
        int256 tickValue;
        int256 index; //        options: the underlying's index (usd6); 0 otherwise
        bool option;
        int256 lotSize;
        int256 fundingIndex;
    }

    /// @notice Re-execute one meeting (see the contract notice). Reverts when a leaf or proof
    ///         does not fit the pre-state (the prover's mistake, never a verdict).
    function meet(MatchCall calldata c, MatchWitness calldata w) external view returns (MatchResult memory r) {
        (r,) = _meet(c.pre, c.instrument, c.taker, c.timeMs, w);
    }

    /// @notice Re-execute one MatchStep (clearline.core.order_steps.match_step): the pending
    ///         order at id pre.nextOrderId - 1 meets the head of the opposite side once (as meet),
    ///         then, when done, ends in the same step: filled or stopped (its leaf emptied), the
    ///         opposite head no longer crossing (a GTC/GTT remainder rests at its id in its own
    ///         side's priority list, an IOC/FOK one is closed), MAX_MAKERS_PER_ORDER met (closed,
    ///         MAKER_LIMIT); else its leaf is rewritten with the lots left and one more maker met.
    ///         Reverts when a leaf or proof does not fit (the prover's mistake, never a verdict).
    function step(StepCall calldata c, StepWitness calldata w) external view returns (StepResult memory s) {
        if (c.timeMs != c.pre.timeMs) revert StepAtOtherTime(c.timeMs, c.pre.timeMs);
        return _step(c.pre, c.timeMs, w);
    }

    /// @notice KIND_MATCH_STEP (FraudVerifier): the chunk between `preRoot` and `postRoot` is a
    ///         matching step (`chunkLength` 0) or not, judged by the leaf at id nextOrderId - 1
    ///         of the pre-state: a step with no order pending, or any other transaction while one
    ///         is (the core: NO_ORDER_MATCHING, ORDER_MATCHING), is REASON_REJECTED; a step of a
    ///         pending order is re-executed (`_step`, at the state's time: an empty chunk has no
    ///         time of its own) and REASON_WRONG_POST_ROOT when its post-state is not `postRoot`.
    ///         0 otherwise; a chunk that is not empty with no order pending is not this kind's
    ///         (reverts NotAStepChunk). `witness` is abi.encode(StepProof), read in place.
    function judgeStep(bytes32 preRoot, bytes32 postRoot, uint256 chunkLength, bytes calldata witness)
        external
        view
        returns (uint256)
    {
        StepProof calldata w;
        assembly ("memory-safe") {
            w := add(witness.offset, calldataload(witness.offset))
        }
        if (keccak256(abi.encode(STATE_TAG, w.pre)) != preRoot) revert BadStepWitness(4);
        uint256 id = w.pre.nextOrderId - 1; // nextOrderId >= 1: ids start at 1
        bytes calldata leaf = w.leaf;
        bytes32 h = leaf.length == 0 ? bytes32(0) : keccak256(leaf);
        if (SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, id, h, w.present, w.siblings) != w.pre.ordersRoot) {
            revert BadStepWitness(4);
        }
        bool pending = leaf.length == ORDER_BYTES && bytes32(leaf[0:32]) == PENDING_ORDER_TAG;
        if (chunkLength != 0) {
            if (!pending) revert NotAStepChunk();
            return REASON_REJECTED;
        }
        if (!pending) return REASON_REJECTED;
        StepResult memory s = _step(w.pre, w.pre.timeMs, w.step);
        return keccak256(abi.encode(STATE_TAG, s.post)) != postRoot ? REASON_WRONG_POST_ROOT : 0;
    }

    function _step(EscapeState calldata pre, uint64 timeMs, StepWitness calldata w)
        private
        view
        returns (StepResult memory s)
    {
        bytes calldata p = w.pending;
        uint256 oid = pre.nextOrderId;
        if (oid == 0 || p.length != ORDER_BYTES || bytes32(p[0:32]) != PENDING_ORDER_TAG || _at(p, 1) != oid - 1) {
            revert BadStepWitness(0);
        }
        oid -= 1;
        MatchTaker memory t = MatchTaker(
            uint32(_at(p, 2)), uint8(_at(p, 4)), uint64(_at(p, 8)), uint64(_at(p, 10)), uint8(_at(p, 7)),
            _at(p, 6) & REDUCE_ONLY_FLAG != 0
        );
        uint32 inst = uint32(_at(p, 3));
        (MatchResult memory r, bytes memory m) = _meet(pre, inst, t, timeMs, w.meeting);
        bytes32 orders = r.post.ordersRoot; // after the meeting, which never writes the pending leaf
        if (SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, oid, keccak256(p), w.pendingPresent, w.pendingSiblings)
                != orders) revert BadStepWitness(0);
        s.met = r.met;
        s.filled = r.filled;
        s.stop = r.stop;
        s.makerReason = r.makerReason;
        s.reason = NONE;
        uint256 remaining = uint256(t.remaining) - r.filled;
        s.remaining = uint64(remaining);
        uint256 met = _at(p, 13) + 1;
        bool isBuy = t.side == BUY;
        bytes32 leaf; // the order's leaf after the step (0: emptied)
        if (remaining == 0) {
            s.end = END_FILLED;
        } else if (r.stop != 0) {
            (s.end, s.reason) = (END_CLOSED, r.stop);
        } else if (!_crosses(w, m, orders, inst, isBuy, t.limit)) {
            if (_at(p, 5) <= GTT) {
                s.end = END_RESTED;
                leaf = _restLeaf(w, m, orders, inst, isBuy, t.limit, remaining);
            } else {
                (s.end, s.reason) = (END_CLOSED, remaining < _at(p, 9) ? IOC_REMAINDER : NO_LIQUIDITY);
            }
        } else if (met == MAX_MAKERS_PER_ORDER) {
            (s.end, s.reason) = (END_CLOSED, MAKER_LIMIT);
        } else {
            bytes memory q = p;
            assembly ("memory-safe") {
                mstore(add(q, 352), remaining) // word 10: remaining
                mstore(add(q, 448), met) //       word 13: makers met
            }
            leaf = keccak256(q);
        }
        r.post.ordersRoot = SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, oid, leaf, w.pendingPresent, w.pendingSiblings);
        if (s.end == END_RESTED) {
            if (w.prev.length == 0) { // the new head of its side
                MarketWords.set(m, isBuy ? W_BID_HEAD : W_ASK_HEAD, oid);
                r.post.marketsRoot = MarketWords.root(inst, m, w.meeting.marketPresent, w.meeting.marketSiblings);
            } else { // the order before it takes it as its next
                uint256 pid = _at(w.prev, 1);
                if (pid == oid || _orderLeaf(w.prev, pid, r.post.ordersRoot, w.prevPresent, w.prevSiblings, inst, isBuy) == 0) {
                    revert BadStepWitness(3);
                }
                bytes memory b = w.prev;
                assembly ("memory-safe") {
                    mstore(add(b, 448), oid) // word 13: next
                }
                r.post.ordersRoot =
                    SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, pid, keccak256(b), w.prevPresent, w.prevSiblings);
            }
        }
        s.post = r.post;
    }

    /// @dev Whether the opposite side's head after the meeting (market leaf `m`) still crosses
    ///      the limit: none does not; else its leaf (`w.head`, proven against `orders`) tells.
    function _crosses(StepWitness calldata w, bytes memory m, bytes32 orders, uint32 inst, bool isBuy, uint64 limit)
        private
        pure
        returns (bool)
    {
        uint256 head = MarketWords.word(m, isBuy ? W_ASK_HEAD : W_BID_HEAD);
        if (head == 0) return false;
        uint256 price = _orderLeaf(w.head, head, orders, w.headPresent, w.headSiblings, inst, !isBuy);
        if (price == 0) revert BadStepWitness(1);
        return isBuy ? price <= limit : price >= limit;
    }

    /// @dev The leaf hash of the remainder resting at its id (the pending leaf under ORDER_TAG,
    ///      with its lots left and its next): after `w.prev`, whose price is at least as good
    ///      (checked here; its proof once the remainder is written), or as the head when there is
    ///      no prev; before `w.next` (prev's next, or the side's head), strictly worse, or none.
    function _restLeaf(
        StepWitness calldata w,
        bytes memory m,
        bytes32 orders,
        uint32 inst,
        bool isBuy,
        uint64 limit,
        uint256 remaining
    ) private pure returns (bytes32) {
        uint256 nextId;
        if (w.prev.length == 0) {
            nextId = MarketWords.word(m, isBuy ? W_BID_HEAD : W_ASK_HEAD);
        } else {
            if (w.prev.length != ORDER_BYTES) revert BadStepWitness(3);
            uint256 pp = _at(w.prev, 8);
            if (isBuy ? pp < limit : pp > limit) revert BadStepWitness(3);
            nextId = _at(w.prev, 13);
        }
        if (nextId != 0) {
            uint256 np = _orderLeaf(w.next, nextId, orders, w.nextPresent, w.nextSiblings, inst, isBuy);
            if (np == 0 || (isBuy ? np >= limit : np <= limit)) revert BadStepWitness(2);
        }
        bytes memory q = w.pending;
        bytes32 tag = ORDER_TAG;
        assembly ("memory-safe") {
            mstore(add(q, 32), tag)
            mstore(add(q, 352), remaining) // word 10: remaining
            mstore(add(q, 448), nextId) //    word 13: next
        }
        return keccak256(q);
    }

    /// @dev A resting order's leaf `b` at `id` in the orders tree of root `root`, of instrument
    ///      `inst` on the buy side or not: its price (never 0), or 0 when it is not that.
    function _orderLeaf(
        bytes calldata b,
        uint256 id,
        bytes32 root,
        uint256 present,
        bytes32[] calldata siblings,
        uint32 inst,
        bool isBuy
    ) private pure returns (uint256) {
        if (
            b.length != ORDER_BYTES || bytes32(b[0:32]) != ORDER_TAG || _at(b, 1) != id || _at(b, 3) != inst
                || _at(b, 4) != (isBuy ? 0 : 1)
                || SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, id, keccak256(b), present, siblings) != root
        ) return 0;
        return _at(b, 8);
    }

    /// @dev Word `i` of an ABI-encoded leaf in calldata.
    function _at(bytes calldata b, uint256 i) private pure returns (uint256) {
        return uint256(bytes32(b[i * 32:i * 32 + 32]));
    }

    /// @dev One meeting (see the contract notice) from `pre`; also the market leaf after it.
    function _meet(EscapeState calldata pre, uint32 instrument, MatchTaker memory t, uint64 timeMs, MatchWitness calldata w)
        private
        view
        returns (MatchResult memory r, bytes memory m)
    {
        r.post = pre;
        r.makerReason = NONE;
        bool present;
        (m, present) = MarketWords.open(pre.marketsRoot, instrument, w.market, w.marketPresent, w.marketSiblings);
        if (!present) revert BadMatchWitness(0);
        bool isBuy = t.side == BUY;
        uint256 headWord = isBuy ? W_ASK_HEAD : W_BID_HEAD;
        uint256 head = MarketWords.word(m, headWord);
        if (head == 0) return (r, m);
        Maker memory o = _openMaker(pre.ordersRoot, instrument, w, head, isBuy);
        if (isBuy ? o.price > int256(uint256(t.limit)) : o.price < int256(uint256(t.limit))) return (r, m);
        r.met = true;
        if (o.expiry != 0 && timeMs >= o.expiry) {
            return (_closeMaker(instrument, w, r, m, o, headWord, EXPIRED), m);
        }
        AccountLeaf memory mk = AccountLeafLib.decode(w.makerAccount, o.account);
        if (_root(mk.id, keccak256(w.makerAccount), w.makerAccountPresent, w.makerAccountSiblings) != pre.accountsRoot) {
            revert BadMatchWitness(1);
        }
        AccountLeaf memory tk = AccountLeafLib.decode(w.takerAccount, t.account); // proven once its root is known
        if (mk.owner == tk.owner) {
            _checkTaker(w, pre.accountsRoot);
            if (t.stp != 1) r = _closeMaker(instrument, w, r, m, o, headWord, SELF_TRADE);
            if (t.stp != 0) r.stop = SELF_TRADE;
            return (r, m);
        }
        Ctx memory x = _ctx(pre.marketsRoot, instrument, w, m, o.price);
        int256 want = int256(o.remaining < t.remaining ? o.remaining : uint256(t.remaining));
        int256 mq = _gate(x, w, mk, !isBuy, want, o.reduceOnly, true);
        if (mq == 0) {
            _checkTaker(w, pre.accountsRoot);
            return (_closeMaker(instrument, w, r, m, o, headWord, o.reduceOnly ? REDUCE_ONLY : INSUFFICIENT_MARGIN), m);
        }
        int256 tq = _gate(x, w, tk, isBuy, mq, t.reduceOnly, false);
        uint8 cut = t.reduceOnly ? REDUCE_ONLY : INSUFFICIENT_MARGIN;
        if (tq == 0 || (tq < mq && _gate(x, w, mk, !isBuy, tq, o.reduceOnly, true) < tq)) {
            _checkTaker(w, pre.accountsRoot);
            r.stop = tq == 0 ? cut : INSUFFICIENT_MARGIN;
            return (r, m);
        }
        if (tq < mq) r.stop = cut;
        r.filled = uint64(uint256(tq));
        _fill(w, r, x, mk, tk, isBuy, tq);
        o.remaining -= uint256(tq);
        if (o.remaining == 0) {
            r.makerReason = FILLED;
        } else if (mq < want && tq == mq) {
            r.makerReason = REDUCE_ONLY; // the maker's reduce-only cap reached
        }
        _writeOrders(w, r, m, o, headWord);
        r.post.marketsRoot = MarketWords.root(instrument, m, w.marketPresent, w.marketSiblings);
    }

    // ------------------------------------------------------------------------------ the fill

    /// @dev Both trades and fees: the maker's leaf written against the pre-root, the taker's
    ///      against the root after it; the fee pool takes both fees.
    function _fill(
        MatchWitness calldata w,
        MatchResult memory r,
        Ctx memory x,
        AccountLeaf memory mk,
        AccountLeaf memory tk,
        bool isBuy,
        int256 q
    ) private pure {
        int256 makerFee = _fee(x, q, true);
        int256 takerFee = _fee(x, q, false);
        _trade(x, mk, isBuy ? -q : q);
        _trade(x, tk, isBuy ? q : -q);
        mk.collateral -= makerFee;
        tk.collateral -= takerFee;
        r.post.feePool += uint256(makerFee + takerFee); // fees are never negative (0 <= fee ppm, InstrumentSpec)
        bytes32 afterMaker = _root(mk.id, AccountLeafLib.hash(mk), w.makerAccountPresent, w.makerAccountSiblings);
        _checkTaker(w, afterMaker);
        r.post.accountsRoot = _root(tk.id, AccountLeafLib.hash(tk), w.takerAccountPresent, w.takerAccountSiblings);
    }

    /// @dev clearline.core.ledger.trade: move `d` lots (signed) at the maker's price into the
    ///      account's position, realising P&L on reductions; open interest follows.
    function _trade(Ctx memory x, AccountLeaf memory a, int256 d) private pure {
        EscapePosition[] memory ps = a.positions;
        uint256 i = 0;
        while (i < ps.length && ps[i].instrument < x.instrument) ++i;
        if (i == ps.length || ps[i].instrument != x.instrument) {
            ps = _insert(ps, i, EscapePosition(x.instrument, 0, 0, x.fundingIndex));
            a.positions = ps;
        }
        int256 s = ps[i].size;
        int256 q = ps[i].quote;
        int256 ns = s + d;
        int256 cash = -d * x.price * x.tickValue;
        if (s == 0 || (s > 0) == (d > 0)) {
            ps[i].quote = q + cash;
        } else if ((s > 0 && ns >= 0) || (s < 0 && ns <= 0)) {
            int256 kept = -_floorDiv(-q * ns, s); // basis kept, rounded so the realised credit rounds down
            a.collateral += q + cash - kept;
            ps[i].quote = kept;
        } else { // a flip: close all at the price, open the remainder
            a.collateral += q + s * x.price * x.tickValue;
            ps[i].quote = -ns * x.price * x.tickValue;
        }
        if (ns < type(int64).min || ns > type(int64).max) revert BadMatchWitness(10);
        ps[i].size = int64(ns);
        int256 oi = int256(MarketWords.word(x.market, W_OPEN_INTEREST)) + (ns > 0 ? ns : int256(0)) - (s > 0 ? s : int256(0));
        MarketWords.set(x.market, W_OPEN_INTEREST, uint256(oi));
        if (ns == 0) { // nothing left to carry a basis
            a.collateral += ps[i].quote;
            a.positions = _remove(ps, i);
        }
    }

    /// @dev clearline.core.ledger.fill_fee at the maker's price: ppm of the notional
    ///      (perpetuals, or options without an index), else ppm of the underlying notional at
    ///      the index, capped at 1/8 of the premium; rounded up.
    function _fee(Ctx memory x, int256 q, bool isMaker) private pure returns (int256) {
        int256 ppm = int256(int32(uint32(MarketWords.word(x.market, isMaker ? 9 : 10))));
        int256 premium = x.price * q * x.tickValue;
        if (!x.option || x.index <= 0) return EscapeLib.ceilDiv(premium * ppm, PPM);
        int256 u = EscapeLib.ceilDiv(q * x.index * x.lotSize, UNDERLYING_ATOMS);
        int256 fee = EscapeLib.ceilDiv(u * ppm, PPM);
        int256 cap = premium / 8;
        return fee < cap ? fee : cap;
    }

    // ------------------------------------------------------------------------------ the gate

    /// @dev clearline.core.margin.MarginGate.check on the state before the meeting: how many of
    ///      `qty` lots the account may trade now.
    function _gate(
        Ctx memory x,
        MatchWitness calldata w,
        AccountLeaf memory a,
        bool isBuy,
        int256 qty,
        bool reduceOnly,
        bool isMaker
    ) private view returns (int256) {
        EscapePosition[] memory ps = a.positions;
        uint256 i = 0;
        while (i < ps.length && ps[i].instrument < x.instrument) ++i;
        bool held = i < ps.length && ps[i].instrument == x.instrument;
        if (!held && ps.length >= MAX_POSITIONS) return 0;
        int256 size = held ? int256(ps[i].size) : int256(0);
        if (reduceOnly) {
            int256 reducible = isBuy ? -size : size;
            if (reducible <= 0) return 0;
            return qty <= reducible ? qty : reducible;
        }
        int256 d = isBuy ? qty : -qty;
        int256 ns = size + d;
        bool reducing = (size > 0 && 0 <= ns && ns < size) || (size < 0 && size < ns && ns <= 0);
        if (reducing && (isBuy ? x.price <= x.mark : x.price >= x.mark)) return qty;
        if (ns < type(int64).min || ns > type(int64).max) return 0; // no int64 position holds it
        if (!x.proven) _proveMarkets(x, w.margin);
        EscapeAccount memory e;
        e.id = a.id;
        e.owner = a.owner;
        e.subaccount = a.subaccount;
        e.collateral = a.collateral;
        e.nonce = a.nonce;
        e.marginMode = a.marginMode;
        e.flags = a.flags;
        e.positions = ps;
        int256 quote = (held ? ps[i].quote : int256(0)) - d * x.price * x.tickValue;
        (int256 equity, int256 initial) = _healthAfter(x, e, held, ns, quote, _fee(x, qty, isMaker));
        if (reducing) return equity >= 0 ? qty : int256(0);
        return equity >= initial ? qty : int256(0);
    }

    /// @dev Prove every market and underlying leaf of the margin witness against the
    ///      pre-state's markets root, once, and note each market's index price.
    function _proveMarkets(Ctx memory x, MarginWitness calldata mw) private pure {
        bytes memory zs = SparseMerkle.ZERO_HASHES;
        uint256 nu = mw.underlyings.length;
        bytes32[] memory symbols = new bytes32[](nu);
        uint256[] memory prices = new uint256[](nu);
        for (uint256 j = 0; j < nu; ++j) {
            UnderlyingWitness calldata u = mw.underlyings[j];
            bytes calldata leaf = u.leaf;
            if (
                leaf.length < 352 || bytes32(leaf[0:32]) != UNDERLYING_TAG || uint256(bytes32(leaf[32:64])) != u.id
                    || SparseMerkle.rootFromCompressedProof(
                        zs, MARKETS_DEPTH, UNDERLYING_BASE + uint256(u.id), keccak256(leaf), u.present, u.siblings
                    ) != x.marketsRoot
            ) revert BadMatchWitness(5);
            symbols[j] = bytes32(leaf[64:96]);
            prices[j] = uint256(bytes32(leaf[96:128]));
        }
        uint256 n = mw.markets.length;
        x.ids = new uint256[](n);
        x.at = new uint256[](n);
        x.indices = new uint256[](n);
        for (uint256 k = 0; k < n; ++k) {
            EscapeMarket calldata m = mw.markets[k];
            MarketLeaf calldata leaf = m.leaf;
            if (
                (k > 0 && leaf.id <= x.ids[k - 1])
                    || SparseMerkle.rootFromCompressedProof(
                        zs, MARKETS_DEPTH, leaf.id, EscapeLib.marketLeafHash(leaf), m.present, m.siblings
                    ) != x.marketsRoot
            ) revert BadMatchWitness(6);
            uint256 offset;
            assembly ("memory-safe") {
                offset := leaf
            }
            x.ids[k] = leaf.id;
            x.at[k] = offset;
            for (uint256 j = 0; j < nu; ++j) {
                if (symbols[j] == leaf.underlying) x.indices[k] = prices[j];
            }
        }
        x.proven = true;
    }

    /// @dev MarginVerifier.healthAfter(e, markets, indices, instrument, size, quote, fee) with
    ///      the markets of e's positions in their order (and the instrument's last when it is
    ///      not held), their leaves copied straight from the calldata of the proven witness
    ///      (the ABI encoder would re-encode each 44-word leaf field by field).
    function _healthAfter(Ctx memory x, EscapeAccount memory e, bool held, int256 size, int256 quote, int256 fee)
        private
        view
        returns (int256 equity, int256 initial)
    {
        EscapePosition[] memory ps = e.positions;
        uint256 n = ps.length + (held ? 0 : 1);
        uint256[] memory pick = new uint256[](n); // the witness leaf of each market, in order
        uint256 k = 0;
        for (uint256 j = 0; j < n; ++j) {
            uint256 inst = j < ps.length ? ps[j].instrument : x.instrument;
            if (j == ps.length) k = 0; // the instrument, appended last: search from the start
            while (k < x.ids.length && x.ids[k] < inst) ++k;
            if (k == x.ids.length || x.ids[k] != inst) revert BadMatchWitness(7);
            pick[j] = k;
        }
        bytes memory acct = abi.encode(e); // an offset word, then the account's tuple
        uint256 accountBytes = acct.length - 32;
        uint256 marketsAt = 7 * 32 + accountBytes; //     tail offsets, from the head's start
        uint256 indicesAt = marketsAt + 32 + n * 1408;
        bytes memory data = new bytes(4 + indicesAt + 32 + n * 32);
        bytes4 selector = IMarginVerifier.healthAfter.selector;
        uint256[] memory at = x.at;
        uint256[] memory indices = x.indices;
        uint32 instrument = x.instrument;
        assembly ("memory-safe") {
            let p := add(data, 32)
            mstore(p, selector)
            let h := add(p, 4)
            mstore(h, 224)
            mstore(add(h, 32), marketsAt)
            mstore(add(h, 64), indicesAt)
            mstore(add(h, 96), instrument)
            mstore(add(h, 128), size)
            mstore(add(h, 160), quote)
            mstore(add(h, 192), fee)
            mcopy(add(h, 224), add(acct, 64), accountBytes)
            let m := add(h, marketsAt)
            mstore(m, n)
            let q := add(m, 32)
            let ix := add(h, indicesAt)
            mstore(ix, n)
            for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                let kk := mload(add(add(pick, 32), mul(j, 32)))
                calldatacopy(add(q, mul(j, 1408)), mload(add(add(at, 32), mul(kk, 32))), 1408)
                mstore(add(add(ix, 32), mul(j, 32)), mload(add(add(indices, 32), mul(kk, 32))))
            }
        }
        (bool ok, bytes memory ret) = address(margin).staticcall(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        (equity, initial,) = abi.decode(ret, (int256, int256, int256));
    }

    // ------------------------------------------------------------------------------ leaves

    function _ctx(bytes32 marketsRoot, uint32 instrument, MatchWitness calldata w, bytes memory m, int256 price)
        private
        pure
        returns (Ctx memory x)
    {
        x.market = m;
        x.marketsRoot = marketsRoot;
        x.instrument = instrument;
        x.price = price;
        x.mark = int256(MarketWords.word(m, W_MARK));
        x.lotSize = int256(MarketWords.word(m, W_LOT_SIZE));
        x.tickValue = int256(MarketWords.word(m, W_TICK_SIZE)) * x.lotSize / UNDERLYING_ATOMS;
        x.fundingIndex = int256(MarketWords.word(m, W_INDEX));
        x.option = MarketWords.word(m, W_KIND) == OPTION;
        if (x.option) {
            bytes calldata u = w.underlying;
            if (
                u.length < 352 || bytes32(u[0:32]) != UNDERLYING_TAG
                    || bytes32(u[64:96]) != bytes32(MarketWords.word(m, W_UNDERLYING))
            ) revert BadMatchWitness(3);
            uint256 uid = uint256(bytes32(u[32:64]));
            if (
                SparseMerkle.rootFromCompressedProof(
                    MARKETS_DEPTH, UNDERLYING_BASE + uid, keccak256(u), w.underlyingPresent, w.underlyingSiblings
                ) != marketsRoot
            ) revert BadMatchWitness(3);
            x.index = int256(uint256(bytes32(u[96:128])));
        }
    }

    function _openMaker(bytes32 ordersRoot, uint32 instrument, MatchWitness calldata w, uint256 head, bool isBuy)
        private
        pure
        returns (Maker memory o)
    {
        bytes calldata b = w.maker;
        if (
            b.length != ORDER_BYTES || bytes32(b[0:32]) != ORDER_TAG || uint256(bytes32(b[32:64])) != head
                || SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, head, keccak256(b), w.makerPresent, w.makerSiblings)
                    != ordersRoot
        ) revert BadMatchWitness(4);
        // the head of the side the taker meets is a resting order of this instrument on that side
        if (uint256(bytes32(b[96:128])) != instrument || uint256(bytes32(b[128:160])) != (isBuy ? 1 : 0)) {
            revert BadMatchWitness(4);
        }
        o.id = head;
        o.account = uint256(bytes32(b[64:96]));
        o.reduceOnly = uint256(bytes32(b[192:224])) & REDUCE_ONLY_FLAG != 0;
        o.price = int256(uint256(bytes32(b[256:288])));
        o.remaining = uint256(bytes32(b[320:352]));
        o.expiry = uint256(bytes32(b[352:384]));
        o.next = uint256(bytes32(b[416:448]));
    }

    /// @dev The taker's leaf proves against `root` (the accounts root it is read from).
    function _checkTaker(MatchWitness calldata w, bytes32 root) private pure {
        uint256 id = uint256(uint32(bytes4(w.takerAccount[60:64])));
        if (_root(id, keccak256(w.takerAccount), w.takerAccountPresent, w.takerAccountSiblings) != root) {
            revert BadMatchWitness(2);
        }
    }

    /// @dev The resting order leaves the book without a fill (`reason`).
    function _closeMaker(
        uint32 instrument,
        MatchWitness calldata w,
        MatchResult memory r,
        bytes memory m,
        Maker memory o,
        uint256 headWord,
        uint8 reason
    ) private pure returns (MatchResult memory) {
        r.makerReason = reason;
        _writeOrders(w, r, m, o, headWord);
        r.post.marketsRoot = MarketWords.root(instrument, m, w.marketPresent, w.marketSiblings);
        return r;
    }

    /// @dev The resting order's leaf: emptied and unlinked (it was its side's head, so the head
    ///      moves to its next) when it left the book, else its remaining rewritten.
    function _writeOrders(
        MatchWitness calldata w,
        MatchResult memory r,
        bytes memory m,
        Maker memory o,
        uint256 headWord
    ) private pure {
        bytes32 leaf;
        if (r.makerReason != NONE) {
            MarketWords.set(m, headWord, o.next);
        } else {
            bytes memory b = w.maker;
            uint256 rem = o.remaining;
            assembly ("memory-safe") {
                mstore(add(b, 352), rem) // word 10: remaining
            }
            leaf = keccak256(b);
        }
        r.post.ordersRoot = SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, o.id, leaf, w.makerPresent, w.makerSiblings);
    }

    function _root(uint256 id, bytes32 leaf, uint256 present, bytes32[] calldata siblings) private pure returns (bytes32) {
        return SparseMerkle.rootFromCompressedProof(ACCOUNTS_DEPTH, id, leaf, present, siblings);
    }

    function _insert(EscapePosition[] memory ps, uint256 i, EscapePosition memory p)
        private
        pure
        returns (EscapePosition[] memory out)
    {
        out = new EscapePosition[](ps.length + 1);
        for (uint256 j = 0; j < out.length; ++j) {
            out[j] = j < i ? ps[j] : (j == i ? p : ps[j - 1]);
        }
    }

    function _remove(EscapePosition[] memory ps, uint256 i) private pure returns (EscapePosition[] memory out) {
        out = new EscapePosition[](ps.length - 1);
        for (uint256 j = 0; j < out.length; ++j) {
            out[j] = ps[j < i ? j : j + 1];
        }
    }

    /// @dev floor(a / b) for any sign of b (Python's a // b).
    function _floorDiv(int256 a, int256 b) private pure returns (int256 q) {
        q = a / b;
        if (a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
    }
}
