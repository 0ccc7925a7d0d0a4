// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {
    EscapeLib,
    EscapeAccount,
    EscapeMarket,
    EscapePosition,
    MarketLeaf,
    MarketCountMismatch,
    MarketMismatch,
    InvalidMarketProof
} from "./Escape.sol";
import {IMarginVerifier, MarginWitness, UnderlyingWitness} from "./MarginWitness.sol";
import {SparseMerkle} from "./SparseMerkle.sol";

/// @notice An underlying witness whose bytes are not an underlying leaf of its id.
error InvalidUnderlyingLeaf(uint32 id);
/// @notice An underlying leaf that does not prove against the markets root.
error InvalidUnderlyingProof(uint32 id);
/// @notice Position i is an option whose underlying leaf was not given (its index is needed).
error MissingUnderlying(uint256 position);

/// @notice indexUsd6 must hold one index price per market leaf.
error IndexCountMismatch(uint256 markets, uint256 indices);
/// @notice An index price above uint64: the underlying leaf stores indexPrice as uint64, so no
///         committed state has one (rejected instead of wrapping in the int256 conversion).
error IndexOutOfRange(uint256 market, uint256 indexUsd6);
/// @notice healthAfter's size must fit int64, the leaf's position size: a larger position has
///         no leaf (the core halts rather than encode it), so there is no state to compare with.
error SizeOutOfRange(int256 size);
/// @notice floorDiv / ceilDiv are defined for positive divisors only (every divisor in the
///         margin rules is a positive constant).
error NonPositiveDivisor(int256 divisor);

