"""Golden vectors for the oracle: exact digests, signatures and encodings of price reports, and a
scripted aggregation sequence (signed reports -> canonical bytes -> recovery -> aggregate)
with the outcome and state after every round. Any change to the report encoding or the
aggregation rules shows up here as a diff.

Regenerate (only when a change is intended; then bump the domain version or document it):

    CLEARLINE_REGEN_GOLDEN=1 pytest tests/golden/test_golden_oracle.py

Numbers are decimal strings and bytes 0x-hex, so any language can consume the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account.messages import _hash_eip191_message, encode_typed_data

from clearline.core.eip712 import DOMAIN_NAME, DOMAIN_VERSION, Domain, address_of
from clearline.oracle import OracleConfig, OracleState, aggregate
from clearline.oracle.report import (
    PriceReport,
    decode_report,
    decode_reports,
    digest,
    encode_report,
    encode_reports,
    recover_reporter,
    recover_reporters,
    signed,
    struct_hash,
    typed_data,
)
from golden_store import load_vectors

VECTORS = Path(__file__).parent / "vectors" / "oracle.json"

DOMAIN = Domain(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
KEYS = [bytes([b]) * 32 for b in (0x11, 0x22, 0x33, 0x44)]  # 0..2 reporters, 3 a stranger
ADDRS = [address_of(k) for k in KEYS]
U32, U64 = (1 << 32) - 1, (1 << 64) - 1
T0 = 1_700_000_000_000
BTC = 0

CONFIG = OracleConfig(tuple(ADDRS[:3]), quorum=2, staleness_ms=5_000,
                      max_deviation_ppm=50_000, confirmations=2)

# (name, now_ms, [(key index, price, timestamp)]): each round's reports, in tx order
ROUNDS = [
    ("first_index", T0, [(0, 65_000_000_000, T0 - 100), (1, 65_010_000_000, T0 - 50),
                         (2, 64_990_000_000, T0 - 10)]),
    ("even_count_lower_middle", T0 + 1_000, [(0, 65_100_000_000, T0 + 900),
                                             (1, 65_200_000_000, T0 + 950)]),
    ("stale_and_stranger_dropped", T0 + 10_000, [
        (0, 65_300_000_000, T0 + 5_000 - 1),  # stale: age 5_001 > 5_000
        (1, 65_300_000_000, T0 + 5_000),  # age == staleness: fresh
        (2, 65_400_000_000, T0 + 10_000),  # at now: fresh
        (3, 1, T0 + 9_999)]),  # stranger: ignored
    ("quorum_not_met", T0 + 11_000, [(0, 65_000_000_000, T0 + 10_500),
                                     (1, 65_000_000_000, T0 + 12_000)]),  # future
    ("replayed_reports_already_used", T0 + 11_500, [(0, 65_300_000_000, T0 + 9_500),
                                                    (2, 65_400_000_000, T0 + 10_000)]),
    ("crash_unconfirmed", T0 + 12_000, [(0, 45_500_000_000, T0 + 11_900),
                                        (1, 45_600_000_000, T0 + 11_950),
                                        (2, 45_400_000_000, T0 + 11_990)]),
    ("crash_reverts_resets", T0 + 13_000, [(0, 65_000_000_000, T0 + 12_900),
                                           (1, 65_100_000_000, T0 + 12_900),
                                           (2, 65_200_000_000, T0 + 12_900)]),
    ("crash_again_unconfirmed", T0 + 14_000, [(0, 45_000_000_000, T0 + 13_900),
                                              (2, 45_100_000_000, T0 + 13_950)]),
    ("crash_confirmed", T0 + 15_000, [(0, 44_000_000_000, T0 + 14_900),
                                      (1, 44_100_000_000, T0 + 14_950),
                                      (2, 90_000_000_000, T0 + 14_990)]),  # one liar
    ("after_confirmation_small_move", T0 + 16_000, [(0, 44_500_000_000, T0 + 15_900),
                                                    (1, 44_600_000_000, T0 + 15_900)]),
]

REPORTS = [
    ("btc", 0, PriceReport(BTC, 65_000_500_000, T0, 1)),
    ("eth", 1, PriceReport(1, 3_200_000_000, T0 + 1, 7)),
    ("zero", 2, PriceReport(0, 0, 0, 0)),
    ("max", 0, PriceReport(U32, U64, U64, U64)),
]


def _j(value):
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return [_j(v) for v in value]
    raise TypeError(type(value))


def _report_fields(r: PriceReport) -> dict:
    return {f: _j(getattr(r, f)) for f in ("asset", "price", "timestamp", "round", "signature")}


def _state(s: OracleState) -> dict:
    return {f: _j(getattr(s, f)) for f in ("asset", "index_price", "index_time_ms",
                                          "last_round_ms", "pending_price", "pending_count")}


def build_vectors() -> dict:
    reports = []
    for name, key_index, r in REPORTS:
        sr = signed(DOMAIN, r, KEYS[key_index])
        reports.append({"name": name, "signer": _j(ADDRS[key_index]), "fields": _report_fields(sr),
                        "struct_hash": _j(struct_hash(r)), "digest": _j(digest(DOMAIN, r)),
                        "encoding": _j(encode_report(sr))})

    state = OracleState(BTC)
    rounds = []
    for rnd_no, (name, now, spec) in enumerate(ROUNDS, start=1):
        batch = [signed(DOMAIN, PriceReport(BTC, price, ts, rnd_no), KEYS[k])
                 for k, price, ts in spec]
        data = encode_reports(batch)
        res = aggregate(CONFIG, state, recover_reporters(DOMAIN, decode_reports(data)), now)
        rounds.append({
            "name": name, "now_ms": _j(now), "reports": _j(data),
            "outcome": res.outcome.name, "median": _j(res.median),
            "liquidations_paused": res.liquidations_paused,
            "used": [[_j(s), _j(p)] for s, p in res.used],
            "dropped": [[_j(s), reason.name] for s, reason in res.dropped],
            "state": _state(res.state),
        })
        state = res.state

    return {
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION,
                   "chainId": str(DOMAIN.chain_id),
                   "verifyingContract": _j(DOMAIN.verifying_contract),
                   "separator": _j(DOMAIN.separator)},
        "private_keys": [_j(k) for k in KEYS],
        "addresses": [_j(a) for a in ADDRS],
        "reports": reports,
        "reports_array": _j(encode_reports([signed(DOMAIN, r, KEYS[k]) for _, k, r in REPORTS])),
        "aggregation": {
            "config": {"reporters": [_j(a) for a in CONFIG.reporters],
                       "quorum": _j(CONFIG.quorum), "staleness_ms": _j(CONFIG.staleness_ms),
                       "max_deviation_ppm": _j(CONFIG.max_deviation_ppm),
                       "confirmations": _j(CONFIG.confirmations)},
            "initial_state": _state(OracleState(BTC)),
            "rounds": rounds,
        },
    }


@pytest.fixture(scope="module")
def stored() -> dict:
    return load_vectors(VECTORS, build_vectors)


def test_golden_vectors_unchanged(stored):
    current = build_vectors()
    assert current.keys() == stored.keys()
    for key in ("domain", "private_keys", "addresses", "reports_array"):
        assert current[key] == stored[key], key
    assert [r["name"] for r in current["reports"]] == [r["name"] for r in stored["reports"]]
    for now, then in zip(current["reports"], stored["reports"]):
        assert now == then, now["name"]
    assert current["aggregation"]["config"] == stored["aggregation"]["config"]
    for now, then in zip(current["aggregation"]["rounds"], stored["aggregation"]["rounds"],
                         strict=True):
        assert now == then, now["name"]


def test_golden_reports_decode_recover_and_match_eth_account(stored):
    for entry in stored["reports"]:
        r = decode_report(bytes.fromhex(entry["encoding"][2:]))
        assert _report_fields(r) == entry["fields"], entry["name"]
        assert "0x" + recover_reporter(DOMAIN, r).hex() == entry["signer"], entry["name"]
        msg = encode_typed_data(full_message=typed_data(DOMAIN, r))
        assert "0x" + bytes(_hash_eip191_message(msg)).hex() == entry["digest"], entry["name"]
    array = decode_reports(bytes.fromhex(stored["reports_array"][2:]))
    assert [_report_fields(r) for r in array] == [e["fields"] for e in stored["reports"]]


def test_golden_aggregation_replays_from_stored_bytes_only(stored):
    """Rebuild every round from the stored calldata alone, as a watchtower would."""
    agg = stored["aggregation"]
    cfg = agg["config"]
    config = OracleConfig(tuple(bytes.fromhex(a[2:]) for a in cfg["reporters"]),
                          int(cfg["quorum"]), int(cfg["staleness_ms"]),
                          int(cfg["max_deviation_ppm"]), int(cfg["confirmations"]))
    state = OracleState(**{k: int(v) for k, v in agg["initial_state"].items()})
    for rnd in agg["rounds"]:
        batch = decode_reports(bytes.fromhex(rnd["reports"][2:]))
        res = aggregate(config, state, recover_reporters(DOMAIN, batch), int(rnd["now_ms"]))
        assert res.outcome.name == rnd["outcome"], rnd["name"]
        assert _state(res.state) == rnd["state"], rnd["name"]
        state = res.state


def test_golden_sequence_tells_the_intended_story(stored):
    """Human-readable expectations, so a regenerated file cannot silently change the rules."""
    rounds = {r["name"]: r for r in stored["aggregation"]["rounds"]}
    outcomes = [r["outcome"] for r in stored["aggregation"]["rounds"]]
    assert outcomes == ["ACCEPTED", "ACCEPTED", "ACCEPTED", "NO_UPDATE", "NO_UPDATE",
                        "UNCONFIRMED", "ACCEPTED", "UNCONFIRMED", "CONFIRMED", "ACCEPTED"]
    assert rounds["first_index"]["median"] == "65000000000"
    assert rounds["even_count_lower_middle"]["median"] == "65100000000"
    assert sorted(d[1] for d in rounds["stale_and_stranger_dropped"]["dropped"]) == \
        ["STALE", "UNKNOWN_REPORTER"]
    assert rounds["stale_and_stranger_dropped"]["median"] == "65300000000"
    assert [d[1] for d in rounds["quorum_not_met"]["dropped"]] == ["FUTURE"]
    assert {d[1] for d in rounds["replayed_reports_already_used"]["dropped"]} == {"ALREADY_USED"}
    crash = rounds["crash_unconfirmed"]
    assert crash["liquidations_paused"] and crash["state"]["index_price"] == "65300000000"
    assert crash["state"]["pending_count"] == "1"
    assert rounds["crash_reverts_resets"]["state"]["pending_count"] == "0"
    assert rounds["crash_again_unconfirmed"]["state"]["pending_count"] == "1"
    done = rounds["crash_confirmed"]
    assert done["median"] == "44100000000" and not done["liquidations_paused"]
    assert done["state"]["index_price"] == "44100000000"
