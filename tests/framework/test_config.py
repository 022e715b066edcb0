"""Tests for framework.config (YAML + typed models + secrets) and the ``fw config`` commands."""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

import annotated_types
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from framework.cli_config import config as config_group
from framework.config import (
    DEFAULT_CONFIG_PATH,
    KNOWN_SECRETS,
    TradingConfig,
    load_config,
    load_secrets,
    mask_secret,
    parse_override,
    resolve_config_path,
)
from framework.errors import ConfigError

SECRET = "AKZX9SECRETVALUE1234"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No real secrets or FW_CONFIG leak in; run from an empty folder (no stray ./.env)."""
    for name in (*KNOWN_SECRETS, "FW_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Defaults


def test_shipped_yaml_equals_model_defaults_and_documented_values() -> None:
    shipped = load_config()
    assert shipped == TradingConfig()
    assert load_config(DEFAULT_CONFIG_PATH) == shipped
    risk, rebalancing = shipped.risk_management, shipped.portfolio_optimization.rebalancing
    assert (risk.max_position_size, risk.max_portfolio_risk, risk.daily_loss_limit) == (
        0.30,
        0.80,
        0.05,
    )
    assert (risk.stop_loss.type, risk.stop_loss.fixed_pct, risk.stop_loss.atr_multiplier) == (
        "fixed",
        0.03,
        2.0,
    )
    assert (risk.circuit_breaker.consecutive_losses, risk.circuit_breaker.max_drawdown) == (5, 0.15)
    assert (rebalancing.drift_threshold, rebalancing.frequency) == (0.10, "monthly")
    assert (rebalancing.min_trade_value, rebalancing.max_trades_per_rebalance) == (200, 8)
    assert rebalancing.slippage_pct == 0.001
    trading = shipped.trading
    assert (trading.mode, trading.symbols, trading.initial_capital) == ("backtest", ("SPY",), 1e5)
    assert trading.interval_seconds == 60
    assert (shipped.broker.name, shipped.broker.paper) == ("sim", True)


def test_shipped_yaml_comments_every_key() -> None:
    lines = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and ":" in stripped:
            assert lines[index - 1].strip().startswith("#"), f"key without comment: {line!r}"


def test_empty_file_and_empty_sections_give_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == TradingConfig()
    text = "risk_management:\n  stop_loss:\nnotifications:\n  channels:\n"
    assert load_config(write(tmp_path, text)) == TradingConfig()


def test_fw_config_env_var_selects_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "trading:\n  symbols: [spy, qqq]\n  initial_capital: 1e5\n")
    monkeypatch.setenv("FW_CONFIG", str(path))
    assert resolve_config_path() == path
    loaded = load_config()
    assert loaded.trading.symbols == ("SPY", "QQQ")
    assert loaded.trading.initial_capital == 100_000.0  # YAML 1.1 would read 1e5 as text
    monkeypatch.setenv("FW_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"missing\.yaml \(from FW_CONFIG\) does not exist"):
        load_config()


# --------------------------------------------------------------------------------------------
# Bad configs: each message names the key path, the bad value, what is expected, the file.

BAD_CONFIGS = [
    (
        "unknown top-level key",
        "risk_managment:\n  max_position_size: 0.2\n",
        ["line 1", "risk_managment", "Did you mean 'risk_management'?", "Valid keys"],
    ),
    (
        "unknown nested key",
        "trading:\n  mode: paper\nrisk_management:\n  max_postion_size: 0.2\n",
        ["line 4", "risk_management.max_postion_size", "Did you mean 'max_position_size'?"],
    ),
    (
        "string for a float",
        "risk_management:\n  stop_loss:\n    fixed_pct: abc\n",
        ["line 3", "risk_management.stop_loss.fixed_pct", "'abc'", "expected a number in (0, 1)"],
    ),
    (
        "quoted number",
        "risk_management:\n  daily_loss_limit: '0.03'\n",
        ["risk_management.daily_loss_limit", "'0.03'", "Remove the quotes"],
    ),
    (
        "max_position_size out of range",
        "risk_management:\n  max_position_size: 1.5\n",
        ["line 2", "risk_management.max_position_size", "1.5", "in (0, 1]"],
    ),
    (
        "negative drawdown",
        "risk_management:\n  circuit_breaker:\n    max_drawdown: -0.1\n",
        ["line 3", "risk_management.circuit_breaker.max_drawdown", "-0.1", "in (0, 1]"],
    ),
    (
        "percentage instead of fraction",
        "risk_management:\n  daily_loss_limit: 5\n",
        ["risk_management.daily_loss_limit", "write 0.05 for 5%"],
    ),
    (
        "bad enum value",
        "portfolio_optimization:\n  method: max_sharp\n",
        ["line 2", "portfolio_optimization.method", "'max_sharp'", "Did you mean 'max_sharpe'?"]
        + ["one of: max_sharpe, min_variance, risk_parity, hrp, inverse_volatility, equal_weight"],
    ),
    (
        "bad list item",
        "notifications:\n  events: [error, stop_los]\n",
        ["line 2", "notifications.events[1]", "Did you mean 'stop_loss'?"],
    ),
    (
        "bool for an int",
        "trading:\n  interval_seconds: true\n",
        ["trading.interval_seconds", "True (bool)", "a whole number in [1, 86400]"],
    ),
    (
        "section given a scalar",
        "broker: alpaca\n",
        ["line 1", "broker", "'alpaca'", "a section with keys: name, paper"],
    ),
    (
        "empty symbols",
        "trading:\n  symbols: []\n",
        ["trading.symbols", "an empty list", "at least 1 item"],
    ),
    (
        "duplicate symbol",
        "trading:\n  symbols: [SPY, QQQ, spy]\n",
        ["trading.symbols", "listed twice: SPY"],
    ),
    (
        "paper mode with a real-money broker",
        "trading:\n  mode: paper\nbroker:\n  name: alpaca\n  paper: false\n",
        ["trading.mode", "broker.paper is false", "real orders"],
    ),
    (
        "live mode on the simulator",
        "trading:\n  mode: live\n",
        ["trading.mode", "'live' needs a real broker", "'sim'"],
    ),
    (
        "duplicate key",
        "trading:\n  mode: paper\n  mode: live\n",
        ["line 3", "trading.mode", "duplicate key (first at line 2)"],
    ),
    (
        "top level is a list",
        "- SPY\n- QQQ\n",
        ["top level must be a mapping", "got list"],
    ),
]


@pytest.mark.parametrize(
    ("label", "text", "parts"), BAD_CONFIGS, ids=[case[0] for case in BAD_CONFIGS]
)
def test_bad_config_messages(tmp_path: Path, label: str, text: str, parts: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    for part in parts:
        assert part in message, f"{label}: {part!r} missing from:\n{message}"
    # Our own one-line-per-problem format, not pydantic's dump.
    assert "validation error" not in message
    assert "errors.pydantic.dev" not in message


def test_several_errors_listed_one_per_line_in_file_order(tmp_path: Path) -> None:
    text = """\
        trading:
          mode: lve
        risk_management:
          max_position_size: 2.5
          stop_loss:
            type: trail
        """
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    lines = str(caught.value).splitlines()
    assert "(3 problems)" in lines[0]
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "- line 2",
        "- line 4",
        "- line 6",
    ]
    assert "Did you mean 'live'?" in lines[1]
    assert "Did you mean 'trailing'?" in lines[3]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("trading:\n  mode: paper\n  symbols: [SPY\nbroker: {}\n", "line 4"),
        ("trading:\n\tmode: paper\n", "line 2"),
        ("trading:\n  mode: 'paper\n", "line 3"),
    ],
)
def test_yaml_syntax_error_names_line(tmp_path: Path, text: str, line: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="YAML syntax error") as caught:
        load_config(path)
    assert f"at {line}," in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "key_path",
    [
        "broker.api_key",
        "broker.secret_key",
        "notifications.password",
        "telegram_token",
        "broker.apca_key_id",
    ],
)
def test_secret_looking_key_in_yaml_is_rejected_without_echoing_it(
    tmp_path: Path, key_path: str
) -> None:
    *sections, key = key_path.split(".")
    text, indent = "", ""
    for section in sections:
        text += f"{indent}{section}:\n"
        indent += "  "
    text += f"{indent}{key}: {SECRET}\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    message = str(caught.value)
    assert key_path in message and "looks like a secret" in message
    assert "environment variable" in message and "APCA_API_KEY_ID" in message
    assert SECRET not in message
    assert "unknown key" not in message  # reported once, as a secret


def test_notification_url_in_yaml_is_rejected_without_echoing_it(tmp_path: Path) -> None:
    url = f"tgram://{SECRET}/12345"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"notifications:\n  channels: ['{url}']\n"))
    assert "FW_APPRISE_URLS" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_missing_and_folder_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


# --------------------------------------------------------------------------------------------
# Overrides


def test_with_overrides_sets_validates_and_keeps_the_rest() -> None:
    base = TradingConfig()
    changed = base.with_overrides(
        {"risk_management.daily_loss_limit": 0.03, "trading.symbols": ["spy", "tlt"]}
    )
    assert changed.risk_management.daily_loss_limit == 0.03
    assert changed.trading.symbols == ("SPY", "TLT")
    assert changed.risk_management.stop_loss == base.risk_management.stop_loss
    assert base.risk_management.daily_loss_limit == 0.05  # the original is untouched
    merged = base.with_overrides({"risk_management.stop_loss": {"type": "atr"}})
    assert merged.risk_management.stop_loss.type == "atr"
    assert merged.risk_management.stop_loss.fixed_pct == 0.03  # merged, not reset


@pytest.mark.parametrize(
    ("overrides", "parts"),
    [
        ({"risk_managment.daily_loss_limit": 0.03}, ["Did you mean 'risk_management'?"]),
        ({"risk_management.stop_los.fixed_pct": 0.1}, ["risk_management.stop_los", "'stop_loss'"]),
        ({"risk_management.stop_loss": 0.1}, ["is a section, not a value"]),
        ({"trading.mode.kind": "x"}, ["trading.mode is a value, not a section"]),
        ({"trading.mode": "liv"}, ["trading.mode", "Did you mean 'live'?"]),
        ({"broker.api_key": SECRET}, ["broker.api_key", "looks like a secret"]),
        ({"trading..mode": "paper"}, ["not a dotted key path"]),
    ],
)
def test_bad_overrides(overrides: dict, parts: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        TradingConfig().with_overrides(overrides)
    for part in parts:
        assert part in str(caught.value)
    assert SECRET not in str(caught.value)


def test_parse_override_reads_yaml_values() -> None:
    assert parse_override("risk_management.daily_loss_limit=0.03") == (
        "risk_management.daily_loss_limit",
        0.03,
    )
    assert parse_override("trading.symbols=[SPY, QQQ]") == ("trading.symbols", ["SPY", "QQQ"])
    assert parse_override("trading.initial_capital=1e6") == ("trading.initial_capital", 1e6)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("no_equals_sign")


def _numeric_fields(model: type[BaseModel] = TradingConfig, prefix: str = "") -> list[tuple]:
    """(dotted path, type, low, low_inclusive, high, high_inclusive) from the models' metadata."""
    found = []
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            found += _numeric_fields(info.annotation, f"{prefix}{name}.")
        elif info.annotation in (int, float):
            low = high = None
            low_in = high_in = True
            for item in info.metadata:
                if isinstance(item, annotated_types.Gt):
                    low, low_in = item.gt, False
                elif isinstance(item, annotated_types.Ge):
                    low = item.ge
                elif isinstance(item, annotated_types.Lt):
                    high, high_in = item.lt, False
                elif isinstance(item, annotated_types.Le):
                    high = item.le
            found.append((prefix + name, info.annotation, low, low_in, high, high_in))
    return found


