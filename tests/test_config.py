from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from segrt.config import load_config
from segrt.errors import ConfigError
from segrt.realtime.config import RunConfig
from segrt.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Inner:
    size: tuple[int, int]


@dataclass(frozen=True)
class Outer:
    name: str
    rate: float = 1.0
    mode: Literal["a", "b"] = "a"
    inner: Inner | None = None


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_valid_config_loads_frozen_and_typed(tmp_path):
    cfg = load_config(write(tmp_path, "name: x\nrate: 2\ninner: {size: [3, 4]}\n"), Outer)
    assert cfg == Outer("x", 2.0, "a", Inner((3, 4)))
    assert isinstance(cfg.rate, float)
    with pytest.raises(AttributeError):
        cfg.name = "y"  # frozen


@pytest.mark.parametrize("text, fragment", [
    ("name: x\nrat: 2\n", "unknown key 'rat'"),
    ("name: 3\n", "key 'name': expected str, got int 3"),
    ("rate: 1\n", "missing required key 'name'"),
    ("name: x\nmode: c\n", "key 'mode': expected one of 'a', 'b'"),
    ("name: x\nmode: off\n", "YAML read on/off/yes/no as a boolean: quote the value"),
    ("name: x\ninner: {size: [1]}\n", "key 'inner.size': expected 2 items"),
    ("name: x\ninner: {size: [1, 2], extra: 1}\n", "unknown key 'inner.extra'"),
    ("name: x\nrate: true\n", "key 'rate': expected float, got bool"),
    ("- a\n- b\n", "top level must be a mapping"),
    ("name: [x\n", "not valid YAML"),
])
def test_bad_config_names_file_and_key(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, Outer)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_model_args_mapping_is_typed(tmp_path):
    cfg = load_config(write(tmp_path, "model: unet\nmodel_args: {base: 32, bilinear: true, backbone: r}\n"),
                      TrainConfig)
    assert cfg.model_args == {"base": 32, "bilinear": True, "backbone": "r"}
    with pytest.raises(ConfigError, match=r"key 'model_args.base': expected str or int or float or bool or tuple"):
        load_config(write(tmp_path, "model: unet\nmodel_args: {base: {a: 1}}\n"), TrainConfig)
    with pytest.raises(ConfigError, match=r"key 'model_args.decoder': expected str or int or float or bool or tuple"):
        load_config(write(tmp_path, "model: unet\nmodel_args: {decoder: [1, a]}\n"), TrainConfig)
    # a list of integers (e.g. decoder widths) is an argument too, as a tuple
    cfg = load_config(write(tmp_path, "model: unet_resnet34\nmodel_args: {decoder: [64, 32]}\n"), TrainConfig)
    assert cfg.model_args == {"decoder": (64, 32)}


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "nope.yaml", Outer)


def test_overrides_win_and_none_is_ignored(tmp_path):
    cfg = load_config(write(tmp_path, "name: x\nrate: 2\n"), Outer, {"rate": 5.0, "mode": None})
    assert cfg.rate == 5.0 and cfg.mode == "a"


def test_range_checks_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.yaml: key 'alpha' must be >= 0.0 and <= 1.0"):
        load_config(write(tmp_path, "alpha: 1.5\n"), RunConfig)


def test_train_input_size_must_be_multiple_of_32(tmp_path):
    with pytest.raises(ConfigError, match="multiple of 32"):
        load_config(write(tmp_path, "model: fastscnn\ninput_width: 380\n"), TrainConfig)


@pytest.mark.parametrize("path, cls", [
    *[(p, TrainConfig) for p in sorted((REPO / "configs" / "train").glob("*.yaml"))],
    *[(p, RunConfig) for p in sorted((REPO / "configs" / "run").glob("*.yaml"))],
])
def test_shipped_configs_load(path, cls):
    assert isinstance(load_config(path, cls), cls)
