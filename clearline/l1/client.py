"""A thin typed client for the clearline L1 contracts, on any ``Chain``.

Every state-changing call signs and sends one transaction from the client's ``sender`` and
returns a ``TxResult`` (receipt, gas used, and a decoded value where there is one). A revert,
including one found while estimating gas, raises ``L1Revert`` carrying the custom error's
name and arguments as the contracts declare them (e.g. ``BadBatchNumber``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Sequence

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from clearline.core.hashing import keccak
from clearline.core.merkle import ZERO_HASHES
from clearline.l1.chain import Chain, TransactionReverted, calldata_floor_gas, revert_data
from clearline.l1.deploy import Deployment, contract_abi
from clearline.l1.formats import (
    WITHDRAWALS_DEPTH,
    BatchHeader,
    QueueItem,
    WithdrawalRecord,
    compress_proof,
    encode_withdrawals,
)

__all__ = ["L1Client", "L1Revert", "TxResult", "decode_revert"]

EMPTY_WITHDRAWALS_ROOT = ZERO_HASHES[WITHDRAWALS_DEPTH]  # the root of a batch without withdrawals


class L1Revert(Exception):
    """A contract call reverted. ``error`` is the custom error name (``None`` if the revert
    data matches no known error), ``args`` its decoded arguments by name."""

    def __init__(self, error: str | None, args: dict[str, Any], data: bytes, receipt: Any = None):
        self.error = error
        self.args_by_name = args
        self.data = data
        self.receipt = receipt
        shown = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
        super().__init__(f"{error or 'revert'}({shown})" if error else f"revert 0x{data.hex()}")


def _show(v: Any) -> str:
    return "0x" + v.hex() if isinstance(v, (bytes, bytearray)) else repr(v)


def _abi_type(inp: dict) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + t[5:]
    return t


@functools.cache
def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in ("Rollup", "Vault", "MockUSD", "SparseMerkle", "FraudVerifier", "MarkVerifier", "ChunkDecoder",
                 "FundingVerifier", "ExpiryVerifier", "MatchVerifier", "MarginVerifier"):
        for item in contract_abi(name):
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item["inputs"]]
            selector = keccak(f"{item['name']}({','.join(types)})".encode())[:4]
            table[selector] = (item["name"], types, [i["name"] for i in item["inputs"]])
    # Solidity's built-ins
    table[bytes.fromhex("08c379a0")] = ("Error", ["string"], ["message"])
    table[bytes.fromhex("4e487b71")] = ("Panic", ["uint256"], ["code"])
    return table


def decode_revert(data: bytes) -> tuple[str | None, dict[str, Any]]:
    """``(error name, {argument: value})`` for revert data of the clearline contracts."""
    entry = _error_table().get(bytes(data[:4])) if len(data) >= 4 else None
    if entry is None:
        return None, {}
    name, types, names = entry
    try:
        values = abi_decode(types, bytes(data[4:]))
    except Exception:  # malformed arguments: keep the name
        return name, {}
    return name, dict(zip(names, values))


@dataclass(frozen=True)
class TxResult:
    tx_hash: bytes
    receipt: Any = field(repr=False)
    gas_used: int
    block_number: int
    value: Any = None  # the decoded result (QueueItem, BatchHeader, ...), when there is one


class L1Client:
    """Calls on the Rollup, its Vault and the token of one ``Deployment``."""

    def __init__(self, chain: Chain, deployment: Deployment, sender: LocalAccount | None = None):
        self.chain = chain
        self.deployment = deployment
        self.sender = sender or chain.accounts[0]
        w3 = chain.w3
        self.w3 = w3
        self.rollup = w3.eth.contract(address=deployment.rollup, abi=contract_abi("Rollup"))
        self.vault = w3.eth.contract(address=deployment.vault, abi=contract_abi("Vault"))
        self.token = w3.eth.contract(address=deployment.token, abi=contract_abi("MockUSD"))

    def with_sender(self, sender: LocalAccount) -> "L1Client":
        """The same client, sending from ``sender``."""
        return L1Client(self.chain, self.deployment, sender)

    @property
    def address(self) -> str:
        return self.sender.address

    # -- plumbing ----------------------------------------------------------------------
    def _send(self, call, *, value: int = 0, bounded: bool = False) -> TxResult:
        """Send ``call``. ``bounded``: instead of estimating its gas (py-evm's estimate runs the
        call ~20 times in a binary search: most of an in-process demo's time for a batch of a
        few hundred chunks), check it once with ``eth_call`` (a revert raises as usual) and send
        it with a generous limit: twice the EIP-7623 calldata floor plus 1M (unused gas is not
        charged), within the 30M block."""
        gas = None
        if bounded:
            self._call(call, sender=self.sender.address)
            data = call._encode_transaction_data()
            gas = min(30_000_000, 2 * calldata_floor_gas(data) + 1_000_000)
        try:
            receipt = self.chain.transact(call, self.sender, value=value, gas=gas)
        except TransactionReverted as exc:
            name, args = decode_revert(exc.data)
            raise L1Revert(name, args, exc.data, exc.receipt) from None
        return TxResult(bytes(receipt["transactionHash"]), receipt, int(receipt["gasUsed"]),
                        int(receipt["blockNumber"]))

    def _call(self, call, sender: str | None = None) -> Any:
        try:
            return call.call({"from": sender}) if sender else call.call()
        except Exception as exc:  # eth_call reverts: decode like a transaction's
            data = revert_data(exc)
            if not data:
                raise
            name, args = decode_revert(data)
            raise L1Revert(name, args, data) from None

    # -- token ---------------------------------------------------------------------------
    def mint(self, to: str, amount: int) -> TxResult:
        """MockUSD only: mint ``amount`` (usd6) to ``to``."""
        return self._send(self.token.functions.mint(to_checksum_address(to), amount))

    def approve(self, amount: int, spender: str | None = None) -> TxResult:
        return self._send(self.token.functions.approve(spender or self.deployment.vault, amount))

    def token_balance(self, address: str | None = None) -> int:
        return self.token.functions.balanceOf(to_checksum_address(address or self.address)).call()

    def allowance(self, owner: str | None = None, spender: str | None = None) -> int:
        return self.token.functions.allowance(
            to_checksum_address(owner or self.address), spender or self.deployment.vault
        ).call()

    # -- L1 queue ------------------------------------------------------------------------
    def _queue_item_from(self, receipt) -> QueueItem:
        (event,) = self.vault.events.QueueItemAdded().process_receipt(receipt, errors=DISCARD)
        return _queue_item(event)

    def deposit(self, subaccount: int, amount: int, *, approve: bool = True) -> TxResult:
        """Deposit ``amount`` usd6 for (sender, ``subaccount``); approves the Vault first if the
        allowance is short (a separate transaction). ``value`` is the ``QueueItem``."""
        if approve and self.allowance() < amount:
            self.approve(amount)
        r = self._send(self.vault.functions.deposit(subaccount, amount))
        return _with_value(r, self._queue_item_from(r.receipt))

    def request_forced_withdrawal(self, account_id: int, amount: int) -> TxResult:
        r = self._send(self.vault.functions.requestForcedWithdrawal(account_id, amount))
        return _with_value(r, self._queue_item_from(r.receipt))

    def queue_length(self) -> int:
        return self.vault.functions.queueLength().call()

    def queue_item(self, index: int) -> tuple[bytes, int]:
        """``(stored item hash, L1 time)`` of queue item ``index``."""
        h, t = self._call(self.vault.functions.queueItem(index))
        return bytes(h), int(t)

    def queue_items(self, from_index: int = 0, *, from_block: int | None = None) -> list[QueueItem]:
        """Queue items from the Vault's events, by index."""
        logs = self.vault.events.QueueItemAdded().get_logs(
            from_block=self.deployment.block_number if from_block is None else from_block
        )
        items = sorted((_queue_item(e) for e in logs), key=lambda i: i.index)
        return [i for i in items if i.index >= from_index]

    # -- freeze and refunds ----------------------------------------------------------------
    def freeze(self) -> TxResult:
        return self._send(self.vault.functions.freeze())

    def frozen(self) -> bool:
        return self.vault.functions.frozen().call()

    # -- escape (after a freeze) -----------------------------------------------------------
    def escape(self, state: Sequence, account: Sequence, markets: Sequence[Sequence], params: bytes = b"") -> TxResult:
        """After a freeze: pay account ``account[0]`` its equity at the last finalized state
        (``Vault.escape``; anyone may send it, the owner is paid). The arguments are the ABI
        tuples of ``EscapeState``, ``EscapeAccount`` and ``EscapeMarket[]`` and the encoded
        consensus parameters when a settlement fee is due (``b""`` otherwise;
        ``clearline.watchtower.escape.EscapeCall`` builds them all). ``value`` is the amount
        paid (usd6, from the ``Escaped`` event)."""
        r = self._send(self.vault.functions.escape(tuple(state), tuple(account), [tuple(m) for m in markets],
                                                   bytes(params)))
        (event,) = self.vault.events.Escaped().process_receipt(r.receipt, errors=DISCARD)
        return _with_value(r, int(event["args"]["amount"]))

    def preview_escape(self, state: Sequence, account: Sequence, markets: Sequence[Sequence],
                       params: bytes = b"") -> int:
        """``eth_call`` of ``escape``: the amount it would pay (reverts raise ``L1Revert``)."""
        return int(self._call(self.vault.functions.escape(tuple(state), tuple(account),
                                                           [tuple(m) for m in markets], bytes(params))))

    def is_escaped(self, account_id: int) -> bool:
        return self.vault.functions.isEscaped(account_id).call()

    def vault_balance(self) -> int:
        return self.token_balance(self.deployment.vault)

    @classmethod
    def for_rollup(cls, chain: Chain, rollup_address: str, sender: LocalAccount | None = None) -> "L1Client":
        """A client for an existing deployment known only by its Rollup address (the other
        ``Deployment`` fields are read from the contracts and the ``Genesis`` event)."""
        w3 = chain.w3
        rollup = w3.eth.contract(address=to_checksum_address(rollup_address), abi=contract_abi("Rollup"))
        vault_addr = rollup.functions.vault().call()
        vault = w3.eth.contract(address=vault_addr, abi=contract_abi("Vault"))
        logs = rollup.events.Genesis().get_logs(from_block=0)
        if not logs:
            raise ValueError(f"no Genesis event for {rollup_address}")
        g = logs[0]
        deployment = Deployment(
            chain_id=chain.chain_id, token=vault.functions.token().call(), rollup=rollup.address,
            vault=vault_addr, sequencer=rollup.functions.sequencer().call(), deployer="",
            block_number=int(g["blockNumber"]), challenge_period=rollup.functions.challengePeriod().call(),
            forced_deadline=vault.functions.forcedDeadline().call(),
            genesis_state_root="0x" + bytes(g["args"]["stateRoot"]).hex(),
            genesis_config_hash="0x" + bytes(g["args"]["configHash"]).hex(),
            verifier=rollup.functions.verifier().call())
        return cls(chain, deployment, sender)

    def refund_deposit(self, item: QueueItem) -> TxResult:
        """After a freeze: refund deposit ``item`` (not consumed by a finalized batch)."""
        return self._send(self.vault.functions.refundDeposit(
            item.index, to_checksum_address(item.owner), item.target, item.amount))

    # -- batches -------------------------------------------------------------------------
    def append_batch(
        self,
        txs: bytes,
        state_roots: Sequence[bytes],
        *,
        queue_end: int | None = None,
        withdrawals: Sequence[WithdrawalRecord] = (),
        txs_per_root: int = 1,
        number: int | None = None,
        prev_header_hash: bytes | None = None,
    ) -> TxResult:
        """Append the next batch (sender must be the sequencer). ``number`` and
        ``prev_header_hash`` default to the chain's next ones, ``queue_end`` to the current
        queue position (no queue item consumed). ``withdrawals`` are the batch's withdrawal
        records: the Rollup computes the header's ``withdrawalsRoot`` from them. ``value`` is the
        committed ``BatchHeader``."""
        if number is None:
            number = self.last_batch() + 1
        if prev_header_hash is None:
            prev_header_hash = self.header_hash(number - 1)
        if queue_end is None:
            queue_end = self.queue_position()
        r = self._send(self.rollup.functions.appendBatch(
            number, bytes(prev_header_hash), queue_end, encode_withdrawals(withdrawals), txs_per_root,
            bytes(txs), [bytes(x) for x in state_roots]), bounded=True)
        (event,) = self.rollup.events.BatchAppended().process_receipt(r.receipt, errors=DISCARD)
        return _with_value(r, BatchHeader.from_event(event["args"]["header"]))

    def finalize(self, headers: Sequence[BatchHeader]) -> TxResult:
        """Finalize the batches of ``headers`` (the next ones, in order). ``value`` is the last
        finalized batch number."""
        r = self._send(self.rollup.functions.finalize([h.as_tuple() for h in headers]))
        return _with_value(r, headers[-1].number if headers else None)

    def finalize_ready(self) -> TxResult | None:
        """Finalize every batch whose challenge period is over (None if there is none)."""
        start = self.last_finalized_batch() + 1
        now = self.chain.now()
        period = self.deployment.challenge_period
        ready = [h for h in self.batch_headers(start) if h.l1_timestamp + period <= now]
        return self.finalize(ready) if ready else None

    def batch_headers(self, from_number: int = 0, *, from_block: int | None = None) -> list[BatchHeader]:
        """Committed headers (from ``BatchAppended`` events) with number >= ``from_number``."""
        logs = self.rollup.events.BatchAppended().get_logs(
            from_block=self.deployment.block_number if from_block is None else from_block
        )
        by_number: dict[int, BatchHeader] = {}
        for e in logs:  # later events win (a reverted and re-appended number, later)
            h = BatchHeader.from_event(e["args"]["header"])
            by_number[h.number] = h
        return [by_number[n] for n in sorted(by_number) if n >= from_number]

    # -- withdrawals -----------------------------------------------------------------------
    def claim_withdrawal(
        self, header: BatchHeader, index: int, record: WithdrawalRecord, siblings: Sequence[bytes]
    ) -> TxResult:
        """Pay withdrawal ``index`` of finalized batch ``header`` (``siblings``: its full
        depth-16 proof from ``formats.withdrawals_tree(...).proof(index)``; sent compressed)."""
        present, kept = compress_proof(siblings)
        return self._send(self.vault.functions.claimWithdrawal(
            header.as_tuple(), index, record.as_abi(), present, kept))

    def is_claimed(self, batch: int, index: int) -> bool:
        return self.vault.functions.isClaimed(batch, index).call()

    # -- disputes --------------------------------------------------------------------------
    @staticmethod
    def challenge_commitment(challenger: str, batch: int, chunk: int, salt: bytes) -> bytes:
        """``keccak256(abi.encode(address challenger, uint256 batch, uint256 chunk, bytes32 salt))``."""
        return keccak(bytes(12) + bytes.fromhex(to_checksum_address(challenger)[2:]) + batch.to_bytes(32, "big")
                      + chunk.to_bytes(32, "big") + bytes(salt))

    def commit_challenge(self, batch: int, chunk: int, salt: bytes) -> TxResult:
        """``Rollup.commitChallenge`` of the sender's commitment; ``value`` is the commitment."""
        c = self.challenge_commitment(self.address, batch, chunk, salt)
        return _with_value(self._send(self.rollup.functions.commitChallenge(c)), c)

    def prove_fraud(self, proof: tuple, salt: bytes) -> TxResult:
        """``Rollup.proveFraud(proof, salt)`` (``proof``: the ``FraudProof`` ABI tuple, built by
        ``clearline.watchtower.fraud``). ``value`` is the ``FraudProven`` event's arguments."""
        r = self._send(self.rollup.functions.proveFraud(tuple(proof), bytes(salt)))
        (event,) = self.rollup.events.FraudProven().process_receipt(r.receipt, errors=DISCARD)
        return _with_value(r, dict(event["args"]))

    def preview_fraud(self, proof: tuple, salt: bytes) -> int:
        """``eth_call`` of ``proveFraud`` from the sender: the reason code (reverts raise)."""
        return int(self._call(self.rollup.functions.proveFraud(tuple(proof), bytes(salt))))

    def data_hash(self, txs: bytes) -> tuple[bytes, int]:
        """``Rollup.dataHash``: the header's ``txsHash`` of ``txs`` and its number of chunks."""
        h, n = self._call(self.rollup.functions.dataHash(bytes(txs)))
        return bytes(h), int(n)

    def balance(self, address: str | None = None) -> int:
        """Ether balance (wei)."""
        return int(self.w3.eth.get_balance(to_checksum_address(address or self.address)))

    def add_bond(self, value: int) -> TxResult:
        """Add ``value`` wei to the sequencer's bond (anyone may)."""
        return self._send(self.rollup.functions.addBond(), value=value)

    # -- views ---------------------------------------------------------------------------
    def last_batch(self) -> int:
        return self.rollup.functions.lastBatch().call()

    def last_finalized_batch(self) -> int:
        return self.rollup.functions.lastFinalizedBatch().call()

    def finalized_state_root(self) -> bytes:
        return bytes(self.rollup.functions.finalizedStateRoot().call())

    def header_hash(self, number: int) -> bytes:
        return bytes(self.rollup.functions.headerHash(number).call())

    def queue_position(self) -> int:
        return self.rollup.functions.queuePosition().call()

    def finalized_queue_position(self) -> int:
        return self.rollup.functions.finalizedQueuePosition().call()

    def bond(self) -> int:
        return self.rollup.functions.bond().call()

    def merkle_root(self, depth: int, index: int, leaf: bytes, siblings: Sequence[bytes], *,
                    compressed: bool = True) -> bytes:
        """The root the contracts' SparseMerkle computes for this proof (an ``eth_call``)."""
        name, args = self._merkle_args(depth, index, leaf, siblings, compressed)
        return bytes(self._call(self.rollup.functions[name](*args)))

    @staticmethod
    def _merkle_args(depth, index, leaf, siblings, compressed=True) -> tuple[str, list]:
        if compressed:
            present, kept = compress_proof(siblings)
            return "merkleRoot", [depth, index, bytes(leaf), present, kept]
        if len(siblings) != depth:
            raise ValueError("a full proof has exactly `depth` siblings")
        return "merkleRootFull", [index, bytes(leaf), [bytes(x) for x in siblings]]


def _with_value(r: TxResult, value: Any) -> TxResult:
    return TxResult(r.tx_hash, r.receipt, r.gas_used, r.block_number, value)


def _queue_item(event) -> QueueItem:
    a = event["args"]
    return QueueItem(
        index=int(a["index"]),
        kind=int(a["kind"]),
        owner=bytes.fromhex(a["owner"][2:]),
        target=int(a["target"]),
        amount=int(a["amount"]),
        time=int(a["time"]),
        block_number=int(event["blockNumber"]),
    )
