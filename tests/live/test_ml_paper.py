"""A learned strategy in paper trading, and the ``fw ml`` commands, end to end through click.

One module-scoped "world" trains two models on generated bars (a calm random walk) and paper-trades
the production one over a much more volatile continuation, with the other in shadow. Each test
gets a private copy of that FW_HOME (models and state database), so tests that promote, resume or
add runs do not disturb each other. Everything runs on CSV files in a temporary folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from framework.cli import main
from framework.clirun import load_run_bars
from framework.ml.drift import DriftSpec, FeatureBaseline
from framework.ml.registry import ModelRegistry
from framework.strategy import compute_target, make_params
from framework.types import Bars
from live.ml_watch import PROBABILITY_FEATURE, ModelWatch, WatchSpec
from live.state import SCHEMA_VERSION, Store
from strategies.ml_classifier import MlClassifier

SYMBOLS = ("AAA", "BBB")
N_CALM, N_WILD = 560, 60  # training ends with the calm walk; the paper run replays the wild one
FAST = ("--set", "search=false")  # logistic (the default model) without the hyper-parameter search
RUN = "live1"


# -- data ------------------------------------------------------------------------------------------
def _walk(n_calm: int, n_wild: int, seed: int) -> Bars:
    """Daily random walks whose volatility jumps from 0.5% to 5% after ``n_calm`` bars."""
    rng = np.random.default_rng(seed)
    n, m = n_calm + n_wild, len(SYMBOLS)
    vol = np.where(np.arange(n) < n_calm, 0.005, 0.05)[:, None]
    index = pd.bdate_range("2015-01-02", periods=n, tz="UTC") + pd.Timedelta(hours=21)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 1.0, (n, m)) * vol, axis=0))
    open_ = close * np.exp(rng.normal(0.0, 1.0, (n, m)) * vol / 3)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 1.0, (n, m))) * vol / 2)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 1.0, (n, m))) * vol / 2)
    volume = rng.integers(100_000, 5_000_000, (n, m)).astype(np.float64)
    return Bars(index=pd.DatetimeIndex(index), symbols=SYMBOLS, open=open_, high=high, low=low,
                close=close, volume=volume)


def _write_csv(bars: Bars, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for j, symbol in enumerate(bars.symbols):
        pd.DataFrame({
            "date": bars.index.tz_convert("America/New_York").date,
            "open": bars.open[:, j], "high": bars.high[:, j], "low": bars.low[:, j],
            "close": bars.close[:, j], "volume": bars.volume[:, j],
        }).to_csv(folder / f"{symbol}.csv", index=False)
    return folder


def _invoke(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    else:
        assert result.exit_code != 0, result.output
        # a refusal is a message, not a crash
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
    return result


@dataclass(frozen=True)
class World:
    home: Path
    data: Path
    bars: Bars  # every bar of the data folder, as the loader labels them
    train_end: str  # last training day (calm)
    start: str  # first replayed day of the paper run (wild)
    end: str  # last replayed day
    train_out: str
    challenger_out: str
    status_out: str

    def paper(self, *args: str, **kw):
        return _invoke("paper", "ml_classifier", "--symbols", ",".join(SYMBOLS), "--data-dir",
                       self.data, "--risk-off", *args, **kw)


def _day(bars: Bars, i: int) -> str:
    return str(bars.index[i].tz_convert("America/New_York").date())


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("ml_paper")
    home = root / "home"
    data = _write_csv(_walk(N_CALM, N_WILD, seed=7), root / "data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(home))
        bars = load_run_bars(list(SYMBOLS), data, None, None)
        train_end, start, end = _day(bars, N_CALM - 1), _day(bars, N_CALM), _day(bars, N_CALM + 45)
        common = ("--symbols", ",".join(SYMBOLS), "--data-dir", data, "--end", train_end, *FAST)
        train_out = _invoke("ml", "train", *common).output
        # a different training window, so the shadow model's predictions differ from the live one's
        challenger_out = _invoke("ml", "train", *common, "--start", _day(bars, 60),
                                 "--challenger").output
        status_out = _invoke("ml", "status").output
        world = World(home, data, bars, train_end, start, end, train_out, challenger_out, status_out)
        # threshold is a target-stage parameter: a run may trade the model with another one
        world.paper("--start", start, "--end", end, "--run-id", RUN, "--set", "threshold=0.6")
    return world


@pytest.fixture
def home(world, tmp_path, monkeypatch) -> Path:
    """A private copy of the world's FW_HOME (models and state database) for one test."""
    mine = tmp_path / "home"
    shutil.copytree(world.home, mine)
    monkeypatch.setenv("FW_HOME", str(mine))
    return mine


