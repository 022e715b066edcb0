"""The Webull SDK (``webull-openapi-python-sdk`` 3.0.4), contained: spec, credentials, connection.

:class:`WebullConnection` wraps one SDK ``ApiClient`` and its REST operation objects with our
timeout, pacing (:class:`~live.ratelimit.RateLimiter`) and read retries; the broker on top of it
is :class:`live.webull.WebullBroker`.

The SDK has side effects fw must not inherit:

* ``TradeClient``/``DataClient`` constructors add a stdout handler and a rotating
  ``webull_trade_sdk.log`` / ``webull_data_sdk.log`` file handler **in the working directory**
  unless a logger was configured on the ``ApiClient``. We never build those two clients: the
  token initialisation (``ClientInitializer``) and the REST operation objects they wrap are
  constructed directly on our ``ApiClient``, so no handler is ever added.
* ``webull.core.http.response`` adds, at import, a stderr ``StreamHandler`` at DEBUG with
  ``propagate=False``; with ``WEBULL_API_DEBUG=sdk`` it would print every header, the access
  token included. :func:`contain_logging` removes it and routes the whole ``webull`` logger tree
  into ``live.webull.sdk`` (so fw's run logs capture its warnings), masking tokens, signatures
  and app keys. The SDK's own ERROR for each non-2xx reply is passed on at DEBUG: the adapter
  reports every failure that matters itself, with context and a fix.
* The 2FA token file defaults to ``conf/token.txt`` in the working directory (or
  ``WEBULL_OPENAPI_TOKEN_DIR``); :func:`token_dir` puts it under ``FW_HOME/webull`` (mode 0700).

Importing this module imports nothing from the SDK and makes no network call; the REST modules
imported by :func:`load_sdk` pull in neither protobuf nor grpc (only the events client and the
streaming data client do, and fw uses neither).
"""

from __future__ import annotations

import logging
import re
import threading
import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pandas as pd

from framework.errors import BrokerError, ConfigError
from live.broker import BrokerUnavailableError
from live.ratelimit import RateLimiter

KEY_VARIABLE, SECRET_VARIABLE = "WEBULL_APP_KEY", "WEBULL_APP_SECRET"
ACCOUNT_VARIABLE, REGION_VARIABLE = "WEBULL_ACCOUNT_ID", "WEBULL_REGION"
ENDPOINT_VARIABLE, CA_VARIABLE = "WEBULL_API_ENDPOINT", "WEBULL_API_CA_BUNDLE"
TEST_ENDPOINT = "us-openapi-alb.uat.webullbroker.com"  # Webull's US test environment (UAT)
REGIONS = ("us", "hk", "jp", "sg", "th", "au", "my", "uk", "br", "mx", "za", "eu")
# the SDK's production hosts (webull/core/data/endpoints.json): orders there are real
PRODUCTION_HOSTS = frozenset({
    "api.webull.com", "api.webull.hk", "api.webull.co.jp", "api.webull.com.sg",
    "api.webull.co.th", "api.webull.com.au", "api.webull.com.my", "api.webull-uk.com",
    "api.webull.eu", "data-api.webull.com",
})
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})

