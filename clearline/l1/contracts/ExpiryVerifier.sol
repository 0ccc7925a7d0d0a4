// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscapeLib, EscapePosition, EscapeState} from "./Escape.sol";
import {AccountLeaf, AccountLeafLib} from "./AccountLeaf.sol";
import {
    MarketWords,
    StepLeaves,
    W_ASK_HEAD,
    W_BID_HEAD,
    W_EXPIRY,
    W_FLOAT,
    W_KIND,
    W_LOT_SIZE,
    W_MARK,
    W_OPEN_INTEREST,
    W_OPTION_TYPE,
    W_SETTLEMENT_PRICE,
    W_STATUS,
    W_STRIKE,
    W_TICK_SIZE,
    W_UNDERLYING,
    W_UNPAID
} from "./MarketWords.sol";
import {SparseMerkle} from "./SparseMerkle.sol";
import {UnderlyingHead, UnderlyingLib, Window} from "./Underlying.sol";
import {REASON_REJECTED, REASON_WRONG_POST_ROOT} from "./Reasons.sol";

/// @notice What the MarkVerifier has already checked of a settlement step (the operator's
///         signature, the time) and what re-executing it needs.
struct ExpiryCall {
    EscapeState pre; //        the opened pre-state
    bytes32 postRoot; //       the committed post-root
    uint64 windowMs; //        ConsensusParams.settlementWindowMs
    uint32 feePpm; //          ConsensusParams.settlementFeePpm
    uint8 action; //           3 SETTLE_OPTION, 9 SETTLE_POSITION, 10 CLOSE_ORDER
    uint256 target; //         the option (3, 9) or the order id (10)
    uint256 arg; //            SETTLE_POSITION: the account
    uint256 timeMs;
}

