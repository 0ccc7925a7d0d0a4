// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice `clearline.oracle.aggregate.OracleConfig`, field for field (shared by all assets).
/// @dev    The Python constructor refuses an invalid config (ValueError); so does `OracleVerifier`
///         (it reverts), since such a config can never be part of a valid state.
struct OracleConfigIn {
    address[] reporters; //   allowed reporters: non-empty, distinct
    uint32 quorum; //         minimum fresh reports for an update, 1 <= quorum <= reporters.length
    uint64 stalenessMs; //    maximum report age, inclusive
    uint32 maxDeviationPpm; // largest move from the confirmed index accepted without confirmation
    uint32 confirmations; //  consecutive beyond-bound rounds (same direction) that confirm a jump, >= 1
}

/// @notice `clearline.oracle.aggregate.OracleState`, field for field (0 means "none"). All
///         widths are Python's range checks: asset uint32, everything else uint64.
struct OracleStateIn {
    uint32 asset;
    uint64 indexPrice; //   last confirmed index, usd6 per whole unit (0 = no index yet)
    uint64 indexTimeMs; //  nowMs of the round that set it
    uint64 lastRoundMs; //  nowMs of the last round that met quorum (reports must be newer)
    uint64 pendingPrice; // latest beyond-bound median of an unconfirmed jump (0 = none)
    uint64 pendingCount; // consecutive beyond-bound rounds in that direction so far (0 = none)
}

/// @notice `clearline.oracle.report.PriceReport`: the four signed fields and the signature as
///         the Python object holds it (65 bytes r || s || v with v in {27, 28}, or anything
///         else, which is a bad signature). A transaction's canonical encoding (r, s, v words,
///         `b""` as r = s = v = 0) maps to this as `abi.encodePacked(r, s, v)` for a signature
///         and the empty bytes for none; both give the same result code.
struct ReportIn {
    uint32 asset; //      underlying id
    uint64 price; //      usd6 per whole underlying unit
    uint64 timestamp; //  ms since the epoch at which the reporter observed the price
    uint64 round; //      the reporter's own sequence number (signed, not used by the rules)
    bytes signature;
}