NUMERIC_FIELDS = _numeric_fields()


def test_numeric_field_inventory() -> None:
    paths = {entry[0] for entry in NUMERIC_FIELDS}
    assert len(paths) == 16
    assert all(entry[2] is not None for entry in NUMERIC_FIELDS)  # every number has a floor


def _inside(entry: tuple) -> st.SearchStrategy:
    _, kind, low, low_in, high, high_in = entry
    if kind is int:
        return st.integers(min_value=low, max_value=high)
    return st.floats(
        min_value=low,
        max_value=1e12 if high is None else high,
        exclude_min=not low_in,
        exclude_max=high is not None and not high_in,
        allow_nan=False,
    )


def _outside(entry: tuple) -> st.SearchStrategy:
    _, kind, low, low_in, high, high_in = entry
    if kind is int:
        options = [st.integers(max_value=low - 1)]
        options += [st.integers(min_value=high + 1)] if high is not None else []
        return st.one_of(options)
    options = [st.floats(max_value=low, exclude_max=low_in, allow_nan=False, allow_infinity=False)]
    if high is not None:
        options.append(
            st.floats(min_value=high, exclude_min=high_in, allow_nan=False, allow_infinity=False)
        )
    return st.one_of([*options, st.sampled_from([math.nan, math.inf, -math.inf])])


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_numeric_overrides_within_bounds_round_trip(data: st.DataObject) -> None:
    entry = data.draw(st.sampled_from(NUMERIC_FIELDS))
    value = data.draw(_inside(entry))
    base = TradingConfig()
    changed = base.with_overrides({entry[0]: value})
    assert changed.value_at(entry[0]) == value
    assert type(changed.value_at(entry[0])) is entry[1]
    # Nothing else moved: setting the old value back restores the original exactly.
    assert changed.with_overrides({entry[0]: base.value_at(entry[0])}) == base


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_numeric_overrides_outside_bounds_raise(data: st.DataObject) -> None:
    entry = data.draw(st.sampled_from(NUMERIC_FIELDS))
    value = data.draw(_outside(entry))
    with pytest.raises(ConfigError) as caught:
        TradingConfig().with_overrides({entry[0]: value})
    assert entry[0] in str(caught.value)
    assert "expected a " in str(caught.value)


