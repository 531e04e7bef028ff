"""The training curves of an exp dir (``loss.png``)."""
from __future__ import annotations

import os
from pathlib import Path


def plot_history(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    tr = [h for h in history if "loss" in h]
    ax.plot([h["step"] for h in tr], [h["loss"] for h in tr], label="train")
    dv = [h for h in history if "dev_loss" in h]
    if dv:
        ax.plot([h["step"] for h in dv], [h["dev_loss"] for h in dv], "o-", label="dev")
    ax.set_xlabel("step")
    ax.set_ylabel("answer-token cross-entropy")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