@dataclass(frozen=True)
class WebullSpec:
    """How to reach Webull and how patient to be with it.

    Attributes
    ----------
    endpoint : str, optional
        ``host[:port]`` of the API; default: the US test environment. A production host
        (real money) needs ``live=True``.
    region : str
        Webull region id (``us``, ``hk``, ...): which signing region the SDK uses.
    ca_bundle : str, optional
        CA certificates to verify the endpoint with (default: the system's).
    live : bool
        Allow a production host (config ``broker.paper: false``).
    timeout : float
        Seconds per HTTP request (the SDK's connect timeout is the smaller of this and 5 s).
    max_requests_per_min : int
        Our own request ceiling, shared by trading and market data.
    attempts : int
        Tries of a read (and of a submit that was clearly not received) before giving up.
    backoff : float
        Seconds before the first retry; doubles each time.
    token_wait, token_poll : int
        Seconds the SDK waits for the user to approve a new token in the app, and between its
        checks.
    """

    endpoint: str | None = None
    region: str = "us"
    ca_bundle: str | None = None
    live: bool = False
    timeout: float = 10.0
    max_requests_per_min: int = 180
    attempts: int = 4
    backoff: float = 0.5
    token_wait: int = 60
    token_poll: int = 5

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ConfigError(f"webull region {self.region!r}; expected one of {REGIONS} "
                              f"(set {REGION_VARIABLE}).")
        if self.endpoint is None and self.region != "us" and not self.live:
            raise ConfigError(
                f"webull region {self.region!r} has no known test environment; set "
                f"{ENDPOINT_VARIABLE} to your region's test host (see docs/webull.md).")
        if self.is_production and not self.live:
            raise ConfigError(
                f"{ENDPOINT_VARIABLE}={self.host} is a Webull PRODUCTION host: orders there "
                f"trade REAL MONEY. Use the test environment ({TEST_ENDPOINT}, the default) or, "
                "deliberately, set broker.paper: false and trading.mode: live in the config.")
        for name in ("timeout", "backoff"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"webull {name} {getattr(self, name)!r}; expected seconds > 0.")
        if min(self.max_requests_per_min, self.attempts, self.token_wait, self.token_poll) < 1:
            raise ConfigError(
                f"webull max_requests_per_min={self.max_requests_per_min}, attempts="
                f"{self.attempts}, token_wait={self.token_wait}, token_poll={self.token_poll}; "
                "each must be at least 1.")

    @property
    def host(self) -> str:
        """The endpoint the SDK is pointed at."""
        if self.endpoint:
            return self.endpoint.strip().rstrip("/")
        return TEST_ENDPOINT if self.region == "us" else f"api.webull.{self.region}"

    @property
    def is_production(self) -> bool:
        return self.host.split("://", 1)[-1].split(":", 1)[0].split("/", 1)[0] in PRODUCTION_HOSTS

    @property
    def mode(self) -> str:
        """``"LIVE"`` (production: real money) or ``"test"`` (any other host)."""
        return "LIVE" if self.is_production else "test"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **overrides: Any) -> WebullSpec:
        """The spec from ``WEBULL_API_ENDPOINT``, ``WEBULL_REGION`` and ``WEBULL_API_CA_BUNDLE``."""
        found = {"endpoint": environ.get(ENDPOINT_VARIABLE) or None,
                 "region": (environ.get(REGION_VARIABLE) or "us").strip().lower(),
                 "ca_bundle": environ.get(CA_VARIABLE) or None}
        return cls(**{**found, **overrides})


@dataclass(frozen=True)
class WebullCredentials:
    """App key and secret (signing) and the account traded."""

    app_key: str
    app_secret: str
    account_id: str

    def __repr__(self) -> str:  # never print the secret
        return f"WebullCredentials(app_key='{self.app_key[:4]}...', account_id={self.account_id!r})"


def webull_credentials(environ: Mapping[str, str] | None = None) -> WebullCredentials:
    """Key, secret and account id from the environment or ``.env`` (never from YAML)."""
    from framework.secrets import load_secrets

    secrets = load_secrets(environ=environ) if environ is not None else load_secrets()
    names = (KEY_VARIABLE, SECRET_VARIABLE, ACCOUNT_VARIABLE)
    missing = [n for n in names if not secrets.get(n)]
    if missing:
        raise ConfigError(
            f"the webull broker needs {', '.join(missing)}; export them or put them in a .env "
            "file (app key/secret: Webull portal > OpenAPI management > API keys; account id: "
            "`fw broker check --broker webull` lists yours once key and secret are set).")
    return WebullCredentials(*(secrets.get(n) for n in names))


