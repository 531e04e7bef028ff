"""Training/decoding configuration: dataclasses loaded from (and saved to) YAML.

This module imports no other tasu module and no torch: every layer may read a config."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The configs of the modules that use them (tasu.llm, tasu.simulate, tasu.constrain) live here,
# so that reading a config never imports torch or transformers.

@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


@dataclass(frozen=True)
class SimulationConfig:
    drop: float = 0.05
    substitute: float = 0.08
    repeat: float = 0.04
    insert: float = 0.03
    wb_drop: float = 0.10
    wb_insert: float = 0.0     # P(a <wb> row after a unit that is not the last of its word)
    wb_split: float = 0.0      # P(a <wb> row where a word's spelling splits into two lexicon words
                               # (rail|road, a|head; tasu.simulate.compound_splits); needs the lexicon
    strength_min: float = 0.0
    strength_max: float = 2.0
    smooth_min: float = 0.05   # eps range: mass off the top unit
    smooth_max: float = 0.5
    competitors: int = 2       # units sharing eps besides the uniform floor
    floor: float = 0.1         # share of eps spread uniformly over active units
    same_class: float = 0.7    # P(a substitute is of the same class)
    classes: str = "manner"    # substitution classes: "vowel" (vowel/consonant) or "manner"
    true_competitor: float = 0.5   # P(a substituted row keeps the replaced unit as runner-up)
    sub_smooth_min: float | None = 0.2  # eps range of substituted rows (None: smooth_*)
    sub_smooth_max: float | None = 0.7
    confusions: str | None = None  # confusion table file (ref hyp count lines; <eps>: deletion/insertion)
    confusion_weight: float = 1.0  # P(a substitute is drawn from the table, for units it covers)
    confusion_min: int = 3         # substitutions of a unit needed before its table row is used


@dataclass(frozen=True)
class GuardConfig:
    """Generation guards (decode config keys of the same names): an answer may have at most
    ``ceil(max_len_ratio * PSD rows) + max_len_offset`` tokens (``max_len_ratio`` 0: only
    ``max_new_tokens``), and ``loop_repeats`` copies in a row of one n-gram end it (0: off)."""

    max_len_ratio: float = 0.0
    max_len_offset: int = 8
    loop_repeats: int = 0


@dataclass
class ProjectorConfig:
    """The projector family (tasu.projector.PROJECTORS); keys a kind does not use are ignored."""
    kind: str = "linear_silu"     # linear_silu, stack, conv1d, qformer, cross_attention, lego
    hidden: int = 1024            # hidden size of linear_silu, stack, conv1d
    init: str = "spelling"        # "spelling": warm start towards letter embeddings; "random"
    init_steps: int = 400
    stride: int = 2               # stack / conv1d: k rows in, one out (ceil(L / k) outputs)
    heads: int = 4                # attention heads of qformer and cross_attention
    qformer_layers: int = 2
    qformer_hidden: int = 256
    qformer_queries: int = 2      # learned queries (per window, or per utterance when qformer_window: 0)
    qformer_window: int = 4       # rows per window (SALMONN-style); 0: one fixed set of queries per utterance
    lego_map: str = "lowrank"     # lego: "shared" (units are LLM tokens) or "lowrank" (learned map, see LegoProjector)
    lego_rank: int = 256          # lego lowrank: latent token distributions between units and the LLM vocabulary


@dataclass
class OptimConfig:
    lr: float = 1e-3
    projector_lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
    max_steps: int = 1100
    batch_size: int = 8           # sentences per update, over all ranks and micro-batches
    grad_accum: int = 1           # micro-batches per rank per update (batch_size / (ranks * grad_accum) each)
    # > 0: batches bounded by size, as ESPnet's batch_bins and lhotse's max_duration: a batch holds
    # at most this many padded positions (examples x the longest one's units + answer tokens),
    # batch_size at most; 0: always batch_size sentences. Text-only sentences only.
    max_batch_positions: int = 0
    grad_clip: float = 1.0


@dataclass
class WordListConfig:
    """Word lists for an open vocabulary: a share of each batch's text-only examples are random
    sequences of lexicon words, drawn uniformly over the lexicon (rare words as often as common
    ones), their units from the lexicon (hama: ``--lexicon``), the answer the words themselves.
    Sentences teach a word as often as the text uses it; in egs/open_en, words seen 10-99 times
    in the training pool were misread 67 % of the time by a model that had read 25 k sentences."""

    share: float = 0.0            # of the text-only examples in a batch (0: sentences only)
    min_words: int = 4
    max_words: int = 12


@dataclass
class TrainConfig:
    """Every training knob. The defaults are the documented ones: a config that leaves a key out
    gets what ``egs/mini_en/conf/train.yaml`` writes for it (a test keeps the two equal)."""

    # CTC encoder spec (tasu.encoders.build_encoder: hama, hf:<dir or hub id>, espnet:<zip or dir>,
    # sensevoice:<dir>) whose units the projector reads; inference (tasu-infer) runs this one
    encoder: str = "hama"
    llm: str = "smollm2-135m-instruct"  # HF dir, hub id (owner/name), .gguf file, or a wheel name
    finetune: str = "lora"        # "lora" (adapters), "full" (every LLM weight) or "none" (frozen)
    lora: LoraConfig = field(default_factory=LoraConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    system_prompt: str = "Transcribe."
    task_prompt: str = "<speech>"
    # bf16 autocast of the LLM forward: "auto" (where the device has native bf16 kernels:
    # CUDA with bf16, CPUs with AVX512-BF16/AMX; float32 elsewhere), "bf16" (always), "none"
    amp: str = "auto"
    # dtype the frozen LLM weights are loaded in: float32, bfloat16, float16 (GPU only), or auto
    # (bfloat16 under bf16 autocast, else float32). Trainable weights (projector, LoRA, every LLM
    # weight with finetune: full) are float32 whatever this says.
    llm_dtype: str = "auto"
    # how the LLM computes (same function, chosen for speed; python -m tasu.bin.benchmark --compare
    # measures them): attention kernel "auto" (eager matmuls on the CPU, sdpa on a GPU), "eager" or
    # "sdpa"; fused_lora: LoRA layers in the autocast dtype, scaled at rank r (peft's forward
    # otherwise); share_prefix: the prompt's prefix through the LLM once a training batch;
    # compile: torch.compile each decoder layer for training (about 45 s once, on 2 cores)
    attention: str = "auto"
    fused_lora: bool = True
    share_prefix: bool = True
    compile: bool = False
    # prompt format: "chat" (the tokenizer's chat template), "plain" (system\nprompt\nAnswer:,
    # for base models) or "auto" (chat when the tokenizer has a chat template, else plain)
    template: str = "auto"
    seed: int = 1
    log_interval: int = 20
    save_interval: int = 200
    keep_checkpoints: int = 2
    dev_interval: int = 200
    dev_utts: int = 48
    # Fraction of training sentences whose words are shuffled (units and answer alike):
    # the LM prior cannot guess those, so the model must read the speech.
    shuffle_words: float = 0.15
    word_lists: WordListConfig = field(default_factory=WordListConfig)
    # Training text: 0 holds the text-only examples in memory (about 0.14 GB per million words);
    # N converts the units and text tables once into shards of N examples under <expdir>/shards
    # and reads one shard at a time (tasu.shards), for text that does not fit in memory.
    shard_size: int = 0
    # Noise curriculum: simulation noise grows linearly from 0 to its configured level
    # over this many steps (0: full noise from the start).
    noise_warmup_steps: int = 200
    # Simulated rows as dense [L, V] arrays or sparse (ids, weights, floor); "auto": sparse
    # when the inventory has more than 1024 units and the projector takes sparse rows.
    sim_format: str = "auto"
    # A step with a non-finite loss or gradient makes no update and is counted; this many
    # in a row stop the run with an error.
    max_bad_steps: int = 5
    # A time budget in minutes (0: none): the run stops after the step that reaches it, saves a
    # checkpoint and writes model.pt from it (the log says so); a re-run resumes towards max_steps.
    max_minutes: float = 0.0
    # Stage 3 (paired fine-tuning): share of each batch taken from paired examples (real
    # PSD posteriors of audio with its transcript); the rest are text-only (simulated).
    paired_ratio: float = 0.0
    # Multi-task training: task names of the registry (tasks_file; null: tasu/conf/tasks.yaml).
    # Every training utterance with a target file entry of a task is an example of it; []:
    # transcription only, with task_prompt/system_prompt above.
    tasks: list[str] = field(default_factory=list)
    tasks_file: str | None = None
    # Start from this model's trainable weights (an exp dir, a packed zip or dir) instead of
    # a fresh projector warm start and fresh adapters; "" or null: from scratch.
    init: str | None = None


@dataclass
class DecodeConfig:
    batch_size: int = 16
    max_new_tokens: int = 48
    num_beams: int = 1
    psd_threshold: float = 0.5
    vocabulary: str | None = None  # word list: decode with these words only (closed vocabulary)
    # n-best rescoring by acoustic fit (tasu.rescore): > 0 keeps the num_beams answers of the
    # beam and picks the best LLM log-prob - acoustic_weight * (alignment cost of the answer's
    # units against the PSD rows); 0: the beam's best answer
    acoustic_weight: float = 0.0
    align_insert_cost: float = 2.0   # a PSD row no unit of the answer explains
    align_delete_cost: float = 5.0   # a unit of the answer no PSD row carries
    # a <wb> unit of the answer with no row, and a row's <wb> mass with no unit (None: the two costs
    # above); the encoder's word boundaries are its least sure output (tasu.rescore.edit_costs)
    align_wb_cost: float | None = None
    # n-best expansion by lexicon neighbours (tasu.expand): > 0 adds answers in which a span of
    # 1-2 words of the best one is swapped for one of this many lexicon words that fit its PSD
    # rows better by more than expand_margin (alignment cost), at most expand_max new answers an
    # input, scored by the LLM and rescored with the beams; needs acoustic_weight > 0 and the
    # training lexicon (tasu.bin.decode --lexicon); 0: off
    expand_per_span: int = 0
    expand_margin: float = 0.0
    expand_max: int = 16
    # rounds of expansion: 2 expands the rescorer's choice again where it is a new answer (two
    # swaps the first round's combined answer did not join, e.g. one that moved a neighbour's rows)
    expand_rounds: int = 1
    # the LLM's prior of each answer (its log-prob given the prompt with the speech left out,
    # SpeechLLM.score_prior) added to its log-prob with this weight before the rescorer chooses:
    # > 0 leans on the LLM's text knowledge ("witchcraft" over the encoder's "which craft"),
    # < 0 subtracts its internal language model (ILME); needs acoustic_weight > 0. 0: off
    prior_weight: float = 0.0
    # generation guards (tasu.constrain.GenerationGuard): at most ceil(max_len_ratio * PSD rows)
    # + max_len_offset answer tokens (0: max_new_tokens only); loop_repeats copies in a row of
    # one n-gram end the answer, and the copies are cut to one (0: off)
    max_len_ratio: float = 0.0
    max_len_offset: int = 8
    loop_repeats: int = 0
    # fold LoRA adapters into the LLM's frozen weights before the first answer (tasu.llm.merge_adapters):
    # fewer ops at every generated token; false keeps them apart (to compare, or to train the object after)
    merge_lora: bool = True
    # hotwords (tasu.hotwords: lists given by tasu-infer --hotwords/--hotwords_per_utt or
    # Speech2Text(hotwords=...)); they need acoustic_weight > 0. hotword_score: what each word of a
    # listed phrase adds to an answer's score before the rescorer chooses (a list line may set its
    # own); hotword_margin: a phrase is proposed for a span whose rows it fits at most this much
    # worse (alignment cost) than the span's words; hotword_max_edits (1 or 2): edits between the
    # rows' reading and the phrase's units that are looked up; hotword_max: new answers an input.
    # Score and margin chosen on arctic_dev with the biasing benchmark's lists (egs/open_en/RESULTS.md):
    # margin 3; with N = 100 lists, score 4 gave B-WER 27.8 %, 8 25.0 %, 16 20.5 %, 24 17.1 % (39.2 %
    # without lists), U-WER 8.6, 8.4, 8.3, 8.1 % (8.55 % without); with N = 1 000, 24 gave B 18.2, U 8.1 %
    hotword_score: float = 24.0
    hotword_margin: float = 3.0
    hotword_max_edits: int = 2
    hotword_max: int = 8
    # long inputs (tasu.segment): an input of more PSD rows than this is read in pieces of at most
    # this many, cut at rows the encoder reads as word boundaries, and the pieces' transcripts are
    # joined (tasks scored by WER/CER only: a translation or a label is never cut); 0: whole inputs
    segment_rows: int = 0

    def guard(self) -> GuardConfig:
        return GuardConfig(self.max_len_ratio, self.max_len_offset, self.loop_repeats)


def check_rescoring(cfg: DecodeConfig, num_beams: int, where: object) -> None:
    """ValueError naming ``where`` when ``acoustic_weight`` > 0 has no beam answers to re-rank
    (``num_beams``: the config's, or a command line's override)."""
    if cfg.expand_rounds < 1:
        raise ValueError(f"{where}: expand_rounds must be >= 1 (got {cfg.expand_rounds})")
    if cfg.expand_per_span > 0 and (cfg.expand_max < 1 or cfg.expand_margin < 0):
        raise ValueError(f"{where}: expand_max must be >= 1 and expand_margin >= 0 "
                         f"(got {cfg.expand_max}, {cfg.expand_margin:g})")
    if cfg.align_wb_cost is not None and cfg.align_wb_cost < 0:
        raise ValueError(f"{where}: align_wb_cost must be >= 0 or null, got {cfg.align_wb_cost:g}")
    if cfg.hotword_max_edits not in (1, 2) or cfg.hotword_max < 1 or cfg.hotword_margin < 0:
        raise ValueError(f"{where}: hotword_max_edits must be 1 or 2, hotword_max >= 1 and hotword_margin >= 0 "
                         f"(got {cfg.hotword_max_edits}, {cfg.hotword_max}, {cfg.hotword_margin:g})")
    if cfg.prior_weight != 0 and cfg.acoustic_weight <= 0:
        raise ValueError(f"{where}: prior_weight {cfg.prior_weight:g} weighs the answers the rescorer chooses "
                         f"from: it needs acoustic_weight > 0")
    if cfg.expand_per_span > 0 and cfg.acoustic_weight <= 0:
        raise ValueError(f"{where}: expand_per_span {cfg.expand_per_span} adds answers for the rescorer to choose "
                         f"from: it needs acoustic_weight > 0")
    if cfg.acoustic_weight > 0 and num_beams < 2 and cfg.expand_per_span <= 0:
        raise ValueError(f"{where}: acoustic_weight {cfg.acoustic_weight:g} rescores the beam's answers: "
                         f"it needs num_beams > 1 (got {num_beams})")


def _check_type(value: Any, ftype: str, where: str, key: str) -> Any:
    """``value`` if it fits a scalar field type (``int``, ``float``, ``str``, ``bool``, ``X | None``).

    A number written as a string (``1e-3``, which YAML 1.1 reads as a string) becomes a float;
    other field types (lists...) are not checked.
    """
    kinds = [t.strip() for t in str(ftype).split("|")]
    if value is None and "None" in kinds:
        return value
    is_num = isinstance(value, (int, float)) and not isinstance(value, bool)
    for kind in kinds:
        if (kind == "bool" and isinstance(value, bool)) or (kind == "str" and isinstance(value, str)) \
                or (kind == "int" and is_num and isinstance(value, int)) \
                or (kind == "float" and is_num):
            return value
        if kind == "float" and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    if any(k not in ("int", "float", "str", "bool", "None") for k in kinds):
        return value
    raise ValueError(f"{where}: key {key!r} must be {ftype}, got {type(value).__name__} {value!r}")


def _build(cls, data: dict[str, Any], where: str):
    """Instantiate a (nested) dataclass, rejecting unknown keys and ill-typed values with their YAML path."""
    if not isinstance(data or {}, dict):
        raise ValueError(f"{where}: expected a mapping of keys to values, got {type(data).__name__} {data!r}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in (data or {}).items():
        if k not in names:
            raise ValueError(f"{where}: unknown key {k!r} (known: {', '.join(names)})")
        ftype = names[k].type
        sub = {"LoraConfig": LoraConfig, "ProjectorConfig": ProjectorConfig,
               "SimulationConfig": SimulationConfig, "OptimConfig": OptimConfig,
               "WordListConfig": WordListConfig}.get(str(ftype))
        kwargs[k] = _build(sub, v, f"{where}.{k}") if sub else _check_type(v, str(ftype), where, k)
    return cls(**kwargs)


#: the key of a config that names the config it extends (a path relative to the config's dir)
BASE_KEY = "base"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: invalid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of keys to values, got {type(data).__name__} {data!r}")
    return data


def _merge(base: dict[str, Any], mine: dict[str, Any]) -> dict[str, Any]:
    """``mine`` over ``base``: mappings merge key by key, anything else (lists too) replaces."""
    out = dict(base)
    for k, v in mine.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_config_data(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML config as a mapping, with its ``base:`` chain resolved.

    ``base: <file>`` (relative to the config's own dir) makes the config hold only its
    differences from that one: mappings merge key by key, other values replace. A base may
    have a base; a loop or a missing base is an error naming the config that names it.
    """
    path = Path(path)
    data = _read_yaml(path)
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ValueError(f"{path}: key {BASE_KEY!r} must name a config file, got {base!r}")
    bpath = path.parent / base
    if bpath.resolve() in {p.resolve() for p in (*_seen, path)}:
        raise ValueError(f"{path}: {BASE_KEY} {base!r} makes a loop ({' -> '.join(map(str, (*_seen, path, bpath)))})")
    if not bpath.is_file():
        raise FileNotFoundError(f"{path}: {BASE_KEY} {base!r}: config file not found ({bpath})")
    return _merge(read_config_data(bpath, (*_seen, path)), data)


