// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SparseMerkle} from "./SparseMerkle.sol";

/// @notice The preimage of a state root (clearline.core.encoding.encode_state without its tag):
///         root = keccak256(abi.encode(STATE_TAG, accountsRoot, ordersRoot, marketsRoot,
///         l1QueuePos, feePool, insuranceFund, nextOrderId, nextAccountId, timeMs,
///         totalDeposits, totalWithdrawals)).
struct EscapeState {
    bytes32 accountsRoot;
    bytes32 ordersRoot;
    bytes32 marketsRoot;
    uint64 l1QueuePos;
    uint256 feePool;
    uint256 insuranceFund;
    uint64 nextOrderId;
    uint32 nextAccountId;
    uint64 timeMs;
    uint256 totalDeposits;
    uint256 totalWithdrawals;
}

/// @notice One position of an account leaf.
struct EscapePosition {
    uint32 instrument;
    int64 size; //            lots, signed
    int256 quote; //          usd6, signed cash balance of the position
    int256 fundingIndex;
}

/// @notice An account leaf (clearline.core.encoding.encode_account_leaf) and its compressed
///         proof against accountsRoot (depth 32, index = id; see SparseMerkle).
struct EscapeAccount {
    uint32 id;
    address owner;
    uint32 subaccount;
    int256 collateral; //     usd6
    uint64 nonce;
    uint8 marginMode;
    uint8 flags; //           AccountFlag bits (bit 0: the operator may cancel resting orders)
    EscapePosition[] positions; // strictly increasing by instrument (as committed)
    uint256 present;
    bytes32[] siblings;
}

/// @notice A market leaf (clearline.core.encoding.encode_market_leaf without its tag: all 27
///         fields are static, so abi.encode(MARKET_TAG, leaf) is the leaf encoding).
struct MarketLeaf {
    uint32 id;
    bytes32 symbol;
    uint8 kind;
    bytes32 underlying;
    uint64 tickSize;
    uint64 lotSize;
    uint32 imPpm;
    uint32 mmPpm;
    int32 makerFeePpm;
    int32 takerFeePpm;
    uint64 expiry;
    uint64 strike;
    uint8 optionType;
    uint8 status;
    uint64 markPrice; //      ticks
    uint64 markTime;
    int256 fundingIndex;
    uint64 openInterest;
    int64 premiumSum;
    uint32 premiumSamples;
    uint64 lastFundingTime;
    int64 lastFundingRatePpm;
    uint64 settlementPrice;
    uint64 lastSampleTime;
    int64[16] riskArray;
    uint64 unpaidLots; //  lots of holders not paid the last settlement's funding yet
    int64 payFloat; //    usd6 paid less received so far of that settlement
    uint64 bidHead; //    id of the best bid in price-time priority (0: none)
    uint64 askHead; //    id of the best ask (0: none)
}

/// @notice A market leaf and its compressed proof against marketsRoot (depth 24, index = id).
struct EscapeMarket {
    MarketLeaf leaf;
    uint256 present;
    bytes32[] siblings;
}

error StateRootMismatch(bytes32 finalized, bytes32 given);
error InvalidAccountProof(uint32 accountId);
error MarketCountMismatch(uint256 positions, uint256 markets);
error MarketMismatch(uint256 position, uint32 instrument, uint32 marketId);
error InvalidMarketProof(uint32 instrument);
error SettlementParamsNeeded(uint32 instrument);

