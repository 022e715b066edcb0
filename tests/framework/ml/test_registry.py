"""The on-disk model registry: versions, roles, integrity checks, concurrency, unsafe names."""

from __future__ import annotations

import importlib.metadata
import json
import multiprocessing
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from framework.errors import DataError, FwError, ParameterError
from framework.ml.registry import (
    CARD_FILE,
    MODEL_FILE,
    ROLES_FILE,
    ModelCard,
    ModelNotFoundError,
    ModelRegistry,
    strategy_folder_name,
    version_label,
)

FEATURES = ("ret_1", "ret_5", "vol_20")


def _fields(**overrides):
    base = {
        "train_start": "2020-01-02T21:00:00+00:00",
        "train_end": "2022-12-30T21:00:00+00:00",
        "n_samples": 200,
        "features": FEATURES,
        "params": {"horizon": 5},
        "hyperparameters": {"C": 0.1},
        "metrics": {"validation": {"auc": 0.55}, "in_sample": {"auc": 0.61}},
        "data_hash": "abc123",
        "baseline": {"psi_bins": [0.1, 0.2]},
        "notes": "test",
    }
    base.update(overrides)
    return base


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    return LogisticRegression(C=0.1).fit(x, y), x


@pytest.fixture
def reg(tmp_path):
    return ModelRegistry(tmp_path / "models")


def test_round_trip_gives_identical_predictions(reg, fitted):
    model, x = fitted
    card = reg.save("ml_logit", model, _fields())
    loaded, loaded_card = reg.load("ml_logit")
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded_card == card
    folder = reg.root / "ml_logit" / "v0001"
    assert (folder / MODEL_FILE).is_file() and (folder / CARD_FILE).is_file()
    assert card.version == "v0001" and card.strategy == "ml_logit"
    assert card.features == FEATURES and card.n_samples == 200
    assert re.fullmatch(r"[0-9a-f]{64}", card.model_sha256)
    assert card.created_at.endswith("+00:00")
    # nothing but the finished version is left behind (no temp folders)
    assert sorted(p.name for p in (reg.root / "ml_logit").iterdir()) == ["v0001"]


def test_card_records_environment(reg, fitted):
    card = reg.save("s", fitted[0], _fields())
    assert card.library_versions["numpy"] == np.__version__
    assert card.library_versions["scikit-learn"] == importlib.metadata.version("scikit-learn")
    assert "joblib" in card.library_versions and "python" in card.library_versions
    assert card.fw_version == importlib.metadata.version("fw")
    assert card.git_revision is None
    assert reg.save("s", 1, _fields(git_revision="deadbeef")).git_revision == "deadbeef"


def test_versions_increase_and_sort(reg, fitted):
    labels = [reg.save("s", fitted[0], _fields(notes=str(i))).version for i in range(3)]
    assert labels == ["v0001", "v0002", "v0003"]
    cards = reg.versions("s")
    assert [c.version for c in cards] == labels
    assert [c.notes for c in cards] == ["0", "1", "2"]
    assert reg.card("s", 2) == reg.card("s", "v2") == reg.card("s", "v0002") == cards[1]
    assert reg.versions("never_trained") == []
    assert reg.strategies() == ["s"]


def test_load_default_is_production_else_latest(reg):
    for value in ("a", "b", "c"):
        reg.save("s", {"value": value}, _fields())
    assert reg.load("s")[0] == {"value": "c"}
    reg.promote("s", "v0001")
    assert reg.resolve("s") == "v0001"
    model, card = reg.load("s")
    assert model == {"value": "a"} and card.version == "v0001"
    assert reg.load("s", "v0002")[0] == {"value": "b"}
    reg.clear_role("s")
    assert reg.load("s")[1].version == "v0003"


def test_roles(reg):
    for value in range(3):
        reg.save("s", value, _fields())
    assert reg.role("s", "production") is None and reg.role("s", "challenger") is None
    assert reg.promote("s", 2, "production").version == "v0002"
    reg.promote("s", "v3", role="challenger")
    assert reg.role("s", "production") == "v0002"
    assert reg.role("s", "challenger") == "v0003"
    on_disk = json.loads((reg.root / "s" / ROLES_FILE).read_text())
    assert on_disk == {"challenger": "v0003", "production": "v0002"}
    # challenger promoted to production; roles are independent until cleared
    reg.promote("s", "v0003")
    assert reg.role("s") == "v0003" and reg.role("s", "challenger") == "v0003"
    assert reg.clear_role("s", "challenger") == "v0003"
    assert reg.clear_role("s", "challenger") is None
    assert reg.role("s", "challenger") is None
    with pytest.raises(ParameterError, match="model role 'prod'.*production"):
        reg.promote("s", 1, role="prod")
    with pytest.raises(ModelNotFoundError, match="v0001, v0002, v0003"):
        reg.promote("s", 9)
    # no stray temp files from the atomic writes
    assert sorted(p.name for p in (reg.root / "s").iterdir()) == [
        ROLES_FILE,
        "v0001",
        "v0002",
        "v0003",
    ]


