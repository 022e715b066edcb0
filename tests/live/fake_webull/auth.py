"""Request signatures and the 2FA access-token flow of the fake Webull server.

Signature (as ``webull-openapi-python-sdk`` 3.0.4 computes it and Webull's "Signature" page
describes it): the headers ``x-app-key``, ``x-signature-algorithm``, ``x-signature-version``,
``x-signature-nonce``, ``x-timestamp`` and ``host`` (``host:port`` as sent), plus every query
parameter, lower-case names sorted, joined ``k=v`` with ``&`` after the path; when the request
has a body, ``&`` + upper-case hex SHA-256 of the body is appended. The whole string is
percent-encoded (nothing safe) and signed with HMAC-SHA256 keyed by ``app_secret + "&"``,
base64. Errors use Webull's shape ``{"error_code": ..., "message": ...}`` with HTTP 401.

Assumptions (not verifiable offline, stated here so a test never mistakes them for facts): a
timestamp more than 300 s from the server's wall clock is refused (``CLOCK_SKEW_EXCEEDED``); a
reused nonce is refused (``DUPPLICATED_REQUEST``, Webull's spelling); tokens live 15 days.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

APP_KEY = "fake-app-key"
APP_SECRET = "fake-app-secret"
ACCOUNT_ID = "FAKE0001"
SIGNED_HEADERS = ("x-app-key", "x-signature-algorithm", "x-signature-version",
                  "x-signature-nonce", "x-timestamp")
MAX_SKEW_SECONDS = 300.0
TOKEN_LIFETIME_MS = 15 * 24 * 3600 * 1000


class Refused(Exception):
    """An HTTP error in Webull's shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict:
        return {"error_code": self.code, "message": self.message}


def signature(secret: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
              host: str, body: bytes) -> str:
    """The signature a client holding ``secret`` sends for this request."""
    params = {name: headers.get(name, "") for name in SIGNED_HEADERS}
    params["host"] = host
    for key, value in query.items():
        params[key] = f"{params[key]}&{value}" if key in params else value
    text = path + "&" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    if body:
        text += "&" + hashlib.sha256(body).hexdigest().upper()
    digest = hmac.new((secret + "&").encode(), quote(text, safe="").encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


class Verifier:
    """Checks the signing headers of every request; remembers nonces."""

    def __init__(self, key: str, secret: str) -> None:
        self.key, self.secret = key, secret
        self._nonces: set[str] = set()
        self._lock = threading.Lock()

    def check(self, path: str, query: Mapping[str, str], headers: Mapping[str, str],
              body: bytes) -> None:
        """Raise :class:`Refused` unless the request is signed with our key and secret."""
        for name, code in (("x-app-key", "MISSING_APP_KEY"), ("x-signature", "MISSING_SIGNATURE"),
                           ("x-signature-algorithm", "MISSING_ALGORITHM"),
                           ("x-signature-nonce", "MISSING_NONCE"),
                           ("x-timestamp", "MISSING_TIMESTAMP")):
            if not headers.get(name):
                raise Refused(401, code, f"Header {name} is missing.")
        if headers["x-app-key"] != self.key:
            raise Refused(401, "UNAUTHORIZED", "Invalid credentials. Please verify your "
                          "credentials and ensure you are connecting to the correct environment.")
        if headers["x-signature-algorithm"] != "HMAC-SHA256":
            raise Refused(401, "SIGNATURE_ALGORITHM_NOT_SUPPORTED",
                          f"signature algorithm {headers['x-signature-algorithm']} is not supported")
        self._check_time(headers["x-timestamp"])
        expected = signature(self.secret, path, query, headers, headers.get("host", ""), body)
        if not hmac.compare_digest(expected, headers["x-signature"]):
            raise Refused(401, "UNAUTHORIZED", "Header x-signature is invalid.")
        with self._lock:
            if headers["x-signature-nonce"] in self._nonces:
                raise Refused(401, "DUPPLICATED_REQUEST", "Request denied for repeated requests.")
            self._nonces.add(headers["x-signature-nonce"])

    @staticmethod
    def _check_time(stamp: str) -> None:
        try:
            sent = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            raise Refused(401, "ILLEAGAL_TIMESTAMP", f"x-timestamp {stamp!r} format error.") from None
        if abs(sent - time.time()) > MAX_SKEW_SECONDS:
            raise Refused(401, "CLOCK_SKEW_EXCEEDED",
                          "Request rejected, x-timestamp clock offset exceeds maximum limit.")


@dataclass
class Token:
    value: str
    expires_ms: int
    status: str = "PENDING"
    checks: int = 0


@dataclass
class TokenBook:
    """Tokens issued by ``/auth/tokens/create`` and their approval state.

    ``approval``: ``"auto"`` creates tokens already NORMAL (a user who approved earlier);
    ``"manual"`` leaves them PENDING until :meth:`approve_all` or until ``approve_after_checks``
    check calls were made. ``expire_all()`` makes every token EXPIRED.
    """

    approval: str = "auto"
    approve_after_checks: int | None = None
    tokens: dict[str, Token] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def create(self, given: str | None) -> dict:
        with self._lock:
            token = self.tokens.get(given or "")
            if token is None or token.status in ("INVALID", "EXPIRED"):
                token = Token(uuid.uuid4().hex, int(time.time() * 1000) + TOKEN_LIFETIME_MS,
                              "NORMAL" if self.approval == "auto" else "PENDING")
                self.tokens[token.value] = token
            return self._wire(token)

    def check(self, given: str | None) -> dict:
        with self._lock:
            token = self.tokens.get(given or "")
            if token is None:
                return {"token": given or "", "expires": 0, "status": "INVALID"}
            token.checks += 1
            if (token.status == "PENDING" and self.approve_after_checks is not None
                    and token.checks >= self.approve_after_checks):
                token.status = "NORMAL"
            return self._wire(token)

    def valid(self, given: str | None) -> bool:
        with self._lock:
            token = self.tokens.get(given or "")
            return token is not None and token.status == "NORMAL"

    def approve_all(self) -> None:
        """The user confirms every pending login in the Webull app."""
        with self._lock:
            for token in self.tokens.values():
                if token.status == "PENDING":
                    token.status = "NORMAL"

    def expire_all(self) -> None:
        with self._lock:
            for token in self.tokens.values():
                token.status = "EXPIRED"

    @staticmethod
    def _wire(token: Token) -> dict:
        return {"token": token.value, "expires": token.expires_ms, "status": token.status}