def _frame_after(frame: pd.DataFrame, column: str, day: str) -> pd.DataFrame:
    return frame[frame[column] >= day]


# -- fw ml train / status / promote ---------------------------------------------------------------
def test_train_then_status_shows_versions_roles_and_validation_metrics(world, home):
    registry = ModelRegistry()
    first, second = registry.versions("ml_classifier")
    assert (first.version, second.version) == ("v0001", "v0002")
    assert "ml_classifier v0001 (production)" in world.train_out
    assert "ml_classifier v0002 (challenger)" in world.challenger_out
    assert second.train_start > first.train_start  # trained on the later --start
    for card in (first, second):
        validation = card.metrics["validation"]["overall"]
        assert 0.0 <= validation["accuracy"] <= 1.0
        assert f"accuracy {validation['accuracy']:.3f}, AUC {validation['auc']:.3f}" in world.status_out
        assert card.train_end.startswith(world.train_end) and card.params["search"] is False
    assert "v0001 (production)" in world.status_out and "v0002 (challenger)" in world.status_out
    # after the paper run, status also counts each version's stored predictions
    status = _invoke("ml", "status").output
    assert f"paper: {RUN}: {2 * 46} predictions" in status

    out = _invoke("ml", "promote", "v0002").output
    assert "v0002 is now the production model" in out
    assert registry.role("ml_classifier", "production") == "v0002"
    # the challenger promoted to production no longer shadows itself
    assert "no longer the challenger" in out and registry.role("ml_classifier", "challenger") is None
    assert "ml_classifier v0001\n" in _invoke("ml", "status").output  # no role left on v0001
    refused = _invoke("ml", "promote", "v0009", ok=False).output
    assert "v0009" in refused and "v0001" in refused  # names the versions that exist


def test_train_refuses_a_strategy_without_fit_and_too_few_bars(world):
    out = _invoke("ml", "train", "sma_cross", "--symbols", "AAA", "--data-dir", world.data,
                  ok=False).output
    assert "sma_cross does not learn" in out and "no fit" in out
    short = _day(world.bars, 400)  # fewer than the 378 warm-up bars plus 100 to learn from
    out = _invoke("ml", "train", "--symbols", "AAA", "--data-dir", world.data, "--end", short,
                  *FAST, ok=False).output
    assert "401 bars cannot train ml_classifier" in out and "378 warm-up bars" in out
    assert not (Path(ModelRegistry().root) / "ml_classifier").exists()  # nothing saved


# -- fw paper with a learned strategy -------------------------------------------------------------
def test_paper_without_a_model_says_how_to_train(world):
    result = world.paper("--start", world.start, "--end", world.end, "--run-id", "none", ok=False)
    assert "fw ml train ml_classifier" in result.output
    assert Store().run("none") is None  # refused before the run was created


def test_paper_records_versions_predictions_and_the_probability_feature(world, home):
    store = Store()
    run = store.run(RUN)
    config = run["config"]
    assert (config["model_version"], config["challenger"]) == ("v0001", "v0002")
    card = ModelRegistry().card("ml_classifier", "v0001")
    assert config["params"] == {**card.params, "threshold": 0.6}

    predictions = store.predictions(RUN)
    traded = sorted({t for t in store.equity(RUN)["time"]})
    assert len(traded) == 46 and traded[0] >= world.start
    for role, version in (("live", "v0001"), ("shadow", "v0002")):
        mine = predictions[predictions["role"] == role]
        assert set(mine["model_version"]) == {version}
        # one row per traded bar and symbol, none for the warm-up history
        assert len(mine) == len(traded) * len(SYMBOLS)
        assert sorted(set(mine["bar_time"])) == traded
        assert mine["probability"].between(0.0, 1.0).all()
    live = predictions[predictions["role"] == "live"].set_index(["bar_time", "symbol"])["probability"]
    shadow = predictions[predictions["role"] == "shadow"].set_index(["bar_time", "symbol"])["probability"]
    assert not np.allclose(live.to_numpy(), shadow.loc[live.index].to_numpy())

    decisions = _frame_after(store.decisions(RUN), "bar_time", world.start)
    for row in decisions.itertuples():
        features = json.loads(row.features)
        assert features[PROBABILITY_FEATURE] == pytest.approx(live[(row.bar_time, row.symbol)])
        assert "rsi" in features  # the ordinary features are still recorded


