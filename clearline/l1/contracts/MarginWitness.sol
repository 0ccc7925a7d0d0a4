// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscapeAccount, EscapeMarket, MarketLeaf} from "./Escape.sol";

/// @notice An underlying leaf (clearline.core.encoding.encode_underlying_leaf, raw bytes: it
///         ends in a dynamic array) and its compressed proof against marketsRoot at index
///         UNDERLYING_BASE + id (depth 24).
struct UnderlyingWitness {
    uint32 id;
    bytes leaf;
    uint256 present;
    bytes32[] siblings;
}

/// @notice What an account's health needs besides its leaf: the market leaf of each position
///         (same order as the positions) and the underlying leaves of those markets'
///         underlyings (index prices for options, liquidation pause flags), all with proofs.
struct MarginWitness {
    EscapeMarket[] markets;
    UnderlyingWitness[] underlyings;
}

/// @notice The MarginVerifier as the FraudVerifier and the MatchVerifier call it.
interface IMarginVerifier {
    /// @notice clearline.core.margin.health of `a` from proven leaves: reverts unless every
    ///         market and underlying leaf proves against `marketsRoot`; `paused` is true when an
    ///         underlying of one of the positions has an unconfirmed index jump.
    function provenHealth(bytes32 marketsRoot, EscapeAccount calldata a, MarginWitness calldata w)
        external
        pure
        returns (int256 equity, int256 initial, int256 maintenance, bool paused);

    /// @notice clearline.core.margin.health(st, acct, instrument, size, quote, extraFee) from
    ///         leaves the caller has proven: the fill gate's question (MatchVerifier).
    function healthAfter(
        EscapeAccount calldata a,
        MarketLeaf[] calldata markets,
        uint256[] calldata indexUsd6,
        uint32 instrument,
        int256 size,
        int256 quote,
        int256 extraFee
    ) external pure returns (int256 equity, int256 initial, int256 maintenance);
}