/// @title MarginVerifier
/// @notice Account health on L1, integer for integer what clearline.core.margin.health returns:
///         (equity, initial requirement, maintenance requirement), all usd6.
///
///         equity = collateral - fee + sum over positions (quote + size * markPrice * tickValue),
///         tickValue = tickSize * lotSize / 1e8 (floor, = InstrumentSpec.tick_value).
///
///         Standard mode (marginMode 0) sums clearline.core.requirements.standard_requirements
///         per position; any other mode is portfolio mode (portfolio_requirements): the worst
///         risk-array scenario loss (at least 0) + 1% of the underlying per short option lot +
///         1 usd6 per lot with an array, plus the standard requirement of positions whose market
///         has no array; maintenance = 75% of the array part (rounded up) + the standard
///         maintenance of those positions. "No array" is an all-zero riskArray: the leaf encodes
///         a never-published array as 16 zeros, and the core treats both alike
///         (requirements.has_risk_array) so that this contract can agree with it.
///
///         Rounding is Python's: requirements round up, the OTM credit rounds down, both with
///         explicit floor / ceil helpers (Solidity's `/` truncates toward zero). Arithmetic is
///         checked except where the leaf field widths (uint64 prices and sizes of ticks / lots,
///         int64 sizes and risk arrays) bound it, as noted at each unchecked block: a state whose
///         values overflow int256 (collateral or quotes near 2^255) reverts with Panic 0x11
///         where Python would return a huge number. Numerators are never negative here (marks,
///         indices, ppm and lots are not), but the helpers are exact for any sign.
///
///         Stateless and deployed on its own so the FraudVerifier (close to the 24 KB code size
///         limit) can CALL it. It checks no Merkle proof: the caller proves the leaves first (the
///         account's present / siblings fields are not read).
contract MarginVerifier is IMarginVerifier {
    int256 internal constant PPM = 1e6;
    int256 internal constant UNDERLYING_ATOMS = 1e8;
    int256 internal constant SHORT_OPTION_FLOOR_PPM = 100_000; // 10% of the underlying per short lot
    int256 internal constant SHORT_OPTION_MIN_PPM = 10_000; //   portfolio: 1% per short option lot
    int256 internal constant PM_MAINTENANCE_PPM = 750_000; //    portfolio maintenance = 75% of initial
    uint256 internal constant N_SCENARIOS = 16;
    uint8 internal constant PERPETUAL = 0;
    uint256 internal constant MARKETS_DEPTH = 24;
    uint256 internal constant UNDERLYING_BASE = 1 << 23; // clearline.core.state.UNDERLYING_BASE
    bytes32 internal constant MARKET_TAG = keccak256("clearline.market.v1");
    bytes32 internal constant UNDERLYING_TAG = keccak256("clearline.underlying.v1");
    uint8 internal constant OPTION = 1;
    uint8 internal constant CALL = 1;

    /// @dev Running sums of one health computation (memory: too many for the stack).
    struct Acc {
        bool portfolio;
        bool anyArray;
        int256 equity;
        int256 im; //          standard requirements (standard mode: all; portfolio: fallback)
        int256 mm;
        int256 som; //         portfolio: short-option minimum
        int256 contingency; // portfolio: 1 usd6 per lot with an array
        int256[16] losses; //  portfolio: loss per scenario (positive = loss)
    }

    /// @notice (equity, initial, maintenance) of account `a`, as clearline.core.margin.health(st, acct).
    /// @param markets markets[i] is the market leaf of a.positions[i] (same order, same count).
    /// @param indexUsd6 indexUsd6[i] is the index price (usd6) of markets[i]'s underlying; only
    ///        read for options (0 is fine for perpetuals).
    function health(EscapeAccount calldata a, MarketLeaf[] calldata markets, uint256[] calldata indexUsd6)
        external
        pure
        returns (int256 equity, int256 initial, int256 maintenance)
    {
        EscapePosition[] calldata ps = a.positions;
        uint256 n = ps.length;
        if (markets.length != n) revert MarketCountMismatch(n, markets.length);
        if (indexUsd6.length != n) revert IndexCountMismatch(n, indexUsd6.length);
        Acc memory acc = _start(a, 0);
        for (uint256 i = 0; i < n; ++i) {
            EscapePosition calldata p = ps[i];
            _checkMarket(i, p.instrument, markets[i]);
            _add(acc, markets[i], _index(markets[i], indexUsd6, i), p.size, p.quote);
        }
        return _finish(acc);
    }

    /// @notice health(st, acct, instrument, size, quote, extraFee) of clearline.core.margin: as if
    ///         the account's position in `instrument` were (`size`, `quote`) and it had paid
    ///         `extraFee` more (the fill gate's question). If the account holds `instrument`,
    ///         markets / indexUsd6 are as for `health`; if not, the caller appends the
    ///         instrument's market leaf and index as their LAST elements (always, even for
    ///         size 0, when the new position adds nothing, as in Python).
    function healthAfter(
        EscapeAccount calldata a,
        MarketLeaf[] calldata markets,
        uint256[] calldata indexUsd6,
        uint32 instrument,
        int256 size,
        int256 quote,
        int256 extraFee
    ) external pure returns (int256 equity, int256 initial, int256 maintenance) {
        if (size < type(int64).min || size > type(int64).max) revert SizeOutOfRange(size);
        EscapePosition[] calldata ps = a.positions;
        uint256 n = ps.length;
        uint256 m = markets.length;
        if (m != n && m != n + 1) revert MarketCountMismatch(n, m);
        if (indexUsd6.length != m) revert IndexCountMismatch(m, indexUsd6.length);
        Acc memory acc = _start(a, extraFee);
        bool seen = false;
        for (uint256 i = 0; i < n; ++i) {
            EscapePosition calldata p = ps[i];
            _checkMarket(i, p.instrument, markets[i]);
            if (p.instrument == instrument) {
                seen = true;
                _add(acc, markets[i], _index(markets[i], indexUsd6, i), size, quote);
            } else {
                _add(acc, markets[i], _index(markets[i], indexUsd6, i), p.size, p.quote);
            }
        }
        // a held instrument takes no extra leaf; a new one takes exactly one, last
        if (m != (seen ? n : n + 1)) revert MarketCountMismatch(seen ? n : n + 1, m);
        if (!seen) {
            _checkMarket(n, instrument, markets[n]);
            if (size != 0) _add(acc, markets[n], _index(markets[n], indexUsd6, n), size, quote);
        }
        return _finish(acc);
    }

    /// @notice IMarginVerifier.provenHealth: `health` of `a` from leaves proven against
    ///         `marketsRoot` (the FraudVerifier proves the account leaf itself). Each position's
    ///         market leaf proves at its instrument id; each underlying leaf (raw bytes) at
    ///         UNDERLYING_BASE + id, and gives the index price of the markets whose `underlying`
    ///         equals its symbol (a genesis never configures a symbol twice). An option whose
    ///         underlying leaf is missing reverts (its index is needed); `paused` is true when
    ///         a given underlying of a position has an unconfirmed index jump (the core then
    ///         refuses liquidations), so the caller must pass every configured underlying of the
    ///         positions for a "not paused" answer to mean anything.
    function provenHealth(bytes32 marketsRoot, EscapeAccount calldata a, MarginWitness calldata w)
        external
        pure
        returns (int256 equity, int256 initial, int256 maintenance, bool paused)
    {
        uint256 n = a.positions.length;
        if (w.markets.length != n) revert MarketCountMismatch(n, w.markets.length);
        bytes memory zs = SparseMerkle.ZERO_HASHES;
        uint256 nu = w.underlyings.length;
        bytes32[] memory symbols = new bytes32[](nu);
        uint256[] memory indices = new uint256[](nu);
        bool[] memory pausedFlags = new bool[](nu);
        for (uint256 j = 0; j < nu; ++j) {
            UnderlyingWitness calldata u = w.underlyings[j];
            bytes calldata leaf = u.leaf;
            // tag, id, symbol, indexPrice, indexTime, lastRoundMs, pendingPrice, pendingCount,
            // liquidationsPaused, accTime, offset(windows), ...
            if (leaf.length < 352 || bytes32(leaf[0:32]) != UNDERLYING_TAG || uint256(bytes32(leaf[32:64])) != u.id) {
                revert InvalidUnderlyingLeaf(u.id);
            }
            bytes32 root = SparseMerkle.rootFromCompressedProof(
                zs, MARKETS_DEPTH, UNDERLYING_BASE + uint256(u.id), keccak256(leaf), u.present, u.siblings
            );
            if (root != marketsRoot) revert InvalidUnderlyingProof(u.id);
            symbols[j] = bytes32(leaf[64:96]);
            indices[j] = uint256(bytes32(leaf[96:128]));
            pausedFlags[j] = uint256(bytes32(leaf[256:288])) != 0;
        }
        Acc memory acc = _start(a, 0);
        for (uint256 i = 0; i < n; ++i) {
            EscapePosition calldata p = a.positions[i];
            EscapeMarket calldata m = w.markets[i];
            _checkMarket(i, p.instrument, m.leaf);
            bytes32 root = SparseMerkle.rootFromCompressedProof(
                zs, MARKETS_DEPTH, p.instrument, EscapeLib.marketLeafHash(m.leaf), m.present, m.siblings
            );
            if (root != marketsRoot) revert InvalidMarketProof(p.instrument);
            int256 index = 0;
            bool found = false;
            for (uint256 j = 0; j < nu; ++j) {
                if (symbols[j] == m.leaf.underlying) {
                    found = true;
                    index = int256(indices[j]);
                    if (pausedFlags[j]) paused = true;
                    break;
                }
            }
            if (m.leaf.kind != PERPETUAL && !found) revert MissingUnderlying(i);
            _add(acc, m.leaf, index, p.size, p.quote);
        }
        (equity, initial, maintenance) = _finish(acc);
    }

    /// @notice floor(a / b) for b > 0 (Python's a // b), exposed so tests can pin the helper.
    function floorDiv(int256 a, int256 b) external pure returns (int256) {
        if (b <= 0) revert NonPositiveDivisor(b);
        return _floorDiv(a, b);
    }

    /// @notice ceil(a / b) for b > 0 (Python's -((-a) // b)), exposed so tests can pin the helper.
    function ceilDiv(int256 a, int256 b) external pure returns (int256) {
        if (b <= 0) revert NonPositiveDivisor(b);
        return _ceilDiv(a, b);
    }

    // ------------------------------------------------------------------------------ internals

    function _start(EscapeAccount calldata a, int256 fee) private pure returns (Acc memory acc) {
        acc.portfolio = a.marginMode != 0; // margin.py: mode 0 standard, anything else portfolio
        acc.equity = a.collateral - fee;
    }

    function _checkMarket(uint256 i, uint32 instrument, MarketLeaf calldata ml) private pure {
        if (ml.id != instrument) revert MarketMismatch(i, instrument, ml.id);
    }

    /// @dev One position (size s, cash balance q) in market ml: its value into equity and its
    ///      requirement into the sums of the account's mode. `index` (usd6) is read only for
    ///      options.
    function _add(Acc memory acc, MarketLeaf calldata ml, int256 index, int256 s, int256 q) private pure {
        int256 tickValue;
        int256 mark = int256(uint256(ml.markPrice));
        int256 value;
        unchecked {
            // tickSize * lotSize < 2^128, so tickValue < 2^102 (floor: it is >= 0); |s| <= 2^63
            // (an int64 field, or checked by healthAfter), so |value| < 2^63 * 2^64 * 2^102
            tickValue = int256(uint256(ml.tickSize) * uint256(ml.lotSize)) / UNDERLYING_ATOMS;
            value = s * mark * tickValue;
        }
        acc.equity += q + value;
        if (s == 0) return; // no requirement (and, in portfolio mode, no contingency)
        // an all-zero array adds nothing to the losses and counts as no array (contract notice)
        if (!acc.portfolio || !_addScenarios(acc.losses, ml, s)) {
            (int256 im, int256 mm) = _standard(ml, s, mark, tickValue, index);
            acc.im += im;
            acc.mm += mm;
            return;
        }
        acc.anyArray = true;
        int256 lots = s > 0 ? s : -s;
        acc.contingency += lots;
        if (ml.kind == OPTION && s < 0) {
            acc.som += _ceilDiv(_underlyingValue(ml, lots, index) * SHORT_OPTION_MIN_PPM, PPM);
        }
    }

    function _finish(Acc memory acc) private pure returns (int256 equity, int256 initial, int256 maintenance) {
        equity = acc.equity;
        if (!acc.portfolio) return (equity, acc.im, acc.mm);
        int256 worst = 0; // max(0, max_s loss_s); 0 when no position has an array
        if (acc.anyArray) {
            int256[16] memory losses = acc.losses;
            for (uint256 k = 0; k < N_SCENARIOS; ++k) {
                int256 l = losses[k];
                if (l > worst) worst = l;
            }
        }
        int256 core = worst + acc.som + acc.contingency;
        initial = core + acc.im;
        maintenance = _ceilDiv(core * PM_MAINTENANCE_PPM, PPM) + acc.mm;
    }

    /// @dev requirements.standard_requirements(spec, s, mark, index), s != 0.
    function _standard(MarketLeaf calldata ml, int256 s, int256 mark, int256 tickValue, int256 index)
        private
        pure
        returns (int256 im, int256 mm)
    {
        int256 lots;
        int256 premium;
        unchecked {
            lots = s > 0 ? s : -s; //         s >= -2^63
            premium = lots * mark * tickValue; // < 2^229, as the value in _add
        }
        if (ml.kind == PERPETUAL) {
            return (
                _ceilDiv(premium * int256(uint256(ml.imPpm)), PPM), _ceilDiv(premium * int256(uint256(ml.mmPpm)), PPM)
            );
        }
        if (s > 0) return (premium, premium); // a long option: its premium, no loan value
        int256 u = _underlyingValue(ml, lots, index);
        int256 scan = _ceilDiv(u * int256(uint256(ml.imPpm)), PPM) - _otmValue(ml, lots, index);
        int256 floor = _ceilDiv(u * SHORT_OPTION_FLOOR_PPM, PPM);
        im = premium + (scan > floor ? scan : floor);
        mm = premium + _ceilDiv(u * int256(uint256(ml.mmPpm)), PPM);
    }

    /// @dev requirements.underlying_value: usd6 value of `lots` lots of underlying, rounded up.
    function _underlyingValue(MarketLeaf calldata ml, int256 lots, int256 index) private pure returns (int256) {
        int256 atomsUsd6;
        unchecked {
            atomsUsd6 = lots * index * int256(uint256(ml.lotSize)); // < 2^63 * 2^64 * 2^64
        }
        return _ceilDiv(atomsUsd6, UNDERLYING_ATOMS);
    }

    /// @dev requirements.otm_value: how far `lots` lots are out of the money, usd6, rounded down.
    function _otmValue(MarketLeaf calldata ml, int256 lots, int256 index) private pure returns (int256) {
        int256 strikeUsd6 = int256(uint256(ml.strike) * uint256(ml.tickSize));
        int256 perUnit = ml.optionType == CALL ? strikeUsd6 - index : index - strikeUsd6; // any other type: put
        if (perUnit <= 0) return 0;
        return _floorDiv(lots * perUnit * int256(uint256(ml.lotSize)), UNDERLYING_ATOMS);
    }

    /// @dev losses[k] -= s * riskArray[k] for the 16 scenarios; returns whether some entry is
    ///      non-zero (requirements.has_risk_array). In assembly because it is the hot loop (16
    ///      per position; checked Solidity costs ~5x the gas). No overflow is possible: |s| and
    ///      |riskArray[k]| are at most 2^63 (health takes s from an int64 field, healthAfter
    ///      checks its size), so each product is below 2^126 and the sum of fewer than 2^128 of
    ///      them fits int256. A riskArray word that is not a sign-extended int64 reverts with no
    ///      data, as Solidity's own calldata decoding does.
    function _addScenarios(int256[16] memory losses, MarketLeaf calldata ml, int256 s)
        private
        pure
        returns (bool nonZero)
    {
        int64[16] calldata arr = ml.riskArray;
        assembly ("memory-safe") {
            for { let k := 0 } lt(k, 16) { k := add(k, 1) } {
                let r := calldataload(add(arr, shl(5, k)))
                if iszero(eq(r, signextend(7, r))) { revert(0, 0) }
                if r {
                    nonZero := 1
                    let at := add(losses, shl(5, k))
                    mstore(at, sub(mload(at), mul(s, r)))
                }
            }
        }
    }

    /// @dev The index of market ml (position i): read only for options, perpetuals pass anything.
    function _index(MarketLeaf calldata ml, uint256[] calldata indexUsd6, uint256 i) private pure returns (int256) {
        if (ml.kind == PERPETUAL) return 0;
        uint256 v = indexUsd6[i];
        if (v > type(uint64).max) revert IndexOutOfRange(i, v);
        return int256(v);
    }

    /// @dev Python's a // b for b > 0 (Solidity's / truncates toward zero).
    function _floorDiv(int256 a, int256 b) private pure returns (int256 q) {
        unchecked {
            q = a / b; // b > 0: no overflow; --q only if a % b != 0, so b >= 2 and q > int256.min / 2
            if (a % b != 0 && a < 0) --q;
        }
    }

    /// @dev Python's -((-a) // b) for b > 0, without negating a (no overflow at int256.min).
    function _ceilDiv(int256 a, int256 b) private pure returns (int256 q) {
        unchecked {
            q = a / b; // b > 0: no overflow; ++q only if a % b != 0, so b >= 2 and q < int256.max / 2
            if (a % b != 0 && a > 0) ++q;
        }
    }
}
