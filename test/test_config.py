"""YAML configs: every knob loads, unknown keys and bad YAML name the file."""
from pathlib import Path

import pytest

from tasu.config import DecodeConfig, TrainConfig, load_config, save_config

TOP = Path(__file__).resolve().parents[1]


def test_recipe_configs_load_and_roundtrip(tmp_path):
    cfg = load_config(TOP / "egs/mini_en/conf/train.yaml")
    assert cfg.lora.r == 16 and "<speech>" in cfg.task_prompt and cfg.simulation.drop > 0
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert load_config(TOP / "egs/mini_en/conf/decode.yaml", DecodeConfig).batch_size > 0


def test_overrides_use_dotted_keys(tmp_path):
    cfg = load_config(TOP / "egs/mini_en/conf/train.yaml", overrides={"optim.max_steps": 7, "seed": 3})
    assert cfg.optim.max_steps == 7 and cfg.seed == 3


def test_unknown_key_and_bad_yaml(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("optim:\n  lrr: 1\n")
    with pytest.raises(ValueError, match=r"t.yaml.optim: unknown key 'lrr'"):
        load_config(p)
    p.write_text("optim: [unclosed\n")
    with pytest.raises(ValueError, match="t.yaml: invalid YAML"):
        load_config(p)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    p.write_text("")
    assert load_config(p) == TrainConfig()  # an empty file means all defaults
