"""EIP-712 typed-data hashing, signing and recovery for clearline's fixed struct layouts.

Why hand-rolled: signature verification is the sequencer's most expensive step, and
``eth_account.encode_typed_data`` is a generic interpreter (~5k digests/s). Our layouts are
fixed, so each struct hash is one ``struct.pack`` of the precomputed type hash and the fields
(every field is a 32-byte big-endian word) plus one keccak. ``typed_data`` produces the same
message in the generic format, and the tests pin the two byte-for-byte.

``MarkUpdate`` signs, besides its marks, the risk arrays flattened in instrument order
(``int64[] riskArrays``: empty, or ``N_SCENARIOS`` = 16 values per instrument; int64 words are
two's complement, sign-extended to 32 bytes) and ``bytes32 reportsHash``, the keccak of the
canonical ABI encoding of its oracle reports (``clearline.oracle.report.encode_reports``,
signatures included; an empty list hashes the encoding of an empty list). So the operator's
signature commits to exactly the reports the core will re-aggregate.

Signatures are 65 bytes ``r || s || v`` with ``v`` in {27, 28} only (Solidity ``ecrecover``'s
convention). ``v`` in {0, 1} is rejected rather than normalised, so every valid signature has
exactly one byte representation in the log; together with the low-s rule (EIP-2) this makes
signatures non-malleable.

Deterministic and pure: no I/O, no clock; signing uses RFC 6979 nonces (libsecp256k1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from coincurve import PrivateKey, PublicKey

from .encoding import _flat_risk, _int64_words  # one implementation for both formats
from .errors import ErrorCode, Rejected
from .hashing import keccak
from .txs import (
    Cancel,
    MarkUpdate,
    OperatorAction,
    Order,
    Replace,
    SetAccountFlags,
    SetMarginMode,
    Transfer,
    Withdraw,
)

SignedTx = (Order | Cancel | Replace | Withdraw | Transfer | MarkUpdate | OperatorAction
            | SetMarginMode | SetAccountFlags)
"""The transaction types that carry an EIP-712 signature (``txs.SIGNED_KINDS``)."""

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "TYPES",
    "Domain",
    "type_string",
    "SignedTx",
    "address_of",
    "digest",
    "recover",
    "recover_signer",
    "sign",
    "struct_hash",
    "typed_data",
]

DOMAIN_NAME = "clearline"
DOMAIN_VERSION = "1"

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2

# Type strings exactly as hashed (EIP-712 ``encodeType``); field order is the signing order.
_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
TYPES: dict[str, list[tuple[str, str]]] = {
    "Order": [
        ("account", "uint32"),
        ("instrument", "uint32"),
        ("side", "uint8"),
        ("orderType", "uint8"),
        ("timeInForce", "uint8"),
        ("flags", "uint8"),
        ("stp", "uint8"),
        ("price", "uint64"),
        ("size", "uint64"),
        ("expiry", "uint64"),
        ("clientId", "uint64"),
        ("nonce", "uint64"),
    ],
    "Cancel": [
        ("account", "uint32"),
        ("scope", "uint8"),
        ("instrument", "uint32"),
        ("orderId", "uint64"),
        ("clientId", "uint64"),
        ("nonce", "uint64"),
    ],
    "Replace": [
        ("account", "uint32"),
        ("orderId", "uint64"),
        ("price", "uint64"),
        ("size", "uint64"),
        ("nonce", "uint64"),
    ],
    "Withdraw": [("account", "uint32"), ("amount", "uint64"), ("nonce", "uint64")],
    "Transfer": [
        ("account", "uint32"),
        ("toSubaccount", "uint32"),
        ("amount", "uint64"),
        ("nonce", "uint64"),
    ],
    "MarkUpdate": [
        ("timestamp", "uint64"),
        ("instruments", "uint32[]"),
        ("prices", "uint64[]"),
        ("riskArrays", "int64[]"),
        ("reportsHash", "bytes32"),
    ],
    "OperatorAction": [
        ("action", "uint8"),
        ("target", "uint32"),
        ("arg", "uint64"),
        ("timestamp", "uint64"),
    ],
    "SetMarginMode": [("account", "uint32"), ("mode", "uint8"), ("nonce", "uint64")],
    "SetAccountFlags": [("account", "uint32"), ("flags", "uint8"), ("nonce", "uint64")],
}
"""EIP-712 struct fields (name, solidity type) per primary type; the single source for the
type hashes below and for ``typed_data``."""

# dataclass attribute for each EIP-712 field name (identity unless listed)
_ATTR = {
    "orderType": "order_type",
    "timeInForce": "tif",
    "clientId": "client_id",
    "orderId": "order_id",
    "toSubaccount": "to_subaccount",
    "riskArrays": "risk_arrays",  # flattened (``_flat_risk``)
}
# ``reportsHash`` has no attribute: it is derived from ``tx.reports`` (``_reports_hash``).
_CLASSES = {"Order": Order, "Cancel": Cancel, "Replace": Replace, "Withdraw": Withdraw,
            "Transfer": Transfer, "MarkUpdate": MarkUpdate, "OperatorAction": OperatorAction,
            "SetMarginMode": SetMarginMode, "SetAccountFlags": SetAccountFlags}

# Scenarios per risk array; the same number as ``requirements.N_SCENARIOS`` and
# ``clearline.risk.N_SCENARIOS`` (a test keeps the three equal).


def _encode_type(name: str) -> str:
    return name + "(" + ",".join(f"{t} {n}" for n, t in TYPES[name]) + ")"


def type_string(name: str) -> str:
    """The EIP-712 ``encodeType`` string of a primary type (``"EIP712Domain"`` included),
    exactly as hashed: what wallets and other-language clients must reproduce."""
    return _DOMAIN_TYPE if name == "EIP712Domain" else _encode_type(name)


_DOMAIN_TYPEHASH = keccak(_DOMAIN_TYPE.encode())
_TYPEHASH = {name: keccak(_encode_type(name).encode()) for name in TYPES}

# One 32-byte word per static field: zero padding + big-endian value. struct.pack range-checks
# each value against its width (negative or too large -> struct.error).
_WORD = {"uint8": "31xB", "uint32": "28xI", "uint64": "24xQ"}


def _struct_packer(name: str) -> struct.Struct:
    return struct.Struct(">32s" + "".join(_WORD[t] for _, t in TYPES[name]))


_ORDER = _struct_packer("Order")
_CANCEL = _struct_packer("Cancel")
_REPLACE = _struct_packer("Replace")
_WITHDRAW = _struct_packer("Withdraw")
_TRANSFER = _struct_packer("Transfer")
_OPERATOR = _struct_packer("OperatorAction")
_MARGIN_MODE = _struct_packer("SetMarginMode")
_ACCOUNT_FLAGS = _struct_packer("SetAccountFlags")
# typehash, timestamp, then the hashes of instruments, prices, riskArrays, and reportsHash
_MARK_HEAD = struct.Struct(">32s24xQ32s32s32s32s")

_TH_ORDER = _TYPEHASH["Order"]
_TH_CANCEL = _TYPEHASH["Cancel"]
_TH_REPLACE = _TYPEHASH["Replace"]
_TH_WITHDRAW = _TYPEHASH["Withdraw"]
_TH_TRANSFER = _TYPEHASH["Transfer"]
_TH_MARK = _TYPEHASH["MarkUpdate"]
_TH_OPERATOR = _TYPEHASH["OperatorAction"]
_TH_MARGIN_MODE = _TYPEHASH["SetMarginMode"]
_TH_ACCOUNT_FLAGS = _TYPEHASH["SetAccountFlags"]


def _malformed(tx: object, exc: Exception) -> Rejected:
    return Rejected(ErrorCode.MALFORMED, f"{type(tx).__name__} field out of range: {exc}")


def _hash_order(tx: Order) -> bytes:
    return keccak(_ORDER.pack(_TH_ORDER, tx.account, tx.instrument, tx.side, tx.order_type,
                              tx.tif, tx.flags, tx.stp, tx.price, tx.size, tx.expiry,
                              tx.client_id, tx.nonce))


def _hash_cancel(tx: Cancel) -> bytes:
    return keccak(_CANCEL.pack(_TH_CANCEL, tx.account, tx.scope, tx.instrument, tx.order_id,
                               tx.client_id, tx.nonce))


def _hash_replace(tx: Replace) -> bytes:
    return keccak(_REPLACE.pack(_TH_REPLACE, tx.account, tx.order_id, tx.price, tx.size,
                                tx.nonce))


def _hash_withdraw(tx: Withdraw) -> bytes:
    return keccak(_WITHDRAW.pack(_TH_WITHDRAW, tx.account, tx.amount, tx.nonce))


def _hash_transfer(tx: Transfer) -> bytes:
    return keccak(_TRANSFER.pack(_TH_TRANSFER, tx.account, tx.to_subaccount, tx.amount,
                                 tx.nonce))


def _hash_operator(tx: OperatorAction) -> bytes:
    return keccak(_OPERATOR.pack(_TH_OPERATOR, tx.action, tx.target, tx.arg, tx.timestamp))


def _hash_margin_mode(tx: SetMarginMode) -> bytes:
    return keccak(_MARGIN_MODE.pack(_TH_MARGIN_MODE, tx.account, tx.mode, tx.nonce))


def _hash_account_flags(tx: SetAccountFlags) -> bytes:
    return keccak(_ACCOUNT_FLAGS.pack(_TH_ACCOUNT_FLAGS, tx.account, tx.flags, tx.nonce))


def _reports_hash(reports: list) -> bytes:
    """keccak of ``encode_reports(reports)``: the ``reportsHash`` word of a MarkUpdate."""
    # Imported here, not at module level: clearline.oracle.report imports this module.
    from clearline.oracle.report import encode_reports

    try:
        return keccak(encode_reports(reports))
    except TypeError as exc:  # an element that is not a PriceReport
        raise Rejected(ErrorCode.MALFORMED, f"MarkUpdate reports: {exc}") from None


def _hash_mark(tx: MarkUpdate) -> bytes:
    # Arrays of atomic types: keccak of the concatenated 32-byte words (EIP-712 encodeData).
    ins, prices = tx.instruments, tx.prices
    if not isinstance(ins, (list, tuple)) or not isinstance(prices, (list, tuple)):
        raise Rejected(ErrorCode.MALFORMED, "MarkUpdate arrays must be lists")
    ins_hash = keccak(struct.pack(">" + "28xI" * len(ins), *ins))
    prices_hash = keccak(struct.pack(">" + "24xQ" * len(prices), *prices))
    risk_hash = keccak(_int64_words(_flat_risk(tx)))
    return keccak(_MARK_HEAD.pack(_TH_MARK, tx.timestamp, ins_hash, prices_hash, risk_hash,
                                  _reports_hash(tx.reports)))


_HASHERS = {
    Order: _hash_order,
    Cancel: _hash_cancel,
    Replace: _hash_replace,
    Withdraw: _hash_withdraw,
    Transfer: _hash_transfer,
    MarkUpdate: _hash_mark,
    OperatorAction: _hash_operator,
    SetMarginMode: _hash_margin_mode,
    SetAccountFlags: _hash_account_flags,
}


def struct_hash(tx: SignedTx) -> bytes:
    """EIP-712 ``hashStruct`` of a user- or operator-signed transaction.

    Out-of-range or non-integer fields raise ``Rejected(MALFORMED)`` (they could never have
    been signed as the declared uintN). A transaction type that is not signed (``Deposit``) or
    not a transaction at all is a programming error: ``TypeError``.
    """
    try:
        hasher = _HASHERS[type(tx)]
    except KeyError:
        raise TypeError(f"{type(tx).__name__} is not an EIP-712 signed transaction") from None
    try:
        return hasher(tx)
    except struct.error as exc:
        raise _malformed(tx, exc) from None


@dataclass(frozen=True, slots=True)
class Domain:
    """The EIP-712 domain: binds every signature to one chain and one Rollup contract, so a
    signature cannot be replayed on another deployment. ``separator`` is computed once."""

    chain_id: int
    verifying_contract: bytes  # 20-byte address of the Rollup contract
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Configuration, not a transaction: invalid values are a ValueError.
        if not isinstance(self.chain_id, int) or not 0 <= self.chain_id < 1 << 256:
            raise ValueError(f"chain_id must be a uint256, got {self.chain_id!r}")
        if not isinstance(self.verifying_contract, bytes) or len(self.verifying_contract) != 20:
            raise ValueError("verifying_contract must be 20 bytes")
        sep = keccak(
            _DOMAIN_TYPEHASH
            + keccak(DOMAIN_NAME.encode())
            + keccak(DOMAIN_VERSION.encode())
            + self.chain_id.to_bytes(32, "big")
            + bytes(12)
            + self.verifying_contract
        )
        object.__setattr__(self, "separator", sep)


def digest(domain: Domain, tx: SignedTx) -> bytes:
    """The 32-byte EIP-712 signing hash: keccak(0x1901 || domainSeparator || hashStruct(tx))."""
    return keccak(b"\x19\x01" + domain.separator + struct_hash(tx))


def sign(domain: Domain, tx: SignedTx, private_key: bytes) -> bytes:
    """Sign ``tx`` (SDK, operator, tests): 65 bytes r||s||v, v in {27, 28}, low-s.

    libsecp256k1 always produces low-s signatures, so the result passes ``recover``.
    """
    sig = PrivateKey(private_key).sign_recoverable(digest(domain, tx), hasher=None)
    return sig[:64] + bytes((sig[64] + 27,))


def recover(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address that produced ``signature`` over the 32-byte ``digest``.

    Rejects (``Rejected``): length != 65, ``v`` not in {27, 28} (0/1 are *not* accepted: one
    canonical form), r or s zero or >= n -> BAD_SIGNATURE; s > n/2 -> HIGH_S_SIGNATURE
    (EIP-2 malleability); any recovery failure -> BAD_SIGNATURE. Callers compare the result
    with the expected owner (a wrong domain or message recovers a different address).
    """
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 65:
        raise Rejected(ErrorCode.BAD_SIGNATURE, "signature must be 65 bytes")
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    v = signature[64]
    if v != 27 and v != 28:
        raise Rejected(ErrorCode.BAD_SIGNATURE, f"v must be 27 or 28, got {v}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise Rejected(ErrorCode.BAD_SIGNATURE, "r or s out of range")
    if s > SECP256K1_HALF_N:
        raise Rejected(ErrorCode.HIGH_S_SIGNATURE, "s must be <= n/2")
    try:
        pub = PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes((v - 27,)), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError/Exception on unrecoverable sigs
        raise Rejected(ErrorCode.BAD_SIGNATURE, f"recovery failed: {exc}") from None
    return keccak(pub.format(compressed=False)[1:])[12:]


def recover_signer(domain: Domain, tx: SignedTx) -> bytes:
    """Address that signed ``tx`` under ``domain`` (the sequencer's verifier fills ``tx.signer``)."""
    return recover(digest(domain, tx), tx.signature)


def address_of(private_key: bytes) -> bytes:
    """Ethereum address (20 bytes) of a secp256k1 private key."""
    return keccak(PrivateKey(private_key).public_key.format(compressed=False)[1:])[12:]


def _checksum(address: bytes) -> str:
    """EIP-55 mixed-case hex, so strict consumers (wallets, eth_account) accept the domain."""
    hex_addr = address.hex()
    h = keccak(hex_addr.encode()).hex()
    return "0x" + "".join(c.upper() if int(h[i], 16) >= 8 else c for i, c in enumerate(hex_addr))


def typed_data(domain: Domain, tx: SignedTx) -> dict:
    """The full EIP-712 message (``types``, ``primaryType``, ``domain``, ``message``) in the
    format of ``eth_account.messages.encode_typed_data(full_message=...)`` and of wallets'
    ``eth_signTypedData_v4``: what the SDK signs, and what pins the hand-rolled hash.

    Integers are ``int`` (int64 values signed), arrays are lists, and ``reportsHash`` is a
    0x-prefixed hex string. A malformed MarkUpdate (risk array shape, reports) raises
    ``Rejected(MALFORMED)`` as ``struct_hash`` does."""
    for name, cls in _CLASSES.items():
        if type(tx) is cls:
            break
    else:
        raise TypeError(f"{type(tx).__name__} is not an EIP-712 signed transaction")
    message = {}
    for fname, ftype in TYPES[name]:
        if fname == "reportsHash":
            message[fname] = "0x" + _reports_hash(tx.reports).hex()
            continue
        value = _flat_risk(tx) if fname == "riskArrays" else getattr(tx, _ATTR.get(fname, fname))
        message[fname] = [int(x) for x in value] if ftype.endswith("[]") else int(value)
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            name: [{"name": n, "type": t} for n, t in TYPES[name]],
        },
        "primaryType": name,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": domain.chain_id,
            "verifyingContract": _checksum(domain.verifying_contract),
        },
        "message": message,
    }
