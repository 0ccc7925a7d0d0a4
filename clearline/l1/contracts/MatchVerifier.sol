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
///         keep equity >= 0 (a reduction) or >= the initial requirement. Not wired into a proof kind yet: the order steps that give each meeting
///         its own committed root come first (docs/fraud-proofs.md, "Order steps").
contract MatchVerifier {
    bytes32 internal constant ORDER_TAG = keccak256("clearline.order.v1");
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
    uint8 internal constant NONE = 255;

    error BadMatchWitness(uint256 which);

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
        r.post = c.pre;
        r.makerReason = NONE;
        (bytes memory m, bool present) =
            MarketWords.open(c.pre.marketsRoot, c.instrument, w.market, w.marketPresent, w.marketSiblings);
        if (!present) revert BadMatchWitness(0);
        bool isBuy = c.taker.side == BUY;
        uint256 headWord = isBuy ? W_ASK_HEAD : W_BID_HEAD;
        uint256 head = MarketWords.word(m, headWord);
        if (head == 0) return r;
        Maker memory o = _openMaker(c, w, head, isBuy);
        if (isBuy ? o.price > int256(uint256(c.taker.limit)) : o.price < int256(uint256(c.taker.limit))) return r;
        r.met = true;
        if (o.expiry != 0 && c.timeMs >= o.expiry) {
            return _closeMaker(c, w, r, m, o, headWord, EXPIRED);
        }
        AccountLeaf memory mk = AccountLeafLib.decode(w.makerAccount, o.account);
        if (_root(mk.id, keccak256(w.makerAccount), w.makerAccountPresent, w.makerAccountSiblings) != c.pre.accountsRoot) {
            revert BadMatchWitness(1);
        }
        AccountLeaf memory tk = AccountLeafLib.decode(w.takerAccount, c.taker.account); // proven once its root is known
        if (mk.owner == tk.owner) {
            _checkTaker(w, c.pre.accountsRoot);
            if (c.taker.stp != 1) r = _closeMaker(c, w, r, m, o, headWord, SELF_TRADE);
            if (c.taker.stp != 0) r.stop = SELF_TRADE;
            return r;
        }
        Ctx memory x = _ctx(c, w, m, o.price);
        int256 want = int256(o.remaining < c.taker.remaining ? o.remaining : uint256(c.taker.remaining));
        int256 mq = _gate(x, w, mk, !isBuy, want, o.reduceOnly, true);
        if (mq == 0) {
            _checkTaker(w, c.pre.accountsRoot);
            return _closeMaker(c, w, r, m, o, headWord, o.reduceOnly ? REDUCE_ONLY : INSUFFICIENT_MARGIN);
        }
        int256 tq = _gate(x, w, tk, isBuy, mq, c.taker.reduceOnly, false);
        uint8 cut = c.taker.reduceOnly ? REDUCE_ONLY : INSUFFICIENT_MARGIN;
        if (tq == 0 || (tq < mq && _gate(x, w, mk, !isBuy, tq, o.reduceOnly, true) < tq)) {
            _checkTaker(w, c.pre.accountsRoot);
            r.stop = tq == 0 ? cut : INSUFFICIENT_MARGIN;
            return r;
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
        _writeOrders(w, r, x.market, o, headWord);
        r.post.marketsRoot = MarketWords.root(c.instrument, x.market, w.marketPresent, w.marketSiblings);
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

    function _ctx(MatchCall calldata c, MatchWitness calldata w, bytes memory m, int256 price)
        private
        pure
        returns (Ctx memory x)
    {
        x.market = m;
        x.marketsRoot = c.pre.marketsRoot;
        x.instrument = c.instrument;
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
                ) != c.pre.marketsRoot
            ) revert BadMatchWitness(3);
            x.index = int256(uint256(bytes32(u[96:128])));
        }
    }

    function _openMaker(MatchCall calldata c, MatchWitness calldata w, uint256 head, bool isBuy)
        private
        pure
        returns (Maker memory o)
    {
        bytes calldata b = w.maker;
        if (
            b.length != ORDER_BYTES || bytes32(b[0:32]) != ORDER_TAG || uint256(bytes32(b[32:64])) != head
                || SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, head, keccak256(b), w.makerPresent, w.makerSiblings)
                    != c.pre.ordersRoot
        ) revert BadMatchWitness(4);
        // the head of the side the taker meets is a resting order of this instrument on that side
        if (uint256(bytes32(b[96:128])) != c.instrument || uint256(bytes32(b[128:160])) != (isBuy ? 1 : 0)) {
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
        MatchCall calldata c,
        MatchWitness calldata w,
        MatchResult memory r,
        bytes memory m,
        Maker memory o,
        uint256 headWord,
        uint8 reason
    ) private pure returns (MatchResult memory) {
        r.makerReason = reason;
        _writeOrders(w, r, m, o, headWord);
        r.post.marketsRoot = MarketWords.root(c.instrument, m, w.marketPresent, w.marketSiblings);
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
