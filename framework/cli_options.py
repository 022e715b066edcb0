"""``fw options``: option chains with model greeks, single-option pricing, strategy analytics.

* ``fw options chain SYMBOL --data-dir DIR`` prints one expiry of a chain snapshot near the money
  with the model IV of each mid quote and its BSM greeks.
* ``fw options price`` prices one option (BSM, or the CRR tree with ``--american``) and prints
  its greeks, or, given ``--premium``, its implied vol.
* ``fw options strategy NAME`` builds a multi-leg strategy from a chain (``--symbol`` with
  ``--data-dir``) or from a model market (``--spot`` with ``--vol``) and prints the legs,
  credit/debit, max profit/loss, breakevens, probability of profit, greeks and buying power, and
  writes the payoff plot.

Chains are read only from the folder given with ``--data-dir``: fw never reads a shared data
folder implicitly. The composition root registers the group with
``main.add_command(make_options_group())``. Every fw error becomes a one-line message and exit
status 1 (``click.ClickException``), never a traceback.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import click

from framework.errors import ConfigError, DataError, FwError

DEFAULT_RATE = 0.04
DEFAULT_DIV = 0.0
DEFAULT_DTE = 30
_RATE_HELP = "Continuous risk-free rate, decimal (default 0.04 = 4%)."
_DIV_HELP = "Continuous dividend yield, decimal (default 0)."


def make_options_group() -> click.Group:
    """The ``fw options`` group with its ``chain``, ``price`` and ``strategy`` commands."""

    @click.group("options")
    def options() -> None:
        """Option chains, pricing and multi-leg strategy analytics."""

    options.add_command(_chain_command())
    options.add_command(_price_command())
    options.add_command(_strategy_command())
    return options


def _fail_cleanly(run, *args) -> None:
    try:
        run(*args)
    except FwError as exc:
        raise click.ClickException(str(exc)) from exc


def _require_data_dir(data_dir: Path | None, what: str) -> Path:
    if data_dir is None:
        raise click.UsageError(
            f"{what} needs --data-dir: the folder of option-chain files (*.csv.gz in the "
            "shared options format), e.g. --data-dir ../shared/data/options. fw does not read "
            "shared data unless you point it there."
        )
    if not data_dir.is_dir():
        raise click.UsageError(f"--data-dir {data_dir} is not a folder; give the folder of chain files.")
    return data_dir


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD.", param_hint=option) from exc


def _load_snapshot(data_dir: Path, symbol: str, day: date | None, rate: float, div: float):
    """The chain of ``symbol`` on ``day`` (default: the latest snapshot), with greeks."""
    from framework.options.chains import load_chains

    chains = load_chains(data_dir, underlying=symbol)
    if day is None:
        key = max(chains)
    else:
        key = (symbol.upper(), day)
        if key not in chains:
            dates = ", ".join(d.isoformat() for _, d in sorted(chains))
            raise DataError(
                f"no {symbol.upper()} snapshot on {day.isoformat()} in {data_dir}; snapshots: "
                f"{dates}. Pick one with --date."
            )
    return chains[key].with_greeks(rate, div)


def _pick_expiry(market, expiry: str | None, dte: int | None, default_dte: int | None,
                 option: str = "--expiry", dte_option: str = "--dte") -> date:
    from framework.options.builders import expiry_for_dte

    if expiry is not None and dte is not None:
        raise click.UsageError(f"give {option} or {dte_option}, not both.")
    if expiry is not None:
        return _parse_date(expiry, option)
    if dte is None and default_dte is None:
        raise click.UsageError(f"give {option} YYYY-MM-DD or {dte_option} N.")
    return expiry_for_dte(market, dte if dte is not None else default_dte)


def _fmt(value: float, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "unlimited"
    return f"{value:,.{digits}f}"


def _money(value: float) -> str:
    if math.isinf(value):
        return "unlimited"
    return f"${value:,.2f}"


# ---------------------------------------------------------------------------------------------
# fw options chain


def _chain_command() -> click.Command:
    @click.command("chain")
    @click.argument("symbol")
    @click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                  help="Folder of option-chain files (required; e.g. ../shared/data/options).")
    @click.option("--date", "day", default=None, help="Snapshot date YYYY-MM-DD (default: the latest).")
    @click.option("--expiry", default=None, help="Expiry YYYY-MM-DD (must be listed).")
    @click.option("--dte", type=int, default=None,
                  help=f"Pick the listed expiry nearest this many days (default {DEFAULT_DTE}).")
    @click.option("--right", type=click.Choice(["C", "P", "both"], case_sensitive=False),
                  default="both", show_default=True, help="Calls, puts or both.")
    @click.option("--around", type=click.IntRange(min=1), default=8, show_default=True,
                  help="Strikes shown on each side of the spot.")
    @click.option("--rate", type=float, default=DEFAULT_RATE, help=_RATE_HELP)
    @click.option("--div", type=float, default=DEFAULT_DIV, help=_DIV_HELP)
    def chain(symbol, data_dir, day, expiry, dte, right, around, rate, div) -> None:
        """Print one expiry of SYMBOL's chain near the money with model IV and greeks.

        Model IV is the European BSM implied vol of the mid quote; greeks use it (theta per
        calendar day, vega per vol point, per share).

        \b
        Examples:
          fw options chain SPY --data-dir ../shared/data/options --dte 35
          fw options chain SPY --data-dir ../shared/data/options --date 2026-05-01 --right P
        """
        _fail_cleanly(_run_chain, symbol, data_dir, day, expiry, dte, right, around, rate, div)

    return chain


def _run_chain(symbol, data_dir, day, expiry, dte, right, around, rate, div) -> None:
    from rich.console import Console
    from rich.table import Table

    folder = _require_data_dir(data_dir, "fw options chain")
    snap = _load_snapshot(folder, symbol, _parse_date(day, "--date"), rate, div)
    chosen = _pick_expiry(snap, expiry, dte, DEFAULT_DTE)
    if chosen not in snap.expiries():
        listed = ", ".join(e.isoformat() for e in snap.expiries()[:12])
        raise DataError(f"expiry {chosen.isoformat()} is not listed; listed: {listed}.")
    frame = snap.frame.assign(mid=snap.mid())
    rows = frame[frame["expiry"] == chosen]
    if right.upper() != "BOTH":
        rows = rows[rows["right"] == right.upper()]
    strikes = sorted(set(rows["strike"]))
    below = [k for k in strikes if k <= snap.spot][-around:]
    above = [k for k in strikes if k > snap.spot][:around]
    rows = rows[rows["strike"].isin(below + above)].sort_values(["strike", "right"])
    title = (f"{snap.underlying} {snap.snapshot_date.isoformat()} spot {snap.spot:,.2f}  expiry "
             f"{chosen.isoformat()} ({(chosen - snap.snapshot_date).days} DTE)  rate {rate:.2%} "
             f"div {div:.2%}")
    table = Table(title=title)
    for name in ("strike", "right", "bid", "ask", "mid", "model IV", "source IV", "delta",
                 "gamma", "theta/day", "vega/pt", "OI"):
        table.add_column(name, justify="right")
    for _, r in rows.iterrows():
        table.add_row(
            f"{r['strike']:g}", r["right"], _fmt(r["bid"]), _fmt(r["ask"]), _fmt(r["mid"]),
            _pct(r["model_iv"]), _pct(r["iv"]), _fmt(r["delta"], 3), _fmt(r["gamma"], 4),
            _fmt(r["theta"], 3), _fmt(r["vega"], 3),
            "-" if math.isnan(r["open_interest"]) else f"{r['open_interest']:,.0f}",
        )
    Console(width=140).print(table)


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2%}"


# ---------------------------------------------------------------------------------------------
# fw options price


def _price_command() -> click.Command:
    @click.command("price")
    @click.option("--spot", type=float, required=True, help="Underlying price.")
    @click.option("--strike", type=float, required=True, help="Strike.")
    @click.option("--dte", type=float, required=True, help="Calendar days to expiry (ACT/365).")
    @click.option("--vol", type=float, default=None, help="Vol (decimal) to price at.")
    @click.option("--premium", type=float, default=None, help="Option price to imply a vol from.")
    @click.option("--rate", type=float, default=DEFAULT_RATE, help=_RATE_HELP)
    @click.option("--div", type=float, default=DEFAULT_DIV, help=_DIV_HELP)
    @click.option("--right", type=click.Choice(["C", "P"], case_sensitive=False), required=True,
                  help="C (call) or P (put).")
    @click.option("--american", is_flag=True, help="Early exercise: CRR binomial tree.")
    @click.option("--steps", type=click.IntRange(min=10), default=200, show_default=True,
                  help="Tree steps with --american.")
    def price(spot, strike, dte, vol, premium, rate, div, right, american, steps) -> None:
        """Price one option and print its greeks, or imply the vol of a --premium.

        European: Black-Scholes-Merton with a dividend yield. --american: Cox-Ross-Rubinstein
        tree; its greeks are finite differences on the tree (spot +-1%, vol and rate +-1 point,
        one day of theta).

        \b
        Examples:
          fw options price --spot 100 --strike 105 --dte 30 --vol 0.2 --right C
          fw options price --spot 100 --strike 95 --dte 30 --premium 1.1 --right P --american
        """
        _fail_cleanly(_run_price, spot, strike, dte, vol, premium, rate, div, right.upper(),
                      american, steps)

    return price


def _run_price(spot, strike, dte, vol, premium, rate, div, right, american, steps) -> None:
    from framework.options.iv import implied_vol

    if (vol is None) == (premium is None):
        raise click.UsageError("give exactly one of --vol (to price) or --premium (to imply a vol).")
    if dte < 0:
        raise click.BadParameter(f"{dte!r} days is negative; expiry must not be past.", param_hint="--dte")
    t = dte / 365.0
    call = right == "C"
    style = "American (CRR tree)" if american else "European (BSM)"
    lines = [f"{style} {'call' if call else 'put'}  spot {spot:g}  strike {strike:g}  "
             f"{dte:g} DTE (t={t:.6f})  rate {rate:.2%}  div {div:.2%}"]
    if premium is not None:
        res = implied_vol(premium, spot, strike, t, rate, div, call, american, steps=steps)
        reason = str(res.reason)
        if reason != "ok":
            raise DataError(
                f"premium {premium:g} has no implied vol ({reason}); check it against the "
                "option's bounds (intrinsic value and the spot/strike upper bound)."
            )
        vol = float(res.vol)
        lines.append(f"implied vol  {vol:.4%}")
    if vol is None or not (math.isfinite(vol) and vol >= 0):
        raise click.BadParameter(f"{vol!r} must be a vol >= 0 (decimal).", param_hint="--vol")
    greeks = _american_greeks(spot, strike, t, rate, div, vol, call, steps) if american else \
        _european_greeks(spot, strike, t, rate, div, vol, call)
    for name in ("price", "delta", "gamma", "theta", "vega", "rho"):
        unit = {"theta": " per day", "vega": " per vol point", "rho": " per rate point"}.get(name, "")
        lines.append(f"{name:<6} {greeks[name]:>14.6f}{unit}")
    click.echo("\n".join(lines))


def _european_greeks(spot, strike, t, rate, div, vol, call) -> dict[str, float]:
    from framework.options.bsm import bsm_greeks

    g = bsm_greeks(spot, strike, t, rate, div, vol, call)
    return {name: float(getattr(g, name)) for name in ("price", "delta", "gamma", "theta", "vega", "rho")}


def _american_greeks(spot, strike, t, rate, div, vol, call, steps) -> dict[str, float]:
    """Tree price and finite-difference greeks in the units of framework.options.bsm."""
    from framework.options.bsm import american_price

    def p(s=spot, tt=t, r=rate, v=vol) -> float:
        return float(american_price(s, strike, tt, r, div, v, call, steps=steps))

    h = 0.01 * spot
    base, up, down = p(), p(s=spot + h), p(s=spot - h)
    day = 1.0 / 365.0
    theta = (p(tt=t - day) - base) if t > day else -base + max((spot - strike) if call else (strike - spot), 0.0)
    return {
        "price": base,
        "delta": (up - down) / (2 * h),
        "gamma": (up - 2 * base + down) / (h * h),
        "theta": theta,
        "vega": (p(v=vol + 0.01) - p(v=max(vol - 0.01, 0.0))) / (2 if vol >= 0.01 else 1),
        "rho": (p(r=rate + 0.01) - p(r=rate - 0.01)) / 2,
    }


# ---------------------------------------------------------------------------------------------
# fw options strategy


def _strategy_command() -> click.Command:
    from framework.options.builders import STRATEGIES

    @click.command("strategy")
    @click.argument("name", metavar="NAME",
                    type=click.Choice(list(STRATEGIES), case_sensitive=False))
    @click.option("--symbol", default=None, help="Underlying of the chain (with --data-dir).")
    @click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                  help="Folder of option-chain files: quotes, deltas and mids come from it.")
    @click.option("--date", "day", default=None,
                  help="Chain snapshot date (default latest); with --spot, the valuation date (default today).")
    @click.option("--spot", type=float, default=None, help="Model market: underlying price (with --vol).")
    @click.option("--vol", type=float, default=None, help="Model market: flat vol, decimal.")
    @click.option("--strike-step", type=float, default=1.0, show_default=True,
                  help="Model market: strike grid for strikes chosen by delta or ATM.")
    @click.option("--expiry", default=None, help="(Front) expiry YYYY-MM-DD.")
    @click.option("--dte", type=int, default=None, help=f"(Front) expiry in days (default {DEFAULT_DTE}; nearest listed with a chain).")
    @click.option("--back-expiry", default=None, help="Back expiry of calendars/diagonals.")
    @click.option("--back-dte", type=int, default=None, help="Back expiry in days.")
    @click.option("--short-delta", "delta", type=float, default=None,
                  help="Anchor |delta|: short legs (puts of condors/strangles/collars).")
    @click.option("--call-delta", type=float, default=None, help="Call-side |delta| (condor, collar).")
    @click.option("--strike", type=float, default=None, help="Anchor strike instead of a delta.")
    @click.option("--call-strike", type=float, default=None, help="Call strike (condor, strangle, collar).")
    @click.option("--width", type=float, default=None, help="Wing width in price units.")
    @click.option("--right", type=click.Choice(["C", "P"], case_sensitive=False), default=None,
                  help="Right of butterflies, calendars and diagonals (default C).")
    @click.option("--quantity", type=int, default=1, show_default=True,
                  help="Units (negative sells straddles and strangles).")
    @click.option("--rate", type=float, default=DEFAULT_RATE, help=_RATE_HELP)
    @click.option("--div", type=float, default=DEFAULT_DIV, help=_DIV_HELP)
    @click.option("--out", type=click.Path(path_type=Path), default=None,
                  help="Payoff PNG (default FW_HOME/options/<time>-<name>.png).")
    def strategy(**kwargs) -> None:
        """Build strategy NAME and print its legs, P&L profile, POP, greeks and buying power.

        NAME: bull_put, bear_call, bull_call, bear_put, iron_condor, iron_butterfly, butterfly,
        calendar, diagonal, straddle, strangle, covered_call, protective_put or collar.

        With --symbol and --data-dir the strikes come from the chain (by delta, or listed
        strikes) and premiums are mids; POP is shown both under a lognormal at the ATM IV and
        under the chain's implied distribution. With --spot and --vol everything is priced by
        BSM at that flat vol.

        \b
        Examples:
          fw options strategy bull_put --symbol SPY --data-dir ../shared/data/options \\
              --dte 35 --short-delta 0.30 --width 5
          fw options strategy iron_condor --spot 100 --vol 0.2 --dte 45 --short-delta 0.2 --width 5
          fw options strategy calendar --spot 100 --vol 0.2 --dte 30 --back-dte 60
        """
        _fail_cleanly(_run_strategy, kwargs)

    return strategy


def _strategy_market(a: dict):
    """A chain (with greeks) or a ModelMarketSpec from the command's options."""
    from framework.options.builders import ModelMarketSpec

    day = _parse_date(a["day"], "--date")
    if a["data_dir"] is not None:
        if a["spot"] is not None or a["vol"] is not None:
            raise click.UsageError(
                "--spot/--vol describe a model market; with --data-dir prices come from the "
                "chain. Drop one of them."
            )
        if not a["symbol"]:
            raise click.UsageError("--data-dir needs --symbol (the chain's underlying).")
        return _load_snapshot(_require_data_dir(a["data_dir"], "strategy"), a["symbol"], day,
                              a["rate"], a["div"])
    if a["spot"] is None or a["vol"] is None:
        if a["symbol"] and a["spot"] is None:
            _require_data_dir(None, f"--symbol {a['symbol']}")
        raise click.UsageError(
            "give a market: --symbol with --data-dir (quotes), or --spot and --vol (model)."
        )
    return ModelMarketSpec(spot=a["spot"], vol=a["vol"], as_of=day or datetime.now(UTC).date(),
                           rate=a["rate"], div=a["div"], underlying=(a["symbol"] or "").upper(),
                           strike_step=a["strike_step"])