def test_trading_starts_at_the_first_replayed_bar_after_the_warm_up(world, home):
    store = Store()
    run = store.run(RUN)
    stored = store.load_bars(RUN, run["symbols"])
    first = int(stored.index.searchsorted(pd.Timestamp(world.start, tz="UTC")))
    # the strategy's whole warm-up was replayed as history before --start
    assert first == MlClassifier().warmup(MlClassifier.params_type()) == 378
    first_day = stored.index[first].isoformat()
    equity = store.equity(RUN)
    assert equity["time"].iloc[0] == first_day and len(equity) == stored.n_bars - first
    assert min(o["bar_time"] for o in store.orders(RUN)) >= first_day
    assert store.predictions(RUN)["bar_time"].min() == first_day
    decisions = store.decisions(RUN)
    history = decisions[decisions["bar_time"] < first_day]
    # history rows (the runner keeps one per warm-up bar) hold nothing, order nothing and
    # carry no features
    assert history["order_quantity"].isna().all() and set(history["features"]) <= {"{}"}
    assert (history["target"].fillna(0.0) == 0.0).all()
    opening = decisions[decisions["bar_time"] == first_day]
    assert len(opening) == len(SYMBOLS) and opening["target"].notna().all()
    assert all(PROBABILITY_FEATURE in json.loads(f) for f in opening["features"])
    early = decisions[decisions["bar_time"].isin(stored.index[first:first + 5].map(pd.Timestamp.isoformat))]
    assert (early["target"] > 0).any()  # the model takes positions from the first bars on


def test_stored_targets_equal_the_vectorized_backtest(world, home):
    store = Store()
    run = store.run(RUN)
    bars = store.load_bars(RUN, run["symbols"])
    strategy = MlClassifier()
    params = make_params(strategy.params_type, run["config"]["params"])
    model, _ = ModelRegistry().load("ml_classifier", run["config"]["model_version"])
    expected = compute_target(strategy, bars, params, model)
    decisions = _frame_after(store.decisions(RUN), "bar_time", world.start)
    stored = decisions.pivot(index="bar_time", columns="symbol", values="target")[list(SYMBOLS)]
    rows = [bars.index.get_loc(pd.Timestamp(t)) for t in stored.index]
    assert len(rows) == 46 and np.count_nonzero(stored.to_numpy()) > 10
    np.testing.assert_allclose(stored.to_numpy(dtype=np.float64), expected[rows], rtol=0, atol=1e-12)


def test_resume_keeps_the_versions_and_refuses_another_model(world, home):
    _invoke("ml", "promote", "v0002")  # the registry moves on; the run keeps what it traded
    _invoke("ml", "promote", "v0001", "--role", "challenger")
    later = _day(world.bars, N_CALM + 55)
    out = world.paper("--start", world.start, "--end", later, "--run-id", RUN).output
    assert "resumed" in out and "10 new" in out
    store = Store()
    config = store.run(RUN)["config"]
    assert (config["model_version"], config["challenger"]) == ("v0001", "v0002")
    assert config["params"]["threshold"] == 0.6
    predictions = store.predictions(RUN)
    assert len(predictions) == 56 * len(SYMBOLS) * 2
    live = predictions[predictions["role"] == "live"]
    assert set(live["model_version"]) == {"v0001"}

    refused = world.paper("--start", world.start, "--end", later, "--run-id", RUN, "--model",
                          "v0002", ok=False).output
    assert "uses --model v0001; asked for v0002" in refused and "new --run-id" in refused
    refused = world.paper("--start", world.start, "--end", later, "--run-id", RUN,
                          "--challenger", "v0001", ok=False).output
    assert "uses --challenger v0002" in refused


