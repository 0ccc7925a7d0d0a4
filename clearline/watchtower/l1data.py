"""Read a clearline rollup from L1 data alone: what a watchtower (or a restarted batcher) may
trust without the sequencer or its journal.

- the genesis configuration: ``Rollup.Genesis(configHash, stateRoot, config)``, emitted by
  the constructor (``Genesis.to_json()`` bytes);
- the committed batch headers: ``Rollup.BatchAppended(number, headerHash, header)``;
- each batch's data: the ``txs`` and ``stateRoots`` arguments of the ``appendBatch``
  transaction that emitted the event (its calldata; the header's ``txsHash`` and
  ``stateRootsHash`` are the contract's own hashes of it, and are re-checked here);
- the L1 queue: ``Vault.QueueItemAdded`` (index, kind, owner, target, amount, time, itemHash).

Batches must be appended by a transaction sent straight to the Rollup (as the batcher does):
the calldata of a call made through another contract is not visible in the transaction and
would need a tracing node; ``L1DataError`` says so.

``source`` is a JSON-RPC URL, a ``web3.Web3`` or a ``clearline.l1.chain.Chain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address
from web3 import Web3

from clearline.core.hashing import keccak
from clearline.l1.deploy import contract_abi
from clearline.l1.formats import (BatchHeader, QueueItem, WithdrawalRecord, batch_data_hash, decode_withdrawals,
                                  state_roots_hash, withdrawals_tree)

__all__ = [
    "APPEND_BATCH_SELECTOR",
    "BatchCalldata",
    "BatchRef",
    "GenesisInfo",
    "L1DataError",
    "RollupReader",
    "decode_append_batch",
    "web3_of",
]

_APPEND_TYPES = ["uint64", "bytes32", "uint64", "bytes", "uint32", "bytes", "bytes32[]"]
APPEND_BATCH_SELECTOR = keccak(f"appendBatch({','.join(_APPEND_TYPES)})".encode())[:4]


class L1DataError(RuntimeError):
    """The L1 data cannot be read or is not what the contracts would have produced."""


def web3_of(source: Any, *, timeout: float = 60) -> Web3:
    """A ``Web3`` for a URL, a ``Web3`` or a ``Chain``."""
    if isinstance(source, Web3):
        return source
    w3 = getattr(source, "w3", None)
    if isinstance(w3, Web3):
        return w3
    if isinstance(source, str):
        return Web3(Web3.HTTPProvider(source, request_kwargs={"timeout": timeout}))
    raise TypeError(f"expected an RPC URL, a Web3 or a Chain, got {type(source).__name__}")


@dataclass(frozen=True)
class GenesisInfo:
    config: bytes  # Genesis.to_json() bytes as emitted by the Rollup constructor
    config_hash: bytes
    state_root: bytes
    block_number: int


@dataclass(frozen=True)
class BatchRef:
    """One committed batch as its ``BatchAppended`` event reports it."""

    header: BatchHeader
    header_hash: bytes
    block_number: int
    tx_hash: bytes

    @property
    def number(self) -> int:
        return self.header.number


@dataclass(frozen=True)
class BatchCalldata:
    """The decoded arguments of one ``appendBatch`` call."""

    number: int
    prev_header_hash: bytes
    queue_end: int
    withdrawals: list[WithdrawalRecord]  # as posted (the Rollup computed the header's root from them)
    txs_per_root: int
    txs: bytes
    state_roots: list[bytes]


def decode_append_batch(data: bytes) -> BatchCalldata:
    """Decode ``appendBatch`` calldata (selector included)."""
    data = bytes(data)
    if data[:4] != APPEND_BATCH_SELECTOR:
        raise L1DataError("not an appendBatch call")
    try:
        number, prev, queue_end, packed, k, txs, roots = abi_decode(_APPEND_TYPES, data[4:])
        records = decode_withdrawals(packed)
    except Exception as exc:  # the contract accepted it, so this means a different ABI
        raise L1DataError(f"appendBatch calldata does not decode: {exc}") from None
    return BatchCalldata(number, bytes(prev), queue_end, records, k, bytes(txs), [bytes(r) for r in roots])


def _hexbytes(v) -> bytes:
    if isinstance(v, str):
        return bytes.fromhex(v[2:] if v.startswith("0x") else v)
    return bytes(v)


class RollupReader:
    """Reads one Rollup (and its Vault) over any JSON-RPC endpoint."""

    def __init__(self, source: Any, rollup_address: str | bytes, *, from_block: int | None = None):
        self.w3 = web3_of(source)
        if isinstance(rollup_address, (bytes, bytearray)):
            rollup_address = "0x" + bytes(rollup_address).hex()
        self.address = to_checksum_address(rollup_address)
        if not self.w3.eth.get_code(self.address):
            raise L1DataError(f"no contract at {self.address}")
        self.rollup = self.w3.eth.contract(address=self.address, abi=contract_abi("Rollup"))
        self.vault_address = self.rollup.functions.vault().call()
        self.vault = self.w3.eth.contract(address=self.vault_address, abi=contract_abi("Vault"))
        self.chain_id = self.w3.eth.chain_id
        self._from_block = from_block
        self._genesis: GenesisInfo | None = None

    # -- genesis -------------------------------------------------------------------------
    def genesis(self) -> GenesisInfo:
        if self._genesis is None:
            logs = list(self.rollup.events.Genesis().get_logs(from_block=self._from_block or 0))
            if not logs:
                raise L1DataError(f"no Genesis event for {self.address} (from block {self._from_block or 0})")
            a = logs[0]["args"]
            self._genesis = GenesisInfo(bytes(a["config"]), bytes(a["configHash"]), bytes(a["stateRoot"]),
                                        int(logs[0]["blockNumber"]))
        return self._genesis

    @property
    def from_block(self) -> int:
        return self.genesis().block_number if self._from_block is None else self._from_block

    # -- views ---------------------------------------------------------------------------
    def last_batch(self) -> int:
        return self.rollup.functions.lastBatch().call()

    def last_finalized_batch(self) -> int:
        return self.rollup.functions.lastFinalizedBatch().call()

    def header_hash(self, number: int) -> bytes:
        return bytes(self.rollup.functions.headerHash(number).call())

    def params_hash(self) -> bytes:
        """The Rollup's ``paramsHash`` (clearline.l1.params)."""
        return bytes(self.rollup.functions.paramsHash().call())

    def challenge_period(self) -> int:
        return self.rollup.functions.challengePeriod().call()

    def forced_deadline(self) -> int:
        return self.vault.functions.forcedDeadline().call()

    # -- batches -------------------------------------------------------------------------
    def batch_refs(self, from_number: int = 1, *, number: int | None = None) -> list[BatchRef]:
        """The committed batches ``from_number..lastBatch`` (or only ``number``), one per
        number: where a number was appended more than once (a reorg, a re-append), the one
        whose header hash the Rollup stores. Checks that they link up by ``prevHeaderHash``."""
        filters = {"number": number} if number is not None else None
        logs = self.rollup.events.BatchAppended().get_logs(argument_filters=filters, from_block=self.from_block)
        by_number: dict[int, list[BatchRef]] = {}
        for e in logs:
            h = BatchHeader.from_event(e["args"]["header"])
            ref = BatchRef(h, bytes(e["args"]["headerHash"]), int(e["blockNumber"]), _hexbytes(e["transactionHash"]))
            if ref.header_hash != h.hash():
                raise L1DataError(f"batch {h.number}: event header does not hash to its headerHash")
            by_number.setdefault(h.number, []).append(ref)
        last = self.last_batch()
        lo = from_number if number is None else number
        hi = last if number is None else min(number, last)
        out: list[BatchRef] = []
        for n in range(lo, hi + 1):
            refs = by_number.get(n)
            if not refs:
                raise L1DataError(f"batch {n}: no BatchAppended event (last batch is {last})")
            if len(refs) > 1 or n == hi:
                stored = self.header_hash(n)
                refs = [r for r in refs if r.header_hash == stored]
                if not refs:
                    raise L1DataError(f"batch {n}: no event matches the stored header hash 0x{stored.hex()}")
            ref = refs[-1]
            if out and ref.header.prev_header_hash != out[-1].header_hash:
                raise L1DataError(f"batch {n}: prevHeaderHash does not link to batch {n - 1}")
            out.append(ref)
        return out

    def genesis_header(self) -> BatchHeader:
        """Batch 0 as committed (all zero but the genesis state root)."""
        return BatchHeader.genesis(self.genesis().state_root)

    def batch_calldata(self, ref: BatchRef) -> BatchCalldata:
        """The ``appendBatch`` arguments of ``ref``'s transaction, checked against its header."""
        tx = self.w3.eth.get_transaction(ref.tx_hash)
        to = tx.get("to")
        if to is None or to_checksum_address(to) != self.address:
            raise L1DataError(f"batch {ref.number}: appended through another contract (tx 0x{ref.tx_hash.hex()});"
                              " its calldata is not readable without tracing")
        cd = decode_append_batch(_hexbytes(tx["input"]))
        h = ref.header
        if (cd.number != h.number or batch_data_hash(cd.txs) != h.txs_hash
                or state_roots_hash(cd.state_roots) != h.state_roots_hash
                or withdrawals_tree(cd.withdrawals).root() != h.withdrawals_root):
            raise L1DataError(f"batch {ref.number}: transaction 0x{ref.tx_hash.hex()} calldata does not match its header")
        return cd

    # -- queue ---------------------------------------------------------------------------
    def queue_items(self, from_index: int = 0, *, from_block: int | None = None,
                    to_block: int | str | None = None) -> list[tuple[QueueItem, bytes]]:
        """``(item, stored item hash)`` of every queue item from the Vault's events, by index."""
        logs = self.vault.events.QueueItemAdded().get_logs(
            from_block=self.from_block if from_block is None else from_block, to_block=to_block)
        out = []
        for e in logs:
            a = e["args"]
            item = QueueItem(int(a["index"]), int(a["kind"]), _hexbytes(a["owner"]), int(a["target"]),
                             int(a["amount"]), int(a["time"]), int(e["blockNumber"]))
            if item.index >= from_index:
                out.append((item, bytes(a["itemHash"])))
        out.sort(key=lambda p: p[0].index)
        return out