def _run_strategy(a: dict) -> None:
    from framework.options.builders import TWO_EXPIRY, StrategySpec, build

    if a["out"] is not None and a["out"].suffix.lower() != ".png":
        raise click.BadParameter(f"{a['out']} must end in .png.", param_hint="--out")
    market = _strategy_market(a)
    name = a["name"].lower()
    front = _pick_expiry(market, a["expiry"], a["dte"], DEFAULT_DTE)
    back = None
    if name in TWO_EXPIRY:
        back = _pick_expiry(market, a["back_expiry"], a["back_dte"], None, "--back-expiry", "--back-dte")
    elif a["back_expiry"] is not None or a["back_dte"] is not None:
        raise click.UsageError(f"{name} has one expiry; --back-expiry/--back-dte are for calendars and diagonals.")
    spec = StrategySpec(
        name=name, expiry=front, back_expiry=back, delta=a["delta"], call_delta=a["call_delta"],
        strike=a["strike"], call_strike=a["call_strike"], width=a["width"],
        right=(a["right"] or "C").upper(), quantity=a["quantity"],
    )
    position = build(spec, market)
    report = _analyse(position, market, a["rate"], a["div"])
    out = a["out"] if a["out"] is not None else _default_plot(name)
    _print_report(position, report)
    written = _plot(position, market, report, out, a["rate"], a["div"], name)
    click.echo(f"wrote {written}")