def test_paper_refuses_fit_parameters_schedules_and_models_of_rule_strategies(world, home, tmp_path):
    window = ("--start", world.start, "--end", world.end)
    out = world.paper(*window, "--run-id", "h5", "--set", "horizon=5", ok=False).output
    assert "--set horizon" in out and "trained with horizon=10" in out and "fw ml train" in out
    schedule = tmp_path / "schedule.json"
    schedule.write_text(json.dumps({"strategy": "ml_classifier", "entries": []}))
    out = world.paper(*window, "--run-id", "ws", "--schedule", schedule, ok=False).output
    assert "--schedule" in out and "omit" in out
    out = _invoke("paper", "sma_cross", "--symbols", "AAA", "--data-dir", world.data, *window,
                  "--run-id", "sma", "--model", "v0001", ok=False).output
    assert "--model/--challenger apply to learned strategies" in out
    store = Store()
    assert [store.run(r) for r in ("h5", "ws", "sma")] == [None, None, None]


# -- fw ml compare / drift ------------------------------------------------------------------------
def test_compare_prints_both_versions_with_hit_rates(world, home):
    out = _invoke("ml", "compare", "v0001", "v0002", "--run-id", RUN).output
    assert f"run {RUN} (ml_classifier): live v0001, shadow v0002" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith(("v0001", "v0002"))}
    assert rows["v0001"][1] == "live" and rows["v0002"][1] == "shadow"
    for row in rows.values():
        predictions, resolved, hit = int(row[2]), int(row[3]), row[4]
        assert predictions == 46 * len(SYMBOLS) and 0 < resolved <= predictions
        assert hit.endswith("%") and 0.0 <= float(hit[:-1]) <= 100.0

    out = _invoke("ml", "compare", "v0001", "v0007", "--run-id", RUN, ok=False).output
    assert "no predictions of 'v0007'" in out and "'v0001', 'v0002'" in out


def test_drift_alerts_when_the_live_bars_are_far_more_volatile(world, home):
    result = _invoke("ml", "drift", "--run-id", RUN, "--window", "30", ok=False)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "model v0001, last 30 bars" in lines[0] and lines[1] == "drift: alert"
    psi = {p[1]: float(p[2]) for p in (line.split() for line in lines) if p[:1] == ["PSI"]}
    assert {"vol", "atr_ratio", "rsi"} <= set(psi) and psi["vol"] >= 0.25
    assert any(line.startswith("ALERT: feature 'vol' PSI") for line in lines)
    # the run's own watch (252-bar window, mostly calm history) saw a feature move too
    events = [e for e in Store().events(RUN, limit=200) if e["kind"] == "drift"]
    assert any(" PSI " in e["message"] for e in events)


def test_drift_exits_0_when_the_live_bars_are_the_training_bars(world, home):
    """No drift by construction: the run's bars are exactly the ones v0001 learned from."""
    registry = ModelRegistry()
    card = registry.card("ml_classifier", "v0001")
    train = load_run_bars(list(SYMBOLS), world.data, None, world.train_end)
    store = Store()
    store.create_run("same", "ml_classifier", list(SYMBOLS),
                     {"model_version": "v0001", "params": card.params})
    for i in range(train.n_bars):
        row = {k: getattr(train, k)[i] for k in ("open", "high", "low", "close", "volume")}
        store.save_bar("same", train.index[i].isoformat(), SYMBOLS, row)
    learned = train.n_bars - 378  # the bars after the warm-up: the drift baseline's sample
    out = _invoke("ml", "drift", "--run-id", "same", "--window", learned).output
    assert "drift: ok" in out and "ALERT" not in out
    psi = [float(line.split()[2]) for line in out.splitlines() if line.strip().startswith("PSI")]
    assert len(psi) == len(card.features) and max(psi) < 1e-9


def test_drift_and_compare_refuse_runs_of_rule_strategies(world, home):
    Store().create_run("rules", "sma_cross", ["AAA"], {"params": {}})
    for command in (("drift",), ("compare", "v0001", "v0002")):
        out = _invoke("ml", *command, "--run-id", "rules", ok=False).output
        assert "sma_cross, which has no model" in out


# -- ModelWatch -----------------------------------------------------------------------------------
class _FakeStore:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.predictions: list[tuple[str, list[dict]]] = []

    def event(self, run_id: str, kind: str, message: str) -> None:
        self.events.append((kind, message))

    def save_predictions(self, run_id: str, bar_time: str, rows) -> None:
        self.predictions.append((bar_time, list(rows)))


class _Model:
    def __init__(self, p: float) -> None:
        self.p = p


