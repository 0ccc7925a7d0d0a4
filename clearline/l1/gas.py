"""Gas figures of the L1 contracts, measured on a real EVM (any ``Chain``).

``measure_gas(chain)`` deploys a fresh set of contracts and returns gas used per operation:
whole-transaction gas (21,000 base and calldata included) unless the name says "per".
Deterministic for a given chain and hard fork: the same numbers on the in-process EVM and on
anvil when both run the same fork (the tests check it).
"""

from __future__ import annotations

import random

from clearline.core.encoding import encode_tx
from clearline.core.hashing import keccak
from clearline.core.merkle import SparseMerkleTree
from clearline.core.txs import Order
from clearline.l1.chain import Chain
from clearline.l1.client import L1Client
from clearline.l1.deploy import deploy
from clearline.l1.formats import WithdrawalRecord, encode_batch, encode_batch_txs, withdrawals_tree

__all__ = ["measure_gas", "sample_order_txs", "sample_orders"]


def sample_orders(n: int, seed: int = 1) -> list[bytes]:
    """``n`` canonical encodings of signed limit orders with realistic field values."""
    return [encode_tx(o) for o in sample_order_txs(n, seed)]


def sample_order_txs(n: int, seed: int = 1) -> list[Order]:
    """``n`` signed limit orders with realistic field values (random signature bytes in the
    canonical form: v in {27, 28}, low s)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = rng.randbytes(32)
        sig = rng.randbytes(32) + bytes((s[0] & 0x7F,)) + s[1:] + bytes((27 + rng.randrange(2),))
        out.append(Order(
            time_ms=1_760_000_000_000 + 37 * i, account=rng.randrange(10_000), instrument=rng.randrange(8),
            side=rng.randrange(2), order_type=0, tif=0, flags=0, stp=0,
            price=rng.randrange(90_000, 110_000), size=rng.randrange(1, 1_000), expiry=0, client_id=0,
            nonce=1_000 + i, signature=sig))
    return out


def measure_gas(chain: Chain, *, challenge_period: int = 10, forced_deadline: int = 100_000) -> dict:
    seq_account, user_account = chain.accounts[0], chain.accounts[1]
    d = deploy(chain, deployer=seq_account, challenge_period=challenge_period, forced_deadline=forced_deadline,
               genesis_state_root=keccak(b"genesis"))
    seq = L1Client(chain, d, seq_account)
    user = seq.with_sender(user_account)
    g: dict[str, float | int] = {}
    g["deploy_rollup_and_vault"] = int(chain.w3.eth.get_block(d.block_number)["gasUsed"])

    user.mint(user.address, 10**12)
    user.approve(2**256 - 1)
    deposits = [user.deposit(i, 1_000_000 + i, approve=False).gas_used for i in range(5)]
    g["deposit_first"] = deposits[0]
    g["deposit"] = round(sum(deposits[1:]) / 4)  # steady state (a time word is new every 4th)

    root = keccak(b"root")

    def append(txs: bytes, n_roots: int = 1, **kw) -> int:
        return seq.append_batch(txs, [root] * n_roots, **kw).gas_used

    g["append_batch_consuming_5_deposits"] = append(b"\x01", queue_end=5)
    g["append_batch_min"] = append(b"\x01")
    rng = random.Random(7)
    g["append_batch_per_nonzero_byte"] = round((append(b"\x01" + bytes(rng.randrange(1, 256) for _ in range(4096)))
                                                - g["append_batch_min"]) / 4096, 2)
    g["append_batch_per_zero_byte"] = round((append(b"\x01" + bytes(4096)) - g["append_batch_min"]) / 4096, 2)
    g["append_batch_per_root"] = round((append(b"\x01", 65) - g["append_batch_min"]) / 64, 2)
    orders = sample_order_txs(200)
    data = encode_batch(orders, 16)  # format v3, as the batcher posts (orders only: 13 chunks of up to 16)
    with_roots = append(data, 200 // 16 + 1, txs_per_root=16)
    g["append_batch_200_orders_bytes"] = len(data)
    g["append_batch_200_orders_bytes_v1"] = len(encode_batch_txs([encode_tx(o) for o in orders]))
    g["append_batch_200_orders"] = with_roots
    g["append_batch_per_order"] = round(with_roots / 200, 1)

    chain.advance_time(challenge_period)
    headers = seq.batch_headers(1)
    g["finalize_one"] = seq.finalize(headers[:1]).gas_used
    g["finalize_five_per_batch"] = round(seq.finalize(headers[1:6]).gas_used / 5)

    records = [WithdrawalRecord(i, bytes.fromhex(user.address[2:]), 1_000 + i, i // 16, i % 16) for i in range(100)]
    tree = withdrawals_tree(records)
    base = seq.append_batch(b"\x01", [root])
    r = seq.append_batch(b"\x01", [root], withdrawals=records)
    g["append_batch_per_withdrawal"] = round((r.gas_used - base.gas_used) / len(records))
    header = r.value
    chain.advance_time(challenge_period)
    seq.finalize([base.value, header])
    g["claim_withdrawal_first"] = user.claim_withdrawal(header, 37, records[37], tree.proof(37)).gas_used
    g["claim_withdrawal"] = user.claim_withdrawal(header, 38, records[38], tree.proof(38)).gas_used

    accounts = SparseMerkleTree(32)
    prng = random.Random(3)
    for i in range(1_000):
        accounts.set(prng.randrange(2**32), keccak(i.to_bytes(4, "big")))
    index = next(i for i, _ in accounts.items())
    leaf, proof = accounts.get(index), accounts.proof(index)

    def proof_tx(*args, compressed: bool = True) -> int:
        # a real transaction calling the pure Rollup.merkleRoot(Full): verification + calldata
        name, call_args = L1Client._merkle_args(*args, compressed=compressed)
        return int(chain.transact(seq.rollup.functions[name](*call_args), seq_account)["gasUsed"])

    g["verify_proof_depth32_full_tx"] = proof_tx(32, index, leaf, proof, compressed=False)
    g["verify_proof_depth32_compressed_tx"] = proof_tx(32, index, leaf, proof)
    g["verify_proof_depth32_empty_tree_tx"] = proof_tx(32, 5, bytes(32), SparseMerkleTree(32).proof(5))

    g["forced_withdrawal_request"] = user.request_forced_withdrawal(1, 5).gas_used
    chain.advance_time(forced_deadline + 1)  # ... and it is never served
    g["freeze"] = user.freeze().gas_used
    return g
