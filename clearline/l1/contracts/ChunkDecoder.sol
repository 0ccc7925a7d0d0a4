// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscapeState} from "./Escape.sol";
import {SparseMerkle} from "./SparseMerkle.sol";
import {
    REASON_CHUNK_BAD_FALLBACK,
    REASON_CHUNK_FIELD_RANGE,
    REASON_CHUNK_NOT_CANONICAL,
    REASON_CHUNK_UNDECODABLE
} from "./Reasons.sol";

/// @notice The chunk breaks a batch_v2 rule (reason: REASON_CHUNK_*, Reasons.sol).
error ChunkMalformed(uint256 reason);

/// @notice The witness of a KIND_ORDER proof (FraudVerifier): transaction `j` of the chunk, the
///         preimage of the chunk's pre-root, and the market leaf of the order's instrument ("" =
///         none) with its compressed proof against pre.marketsRoot.
struct OrderWitness {
    uint256 j;
    EscapeState pre;
    bytes leaf;
    uint256 present;
    bytes32[] siblings;
}

/// @title Leb128
/// @notice batch_v2's varints, read strictly (shared by the ChunkDecoder and the FraudVerifier).
library Leb128 {
    /// @dev The signed value of a zigzag varint.
    function unzz(uint256 z) internal pure returns (int256) {
        return z & 1 == 0 ? int256(z >> 1) : -int256((z + 1) >> 1);
    }

    /// @dev Unsigned LEB128 at `p`: (value, next position, ok). Not ok: past the end, more than
    ///      10 bytes, or not minimal (a last byte of 0 after the first) -- batch_v2's rules.
    function read(bytes calldata d, uint256 p) internal pure returns (uint256 v, uint256 q, bool ok) {
        assembly ("memory-safe") {
            let len := d.length
            let w := calldataload(add(d.offset, p)) // the bytes at p.. (checked against len below)
            q := p
            for { let i := 0 } lt(i, 10) { i := add(i, 1) } {
                if iszero(lt(q, len)) { break }
                let b := byte(i, w)
                q := add(q, 1)
                v := or(v, shl(mul(7, i), and(b, 0x7F)))
                if lt(b, 0x80) {
                    ok := iszero(and(iszero(b), gt(i, 0)))
                    break
                }
            }
            if iszero(ok) { v := 0 }
        }
    }
}