/// @title OracleVerifier
/// @notice Stateless re-computation of one oracle aggregation round, identical to
///         `clearline.oracle.aggregate.aggregate` (and, for `aggregateSigned`, to
///         `clearline.oracle.report.recover_reporters` before it). A separate deployable
///         contract so the FraudVerifier, close to the 24 KB limit, can CALL it to judge a
///         mark update (docs/fraud-proofs.md, issue 6). Integers only; no storage.
///
///  Result codes (`rejectCode`; 0 = the round was aggregated):
///    10 BAD_SIGNATURE      a report's signature is not 65 bytes, v not in {27, 28}, r or s
///                          zero or >= n, or it does not recover (the core's ErrorCode; the
///                          whole update is rejected, as `recover_reporters` raises).
///    11 HIGH_S_SIGNATURE   s > n/2 (EIP-2; the core's ErrorCode, whole update rejected).
///                          With several bad signatures the first report's code wins, because
///                          Python recovers the reports in input order and stops at the first.
///    80 DUPLICATE_REPORTER the same signer twice (known or not, fresh or not).
///    81 WRONG_ASSET        a report whose asset is not the state's.
///    82 TIME_WENT_BACKWARDS nowMs < lastRoundMs.
///    (83 MALFORMED_INPUT cannot happen here: the ABI types are the ranges Python checks.)
///  Signature codes come before oracle codes (signers are recovered before aggregating), and
///  the oracle codes in Python's order: time, then asset, then duplicates.
///
///  Outcomes (`outcome`, `clearline.oracle.aggregate.Outcome`): 0 NO_UPDATE (quorum not met,
///  state unchanged, median 0), 1 ACCEPTED, 2 UNCONFIRMED (liquidations paused: the returned
///  state's pendingCount > 0), 3 CONFIRMED. `usedCount` is the number of fresh reports (Python's
///  `len(result.used)`), also for NO_UPDATE. On a rejection `next` is the input state and the
///  other values are 0.
contract OracleVerifier {
    uint8 public constant CODE_OK = 0;
    uint8 public constant CODE_BAD_SIGNATURE = 10;
    uint8 public constant CODE_HIGH_S_SIGNATURE = 11;
    uint8 public constant CODE_DUPLICATE_REPORTER = 80;
    uint8 public constant CODE_WRONG_ASSET = 81;
    uint8 public constant CODE_TIME_WENT_BACKWARDS = 82;

    uint8 public constant OUTCOME_NO_UPDATE = 0;
    uint8 public constant OUTCOME_ACCEPTED = 1;
    uint8 public constant OUTCOME_UNCONFIRMED = 2;
    uint8 public constant OUTCOME_CONFIRMED = 3;

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant NAME_HASH = keccak256("clearline");
    bytes32 internal constant VERSION_HASH = keccak256("1");
    bytes32 internal constant REPORT_TYPEHASH =
        keccak256("PriceReport(uint32 asset,uint64 price,uint64 timestamp,uint64 round)");
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 internal constant HALF_N = N / 2;
    uint256 internal constant PPM = 1_000_000;

    // An input Python could not even construct (a ValueError there): the caller's mistake,
    // never a verdict on the round.
    error NoReporters();
    error DuplicateConfigReporter(address reporter);
    error QuorumOutOfRange(uint256 quorum, uint256 reporters);
    error ZeroConfirmations();
    error PendingMismatch(uint64 pendingPrice, uint64 pendingCount); // both zero or both set
    error PendingWithoutIndex(); //                                      a jump needs an index
    error LengthMismatch(uint256 reports, uint256 signers); //           `aggregate`: one signer per report

    /// @notice The EIP-712 domain separator of `clearline.core.eip712.Domain(chainId,
    ///         verifyingContract)` (name "clearline", version "1"): a report signed for one
    ///         deployment recovers to another address on any other.
    function domainSeparator(uint256 chainId, address verifyingContract) public pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chainId, verifyingContract));
    }

    /// @notice `clearline.oracle.report.digest`: keccak(0x1901 || domainSeparator || hashStruct).
    function reportDigest(uint256 chainId, address verifyingContract, ReportIn calldata r)
        external
        pure
        returns (bytes32)
    {
        return _digest(domainSeparator(chainId, verifyingContract), r);
    }

    /// @notice The signer of one report, as `clearline.oracle.report.recover_reporter`: code 0
    ///         and the address, or code 10 (BAD_SIGNATURE) / 11 (HIGH_S_SIGNATURE) and address 0
    ///         where Python raises. Returned rather than reverted so a caller can judge it.
    function reporterOf(uint256 chainId, address verifyingContract, ReportIn calldata r)
        external
        pure
        returns (uint8 code, address signer)
    {
        return _recover(_digest(domainSeparator(chainId, verifyingContract), r), r.signature);
    }

    /// @notice One aggregation round with the signers given (`signers[i]` signed `reports[i]`),
    ///         as `aggregate(config, state, zip(reports, signers), nowMs)`. Reverts on an
    ///         invalid config or state, or when the arrays differ in length.
    function aggregate(
        OracleConfigIn calldata cfg,
        OracleStateIn calldata st,
        ReportIn[] calldata reports,
        address[] calldata signers,
        uint64 nowMs
    )
        external
        pure
        returns (uint8 rejectCode, uint8 outcome, OracleStateIn memory next, uint64 medianPrice, uint256 usedCount)
    {
        if (reports.length != signers.length) revert LengthMismatch(reports.length, signers.length);
        uint256 n = reports.length;
        uint256[] memory words = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            ReportIn calldata r = reports[i];
            words[i] = _pack(r.asset, r.price, r.timestamp);
        }
        return _aggregate(cfg, st, words, signers, nowMs);
    }

    /// @notice Recover every report's signer under the domain (in order; the first bad
    ///         signature rejects the whole update with its code), then `aggregate`: what the
    ///         core does for one asset of a MarkUpdate.
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
        returns (uint8 rejectCode, uint8 outcome, OracleStateIn memory next, uint64 medianPrice, uint256 usedCount)
    {
        bytes32 separator = domainSeparator(chainId, verifyingContract);
        uint256 n = reports.length;
        uint256[] memory words = new uint256[](n);
        address[] memory signers = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            ReportIn calldata r = reports[i];
            (uint32 asset, uint64 price, uint64 timestamp) = (r.asset, r.price, r.timestamp);
            (uint8 code, address signer) =
                _recover(_hashReport(separator, asset, price, timestamp, r.round), r.signature);
            if (code != CODE_OK) {
                _checkInputs(cfg, st); // an invalid input reverts whatever the reports hold
                return (code, OUTCOME_NO_UPDATE, st, 0, 0);
            }
            words[i] = _pack(asset, price, timestamp);
            signers[i] = signer;
        }
        return _aggregate(cfg, st, words, signers, nowMs);
    }

    // ------------------------------------------------------------------------------ internals

    function _digest(bytes32 separator, ReportIn calldata r) private pure returns (bytes32) {
        return _hashReport(separator, r.asset, r.price, r.timestamp, r.round);
    }

    /// @dev keccak(0x1901 || separator || keccak(abi.encode(REPORT_TYPEHASH, asset, price,
    ///      timeMs, round))), built in scratch memory past the free pointer (not kept).
    function _hashReport(bytes32 separator, uint32 asset, uint64 price, uint64 timeMs, uint64 round)
        private
        pure
        returns (bytes32 d)
    {
        bytes32 typehash = REPORT_TYPEHASH;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typehash)
            mstore(add(p, 0x20), asset)
            mstore(add(p, 0x40), price)
            mstore(add(p, 0x60), timeMs)
            mstore(add(p, 0x80), round)
            let structHash := keccak256(p, 0xa0)
            mstore(p, shl(240, 0x1901))
            mstore(add(p, 0x02), separator)
            mstore(add(p, 0x22), structHash)
            d := keccak256(p, 0x42)
        }
    }

    /// @dev One word per report for the rules: price in bits 0-63, timestamp 64-127, asset
    ///      128-159 (one memory read instead of three, and the fresh prices reuse the array).
    function _pack(uint32 asset, uint64 price, uint64 timestamp) private pure returns (uint256) {
        return uint256(price) | (uint256(timestamp) << 64) | (uint256(asset) << 128);
    }

    /// @dev `clearline.core.eip712.recover`, check for check and in its order: length, v (27 or
    ///      28 only: one canonical form, 0/1 are refused, not normalised), 0 < r, s < n, then
    ///      low s, then recovery (ecrecover yields 0 where libsecp256k1 fails: r not the x of a
    ///      curve point, or the point at infinity).
    function _recover(bytes32 digest, bytes calldata sig) private pure returns (uint8 code, address signer) {
        if (sig.length != 65) return (CODE_BAD_SIGNATURE, address(0));
        uint8 v = uint8(sig[64]);
        if (v != 27 && v != 28) return (CODE_BAD_SIGNATURE, address(0));
        bytes32 r;
        bytes32 s;
        assembly ("memory-safe") {
            // sig.length == 65: both words lie inside it
            r := calldataload(sig.offset)
            s := calldataload(add(sig.offset, 32))
        }
        if (r == 0 || uint256(r) >= N || s == 0 || uint256(s) >= N) return (CODE_BAD_SIGNATURE, address(0));
        if (uint256(s) > HALF_N) return (CODE_HIGH_S_SIGNATURE, address(0));
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) return (CODE_BAD_SIGNATURE, address(0));
        return (CODE_OK, signer);
    }

    /// @dev The checks of `OracleConfig.__post_init__` and `OracleState.__post_init__` that the
    ///      ABI types do not already make. Returns the reporters, copied to memory once.
    function _checkInputs(OracleConfigIn calldata cfg, OracleStateIn calldata st)
        private
        pure
        returns (address[] memory rep)
    {
        rep = cfg.reporters;
        uint256 m = rep.length;
        if (m == 0) revert NoReporters();
        uint256 k = _firstRepeat(rep);
        if (k < m) revert DuplicateConfigReporter(rep[k]);
        if (cfg.quorum == 0 || cfg.quorum > m) revert QuorumOutOfRange(cfg.quorum, m);
        if (cfg.confirmations == 0) revert ZeroConfirmations();
        if ((st.pendingCount == 0) != (st.pendingPrice == 0)) revert PendingMismatch(st.pendingPrice, st.pendingCount);
        if (st.pendingCount != 0 && st.indexPrice == 0) revert PendingWithoutIndex();
    }

    // The two scans below run O(n * m) and O(n^2) times per round, hence assembly: plain
    // word compares over memory arrays that Solidity decoded (and so cleaned) itself, without
    // the per-element bounds checks (the loops stay inside the arrays' lengths).

    /// @dev Whether `who` is in `a`.
    function _contains(address[] memory a, address who) private pure returns (bool found) {
        assembly ("memory-safe") {
            let p := add(a, 0x20)
            let end := add(p, shl(5, mload(a)))
            for {} lt(p, end) { p := add(p, 0x20) } {
                if eq(mload(p), who) {
                    found := 1
                    break
                }
            }
        }
    }

    /// @dev The smallest index i with a[i] == a[j] for some j < i, or a.length if all differ.
    function _firstRepeat(address[] memory a) private pure returns (uint256 index) {
        assembly ("memory-safe") {
            let n := mload(a)
            let base := add(a, 0x20)
            index := n
            for { let i := 1 } and(lt(i, n), eq(index, n)) { i := add(i, 1) } {
                let x := mload(add(base, shl(5, i)))
                for { let p := base } lt(p, add(base, shl(5, i))) { p := add(p, 0x20) } {
                    if eq(mload(p), x) {
                        index := i
                        break
                    }
                }
            }
        }
    }

    /// @dev The rules of `clearline.oracle.aggregate` (module docstring), in its order.
    function _aggregate(
        OracleConfigIn calldata cfg,
        OracleStateIn calldata st,
        uint256[] memory words, //  `_pack`ed reports
        address[] memory signers,
        uint64 nowMs
    ) private pure returns (uint8, uint8, OracleStateIn memory next, uint64 med, uint256 used) {
        address[] memory rep = _checkInputs(cfg, st);
        next = st;
        // 1. whole-update rejections: time, then any wrong asset, then any repeated signer
        if (nowMs < st.lastRoundMs) return (CODE_TIME_WENT_BACKWARDS, OUTCOME_NO_UPDATE, next, 0, 0);
        uint256 n = words.length;
        uint32 asset = st.asset;
        for (uint256 i = 0; i < n; ++i) {
            if (uint32(words[i] >> 128) != asset) return (CODE_WRONG_ASSET, OUTCOME_NO_UPDATE, next, 0, 0);
        }
        if (_firstRepeat(signers) < n) return (CODE_DUPLICATE_REPORTER, OUTCOME_NO_UPDATE, next, 0, 0);
        // 2. fresh reports: known signer, price > 0, not in the future, age <= staleness
        //    (inclusive), newer than the last round (the replay guard). Dropped otherwise; the
        //    reason is not needed for the result. The fresh prices are written over the front
        //    of `words` (each word is read before its slot can be overwritten: used <= i).
        uint64 staleness = cfg.stalenessMs;
        uint64 lastRound = st.lastRoundMs;
        for (uint256 i = 0; i < n; ++i) {
            uint256 w = words[i];
            uint64 price = uint64(w);
            uint64 t = uint64(w >> 64);
            if (price == 0 || t > nowMs || nowMs - t > staleness || t <= lastRound) continue;
            if (!_contains(rep, signers[i])) continue;
            words[used++] = price;
        }
        // 3. quorum: below it nothing changes (a pending jump neither advances nor resets)
        if (used < cfg.quorum) return (CODE_OK, OUTCOME_NO_UPDATE, next, 0, used);
        // 4. lower median: always one of the signed prices, no rounding rule
        med = uint64(_lowerMedian(words, used));
        // 5. deviation guard against the last confirmed index (uint256: no overflow possible,
        //    64 + 20 bits and 32 + 64 bits)
        uint256 last = st.indexPrice;
        uint256 diff = med > last ? med - last : last - med;
        if (last == 0 || diff * PPM <= uint256(cfg.maxDeviationPpm) * last) {
            next = OracleStateIn(asset, med, nowMs, nowMs, 0, 0);
            return (CODE_OK, OUTCOME_ACCEPTED, next, med, used);
        }
        // beyond the bound: a pending jump on the same side counts on, any other restarts at 1
        // (uint256: a pendingCount of 2**64 - 1 plus one still compares, and then confirms)
        bool up = med > last;
        uint256 count = (st.pendingCount > 0 && (st.pendingPrice > last) == up) ? uint256(st.pendingCount) + 1 : 1;
        if (count >= cfg.confirmations) {
            next = OracleStateIn(asset, med, nowMs, nowMs, 0, 0);
            return (CODE_OK, OUTCOME_CONFIRMED, next, med, used);
        }
        // count < confirmations <= 2**32 - 1: fits
        next = OracleStateIn(asset, st.indexPrice, st.indexTimeMs, nowMs, med, uint64(count));
        return (CODE_OK, OUTCOME_UNCONFIRMED, next, med, used);
    }

    /// @dev `sorted(values[:n])[(n - 1) // 2]` for n >= 1 (insertion sort in memory: n is a
    ///      handful of reporters).
    function _lowerMedian(uint256[] memory a, uint256 n) private pure returns (uint256) {
        for (uint256 i = 1; i < n; ++i) {
            uint256 x = a[i];
            uint256 j = i;
            while (j > 0 && a[j - 1] > x) {
                a[j] = a[j - 1];
                --j;
            }
            a[j] = x;
        }
        return a[(n - 1) / 2];
    }
}