def http_status(exc: BaseException) -> int | None:
    """HTTP status of an SDK ``ServerException`` (None for network errors)."""
    return getattr(exc, "http_status", None)


def error_code(exc: BaseException) -> str:
    """Webull's ``error_code`` (``ORDER_NOT_FOUND``, ...) or the SDK's own code."""
    return str(getattr(exc, "error_code", "") or "")


def describe_error(exc: BaseException) -> str:
    status = http_status(exc)
    message = str(getattr(exc, "error_msg", "") or exc)[:200]
    return f"HTTP {status} {error_code(exc)} {message}" if status else f"{error_code(exc)} {message}"


class WebullConnection:
    """The SDK's REST operations on one ``ApiClient``, with our pacing and retry policy.

    Parameters
    ----------
    spec : WebullSpec
    credentials : WebullCredentials
    limiter : RateLimiter, optional
        Shared by trading and data (default: ``spec.max_requests_per_min``).
    sleep : callable
        Waits between retries (tests pass a recorder).
    home : Path, optional
        FW_HOME for the token folder (default: ``FW_HOME``).
    initialize : bool
        Run the token flow now (``False`` for ``fw broker check``, which runs it as a step).
    """

    def __init__(self, spec: WebullSpec, credentials: WebullCredentials,
                 limiter: RateLimiter | None = None,
                 sleep: Callable[[float], None] = _time.sleep, home: Path | None = None,
                 initialize: bool = True) -> None:
        self.sdk = load_sdk()
        self.spec, self.account_id, self._sleep = spec, credentials.account_id, sleep
        self.limiter = limiter or RateLimiter(limit=spec.max_requests_per_min, period=60.0)
        self.token_dir = token_dir(home)
        self.api = self.sdk.ApiClient(
            credentials.app_key, credentials.app_secret, spec.region, timeout=spec.timeout,
            connect_timeout=min(spec.timeout, 5.0), verify=spec.ca_bundle or True,
            auto_retry=False, token_check_duration_seconds=int(spec.token_wait),
            token_check_interval_seconds=int(spec.token_poll))
        self.api.set_token_dir(str(self.token_dir))
        self.api.add_endpoint(spec.region, spec.host)
        contain_logging()  # again: whatever the process did to the SDK's loggers since import
        self.accounts = self.sdk.AccountV2(self.api)
        self.orders = self.sdk.OrderOperationV3(self.api)
        self.market = self.sdk.MarketData(self.api)
        if initialize:
            self.initialize_token()

    @property
    def token_file(self) -> Path:
        return self.token_dir / "token.txt"

    def initialize_token(self) -> None:
        """Create or reuse the access token; waits up to ``spec.token_wait`` s for approval.

        Raises
        ------
        ConfigError
            The token is pending approval, invalid or expired (with what to do).
        BrokerUnavailableError
            Webull could not be reached.
        """
        delay = self.spec.backoff
        for attempt in range(1, self.spec.attempts + 1):
            try:
                self.request(lambda: self.sdk.ClientInitializer.initializer(self.api))
                return
            except (self.sdk.ServerException, self.sdk.ClientException) as exc:
                if not self.is_transient(exc) or attempt == self.spec.attempts:
                    raise self._token_error(exc) from exc
            self._sleep(delay)
            delay *= 2

    def _token_error(self, exc: BaseException) -> BrokerError:
        code = error_code(exc)
        if isinstance(exc, self.sdk.ServerException) and not self.is_transient(exc):
            return ConfigError(f"webull refused the token request: {describe_error(exc)}. Check "
                               f"{KEY_VARIABLE}/{SECRET_VARIABLE} and that they belong to the "
                               f"environment at {self.spec.host}.")
        if isinstance(exc, self.sdk.ServerException):
            return BrokerUnavailableError(f"webull: the token request failed "
                                          f"{self.spec.attempts} times (last: "
                                          f"{describe_error(exc)}); try again later.")
        stored = token_status(self.token_dir)
        if code == "SDK.HttpError":
            return BrokerUnavailableError(f"webull: {self.spec.host} is unreachable ({exc}); "
                                          "check the network and WEBULL_API_ENDPOINT.")
        if code == "ERROR_INIT_TOKEN" or (stored and stored[0] == "PENDING"):
            return ConfigError(
                f"webull: the access token is waiting for approval (status PENDING, stored in "
                f"{self.token_file}). Open the Webull app, confirm the OpenAPI login (SMS / 2FA "
                "prompt), then run `fw broker check --broker webull` again.")
        if code == "ERROR_CHECK_TOKEN":
            return ConfigError(
                f"webull: the stored access token is INVALID or EXPIRED (tokens last about 15 "
                f"days). Delete {self.token_file}, run `fw broker check --broker webull` to "
                "create a new one, and approve it in the Webull app.")
        return BrokerError(f"webull: token initialisation failed: {describe_error(exc)}")

    def request(self, call: Callable[[], Any]) -> Any:
        """One paced call; returns the SDK's ``requests.Response``."""
        self.limiter.acquire()
        try:
            return call()
        except self.sdk.ServerException as exc:
            if http_status(exc) == 429:
                # the SDK drops the reply's headers, so there is no Retry-After: pause every
                # caller for one backoff step (the caller's own retry doubles it from there)
                self.limiter.on_429(self.spec.backoff)
            raise

    def is_transient(self, exc: BaseException) -> bool:
        """Network trouble, timeouts, 408/429/5xx: worth another try."""
        if isinstance(exc, self.sdk.ServerException):
            return http_status(exc) in _TRANSIENT
        return isinstance(exc, self.sdk.ClientException) and error_code(exc) == "SDK.HttpError"

    def read(self, what: str, call: Callable[[], Any]) -> Any:
        """A read-only call with retries; returns the response."""
        delay = self.spec.backoff
        for attempt in range(1, self.spec.attempts + 1):
            try:
                return self.request(call)
            except (self.sdk.ServerException, self.sdk.ClientException) as exc:
                if not self.is_transient(exc):
                    raise
                reason = describe_error(exc)
            if attempt == self.spec.attempts:
                raise BrokerUnavailableError(
                    f"webull: {what} failed {attempt} times (last: {reason}) at "
                    f"{self.spec.host}; check the network and Webull's status, then restart "
                    "`fw paper` (it resumes from the store).")
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def read_json(self, what: str, call: Callable[[], Any]) -> Any:
        return self.read(what, call).json()

    def server_time(self) -> pd.Timestamp:
        """Webull's clock: the ``Date`` header of a cheap signed request (1 s resolution)."""
        response = self.read("GET /trading/accounts/list", self.accounts.get_account_list)
        try:
            return pd.Timestamp(parsedate_to_datetime(response.headers["Date"])).tz_convert("UTC")
        except (KeyError, TypeError, ValueError) as exc:
            raise BrokerError(f"webull sent no usable Date header ({exc}); the clock cannot be "
                              "checked. Use --max-clock-drift off to trust the local clock.") from exc


