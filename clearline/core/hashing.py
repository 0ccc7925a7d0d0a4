"""keccak-256, through the fastest backend available (see DESIGN.md performance table)."""

try:  # safe-pysha3: ~1M hashes/s of 64 bytes
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        return _keccak_256(data).digest()

except ImportError:  # pragma: no cover - fallback keeps the core importable anywhere
    from Crypto.Hash import keccak as _ck

    def keccak(data: bytes) -> bytes:
        return _ck.new(digest_bits=256, data=data).digest()


def tag(name: str) -> bytes:
    """A 32-byte domain tag: keccak of an ASCII name, e.g. ``tag("clearline.account.v1")``."""
    return keccak(name.encode("ascii"))