def test_production_pointing_at_removed_version(reg):
    reg.save("s", 1, _fields())
    reg.save("s", 2, _fields())
    reg.promote("s", 2)
    (reg.root / "s" / "v0002" / CARD_FILE).unlink()
    with pytest.raises(ModelNotFoundError, match="production role .* v0002.*available: v0001"):
        reg.load("s")


def test_corruption_detected(reg, fitted):
    reg.save("s", fitted[0], _fields())
    path = reg.root / "s" / "v0001" / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"was modified or corrupted.*fw ml train s"):
        reg.load("s")


def test_missing_model_file_detected(reg):
    reg.save("s", 1, _fields())
    (reg.root / "s" / "v0001" / MODEL_FILE).unlink()
    with pytest.raises(DataError, match="missing"):
        reg.load("s")


def test_unknown_strategy_and_version_messages(reg):
    reg.save("momentum_ml", 1, _fields())
    reg.save("momentum_ml", 2, _fields())
    with pytest.raises(ModelNotFoundError) as info:
        reg.load("momentum_m")
    message = str(info.value)
    assert "Did you mean 'momentum_ml'" in message
    assert "fw ml train momentum_m" in message
    assert isinstance(info.value, LookupError) and isinstance(info.value, FwError)
    with pytest.raises(ModelNotFoundError, match=r"v0007.*v0001, v0002.*fw ml train momentum_ml"):
        reg.load("momentum_ml", "v0007")
    with pytest.raises(ModelNotFoundError, match="'latest'"):
        reg.card("momentum_ml", "latest")
    with pytest.raises(ModelNotFoundError, match=r"\(none\)"):
        ModelRegistry(reg.root.parent / "empty").role("x")


def test_card_json_round_trip(reg, fitted):
    card = reg.save("s", fitted[0], _fields())
    text = json.dumps(card.to_dict())
    assert ModelCard.from_dict(json.loads(text)) == card
    # to_dict is a copy: mutating it does not reach the card
    d = card.to_dict()
    d["metrics"]["validation"]["auc"] = 0.99
    assert card.metrics["validation"]["auc"] == 0.55
    on_disk = json.loads((reg.root / "s" / "v0001" / CARD_FILE).read_text())
    assert on_disk == card.to_dict()


def test_card_with_unknown_key_names_key_and_file(reg):
    reg.save("s", 1, _fields())
    path = reg.root / "s" / "v0001" / CARD_FILE
    data = json.loads(path.read_text())
    data["colour"] = "blue"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}.*unknown key 'colour'"):
        reg.card("s", 1)


def test_card_from_dict_rejects_missing_and_bad_values(reg):
    good = reg.save("s", 1, _fields()).to_dict()
    missing = {k: v for k, v in good.items() if k != "model_sha256"}
    with pytest.raises(DataError, match="model_sha256"):
        ModelCard.from_dict(missing, source="x.json")
    with pytest.raises(DataError, match="x.json.*n_samples"):
        ModelCard.from_dict({**good, "n_samples": "many"}, source="x.json")
    with pytest.raises(DataError, match="version"):
        ModelCard.from_dict({**good, "version": "1"})
    with pytest.raises(DataError, match="metrics"):
        ModelCard.from_dict({**good, "metrics": [1, 2]})
    with pytest.raises(DataError, match="JSON object"):
        ModelCard.from_dict([1, 2])
    path = reg.root / "s" / "v0001" / CARD_FILE
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        reg.card("s", 1)


def test_card_fields_validated_and_normalised(reg):
    with pytest.raises(DataError, match="'version' is filled in by the registry"):
        reg.save("s", 1, _fields(version="v0009"))
    with pytest.raises(DataError, match="unknown card field 'featurs'"):
        reg.save("s", 1, {**_fields(), "featurs": ["a"]})
    no_features = {k: v for k, v in _fields().items() if k != "features"}
    with pytest.raises(DataError, match="features"):
        reg.save("s", 1, no_features)
    with pytest.raises(DataError, match="after train_end"):
        reg.save("s", 1, _fields(train_start="2023-01-01", train_end="2022-01-01"))
    with pytest.raises(DataError, match="cannot be stored as JSON"):
        reg.save("s", 1, _fields(params={"f": object()}))
    with pytest.raises(DataError, match="sequence of names"):
        reg.save("s", 1, _fields(features="ret_1"))
    assert reg.versions("s") == []  # failed saves leave no version behind
    card = reg.save(
        "s",
        1,
        _fields(
            n_samples=np.int64(5),
            features=np.array(["a", "b"]),
            metrics={"auc": np.float32(0.5), "hits": np.arange(2)},
            train_start=np.datetime64("2020-01-02T21:00"),
        ),
    )
    assert card.n_samples == 5 and card.features == ("a", "b")
    assert card.metrics == {"auc": 0.5, "hits": [0, 1]}
    assert card.train_start == "2020-01-02T21:00:00+00:00"  # naive times are taken as UTC
    assert card.train_end == "2022-12-30T21:00:00+00:00"
    assert reg.card("s", 1) == card
    with pytest.raises(DataError, match="'train_end' is 'soon'"):
        reg.save("s", 1, _fields(train_end="soon"))