TOKEN_SUBDIR = "webull"
TOKEN_FILE = "token.txt"  # the SDK's file name inside the token directory
SDK_LOGGER = "webull"
TARGET_LOGGER = "live.webull.sdk"
_SECRET_FIELDS = re.compile(
    r"""(["']?(?:x-access-token|x-signature|x-app-key|token)["']?\s*[:=]\s*["']?)([^"',\s}]+)""",
    re.IGNORECASE,
)
# expected chatter: every non-2xx reply (the adapter reports those with context) and the note
# that an existing token file will be rewritten (it is, by design, on every start)
_QUIET = ("webull.core.client: ServerException occurred", "webull.core.client: get_response",
          "webull.core.http.initializer.token.token_storage: storage_token Note")
_contained = threading.Lock()
_state = {"done": False}


@dataclass(frozen=True)
class Sdk:
    """The SDK pieces fw uses (REST only)."""

    ApiClient: Any
    ClientInitializer: Any
    AccountV2: Any
    OrderOperationV3: Any
    MarketData: Any
    ServerException: type
    ClientException: type


def load_sdk() -> Sdk:
    """Import the SDK's REST modules (lazily: the ``webull`` extra) and contain its logging.

    Raises
    ------
    ConfigError
        When the SDK is not installed, with the command that installs it.
    """
    try:
        from webull.core.client import ApiClient
        from webull.core.exception.exceptions import ClientException, ServerException
        from webull.core.http.initializer.client_initializer import ClientInitializer
        from webull.data.quotes.market_data import MarketData
        from webull.trade.trade.v2.account_info_v2 import AccountV2
        from webull.trade.trade.v3.order_operation_v3 import OrderOperationV3
    except ImportError as exc:
        raise ConfigError(
            "the webull broker needs webull-openapi-python-sdk 3.0.4; install it with "
            "`pip install --no-deps webull-openapi-python-sdk==3.0.4 'jmespath<1,>=0.9.3' six "
            "'cachetools<6,>=5.2'` (its pinned protobuf/grpc extras are not needed for REST)."
        ) from exc
    contain_logging()
    return Sdk(ApiClient, ClientInitializer, AccountV2, OrderOperationV3, MarketData,
               ServerException, ClientException)


