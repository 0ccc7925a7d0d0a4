"""Freeze and escape (Vault.escape): after a freeze every account withdraws, once, its equity at
the last finalized state, by Merkle proofs against Rollup.finalizedStateRoot.

Two set-ups on the in-process EVM:

- a hand-built finalized state (committed as the genesis root, which is finalized from the
  start) with accounts of 0..16 positions over 16 markets, risk arrays included: exact
  amounts, every refusal (before freeze, twice, wrong preimage / leaf / proof, missing market,
  insufficient balance) and the gas of a 16-position escape;
- a whole rollup (``clearline.batcher.harness``): trading, batches, finalization, more batches
  left unfinalized, the sequencer halts, a forced withdrawal goes unanswered past its deadline,
  freeze; the escape tool rebuilds the finalized state from L1 data alone and every account
  escapes with exactly its equity at that state (``margin.health``), total <= the Vault.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from clearline.core.instruments import InstrumentSpec
from clearline.core.margin import health
from clearline.core.state import Genesis, Position, State
from clearline.core.units import USD6
from clearline.l1.chain import InProcessChain
from clearline.l1.client import L1Client, L1Revert
from clearline.l1.deploy import deploy
from clearline.watchtower.escape import build_escape, escape_call, pending_funding, rebuild_finalized

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "batcher"))

DEADLINE = 1_000
CHALLENGE = 100
ESCAPE_GAS_TARGET = 500_000


# ---------------------------------------------------------------------- hand-built state
def _specs(n: int = 16) -> tuple[InstrumentSpec, ...]:
    out = []
    for i in range(n):
        if i % 2:
            tick, lot = 1_000_000, 100_000  # tick value 1,000 usd6
        else:
            tick, lot = 100_000, 10_000_000  # tick value 10,000 usd6
        out.append(InstrumentSpec(i, f"X{i}-PERP", 0, "BTC" if i % 3 else "ETH", tick, lot, 100_000, 50_000, 100,
                                  300))
    return tuple(out)


def _build_state(chain) -> tuple[State, dict[str, int]]:
    """Accounts: ``full`` 16 positions, ``two`` 2, ``flat`` none, ``broke`` negative equity,
    ``whale`` more than the Vault holds."""
    specs = _specs()
    marks = tuple(20_000 + 37 * i for i in range(len(specs)))
    g = Genesis(chain.chain_id, bytes(20), bytes(20), specs, marks)
    st = State(g)
    for i, m in sorted(st.markets.items()):
        if i % 4 == 0:
            m.risk_array = [(-1) ** k * (1_000 * k + i) for k in range(16)]
        m.funding_index = -123_456 * (i + 1)
    ids = {}
    owners = [bytes.fromhex(a.address[2:]) for a in chain.accounts[1:6]]
    for name, owner in zip(("full", "two", "flat", "broke", "whale"), owners):
        ids[name] = st.account_for(owner, 0).id
    full = st.accounts[ids["full"]]
    full.collateral = 50_000 * USD6
    full.nonce = 7
    full.margin_mode = 1
    for i in range(16):
        size = (i + 1) * (1 if i % 3 else -1)
        full.positions[i] = Position(size, -size * (marks[i] - 5) * specs[i].tick_value, 1_000 * i)
    two = st.accounts[ids["two"]]
    two.collateral = 3_000 * USD6
    two.positions[3] = Position(-2, 2 * (marks[3] + 40) * specs[3].tick_value, 5)
    two.positions[10] = Position(1, -(marks[10] - 100) * specs[10].tick_value, -5)
    st.accounts[ids["flat"]].collateral = 1_234_567
    broke = st.accounts[ids["broke"]]
    broke.collateral = 10 * USD6
    broke.positions[5] = Position(3, -3 * (marks[5] + 10_000) * specs[5].tick_value, 0)
    st.accounts[ids["whale"]].collateral = 10**15
    for a in st.accounts:
        st.dirty_accounts.add(a.id)
    st.root()
    return st, ids


@pytest.fixture
def built():
    chain = InProcessChain(n_accounts=8)
    st, ids = _build_state(chain)
    d = deploy(chain, deployer=chain.accounts[0], challenge_period=CHALLENGE, forced_deadline=DEADLINE,
               genesis_state_root=st.root(), genesis_config=st.genesis.to_json())
    seq = L1Client(chain, d, chain.accounts[0])
    funder = seq.with_sender(chain.accounts[7])
    funder.mint(funder.address, 200_000 * USD6)
    funder.deposit(0, 200_000 * USD6)  # the Vault's funds, and a queue item nobody serves
    return chain, seq, st, ids


def _freeze(chain, client) -> None:
    chain.advance_time(DEADLINE + 1)
    client.freeze()
    assert client.frozen()


def test_escape_pays_exact_equity_once_and_refuses_bad_proofs(built):
    chain, seq, st, ids = built
    anyone = seq.with_sender(chain.accounts[6])
    call = escape_call(st, ids["two"])
    with pytest.raises(L1Revert) as e:  # not frozen
        anyone.escape(*call.args())
    assert e.value.error == "NotFrozen"
    _freeze(chain, anyone)

    # wrong state preimage
    state, account, markets, _ = call.args()
    bad_state = list(state)
    bad_state[4] += 1  # feePool
    with pytest.raises(L1Revert) as e:
        anyone.escape(bad_state, account, markets)
    assert e.value.error == "StateRootMismatch"
    # a leaf that is not the committed one (more collateral), same proof
    bad_account = list(account)
    bad_account[3] += 1
    with pytest.raises(L1Revert) as e:
        anyone.escape(state, bad_account, markets)
    assert e.value.error == "InvalidAccountProof"
    # another account's proof
    other = escape_call(st, ids["flat"])
    with pytest.raises(L1Revert) as e:
        anyone.escape(state, (*account[:7], *other.account[7:]), markets)
    assert e.value.error == "InvalidAccountProof"
    # a market leaf with a better mark
    leaf = list(markets[1][0])
    leaf[14] += 1
    with pytest.raises(L1Revert) as e:
        anyone.escape(state, account, [markets[0], (tuple(leaf), *markets[1][1:])])
    assert e.value.error == "InvalidMarketProof"
    # the markets out of order, or one missing
    with pytest.raises(L1Revert) as e:
        anyone.escape(state, account, markets[::-1])
    assert e.value.error == "MarketMismatch"
    with pytest.raises(L1Revert) as e:
        anyone.escape(state, account, markets[:1])
    assert e.value.error == "MarketCountMismatch"
    # a market proof that is not the market's (the proof of another instrument)
    wrong = escape_call(st, ids["full"]).markets
    with pytest.raises(L1Revert) as e:
        anyone.escape(state, account, [markets[0], (markets[1][0], *wrong[0][1:])])
    assert e.value.error == "InvalidMarketProof"

    owner = chain.accounts[1 + list(ids).index("two")].address
    before, vault_before = anyone.token_balance(owner), anyone.vault_balance()
    expected = health(st, st.accounts[ids["two"]])[0] - pending_funding(st, st.accounts[ids["two"]])
    assert expected == call.equity > 0
    res = anyone.escape(*call.args())  # a stranger sends it; the owner is paid
    assert res.value == expected
    assert anyone.token_balance(owner) == before + expected
    assert anyone.vault_balance() == vault_before - expected
    assert anyone.is_escaped(ids["two"]) and not anyone.is_escaped(ids["full"])
    with pytest.raises(L1Revert) as e:
        anyone.escape(*call.args())
    assert e.value.error == "AlreadyEscaped"


def test_every_kind_of_account_and_the_16_position_gas(built):
    chain, seq, st, ids = built
    u = seq.with_sender(chain.accounts[6])
    _freeze(chain, u)
    paid = {}
    gas = {}
    for name in ("full", "two", "flat", "broke"):
        call = escape_call(st, ids[name])
        acct = st.accounts[ids[name]]
        # the positions' funding indices lag their markets' (as between a FUNDING_SETTLE and its
        # FUNDING_PAYs): the funding still to pay counts, on L1 as here
        assert call.equity == health(st, acct)[0] - pending_funding(st, acct)
        assert pending_funding(st, acct) != 0 or name != "full"
        owner = "0x" + acct.owner.hex()
        before = u.token_balance(owner)
        res = u.escape(*call.args())
        paid[name], gas[name] = res.value, res.gas_used
        assert res.value == max(0, call.equity)
        assert u.token_balance(owner) == before + res.value
        assert u.is_escaped(ids[name])
    assert len(st.accounts[ids["full"]].positions) == 16
    assert health(st, st.accounts[ids["broke"]])[0] < 0 and paid["broke"] == 0
    assert paid["flat"] == 1_234_567
    # more than the Vault holds: refused, nothing paid, not marked
    whale = escape_call(st, ids["whale"])
    with pytest.raises(L1Revert) as e:
        u.escape(*whale.args())
    assert e.value.error == "InsufficientVaultBalance"
    assert e.value.args_by_name["balance"] == u.vault_balance() < whale.equity
    assert not u.is_escaped(ids["whale"])
    print(f"\nescape gas: 16 positions {gas['full']:,}, 2 positions {gas['two']:,}, none {gas['flat']:,}")
    assert gas["full"] <= ESCAPE_GAS_TARGET, gas


def _settling_state(chain) -> tuple[State, dict[str, int]]:
    """Two BTC calls settled at 10,500 USD and being paid (DELISTED, unpaidLots = 2 x open
    interest), nobody paid yet: ``long`` holds 3 of the one 500 USD in the money (its fee is
    the rate's), ``thin`` 4 of the one 0.1 USD in the money (its fee is capped at 1/8 of the
    payoff), ``short`` is short both (no fee)."""
    from clearline.core import eip712
    from clearline.core.instruments import MarketStatus
    from clearline.core.underlying import UnderlyingConfig
    from clearline.oracle.aggregate import OracleConfig

    oracle = OracleConfig((eip712.address_of(b"\x11" * 32),), quorum=1, staleness_ms=5_000,
                          max_deviation_ppm=100_000, confirmations=2)
    specs = (InstrumentSpec(0, "BTC-PERP", 0, "BTC", 100_000, 10_000, 50_000, 30_000, 100, 500),
             InstrumentSpec(1, "BTC-1-100000-C", 1, "BTC", 100_000, 1_000_000, 150_000, 75_000, 200, 500,
                            expiry=10_000, strike=100_000, option_type=1),
             InstrumentSpec(2, "BTC-1-104999-C", 1, "BTC", 100_000, 1_000_000, 150_000, 75_000, 200, 500,
                            expiry=10_000, strike=104_999, option_type=1))
    st = State(Genesis(chain.chain_id, bytes(20), bytes(20), specs, (100_000, 0, 0),
                       (UnderlyingConfig(0, "BTC", oracle),)))
    owners = [bytes.fromhex(a.address[2:]) for a in chain.accounts[1:4]]
    ids = {name: st.account_for(owner, 0).id for name, owner in zip(("long", "thin", "short"), owners)}
    for inst, size, long_name in ((1, 3, "long"), (2, 4, "thin")):
        m = st.markets[inst]
        m.status = MarketStatus.DELISTED
        m.settlement_price = 10_500 * USD6
        m.mark_price = (m.settlement_price - m.spec.strike * m.spec.tick_size) // m.spec.tick_size
        m.open_interest = size
        m.unpaid_lots = 2 * size
        tv = m.spec.tick_value
        for name, s in ((long_name, size), ("short", -size)):
            st.accounts[ids[name]].positions[inst] = Position(s, -s * 3_000 * tv, 0)
            st.holders[inst].add(ids[name])
        st.paying.add(inst)
    for a in st.accounts:
        a.collateral = 1_000 * USD6
        st.dirty_accounts.add(a.id)
    st.root()
    return st, ids


def test_escape_before_settle_position_deducts_the_settlement_fee():
    """An escape from a state in the middle of an option's settlement pays what the account's
    SETTLE_POSITIONs would have left it (the core's own step, on a copy): a long receiving a
    payoff pays the settlement fee (the rate, or 1/8 of the payoff), so the Vault reads the fee
    rate from the consensus parameters (checked against Rollup.paramsHash); without them such
    an escape reverts, with other parameters too."""
    from clearline.core.operator import settle_position

    chain = InProcessChain(n_accounts=6)
    st, ids = _settling_state(chain)
    d = deploy(chain, deployer=chain.accounts[0], challenge_period=CHALLENGE, forced_deadline=DEADLINE,
               genesis_state_root=st.root(), genesis_config=st.genesis.to_json())
    client = L1Client(chain, d, chain.accounts[5])
    client.mint(client.address, 200_000 * USD6)
    client.deposit(0, 200_000 * USD6)
    _freeze(chain, client)
    fees = {}
    for name, aid in ids.items():
        after = State.from_blob(st.to_blob())
        for inst in sorted(after.accounts[aid].positions):
            settle_position(after, inst, aid)
        settled = after.accounts[aid].collateral  # every position settled: only collateral is left
        call = escape_call(st, aid)
        fees[name] = health(st, st.accounts[aid])[0] - settled
        assert call.equity == settled, name
        if name == "short":
            assert call.params == b"" and fees[name] == 0
        else:
            assert call.params and fees[name] > 0
            with pytest.raises(L1Revert) as e:  # the fee is due: the parameters are needed
                client.escape(*call.args()[:3], b"")
            assert e.value.error == "SettlementParamsNeeded"
            wrong = bytearray(call.params)
            wrong[287] ^= 1  # another fee rate
            with pytest.raises(L1Revert) as e:
                client.escape(*call.args()[:3], bytes(wrong))
            assert e.value.error == "ParamsMismatch"
        assert client.escape(*call.args()).value == settled, name
    long_m, thin_m = st.markets[1], st.markets[2]
    assert fees["long"] < 3 * long_m.mark_price * long_m.spec.tick_value // 8  # the rate's fee
    assert fees["thin"] == 4 * thin_m.mark_price * thin_m.spec.tick_value // 8  # the cap


def test_escape_gas_benchmark():
    from clearline.watchtower.escape import measure_escape_gas

    m = measure_escape_gas(16)
    print(f"\nescape_gas (16 positions): {m['escape_gas']:,}")
    assert m["positions"] == 16 and m["amount"] > 0
    assert m["escape_gas"] <= ESCAPE_GAS_TARGET, m


# ------------------------------------------------------------------------- whole rollup
def test_sequencer_halts_forced_withdrawal_unanswered_freeze_everyone_escapes():
    from rollup_env import make_rollup

    chain = InProcessChain(n_accounts=12)
    r = make_rollup(chain, challenge_period=CHALLENGE, forced_deadline=DEADLINE)
    r.step(40)
    assert r.fills > 0
    r.withdraw("taker0", 1_000 * USD6)  # a withdrawal in a batch that will finalize
    r.step(5)
    posted = r.batcher.flush()
    assert posted
    chain.advance_time(CHALLENGE)
    assert r.batcher.finalize_ready() == [p.number for p in posted]
    st = r.sequencer.state
    final_root = st.root()
    assert r.client.finalized_state_root() == final_root
    expected = {a.id: health(st, a)[0] for a in st.accounts}
    assert len(expected) >= 5 and any(a.positions for a in st.accounts)

    # trading goes on in a batch that never finalizes (void after the freeze)
    r.step(20)
    assert r.batcher.flush()
    assert r.client.last_batch() > r.client.last_finalized_batch()
    # the sequencer halts: a forced withdrawal and a deposit are never served
    t, u = r.trader("taker1"), r.user("taker1")
    u.request_forced_withdrawal(t.account, 10 * USD6)
    u.mint(u.address, 7 * USD6)
    dep = u.deposit(0, 7 * USD6).value
    with pytest.raises(L1Revert) as e:  # not overdue yet
        u.freeze()
    assert e.value.error == "NotOverdue"
    call = build_escape(chain, r.deployment.rollup, t.account)  # from L1 data alone
    with pytest.raises(L1Revert) as e:
        u.escape(*call.args())
    assert e.value.error == "NotFrozen"
    chain.advance_time(DEADLINE + 1)
    u.freeze()
    with pytest.raises(L1Revert) as e:  # appends stop
        r.client.append_batch(b"\x01", [final_root])
    assert e.value.error == "IsFrozen"

    fin = rebuild_finalized(chain, r.deployment.rollup)
    assert fin.root == final_root and fin.batch == posted[-1].number
    # the finalized withdrawal and the unconsumed deposit are paid first
    (claim,) = r.batcher.claims(posted[-1].number, owner=r.trader("taker0").address) or [
        c for p in posted for c in r.batcher.claims(p.number, owner=r.trader("taker0").address)]
    r.user("taker0").claim_withdrawal(claim.header, claim.index, claim.record, claim.siblings)
    u.refund_deposit(dep)
    vault = u.vault_balance()
    total = 0
    for aid, eq in sorted(expected.items()):
        c = escape_call(fin.state, aid, finalized_batch=fin.batch)
        assert c.equity == eq
        owner = "0x" + c.owner.hex()
        before = u.token_balance(owner)
        res = r.client.escape(*c.args())  # sent by the (halted) sequencer's key: anyone may
        assert res.value == max(0, eq)
        assert u.token_balance(owner) == before + res.value
        total += res.value
        with pytest.raises(L1Revert) as e:
            u.escape(*c.args())
        assert e.value.error == "AlreadyEscaped"
    assert total <= vault
    assert u.vault_balance() == vault - total
    # what stays in the Vault: the fee pool and insurance fund of the finalized state
    assert vault - total == fin.state.fee_pool + fin.state.insurance_fund + sum(
        -min(0, e) for e in expected.values())
    print(f"\n{len(expected)} accounts escaped, {total / USD6:,.2f} USD paid, {u.vault_balance() / USD6:,.2f} left")


# ------------------------------------------------------------------- the command, on anvil
def test_escape_command_on_anvil(capsys):
    from clearline.l1.chain import anvil_executable, start_anvil
    from clearline.watchtower.escape import escape_main

    from rollup_env import make_rollup

    if anvil_executable() is None:
        pytest.skip("anvil unavailable: node_modules/.bin/anvil missing (run `npm ci`; Linux x64)")
    node = start_anvil()
    try:
        chain = node.chain()
        r = make_rollup(chain, makers=1, takers=1, leveraged=0, challenge_period=CHALLENGE, forced_deadline=DEADLINE,
                        max_delay_ms=10**9)
        r.step(12)
        r.batcher.flush()
        chain.advance_time(CHALLENGE)
        assert r.batcher.finalize_ready()
        st = r.sequencer.state
        t = r.trader("taker0")
        acct = st.accounts[t.account]
        equity = health(st, acct)[0]
        rollup = r.deployment.rollup
        argv = ["--rpc", node.url, "--rollup", rollup, "--account", str(t.account), "--json"]
        assert escape_main(argv) == 1  # not frozen: the Vault refuses
        assert "NotFrozen" in json.loads(capsys.readouterr().out)["error"]
        other = next(n for n in r.users if n != "taker0")
        u = r.user(other)
        u.request_forced_withdrawal(r.trader(other).account, USD6)  # never served
        chain.advance_time(DEADLINE + 1)
        u.freeze()
        assert escape_main(argv + ["--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["amount"] == max(0, equity)
        before = r.user("taker0").token_balance()
        # sent with another key (anvil's account 5): the owner is paid
        key = "0x" + bytes(chain.accounts[5].key).hex()
        assert escape_main(argv + ["--key", key]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["amount"] == max(0, equity) and out["equity"] == equity and out["gas_used"] > 0
        assert r.user("taker0").token_balance() == before + max(0, equity)
        assert escape_main(argv) == 1
        assert "AlreadyEscaped" in json.loads(capsys.readouterr().out)["error"]
        assert escape_main(argv[:-1]) == 1  # plain text
        assert capsys.readouterr().out.startswith("REFUSED")
    finally:
        node.stop()
