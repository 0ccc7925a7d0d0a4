// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscapeLib, EscapePosition, EscapeState} from "./Escape.sol";
import {AccountLeaf, AccountLeafLib} from "./AccountLeaf.sol";
import {
    MarketWords,
    StepLeaves,
    W_FLOAT,
    W_FUNDING_TIME,
    W_INDEX,
    W_KIND,
    W_LOT_SIZE,
    W_MARK,
    W_OPEN_INTEREST,
    W_PREMIUM_SUM,
    W_RATE,
    W_SAMPLES,
    W_SAMPLE_TIME,
    W_STATUS,
    W_TICK_SIZE,
    W_UNPAID
} from "./MarketWords.sol";
import {SparseMerkle} from "./SparseMerkle.sol";
import {REASON_REJECTED, REASON_WRONG_POST_ROOT} from "./Reasons.sol";

/// @notice What the MarkVerifier has already checked of a FUNDING_SETTLE or FUNDING_PAY
///         (the operator's signature, the time) and what re-executing it needs.
struct FundingCall {
    EscapeState pre; //        the opened pre-state
    bytes32 postRoot; //       the committed post-root
    uint64 intervalMs; //      ConsensusParams: funding interval and sample interval,
    uint64 sampleMs;
    int64 interestPpm; //      interest, premium clamp and cap per interval
    int64 clampPpm;
    int64 capPpm;
    uint8 action; //           7 FUNDING_SETTLE, 8 FUNDING_PAY
    uint256 target; //         the perpetual
    uint256 arg; //            FUNDING_PAY: the account
    uint256 timeMs;
}

/// @notice The witness of KIND_FUNDING_PENDING: the chunk's pre-state and a market leaf of it.
struct PendingWitness {
    EscapeState pre;
    bytes leaf; //             43 words
    uint256 present; //        its compressed proof against pre.marketsRoot
    bytes32[] siblings;
}

