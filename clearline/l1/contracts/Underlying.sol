// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The head of an underlying leaf (clearline.core.encoding.encode_underlying_leaf): a
///         static tuple, so abi.encode(UNDERLYING_TAG, head, windows) is the leaf.
struct UnderlyingHead {
    uint32 id;
    bytes32 symbol;
    uint64 indexPrice;
    uint64 indexTime;
    uint64 lastRoundMs;
    uint64 pendingPrice;
    uint32 pendingCount;
    bool liquidationsPaused;
    uint64 accTime;
}

/// @notice One expiry's settlement window of an underlying leaf.
struct Window {
    uint64 expiry;
    uint256 acc; //   index * ms accumulated over [expiry - window, expiry]
    uint64 dt; //     ms accumulated
    uint32 open; //   options of the expiry not settled yet
}

/// @title UnderlyingLib
/// @notice The settlement accumulators, shared by the MarkVerifier (a MarkUpdate advances every
///         underlying) and the ExpiryVerifier (SETTLE_OPTION advances its underlying first).
library UnderlyingLib {
    bytes32 internal constant UNDERLYING_TAG = keccak256("clearline.underlying.v1");

    /// @dev clearline.core.underlying.Underlying.advance: accumulate the index over
    ///      [accTime, now] into the overlap with each window [expiry - window, expiry].
    function advance(UnderlyingHead memory u, Window[] memory ws, uint64 now_, uint64 window) internal pure {
        uint256 start = u.accTime;
        if (now_ <= start) return;
        uint256 price = u.indexPrice;
        if (price != 0) {
            for (uint256 i = 0; i < ws.length; ++i) {
                uint256 e = ws[i].expiry;
                uint256 lo = e > window && e - window > start ? e - window : start;
                uint256 hi = now_ < e ? now_ : e;
                if (hi > lo) {
                    ws[i].acc += price * (hi - lo);
                    ws[i].dt += uint64(hi - lo);
                }
            }
        }
        u.accTime = now_;
    }

    /// @dev keccak256 of the leaf of (u, ws).
    function leafHash(UnderlyingHead memory u, Window[] memory ws) internal pure returns (bytes32) {
        return keccak256(abi.encode(UNDERLYING_TAG, u, ws));
    }
}