def test_unpicklable_model_leaves_nothing(reg):
    reg.save("s", 1, _fields())
    with pytest.raises(Exception, match="lambda|pickle"):
        reg.save("s", lambda x: x, _fields())
    assert sorted(p.name for p in (reg.root / "s").iterdir()) == ["v0001"]
    assert reg.save("s", 2, _fields()).version == "v0002"


def test_unfinished_version_folder_is_skipped(reg):
    reg.save("s", 1, _fields())
    (reg.root / "s" / "v0002").mkdir()  # a save in progress elsewhere, or one that crashed
    (reg.root / "s" / ".tmp-stray").mkdir()
    assert [c.version for c in reg.versions("s")] == ["v0001"]
    assert reg.load("s")[1].version == "v0001"
    assert reg.save("s", 3, _fields()).version == "v0003"


def test_concurrent_thread_saves_get_distinct_versions(reg, fitted):
    n = 8
    barrier = threading.Barrier(n)
    results: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            results.append(reg.save("s", (fitted[0], i), _fields(notes=str(i))).version)
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [f"v{i:04d}" for i in range(1, n + 1)]
    for card in reg.versions("s"):
        model, _ = reg.load("s", card.version)
        assert str(model[1]) == card.notes


def _save_many(root: str, tag: int, count: int, queue) -> None:
    registry = ModelRegistry(root)
    queue.put([registry.save("s", (tag, i), _fields()).version for i in range(count)])


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_concurrent_process_saves_get_distinct_versions(reg):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_save_many, args=(str(reg.root), k, 5, queue)) for k in range(3)]
    for p in procs:
        p.start()
    labels = [label for _ in procs for label in queue.get(timeout=20)]
    for p in procs:
        p.join(timeout=20)
        assert p.exitcode == 0
    assert sorted(labels) == [f"v{i:04d}" for i in range(1, 16)]
    assert len(reg.versions("s")) == 15


def test_unsafe_names_are_sanitised(reg):
    names = ["strategies/my file.py:Cls", "a.b", "a:b", "..", "../../etc", "x" * 300]
    folders = set()
    for value, name in enumerate(names):
        card = reg.save(name, value, _fields())
        folder = strategy_folder_name(name)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", folder)
        assert (reg.root / folder / "v0001" / CARD_FILE).is_file()
        assert card.strategy == name
        assert reg.load(name) == (value, card)
        folders.add(folder)
    assert len(folders) == len(names)
    assert sorted(p.name for p in reg.root.iterdir()) == sorted(folders)  # none escaped the root
    assert reg.strategies() == sorted(names)
    assert strategy_folder_name("sma_cross-2") == "sma_cross-2"
    with pytest.raises(ParameterError, match="empty"):
        strategy_folder_name("  ")


def test_folder_collision_refused(reg):
    reg.save("s", 1, _fields())
    path = reg.root / "s" / "v0001" / CARD_FILE
    data = json.loads(path.read_text())
    data["strategy"] = "S"  # as if a case-insensitive filesystem merged 'S' and 's'
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="belongs to strategy 'S'"):
        reg.save("s", 2, _fields())
    with pytest.raises(DataError, match="belongs to strategy 'S'"):
        reg.versions("s")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=120), st.text(min_size=1, max_size=120))
def test_folder_names_safe_and_distinct(a, b):
    for name in (a, b):
        if name.strip():
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", strategy_folder_name(name))
    if a.strip() and b.strip() and a != b:
        assert strategy_folder_name(a) != strategy_folder_name(b)


def test_version_label():
    assert version_label(3) == version_label("3") == version_label("v3") == "v0003"
    assert version_label("v12345") == "v12345"
    assert version_label(np.int64(2)) == "v0002"
    for bad in (0, -1, "x", "v", True, None, 2.0):
        assert version_label(bad) is None


def test_fw_home_respected(monkeypatch, tmp_path):
    reg = ModelRegistry()
    card = reg.save("s", 1, _fields())
    from framework.paths import fw_home

    assert (fw_home() / "models" / "s" / card.version / CARD_FILE).is_file()
    # the root is looked up on each use, so a new FW_HOME takes effect without a new registry
    monkeypatch.setenv("FW_HOME", str(tmp_path / "other"))
    assert reg.root == tmp_path / "other" / "models"
    assert reg.versions("s") == []
    assert reg.save("s", 2, _fields()).version == "v0001"


def test_import_has_no_side_effects(tmp_path, monkeypatch):
    home = tmp_path / "untouched"
    monkeypatch.setenv("FW_HOME", str(home))
    ModelRegistry()  # constructing does not create anything either
    assert not home.exists()
    assert isinstance(ModelRegistry(tmp_path / "r").root, Path)