class _FakeStrategy:
    """Probability = the model's constant; outcomes never resolve (no hit-rate alerts)."""

    name = "fake"

    def probabilities(self, features, model):
        return np.full(np.asarray(features["a"]).shape, model.p)

    def predictions(self, bars, params, model):
        shape = (bars.n_bars, bars.n_assets)
        return np.full(shape, np.nan), np.full(shape, np.nan)


@dataclass(frozen=True)
class _Entry:
    params: object = None
    model: object = None


def _watch(alerts: list, **spec) -> tuple[ModelWatch, _FakeStore]:
    rng = np.random.default_rng(1)
    baseline = FeatureBaseline.fit({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    store = _FakeStore()
    watch = ModelWatch(_FakeStrategy(), store, "r", "v0001", {"v0002": _Model(0.3)}, baseline,
                       lambda *args: alerts.append(args), WatchSpec(**spec))
    return watch, store


def _features(shift_a: float, shift_b: float, n: int = 300) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    return {"a": rng.normal(size=(n, 1)) + shift_a, "b": rng.normal(size=(n, 1)) + shift_b}


def test_model_watch_alerts_once_per_crossing_and_again_for_a_new_feature():
    alerts: list = []
    watch, store = _watch(alerts, window=100, drift=DriftSpec())
    history = _walk(300, 0, seed=3)
    entry = _Entry(model=_Model(0.6))
    steps = [((3.0, 0.0), 1), ((3.0, 0.0), 0), ((3.0, 3.0), 1), ((3.0, 0.0), 0), ((0.0, 0.0), 0),
             ((3.0, 0.0), 1)]
    for (a, b), new_alerts in steps:
        before = len(alerts)
        report = watch.check_drift(history, _features(a, b), entry)
        assert len(alerts) - before == new_alerts, (a, b)
        assert (report.status == "alert") == bool(a or b)
    assert len(store.events) == 3 and all(kind == "drift" for kind, _ in store.events)
    assert "'b'" in store.events[1][1]  # the second alert is the new feature's
    kind, title, _, level = alerts[0]
    assert (kind, level) == ("error", "warning") and "fake v0001" in title


def test_model_watch_stores_live_and_shadow_predictions_and_checks_every_n_bars():
    alerts: list = []
    watch, store = _watch(alerts, window=50, check_every=2)
    history = _walk(60, 0, seed=3)
    feats = {k: np.repeat(v, 2, axis=1)[:60] + 3.0 for k, v in _features(0, 0).items()}
    out = watch.observe(history, feats, _Entry(model=_Model(0.6)))
    assert out == {PROBABILITY_FEATURE: [0.6, 0.6]} and alerts == []  # first bar: no check yet
    (when, rows), = store.predictions
    assert when == history.index[-1].isoformat()
    assert sorted((r["symbol"], r["model_version"], r["role"], r["probability"]) for r in rows) == [
        ("AAA", "v0001", "live", 0.6), ("AAA", "v0002", "shadow", 0.3),
        ("BBB", "v0001", "live", 0.6), ("BBB", "v0002", "shadow", 0.3)]
    watch.observe(history, feats, _Entry(model=_Model(0.6)))  # second bar: drift is checked
    assert len(alerts) == 1 and len(store.events) == 1


# -- the store's schema ---------------------------------------------------------------------------
def test_a_version_2_database_migrates_and_gains_the_predictions_and_uptime_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'v2.sqlite'}"
    Store(url).create_run("old", "ml_classifier", ["AAA"], {"params": {}})
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # what a database schema version 2 made looks like
        conn.execute(sa.text("DROP TABLE predictions"))
        conn.execute(sa.text("DROP TABLE uptime"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 3"))
    engine.dispose()
    tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert not tables & {"predictions", "uptime"}

    store = Store(url)
    assert store.schema_version() == SCHEMA_VERSION == 4
    assert {"predictions", "uptime"} <= set(sa.inspect(store.engine).get_table_names())
    assert store.run("old")["strategy"] == "ml_classifier"  # kept
    assert store.predictions("old").empty
    store.save_predictions("old", "2020-01-02", [
        {"symbol": "AAA", "model_version": "v0001", "role": "live", "probability": 0.7}])
    store.save_predictions("old", "2020-01-02", [  # a retried bar replaces its rows
        {"symbol": "AAA", "model_version": "v0001", "role": "live", "probability": 0.6}])
    back = store.predictions("old")
    assert back[["symbol", "model_version", "role", "probability"]].values.tolist() == [
        ["AAA", "v0001", "live", 0.6]]
