"""YAML configs: every knob loads, unknown keys and bad YAML name the file."""
from pathlib import Path

import pytest
import yaml

from tasu.config import DecodeConfig, TrainConfig, config_chain, load_config, save_config

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


def test_dataclass_defaults_are_the_documented_ones():
    """A key left out means what the reference recipe's config documents for it."""
    assert TrainConfig() == load_config(TOP / "egs/mini_en/conf/train.yaml")
    assert DecodeConfig() == load_config(TOP / "egs/mini_en/conf/decode.yaml", DecodeConfig)


def test_a_config_extends_its_base(tmp_path):
    (tmp_path / "tuning").mkdir()
    (tmp_path / "train.yaml").write_text("optim:\n  lr: 1.0e-3\n  max_steps: 50\nlora:\n  r: 4\n"
                                         "  target_modules: [q_proj, v_proj]\nseed: 3\n")
    (tmp_path / "tuning" / "mid.yaml").write_text("base: ../train.yaml\noptim:\n  max_steps: 70\n"
                                                  "lora:\n  target_modules: [o_proj]\n")
    (tmp_path / "tuning" / "top.yaml").write_text("base: mid.yaml\nseed: 9\n")
    cfg = load_config(tmp_path / "tuning" / "top.yaml")
    chain = [p.resolve() for p in config_chain(tmp_path / "tuning" / "top.yaml")]  # what tasu.sh re-decodes on
    assert chain == [tmp_path / "tuning" / "top.yaml", tmp_path / "tuning" / "mid.yaml", tmp_path / "train.yaml"]
    # mappings merge key by key through the chain; a list replaces the base's list
    assert (cfg.optim.lr, cfg.optim.max_steps, cfg.seed) == (1e-3, 70, 9)
    assert (cfg.lora.r, cfg.lora.target_modules) == (4, ["o_proj"])
    assert cfg.optim.batch_size == TrainConfig().optim.batch_size  # set nowhere: the default
    # overrides apply on top of the resolved chain; the saved config needs no base any more
    cfg = load_config(tmp_path / "tuning" / "top.yaml", overrides={"optim.lr": 2e-4})
    save_config(cfg, tmp_path / "saved.yaml")
    assert "base" not in (tmp_path / "saved.yaml").read_text() and load_config(tmp_path / "saved.yaml") == cfg


def test_base_errors_name_the_config(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("base: b.yaml\n")
    b.write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match=r"b.yaml: base 'a.yaml' makes a loop"):
        load_config(a)
    a.write_text("base: gone.yaml\nseed: 2\n")
    with pytest.raises(FileNotFoundError, match=r"a.yaml: base 'gone.yaml': config file not found"):
        load_config(a)
    a.write_text("base: [b.yaml]\n")
    with pytest.raises(ValueError, match=r"a.yaml: key 'base' must name a config file"):
        load_config(a)
    b.write_text("optim:\n  lrr: 1\n")  # an error inside the base names the config that was loaded
    a.write_text("base: b.yaml\n")
    with pytest.raises(ValueError, match=r"a.yaml.optim: unknown key 'lrr'"):
        load_config(a)


def test_recipe_variants_hold_only_their_differences():
    conf = TOP / "egs/mini_en/conf"
    train = load_config(conf / "train.yaml")
    ft = load_config(conf / "finetune.yaml")
    assert ft.paired_ratio == 0.5 and ft.optim.lr == 5e-4 and ft.optim.max_steps == 300
    assert (ft.lora, ft.projector, ft.simulation) == (train.lora, train.projector, train.simulation)
    mt = load_config(conf / "tuning/train_mt.yaml")
    assert mt.tasks == ["asr", "intent"] and mt.simulation == train.simulation
    rescore = load_config(conf / "decode_rescore.yaml", DecodeConfig)
    assert rescore.num_beams == 8 and rescore.acoustic_weight == 0.5 and rescore.psd_threshold == 0.5
    open_rescore = load_config(TOP / "egs/open_en/conf/decode_rescore.yaml", DecodeConfig)
    open_greedy = load_config(TOP / "egs/open_en/conf/decode.yaml", DecodeConfig)
    assert open_rescore.guard() == open_greedy.guard() and open_rescore.max_new_tokens == open_greedy.max_new_tokens


def test_a_packed_decode_config_is_stored_resolved(tmp_path):
    import yaml

    from tasu.zoo import _standalone_yaml

    (tmp_path / "decode.yaml").write_text("# greedy\nbatch_size: 4\nmax_new_tokens: 20\n")
    (tmp_path / "rescore.yaml").write_text("base: decode.yaml\nnum_beams: 8\nacoustic_weight: 0.5\n")
    assert _standalone_yaml(tmp_path / "decode.yaml") == tmp_path / "decode.yaml"  # no base: the file as is
    data = yaml.safe_load(_standalone_yaml(tmp_path / "rescore.yaml"))
    assert data == {"batch_size": 4, "max_new_tokens": 20, "num_beams": 8, "acoustic_weight": 0.5}


def test_every_nested_section_loads_as_its_dataclass(tmp_path):
    """A nested section written in YAML becomes its dataclass, not a bare dict (one registry in
    tasu.config must know each of them)."""
    import dataclasses

    nested = [f for f in dataclasses.fields(TrainConfig)
              if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory())]
    assert {f.name for f in nested} >= {"lora", "projector", "simulation", "optim", "word_lists"}
    for f in nested:
        first = dataclasses.fields(f.default_factory())[0]
        value = getattr(f.default_factory(), first.name)
        (tmp_path / "c.yaml").write_text(yaml.safe_dump({f.name: {first.name: value}}))
        got = getattr(load_config(tmp_path / "c.yaml"), f.name)
        assert got == f.default_factory() and type(got) is type(f.default_factory()), f.name
