"""Secrets: credentials from the environment and ``.env`` files, never from YAML, never shown.

:func:`load_secrets` reads the known names from the environment and from ``.env`` files (current
directory, then ``FW_HOME/.env``) without touching ``os.environ``; :class:`Secrets` never prints a
value, and :func:`mask_secret` shows at most two characters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from dotenv import dotenv_values

from framework.errors import ConfigError, unknown_name_message
from framework.paths import fw_home

KNOWN_SECRETS: tuple[str, ...] = (
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "WEBULL_APP_KEY",
    "WEBULL_APP_SECRET",
    "WEBULL_ACCOUNT_ID",
    "FW_APPRISE_URLS",
)



@dataclass(frozen=True, repr=False)
class Secrets:
    """Credentials read from the environment and ``.env`` files; never printed.

    Attributes
    ----------
    values : mapping of str to str
        Set secrets by name (unset ones are absent). Not shown by ``repr``/``str``.
    sources : mapping of str to str
        Where each set secret came from: ``"environment"`` or a ``.env`` path.
    """

    values: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, name: str) -> str | None:
        """Return the secret ``name`` or ``None`` when unset; unknown names raise ConfigError."""
        if name not in KNOWN_SECRETS:
            raise ConfigError(unknown_name_message("secret", name, KNOWN_SECRETS))
        return self.values.get(name)

    def require(self, name: str) -> str:
        """Return the secret ``name``; raise ConfigError saying how to set it when unset."""
        value = self.get(name)
        if value is None:
            raise ConfigError(
                f"secret {name} is not set; export {name}=... or add it to .env in the current "
                f"directory or to {fw_home() / '.env'} (see .env.example)"
            )
        return value

    def masked(self) -> dict[str, str]:
        """Every known secret name mapped to a masked form (``AK****...``) or ``(not set)``."""
        return {name: mask_secret(self.values.get(name)) for name in KNOWN_SECRETS}

    def __repr__(self) -> str:
        present = [name for name in KNOWN_SECRETS if name in self.values]
        return f"Secrets(set={present})"

    __str__ = __repr__


def mask_secret(value: str | None) -> str:
    """Mask a secret: at most its first two characters, never its length; ``(not set)`` if empty.

    Short values (under 8 characters) show nothing, since two characters would reveal too much.
    """
    if not value:
        return "(not set)"
    return (value[:2] if len(value) >= 8 else "") + "****..."


def load_secrets(
    environ: Mapping[str, str] | None = None, dotenv_files: Sequence[str | Path] | None = None
) -> Secrets:
    """Read the known secrets; the process environment wins over ``.env`` files.

    Parameters
    ----------
    environ : mapping, optional
        Environment to read (default ``os.environ``, read only; never modified).
    dotenv_files : sequence of paths, optional
        ``.env`` files in priority order (default: ``./.env`` then ``FW_HOME/.env``).
        Missing files are skipped.
    """
    environ = os.environ if environ is None else environ
    files = [Path.cwd() / ".env", fw_home() / ".env"] if dotenv_files is None else dotenv_files
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for path in reversed([Path(p) for p in files]):  # lowest priority first, later ones overwrite
        if not path.is_file():
            continue
        try:
            parsed = dotenv_values(path, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; fix or remove that .env file") from exc
        for name in KNOWN_SECRETS:
            if parsed.get(name):
                values[name], sources[name] = parsed[name], str(path)
    for name in KNOWN_SECRETS:
        if environ.get(name, "").strip():
            values[name], sources[name] = environ[name].strip(), "environment"
    return Secrets(MappingProxyType(values), MappingProxyType(sources))