/// @title ExpiryVerifier
/// @notice Re-executes the bounded expiry-settlement steps of clearline.core.operator on L1
///         and judges the committed post-root (30 if it is not the result, 31 when the core
///         rejects the step for a reason the leaves show, else 0):
///
///         SETTLE_OPTION(m): 31 unless m is an ACTIVE option at or past its expiry. The
///         underlying (whose symbol the option names) advances to the time; the expiry's
///         window gives the price acc / dt (a window that saw no time is frozen at the index:
///         acc = index, dt = 1); the option is DELISTED with settlementPrice = that price, mark
///         = its intrinsic value in ticks (rounded down, 0 if out of the money) and unpaidLots =
///         2 * openInterest; the window's open count drops and the last option removes it.
///         SETTLE_POSITION(m, a): 31 unless option m is being paid and account a holds it. The
///         position closes at m's mark: collateral += quote + payoff - fee, payoff = size *
///         mark * tickValue, fee (a long receiving a payoff) = min(ceil(ceil(size *
///         settlementPrice * lotSize / 1e8) * feePpm / 1e6), payoff / 8) to the fee pool; open
///         interest, unpaidLots and payFloat (-= payoff) follow.
///         CLOSE_ORDER(o): 31 when o is not open (at or above nextOrderId, or its leaf, at index
///         o of the orders tree, is empty), or its market is not DELISTED and its own expiry is
///         none or after the time; else its leaf is emptied and it leaves its side's priority
///         list: the market's head (bidHead / askHead) becomes o's next if o was the head, else
///         the order before it (the one whose next is o) takes o's next.
contract ExpiryVerifier {
    bytes32 internal constant STATE_TAG = keccak256("clearline.state.v1");
    bytes32 internal constant ORDER_TAG = keccak256("clearline.order.v1");
    uint256 internal constant MARKETS_DEPTH = 24;
    uint256 internal constant ORDERS_DEPTH = 48; // order ids are below 2**48 (clearline.core.state)
    uint256 internal constant ORDER_BYTES = 14 * 32; // an order leaf: tag, 12 fields, next
    uint256 internal constant NEXT_AT = 13 * 32; //    where its next order's id is
    uint256 internal constant UNDERLYING_BASE = 1 << 23;
    uint8 internal constant SETTLE_OPTION = 3;
    uint8 internal constant SETTLE_POSITION = 9;
    uint256 internal constant OPTION = 1;
    uint256 internal constant CALL = 1;
    uint256 internal constant DELISTED = 2;

    error BadExpiryWitness();

    /// @notice The verdict (0, 30 or 31) on one SETTLE_OPTION, SETTLE_POSITION or CLOSE_ORDER.
    function judge(ExpiryCall calldata c, StepLeaves calldata w) external pure returns (uint256) {
        EscapeState memory post = c.pre;
        post.timeMs = uint64(c.timeMs);
        bool ok;
        if (c.action == SETTLE_OPTION) {
            (ok, post.marketsRoot) = _settleOption(c, w);
        } else if (c.action == SETTLE_POSITION) {
            (ok, post.accountsRoot, post.marketsRoot, post.feePool) = _settlePosition(c, w);
        } else {
            (ok, post.ordersRoot, post.marketsRoot) = _closeOrder(c, w);
        }
        if (!ok) return REASON_REJECTED;
        return keccak256(abi.encode(STATE_TAG, post)) != c.postRoot ? REASON_WRONG_POST_ROOT : 0;
    }

    /// @dev SETTLE_OPTION: (accepted, new markets root).
    function _settleOption(ExpiryCall calldata c, StepLeaves calldata w) private pure returns (bool, bytes32) {
        if (c.target >= UNDERLYING_BASE) return (false, 0);
        (bytes memory m, bool present) = MarketWords.open(c.pre.marketsRoot, c.target, w.leaf, w.present, w.siblings);
        if (
            !present || MarketWords.word(m, W_KIND) != OPTION || MarketWords.word(m, W_STATUS) != 0 || c.timeMs < MarketWords.word(m, W_EXPIRY)
        ) return (false, 0);
        (bytes32 tag, UnderlyingHead memory u, Window[] memory ws) =
            abi.decode(w.leaf2, (bytes32, UnderlyingHead, Window[]));
        if (tag != UnderlyingLib.UNDERLYING_TAG || u.symbol != bytes32(MarketWords.word(m, W_UNDERLYING))) {
            revert BadExpiryWitness();
        }
        uint256 expiry = MarketWords.word(m, W_EXPIRY);
        UnderlyingLib.advance(u, ws, uint64(c.timeMs), c.windowMs);
        uint256 i = 0;
        while (i < ws.length && ws[i].expiry != expiry) ++i;
        if (i == ws.length || ws[i].open == 0) revert BadExpiryWitness(); // an active option always has one
        if (ws[i].dt == 0) (ws[i].acc, ws[i].dt) = (u.indexPrice, 1);
        uint256 s = ws[i].acc / ws[i].dt;
        uint256 tick = MarketWords.word(m, W_TICK_SIZE);
        uint256 strike = MarketWords.word(m, W_STRIKE) * tick;
        uint256 intrinsic = MarketWords.word(m, W_OPTION_TYPE) == CALL ? (s > strike ? s - strike : 0) : (strike > s ? strike - s : 0);
        MarketWords.set(m, W_STATUS, DELISTED);
        MarketWords.set(m, W_SETTLEMENT_PRICE, s);
        MarketWords.set(m, W_MARK, intrinsic / tick);
        MarketWords.set(m, W_UNPAID, 2 * MarketWords.word(m, W_OPEN_INTEREST));
        // the option's leaf first, then the underlying's against the tree holding the new option leaf
        bytes32 root = MarketWords.root(c.target, m, w.present, w.siblings);
        uint256 uIndex = UNDERLYING_BASE + u.id;
        if (SparseMerkle.rootFromCompressedProof(MARKETS_DEPTH, uIndex, keccak256(w.leaf2), w.present2, w.siblings2) != root)
        {
            revert BadExpiryWitness();
        }
        ws[i].open -= 1;
        if (ws[i].open == 0) ws = _without(ws, i);
        return (true, SparseMerkle.rootFromCompressedProof(MARKETS_DEPTH, uIndex, UnderlyingLib.leafHash(u, ws), w.present2, w.siblings2));
    }

    /// @dev SETTLE_POSITION: (accepted, new accounts root, new markets root, new fee pool).
    function _settlePosition(ExpiryCall calldata c, StepLeaves calldata w)
        private
        pure
        returns (bool ok, bytes32 accountsRoot, bytes32 marketsRoot, uint256 feePool)
    {
        if (c.target >= UNDERLYING_BASE) return (false, 0, 0, 0);
        (bytes memory m, bool present) = MarketWords.open(c.pre.marketsRoot, c.target, w.leaf, w.present, w.siblings);
        if (
            !present || MarketWords.word(m, W_KIND) != OPTION || MarketWords.word(m, W_UNPAID) == 0
                || c.arg >= c.pre.nextAccountId
        ) return (false, 0, 0, 0);
        (AccountLeaf memory acct, uint256 i) =
            AccountLeafLib.open(c.pre.accountsRoot, c.arg, w.leaf2, w.present2, w.siblings2, c.target);
        EscapePosition[] memory ps = acct.positions;
        if (i == ps.length) return (false, 0, 0, 0);
        int256 size = ps[i].size;
        int256 lot = int256(MarketWords.word(m, W_LOT_SIZE));
        int256 payoff = size * int256(MarketWords.word(m, W_MARK)) * (int256(MarketWords.word(m, W_TICK_SIZE)) * lot / 1e8);
        int256 fee = payoff > 0
            ? EscapeLib.settlementFee(size, int256(MarketWords.word(m, W_SETTLEMENT_PRICE)), lot, payoff, int256(uint256(c.feePpm)))
            : int256(0);
        acct.collateral += ps[i].quote + payoff - fee;
        if (size > 0) MarketWords.set(m, W_OPEN_INTEREST, MarketWords.word(m, W_OPEN_INTEREST) - uint256(size));
        int256 unpaid = int256(MarketWords.word(m, W_UNPAID)) - (size < 0 ? -size : size);
        int256 float_ = int256(MarketWords.word(m, W_FLOAT)) - payoff;
        if (unpaid < 0 || (unpaid == 0 && float_ != 0)) return (false, 0, 0, 0); // no valid state gets here
        MarketWords.set(m, W_UNPAID, uint256(unpaid));
        MarketWords.set(m, W_FLOAT, uint256(float_));
        EscapePosition[] memory rest = new EscapePosition[](ps.length - 1);
        for (uint256 j = 0; j < rest.length; ++j) {
            rest[j] = ps[j < i ? j : j + 1];
        }
        acct.positions = rest;
        accountsRoot = AccountLeafLib.root(acct, w.present2, w.siblings2);
        marketsRoot = MarketWords.root(c.target, m, w.present, w.siblings);
        return (true, accountsRoot, marketsRoot, c.pre.feePool + uint256(fee));
    }

    /// @dev CLOSE_ORDER: (accepted, new orders root, new markets root).
    function _closeOrder(ExpiryCall calldata c, StepLeaves calldata w) private pure returns (bool, bytes32, bytes32) {
        if (c.target >= c.pre.nextOrderId) return (false, 0, 0); // never placed
        if (w.index != c.target) revert BadExpiryWitness(); // an order's leaf sits at its id
        bytes calldata o = w.leaf;
        if (o.length == 0) { // not open: the leaf at its id is empty
            if (SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, w.index, bytes32(0), w.present, w.siblings)
                    != c.pre.ordersRoot) revert BadExpiryWitness();
            return (false, 0, 0);
        }
        if (
            o.length != ORDER_BYTES || bytes32(o[0:32]) != ORDER_TAG || uint256(bytes32(o[32:64])) != c.target
                || SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, w.index, keccak256(o), w.present, w.siblings)
                    != c.pre.ordersRoot
        ) revert BadExpiryWitness();
        uint256 instrument = uint256(bytes32(o[96:128]));
        (bytes memory m, bool present) = MarketWords.open(c.pre.marketsRoot, instrument, w.leaf2, w.present2, w.siblings2);
        if (!present) revert BadExpiryWitness(); // an open order's market is listed
        uint256 expiry = uint256(bytes32(o[352:384])); // the order's own good-till-time expiry
        if (MarketWords.word(m, W_STATUS) != DELISTED && (expiry == 0 || expiry > c.timeMs)) return (false, 0, 0);
        bytes32 ordersRoot = SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, w.index, bytes32(0), w.present, w.siblings);
        uint256 next = uint256(bytes32(o[NEXT_AT:NEXT_AT + 32]));
        uint256 head = uint256(bytes32(o[128:160])) == 0 ? W_BID_HEAD : W_ASK_HEAD; // by the order's side
        if (MarketWords.word(m, head) == c.target) { // the head: its next becomes the head
            MarketWords.set(m, head, next);
            return (true, ordersRoot, MarketWords.root(instrument, m, w.present2, w.siblings2));
        }
        // else the order before it takes its next (proven in the tree without o's leaf)
        bytes calldata p = w.leaf3;
        if (p.length != ORDER_BYTES || bytes32(p[0:32]) != ORDER_TAG || uint256(bytes32(p[NEXT_AT:NEXT_AT + 32])) != c.target) {
            revert BadExpiryWitness();
        }
        uint256 pid = uint256(bytes32(p[32:64]));
        if (SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, pid, keccak256(p), w.present3, w.siblings3) != ordersRoot) {
            revert BadExpiryWitness();
        }
        bytes memory q = p;
        assembly ("memory-safe") {
            mstore(add(add(q, 32), NEXT_AT), next)
        }
        return (true, SparseMerkle.rootFromCompressedProof(ORDERS_DEPTH, pid, keccak256(q), w.present3, w.siblings3),
            c.pre.marketsRoot);
    }

    function _without(Window[] memory ws, uint256 i) private pure returns (Window[] memory out) {
        out = new Window[](ws.length - 1);
        for (uint256 j = 0; j < out.length; ++j) {
            out[j] = ws[j < i ? j : j + 1];
        }
    }
}