# --------------------------------------------------------------------------------------------
# Secrets


def test_secrets_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", SECRET)
    secrets = load_secrets()
    assert secrets.get("APCA_API_KEY_ID") == SECRET
    assert secrets.get("APCA_API_SECRET_KEY") is None
    assert secrets.sources["APCA_API_KEY_ID"] == "environment"
    with pytest.raises(ConfigError, match="Did you mean 'APCA_API_KEY_ID'"):
        secrets.get("APCA_API_KEYID")
    with pytest.raises(ConfigError, match="APCA_API_SECRET_KEY is not set"):
        secrets.require("APCA_API_SECRET_KEY")


def test_secrets_from_dotenv_leave_os_environ_unchanged(
    _clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (_clean_env / ".env").write_text(f"APCA_API_KEY_ID={SECRET}\nOTHER=1\n", encoding="utf-8")
    home_env = Path(os.environ["FW_HOME"]) / ".env"
    home_env.parent.mkdir(parents=True, exist_ok=True)
    home_env.write_text("APCA_API_KEY_ID=HOMEVALUE99\nWEBULL_APP_KEY=WBHOMEKEY123\n")
    before = dict(os.environ)
    secrets = load_secrets()
    assert dict(os.environ) == before
    assert secrets.get("APCA_API_KEY_ID") == SECRET  # ./.env beats FW_HOME/.env
    assert secrets.get("WEBULL_APP_KEY") == "WBHOMEKEY123"
    assert secrets.sources["WEBULL_APP_KEY"] == str(home_env)
    monkeypatch.setenv("APCA_API_KEY_ID", "ENVWINS12345")  # the process environment beats both
    assert load_secrets().get("APCA_API_KEY_ID") == "ENVWINS12345"


def test_masking_never_shows_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", SECRET)
    monkeypatch.setenv("WEBULL_ACCOUNT_ID", "12345")
    secrets = load_secrets()
    masked = secrets.masked()
    assert masked["APCA_API_KEY_ID"] == "AK****..."
    assert masked["WEBULL_ACCOUNT_ID"] == "****..."  # short values show nothing
    assert masked["APCA_API_SECRET_KEY"] == "(not set)"
    assert set(masked) == set(KNOWN_SECRETS)
    for text in (repr(secrets), str(secrets), str(masked)):
        assert SECRET not in text and SECRET[2:6] not in text and "12345" not in text


@given(st.text(min_size=1, max_size=60))
def test_mask_shows_at_most_two_characters(value: str) -> None:
    masked = mask_secret(value)
    assert masked.endswith("****...")
    assert len(masked) <= len("****...") + 2
    assert masked[:-7] == value[: len(masked) - 7]


# --------------------------------------------------------------------------------------------
# CLI


def test_cli_show_masks_secrets_and_prints_config(
    _clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", SECRET)
    (_clean_env / ".env").write_text("APCA_API_SECRET_KEY=SKDOTENVSECRET987\n", encoding="utf-8")
    result = CliRunner().invoke(config_group, ["show"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "DOTENVSECRET" not in result.output
    assert "APCA_API_KEY_ID = AK****..." in result.output
    assert "APCA_API_SECRET_KEY = SK****..." in result.output
    assert "WEBULL_APP_KEY = (not set)" in result.output
    assert f"FW_HOME = {os.environ['FW_HOME']}" in result.output
    assert "max_position_size: 0.3" in result.output
    assert str(DEFAULT_CONFIG_PATH) in result.output


def test_cli_show_with_path_and_error(tmp_path: Path) -> None:
    good = write(tmp_path, "trading:\n  symbols: [QQQ]\n", "good.yaml")
    result = CliRunner().invoke(config_group, ["show", "--path", str(good)])
    assert result.exit_code == 0 and "- QQQ" in result.output
    bad = write(tmp_path, "trading:\n  mode: lve\n", "bad.yaml")
    result = CliRunner().invoke(config_group, ["show", "--path", str(bad)])
    assert result.exit_code == 1
    assert "Did you mean 'live'?" in result.output and "Traceback" not in result.output


def test_cli_validate(tmp_path: Path) -> None:
    good = write(tmp_path, "broker:\n  name: alpaca\n", "good.yaml")
    result = CliRunner().invoke(config_group, ["validate", str(good)])
    assert result.exit_code == 0 and result.output.strip() == f"ok: {good}"
    bad = write(tmp_path, "risk_management:\n  max_position_size: 1.5\n  foo: 1\n", "bad.yaml")
    result = CliRunner().invoke(config_group, ["validate", str(bad)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "risk_management.max_position_size" in result.output
    assert "risk_management.foo" in result.output
    assert "Traceback" not in result.output
