// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscapeState, MarketLeaf} from "./Escape.sol";
import {OracleConfigIn, OracleStateIn, ReportIn} from "./OracleVerifier.sol";
import {MarkDecoder, MarkTx} from "./MarkDecoder.sol";
import {SparseMerkle} from "./SparseMerkle.sol";

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
    UnderlyingParams[] underlyings; // every configured underlying, ascending id
}

/// @notice The witness of a MarkUpdate proof (FraudVerifier KIND_MARK_UPDATE).
struct MarkWitness {
    EscapeState pre; //          preimage of the chunk's pre-root
    ConsensusParams params; //   preimage of the Rollup's paramsHash
    bytes[] markets; //          pre leaf bytes of each listed instrument, transaction order ("" = no leaf)
    uint256[] order; //          a permutation of the instruments' positions, ascending instrument id
    bytes[] underlyings; //      pre leaf bytes of each params.underlyings entry, same order
    bytes32[] siblings; //       multiproof of all those leaves against pre.marketsRoot (see _multiRoot)
    uint256[] present; //        bit i: sibling i of the walk is given (else the empty subtree)
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
///         Returns 31 (REJECTED) when the core rejects the transaction: time before the
///         pre-state's, not signed by the operator (EIP-712, low s), a signed timestamp of 0 or
///         after the time, nothing to update, an instrument listed twice, an unknown or not
///         active instrument, a zero price, a timestamp not after the market's mark time, a
///         report for an unknown underlying, or an oracle round the OracleVerifier rejects (bad
///         or high-s report signature, duplicate reporter, time going backwards); 30 when the
///         post-root is not the re-executed one; 0 otherwise. A witness that does not prove
///         against the committed roots reverts.
contract MarkVerifier {
    uint256 internal constant REASON_WRONG_POST_ROOT = 30;
    uint256 internal constant REASON_REJECTED = 31;
    uint256 internal constant MARKETS_DEPTH = 24;
    uint256 internal constant UNDERLYING_BASE = 1 << 23;
    uint8 internal constant ACTIVE = 0;
    bytes32 internal constant STATE_TAG = keccak256("clearline.state.v1");
    bytes32 internal constant MARKET_TAG = keccak256("clearline.market.v1");
    bytes32 internal constant UNDERLYING_TAG = keccak256("clearline.underlying.v1");
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant MARK_TYPEHASH = keccak256(
        "MarkUpdate(uint64 timestamp,uint32[] instruments,uint64[] prices,int64[] riskArrays,bytes32 reportsHash)"
    );
    uint256 internal constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @dev The head of an underlying leaf (clearline.core.encoding.encode_underlying_leaf): a
    ///      static tuple, so abi.encode(UNDERLYING_TAG, head, windows) is the leaf.
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

    struct Window {
        uint64 expiry;
        uint256 acc;
        uint64 dt;
    }

    error ParamsMismatch(bytes32 committed, bytes32 given);
    error PreStateMismatch(bytes32 committed, bytes32 given);
    error WitnessShape(); //                  counts or the order permutation do not fit the transaction
    error NotAMarketLeaf(uint256 index);
    error NotAnUnderlyingLeaf(uint256 index);
    error InvalidMarketsProof(bytes32 committed, bytes32 given);

    IOracle public immutable oracle;

    constructor(IOracle oracle_) {
        oracle = oracle_;
    }

    /// @notice The verdict on chunk `chunk` (one packed MarkUpdate, strictly valid) between the
    ///         committed `preRoot` and `postRoot` of the Rollup `rollup` (the EIP-712 domain).
    function judge(
        bytes32 preRoot,
        bytes32 postRoot,
        bytes32 paramsHash,
        address rollup,
        bytes calldata chunk,
        bytes calldata witness
    ) external view returns (uint256) {
        MarkWitness memory w = abi.decode(witness, (MarkWitness));
        bytes32 h = keccak256(abi.encode(STATE_TAG, w.pre));
        if (h != preRoot) revert PreStateMismatch(preRoot, h);
        h = keccak256(abi.encode(w.params));
        if (h != paramsHash) revert ParamsMismatch(paramsHash, h);
        MarkTx memory t = MarkDecoder.decodeMark(chunk);
        uint256 n = t.instruments.length;
        if (w.markets.length != n || w.order.length != n || w.underlyings.length != w.params.underlyings.length) {
            revert WitnessShape();
        }
        (uint256[] memory idx, bool duplicate) = _indices(t, w);
        // rejections visible in the transaction alone: no leaf is needed (nor proven)
        if (
            duplicate || idx.length == 0 || t.timeMs < w.pre.timeMs || t.timestamp == 0 || t.timestamp > t.timeMs
                || (n == 0 && t.reports.length == 0) || _unknownAsset(t, w.params)
                || _signer(t, rollup) != w.params.operator
        ) return REASON_REJECTED;

        bool rejected;
        bytes32[] memory before = new bytes32[](idx.length);
        bytes32[] memory next = new bytes32[](idx.length);
        for (uint256 j = 0; j < n; ++j) {
            uint256 k = w.order[j];
            bytes memory leaf = w.markets[k];
            before[j] = leaf.length == 0 ? bytes32(0) : keccak256(leaf);
            (bytes32 after_, bool bad) = _markMarket(t, k, leaf);
            next[j] = after_;
            rejected = rejected || bad;
        }
        for (uint256 j = 0; j < w.underlyings.length; ++j) {
            bytes memory leaf = w.underlyings[j];
            before[n + j] = keccak256(leaf);
            (bytes32 after_, bool bad) = _markUnderlying(t, w.params, j, leaf, rollup);
            next[n + j] = after_;
            rejected = rejected || bad;
        }
        bytes32 preMarkets = _multiRoot(_copy(idx), before, w.siblings, w.present);
        if (preMarkets != w.pre.marketsRoot) revert InvalidMarketsProof(w.pre.marketsRoot, preMarkets);
        if (rejected) return REASON_REJECTED;
        EscapeState memory post = w.pre;
        post.marketsRoot = _multiRoot(idx, next, w.siblings, w.present);
        post.timeMs = t.timeMs;
        return keccak256(abi.encode(STATE_TAG, post)) != postRoot ? REASON_WRONG_POST_ROOT : 0;
    }

    // ---------------------------------------------------------------------------- leaves

    /// @dev Tree indices of the witness's leaves, ascending: the instruments (by `order`),
    ///      then the underlyings. `duplicate` when an instrument is listed twice (the order
    ///      cannot then be strictly increasing) or lies outside the markets' part of the tree:
    ///      the core rejects both, and the multiproof is then not walked.
    function _indices(MarkTx memory t, MarkWitness memory w)
        private
        pure
        returns (uint256[] memory idx, bool duplicate)
    {
        uint256 n = t.instruments.length;
        uint256 m = w.params.underlyings.length;
        idx = new uint256[](n + m);
        bool[] memory seen = new bool[](n);
        for (uint256 j = 0; j < n; ++j) {
            uint256 k = w.order[j];
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
            uint256 id = w.params.underlyings[j].id;
            if (id >= UNDERLYING_BASE || (j > 0 && id <= w.params.underlyings[j - 1].id)) revert WitnessShape();
            idx[n + j] = UNDERLYING_BASE + id;
        }
    }

    /// @dev The market leaf of instrument position `k` after the update, and whether the core
    ///      rejects the update because of it (unknown, not active, zero price, stale mark).
    function _markMarket(MarkTx memory t, uint256 k, bytes memory leaf) private pure returns (bytes32, bool) {
        if (leaf.length == 0) return (bytes32(0), true);
        (bytes32 tag, MarketLeaf memory m) = abi.decode(leaf, (bytes32, MarketLeaf));
        if (tag != MARKET_TAG || m.id != t.instruments[k]) revert NotAMarketLeaf(t.instruments[k]);
        bool bad = m.status != ACTIVE || t.prices[k] == 0 || t.timestamp <= m.markTime;
        m.markPrice = t.prices[k];
        m.markTime = t.timestamp;
        if (t.riskArrays.length != 0) m.riskArray = t.riskArrays[k];
        return (keccak256(abi.encode(MARKET_TAG, m)), bad);
    }

    /// @dev Underlying `j` after the update (Underlying.advance to timeMs with the old index,
    ///      then the oracle round of its reports, if any), and whether the round is rejected.
    function _markUnderlying(MarkTx memory t, ConsensusParams memory p, uint256 j, bytes memory leaf, address rollup)
        private
        view
        returns (bytes32, bool)
    {
        UnderlyingParams memory cfg = p.underlyings[j];
        (bytes32 tag, UnderlyingHead memory u, Window[] memory ws) = abi.decode(leaf, (bytes32, UnderlyingHead, Window[]));
        if (tag != UNDERLYING_TAG || u.id != cfg.id) revert NotAnUnderlyingLeaf(UNDERLYING_BASE + cfg.id);
        _advance(u, ws, t.timeMs, p.settlementWindowMs);
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
        return (keccak256(abi.encode(UNDERLYING_TAG, u, ws)), false);
    }

    /// @dev clearline.core.underlying.Underlying.advance: accumulate the index over
    ///      [accTime, now] into the overlap with each window [expiry - window, expiry].
    function _advance(UnderlyingHead memory u, Window[] memory ws, uint64 now_, uint64 window) private pure {
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
        bytes memory sig = t.signature;
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
        bytes32 digest = keccak256(abi.encodePacked(bytes2(0x1901), domain, _structHash(t)));
        return ecrecover(digest, v, r, s);
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
    function _multiRoot(uint256[] memory idx, bytes32[] memory h, bytes32[] memory siblings, uint256[] memory present)
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
                h[out] = keccak256(abi.encodePacked(bytes1(0x01), left, right));
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
