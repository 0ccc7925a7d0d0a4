"""Arguments of ``MarginVerifier.health`` for one account of a ``State``.

``margin_inputs(state, account_id)`` returns ``(account, markets, index)``: the account leaf
and, per position (ascending instrument, the leaf's order), the market leaf, both decoded from
the committed encodings (``State.account_leaf`` / ``State.market_leaf`` with the ABI types of
``clearline.watchtower.escape``), so they cannot drift from ``clearline.core.encoding``; and
the index price (usd6) of each market's underlying, as ``State.index_of`` gives it to the core.
The account's ``present`` / ``siblings`` proof fields are empty: ``health`` is a pure function
of the leaves, proving them is the caller's job.

``margin_inputs_after(state, account_id, instrument)`` adds the market leaf and index of an
instrument the account does not hold as the last elements, as ``healthAfter`` expects.

``margin_witness(state, account_id)`` is the proven form a fraud proof carries
(``MarginWitness`` for ``MarginVerifier.provenHealth``): the same market leaves with their
proofs, and the underlying leaves of those markets with theirs.
"""

from __future__ import annotations

from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address

from clearline.core.state import UNDERLYING_BASE, State
from clearline.l1.formats import compress_proof

from .escape import _ACCOUNT_TYPES, _MARKET_TYPES

__all__ = ["account_tuple", "margin_inputs", "margin_inputs_after", "margin_witness", "market_tuple", "markets_witness"]


def account_tuple(state: State, account_id: int) -> tuple:
    """The ``EscapeAccount`` tuple of the account's leaf, with no Merkle proof."""
    fields = list(abi_decode(_ACCOUNT_TYPES, state.account_leaf(state.accounts[account_id]))[1:])
    fields[1] = to_checksum_address(fields[1])  # web3 wants checksummed addresses
    return (*fields, 0, [])


def market_tuple(state: State, instrument: int) -> tuple:
    """The ``MarketLeaf`` tuple of the instrument's leaf."""
    (fields,) = abi_decode(_MARKET_TYPES, State.market_leaf(state.markets[instrument]))[1:]
    return fields


def margin_inputs(state: State, account_id: int) -> tuple[tuple, list[tuple], list[int]]:
    """``(EscapeAccount, MarketLeaf[], indexUsd6[])`` for ``MarginVerifier.health``."""
    acct = state.accounts[account_id]
    held = sorted(acct.positions)  # the account leaf's order
    markets = [market_tuple(state, i) for i in held]
    index = [state.index_of(state.markets[i]) for i in held]
    return account_tuple(state, account_id), markets, index


def margin_inputs_after(state: State, account_id: int, instrument: int) -> tuple[tuple, list[tuple], list[int]]:
    """``margin_inputs`` for ``MarginVerifier.healthAfter(..., instrument, ...)``: the
    instrument's market leaf and index appended last if the account does not hold it."""
    account, markets, index = margin_inputs(state, account_id)
    if instrument not in state.accounts[account_id].positions:
        markets.append(market_tuple(state, instrument))
        index.append(state.index_of(state.markets[instrument]))
    return account, markets, index


def margin_witness(state: State, account_id: int) -> tuple:
    """``MarginWitness`` of the account: per position (the leaf's order) the market leaf with
    its compressed proof against the markets root, and the underlying leaf (raw bytes, with its
    proof) of each underlying those markets have: the index prices of options and the
    liquidation pause flags."""
    return markets_witness(state, state.accounts[account_id].positions)


def markets_witness(state: State, instruments) -> tuple:
    """``MarginWitness`` of ``instruments`` (ascending, each once): their market leaves and the
    underlying leaves of those markets, with compressed proofs (``margin_witness`` for one
    account; the MatchVerifier's for two accounts and the instrument they trade)."""
    state.root()  # flush the trees
    markets, unders, seen = [], [], set()
    for inst in sorted(set(instruments)):
        present, kept = compress_proof(state.markets_tree.proof(inst))
        markets.append((market_tuple(state, inst), present, kept))
        u = state.underlying_by_symbol.get(state.markets[inst].spec.underlying)
        if u is not None and u.config.id not in seen:
            seen.add(u.config.id)
            up, uk = compress_proof(state.markets_tree.proof(UNDERLYING_BASE + u.config.id))
            unders.append((u.config.id, State.underlying_leaf(u), up, uk))
    return (markets, unders)
