"""Trading configuration: typed YAML settings plus secrets from the environment.

``load_config`` reads ``config/trading_config.yaml`` (or a given file, or ``FW_CONFIG``) into a
frozen :class:`TradingConfig`. Every model default equals the shipped YAML, so an empty file gives
the same configuration. Any problem becomes one :class:`~framework.errors.ConfigError` that lists
each bad key path with its line, the bad value, what was expected and a did-you-mean.

Secrets never live in YAML: see :mod:`framework.secrets` (re-exported here for convenience).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from framework.errors import ConfigError, did_you_mean, unknown_name_message
from framework.secrets import KNOWN_SECRETS, Secrets, load_secrets, mask_secret

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "trading_config.yaml"
CONFIG_ENV_VAR = "FW_CONFIG"

# Event names the alerting layer may emit; notifications.events selects among them.
NOTIFICATION_EVENTS: tuple[str, ...] = (
    "order_filled",
    "stop_loss",
    "circuit_breaker",
    "daily_loss_limit",
    "rebalance",
    "regime_change",
    "daily_summary",
    "reconciliation",
    "error",
)
_DEFAULT_EVENTS = ("order_filled", "stop_loss", "circuit_breaker", "daily_loss_limit", "error")

# Substrings of key names that hold credentials; such keys are refused wherever they appear.
_SECRET_KEY_PARTS = ("api_key", "apikey", "secret", "password", "passwd", "token", "key_id")
_SECRET_KEY_PARTS += ("app_key", "account_id", "private_key", "credential")

# Strict numbers: YAML already types values, so a quoted "0.3" or a bool is a mistake to report.
Fraction = Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)]
Money = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
StrictBool = Annotated[bool, Field(strict=True)]


class _Section(BaseModel):
    """Shared model settings: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any, info: Any) -> Any:
        # "stop_loss:" with every child commented out parses as None; treat it as an empty section.
        if value is None:
            annotation = cls.model_fields[info.field_name].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return {}
            if get_origin(annotation) is tuple:
                return ()
        return value


class TradingSection(_Section):
    """``trading``: what to trade, in which mode, with how much capital."""

    mode: Literal["backtest", "paper", "live"] = "backtest"
    symbols: tuple[str, ...] = Field(default=("SPY",), min_length=1)
    initial_capital: float = Field(default=100_000.0, strict=True, gt=0, allow_inf_nan=False)
    interval_seconds: int = Field(default=60, strict=True, ge=1, le=86_400)

    @field_validator("symbols", mode="before")
    @classmethod
    def _one_symbol_is_a_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("symbols")
    @classmethod
    def _clean_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(symbol.strip().upper() for symbol in value)
        for symbol in cleaned:
            if not re.fullmatch(r"[A-Z0-9^][A-Z0-9.^=/\-]*", symbol):
                raise ValueError(
                    f"symbol {symbol!r} is not a ticker; expected letters, digits and . - / ^ = "
                    "(e.g. SPY, BRK.B, BTC/USD)"
                )
        duplicates = sorted({s for s in cleaned if cleaned.count(s) > 1})
        if duplicates:
            raise ValueError(f"symbols listed twice: {', '.join(duplicates)}; list each once")
        return cleaned


class BrokerSection(_Section):
    """``broker``: where orders go in paper/live mode."""

    name: Literal["sim", "alpaca", "webull"] = "sim"
    paper: StrictBool = True
    max_requests_per_min: int = Field(default=180, strict=True, ge=1, le=100_000)
    request_timeout: float = Field(default=10.0, strict=True, gt=0, le=600, allow_inf_nan=False)


class RebalancingSection(_Section):
    """``portfolio_optimization.rebalancing``: when and how the portfolio is rebalanced."""

    trigger_type: Literal["calendar", "drift", "combined"] = "combined"
    drift_threshold: Fraction = 0.10
    frequency: Literal["daily", "weekly", "monthly", "quarterly"] = "monthly"
    min_trade_value: Money = 200.0
    max_trades_per_rebalance: int = Field(default=8, strict=True, ge=1, le=10_000)
    slippage_pct: float = Field(default=0.001, strict=True, ge=0, le=0.05, allow_inf_nan=False)