def config_chain(path: Path) -> list[Path]:
    """``path`` and the configs it extends (``base:``), nearest first."""
    chain = [Path(path)]
    while isinstance(base := (_read_yaml(chain[-1]).get(BASE_KEY)), str) and len(chain) < 64:
        chain.append(chain[-1].parent / base)
    return chain


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` command-line overrides -> ``{dotted key: YAML value}`` for :func:`load_config`;
    ValueError naming an item without ``=``."""
    out: dict[str, Any] = {}
    for kv in items:
        if "=" not in kv:
            raise ValueError(f"--override expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def load_config(path: Path, cls=TrainConfig, overrides: dict[str, Any] | None = None):
    """Load a YAML config into ``cls`` (its ``base:`` chain resolved, see :func:`read_config_data`);
    ``overrides`` use dotted keys (``optim.lr``)."""
    data = read_config_data(Path(path))
    for key, value in (overrides or {}).items():
        d = data
        *parents, last = key.split(".")
        for p in parents:
            d = d.setdefault(p, {})
        d[last] = value
    return _build(cls, data, str(path))


def save_config(cfg, path: Path) -> None:
    """``cfg`` as YAML, every key written out (non-ASCII prompts as they are)."""
    text = yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")


if __name__ == "__main__":  # `python -m tasu.config conf/x.yaml`: the files a config is made of, one a line
    import sys

    for p in config_chain(Path(sys.argv[1])):
        print(p)
