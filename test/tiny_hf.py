"""Tiny randomly initialised HuggingFace CTC models saved as local dirs (offline; for tests)."""
from __future__ import annotations

import json
from pathlib import Path

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "|"]
UPPER = SPECIALS + list("ETAONIHSRDLUMWCFGYPBVKXJQZ'")
LOWER = SPECIALS + list("etaonihsrdlumwcfgypbvkxjqz'")


def tiny_ctc_dir(root: Path, kind: str = "wav2vec2", vocab: list[str] = UPPER, head: bool = True,
                 seed: int = 0) -> Path:
    """``save_pretrained`` dir of a 1-layer ``Wav2Vec2ForCTC``/``HubertForCTC`` (or a headless
    ``Wav2Vec2Model`` when ``head`` is false) with a character ``Wav2Vec2CTCTokenizer``."""
    import torch
    import transformers as tr

    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    tok = tr.Wav2Vec2CTCTokenizer(str(root / "vocab.json"), word_delimiter_token="|")
    fe = tr.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                     return_attention_mask=True)
    kw = dict(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=32, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
              num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
              do_stable_layer_norm=True, pad_token_id=tok.pad_token_id, mask_time_prob=0.0)
    torch.manual_seed(seed)
    if kind == "hubert":
        model = tr.HubertForCTC(tr.HubertConfig(**kw))
    elif head:
        model = tr.Wav2Vec2ForCTC(tr.Wav2Vec2Config(**kw))
    else:
        model = tr.Wav2Vec2Model(tr.Wav2Vec2Config(**kw))
    tr.utils.logging.disable_progress_bar()
    model.save_pretrained(root)
    tok.save_pretrained(root)
    fe.save_pretrained(root)
    return root