class PortfolioOptimizationSection(_Section):
    """``portfolio_optimization``: how target weights across symbols are chosen."""

    method: Literal[
        "max_sharpe", "min_variance", "risk_parity", "hrp", "inverse_volatility", "equal_weight"
    ] = "max_sharpe"
    lookback_days: int = Field(default=252, strict=True, ge=5, le=10_000)
    regime_aware: StrictBool = False
    rebalancing: RebalancingSection = RebalancingSection()


class StopLossSection(_Section):
    """``risk_management.stop_loss``: per-position exit rule."""

    type: Literal["fixed", "trailing", "atr", "none"] = "fixed"
    fixed_pct: float = Field(default=0.03, strict=True, gt=0, lt=1, allow_inf_nan=False)
    atr_multiplier: float = Field(default=2.0, strict=True, gt=0, le=20, allow_inf_nan=False)


class CircuitBreakerSection(_Section):
    """``risk_management.circuit_breaker``: conditions that halt trading."""

    consecutive_losses: int = Field(default=5, strict=True, ge=1, le=1_000)
    max_drawdown: Fraction = 0.15


class RiskManagementSection(_Section):
    """``risk_management``: position, exposure and loss limits."""

    max_position_size: Fraction = 0.30
    max_portfolio_risk: Fraction = 0.80
    daily_loss_limit: Fraction = 0.05
    stop_loss: StopLossSection = StopLossSection()
    circuit_breaker: CircuitBreakerSection = CircuitBreakerSection()
    # regime name -> {risk setting: value}; names and settings are checked by RiskSpec
    regime_overrides: dict[str, dict[str, float]] = Field(default_factory=dict)


class NotificationsSection(_Section):
    """``notifications``: which events alert which channels (URLs come from FW_APPRISE_URLS)."""

    enabled: StrictBool = False
    channels: tuple[str, ...] = ()
    events: tuple[Literal[NOTIFICATION_EVENTS], ...] = _DEFAULT_EVENTS

    @field_validator("channels")
    @classmethod
    def _channels_are_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, channel in enumerate(value):
            # Never echo the value: a notification URL embeds its credentials.
            if "://" in channel:
                raise ValueError(
                    f"entry {index} looks like a notification URL; URLs carry credentials, so put "
                    "them in the FW_APPRISE_URLS environment variable (or .env) and list only "
                    "channel names here (e.g. telegram, email)"
                )
            if not re.fullmatch(r"[a-z0-9_\-]+", channel):
                raise ValueError(
                    f"channel {channel!r} is not a name; expected lowercase letters, digits, _ or -"
                )
        return value


class TradingConfig(_Section):
    """The whole trading configuration (``config/trading_config.yaml``).

    Build it with :func:`load_config`; derive variants with :meth:`with_overrides`.
    """

    trading: TradingSection = TradingSection()
    broker: BrokerSection = BrokerSection()
    portfolio_optimization: PortfolioOptimizationSection = PortfolioOptimizationSection()
    risk_management: RiskManagementSection = RiskManagementSection()
    notifications: NotificationsSection = NotificationsSection()

    @model_validator(mode="after")
    def _mode_matches_broker(self) -> TradingConfig:
        # Real money is at stake: a contradictory mode/broker pair must never guess.
        mode, broker = self.trading.mode, self.broker
        if mode == "paper" and not broker.paper:
            raise ValueError(
                "trading.mode: 'paper' but broker.paper is false, which would send real orders; "
                "set broker.paper: true (or trading.mode: live if you mean real money)"
            )
        if mode == "live" and (broker.name == "sim" or broker.paper):
            raise ValueError(
                f"trading.mode: 'live' needs a real broker account, got broker.name "
                f"{broker.name!r} with broker.paper {str(broker.paper).lower()}; set broker.name "
                "to alpaca or webull and broker.paper: false, or use trading.mode: paper"
            )
        return self

    def with_overrides(self, overrides: Mapping[str, Any]) -> TradingConfig:
        """Return a copy with dotted keys replaced, validated exactly like a YAML file.

        Parameters
        ----------
        overrides : mapping of str to value
            E.g. ``{"risk_management.daily_loss_limit": 0.03}``. A mapping value is merged into
            the section it names.

        Raises
        ------
        ConfigError
            When a key is unknown (with a suggestion) or a value is invalid.
        """
        data = self.model_dump(mode="python")
        for dotted, value in overrides.items():
            _apply_override(data, dotted, value)
        return _validate(data, source="overrides", lines={})

    def value_at(self, dotted: str) -> Any:
        """Return the value at a dotted key path such as ``"risk_management.stop_loss.type"``."""
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, BaseModel) or part not in type(node).model_fields:
                keys = type(node).model_fields if isinstance(node, BaseModel) else ()
                raise ConfigError(f"{dotted}: " + unknown_name_message("key", part, keys))
            node = getattr(node, part)
        return node

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict/list form, suitable for YAML/JSON and run records."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved configuration as YAML text, keys in declaration order."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)


