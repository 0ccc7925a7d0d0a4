"""Signed oracle price reports: EIP-712 hashing, signing, recovery and canonical ABI encoding.

A reporter signs ``PriceReport(uint32 asset,uint64 price,uint64 timestamp,uint64 round)``:

- ``asset``: the underlying id (e.g. 0 = BTC, 1 = ETH), the same id space as the markets'
  underlyings;
- ``price``: usd6 (1e-6 USD) per *whole* unit of the underlying, e.g. $65,000.50 per BTC is
  ``65_000_500_000``; always > 0 for a usable report (the aggregator drops zero prices);
- ``timestamp``: milliseconds since the Unix epoch at which the reporter observed the price;
- ``round``: the reporter's own sequence number of the observation (informational: it makes two
  observations with equal price and time distinct signed messages, and helps audits; the
  aggregator's replay guard is the timestamp, see ``aggregate``).

The domain is exactly ``clearline.core.eip712.Domain`` (name "clearline", version "1", chain id,
Rollup address), so a report signed for one deployment is useless on another. As in
``clearline.core.eip712`` the struct hash is hand-rolled (one ``struct.pack`` + one keccak), the
generic form is ``typed_data``, and the tests pin the two byte-for-byte against ``eth_account``.
Signatures are 65 bytes ``r || s || v`` with ``v`` in {27, 28}, low-s only; recovery reuses
``clearline.core.eip712.recover`` and therefore raises the core's ``Rejected`` with
``BAD_SIGNATURE`` / ``HIGH_S_SIGNATURE``.

Encoding (for inclusion in a transaction): ``abi.encode(uint32 asset, uint64 price,
uint64 timestamp, uint64 round, bytes32 r, bytes32 s, uint8 v)``, 7 words = 224 bytes, the same
signature convention as ``clearline.core.encoding`` (``b""`` <-> r = s = 0, v = 0; a 65-byte
all-zero signature is refused). A list of reports is ``abi.encode(T[])`` with ``T`` that static
tuple. Decoding accepts only the canonical bytes (``Rejected(MALFORMED)`` otherwise), so
``encode(decode(b)) == b`` whenever decoding succeeds.

Pure and deterministic: no I/O, no clock, no randomness, no floats (RFC 6979 signing nonces).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from coincurve import PrivateKey

from clearline.core.eip712 import DOMAIN_NAME, DOMAIN_VERSION, Domain, recover
from clearline.core.errors import ErrorCode, Rejected
from clearline.core.hashing import keccak

__all__ = [
    "PRICE_REPORT_FIELDS",
    "PRICE_REPORT_TYPE",
    "PRICE_REPORT_TYPEHASH",
    "REPORT_SIZE",
    "PriceReport",
    "RecoveredReporters",
    "decode_report",
    "decode_reports",
    "digest",
    "encode_report",
    "encode_reports",
    "recover_reporter",
    "recover_reporters",
    "recover_reporters_ahead",
    "sign",
    "signed",
    "struct_hash",
    "typed_data",
]

PRICE_REPORT_FIELDS: tuple[tuple[str, str], ...] = (
    ("asset", "uint32"),
    ("price", "uint64"),
    ("timestamp", "uint64"),
    ("round", "uint64"),
)
"""EIP-712 fields (name, solidity type) in signing order; the dataclass uses the same names."""

PRICE_REPORT_TYPE = "PriceReport(" + ",".join(f"{t} {n}" for n, t in PRICE_REPORT_FIELDS) + ")"
PRICE_REPORT_TYPEHASH = keccak(PRICE_REPORT_TYPE.encode())

# typehash word, then one 32-byte word per field (zero padding + big-endian value);
# struct.pack range-checks every value (negative / too large / non-int -> struct.error).
_STRUCT = struct.Struct(">32s28xI24xQ24xQ24xQ")


@dataclass(frozen=True, slots=True)
class PriceReport:
    """One reporter's signed observation of one asset's price (units: module docstring)."""

    asset: int  # uint32 underlying id
    price: int  # uint64 usd6 per whole underlying unit
    timestamp: int  # uint64 ms since epoch
    round: int  # uint64 reporter sequence number
    signature: bytes = b""  # 65 bytes r||s||v (v in {27, 28}) or b"" when unsigned


def struct_hash(report: PriceReport) -> bytes:
    """EIP-712 ``hashStruct(report)``. Out-of-range / non-integer fields: ``Rejected(MALFORMED)``
    (they could never have been signed as the declared uintN)."""
    if not isinstance(report, PriceReport):
        raise TypeError(f"{type(report).__name__} is not a PriceReport")
    try:
        return keccak(_STRUCT.pack(PRICE_REPORT_TYPEHASH, report.asset, report.price,
                                   report.timestamp, report.round))
    except struct.error as exc:
        raise Rejected(ErrorCode.MALFORMED, f"PriceReport field out of range: {exc}") from None


def digest(domain: Domain, report: PriceReport) -> bytes:
    """The 32-byte EIP-712 signing hash: keccak(0x1901 || domainSeparator || hashStruct)."""
    return keccak(b"\x19\x01" + domain.separator + struct_hash(report))


def sign(domain: Domain, report: PriceReport, private_key: bytes) -> bytes:
    """Sign ``report`` as a reporter: 65 bytes r||s||v, v in {27, 28}, low-s (libsecp256k1)."""
    sig = PrivateKey(private_key).sign_recoverable(digest(domain, report), hasher=None)
    return sig[:64] + bytes((sig[64] + 27,))


def signed(domain: Domain, report: PriceReport, private_key: bytes) -> PriceReport:
    """A copy of ``report`` carrying the reporter's signature."""
    return PriceReport(report.asset, report.price, report.timestamp, report.round,
                       sign(domain, report, private_key))


