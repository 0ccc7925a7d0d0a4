"""``explain(state, account)``: why an account needs the margin it needs.

Same integer code as the engine (``margin.health`` and ``requirements``): the report's
totals are exactly what order checks and liquidations use. Per-position contributions:
standard mode gives each position's own requirement; portfolio mode gives each position's
loss in the binding scenario (their sum is the scenario loss), plus the add-ons.

Liquidation price (perpetuals, an estimate): the mark of that perpetual at which equity
would equal the maintenance requirement, all other marks unchanged. In standard mode the
requirement moves with the mark and is solved for exactly (then rounded to a tick toward
the current mark); in portfolio mode the requirement is held at its current value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .instruments import InstrumentKind
from .margin import health
from .requirements import has_risk_array, portfolio_requirements, standard_requirements
from .units import PPM


@dataclass
class PositionReport:
    instrument: int
    symbol: str
    size: int  # lots
    mark: int  # ticks
    value: int  # usd6, size * mark * tick_value
    unrealised_pnl: int  # usd6, quote + value
    initial: int  # usd6 contribution
    maintenance: int  # usd6 contribution
    scenario_loss: int | None  # portfolio mode: loss in the binding scenario
    liquidation_price: int | None  # ticks (perpetuals), None if none exists


@dataclass
class MarginReport:
    account: int
    mode: str
    collateral: int
    equity: int
    initial: int
    maintenance: int
    free_collateral: int  # max(0, min(collateral, equity - initial))
    margin_ratio_ppm: int | None  # maintenance / equity in ppm (None if equity <= 0)
    binding_scenario: int | None
    scenario_losses: list[int] | None
    short_option_minimum: int
    contingency: int
    positions: list[PositionReport] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _liquidation_price(size: int, mark: int, tv: int, equity: int, mm_other: int, mm_ppm: int | None,
                       mm_total: int) -> int | None:
    if size == 0 or tv == 0:
        return None
    if mm_ppm is None:  # portfolio: requirement held fixed
        num = (equity - mm_total) * 1
        p = mark - num // (size * tv) if size > 0 else mark + num // (-size * tv)
    elif size > 0:
        den = size * tv * (PPM - mm_ppm)
        p = -((-(mm_other - equity + size * mark * tv) * PPM) // den)
    else:
        den = -size * tv * (PPM + mm_ppm)
        p = ((equity - size * mark * tv - mm_other) * PPM) // den
    return p if p > 0 else None


def explain(st, account_id: int) -> MarginReport:
    acct = st.accounts[account_id]
    equity, im, mm = health(st, acct)
    portfolio = acct.margin_mode == 1
    reports: list[PositionReport] = []
    result = None
    if portfolio:
        entries = []
        for inst in sorted(acct.positions):
            m = st.markets[inst]
            entries.append((m.spec, acct.positions[inst].size, m.mark_price, m.risk_array, st.index_of(m)))
        result = portfolio_requirements(entries)
    for inst in sorted(acct.positions):
        m = st.markets[inst]
        spec = m.spec
        pos = acct.positions[inst]
        value = pos.size * m.mark_price * spec.tick_value
        s_im, s_mm = standard_requirements(spec, pos.size, m.mark_price, st.index_of(m))
        loss = None
        if portfolio and has_risk_array(m.risk_array) and result.binding >= 0:
            loss = -pos.size * m.risk_array[result.binding]
        liq = None
        if spec.kind == InstrumentKind.PERPETUAL:
            liq = _liquidation_price(pos.size, m.mark_price, spec.tick_value, equity, mm - s_mm,
                                     None if portfolio else spec.mm_ppm, mm)
        reports.append(PositionReport(inst, spec.symbol, pos.size, m.mark_price, value, pos.quote + value,
                                      s_im if not portfolio or not has_risk_array(m.risk_array) else 0,
                                      s_mm if not portfolio or not has_risk_array(m.risk_array) else 0, loss, liq))
    return MarginReport(
        account=account_id, mode="portfolio" if portfolio else "standard", collateral=acct.collateral,
        equity=equity, initial=im, maintenance=mm, free_collateral=max(0, min(acct.collateral, equity - im)),
        margin_ratio_ppm=(mm * PPM // equity) if equity > 0 else None,
        binding_scenario=result.binding if result is not None and result.binding >= 0 else None,
        scenario_losses=list(result.losses) if result is not None else None,
        short_option_minimum=result.short_option_min if result is not None else 0,
        contingency=result.contingency if result is not None else 0, positions=reports)
