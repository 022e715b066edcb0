"""Versioned models on disk: one folder per strategy, one sub-folder per trained version.

Layout under the root (``FW_HOME/models`` unless an explicit root is given)::

    <root>/<strategy folder>/v0001/model.joblib
    <root>/<strategy folder>/v0001/card.json
    <root>/<strategy folder>/roles.json          {"production": "v0001", "challenger": "v0002"}

The strategy folder is the strategy name reduced to ``[A-Za-z0-9_-]`` (file-path strategies such
as ``my/file.py:Cls`` are not safe folder names); the real name lives in every card.

A version is complete once its ``card.json`` exists: :meth:`ModelRegistry.save` claims the
version number with ``os.mkdir`` (atomic, so two processes never get the same number), writes
both files into a private temporary folder, fsyncs them and renames the model first and the card
last. Readers skip version folders without a card (a save in progress, or one that crashed).

``model.joblib`` is a pickle: loading it runs code, so only load registries you trust. Its sha256
is kept in the card and checked before every load, which catches corruption and hand edits.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from framework.errors import DataError, FwError, ParameterError, did_you_mean, unknown_name_message
from framework.paths import home_subdir

__all__ = [
    "MODEL_FILE",
    "CARD_FILE",
    "ROLES",
    "ROLES_FILE",
    "ModelCard",
    "ModelNotFoundError",
    "ModelRegistry",
    "strategy_folder_name",
    "version_label",
]

MODEL_FILE = "model.joblib"
CARD_FILE = "card.json"
ROLES_FILE = "roles.json"
ROLES: tuple[str, ...] = ("production", "challenger")

# distributions whose versions decide whether a pickled model loads and predicts the same
_LIBRARIES: tuple[str, ...] = ("numpy", "pandas", "scikit-learn", "joblib", "lightgbm", "xgboost")
_VERSION_RE = re.compile(r"v(\d{4,})")
_LOOSE_VERSION_RE = re.compile(r"v?(\d+)")
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_FOLDER = 80  # keeps paths well inside every filesystem's name limit
_MAX_CLAIMS = 10_000  # a bound on the version-claim loop, so a broken filesystem cannot spin
_TRAIN_HINT = "train one with `fw ml train {strategy}`"

# fields the registry fills in; callers of save() may not set them
_REGISTRY_FIELDS = frozenset(
    {"strategy", "version", "created_at", "fw_version", "library_versions", "model_sha256"}
)
_REQUIRED_FIELDS = frozenset({"train_start", "train_end", "n_samples", "features"})
_DICT_FIELDS = ("params", "hyperparameters", "metrics", "library_versions", "baseline")


class ModelNotFoundError(FwError, LookupError):
    """A strategy, version or role has no saved model; the message lists what exists."""


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to trust, reproduce and monitor one saved model.

    Attributes
    ----------
    strategy : str
        The real strategy name (not the sanitised folder name).
    version : str
        ``v0001``, ``v0002``, ... assigned by the registry.
    created_at : str
        UTC ISO-8601 time of the save.
    train_start, train_end : str
        ISO close times (UTC) of the first and last training bar; naive inputs are taken as UTC.
    n_samples : int
        Number of training samples.
    features : tuple of str
        Feature names in the column order the model expects.
    params : dict
        The strategy parameters the model was trained under.
    hyperparameters : dict
        The estimator's chosen hyper-parameters.
    metrics : dict
        In-sample and validation metrics, e.g. ``{"validation": {"auc": 0.55}, "in_sample": {}}``.
    data_hash : str or None
        A hash of the training data, so a retrain on other data is visible.
    fw_version : str or None
        Installed fw version, None when fw is not installed as a distribution.
    git_revision : str or None
        The source revision the model was trained from, when the caller knows it.
    library_versions : dict
        Versions of python and of the libraries the pickle depends on.
    model_sha256 : str
        sha256 of ``model.joblib``, checked on every load.
    baseline : dict
        The drift baseline (JSON), possibly empty.
    notes : str
        Free text.
    """

    strategy: str
    version: str
    created_at: str
    train_start: str
    train_end: str
    n_samples: int
    features: tuple[str, ...]
    model_sha256: str
    params: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_hash: str | None = None
    fw_version: str | None = None
    git_revision: str | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        # cards are read back from hand-editable JSON, so check types here rather than trust them
        if isinstance(self.features, list):
            object.__setattr__(self, "features", tuple(self.features))
        _check_card_types(self)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready copy (features as a list); mutating it leaves the card intact."""
        out = copy.deepcopy(asdict(self))
        out["features"] = list(self.features)
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str | os.PathLike[str] | None = None
    ) -> ModelCard:
        """Build a card from :meth:`to_dict` output; unknown or missing keys raise DataError.

        Parameters
        ----------
        data : mapping
            The card's fields.
        source : path-like, optional
            The file the data came from, named in error messages.
        """
        where = f"model card {source}" if source is not None else "model card"
        if not isinstance(data, Mapping):
            raise DataError(f"{where} holds {type(data).__name__}, expected a JSON object.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            others = f" (also {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else ""
            raise DataError(
                f"{where} has unknown key {unknown[0]!r}{others}."
                f"{did_you_mean(unknown[0], known)} It was written by a newer fw or edited by hand;"
                f" upgrade fw or remove the key. Valid keys: {', '.join(sorted(known))}."
            )
        required = {
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise DataError(
                f"{where} lacks required key(s) {', '.join(missing)}; retrain the model."
            )
        try:
            return cls(**dict(data))
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from exc


def _check_card_types(card: ModelCard) -> None:
    """Raise DataError when a card field has the wrong type (hand-edited or bad caller input)."""
    for name in ("strategy", "version", "created_at", "train_start", "train_end", "model_sha256"):
        value = getattr(card, name)
        if not isinstance(value, str) or not value:
            raise DataError(f"card field {name!r} is {value!r}; expected a non-empty string.")
    if _VERSION_RE.fullmatch(card.version) is None:
        raise DataError(f"card field 'version' is {card.version!r}; expected a label like 'v0001'.")
    if (
        isinstance(card.n_samples, bool)
        or not isinstance(card.n_samples, int)
        or card.n_samples < 0
    ):
        raise DataError(f"card field 'n_samples' is {card.n_samples!r}; expected an int >= 0.")
    if not all(isinstance(f, str) for f in card.features):
        raise DataError(f"card field 'features' is {card.features!r}; expected a list of strings.")
    for name in _DICT_FIELDS:
        if not isinstance(getattr(card, name), dict):
            raise DataError(
                f"card field {name!r} is {getattr(card, name)!r}; expected a JSON object."
            )
    for name in ("data_hash", "fw_version", "git_revision"):
        value = getattr(card, name)
        if value is not None and not isinstance(value, str):
            raise DataError(f"card field {name!r} is {value!r}; expected a string or null.")
    if not isinstance(card.notes, str):
        raise DataError(f"card field 'notes' is {card.notes!r}; expected a string.")


def strategy_folder_name(strategy: str) -> str:
    """Return the folder name for ``strategy``: only ``[A-Za-z0-9_-]``, at most 80 characters.

    Safe names are kept as they are. Others have unsafe characters replaced by ``_`` and a short
    hash of the real name appended, so ``a.b`` and ``a:b`` do not share a folder.
    """
    if not isinstance(strategy, str) or not strategy.strip():
        raise ParameterError(
            f"strategy name {strategy!r} is empty or not a string; pass the name used with fw ml train."
        )
    safe = _UNSAFE_RE.sub("_", strategy)
    if safe == strategy and len(safe) <= _MAX_FOLDER:
        return safe
    digest = hashlib.sha256(strategy.encode("utf-8")).hexdigest()[:10]
    return f"{safe[: _MAX_FOLDER - len(digest) - 1]}-{digest}"


def version_label(version: object) -> str | None:
    """Normalise ``3``, ``"3"``, ``"v3"`` or ``"v0003"`` to ``"v0003"``; None if not a version."""
    if isinstance(version, bool):
        return None
    if isinstance(version, int | np.integer):
        number = int(version)
    elif isinstance(version, str) and (m := _LOOSE_VERSION_RE.fullmatch(version.strip())):
        number = int(m.group(1))
    else:
        return None
    return f"v{number:04d}" if number >= 1 else None


def _parse_version_dir(name: str) -> int | None:
    """Version number of a folder name written by the registry, else None (temp dirs, strays)."""
    m = _VERSION_RE.fullmatch(name)
    if m is None or f"v{int(m.group(1)):04d}" != name:
        return None
    return int(m.group(1))


class ModelRegistry:
    """Versioned models for learned strategies, stored under ``root``.

    Parameters
    ----------
    root : Path, optional
        Registry folder. None means ``FW_HOME/models``, looked up on each use so a changed
        ``FW_HOME`` is respected.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._root = Path(root).expanduser() if root is not None else None

    @property
    def root(self) -> Path:
        """The registry folder (``FW_HOME/models`` unless given)."""
        return self._root if self._root is not None else home_subdir("models")

    # ----------------------------------------------------------------------------- writing
    def save(self, strategy: str, model: object, card_fields: Mapping[str, Any]) -> ModelCard:
        """Save ``model`` as the next version of ``strategy`` and return its card.

        Parameters
        ----------
        strategy : str
            The strategy's real name (any characters).
        model : object
            Anything joblib can pickle.
        card_fields : mapping
            ``train_start``, ``train_end``, ``n_samples`` and ``features`` (required) and
            optionally ``params``, ``hyperparameters``, ``metrics``, ``data_hash``,
            ``git_revision``, ``baseline``, ``notes``. The registry fills the rest.
        """
        fields_in = _check_card_fields(card_fields)
        folder = self._strategy_dir(strategy)
        folder.mkdir(parents=True, exist_ok=True)
        self._check_folder_owner(strategy, folder)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
        try:
            # pickle before claiming a number, so an unpicklable model leaves no empty version
            _write_model(model, tmp / MODEL_FILE)
            sha = _sha256(tmp / MODEL_FILE)
            version_dir = _claim_next_version(folder)
            try:
                card = ModelCard(
                    strategy=strategy,
                    version=version_dir.name,
                    created_at=datetime.now(UTC).isoformat(),
                    model_sha256=sha,
                    fw_version=_fw_version(),
                    library_versions=_library_versions(),
                    **fields_in,
                )
                _write_text(tmp / CARD_FILE, _card_json(card))
                # model first, card last: a card's presence means the version is complete
                os.replace(tmp / MODEL_FILE, version_dir / MODEL_FILE)
                os.replace(tmp / CARD_FILE, version_dir / CARD_FILE)
            except BaseException:
                shutil.rmtree(version_dir)  # release the claim; nothing can reference it yet
                raise
        finally:
            shutil.rmtree(tmp)
        _fsync_dir(version_dir)
        _fsync_dir(folder)
        return card

    def promote(self, strategy: str, version: str | int, role: str = "production") -> ModelCard:
        """Point ``role`` (``production`` or ``challenger``) of ``strategy`` at ``version``.

        Returns the promoted version's card. The two roles are independent: promoting the
        challenger to production leaves it the challenger too until :meth:`clear_role`.
        """
        _check_role(role)
        card = self.card(strategy, version)
        roles = self._read_roles(strategy)
        roles[role] = card.version
        self._write_roles(strategy, roles)
        return card

    def clear_role(self, strategy: str, role: str = "production") -> str | None:
        """Unset ``role`` for ``strategy``; return the version that held it (None if unset)."""
        _check_role(role)
        self._require_strategy(strategy)
        roles = self._read_roles(strategy)
        previous = roles.pop(role, None)
        if previous is not None:
            self._write_roles(strategy, roles)
        return previous

    # ----------------------------------------------------------------------------- reading
    def strategies(self) -> list[str]:
        """Real names of the strategies with at least one complete version, sorted."""
        root = self.root
        if not root.is_dir():
            return []
        names = set()
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            numbers = _complete_versions(folder)
            if numbers:
                names.add(self._read_card(folder / f"v{numbers[0]:04d}" / CARD_FILE).strategy)
        return sorted(names)

    def versions(self, strategy: str) -> list[ModelCard]:
        """Cards of every complete version of ``strategy``, oldest first (empty if none)."""
        folder = self._strategy_dir(strategy)
        if not folder.is_dir():
            return []
        cards = [
            self._read_card(folder / f"v{n:04d}" / CARD_FILE) for n in _complete_versions(folder)
        ]
        for card in cards:
            _check_owner(strategy, card, folder)
        return cards

    def card(self, strategy: str, version: str | int) -> ModelCard:
        """The card of ``strategy`` at ``version`` (``"v0003"``, ``"v3"``, ``3``)."""
        label = version_label(version)
        numbers = self._require_strategy(strategy)
        folder = self._strategy_dir(strategy)
        if label is None or int(label[1:]) not in numbers:
            available = ", ".join(f"v{n:04d}" for n in numbers)
            raise ModelNotFoundError(
                f"strategy {strategy!r} has no model version {version!r}; available versions: "
                f"{available}. Pick one of those, or {_TRAIN_HINT.format(strategy=strategy)}."
            )
        card = self._read_card(folder / label / CARD_FILE)
        _check_owner(strategy, card, folder)
        return card

    def role(self, strategy: str, role: str = "production") -> str | None:
        """The version holding ``role`` for ``strategy``, or None when the role is unset."""
        _check_role(role)
        self._require_strategy(strategy)
        return self._read_roles(strategy).get(role)

    def resolve(self, strategy: str, version: str | int | None = None) -> str:
        """The version :meth:`load` would use: ``version``, else production, else the latest."""
        if version is not None:
            return self.card(strategy, version).version
        numbers = self._require_strategy(strategy)
        production = self._read_roles(strategy).get("production")
        if production is None:
            return f"v{numbers[-1]:04d}"
        if int(production[1:]) not in numbers:
            raise ModelNotFoundError(
                f"the production role of strategy {strategy!r} points at {production}, which no "
                f"longer exists (available: {', '.join(f'v{n:04d}' for n in numbers)}); promote "
                f"another version with ModelRegistry.promote or clear the role."
            )
        return production

    def load(self, strategy: str, version: str | int | None = None) -> tuple[object, ModelCard]:
        """Load a model and its card after checking the model file's sha256.

        Parameters
        ----------
        strategy : str
            The strategy's real name.
        version : str or int, optional
            A version; None means the production version if one is set, else the latest.
        """
        card = self.card(strategy, self.resolve(strategy, version))
        path = self._strategy_dir(strategy) / card.version / MODEL_FILE
        if not path.is_file():
            raise DataError(
                f"model file {path} is missing although its card exists; the folder was edited "
                f"by hand. Retrain with `fw ml train {strategy}`."
            )
        actual = _sha256(path)
        if actual != card.model_sha256:
            raise DataError(
                f"model file {path} was modified or corrupted (sha256 {actual}, card says "
                f"{card.model_sha256}); retrain with `fw ml train {strategy}`."
            )
        return joblib.load(path), card

    # ----------------------------------------------------------------------------- helpers
    def _strategy_dir(self, strategy: str) -> Path:
        return self.root / strategy_folder_name(strategy)

    def _require_strategy(self, strategy: str) -> list[int]:
        """Complete version numbers of ``strategy``; ModelNotFoundError when there are none."""
        folder = self._strategy_dir(strategy)
        numbers = _complete_versions(folder) if folder.is_dir() else []
        if not numbers:
            known = self.strategies()
            listing = ", ".join(known) if known else "(none)"
            raise ModelNotFoundError(
                f"no saved model for strategy {strategy!r} in {self.root}."
                f"{did_you_mean(strategy, known)} Strategies with models: {listing}. "
                f"To create one, {_TRAIN_HINT.format(strategy=strategy)}."
            )
        return numbers

    def _check_folder_owner(self, strategy: str, folder: Path) -> None:
        numbers = _complete_versions(folder)
        if numbers:
            _check_owner(
                strategy, self._read_card(folder / f"v{numbers[-1]:04d}" / CARD_FILE), folder
            )

    @staticmethod
    def _read_card(path: Path) -> ModelCard:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"model card {path} is not valid JSON ({exc}); restore it or retrain the model."
            ) from exc
        return ModelCard.from_dict(data, source=path)

    def _roles_path(self, strategy: str) -> Path:
        return self._strategy_dir(strategy) / ROLES_FILE

    def _read_roles(self, strategy: str) -> dict[str, str]:
        path = self._roles_path(strategy)
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"roles file {path} is not valid JSON ({exc}); delete it and promote again."
            ) from exc
        if not isinstance(data, dict):
            raise DataError(
                f"roles file {path} holds {type(data).__name__}, expected a JSON object; delete it and promote again."
            )
        for role, label in data.items():
            if role not in ROLES or not isinstance(label, str) or _parse_version_dir(label) is None:
                raise DataError(
                    f"roles file {path} has entry {role!r}: {label!r}; expected roles "
                    f"{', '.join(ROLES)} mapped to versions like 'v0001'. Fix or delete the file."
                )
        return data

    def _write_roles(self, strategy: str, roles: Mapping[str, str]) -> None:
        # read-modify-write is not locked: concurrent promotes of one strategy may lose one update
        path = self._roles_path(strategy)
        tmp_fd, tmp_name = tempfile.mkstemp(prefix=".roles-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(tmp_fd, "w", encoding="utf-8") as fh:
                json.dump(dict(sorted(roles.items())), fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)


def _check_owner(strategy: str, card: ModelCard, folder: Path) -> None:
    """Two names can share a folder (case-insensitive filesystems, hash collisions): refuse."""
    if card.strategy != strategy:
        raise DataError(
            f"model folder {folder} belongs to strategy {card.strategy!r}, not {strategy!r}; the "
            f"two names map to the same folder. Rename one of the strategies."
        )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ParameterError(unknown_name_message("model role", str(role), ROLES))


def _complete_versions(folder: Path) -> list[int]:
    """Sorted version numbers in ``folder`` whose card exists (the save finished)."""
    numbers = []
    for entry in folder.iterdir():
        number = _parse_version_dir(entry.name)
        if number is not None and (entry / CARD_FILE).is_file():
            numbers.append(number)
    return sorted(numbers)


def _claim_next_version(folder: Path) -> Path:
    """Create and return the next free version folder; ``os.mkdir`` is the atomic claim."""
    # count unfinished folders too, so a save in progress elsewhere keeps its number
    taken = [n for n in map(_parse_version_dir, os.listdir(folder)) if n is not None]
    number = max(taken, default=0) + 1
    for _ in range(_MAX_CLAIMS):
        path = folder / f"v{number:04d}"
        try:
            os.mkdir(path)
        except FileExistsError:
            number += 1  # another process claimed it between our listing and mkdir
            continue
        return path
    raise DataError(f"could not claim a new version folder in {folder} after {_MAX_CLAIMS} tries.")


def _check_card_fields(card_fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise the caller's card fields into JSON-equal values."""
    if not isinstance(card_fields, Mapping):
        raise DataError(f"card_fields is {type(card_fields).__name__}; expected a mapping.")
    allowed = {f.name for f in fields(ModelCard)} - _REGISTRY_FIELDS
    for key in card_fields:
        if key in _REGISTRY_FIELDS:
            raise DataError(
                f"card field {key!r} is filled in by the registry; remove it from card_fields."
            )
        if key not in allowed:
            raise DataError(unknown_name_message("card field", str(key), allowed))
    missing = sorted(_REQUIRED_FIELDS - set(card_fields))
    if missing:
        raise DataError(f"card_fields lacks required field(s) {', '.join(missing)}.")
    out = dict(card_fields)
    out["train_start"] = _iso_time("train_start", card_fields["train_start"])
    out["train_end"] = _iso_time("train_end", card_fields["train_end"])
    if pd.Timestamp(out["train_start"]) > pd.Timestamp(out["train_end"]):
        raise DataError(
            f"train_start {out['train_start']} is after train_end {out['train_end']}; swap them."
        )
    features = card_fields["features"]
    if isinstance(features, str) or not isinstance(features, Sequence | np.ndarray | pd.Index):
        raise DataError(f"card field 'features' is {features!r}; expected a sequence of names.")
    out["features"] = tuple(str(f) for f in features)
    n = card_fields["n_samples"]
    if isinstance(n, np.integer):
        out["n_samples"] = int(n)
    for name in ("params", "hyperparameters", "metrics", "baseline"):
        if name in card_fields:
            # a JSON round trip now makes the returned card equal to the one read back later
            out[name] = _jsonable(name, card_fields[name])
    return out


def _iso_time(name: str, value: object) -> str:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"card field {name!r} is {value!r}; expected a bar close time.") from exc
    if pd.isna(stamp):
        raise DataError(f"card field {name!r} is {value!r}; expected a bar close time, not NaT.")
    # bars are labelled in UTC (framework.types); naive times are taken to be UTC already
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def _json_default(value: object) -> object:
    """Let numpy scalars and arrays through json.dumps as plain numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON serialisable")


def _jsonable(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise DataError(f"card field {name!r} is {type(value).__name__}; expected a dict.")
    try:
        return json.loads(json.dumps(dict(value), default=_json_default))
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"card field {name!r} cannot be stored as JSON ({exc}); convert it to plain "
            f"numbers, strings, lists and dicts."
        ) from exc


def _card_json(card: ModelCard) -> str:
    return json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n"


def _write_model(model: object, path: Path) -> None:
    with open(path, "wb") as fh:
        joblib.dump(model, fh)
        fh.flush()
        os.fsync(fh.fileno())


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable; directories cannot be opened on Windows."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _fw_version() -> str | None:
    try:
        return importlib.metadata.version("fw")
    except importlib.metadata.PackageNotFoundError:
        return None


def _library_versions() -> dict[str, str]:
    """Installed versions of python and the libraries a pickled model depends on."""
    out = {"python": platform.python_version()}
    for dist in _LIBRARIES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue  # optional libraries (lightgbm, xgboost) are simply not recorded
    return out