/// @title ChunkDecoder
/// @notice batch data v3's strict chunk decoder, the FraudVerifier's (it calls `decodeChunk` and
///         catches ChunkMalformed; kept in its own contract for the FraudVerifier's 24 KB limit).
///         Stateless. See FraudVerifier's notice for the rules and tests/fraud/test_decoder.py
///         for the differential test against clearline.l1.batch_v2 / batch_v3. `signerOf` reads
///         one signed transaction of a valid chunk and recovers its signer (KIND_SIGNATURE).
contract ChunkDecoder {
    uint256 internal constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint256 private constant FALLBACK = 0xFF;
    uint256 private constant U32 = type(uint32).max;
    uint256 private constant U64 = type(uint64).max;

    function _u(bytes calldata d, uint256 p) internal pure returns (uint256 v, uint256 q, bool ok) {
        return Leb128.read(d, p);
    }

    function _unzz(uint256 z) private pure returns (int256) {
        return Leb128.unzz(z);
    }

    /// @notice Decode one chunk of batch data v3 (the transactions up to its end, each under
    ///         batch_v2's strict rules, clearline/l1/batch_v2.py and batch_v3.py); reverts
    ///         ChunkMalformed(reason) at the first rule broken (REASON_CHUNK_*), so it reverts
    ///         exactly when `batch_v3.decode_chunk_v3` raises: a transaction breaks a rule, more
    ///         than `k` of them, or one of ALONE_KINDS (Order, Replace, Withdraw, Transfer,
    ///         MarkUpdate, OperatorAction, SetMarginMode, ForcedWithdrawal, SetAccountFlags) not
    ///         alone. An empty chunk decodes (count 0): it is one matching step of an order. Returns `count` and `l1Total` the Deposits and ForcedWithdrawals (and
    ///         `l1Before` = `l1Total`); a `target` below the count stops the walk at transaction
    ///         `target` (the ones before it checked) with `at` the position of its head,
    ///         `l1Before` the L1 transactions before it, `count` = `target` and the time
    ///         before it (the previous transaction's, 0 for the first) in place of `l1Total`.
    function decodeChunk(bytes calldata chunk, uint256 k, uint256 target)
        external
        pure
        returns (uint256 l1Before, uint256 at, uint256 l1Total, uint256 count)
    {
        uint256 p;
        uint256 t;
        uint256 len = chunk.length;
        bool operator;
        int256[80] memory s; // risk arrays j-3..j (4 x 16, ring) and 16 residuals
        while (p < len) {
            if (count == k) _bad(REASON_CHUNK_UNDECODABLE); // more than k transactions
            if (count == target) return (l1Total, p, t, count); // the time before it in place of l1Total
            if (_alone(chunk, p)) operator = true;
            bool l1;
            (p, t, l1) = _tx(chunk, p, t, s);
            if (p > len) _bad(REASON_CHUNK_UNDECODABLE);
            if (l1) ++l1Total;
            ++count;
        }
        if (operator && count > 1) _bad(REASON_CHUNK_UNDECODABLE); // none: a matching step
        return (l1Total, 0, l1Total, count);
    }

    // ------------------------------------------------------------------------------ orders
    error BadOrderWitness(); // not a packed Order, another pre-state, or a leaf that does not prove

    uint256 internal constant UNDERLYING_BASE = 1 << 23;
    bytes32 internal constant STATE_TAG = keccak256("clearline.state.v1");
    bytes32 internal constant MARKET_TAG = keccak256("clearline.market.v1");

    /// @notice KIND_ORDER: 31 when the core rejects the packed Order at `p` (`prevTime` the time
    ///         before it) for a reason its own fields and its market's leaf at the chunk's
    ///         pre-state show (clearline.core.apply._place / _validate_order_shape), else 0. The
    ///         market's status, expiry and mark cannot change inside a chunk of orders (operator
    ///         transactions and MarkUpdates are alone in theirs), so the pre-state's leaf is the
    ///         one the order meets: an unknown instrument, a market not ACTIVE, expired at the
    ///         order's time or without a mark price; self-trade prevention mode 3; a zero price or
    ///         size; a market order that is not IOC or FOK; a post-only order that cannot rest; a
    ///         GTT order without an expiry; an expiry at or before the order's time.
    ///         `witness` is abi.encode(OrderWitness), read in place.
    function judgeOrder(bytes32 preRoot, bytes calldata d, uint256 p, uint256 prevTime, bytes calldata witness)
        external
        pure
        returns (uint256)
    {
        if (witness.length < 32) revert BadOrderWitness();
        OrderWitness calldata w;
        assembly ("memory-safe") {
            w := add(witness.offset, calldataload(witness.offset))
        }
        if (keccak256(abi.encode(STATE_TAG, w.pre)) != preRoot) revert BadOrderWitness();
        uint256 head = uint8(d[p]);
        if (head == FALLBACK || head & 0x0F != 2) revert BadOrderWitness();
        uint256 t = prevTime;
        uint256 v;
        ++p;
        if (head & 0x80 != 0) {
            (v, p) = _ru(d, p);
            t = _plusZ(t, v);
        }
        (, p) = _ru(d, p); // account
        uint256 instrument;
        (instrument, p) = _ru(d, p);
        uint256 shape = uint8(d[p++]);
        uint256 price;
        uint256 size;
        uint256 expiry;
        (price, p) = _ru(d, p);
        (size, p) = _ru(d, p);
        if (head & 0x10 != 0) {
            (v, p) = _ru(d, p);
            expiry = _plusZ(t, v);
        }
        if (instrument >= UNDERLYING_BASE) return 31; // no market has such an id
        bytes calldata leaf = w.leaf;
        bytes32 h = leaf.length == 0 ? bytes32(0) : keccak256(leaf);
        if (SparseMerkle.rootFromCompressedProof(24, instrument, h, w.present, w.siblings) != w.pre.marketsRoot) {
            revert BadOrderWitness();
        }
        if (leaf.length == 0) return 31; // UNKNOWN_INSTRUMENT
        if (leaf.length != 45 * 32 || bytes32(leaf[0:32]) != MARKET_TAG) revert BadOrderWitness();
        uint256 mExpiry = uint256(bytes32(leaf[11 * 32:12 * 32]));
        if (
            uint256(bytes32(leaf[14 * 32:15 * 32])) != 0 || (mExpiry != 0 && t >= mExpiry)
                || uint256(bytes32(leaf[15 * 32:16 * 32])) == 0
        ) return 31; // not ACTIVE, expired, no mark price
        bool isMarket = (shape >> 1) & 1 == 1;
        uint256 tif = (shape >> 2) & 3;
        bool postOnly = (shape >> 4) & 1 == 1;
        if (
            shape >> 6 == 3 || price == 0 || size == 0 || (isMarket && tif < 2) || (postOnly && (tif >= 2 || isMarket))
                || (tif == 1 && expiry == 0) || (expiry != 0 && t >= expiry)
        ) return 31;
        return 0;
    }

    // ------------------------------------------------------------------- signed transactions
    bytes32 internal constant ORDER_TYPEHASH = keccak256(
        "Order(uint32 account,uint32 instrument,uint8 side,uint8 orderType,uint8 timeInForce,uint8 flags,uint8 stp,"
        "uint64 price,uint64 size,uint64 expiry,uint64 clientId,uint64 nonce)"
    );
    bytes32 internal constant CANCEL_TYPEHASH = keccak256(
        "Cancel(uint32 account,uint8 scope,uint32 instrument,uint64 orderId,uint64 clientId,uint64 nonce)"
    );
    bytes32 internal constant REPLACE_TYPEHASH =
        keccak256("Replace(uint32 account,uint64 orderId,uint64 price,uint64 size,uint64 nonce)");
    bytes32 internal constant WITHDRAW_TYPEHASH = keccak256("Withdraw(uint32 account,uint64 amount,uint64 nonce)");
    bytes32 internal constant TRANSFER_TYPEHASH =
        keccak256("Transfer(uint32 account,uint32 toSubaccount,uint64 amount,uint64 nonce)");
    bytes32 internal constant MARGIN_MODE_TYPEHASH = keccak256("SetMarginMode(uint32 account,uint8 mode,uint64 nonce)");
    bytes32 internal constant FLAGS_TYPEHASH = keccak256("SetAccountFlags(uint32 account,uint8 flags,uint64 nonce)");

    /// @notice The account, nonce and EIP-712 signer (under `domain`) of the packed user-signed
    ///         transaction whose head is at `p` in a chunk the strict decoder accepted (Order,
    ///         Cancel, Replace, Withdraw, Transfer, SetMarginMode, SetAccountFlags: batch_v2's
    ///         layouts; clearline.core.eip712's struct types), `prevTime` the time before it in
    ///         its chunk. `signed` false for any other head (a fallback included); `signer` 0 for a
    ///         signature the core does not recover (high s, r or s zero, no key).
    function signerOf(bytes calldata d, uint256 p, uint256 prevTime, bytes32 domain)
        external
        pure
        returns (bool signed, uint256 account, uint256 nonce, address signer)
    {
        uint256 head = uint8(d[p]);
        uint256 kind = head & 0x0F;
        if (head == FALLBACK || kind < 2 || kind == 7 || kind == 8 || kind == 10) return (false, 0, 0, address(0));
        uint256 t = prevTime;
        uint256 v;
        ++p;
        if (head & 0x80 != 0) {
            (v, p) = _ru(d, p);
            t = _plusZ(t, v);
        }
        (account, p) = _ru(d, p);
        uint256[11] memory w; // the struct's fields after `account`, in signing order, then the nonce last
        uint256 n; //           how many of w are used before the nonce
        bytes32 typeHash;
        if (kind == 2) {
            typeHash = ORDER_TYPEHASH;
            (w[0], p) = _ru(d, p); // instrument
            uint256 shape = uint8(d[p++]);
            (w[1], w[2], w[3], w[4], w[5]) = (shape & 1, (shape >> 1) & 1, (shape >> 2) & 3, (shape >> 4) & 3, shape >> 6);
            (w[6], p) = _ru(d, p); // price
            (w[7], p) = _ru(d, p); // size
            if (head & 0x10 != 0) {
                (v, p) = _ru(d, p);
                w[8] = _plusZ(t, v); // expiry
            }
            if (head & 0x20 != 0) (w[9], p) = _ru(d, p); // clientId
            n = 10;
        } else if (kind == 3) {
            typeHash = CANCEL_TYPEHASH;
            w[0] = ((head >> 4) & 1) | (((head >> 5) & 1) << 1); // scope: F1 | F2 << 1
            (w[1], p) = _ru(d, p); // instrument
            (w[2], p) = _ru(d, p); // orderId
            (w[3], p) = _ru(d, p); // clientId
            n = 4;
        } else if (kind == 4) {
            typeHash = REPLACE_TYPEHASH;
            (w[0], p) = _ru(d, p); // orderId
            (w[1], p) = _ru(d, p); // price
            (w[2], p) = _ru(d, p); // size
            n = 3;
        } else if (kind == 5) {
            typeHash = WITHDRAW_TYPEHASH;
            (w[0], p) = _ru(d, p); // amount
            n = 1;
        } else if (kind == 6) {
            typeHash = TRANSFER_TYPEHASH;
            (w[0], p) = _ru(d, p); // toSubaccount
            (w[1], p) = _ru(d, p); // amount
            n = 2;
        } else {
            typeHash = kind == 9 ? MARGIN_MODE_TYPEHASH : FLAGS_TYPEHASH;
            w[0] = uint8(d[p++]); // mode, flags
            n = 1;
        }
        (v, p) = _ru(d, p);
        nonce = head & 0x40 != 0 ? _plusZ(t, v) : v;
        w[n] = nonce;
        bytes32 structHash;
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch (not allocated): typeHash, account, w[0..n]
            mstore(m, typeHash)
            mstore(add(m, 32), account)
            for { let i := 0 } iszero(gt(i, n)) { i := add(i, 1) } {
                mstore(add(m, add(64, shl(5, i))), mload(add(w, shl(5, i))))
            }
            structHash := keccak256(m, add(96, shl(5, n)))
        }
        bytes32 r = bytes32(d[p:p + 32]);
        uint256 vs = uint256(bytes32(d[p + 32:p + 64]));
        bytes32 sigS = bytes32(vs & ((1 << 255) - 1));
        if (uint256(sigS) > HALF_N || r == 0 || sigS == 0) return (true, account, nonce, address(0));
        bytes32 digest = keccak256(abi.encodePacked(bytes2(0x1901), domain, structHash));
        return (true, account, nonce, ecrecover(digest, uint8(27 + (vs >> 255)), r, sigS));
    }

    /// @dev Whether the transaction at p must be alone in its chunk: head kind 2 (Order), 4
    ///      (Replace), 5 (Withdraw), 6
    ///      (Transfer), 7 (MarkUpdate), 8 (OperatorAction), 9 (SetMarginMode), 10
    ///      (ForcedWithdrawal) or 11 (SetAccountFlags), or a fallback whose ABI kind (its first
    ///      word) is one of them.
    function _alone(bytes calldata chunk, uint256 p) private pure returns (bool) {
        uint256 head = uint8(chunk[p]);
        uint256 kind = head & 0x0F;
        if (head == FALLBACK) {
            (uint256 n, uint256 a, bool ok) = _u(chunk, p + 1);
            kind = ok && n >= 32 && a + 32 <= chunk.length ? uint8(chunk[a + 31]) : 0;
        }
        return kind == 2 || (kind >= 4 && kind <= 11);
    }

    function _bad(uint256 reason) private pure {
        revert ChunkMalformed(reason);
    }

    /// @dev Strict varint (batch_v2._read_u): (value, next).
    function _ru(bytes calldata d, uint256 p) private pure returns (uint256 v, uint256 q) {
        bool ok;
        (v, q, ok) = _u(d, p);
        if (!ok) _bad(REASON_CHUNK_UNDECODABLE);
    }

    /// @dev Strict varint at most `limit` (batch_v2._read_bounded).
    function _rb(bytes calldata d, uint256 p, uint256 limit) private pure returns (uint256 q) {
        uint256 v;
        (v, q) = _ru(d, p);
        if (v > limit) _bad(REASON_CHUNK_FIELD_RANGE);
    }

    /// @dev `base + unzz(z)`, which must be a uint64.
    function _plusZ(uint256 base, uint256 z) private pure returns (uint256) {
        int256 v = int256(base) + _unzz(z);
        if (v < 0 || v > int256(U64)) _bad(REASON_CHUNK_FIELD_RANGE);
        return uint256(v);
    }

    /// @dev Bytes of the minimal LEB128 of v.
    function _ulen(uint256 v) private pure returns (uint256 n) {
        n = 1;
        while (v > 0x7F) {
            v >>= 7;
            ++n;
        }
    }

    /// @dev One transaction at p (its head); (next, its time, is a Deposit/ForcedWithdrawal).
    function _tx(bytes calldata d, uint256 p, uint256 prev, int256[80] memory s)
        private
        pure
        returns (uint256, uint256 t, bool)
    {
        uint256 head = uint8(d[p]);
        ++p;
        if (head == FALLBACK) return _fallback(d, p);
        uint256 kind = head & 0x0F;
        if (kind == 0 || kind > 11) _bad(REASON_CHUNK_UNDECODABLE);
        t = prev;
        if (head & 0x80 != 0) {
            uint256 z;
            (z, p) = _ru(d, p);
            if (z == 0) _bad(REASON_CHUNK_UNDECODABLE);
            t = _plusZ(prev, z);
        }
        uint256 f = head & 0x70;
        if (kind == 1 || kind == 10) {
            p = _rb(d, p, U64); // queueIndex
            p = _rb(d, _rb(d, p + 20, U32), U64); // owner, subaccount / account, amount
            if (f != 0) _bad(REASON_CHUNK_NOT_CANONICAL);
            return (p, t, true);
        }
        if (kind == 2) return (_order(d, p, f, t), t, false);
        if (kind == 7) return (_mark(d, p, f, t, s), t, false);
        if (kind == 8) {
            if (f != 0) _bad(REASON_CHUNK_NOT_CANONICAL);
            p = _rb(d, _rb(d, p + 1, U32), U64); // action, target, arg
            uint256 z;
            (z, p) = _ru(d, p);
            _plusZ(t, z); // timestamp
            return (p + 64, t, false);
        }
        if (kind != 3 && f & 0x30 != 0) _bad(REASON_CHUNK_NOT_CANONICAL); // F1, F2 only in cancels
        p = _rb(d, p, U32); // account
        if (kind == 3) p = _rb(d, _rb(d, _rb(d, p, U32), U64), U64); // instrument, orderId, clientId
        else if (kind == 4) p = _rb(d, _rb(d, _rb(d, p, U64), U64), U64); // orderId, price, size
        else if (kind == 5) p = _rb(d, p, U64); // amount
        else if (kind == 6) p = _rb(d, _rb(d, p, U32), U64); // toSubaccount, amount
        else ++p; // 9: mode, 11: flags
        return (_nonce(d, p, f, t) + 64, t, false);
    }

    function _order(bytes calldata d, uint256 p, uint256 f, uint256 t) private pure returns (uint256) {
        p = _rb(d, _rb(d, p, U32), U32) + 1; // account, instrument, shape
        p = _rb(d, _rb(d, p, U64), U64); // price, size
        uint256 v;
        if (f & 0x10 != 0) {
            (v, p) = _ru(d, p);
            int256 expiry = int256(t) + _unzz(v);
            if (expiry < 0 || expiry > int256(U64)) _bad(REASON_CHUNK_FIELD_RANGE);
            if (expiry == 0) _bad(REASON_CHUNK_NOT_CANONICAL); // F1 with no expiry
        }
        if (f & 0x20 != 0) {
            (v, p) = _ru(d, p);
            if (v > U64) _bad(REASON_CHUNK_FIELD_RANGE);
            if (v == 0) _bad(REASON_CHUNK_NOT_CANONICAL); // F2 with no clientId
        }
        return _nonce(d, p, f, t) + 64;
    }

    /// @dev The nonce (batch_v2._read_nonce): plain if F3 = 0, else z (nonce - t); a uint64,
    ///      in the shorter of the two forms (plain on a tie).
    function _nonce(bytes calldata d, uint256 p, uint256 f, uint256 t) private pure returns (uint256 q) {
        uint256 v;
        (v, q) = _ru(d, p);
        uint256 written = q - p; // minimal: _ulen(v)
        if (f & 0x40 != 0) {
            int256 nonce = int256(t) + _unzz(v);
            if (nonce < 0 || nonce > int256(U64)) _bad(REASON_CHUNK_FIELD_RANGE);
            if (written >= _ulen(uint256(nonce))) _bad(REASON_CHUNK_NOT_CANONICAL);
        } else {
            if (v > U64) _bad(REASON_CHUNK_FIELD_RANGE);
            int256 rel = int256(v) - int256(t);
            uint256 zz = rel >= 0 ? uint256(rel) << 1 : (uint256(-rel) << 1) - 1;
            if (_ulen(zz) < written) _bad(REASON_CHUNK_NOT_CANONICAL);
        }
    }

    function _mark(bytes calldata d, uint256 p, uint256 f, uint256 t, int256[80] memory s)
        private
        pure
        returns (uint256)
    {
        if (f & 0x40 != 0) _bad(REASON_CHUNK_NOT_CANONICAL);
        uint256 z;
        (z, p) = _ru(d, p);
        uint256 ts = _plusZ(t, z);
        uint256 n;
        (n, p) = _ru(d, p);
        if (n > d.length - p) _bad(REASON_CHUNK_UNDECODABLE);
        if (f & 0x10 != 0) {
            if (n == 0) _bad(REASON_CHUNK_NOT_CANONICAL);
            uint256 first;
            (first, p) = _ru(d, p);
            if (first > U32) _bad(REASON_CHUNK_FIELD_RANGE);
            if (first + n - 1 > U32) _bad(REASON_CHUNK_FIELD_RANGE);
        } else {
            p = _instruments(d, p, n);
        }
        for (uint256 i = 0; i < n; ++i) p = _rb(d, p, U64); // prices
        if (f & 0x20 != 0) {
            if (n == 0) _bad(REASON_CHUNK_NOT_CANONICAL);
            p = _riskArrays(d, p, n, s);
        }
        uint256 m;
        (m, p) = _ru(d, p);
        if (m > (d.length - p) / 68) _bad(REASON_CHUNK_UNDECODABLE);
        for (uint256 i = 0; i < m; ++i) {
            p = _rb(d, _rb(d, p, U32), U64); // asset, price
            (z, p) = _ru(d, p);
            _plusZ(ts, z); // report timestamp
            p = _rb(d, p, U64) + 64; // round, sig
        }
        return p + 64;
    }

    /// @dev n zigzag deltas, each running id a uint32; consecutive ids must have been a run (F1).
    function _instruments(bytes calldata d, uint256 p, uint256 n) private pure returns (uint256) {
        int256 id;
        int256 first;
        bool run = true;
        for (uint256 i = 0; i < n; ++i) {
            uint256 z;
            (z, p) = _ru(d, p);
            id += _unzz(z);
            if (id < 0 || id > int256(U32)) _bad(REASON_CHUNK_FIELD_RANGE);
            if (i == 0) first = id;
            else if (id != first + int256(i)) run = false;
        }
        if (n != 0 && run) _bad(REASON_CHUNK_NOT_CANONICAL);
        return p;
    }

    /// @dev n risk arrays (batch_v2._read_risk_arrays): a mode byte (0..3, at most j), 16
    ///      residuals; every value R = ref(mode) + unpredict(residuals) an int64. `s` keeps the
    ///      last four arrays (array j in s[16 * (j % 4) ..]) and the residuals (s[64..80]).
    function _riskArrays(bytes calldata d, uint256 p, uint256 n, int256[80] memory s)
        private
        pure
        returns (uint256)
    {
        uint256 len = d.length;
        for (uint256 j = 0; j < n; ++j) {
            if (p >= len) _bad(REASON_CHUNK_UNDECODABLE);
            uint256 mode = uint8(d[p]);
            ++p;
            if (mode > 3 || mode > j) _bad(REASON_CHUNK_NOT_CANONICAL);
            bool ok;
            (p, ok) = _residuals(d, p, s);
            if (!ok) _bad(REASON_CHUNK_UNDECODABLE);
            _unpredict(s);
            if (!_addReference(s, j, mode)) _bad(REASON_CHUNK_FIELD_RANGE);
        }
        return p;
    }

    /// @dev 16 strict varints at p (as `_u`), zigzag-decoded into s[64..80]: the hot loop,
    ///      with a fast path for one-byte varints. (next, ok).
    function _residuals(bytes calldata d, uint256 p, int256[80] memory s) private pure returns (uint256 q, bool ok) {
        assembly ("memory-safe") {
            let len := d.length
            let off := d.offset
            let e := add(s, 2048)
            let end := add(e, 512)
            q := p
            ok := 1
            for {} lt(e, end) { e := add(e, 32) } {
                if iszero(lt(q, len)) {
                    ok := 0
                    break
                }
                let w := calldataload(add(off, q))
                let v := byte(0, w)
                q := add(q, 1)
                if gt(v, 0x7F) {
                    v := and(v, 0x7F)
                    for { let k := 1 } 1 { k := add(k, 1) } {
                        if or(iszero(lt(q, len)), eq(k, 10)) {
                            ok := 0
                            break
                        }
                        let b := byte(k, w)
                        q := add(q, 1)
                        v := or(v, shl(mul(7, k), and(b, 0x7F)))
                        if lt(b, 0x80) {
                            if iszero(b) { ok := 0 } // overlong
                            break
                        }
                    }
                    if iszero(ok) { break }
                }
                mstore(e, xor(shr(1, v), sub(0, and(v, 1)))) // unzigzag
            }
        }
    }

    /// @dev batch_v2._unpredict in place on s[64..80] (two's complement; |values| < 2^80).
    function _unpredict(int256[80] memory s) private pure {
        assembly ("memory-safe") {
            function at(b, i) -> v {
                v := mload(add(b, shl(5, i)))
            }
            function inc(b, i, x) {
                let a := add(b, shl(5, i))
                mstore(a, add(mload(a), x))
            }
            function floor7of10(x) -> q {
                let y := mul(7, x)
                q := sdiv(y, 10)
                if slt(smod(y, 10), 0) { q := sub(q, 1) }
            }
            let e := add(s, 2048)
            let r0 := mload(e)
            inc(e, 1, r0)
            inc(e, 2, r0)
            inc(e, 3, sub(add(at(e, 2), at(e, 1)), r0))
            inc(e, 4, sub(mul(2, r0), at(e, 2)))
            inc(e, 5, sub(add(at(e, 4), at(e, 1)), r0))
            inc(e, 6, sub(mul(2, at(e, 2)), r0))
            inc(e, 7, sub(add(at(e, 6), at(e, 3)), at(e, 2)))
            inc(e, 8, sub(mul(2, at(e, 4)), r0))
            inc(e, 9, sub(add(at(e, 8), at(e, 5)), at(e, 4)))
            inc(e, 10, sub(mul(2, at(e, 6)), at(e, 2)))
            inc(e, 11, sub(add(at(e, 10), at(e, 7)), at(e, 6)))
            inc(e, 12, sub(mul(2, at(e, 8)), at(e, 4)))
            inc(e, 13, sub(add(at(e, 12), at(e, 9)), at(e, 8)))
            inc(e, 14, floor7of10(at(e, 10)))
            inc(e, 15, floor7of10(at(e, 12)))
        }
    }

    /// @dev Array j = s[64..80] + ref(mode) (0: zeros, 1: array j-1, 2: j-2, 3: j-1 + j-2 - j-3)
    ///      into its ring slot s[16 * (j % 4)..]; false when a value is not an int64.
    function _addReference(int256[80] memory s, uint256 j, uint256 mode) private pure returns (bool ok) {
        assembly ("memory-safe") {
            let e := add(s, 2048)
            let cur := add(s, shl(9, and(j, 3)))
            let bad := 0
            switch mode
            case 0 {
                for { let o := 0 } lt(o, 512) { o := add(o, 32) } {
                    let v := mload(add(e, o))
                    bad := or(bad, gt(add(v, 0x8000000000000000), 0xFFFFFFFFFFFFFFFF)) // v + 2^63 >= 2^64
                    mstore(add(cur, o), v)
                }
            }
            case 3 {
                let a1 := add(s, shl(9, and(add(j, 3), 3)))
                let a2 := add(s, shl(9, and(add(j, 2), 3)))
                let a3 := add(s, shl(9, and(add(j, 1), 3)))
                for { let o := 0 } lt(o, 512) { o := add(o, 32) } {
                    let v := add(mload(add(e, o)), sub(add(mload(add(a1, o)), mload(add(a2, o))), mload(add(a3, o))))
                    bad := or(bad, gt(add(v, 0x8000000000000000), 0xFFFFFFFFFFFFFFFF))
                    mstore(add(cur, o), v)
                }
            }
            default {
                let a := add(s, shl(9, and(add(j, sub(4, mode)), 3))) // array j - mode
                for { let o := 0 } lt(o, 512) { o := add(o, 32) } {
                    let v := add(mload(add(e, o)), mload(add(a, o)))
                    bad := or(bad, gt(add(v, 0x8000000000000000), 0xFFFFFFFFFFFFFFFF))
                    mstore(add(cur, o), v)
                }
            }
            ok := iszero(bad)
        }
    }

    // ---------------------------------------------------------------------- ABI fallbacks
    /// @dev `0xFF || u len || abi`: `abi` must be the canonical encoding of a transaction
    ///      (clearline.core.encoding.decode_tx) that has no packed form (batch_v2.packed_kind).
    ///      Returns (next, its timeMs, false).
    function _fallback(bytes calldata d, uint256 p) private pure returns (uint256, uint256, bool) {
        uint256 n;
        (n, p) = _ru(d, p);
        if (p + n > d.length) _bad(REASON_CHUNK_UNDECODABLE);
        bytes calldata a = d[p:p + n];
        if (n < 32 || _word(a, 0) > 0xFF) _bad(REASON_CHUNK_BAD_FALLBACK);
        uint256 kind = _word(a, 0);
        if (kind == 0 || kind > 11) _bad(REASON_CHUNK_BAD_FALLBACK);
        bool packable;
        if (kind == 7) {
            packable = _abiMark(a);
        } else {
            bytes memory layout = _layout(kind);
            uint256 words = layout.length;
            if (n != 32 * words) _bad(REASON_CHUNK_BAD_FALLBACK);
            for (uint256 i = 1; i < words; ++i) {
                uint256 width = uint8(layout[i]);
                if (width < 32 && _word(a, i) >> (8 * width) != 0) _bad(REASON_CHUNK_BAD_FALLBACK);
            }
            if (kind == 1 || kind == 10) packable = true; // always: every field fits
            else packable = _sigPackable(a, words - 3);
            if (kind == 2) {
                // side, orderType <= 1; tif, flags, stp <= 3 (the shape byte)
                packable = packable && _word(a, 4) <= 1 && _word(a, 5) <= 1 && _word(a, 6) <= 3
                    && _word(a, 7) <= 3 && _word(a, 8) <= 3;
            } else if (kind == 3) {
                packable = packable && _word(a, 3) <= 3; // scope
            }
        }
        if (packable) _bad(REASON_CHUNK_BAD_FALLBACK);
        return (p + n, _word(a, 1), false);
    }

    /// @dev Word i of `a` (bounds checked by the caller).
    function _word(bytes calldata a, uint256 i) private pure returns (uint256 w) {
        assembly ("memory-safe") {
            w := calldataload(add(a.offset, shl(5, i)))
        }
    }

    /// @dev A signature (r, s, v at words i..i+2) the compact form carries: v in {27, 28} and
    ///      the top bit of s clear.
    function _sigPackable(bytes calldata a, uint256 i) private pure returns (bool) {
        uint256 v = _word(a, i + 2);
        return (v == 27 || v == 28) && _word(a, i + 1) >> 255 == 0;
    }

    /// @dev Bytes per ABI word of each static transaction layout (32: bytes32, 20: address).
    function _layout(uint256 kind) private pure returns (bytes memory) {
        if (kind == 1 || kind == 10) return hex"010808140408"; // kind, time, queueIndex, owner, sub/account, amount
        if (kind == 2) return hex"0108040401010101010808080808202001";
        if (kind == 3) return hex"0108040104080808202001";
        if (kind == 4) return hex"01080408080808202001";
        if (kind == 5) return hex"0108040808202001";
        if (kind == 6) return hex"010804040808202001";
        if (kind == 8) return hex"010801040808202001";
        return hex"0108040108202001"; // 9 SetMarginMode, 11 SetAccountFlags
    }

    /// @dev A canonical MarkUpdate (encoding._dec_mark); returns whether it has a packed form
    ///      (one price per instrument and every signature packable).
    function _abiMark(bytes calldata a) private pure returns (bool) {
        uint256 n = a.length;
        if (n < 448) _bad(REASON_CHUNK_BAD_FALLBACK);
        if (_word(a, 1) > U64 || _word(a, 2) > U64 || _word(a, 9) > 0xFF || _word(a, 3) != 320) {
            _bad(REASON_CHUNK_BAD_FALLBACK);
        }
        (uint256 nIns, uint256 end) = _abiArray(a, 320, 32);
        if (_word(a, 4) != end) _bad(REASON_CHUNK_BAD_FALLBACK);
        uint256 nPrices;
        (nPrices, end) = _abiArray(a, end, 64);
        if (_word(a, 5) != end) _bad(REASON_CHUNK_BAD_FALLBACK);
        uint256 nRisk;
        (nRisk, end) = _abiArray(a, end, 0);
        if (nRisk != 0 && nRisk != 16 * nIns) _bad(REASON_CHUNK_BAD_FALLBACK);
        if (_word(a, 6) != end || end + 32 > n) _bad(REASON_CHUNK_BAD_FALLBACK);
        uint256 m = uint256(bytes32(a[end:end + 32]));
        uint256 start = end + 32;
        if (m > (n - start) / 224 || start + m * 224 != n) _bad(REASON_CHUNK_BAD_FALLBACK);
        bool packable = nPrices == nIns && _sigPackable(a, 7);
        for (uint256 i = 0; i < m; ++i) {
            bytes calldata r = a[start + 224 * i:start + 224 * (i + 1)];
            if (_word(r, 0) > U32 || _word(r, 1) > U64 || _word(r, 2) > U64 || _word(r, 3) > U64 || _word(r, 6) > 0xFF)
            {
                _bad(REASON_CHUNK_BAD_FALLBACK);
            }
            if (!_sigPackable(r, 4)) packable = false;
        }
        return packable;
    }

    /// @dev A canonical array at byte `off` of `a`: length word, then words each a uintN
    ///      (`bits`; 0: an int64 sign-extended). (length, end offset).
    function _abiArray(bytes calldata a, uint256 off, uint256 bits) private pure returns (uint256 len, uint256 end) {
        if (off + 32 > a.length) _bad(REASON_CHUNK_BAD_FALLBACK);
        len = _word(a[off:], 0);
        if (len > (a.length - off - 32) / 32) _bad(REASON_CHUNK_BAD_FALLBACK);
        end = off + 32 + 32 * len;
        for (uint256 i = 0; i < len; ++i) {
            uint256 w = uint256(bytes32(a[off + 32 + 32 * i:off + 64 + 32 * i]));
            bool ok = bits == 0
                ? int256(w) >= type(int64).min && int256(w) <= type(int64).max
                : w >> bits == 0;
            if (!ok) _bad(REASON_CHUNK_BAD_FALLBACK);
        }
    }
}