/// @title EscapeLib
/// @notice The equity of one account at a committed state root, from Merkle proofs, exactly as
///         clearline.core.margin.health computes it:
///
///           equity = collateral + sum over positions (quote + size * markPrice * tickValue
///                                                     - funding still to pay)
///           tickValue = tickSize * lotSize / 1e8   (floor, = InstrumentSpec.tick_value)
///
///         Funding still to pay is non-zero only between a FUNDING_SETTLE and the holder's
///         FUNDING_PAY (clearline.core.operator): ceil(size * (market index - position index) / 1e6),
///         what that FUNDING_PAY would move (clearline.watchtower.escape.pending_funding).
library EscapeLib {
    bytes32 internal constant STATE_TAG = keccak256("clearline.state.v1");
    bytes32 internal constant ACCOUNT_TAG = keccak256("clearline.account.v1");
    bytes32 internal constant MARKET_TAG = keccak256("clearline.market.v1");
    uint256 internal constant ACCOUNTS_DEPTH = 32;
    uint256 internal constant MARKETS_DEPTH = 24;
    int256 internal constant UNDERLYING_ATOMS = 1e8;
    uint8 internal constant OPTION = 1;

    /// @dev Reverts unless every proof holds against `root`; returns the account's equity (usd6).
    ///      `feePpm` is ConsensusParams.settlementFeePpm, or -1 when the caller was not given
    ///      the parameters: an option position awaiting its SETTLE_POSITION (the market's
    ///      unpaidLots > 0) with a payoff then reverts, since its settlement fee is due.
    function equity(
        bytes32 root,
        EscapeState calldata s,
        EscapeAccount calldata a,
        EscapeMarket[] calldata markets,
        int256 feePpm
    ) internal pure returns (int256 eq) {
        bytes32 given = keccak256(abi.encode(STATE_TAG, s));
        if (given != root) revert StateRootMismatch(root, given);

        bytes32 leaf = keccak256(
            abi.encode(
                ACCOUNT_TAG, a.id, a.owner, a.subaccount, a.collateral, a.nonce, a.marginMode, a.flags, a.positions
            )
        );
        bytes memory zs = SparseMerkle.ZERO_HASHES; // copied to memory once for every proof
        if (SparseMerkle.rootFromCompressedProof(zs, ACCOUNTS_DEPTH, a.id, leaf, a.present, a.siblings) != s.accountsRoot)
        {
            revert InvalidAccountProof(a.id);
        }

        uint256 n = a.positions.length;
        if (markets.length != n) revert MarketCountMismatch(n, markets.length);
        bytes32 marketsRoot = s.marketsRoot;
        eq = a.collateral;
        for (uint256 i = 0; i < n; ++i) {
            EscapePosition calldata p = a.positions[i];
            EscapeMarket calldata m = markets[i];
            MarketLeaf calldata ml = m.leaf;
            uint32 inst = p.instrument;
            if (ml.id != inst) revert MarketMismatch(i, inst, ml.id);
            bytes32 mleaf = marketLeafHash(ml);
            if (SparseMerkle.rootFromCompressedProof(zs, MARKETS_DEPTH, inst, mleaf, m.present, m.siblings) != marketsRoot)
            {
                revert InvalidMarketProof(inst);
            }
            int256 tickValue = int256(uint256(ml.tickSize) * uint256(ml.lotSize)) / UNDERLYING_ATOMS;
            int256 value = int256(p.size) * int256(uint256(ml.markPrice)) * tickValue;
            eq += p.quote + value - fundingPayment(p.size, ml.fundingIndex - p.fundingIndex);
            if (ml.kind == OPTION && ml.unpaidLots != 0 && value > 0) {
                if (feePpm < 0) revert SettlementParamsNeeded(inst);
                eq -= settlementFee(p.size, int256(uint256(ml.settlementPrice)), int256(uint256(ml.lotSize)), value, feePpm);
            }
        }
    }

    /// @dev clearline.core.operator.settlement_fee: what SETTLE_POSITION charges a long of
    ///      `size` lots of a settled option receiving `payoff` > 0: min(ceil(ceil(size *
    ///      settlementPrice * lotSize / 1e8) * feePpm / 1e6), payoff / 8). Shared by the escape
    ///      and the ExpiryVerifier.
    function settlementFee(int256 size, int256 settlementPrice, int256 lotSize, int256 payoff, int256 feePpm)
        internal
        pure
        returns (int256 fee)
    {
        fee = ceilDiv(ceilDiv(size * settlementPrice * lotSize, UNDERLYING_ATOMS) * feePpm, 1e6);
        if (fee > payoff / 8) fee = payoff / 8;
    }

    /// @dev ceil(a / b) for b > 0 (Python's -((-a) // b)).
    function ceilDiv(int256 a, int256 b) internal pure returns (int256 q) {
        q = a / b;
        if (a % b > 0) q += 1;
    }

    /// @dev What a holder of `size` lots pays (>0) or receives (<0) for a funding index move of
    ///      `move` (1e-12 USD per lot): ceil(size * move / 1e6), as
    ///      clearline.core.funding.index_payment.
    function fundingPayment(int256 size, int256 move) internal pure returns (int256) {
        return ceilDiv(size * move, 1e6);
    }

    /// @dev keccak256(abi.encode(MARKET_TAG, leaf)): a static struct in calldata is its ABI
    ///      encoding (42 words), hashed in place through scratch memory (not allocated). Dirty
    ///      high bits are not rejected here: such a leaf is not the canonical one committed, so
    ///      its proof fails (and the fields read above are checked by their accessors).
    function marketLeafHash(MarketLeaf calldata leaf) internal pure returns (bytes32 h) {
        bytes32 tag = MARKET_TAG;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, tag)
            calldatacopy(add(p, 32), leaf, 1408)
            h := keccak256(p, 1440)
        }
    }
}