def _analyse(position, market, rate: float, div: float) -> dict:
    """Every number the strategy report prints."""
    from framework.options import payoff
    from framework.options.builders import leg_vols, market_as_of, market_spot
    from framework.options.chains import OptionChain

    vols = leg_vols(position, market)
    spot, as_of = market_spot(market), market_as_of(market)
    stats = payoff.payoff_stats(position, vols, rate, div)
    report = {"vols": vols, "spot": spot, "as_of": as_of, "stats": stats}
    if isinstance(market, OptionChain):
        try:
            atm = market.atm_iv(position.front_expiry, rate, div, vol_source="mid")
        except DataError as exc:
            atm, report["pop_lognormal_note"] = math.nan, str(exc)
        report["pop_vol"] = atm
        try:
            report["pop_implied"] = payoff.pop_implied(position, market, rate, div, leg_vols=vols)
        except DataError as exc:
            report["pop_implied"], report["pop_implied_note"] = math.nan, str(exc)
    else:
        report["pop_vol"] = market.vol
    if math.isfinite(report["pop_vol"]):
        report["pop_lognormal"] = payoff.pop_lognormal(position, spot, report["pop_vol"], as_of,
                                                       rate, div, leg_vols=vols)
    report["greeks"] = payoff.position_greeks(position, spot, as_of, vols, rate, div)
    try:
        report["buying_power"] = payoff.buying_power(position)
    except ConfigError as exc:
        report["buying_power_note"] = str(exc)
    return report


