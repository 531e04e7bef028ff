"""Speech2Text, the inference API, on a tiny random LLM and a stand-in encoder (fast; the real
model's pipeline is tested in test_zoo.py and by the README example in test_layout.py)."""
import numpy as np
import pytest
import soundfile as sf
import torch
from test_model import ToyTokenizer, V, tiny_model

from tasu.config import DecodeConfig, TrainConfig
from tasu.inference import Answer, Speech2Text
from tasu.model import SpeechLLM
from tasu.units import UnitInventory

UNITS = [f"u{i}" for i in range(V - 2)] + ["<wb>", "<blank>"]


class Tok(ToyTokenizer):
    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(97 + i % 26) for i in ids)


class StandIn:
    """An encoder whose frames alternate unit 1 and blank, 1 frame per 320 samples at 16 kHz;
    silence (all zeros) is all blank. It records the rates it was given."""

    sample_rate = 16000

    def __init__(self):
        self.inventory = UnitInventory(UNITS, "<blank>", "<wb>")
        self.rates = []

    def log_posteriors(self, wave, sample_rate):
        self.rates.append(sample_rate)
        n = max(1, len(wave) * self.sample_rate // sample_rate // 320)
        ids = [V - 1 if not np.any(wave) or t % 2 else 1 for t in range(n)]
        lp = np.full((n, V), -20.0, dtype=np.float32)
        lp[np.arange(n), ids] = 0.0
        return lp

    def text_to_units(self, text):
        return ["u1"] * len(text.split())


def s2t(**decode):
    model, _ = tiny_model()
    model.tokenizer = Tok()
    inv = UnitInventory(UNITS, "<blank>", "<wb>")
    return Speech2Text(model, TrainConfig(), inv, DecodeConfig(max_new_tokens=4, **decode), encoder=StandIn())


def test_waveforms_and_files_give_one_answer_each_in_order(tmp_path):
    s = s2t()
    wave = np.sin(np.arange(8000) / 5).astype(np.float32)
    sf.write(tmp_path / "a.wav", wave, 8000)
    texts = s([tmp_path / "a.wav", wave, np.zeros(4000, np.float32)], sample_rate=8000)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert texts[0] == texts[1] != ""       # the file and the same samples: the same answer
    assert texts[2] == ""                   # all blank after PSD: an empty answer, not an error
    assert s.encoder.rates == [8000, 8000, 8000]  # read at the file's rate, resampled by the encoder
    answers = s.answers([wave], sample_rate=8000)
    # 1 s of audio: 50 frames, unit 1 and blank by turns: 25 PSD rows; greedy keeps no n-best
    assert isinstance(answers[0], Answer) and answers[0].n_rows == 25 and answers[0].nbest == []
    # the seconds each stage took, summed over the calls (tasu-infer and tasu.bin.decode report them)
    assert set(s.timings) == {"encoder", "generate"} and all(v > 0 for v in s.timings.values())


def test_channels_last_audio_is_downmixed_and_other_shapes_refused():
    s = s2t()
    mono = np.sin(np.arange(3200) / 3).astype(np.float32)
    stereo = np.stack([mono, mono], axis=1)               # [samples, channels], as soundfile reads it
    assert np.array_equal(s.posteriors(stereo, 16000), s.posteriors(mono, 16000))
    with pytest.raises(ValueError, match=r"\[samples\] or \[samples, channels\]"):
        s.posteriors(stereo.T, 16000)                     # [channels, samples]
    with pytest.raises(ValueError, match="sample_rate"):
        s([mono])                                        # a waveform needs its rate


def test_rescoring_keeps_the_nbest_and_needs_beams():
    s = s2t(num_beams=3, acoustic_weight=0.5)
    a = s.answers([np.sin(np.arange(6400) / 5).astype(np.float32)], sample_rate=16000)[0]
    assert len(a.nbest) == 3 and a.text in [t for t, _ in a.nbest]
    assert {"encoder", "generate", "rescore"} <= set(s.timings)
    with pytest.raises(ValueError, match="rescore.yaml: acoustic_weight 0.5 .* needs num_beams > 1"):
        model, _ = tiny_model()
        Speech2Text(model, TrainConfig(), UnitInventory(UNITS, "<blank>", "<wb>"),
                    DecodeConfig(acoustic_weight=0.5), where="rescore.yaml")


def test_unknown_decoding_options_are_refused_before_loading():
    with pytest.raises(ValueError, match="options: unknown decoding key.*num_beam\\b"):
        Speech2Text.from_pretrained("no/such/model", options={"num_beam": 4})


def lora_s2t(merge_lora: bool, max_new_tokens: int = 6):
    """s2t() around a LoRA-adapted tiny LLM whose adapters are not zero (B is random)."""
    from peft import LoraConfig, get_peft_model

    from tasu.prompt import PromptTemplate

    model, _ = tiny_model()
    torch.manual_seed(1)
    llm = get_peft_model(model.llm, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    for n, p in llm.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.3)
    tpl = PromptTemplate.build(ToyTokenizer(), "Say:<speech>!", "sys")
    adapted = SpeechLLM(llm, model.projector, tpl, pad_id=0)
    adapted.tokenizer = Tok()
    return Speech2Text(adapted, TrainConfig(), UnitInventory(UNITS, "<blank>", "<wb>"),
                       DecodeConfig(max_new_tokens=max_new_tokens, merge_lora=merge_lora), encoder=StandIn())


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")  # peft reads it (see tasu.llm)
def test_lora_is_merged_once_before_answering_and_the_answers_stay():
    from peft.tuners.lora import LoraLayer

    waves = [np.sin(np.arange(n) / k).astype(np.float32) for n, k in ((6400, 3), (9600, 7), (3200, 2))]
    merged, apart = lora_s2t(True), lora_s2t(False)
    layers = [m for m in merged.model.llm.modules() if isinstance(m, LoraLayer)]
    assert len(layers) == 6 and not any(m.merged for m in layers)          # 2 layers x 3 targets; lazily
    before = {n: p.detach().clone() for n, p in merged.model.llm.named_parameters() if "base_layer" in n}
    answers = merged(waves, 16000)
    assert all(answers) and answers == apart(waves, 16000)
    assert all(m.merged for m in layers)
    assert not any(m.merged for m in apart.model.llm.modules() if isinstance(m, LoraLayer))
    changed = [n for n, p in merged.model.llm.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert len(changed) == 6                                   # W + scale * B A, in the adapted layers only
    # the logits of the merged and the separate model agree (float32)
    rows = [torch.rand(7, V)]
    with torch.inference_mode():
        x, mask, _ = merged.model.assemble(rows, [[5, 6, 2]])
        a = merged.model.llm(inputs_embeds=x, attention_mask=mask).logits
        x, mask, _ = apart.model.assemble(rows, [[5, 6, 2]])
        b = apart.model.llm(inputs_embeds=x, attention_mask=mask).logits
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert merged(waves, 16000) == apart(waves, 16000)                       # merged once: a second call adds nothing
    # the bare-LLM cascade takes the adapters out again
    texts = {"a": "some words", "b": "more"}
    assert merged.decode_texts(texts, adapters=False) == apart.decode_texts(texts, adapters=False)
