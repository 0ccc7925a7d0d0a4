"""A genesis must not configure one underlying symbol (or id) twice: markets find their
underlying by symbol, and the L1 verifier matches the symbol in a proven underlying leaf."""

import pytest

from clearline.core.errors import InvariantBroken
from clearline.core.state import Genesis, State
from clearline.core.underlying import UnderlyingConfig
from clearline.oracle.aggregate import OracleConfig

ORACLE = OracleConfig((b"\x01" * 20,), quorum=1, staleness_ms=5_000, max_deviation_ppm=100_000, confirmations=1)


@pytest.mark.parametrize("second", [UnderlyingConfig(1, "BTC", ORACLE), UnderlyingConfig(0, "ETH", ORACLE)])
def test_duplicate_underlying_is_refused(second):
    g = Genesis(1, b"\x02" * 20, b"\x03" * 20, underlyings=(UnderlyingConfig(0, "BTC", ORACLE), second))
    with pytest.raises(InvariantBroken, match="configured twice"):
        State(g)


def test_distinct_underlyings_are_fine():
    g = Genesis(1, b"\x02" * 20, b"\x03" * 20,
                underlyings=(UnderlyingConfig(0, "BTC", ORACLE), UnderlyingConfig(1, "ETH", ORACLE)))
    st = State(g)
    assert sorted(st.underlying_by_symbol) == ["BTC", "ETH"]
