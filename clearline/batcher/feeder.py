"""L1 queue -> sequencer: turn the Vault's queue items into core transactions, in order.

Queue kinds (``clearline.l1``): 1 deposit -> ``Deposit(time_ms, index, owner, subaccount,
amount)``; 2 forced withdrawal -> ``ForcedWithdrawal(time_ms, index, owner, account, amount)``
(the core serves it or denies it by its rule; either way it consumes the item). Items are
consumed strictly by index: the feeder hands the sequencer the contiguous run of items that
starts at the sequencer's own ``state.l1_queue_pos``, so it keeps no cursor of its own that a
crash could lose (only a cache of the events already read).

``confirmations``: only items in blocks at least that deep are fed (0 for dev chains; use a
few on a real L1, where a shallow block can be reorged away while the core has consumed it).
"""

from __future__ import annotations

from clearline.core.txs import Deposit, ForcedWithdrawal
from clearline.l1.formats import QUEUE_DEPOSIT, QUEUE_FORCED_WITHDRAWAL, QueueItem

__all__ = ["FeederError", "L1QueueFeeder", "queue_item_tx"]


class FeederError(RuntimeError):
    """A queue item that the core cannot consume (unknown kind, inconsistent event)."""


def queue_item_tx(item: QueueItem, time_ms: int) -> Deposit | ForcedWithdrawal:
    """The core transaction that consumes ``item``, stamped ``time_ms``."""
    if item.kind == QUEUE_DEPOSIT:
        return Deposit(time_ms, item.index, item.owner, item.target, item.amount)
    if item.kind == QUEUE_FORCED_WITHDRAWAL:
        return ForcedWithdrawal(time_ms, item.index, item.owner, item.target, item.amount)
    raise FeederError(f"queue item {item.index} has unknown kind {item.kind}")


class L1QueueFeeder:
    """Reads new ``QueueItemAdded`` events of one Vault and feeds them to a ``Sequencer``."""

    def __init__(self, client, *, confirmations: int = 0, from_block: int | None = None):
        self.client = client
        self.confirmations = confirmations
        self._next_block = client.deployment.block_number if from_block is None else from_block
        self._items: dict[int, QueueItem] = {}

    def poll(self) -> int:
        """Read events from blocks not read yet (down to ``confirmations``); returns how many
        new items were seen."""
        w3 = self.client.w3
        to_block = w3.eth.block_number - self.confirmations
        if to_block < self._next_block:
            return 0
        logs = self.client.vault.events.QueueItemAdded().get_logs(from_block=self._next_block, to_block=to_block)
        new = 0
        for e in logs:
            a = e["args"]
            item = QueueItem(int(a["index"]), int(a["kind"]), bytes.fromhex(a["owner"][2:]), int(a["target"]),
                             int(a["amount"]), int(a["time"]), int(e["blockNumber"]))
            if item.item_hash != bytes(a["itemHash"]):
                raise FeederError(f"queue item {item.index}: event fields do not hash to its itemHash")
            if item.index not in self._items:
                new += 1
            self._items[item.index] = item
        self._next_block = to_block + 1
        return new

    def items_from(self, index: int) -> list[QueueItem]:
        """The contiguous run of known items starting at ``index``."""
        for i in [i for i in self._items if i < index - 1024]:  # forget long-consumed items
            del self._items[i]
        out = []
        while index in self._items:
            out.append(self._items[index])
            index += 1
        return out

    def txs(self, next_index: int, time_ms: int) -> list[Deposit | ForcedWithdrawal]:
        """Core transactions for the items from ``next_index`` on (after a ``poll``)."""
        return [queue_item_tx(item, time_ms) for item in self.items_from(next_index)]

    def feed(self, sequencer, now_ms: int) -> list:
        """Poll L1 and submit the next items to ``sequencer`` (from its ``l1_queue_pos``).
        Returns the sequencer's acks (one per item; a forced withdrawal's receipt says whether
        it was served or denied)."""
        self.poll()
        txs = self.txs(sequencer.state.l1_queue_pos, now_ms)
        if not txs:
            return []
        acks = sequencer.submit_txs(txs, now_ms)
        for tx, ack in zip(txs, acks):
            if not ack.receipt.ok:  # only an out-of-order item can be rejected: a bug, not a rule
                raise FeederError(f"queue item {tx.queue_index} was rejected: {ack.receipt}")
        return acks