def _print_report(position, report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    legs = Table(title=f"{position.underlying or 'model'} legs (valued {report['as_of'].isoformat()}, "
                       f"spot {report['spot']:,.2f})")
    for col in ("qty", "right", "strike", "expiry", "premium", "IV", "cash"):
        legs.add_column(col, justify="right")
    for leg, vol in zip(position.legs, report["vols"], strict=True):
        legs.add_row(f"{leg.quantity:+d}", leg.right, f"{leg.strike:g}", leg.expiry.isoformat(),
                     f"{leg.premium:.2f}", _pct(vol), _money(leg.cash_flow))
    if position.stock_shares:
        legs.add_row(f"{position.stock_shares:+d}", "stock", "", "", f"{position.stock_price:.2f}", "",
                     _money(-position.stock_cost))
    console.print(legs)
    stats = report["stats"]
    net = position.net_premium
    lines = [
        f"{'credit' if net >= 0 else 'debit'}: {_money(abs(net))}",
        f"max profit: {_money(stats.max_profit)}   max loss: {_money(stats.max_loss)}"
        + ("" if stats.exact else f"   (at {stats.horizon.isoformat()}, later legs by BSM)"),
        "breakevens: " + (", ".join(f"{b:,.2f}" for b in stats.breakevens) or "none"),
    ]
    if "pop_lognormal" in report:
        lines.append(f"POP lognormal (vol {report['pop_vol']:.2%}): {report['pop_lognormal']:.1%}")
    else:
        lines.append(f"POP lognormal: n/a ({report.get('pop_lognormal_note', 'no vol')})")
    if "pop_implied" in report:
        value = report["pop_implied"]
        lines.append("POP chain-implied: " + (f"{value:.1%}" if math.isfinite(value)
                                              else f"n/a ({report.get('pop_implied_note')})"))
    g = report["greeks"]
    lines.append(f"greeks: delta {g.delta:,.2f} sh  gamma {g.gamma:,.3f}  theta {_money(g.theta)}/day  "
                 f"vega {_money(g.vega)}/pt  rho {_money(g.rho)}/pt")
    if "buying_power" in report:
        bp = report["buying_power"]
        lines.append(f"buying power: {_money(bp.amount)} ({bp.rule})")
    else:
        lines.append(f"buying power: n/a - {report['buying_power_note']}")
    console.print("\n".join(lines), highlight=False)


def _default_plot(name: str) -> Path:
    from framework.paths import home_subdir

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return home_subdir("options") / f"{stamp}-{name}.png"


def _plot(position, market, report: dict, out: Path, rate: float, div: float, name: str) -> Path:
    from framework.options.payoff import plot_payoff

    title = f"{position.underlying or 'model'} {name} ({report['as_of'].isoformat()})"
    return plot_payoff(position, out, report["spot"], report["as_of"], report["vols"], rate, div,
                       title=title)
