"""A whole rollup driven by the simulated market, for tests, benchmarks and demos.

``make_sim_rollup(chain)`` deploys the contracts with a demo-like genesis whose EIP-712 domain
is the chain's id and the (predicted) Rollup address, starts a ``Sequencer`` on a journal, a
``Batcher`` and an ``L1QueueFeeder``, and gives the simulated market's traders funded L1
accounts (their signing keys are the chain's own account keys), so every deposit really goes
through the Vault and is fed to the sequencer from the L1 queue, and every order is really
signed. ``measure_l1(chain, steps)`` runs it and returns the L1 cost and watchtower figures.

Not part of the core: it uses the simulated market's randomness and the chain's accounts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from clearline.core import eip712
from clearline.core import ledger as L
from clearline.core.encoding import encode_tx
from clearline.core.state import Genesis, State
from clearline.core.txs import Withdraw
from clearline.journal import open_journal
from clearline.l1.chain import Chain
from clearline.l1.client import L1Client
from clearline.l1.deploy import Deployment, deploy, predict_addresses
from clearline.l1.formats import decode_batch_txs, encode_batch, encode_batch_txs
from clearline.sequencer import Sequencer
from clearline.sim.market import SimulatedMarket, demo_genesis

from .batcher import Batcher
from .feeder import L1QueueFeeder

__all__ = ["SimRollup", "make_sim_rollup", "measure_fraud_gas", "measure_l1", "rollup_genesis"]

T0_MS = 1_760_000_000_000
STEP_MS = 50


@dataclass
class SimRollup:
    chain: Chain
    deployment: Deployment
    genesis: Genesis
    client: L1Client  # the sequencer's L1 client
    journal: object
    sequencer: Sequencer
    batcher: Batcher
    feeder: L1QueueFeeder
    sim: SimulatedMarket
    now_ms: int = T0_MS
    step_no: int = 0
    fills: int = 0
    users: dict = field(default_factory=dict)  # trader name -> L1Client
    batcher_kw: dict = field(default_factory=dict)

    def user(self, name: str) -> L1Client:
        return self.users[name]

    def trader(self, name: str):
        return next(t for t in self.sim.traders if t.name == name)

    def feed(self) -> list:
        acks = self.feeder.feed(self.sequencer, self.now_ms)
        st = self.sequencer.state
        for t in self.sim.traders:
            if t.account < 0 and (t.address, 0) in st.account_ids:
                t.account = st.account_ids[(t.address, 0)]
        return acks

    def step(self, n: int = 1) -> None:
        """``n`` ticks of the simulated market through the sequencer (marks, operator
        housekeeping every 4th tick, as the demo does)."""
        seq, sim = self.sequencer, self.sim
        for _ in range(n):
            self.now_ms += STEP_MS
            t = self.now_ms
            if self.step_no % 4 == 0:
                marks = sim.mark_updates(t, seq.state)
                if marks:
                    seq.submit_txs(marks, t)
                ops = sim.operator_txs(seq.state, t)
                if ops:
                    seq.submit_txs(ops, t)
                    pays = sim.funding_payments(seq.state, t)
                    if pays:
                        seq.submit_txs(pays, t)
            acks = seq.submit(sim.step(t, seq.state), t)
            self.fills += sum(1 for a in acks for e in a.receipt.events if type(e) is L.Fill)
            self.step_no += 1

    def withdraw(self, name: str, amount: int):
        """A signed off-chain withdrawal by trader ``name``; returns the ack."""
        t = self.trader(name)
        self.now_ms += 1
        tx = Withdraw(self.now_ms, t.account, amount, t.next_nonce())
        tx.signature = eip712.sign(self.sequencer.state.domain, tx, t.key)
        (ack,) = self.sequencer.submit([_encode(tx)], self.now_ms)
        return ack

    def new_batcher(self, **kw) -> Batcher:
        """A fresh Batcher on the same journal (a restarted process)."""
        return Batcher(self.journal, self.client, self.genesis, **{**self.batcher_kw, **kw})

    def batch_payloads(self) -> list[bytes]:
        """Every transaction of every batch on chain, in order (from L1 calldata)."""
        from clearline.watchtower.l1data import RollupReader

        reader = RollupReader(self.chain, self.deployment.rollup, from_block=self.deployment.block_number)
        out: list[bytes] = []
        for ref in reader.batch_refs(1):
            out.extend(decode_batch_txs(reader.batch_calldata(ref).txs))
        return out

    def journal_payloads(self) -> list[bytes]:
        return [e.payload for e in self.journal.entries()]


def _encode(tx) -> bytes:
    return encode_tx(tx)


def _sim_faulty_batcher():
    """A ``FaultyBatcher`` for live traffic (demo, node): a batch the fault cannot be worked
    into (the doctored transactions would be rejected, e.g. a skipped deposit that created an
    account shifts every later account id) is posted honestly and the fault stays armed for
    the next one; ``not_injected`` keeps why (one line per batch tried)."""
    from clearline.sequencer.faults import FaultyBatcher

    class SimFaultyBatcher(FaultyBatcher):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.not_injected: list[str] = []

        def _doctor(self, plan, pre, txs):
            try:
                return super()._doctor(plan, pre, txs)
            except RuntimeError as exc:  # the doctored batch does not apply: this one stays honest
                self.not_injected.append(f"batch {plan.number}: {exc}")
                return None

    return SimFaultyBatcher


def rollup_genesis(chain: Chain, seed: int = 1) -> tuple[Genesis, dict]:
    predicted = predict_addresses(chain, chain.accounts[0])
    g = dataclasses.replace(demo_genesis(seed), chain_id=chain.chain_id,
                            verifying_contract=bytes.fromhex(predicted["rollup"][2:]))
    return g, predicted


def make_sim_rollup(chain: Chain, *, makers: int = 2, takers: int = 2, leveraged: int = 1, seed: int = 1,
                challenge_period: int = 100, forced_deadline: int = 1_000, deposit_scale: int = 1,
                journal_url: str = "sqlite://", fault=None, fault_batch: int | None = None,
                **batcher_kw) -> SimRollup:
    """The simulated market's rollup on ``chain`` (see the module docstring). ``fault``: a
    ``clearline.sequencer.faults.FaultKind`` (or its value) makes the batcher a
    ``FaultyBatcher`` that doctors one posted batch (batch ``fault_batch``, or the first one
    that can carry the fault), signing with the simulated operator's key where the fault
    needs it; off (None) by default. ``fault_batch`` without ``fault`` is refused."""
    if fault is None and fault_batch is not None:
        raise ValueError("fault_batch needs a fault")
    genesis, predicted = rollup_genesis(chain, seed)
    deployment = deploy(chain, deployer=chain.accounts[0], challenge_period=challenge_period,
                        forced_deadline=forced_deadline, genesis_state_root=State(genesis).root(),
                        genesis_config=genesis.to_json())
    assert deployment.rollup == predicted["rollup"]
    client = L1Client(chain, deployment, chain.accounts[0])
    journal = open_journal(journal_url)
    sequencer = Sequencer(journal, genesis, workers=1)
    batcher_kw = {"max_delay_ms": 1_000, **batcher_kw}
    sim = SimulatedMarket(genesis, seed=seed, makers=makers, takers=takers, leveraged=leveraged)
    if fault is None:
        batcher = Batcher(journal, client, genesis, **batcher_kw)
    else:
        batcher = _sim_faulty_batcher()(journal, client, genesis, fault=fault, fault_batch=fault_batch,
                                        operator_key=sim.operator_key, **batcher_kw)
    users = {}
    if len(sim.traders) + 1 > len(chain.accounts):
        raise ValueError(f"need {len(sim.traders) + 1} funded chain accounts")
    for t, account in zip(sim.traders, chain.accounts[1:]):
        t.key = bytes(account.key)
        t.address = bytes.fromhex(account.address[2:])
        t.deposit //= deposit_scale
        u = client.with_sender(account)
        u.mint(u.address, t.deposit)
        u.deposit(0, t.deposit)
        users[t.name] = u
    r = SimRollup(chain, deployment, genesis, client, journal, sequencer, batcher, L1QueueFeeder(client), sim,
               users=users, batcher_kw=batcher_kw)
    r.feed()
    assert all(t.account >= 0 for t in sim.traders)
    return r


def measure_l1(chain: Chain | None = None, *, steps: int = 300, makers: int = 4, takers: int = 6, leveraged: int = 3,
               seed: int = 1, verify_mode: str = "auto", verify_repeats: int = 3, **batcher_kw) -> dict:
    """Run the simulated market for ``steps`` ticks of 50 ms through deposits, the sequencer,
    the batcher and the L1 contracts, then rebuild it with the watchtower. Figures:

    - ``l1_gas_per_trade``: all ``appendBatch`` gas (21,000 base, calldata, hashing, storage)
      divided by the fills (trades) in those batches, as the chain prices calldata (Prague
      by default: EIP-7623 charges data-heavy transactions at least 40 gas a non-zero byte
      and 10 a zero byte, which a batch always pays); ``l1_gas_per_tx`` per transaction;
      ``l1_calldata_gas_per_trade`` the batch data's share of it and
      ``l1_signature_gas_per_trade`` the signatures' share (the floor, see below);
    - ``da_bytes_per_trade`` / ``da_bytes_per_tx``: batch data bytes as posted (format v3);
      ``da_bytes_per_trade_v1``: the same transactions in format v1 (and the ratio
      ``da_v1_over_v2``, the name kept: v1 over the posted format); ``da_bytes_per_trade_zlib``: the posted data deflated (level 9),
      for comparison only (a fraud proof must parse the data as posted);
    - where the bytes go: ``da_bytes_per_trade_by_kind`` (each transaction kind, plus
      ``framing``: version, counts and chunk table), ``da_signatures_per_trade``,
      ``da_signature_bytes_per_trade`` and ``da_signature_share``: signatures are kept
      (fraud proofs need them) and cannot be compressed, so signatures per trade x 64 bytes
      is a floor no encoding of this transaction mix can go under;
    - ``verify_tx_per_s``: the watchtower's rebuild (fetch, decode, recover, apply, roots) and
      ``verify_apply_tx_per_s``: its applying thread alone; medians of ``verify_repeats``.

    ``chain`` defaults to a fresh in-process EVM (its event scans are slow for large batches;
    a JSON-RPC node such as anvil measures the watchtower more fairly)."""
    import time
    import zlib
    from collections import Counter

    from clearline.core.encoding import decode_tx
    from clearline.l1.batch_v3 import steps_after
    from clearline.l1.batch_v3 import tx_sizes_v3 as tx_sizes
    from clearline.l1.formats import decode_batch
    from clearline.watchtower.l1data import RollupReader
    from clearline.watchtower.verify import verify

    if chain is None:
        from clearline.l1.chain import InProcessChain

        chain = InProcessChain(n_accounts=makers + takers + leveraged + 4)
    r = make_sim_rollup(chain, makers=makers, takers=takers, leveraged=leveraged, seed=seed, **batcher_kw)
    t = time.perf_counter()
    r.step(steps)
    sim_s = time.perf_counter() - t
    t = time.perf_counter()
    posted = r.batcher.flush()
    post_s = time.perf_counter() - t
    gas = sum(p.gas_used for p in posted)
    n_txs = sum(p.n_txs for p in posted)
    # the batch data again, from the journal (what the batches hold), for the breakdown
    mix: Counter = Counter()
    by_kind: Counter = Counter()
    data = v1 = zipped = calldata_gas = n_sigs = sig_bytes = 0
    k = r.batcher.txs_per_root
    # the chain's calldata price a byte: EIP-7623's floor (prague; data-heavy transactions pay
    # it) or the standard price before it
    per_nonzero = 40 if getattr(chain, "hardfork", "prague") == "prague" else 16
    reader = RollupReader(chain, r.deployment.rollup, from_block=r.deployment.block_number)
    for p in posted:
        payloads = [e.payload for e in r.journal.entries(p.first_seq, p.last_seq)]
        txs = [decode_tx(x) for x in payloads]
        blob = reader.batch_calldata(reader.batch_refs(number=p.number)[0]).txs  # as posted: matching steps too
        if blob != encode_batch(txs, k, steps_after(decode_batch(blob).chunk_sizes)):
            raise RuntimeError("the posted batch data is not the journal's transactions")
        data += len(blob)
        v1 += len(encode_batch_txs(payloads))
        zipped += len(zlib.compress(blob, 9))
        zeros = blob.count(0)
        calldata_gas += per_nonzero * (len(blob) - zeros) + per_nonzero // 4 * zeros
        framing = len(blob)
        for tx, (size, sig) in zip(txs, tx_sizes(txs, k)):
            name = type(tx).__name__
            mix[name] += 1
            by_kind[name] += size
            framing -= size
            sig_bytes += sig
            n_sigs += sig // 64 if sig % 64 == 0 else sig // 96
        by_kind["framing"] += framing
    if data != sum(p.data_bytes for p in posted):
        raise RuntimeError("the posted batch data is not the journal's transactions")
    reps = []
    for _ in range(verify_repeats):  # the median: the machine is shared and noisy
        rep = verify(chain, r.deployment.rollup, progress=None, mode=verify_mode)
        if not rep.ok:
            raise RuntimeError(f"the watchtower rejects an honest chain: {rep.line()}")
        reps.append(rep)
    rep = sorted(reps, key=lambda x: x.tx_per_s)[len(reps) // 2]
    apply_rate = sorted(x.apply_tx_per_s for x in reps)[len(reps) // 2]
    fills = max(r.fills, 1)
    return {
        "l1_batches": len(posted),
        "l1_txs": n_txs,
        "l1_trades": r.fills,
        "l1_tx_mix": dict(sorted(mix.items())),
        "l1_gas_total": gas,
        "l1_gas_per_batch": round(gas / max(len(posted), 1)),
        "l1_gas_per_tx": round(gas / max(n_txs, 1), 1),
        "l1_gas_per_trade": round(gas / fills, 1),
        "l1_calldata_gas_per_trade": round(calldata_gas / fills, 1),
        "l1_signature_gas_per_trade": round(per_nonzero * sig_bytes / fills, 1),
        "da_bytes_per_tx": round(data / max(n_txs, 1), 1),
        "da_bytes_per_trade": round(data / fills, 1),
        "da_bytes_per_trade_v1": round(v1 / fills, 1),
        "da_v1_over_v2": round(v1 / max(data, 1), 2),
        "da_bytes_per_trade_zlib": round(zipped / fills, 1),
        "da_bytes_per_trade_by_kind": {n: round(b / fills, 1) for n, b in sorted(by_kind.items())},
        "da_signatures_per_trade": round(n_sigs / fills, 3),
        "da_signature_bytes_per_trade": round(sig_bytes / fills, 1),
        "da_signature_share": round(sig_bytes / max(data, 1), 3),
        "verify_tx_per_s": round(rep.tx_per_s),
        "verify_apply_tx_per_s": round(apply_rate),
        "verify_seconds": round(rep.seconds, 2),
        "sim_seconds": round(sim_s, 2),
        "post_seconds": round(post_s, 2),
    }


def _measure_one_fault(fault: str, deposits: int) -> tuple[str, int, int]:
    """(``"<fault>/<kind>"``, prove gas, commit gas) of one fault of the faulty batcher."""
    from clearline.l1.chain import InProcessChain
    from clearline.sequencer.faults import FaultKind, fault_scenario
    from clearline.watchtower.fraud import find_fraud, submit_proof

    fault = FaultKind(fault)
    chain = InProcessChain(n_accounts=10)
    try:
        f = fault_scenario(chain, fault, deposits=deposits, later_batch=False)
        _, proof = find_fraud(chain, f.rollup.deployment.rollup)
        if proof is None:
            raise RuntimeError(f"fault {fault.value}: the watchtower found nothing")
        sub = submit_proof(f.challenger, proof)
    finally:
        chain.close()
    return f"{fault.value}/{proof.kind_name}", sub.prove_gas, sub.commit_gas


# one fault per proof kind (the bench's default: the largest of each kind)
FRAUD_GAS_FAULTS_PER_KIND = ("bad_framing", "malformed_chunk", "skipped_queue_item", "wrong_queue_end", "wrong_root",
                             "wrong_median", "unauthorized_cancel", "stolen_withdrawal", "replayed_signature",
                             "forged_order", "expired_option_order", "over_fill")


def measure_fraud_gas(*, deposits: int = 13, faults=None, workers: int = 1) -> dict:
    """Gas of ``Rollup.proveFraud`` for each proof kind, each against the fault of the faulty
    batcher that it proves (``clearline.sequencer.faults.faulty_rollup`` on a fresh in-process
    EVM; the faulty batch holds a forced withdrawal, ``deposits`` deposits, one withdrawal and
    one transfer, the forced withdrawal, withdrawal and transfer each alone in its chunk, batch
    data v3). ``faults``: the fault names to measure (all by default;
    ``FRAUD_GAS_FAULTS_PER_KIND`` is one per kind); ``workers`` > 1 measures them in that many
    processes.
    ``fraud_proof_gas_max`` is the largest; ``fraud_proof_gas_by_fault`` per fault
    (``"<fault>/<kind>"``); ``fraud_proof_gas_by_kind`` the largest per kind;
    ``fraud_commit_gas`` the commitment's. Whole-transaction gas (21,000 and calldata
    included). The default is every fault a proof kind proves (``PROVABLE_FAULTS``: wrong_median
    in ``operator_fault_rollup``'s batch 3, the others in ``faulty_rollup``'s)."""
    from clearline.sequencer.faults import PROVABLE_FAULTS, FaultKind

    names = [FaultKind(x).value for x in (faults if faults is not None else PROVABLE_FAULTS)]
    if workers > 1 and len(names) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(names)), mp_context=multiprocessing.get_context("fork")) as ex:
            results = list(ex.map(_measure_one_fault, names, [deposits] * len(names)))
    else:
        results = [_measure_one_fault(x, deposits) for x in names]
    by_fault = {name: gas for name, gas, _ in results}
    by_kind: dict[str, int] = {}
    for name, gas in by_fault.items():
        kind = name.split("/", 1)[1]
        by_kind[kind] = max(by_kind.get(kind, 0), gas)
    return {"fraud_proof_gas_max": max(by_fault.values()), "fraud_proof_gas_by_fault": by_fault,
            "fraud_proof_gas_by_kind": by_kind, "fraud_commit_gas": max(c for _, _, c in results)}