def recover_reporter(domain: Domain, report: PriceReport) -> bytes:
    """The 20-byte address that signed ``report`` under ``domain``.

    Raises the core's ``Rejected``: BAD_SIGNATURE (wrong length, v not in {27, 28}, r/s out of
    range, unrecoverable), HIGH_S_SIGNATURE (s > n/2), MALFORMED (fields out of range). A wrong
    domain or altered field recovers a *different* address: callers compare with the reporter
    set (``aggregate`` ignores unknown reporters).
    """
    return recover(digest(domain, report), report.signature)


def recover_reporters(domain: Domain,
                      reports: Iterable[PriceReport]) -> tuple[tuple[PriceReport, bytes], ...]:
    """``(report, signer)`` pairs in input order: the input of ``aggregate``. Any bad signature
    rejects the whole batch (the operator chose to include it)."""
    return tuple((r, recover_reporter(domain, r)) for r in reports)


def _checksum(address: bytes) -> str:
    """EIP-55 mixed-case hex (strict consumers such as eth_account require it)."""
    hex_addr = address.hex()
    h = keccak(hex_addr.encode()).hex()
    return "0x" + "".join(c.upper() if int(h[i], 16) >= 8 else c for i, c in enumerate(hex_addr))


def typed_data(domain: Domain, report: PriceReport) -> dict:
    """The full EIP-712 message in the ``eth_account.messages.encode_typed_data(full_message=)``
    / ``eth_signTypedData_v4`` format: what an external reporter signs, and what pins
    ``digest``."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "PriceReport": [{"name": n, "type": t} for n, t in PRICE_REPORT_FIELDS],
        },
        "primaryType": "PriceReport",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": domain.chain_id,
            "verifyingContract": _checksum(domain.verifying_contract),
        },
        "message": {n: int(getattr(report, n)) for n, _ in PRICE_REPORT_FIELDS},
    }


# ---------------------------------------------------------------------------------------
# canonical ABI encoding

_REPORT = struct.Struct(">28xI24xQ24xQ24xQ32s32s31xB")
REPORT_SIZE = _REPORT.size  # 224 = 7 words
# padding bits of the 7 words (uint32, uint64 x3, bytes32 x2, uint8): must be zero
_REPORT_MASK = 0
for _bits in (32, 64, 64, 64, 256, 256, 8):
    _REPORT_MASK = (_REPORT_MASK << 256) | (((1 << (256 - _bits)) - 1) << _bits)
del _bits

@dataclass(frozen=True, slots=True)
class RecoveredReporters:
    """A MarkUpdate's reporters recovered ahead of ``clearline.core.apply`` (by a verifier, on
    another thread or process), as order signers are: ``apply(state, tx, reporters)`` then
    skips recovering them. Made only by ``recover_reporters_ahead``. ``signers[i]`` is the
    address that signed ``reports[i]`` under the domain whose separator is ``separator``, or
    None where it does not recover (``apply`` recovers that one again, to reject it with the
    exact error).

    ``signer_of`` hands out an address only for a report equal, field by field and signature
    included, to the one it was recovered from, at the same position and under the same
    domain: anything else (another transaction's reports, another deployment) is recovered
    again, so a stale or misplaced value can cost time but never change a result."""

    separator: bytes
    reports: tuple[PriceReport, ...]
    signers: tuple[bytes | None, ...]

    def signer_of(self, domain: Domain, index: int, report: PriceReport) -> bytes | None:
        """The recovered signer of ``report``, the ``index``-th report of the transaction
        being applied under ``domain``; None: recover it."""
        if index < len(self.reports) and self.separator == domain.separator:
            known = self.reports[index]
            if known is report or known == report:
                return self.signers[index]
        return None


def recover_reporters_ahead(domain: Domain, reports: Iterable[PriceReport]) -> RecoveredReporters:
    """Recover every report's signer under ``domain`` (None where it does not recover), for
    ``apply`` to use instead of recovering them itself."""
    reports = tuple(reports)
    signers: list[bytes | None] = []
    for r in reports:
        try:
            signers.append(recover_reporter(domain, r))
        except Exception:  # apply recovers this one again and rejects the transaction with the error
            signers.append(None)
    return RecoveredReporters(domain.separator, reports, tuple(signers))


_ZERO_SIG = bytes(65)
_ZERO_WORD = bytes(32)


def _split_sig(sig: bytes) -> tuple[bytes, bytes, int]:
    if not isinstance(sig, (bytes, bytearray)):
        raise Rejected(ErrorCode.MALFORMED, "signature must be bytes")
    if len(sig) == 65:
        if sig == _ZERO_SIG:
            raise Rejected(ErrorCode.MALFORMED, "all-zero signature: use b'' for none")
        return bytes(sig[:32]), bytes(sig[32:64]), sig[64]
    if len(sig) == 0:
        return _ZERO_WORD, _ZERO_WORD, 0
    raise Rejected(ErrorCode.MALFORMED, "signature must be 65 bytes or empty")


def encode_report(report: PriceReport) -> bytes:
    """Canonical 224-byte ABI encoding; out-of-range fields or a bad signature shape raise
    ``Rejected(MALFORMED)``."""
    if not isinstance(report, PriceReport):
        raise TypeError(f"{type(report).__name__} is not a PriceReport")
    r, s, v = _split_sig(report.signature)
    try:
        return _REPORT.pack(report.asset, report.price, report.timestamp, report.round, r, s, v)
    except struct.error as exc:
        raise Rejected(ErrorCode.MALFORMED, f"PriceReport: {exc}") from None


def _decode_one(data: bytes) -> PriceReport:
    if int.from_bytes(data, "big") & _REPORT_MASK:
        raise Rejected(ErrorCode.MALFORMED, "non-canonical padding")
    asset, price, timestamp, rnd, r, s, v = _REPORT.unpack(data)
    if v == 0 and r == _ZERO_WORD and s == _ZERO_WORD:
        sig = b""
    else:
        sig = r + s + bytes((v,))
    return PriceReport(asset, price, timestamp, rnd, sig)


def _as_bytes(data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise Rejected(ErrorCode.MALFORMED, "data must be bytes")
    return bytes(data)


def decode_report(data: bytes) -> PriceReport:
    """Inverse of ``encode_report``; anything but the canonical bytes is ``Rejected(MALFORMED)``
    (wrong length, non-zero padding). Never raises anything else."""
    data = _as_bytes(data)
    if len(data) != REPORT_SIZE:
        raise Rejected(ErrorCode.MALFORMED, f"expected {REPORT_SIZE} bytes, got {len(data)}")
    return _decode_one(data)


def encode_reports(reports: Sequence[PriceReport]) -> bytes:
    """``abi.encode((uint32,uint64,uint64,uint64,bytes32,bytes32,uint8)[])``: offset word
    (0x20), length word, then each report's 224 bytes."""
    if not isinstance(reports, (list, tuple)):
        raise Rejected(ErrorCode.MALFORMED, "reports must be a list")
    n = len(reports)
    return (32).to_bytes(32, "big") + n.to_bytes(32, "big") + b"".join(
        encode_report(r) for r in reports)


def decode_reports(data: bytes) -> list[PriceReport]:
    """Inverse of ``encode_reports``; only the canonical encoding is accepted
    (offset exactly 0x20, exact length, no trailing bytes), else ``Rejected(MALFORMED)``."""
    data = _as_bytes(data)
    if len(data) < 64:
        raise Rejected(ErrorCode.MALFORMED, "shorter than offset and length words")
    if int.from_bytes(data[:32], "big") != 32:
        raise Rejected(ErrorCode.MALFORMED, "non-canonical array offset")
    n = int.from_bytes(data[32:64], "big")
    # compare before multiplying a possibly huge n: no big allocations from hostile input
    if n > (len(data) - 64) // REPORT_SIZE or 64 + n * REPORT_SIZE != len(data):
        raise Rejected(ErrorCode.MALFORMED, "array length does not match the data")
    return [_decode_one(data[i:i + REPORT_SIZE]) for i in range(64, len(data), REPORT_SIZE)]