# --------------------------------------------------------------------------------------------
# Loading


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e5`` as a float (YAML 1.1 would make it a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def resolve_config_path(path: str | Path | None = None) -> Path:
    """Return the file :func:`load_config` would read: ``path``, else ``FW_CONFIG``, else the default.

    Parameters
    ----------
    path : str or Path, optional
        An explicit file; wins over ``FW_CONFIG`` and the shipped default.
    """
    if path is not None and str(path).strip():
        return Path(path).expanduser()
    from_env = os.environ.get(CONFIG_ENV_VAR, "").strip()
    return Path(from_env).expanduser() if from_env else DEFAULT_CONFIG_PATH


def load_config(path: str | Path | None = None) -> TradingConfig:
    """Load and validate the trading configuration.

    Parameters
    ----------
    path : str or Path, optional
        YAML file to read. ``None`` reads ``FW_CONFIG`` when set, else the repository's
        ``config/trading_config.yaml``.

    Returns
    -------
    TradingConfig

    Raises
    ------
    ConfigError
        When the file is missing or unreadable, is not valid YAML (names the line), holds a
        secret-looking key, or fails validation (one line per problem with its key path).
    """
    resolved = resolve_config_path(path)
    from_env = path is None and bool(os.environ.get(CONFIG_ENV_VAR, "").strip())
    if not resolved.is_file():
        what = "is a folder, not a file" if resolved.is_dir() else "does not exist"
        fix = f"fix or unset {CONFIG_ENV_VAR}" if from_env else "pass an existing YAML file"
        raise ConfigError(
            f"config file {resolved}{f' (from {CONFIG_ENV_VAR})' if from_env else ''} {what}; "
            f"{fix} (copy {DEFAULT_CONFIG_PATH} as a starting point)"
        )
    try:
        text = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read config file {resolved}: {exc}; check its permissions and encoding"
        ) from exc
    data, lines = _parse_yaml(text, str(resolved))
    return _validate(data, source=str(resolved), lines=lines)


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"key.path=value"`` and read the value as YAML (``0.03``, ``true``, ``[SPY, QQQ]``).

    Parameters
    ----------
    text : str
        One override as typed on a command line.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"override {text!r} is not KEY=VALUE; write e.g. risk_management.daily_loss_limit=0.03"
        )
    try:
        value = yaml.load(raw, Loader=_Loader)  # _Loader is a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override {text!r}: the value is not valid YAML ({exc}); quote or fix it"
        ) from exc
    return key.strip(), value


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        detail = str(exc.problem or exc.context or "unparsable text")
        if exc.context and exc.problem and exc.context_mark is not None:
            start = exc.context_mark
            detail += (
                f" ({exc.context}, started at line {start.line + 1}, column {start.column + 1})"
            )
        raise ConfigError(
            f"{source}: YAML syntax error at {where}: {detail}. Fix the YAML there "
            "(check indentation, colons after keys and matching quotes/brackets)"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}; fix the file's syntax") from exc
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of sections (trading:, broker:, ...), "
            f"got {type(data).__name__}; see {DEFAULT_CONFIG_PATH}"
        )
    lines: dict[tuple, int] = {}
    problems: list[str] = []
    _index_lines(node, (), lines, problems)
    if problems:
        raise ConfigError(_report(source, problems))
    return data, lines


