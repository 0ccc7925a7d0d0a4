// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ReportIn} from "./OracleVerifier.sol";

/// one decoded MarkUpdate (clearline.core.txs.MarkUpdate)
struct MarkTx {
    uint64 timeMs; //          the transaction's time_ms
    uint64 timestamp; //       the signed timestamp
    uint32[] instruments;
    uint64[] prices;
    int64[16][] riskArrays; // empty, or one per instrument
    ReportIn[] reports; //     signature = 65 bytes r || s || v (v 27/28), as batch_v2._read_sig returns it
    bytes signature; //        the operator's, 65 bytes r || s || v
}

/// one decoded OperatorAction (clearline.core.txs.OperatorAction)
struct OperatorTx {
    uint64 timeMs;
    uint8 action;
    uint32 target;
    uint64 arg;
    uint64 timestamp;
    bytes signature; //        65 bytes r || s || v
}

/// @title MarkDecoder
/// @notice Lenient reader of the one packed MarkUpdate (head kind 7) or OperatorAction (kind 8)
///         of a batch data v3 singleton chunk (clearline.l1.batch_v2 documents the layout).
/// @dev    Nothing is checked but the head's kind. The FraudVerifier calls it without the
///         strict walk (FraudVerifier._markUpdate): on a strictly valid chunk this reading
///         is the strict decoder's; on any other the chunk is fraud by itself, so whatever is
///         read there only decides which fraud verdict is given (calldataload past the end
///         gives zeros). A MarkUpdate over the core's bounds (MAX_INSTRUMENTS, MAX_REPORTS) is
///         not read further: its instruments or reports come back as MAX + 1 empty entries,
///         enough for the verdict (the core rejects it) at a bounded cost.
library MarkDecoder {
    error NotPackedMark(); //     the chunk's first byte is not a packed MarkUpdate head (kind 7)
    error NotPackedOperator(); // not a packed OperatorAction head (kind 8)

    uint256 internal constant MAX_INSTRUMENTS = 48; // clearline.core.txs.MAX_MARK_INSTRUMENTS
    uint256 internal constant MAX_REPORTS = 16; //     clearline.core.txs.MAX_MARK_REPORTS
    uint256 private constant T = 0x80; //  head: a time delta follows
    uint256 private constant F1 = 0x10; // MarkUpdate: the instruments are a run
    uint256 private constant F2 = 0x20; // MarkUpdate: risk arrays follow the prices

    /// @dev `chunk` holds exactly one packed transaction (v3 singleton chunk), already strictly validated.
    function decodeMark(bytes calldata chunk) internal pure returns (MarkTx memory t) {
        // 0xFF (ABI fallback) has kind nibble 15, so the kind test also refuses it
        if (chunk.length == 0 || uint8(chunk[0]) & 0x0F != 7) revert NotPackedMark();
        uint256 head = uint8(chunk[0]);
        (uint256 time, uint256 p) = _time(chunk, head);
        t.timeMs = uint64(time);
        uint256 z;
        (z, p) = _u(chunk, p);
        uint256 ts = _plus(time, z);
        t.timestamp = uint64(ts);
        uint256 n;
        (n, p) = _u(chunk, p);
        if (n > MAX_INSTRUMENTS) {
            t.instruments = new uint32[](MAX_INSTRUMENTS + 1);
            return t;
        }
        t.instruments = new uint32[](n);
        if (head & F1 != 0) {
            uint256 first;
            (first, p) = _u(chunk, p);
            for (uint256 i = 0; i < n; ++i) t.instruments[i] = uint32(first + i);
        } else {
            uint256 id; // ids are deltas from the previous one (0 before the first)
            for (uint256 i = 0; i < n; ++i) {
                (z, p) = _u(chunk, p);
                id = _plus(id, z);
                t.instruments[i] = uint32(id);
            }
        }
        t.prices = new uint64[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 v;
            (v, p) = _u(chunk, p);
            t.prices[i] = uint64(v);
        }
        if (head & F2 != 0) (t.riskArrays, p) = _riskArrays(chunk, p, n);
        uint256 m;
        (m, p) = _u(chunk, p);
        if (m > MAX_REPORTS) {
            t.reports = new ReportIn[](MAX_REPORTS + 1);
            return t;
        }
        t.reports = new ReportIn[](m);
        for (uint256 i = 0; i < m; ++i) {
            ReportIn memory r = t.reports[i];
            uint256 v;
            (v, p) = _u(chunk, p);
            r.asset = uint32(v);
            (v, p) = _u(chunk, p);
            r.price = uint64(v);
            (z, p) = _u(chunk, p);
            r.timestamp = uint64(_plus(ts, z)); // relative to the mark's timestamp
            (v, p) = _u(chunk, p);
            r.round = uint64(v);
            (r.signature, p) = _sig(chunk, p);
        }
        (t.signature,) = _sig(chunk, p);
    }

    function decodeOperator(bytes calldata chunk) internal pure returns (OperatorTx memory t) {
        if (chunk.length == 0 || uint8(chunk[0]) & 0x0F != 8) revert NotPackedOperator();
        (uint256 time, uint256 p) = _time(chunk, uint8(chunk[0]));
        t.timeMs = uint64(time);
        t.action = uint8(chunk[p]);
        uint256 v;
        (v, p) = _u(chunk, p + 1);
        t.target = uint32(v);
        (v, p) = _u(chunk, p);
        t.arg = uint64(v);
        (v, p) = _u(chunk, p);
        t.timestamp = uint64(_plus(time, v));
        (t.signature,) = _sig(chunk, p);
    }

    /// @notice The account and nonce of the packed user-signed transaction whose head is at `p`
    ///         (Order, Cancel, Replace, Withdraw, Transfer, SetMarginMode, SetAccountFlags;
    ///         batch_v2's layouts), `prevTime` the time before it in its chunk; `signed` false
    ///         for any other head (a fallback included). Lenient: for a chunk the strict decoder accepted.
    function accountNonce(bytes calldata d, uint256 p, uint256 prevTime)
        internal
        pure
        returns (bool signed, uint256 account, uint256 nonce)
    {
        uint256 head = uint8(d[p]);
        uint256 kind = head & 0x0F;
        if (head == 0xFF || kind < 2 || kind == 7 || kind == 8 || kind == 10 || kind > 11) return (false, 0, 0);
        uint256 t = prevTime;
        uint256 v;
        ++p;
        if (head & T != 0) {
            (v, p) = _u(d, p);
            t = _plus(t, v);
        }
        (account, p) = _u(d, p);
        if (kind == 2) {
            (, p) = _u(d, p); //            instrument
            (, p) = _u(d, p + 1); //        shape, then price
            (, p) = _u(d, p); //            size
            if (head & 0x10 != 0) (, p) = _u(d, p); // expiry
            if (head & 0x20 != 0) (, p) = _u(d, p); // clientId
        } else if (kind == 3) {
            (, p) = _u(d, p); //            instrument
            (, p) = _u(d, p); //            orderId
            (, p) = _u(d, p); //            clientId
        } else if (kind == 4) {
            (, p) = _u(d, p); //            orderId
            (, p) = _u(d, p); //            price
            (, p) = _u(d, p); //            size
        } else if (kind == 6) {
            (, p) = _u(d, p); //            toSubaccount
            (, p) = _u(d, p); //            amount
        } else if (kind == 9 || kind == 11) {
            ++p; //                         mode, flags
        } else {
            (, p) = _u(d, p); //            Withdraw: amount
        }
        (v,) = _u(d, p);
        nonce = head & 0x40 != 0 ? _plus(t, v) : v;
        signed = true;
    }

    /// @dev The transaction's time and the offset after it: a v3 singleton chunk starts with
    ///      prev time 0, so without T the time is 0 and with T the delta is the time itself.
    function _time(bytes calldata d, uint256 head) private pure returns (uint256 time, uint256 p) {
        if (head & T == 0) return (0, 1);
        uint256 z;
        (z, p) = _u(d, 1);
        time = _plus(0, z);
    }

    /// @dev LEB128 varint at p (at most 10 bytes, so one calldata word holds it). (value, next)
    function _u(bytes calldata d, uint256 p) private pure returns (uint256 v, uint256 q) {
        assembly ("memory-safe") {
            let w := calldataload(add(d.offset, p))
            for { let i := 0 } 1 { i := add(i, 1) } {
                let b := byte(i, w)
                v := or(v, shl(mul(7, i), and(b, 0x7F)))
                if lt(b, 0x80) {
                    q := add(p, add(i, 1))
                    break
                }
            }
        }
    }

    /// @dev `base + unzigzag(z)`; the validator has checked that it is a uint64.
    function _plus(uint256 base, uint256 z) private pure returns (uint256 r) {
        assembly ("memory-safe") {
            r := add(base, xor(shr(1, z), sub(0, and(z, 1)))) // wraps exactly like int256
        }
    }

    /// @dev EIP-2098 compact `r || (v - 27) << 255 | s` at p back to 65 bytes r || s || v.
    function _sig(bytes calldata d, uint256 p) private pure returns (bytes memory sig, uint256 q) {
        bytes32 r = bytes32(d[p:p + 32]);
        uint256 vs = uint256(bytes32(d[p + 32:p + 64]));
        sig = abi.encodePacked(r, vs & (type(uint256).max >> 1), uint8(27 + (vs >> 255)));
        q = p + 64;
    }

    /// @dev n risk arrays (batch_v2._read_risk_arrays): per array a mode byte and 16 zigzag
    ///      residuals, undone by the scenario predictor (batch_v2._unpredict) into D, then
    ///      R = D + ref(mode) with ref read from the arrays already decoded. Assembly because
    ///      this is ~1,000 values for a demo MarkUpdate. Intermediate values stay far inside
    ///      int256 (residuals < 2^70), so two's complement wrapping gives Python's integers.
    function _riskArrays(bytes calldata d, uint256 p, uint256 n)
        private
        pure
        returns (int64[16][] memory arrays, uint256 q)
    {
        assembly ("memory-safe") {
            function at(b, i) -> v {
                v := mload(add(b, shl(5, i)))
            }
            function inc(b, i, x) {
                let a := add(b, shl(5, i))
                mstore(a, add(mload(a), x))
            }
            function floor7of10(x) -> r {
                let y := mul(7, x)
                r := sdiv(y, 10)
                if slt(smod(y, 10), 0) { r := sub(r, 1) } // sdiv truncates; Python floors
            }
            // int64[16][]: a length word, n pointers, then the n arrays of 16 words each (no
            // zeroing: every word is written below)
            arrays := mload(0x40)
            mstore(arrays, n)
            let body := add(arrays, add(32, shl(5, n)))
            mstore(0x40, add(body, shl(9, n)))
            let c := add(d.offset, p) // calldata position of the next byte
            for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                let cur := add(body, shl(9, j))
                mstore(add(arrays, shl(5, add(j, 1))), cur)
                mstore(0, byte(0, calldataload(c))) // the mode, in scratch space: the stack is full
                c := add(c, 1)
                for { let o := 0 } lt(o, 512) { o := add(o, 32) } {
                    let w := calldataload(c)
                    let v := shr(248, w)
                    c := add(c, 1)
                    if gt(v, 0x7F) { // a multi-byte residual: shift its bytes out of w
                        v := and(v, 0x7F)
                        for { let sh := 7 } 1 { sh := add(sh, 7) } {
                            w := shl(8, w)
                            let b := shr(248, w)
                            c := add(c, 1)
                            v := or(v, shl(sh, and(b, 0x7F)))
                            if lt(b, 0x80) { break }
                        }
                    }
                    mstore(add(cur, o), xor(shr(1, v), sub(0, and(v, 1))))
                }
                // batch_v2._unpredict, in place
                let r0 := mload(cur)
                inc(cur, 1, r0)
                inc(cur, 2, r0)
                inc(cur, 3, sub(add(at(cur, 2), at(cur, 1)), r0))
                inc(cur, 4, sub(mul(2, r0), at(cur, 2)))
                inc(cur, 5, sub(add(at(cur, 4), at(cur, 1)), r0))
                inc(cur, 6, sub(mul(2, at(cur, 2)), r0))
                inc(cur, 7, sub(add(at(cur, 6), at(cur, 3)), at(cur, 2)))
                inc(cur, 8, sub(mul(2, at(cur, 4)), r0))
                inc(cur, 9, sub(add(at(cur, 8), at(cur, 5)), at(cur, 4)))
                inc(cur, 10, sub(mul(2, at(cur, 6)), at(cur, 2)))
                inc(cur, 11, sub(add(at(cur, 10), at(cur, 7)), at(cur, 6)))
                inc(cur, 12, sub(mul(2, at(cur, 8)), at(cur, 4)))
                inc(cur, 13, sub(add(at(cur, 12), at(cur, 9)), at(cur, 8)))
                inc(cur, 14, floor7of10(at(cur, 10)))
                inc(cur, 15, floor7of10(at(cur, 12)))
                // + ref(mode): the arrays sit 512 bytes apart, so array j - i is at cur - 512 i
                let mode := mload(0)
                switch mode
                case 0 {}
                case 3 {
                    for { let a := cur } lt(a, add(cur, 512)) { a := add(a, 32) } {
                        mstore(a, add(mload(a), sub(add(mload(sub(a, 512)), mload(sub(a, 1024))), mload(sub(a, 1536)))))
                    }
                }
                default {
                    let back := shl(9, mode)
                    for { let a := cur } lt(a, add(cur, 512)) { a := add(a, 32) } {
                        mstore(a, add(mload(a), mload(sub(a, back))))
                    }
                }
            }
            q := sub(c, d.offset)
        }
    }
}

/// Test-only wrapper so Python can eth_call the library.
contract MarkDecoderProbe {
    function decodeMark(bytes calldata chunk) external pure returns (MarkTx memory) {
        return MarkDecoder.decodeMark(chunk);
    }

    function decodeOperator(bytes calldata chunk) external pure returns (OperatorTx memory) {
        return MarkDecoder.decodeOperator(chunk);
    }
}
