"""Where and in which precision a model runs: the device of a CLI and the bf16/float32 policy."""
from __future__ import annotations

import logging
import os

import torch

from tasu.config import TrainConfig

log = logging.getLogger(__name__)


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` has native bfloat16 matmul kernels.

    CUDA: what ``torch.cuda.is_bf16_supported`` says. CPU: AVX512-BF16 or AMX; without them
    (AVX2-only x86 such as AMD Zen 3, many cloud VMs) torch emulates bf16 matmuls about 50-100x
    slower than float32 (0.8 against 158 GFLOP/s measured on a 2-core EPYC), so autocast there
    would make training and decoding crawl. ``TASU_CPU_BF16=0`` in the environment answers no on
    any CPU: the float32 path of an AVX2-only machine, e.g. to run the test suite as it runs there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        if os.environ.get("TASU_CPU_BF16", "").lower() in ("0", "no", "off"):  # as on an AVX2-only CPU
            return False
        return any(getattr(torch.cpu, probe, lambda: False)()
                   for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


AMP_CHOICES = ("auto", "bf16", "none")


def llm_dtypes(cfg: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, torch.dtype]:
    """``(autocast dtype or None, dtype of the frozen LLM weights)`` from ``amp`` and ``llm_dtype``.

    ``amp: auto`` is bf16 autocast where the device has native bf16 kernels (:func:`fast_bf16`)
    and none elsewhere; ``amp: bf16`` forces it (with a warning where it is slow).
    ``llm_dtype: auto`` keeps the frozen weights in bf16 under bf16 autocast (no per-step casts)
    and in float32 otherwise. float16 weights need a GPU and no bf16 autocast.
    """
    if cfg.amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {cfg.amp!r}")
    fast = cfg.amp != "none" and fast_bf16(device)
    if cfg.amp == "bf16" and not fast:
        log.warning("amp: bf16 on a %s without native bf16 kernels: the LLM will run many times slower than "
                    "in float32; use amp: auto (bf16 only where it is fast) or amp: none", device.type)
    amp = torch.bfloat16 if cfg.amp == "bf16" or (cfg.amp == "auto" and fast) else None
    log.info("amp: %s on %s -> %s autocast", cfg.amp, device.type, "bf16" if amp is not None else "no")
    if cfg.llm_dtype == "auto":
        return amp, torch.bfloat16 if amp is not None else torch.float32
    weights = torch_dtype(cfg.llm_dtype)
    if weights == torch.float16 and device.type == "cpu":
        raise ValueError("llm_dtype: float16 needs a GPU (--ngpu 1): CPU half-precision kernels are slow or "
                         "missing; on the CPU use bfloat16 or float32")
    if weights == torch.float16 and amp is not None:
        raise ValueError("llm_dtype: float16 with amp: bf16 mixes two 16-bit types; use amp: none "
                         "(the LLM computes in float16) or llm_dtype: bfloat16")
    return amp, weights


def device_from_ngpu(ngpu: int) -> torch.device:
    """The device of a single-process CLI: ``cuda:<LOCAL_RANK>`` (``cuda:0`` outside torchrun)
    when ``ngpu`` > 0, else CPU; SystemExit with the reason when that GPU is not there."""
    if ngpu < 0:
        raise SystemExit(f"--ngpu must be >= 0, got {ngpu}")
    if ngpu > 0:
        if not torch.cuda.is_available():
            raise SystemExit(f"--ngpu {ngpu} but torch sees no CUDA device (torch {torch.__version__}); "
                             "use --ngpu 0 for the CPU")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise SystemExit(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices are visible")
        return torch.device("cuda", local)
    return torch.device("cpu")


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    """``float32``/``bfloat16``/``float16`` -> the torch dtype; anything else is an error."""
    if name not in DTYPES:
        raise ValueError(f"llm_dtype must be one of {', '.join(DTYPES)} (or auto), got {name!r}")
    return DTYPES[name]


_LIBC = None


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc's ``malloc_trim``; a no-op elsewhere).

    Generation allocates and frees many large, differently sized buffers (logits over the
    vocabulary, key/value caches of each batch); glibc keeps the freed pages, so a long
    decoding run's resident memory creeps up with the number of batches. Called once a batch.
    """
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def machine_summary() -> str:
    """What a run's numbers depend on, one line each: CPU model and its bf16 flags, thread count,
    torch and transformers versions, and the precision ``amp: auto`` picks here (tools/test.sh
    prints it first, so a red run on another machine can be read)."""
    import platform

    import transformers

    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    bf16 = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    fast = fast_bf16(torch.device("cpu"))
    forced = f", TASU_CPU_BF16={os.environ['TASU_CPU_BF16']}" if "TASU_CPU_BF16" in os.environ else ""
    return "\n".join([
        f"cpu: {model}; bf16 flags: {' '.join(bf16) or 'none'}; avx2: {'yes' if 'avx2' in flags else 'no'}; "
        f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}",
        f"amp: auto -> {'bf16 autocast' if fast else 'float32'} on cpu (native bf16 kernels: "
        f"{'yes' if fast else 'no'}{forced}); cuda: {torch.cuda.is_available()}",
    ])


if __name__ == "__main__":
    print(machine_summary())