def scrub(text: str) -> str:
    """``text`` with access tokens, signatures and app keys masked."""
    return _SECRET_FIELDS.sub(lambda m: m.group(1) + "***", text)


class _Forward(logging.Handler):
    """Re-emits the SDK's records on ``live.webull.sdk``, scrubbed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._target = logging.getLogger(TARGET_LOGGER)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"{record.name}: {scrub(record.getMessage())}"
        except Exception:  # a malformed SDK log call must not break a request; keep the fact
            message = f"{record.name}: (unformattable SDK log record)"
        level = logging.DEBUG if message.startswith(_QUIET) else record.levelno
        if self._target.isEnabledFor(level):
            self._target.log(level, "%s", message)


def contain_logging() -> None:
    """Route the ``webull`` logger tree into ``live.webull.sdk``; idempotent, and re-applied
    at every connection: the SDK may add handlers or reset propagation when a client is made,
    and a raw SDK record reaching the root logger would carry unscrubbed request headers."""
    with _contained:
        # the handler webull.core.http.response adds at import (stderr, DEBUG, no propagation)
        noisy = logging.getLogger("webull.core.http.response")
        for handler in list(noisy.handlers):
            if type(handler) is logging.StreamHandler:
                noisy.removeHandler(handler)
        noisy.propagate = True
        noisy.setLevel(logging.NOTSET)
        root = logging.getLogger(SDK_LOGGER)
        if not any(isinstance(h, _Forward) for h in root.handlers):
            root.addHandler(_Forward())
        root.setLevel(logging.INFO)
        root.propagate = False  # forwarded already; never printed twice through the root logger
        _state["done"] = True


def token_dir(home: Path | None = None) -> Path:
    """``FW_HOME/webull``: where the SDK keeps the 2FA token file (created, mode 0700)."""
    from framework.paths import fw_home

    path = (home or fw_home()) / TOKEN_SUBDIR
    try:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)  # the token grants trading access until it expires
    except OSError as exc:
        raise ConfigError(f"cannot create the webull token folder {path}: {exc}; set FW_HOME to "
                          "a writable folder.") from exc
    return path


def token_status(directory: Path) -> tuple[str, str] | None:
    """(status, expires) stored in the token file, None when there is none."""
    path = directory / TOKEN_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the webull token file {path}: {exc}.") from exc
    return ((lines[2].strip() if len(lines) > 2 else "?"),
            (lines[1].strip() if len(lines) > 1 else "?"))
