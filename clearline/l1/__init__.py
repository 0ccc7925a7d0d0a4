"""clearline.l1 -- the L1 contracts, their compiled artifacts and a web3.py client.

Contents
--------
- ``contracts/*.sol``: ``MockUSD`` (6-decimal ERC-20, public mint), ``SparseMerkle`` (proof
  verification identical to ``clearline.core.merkle``), ``Batch`` (the header struct),
  ``Vault`` (custody, L1 queue, withdrawal claims, freeze, refunds, escape), ``Rollup``
  (bonded sequencer, batch chain, finalization, the dispute game; creates its Vault) and
  ``FraudVerifier`` (judges one chunk of a challenged batch; deployed separately, its address
  is a Rollup constructor argument; docs/fraud-proofs.md). Solidity 0.8.30 through the
  npm ``solc`` pinned in ``package.json``; evmVersion cancun; optimizer + via-IR.
- ``artifacts/*.json``: committed compiler output; ``compile.py`` rebuilds it deterministically.
- ``chain.py``: ``InProcessChain`` (eth-tester + py-evm), ``RpcChain(url)``, ``start_anvil()``.
- ``deploy.py``: ``deploy(chain, ...) -> Deployment``; ``predict_addresses``.
- ``client.py``: ``L1Client``: deposit, forced withdrawal, append batch, finalize, freeze,
  claim, refund, views; reverts raise ``L1Revert`` with the custom error's name.
- ``formats.py``: the byte formats below, in Python; ``batch_v2.py``: batch data format v2.

Units: token amounts are usd6 (MockUSD has 6 decimals), times are L1 seconds.

L1 queue (Vault)
----------------
Items are numbered 0, 1, ... and must be consumed by batches in order. The Vault stores per
item ``itemHash = keccak256(abi.encode(uint8 kind, uint64 queueIndex, address owner,
uint32 target, uint64 amount))`` and the L1 time; ``QueueItemAdded`` emits all the fields.

- kind 1, deposit (``Vault.deposit(subaccount, amount)``): owner = depositor, target =
  subaccount. It is consumed by the core ``Deposit(time_ms, queue_index, owner, subaccount,
  amount)``; the item hash is that tx's ABI encoding without the ``timeMs`` word
  (``formats.deposit_item_hash``).
- kind 2, forced withdrawal (``Vault.requestForcedWithdrawal(accountId, amount)``): owner =
  requester, target = account id. The core must serve it (pay by a withdrawal record) or
  reject it by a checkable rule.

Queue kinds are their own namespace (not ``core.txs.TxKind``).

Deadline and freeze: an item is overdue when ``block.timestamp > time + forcedDeadline`` and
no appended batch consumed it (``index >= Rollup.queuePosition()``). Then ``Rollup.appendBatch``
reverts (``QueueItemOverdue``: an item cannot be served late) and anyone may call
``Vault.freeze()``. After a freeze, appends and finalization revert; batches not finalized are
void; the state is the last finalized one; deposits at index ``>= finalizedQueuePosition()``
are refunded by ``Vault.refundDeposit`` (once); and every account can be paid its equity at
the last finalized state root, once, by ``Vault.escape(state, account, markets)``: the
state-root preimage, the account leaf with its positions and its Merkle proof (depth 32), and
each position's market leaf with its proof (depth 24); equity = collateral + sum(quote + size
* markPrice * tickSize * lotSize / 1e8), paid as max(0, equity) to the owner (built from L1
data alone by ``clearline escape``, ``clearline/watchtower/escape.py``).

Batch (Rollup.appendBatch)
--------------------------
``appendBatch(uint64 number, bytes32 prevHeaderHash, uint64 queueEnd, bytes withdrawals,
uint32 txsPerRoot, bytes txs, bytes32[] stateRoots)``, sequencer only (``withdrawals``: the
packed records, see below; the header's ``withdrawalsRoot`` is computed from them). Checks: ``number`` =
last + 1, ``prevHeaderHash`` = stored hash of header ``number - 1``, ``queueStart <= queueEnd
<= Vault.queueLength`` (``queueStart`` = previous ``queueEnd``), not frozen, head item not
overdue, ``stateRoots`` non-empty, ``txsPerRoot > 0``. The contract builds and stores only
``keccak256(abi.encode(header))`` and emits ``BatchAppended(number, headerHash, header)``::

    struct BatchHeader {            // ten 32-byte ABI words
        uint64  number;             // consecutive; 0 = genesis (all zero but postStateRoot)
        bytes32 prevHeaderHash;
        bytes32 txsHash;            // formats.batch_data_hash(txs): per-chunk, see below
        bytes32 stateRootsHash;     // keccak256(abi.encodePacked(stateRoots)), idem
        bytes32 postStateRoot;      // stateRoots[last]
        bytes32 withdrawalsRoot;    // see below
        uint64  queueStart;
        uint64  queueEnd;           // queue items [queueStart, queueEnd) are consumed
        uint32  txsPerRoot;
        uint64  l1Timestamp;        // block.timestamp of the append
    }

``txs`` (opaque to the contract; a batch that does not decode is fraud) is batch data,
told apart by its first byte. The batcher writes format v3 (``batch_v3``, the layout in its
docstring; the per-transaction codec is ``batch_v2``'s; ``formats.encode_batch`` /
``decode_batch``): ``0x03 || varint txsPerRoot || varint C || uint32 chunk ends || chunks``,
one chunk per state root, each of 1..txsPerRoot transactions and each MarkUpdate /
OperatorAction / Withdraw / Transfer / ForcedWithdrawal alone in its chunk, so a fraud proof finds chunk ``c`` at fixed offsets and
decodes it alone (its count is what parses to its end); each transaction is a head byte (kind,
flags, time delta present), varints sized to the values, EIP-2098 64-byte signatures (kept:
fraud proofs need them), risk arrays as residuals of a scenario-grid predictor; ``0xFF ||
varint length || encode_tx(tx)`` carries any transaction without a packed form (a kind added
later). Watchtowers and the batcher also read format v2 (``0x02 || varint k || varint n ||
...``: chunks of exactly k) and format v1 = ``0x01 || for each tx: uint32
big-endian length || core.encoding.encode_tx(tx)`` (``formats.encode_batch_txs``), what
earlier batchers posted. The queue items ``[queueStart, queueEnd)`` must appear in it, in
order, as their L1 transactions.

``txsHash`` commits to the data per chunk (``BatchDataLib`` in Rollup.sol,
``formats.batch_data_hash``): ``keccak256(keccak256(head) || keccak256(chunk_0) || ...)`` with
``head`` = the v3 bytes before chunk 0 (version, k, C, the uint32 end table) when the table
walks (varints of at most 10 bytes, k > 0, C entries that fit, ends non-decreasing from
the table's end to the end of the data; v2's with C = ceil(n / k) walks too); otherwise
``keccak256(keccak256(txs))``.
A fraud proof then carries one chunk, the chunk hashes and the roots
(``Rollup.proveFraud``; ``clearline.watchtower.fraud`` builds it).

``stateRoots[c]`` = ``core`` state root (``encoding.state_root``) after chunk ``c`` of the
batch data (v3: after its last transaction, or for an empty chunk after the matching step it
stands for); so there are ``max(1, C)`` roots (for an empty batch, one: the unchanged root).
The batcher's cut (``batch_v3.chunk_sizes``) ends a chunk after ``txsPerRoot`` transactions
and right before and after each transaction that must be alone (orders and replaces
included), and follows an order's chunk with one empty chunk per matching step.

Finalization: ``Rollup.finalize(BatchHeader[] headers)`` (anyone) takes the next headers in
order; each finalizes when ``block.timestamp >= l1Timestamp + challengePeriod``. Views:
``lastBatch``, ``lastFinalizedBatch``, ``finalizedStateRoot``, ``queuePosition``,
``finalizedQueuePosition``, ``headerHash(n)``.

Withdrawal records (claims)
---------------------------
The sequencer posts the batch's withdrawal records with it (``appendBatch``'s ``bytes
withdrawals``, 38 bytes each: uint32 accountId, address owner, uint64 amount, uint32 chunk,
uint16 txIndex; ``formats.encode_withdrawals``) and the Rollup computes ``withdrawalsRoot``:
the root of a ``SparseMerkleTree(16)`` (core.merkle, same node hashing) whose leaf ``i`` is the
batch's ``i``-th successful withdrawal, in transaction order (user ``Withdraw`` and served
forced withdrawals alike), naming the transaction (chunk, index in the chunk) that pays it::

    leaf = keccak256(abi.encode(bytes32 WITHDRAWAL_TAG, uint32 accountId, address owner,
                                uint64 amount, uint32 chunk, uint16 txIndex))
    WITHDRAWAL_TAG = keccak256("clearline.withdrawal.v2")

(``formats.WithdrawalRecord`` / ``withdrawals_tree``, ``Withdrawals.sol``; ``ZERO_HASHES[16]``
when there is none). Because the records are L1 data, a record the batch does not pay is
provable during the challenge period (FraudVerifier KIND_WITHDRAWALS). Once the batch is
final, ``Vault.claimWithdrawal(header, index, WithdrawalRecord, present, siblings)`` pays
``owner``, once per (batch, index). Proofs may be compressed: bit ``i`` of ``present`` says
sibling ``i`` is given; otherwise it is the zero hash of level ``i`` (``formats.compress_proof``).
"""

from __future__ import annotations

import importlib
from typing import Any

# Public names, imported lazily (web3 and py-evm load only when a chain is used).
_EXPORTS = {
    "BatchHeader": "formats",
    "QueueItem": "formats",
    "WithdrawalRecord": "formats",
    "InProcessChain": "chain",
    "RpcChain": "chain",
    "start_anvil": "chain",
    "Deployment": "deploy",
    "L1Client": "client",
    "L1Revert": "client",
    "TxResult": "client",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