def _index_lines(node: Any, path: tuple, lines: dict[tuple, int], problems: list[str]) -> None:
    """Record each key path's line and catch duplicate keys (PyYAML silently keeps the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    f"line {line}: {_format_path((*path, key))}: duplicate key (first at line "
                    f"{seen[key]}); keep only one"
                )
            seen[key] = line
            lines[(*path, key)] = line
            _index_lines(value_node, (*path, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _index_lines(item, (*path, index), lines, problems)


def _looks_secret(key: Any) -> bool:
    return any(part in str(key).lower() for part in _SECRET_KEY_PARTS)


def _secret_problems(data: Any, path: tuple, lines: Mapping[tuple, int]) -> list[str]:
    problems: list[str] = []
    if not isinstance(data, dict):
        return problems
    for key, value in data.items():
        here = (*path, key)
        if _looks_secret(key):
            # The value is deliberately not shown: it may be a real credential.
            problems.append(
                f"{_where(here, lines)}{_format_path(here)}: looks like a secret; secrets must not "
                "be stored in YAML. Remove the key and set the matching environment variable "
                f"instead (or put it in .env / FW_HOME/.env): {', '.join(KNOWN_SECRETS)}"
            )
        else:
            problems.extend(_secret_problems(value, here, lines))
    return problems


def _validate(data: dict[str, Any], *, source: str, lines: Mapping[tuple, int]) -> TradingConfig:
    problems = _secret_problems(data, (), lines)
    try:
        trading_config = TradingConfig.model_validate(_without_secret_keys(data))
    except ValidationError as exc:
        problems += [_describe(error, lines) for error in exc.errors()]
    if problems:
        # from None: pydantic's multi-line dump is replaced by the formatted problem list.
        raise ConfigError(_report(source, problems)) from None
    return trading_config


def _without_secret_keys(data: Any) -> Any:
    # Secret keys are already reported; removing them keeps them out of "unknown key" noise.
    if not isinstance(data, dict):
        return data
    return {
        key: _without_secret_keys(value) for key, value in data.items() if not _looks_secret(key)
    }


def _apply_override(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [part.strip() for part in str(dotted).split(".")]
    if not all(parts):
        raise ConfigError(
            f"override key {dotted!r} is not a dotted key path; write e.g. "
            "risk_management.stop_loss.fixed_pct"
        )
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"override {dotted!r}: {'.'.join(parts[: depth + 1])} is a value, not a section; "
                f"set {'.'.join(parts[: depth + 1])} itself"
            )
        node = child
    last = parts[-1]
    if isinstance(node.get(last), dict):
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"override {dotted!r}: {dotted} is a section, not a value; set one of its keys: "
                f"{', '.join(f'{dotted}.{key}' for key in node[last])}"
            )
        _deep_merge(node[last], value)
    else:
        node[last] = dict(value) if isinstance(value, Mapping) else value


def _deep_merge(target: dict[str, Any], updates: Mapping[str, Any]) -> None:
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = dict(value) if isinstance(value, Mapping) else value


# --------------------------------------------------------------------------------------------
# Error messages: one line per problem, written here rather than pydantic's multi-line dump.


def _report(source: str, problems: Sequence[str]) -> str:
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    in_file_order = sorted(
        problems, key=lambda text: int(re.match(r"(?:line (\d+))?", text)[1] or 0)
    )
    body = "\n".join(f"  - {problem}" for problem in in_file_order)
    return f"invalid configuration in {source} ({count}):\n{body}"


def _format_path(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _where(loc: tuple, lines: Mapping[tuple, int]) -> str:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return f"line {lines[loc[:end]]}: "
    return ""


def _field_at(loc: Sequence[Any]) -> tuple[Any, list[Any]]:
    """Return (annotation, constraint metadata) of the field a pydantic error location points at."""
    annotation: Any = TradingConfig
    metadata: list[Any] = []
    for part in loc:
        if isinstance(part, int):
            annotation, metadata = get_args(annotation)[0], []
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(part)
            if info is None:
                return None, []
            annotation, metadata = info.annotation, list(info.metadata)
        else:
            return None, []
    return annotation, metadata


def _range_text(metadata: Sequence[Any]) -> str:
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            low = f"({item.gt:g}"
        elif isinstance(item, annotated_types.Ge):
            low = f"[{item.ge:g}"
        elif isinstance(item, annotated_types.Lt):
            high = f"{item.lt:g})"
        elif isinstance(item, annotated_types.Le):
            high = f"{item.le:g}]"
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" {'>' if low[0] == '(' else '>='} {low[1:]}"
    return f" {'<' if high[-1] == ')' else '<='} {high[:-1]}" if high else ""


def _expected(annotation: Any, metadata: Sequence[Any]) -> str:
    if get_origin(annotation) is Literal:
        return "one of: " + ", ".join(str(choice) for choice in get_args(annotation))
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number" + _range_text(metadata)
    if annotation is float:
        fraction = " (a fraction: 0.30 means 30%)" if _range_text(metadata).endswith("1]") else ""
        return "a number" + _range_text(metadata) + fraction
    if get_origin(annotation) is tuple:
        return "a list of " + _expected(get_args(annotation)[0], []).replace("one of", "items from")
    if annotation is str:
        return "text"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a section with keys: " + ", ".join(annotation.model_fields)
    return "a valid value"


def _hint(value: Any, annotation: Any, metadata: Sequence[Any]) -> str:
    if annotation in (int, float) and isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            return " Write percentages as fractions: 0.05 means 5%."
        if re.fullmatch(r"[-+]?[0-9_.]+(?:[eE][-+]?[0-9]+)?", text):
            return " Remove the quotes so YAML reads it as a number."
    fraction = annotation is float and _range_text(metadata).endswith("1]")
    # 1.5 may be a leverage attempt; 5 or 30 is almost surely a percentage.
    if fraction and isinstance(value, int | float) and 2 <= value <= 100:
        return f" Values are fractions: write {value / 100:g} for {value:g}%."
    if get_origin(annotation) is Literal and isinstance(value, str):
        return did_you_mean(value, [str(choice) for choice in get_args(annotation)])
    return ""


def _describe(error: Mapping[str, Any], lines: Mapping[tuple, int]) -> str:
    loc = tuple(error["loc"])
    path, where = _format_path(loc), _where(loc, lines)
    if error["type"] == "extra_forbidden":
        annotation, _ = _field_at(loc[:-1])
        keys = annotation.model_fields if annotation is not None else ()
        section = _format_path(loc[:-1]) or "the top level"
        return (
            f"{where}{path}: "
            + unknown_name_message("key", str(loc[-1]), keys)
            + f" Rename or remove it (keys of {section} are listed)."
        )
    if error["type"] in ("value_error", "assertion_error"):
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"{where}{path}: {message}" if path else f"{where}{message}"
    annotation, metadata = _field_at(loc)
    value = error.get("input")
    shown = "nothing" if value is None else f"{value!r} ({type(value).__name__})"
    if isinstance(value, dict | list | tuple):
        kind = "mapping" if isinstance(value, dict) else "list"
        shown = f"an empty {kind}" if not value else f"a {kind}"
    detail = "" if annotation is not None else f" ({error['msg']})"
    expected = _expected(annotation, metadata) if annotation is not None else "a valid value"
    if error["type"] == "too_short":
        expected += f" with at least {error.get('ctx', {}).get('min_length', 1)} item(s)"
    return f"{where}{path}: got {shown}; expected {expected}.{detail}{_hint(value, annotation, metadata)}"


__all__ = ["KNOWN_SECRETS", "Secrets", "TradingConfig", "load_config", "load_secrets", "mask_secret"]