/// @title FundingVerifier
/// @notice Re-executes the two bounded funding steps of clearline.core.operator on L1, each
///         from one or two leaves, and judges the committed post-root:
///
///         FUNDING_SETTLE(m): 31 when the core rejects it for a reason m's leaf shows (no
///         perpetual there, not ACTIVE, no mark, no interval started, the interval not ended,
///         a premium sample still due, m's funding still being paid); else the market leaf
///         after it (rate = clamp(P + clamp(I - P, -clamp, clamp), -cap, cap) with P the
///         samples' mean rounded toward zero; fundingIndex += rate * mark * tickValue;
///         unpaidLots = 2 * openInterest when that move is not 0; samples cleared; the
///         interval advanced by whole intervals) gives the post-root, or 30.
///         FUNDING_PAY(m, a): 31 when m is not being paid, a is unknown, holds no position in m
///         or has been paid; else account a pays ceil(size * (m index - its index) / 1e6), its
///         position takes m's index, m's float takes the payment and its unpaid lots drop by
///         |size|, and the last payment moves the float to the insurance fund: the post-root, or 30.
///
///         While a market's holders are being paid (its funding, or an option's settlement:
///         unpaidLots > 0) the core accepts nothing but FUNDING_PAY and SETTLE_POSITION
///         (FUNDING_IN_PROGRESS); `judgePending` proves a chunk that breaks that rule from the
///         paying market's leaf. (A FUNDING_SETTLE of one market while another is being paid is
///         that rule's, not re-executed here.)
contract FundingVerifier {
    bytes32 internal constant STATE_TAG = keccak256("clearline.state.v1");
    bytes32 internal constant MARKET_TAG = keccak256("clearline.market.v1");
    uint256 internal constant MARKETS_DEPTH = 24;
    uint256 internal constant UNDERLYING_BASE = 1 << 23;
    uint256 internal constant LEAF_BYTES = 45 * 32;
    uint8 internal constant FUNDING_SETTLE = 7;
    uint8 internal constant FUNDING_PAY = 8;
    uint8 internal constant SETTLE_POSITION = 9;

    error BadFundingWitness();

    /// @notice The verdict (0, 30 or 31) on one FUNDING_SETTLE or FUNDING_PAY.
    function judge(FundingCall calldata c, StepLeaves calldata w) external pure returns (uint256) {
        if (c.target >= UNDERLYING_BASE) return REASON_REJECTED; // no market has such an id
        (bytes memory m, bool present) = _market(c, w);
        if (!present) return REASON_REJECTED; // UNKNOWN_INSTRUMENT / nothing being paid
        EscapeState memory post = c.pre;
        post.timeMs = uint64(c.timeMs);
        if (c.action == FUNDING_SETTLE) {
            if (!_settle(c, m)) return REASON_REJECTED;
        } else {
            if (MarketWords.word(m, W_UNPAID) == 0 || c.arg >= c.pre.nextAccountId) return REASON_REJECTED;
            bool paid;
            (paid, post.accountsRoot, post.insuranceFund) = _pay(c, m, w);
            if (!paid) return REASON_REJECTED;
        }
        post.marketsRoot = _marketRoot(c, m, w);
        return keccak256(abi.encode(STATE_TAG, post)) != c.postRoot ? REASON_WRONG_POST_ROOT : 0;
    }

    /// @notice 31 when the chunk (strictly valid, walked by the FraudVerifier) is not one
    ///         packed FUNDING_PAY or SETTLE_POSITION while the market leaf in `witness` (abi.encode(PendingWitness),
    ///         proven against the chunk's pre-root) is being paid (unpaidLots > 0): the core
    ///         accepts nothing else then. 0 otherwise.
    function judgePending(bytes32 preRoot, bytes calldata chunk, bytes calldata witness)
        external
        pure
        returns (uint256)
    {
        if (witness.length < 32) revert BadFundingWitness();
        PendingWitness calldata w;
        assembly ("memory-safe") {
            w := add(witness.offset, calldataload(witness.offset))
        }
        if (keccak256(abi.encode(STATE_TAG, w.pre)) != preRoot) revert BadFundingWitness();
        bytes memory leaf = w.leaf;
        if (leaf.length != LEAF_BYTES || MarketWords.word(leaf, 0) != uint256(MARKET_TAG)) revert BadFundingWitness();
        uint256 id = MarketWords.word(leaf, 1);
        if (
            SparseMerkle.rootFromCompressedProof(MARKETS_DEPTH, id, keccak256(leaf), w.present, w.siblings)
                != w.pre.marketsRoot
        ) revert BadFundingWitness();
        if (MarketWords.word(leaf, W_UNPAID) == 0) return 0;
        return _isPayStep(chunk) ? 0 : REASON_REJECTED;
    }

    /// @dev Whether the chunk's first transaction is a packed OperatorAction (head kind 8)
    ///      whose action byte is FUNDING_PAY or SETTLE_POSITION (the steps accepted while
    ///      holders are being paid): head, [u time delta when bit 7], action.
    function _isPayStep(bytes calldata d) private pure returns (bool) {
        if (d.length == 0) return false;
        uint256 head = uint8(d[0]);
        if (head == 0xFF || head & 0x0F != 8) return false;
        uint256 p = 1;
        if (head & 0x80 != 0) {
            while (p < d.length && uint8(d[p]) & 0x80 != 0) ++p;
            ++p;
        }
        return p < d.length && (uint8(d[p]) == FUNDING_PAY || uint8(d[p]) == SETTLE_POSITION);
    }

    /// @dev The target's market leaf, proven against the pre-state (MarketWords.open).
    function _market(FundingCall calldata c, StepLeaves calldata w) private pure returns (bytes memory, bool) {
        return MarketWords.open(c.pre.marketsRoot, c.target, w.leaf, w.present, w.siblings);
    }

    function _marketRoot(FundingCall calldata c, bytes memory m, StepLeaves calldata w)
        private
        pure
        returns (bytes32)
    {
        return MarketWords.root(c.target, m, w.present, w.siblings);
    }

    /// @dev FUNDING_SETTLE on the leaf `m` (in place); false when the core rejects it.
    function _settle(FundingCall calldata c, bytes memory m) private pure returns (bool) {
        uint256 t = c.timeMs;
        uint256 start = MarketWords.word(m, W_FUNDING_TIME);
        uint256 mark = MarketWords.word(m, W_MARK);
        if (
            MarketWords.word(m, W_KIND) != 0 || MarketWords.word(m, W_STATUS) != 0 || mark == 0 || start == 0 || t < start + c.intervalMs
                || MarketWords.word(m, W_UNPAID) != 0 || _sampleDue(c, m, t, start)
        ) return false;
        int256 samples = int256(MarketWords.word(m, W_SAMPLES));
        int256 sum = _signed(m, W_PREMIUM_SUM);
        int256 avg = samples == 0 ? int256(0) : sum / samples; // toward zero, as funding.average
        int256 adj = _clamp(int256(c.interestPpm) - avg, c.clampPpm);
        int256 rate = _clamp(avg + adj, c.capPpm);
        int256 tickValue = int256(MarketWords.word(m, W_TICK_SIZE) * MarketWords.word(m, W_LOT_SIZE) / 1e8);
        int256 step = rate * int256(mark) * tickValue;
        MarketWords.set(m, W_INDEX, uint256(_signed(m, W_INDEX) + step));
        MarketWords.set(m, W_RATE, uint256(rate));
        MarketWords.set(m, W_PREMIUM_SUM, 0);
        MarketWords.set(m, W_SAMPLES, 0);
        MarketWords.set(m, W_FUNDING_TIME, start + (t - start) / c.intervalMs * c.intervalMs);
        if (step != 0) MarketWords.set(m, W_UNPAID, 2 * MarketWords.word(m, W_OPEN_INTEREST));
        return true;
    }

    /// @dev clearline.core.operator.funding_sample_due: a sample slot not taken yet (at most
    ///      interval / sample of them) and a whole sample interval since the last sample.
    function _sampleDue(FundingCall calldata c, bytes memory m, uint256 t, uint256 start) private pure returns (bool) {
        uint256 slot = (t - start) / c.sampleMs;
        uint256 slots = c.intervalMs / c.sampleMs;
        if (slot > slots) slot = slots;
        return slot > MarketWords.word(m, W_SAMPLES) && t - MarketWords.word(m, W_SAMPLE_TIME) >= c.sampleMs;
    }

    /// @dev FUNDING_PAY of account c.arg on the leaf `m` (in place): (paid, new accounts root,
    ///      new insurance fund); paid = false when the core rejects it.
    function _pay(FundingCall calldata c, bytes memory m, StepLeaves calldata w)
        private
        pure
        returns (bool, bytes32, uint256)
    {
        (AccountLeaf memory acct, uint256 i) =
            AccountLeafLib.open(c.pre.accountsRoot, c.arg, w.leaf2, w.present2, w.siblings2, c.target);
        int256 index = _signed(m, W_INDEX);
        EscapePosition[] memory ps = acct.positions;
        if (i == ps.length || ps[i].fundingIndex == index) return (false, 0, 0);
        int256 size = ps[i].size;
        int256 pay = EscapeLib.fundingPayment(size, index - ps[i].fundingIndex);
        ps[i].fundingIndex = index;
        acct.collateral -= pay;
        int256 unpaid = int256(MarketWords.word(m, W_UNPAID)) - (size < 0 ? -size : size);
        int256 float_ = _signed(m, W_FLOAT) + pay;
        uint256 insurance = c.pre.insuranceFund;
        if (unpaid < 0) return (false, 0, 0); // more lots paid than held: no valid state gets here
        if (unpaid == 0) {
            if (int256(insurance) + float_ < 0) return (false, 0, 0);
            insurance = uint256(int256(insurance) + float_);
            float_ = 0;
        }
        MarketWords.set(m, W_UNPAID, uint256(unpaid));
        MarketWords.set(m, W_FLOAT, uint256(float_));
        return (true, AccountLeafLib.root(acct, w.present2, w.siblings2), insurance);
    }

    function _clamp(int256 v, int256 bound) private pure returns (int256) {
        return v < -bound ? -bound : (v > bound ? bound : v);
    }

    function _signed(bytes memory b, uint256 i) private pure returns (int256) {
        return int256(MarketWords.word(b, i));
    }
}
