#!/usr/bin/env python3
"""Tune n-best rescoring on a dev set from the n-best lists a decoding kept, without decoding again.

    python -m tasu.bin.tune_rescoring --model exp/<model> --nbest exp/<model>/decode_dev_rescore/nbest.json \\
        --feats dump/dev/feats.scp --ref data/dev/text --weights 0 0.25 0.5 1 2 \\
        [--insert_costs 2] [--delete_costs 5] [--wb_costs 0.5 1] [--prior_weights 0 0.5] [--lexicon dump/lexicon.txt]

A decoding with ``acoustic_weight`` > 0 (stage 4 with ``conf/decode_rescore.yaml``) keeps every
utterance's beam answers and their LLM log-probabilities in ``nbest.json``. This re-ranks them
(:mod:`tasu.rescore`: LLM log-prob - weight x alignment cost of the answer's units against the
PSD rows) for every weight and alignment cost given and prints the WER of each setting, so the
weights of ``decode_rescore.yaml`` are chosen on a dev set in seconds (as ESPnet's ctc_weight and
lm_weight are tuned), then used unchanged on the test sets. Weight 0 is the beam's own best.
``--prior_weights`` adds each answer's prior (``prior_weight`` of the decoding config: the LLM's
log-prob of it with the speech left out, scored once here) with each weight given.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np


def rerank(nbest: dict[str, list[tuple[str, float]]], costs: dict[str, list[float]], weight: float,
           priors: dict[str, list[float]] | None = None, prior_weight: float = 0.0) -> dict[str, str]:
    """The answer each utterance gets at ``weight``, from its beam and their alignment costs (and
    their priors times ``prior_weight``)."""
    out = {}
    for uid, cands in nbest.items():
        scores = [logp - weight * c for (_, logp), c in zip(cands, costs[uid])]
        if prior_weight:
            scores = [s + prior_weight * p for s, p in zip(scores, priors[uid])]
        out[uid] = cands[int(np.argmax(scores))][0]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tasu.bin.tune_rescoring", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="the model that decoded (exp dir, packed zip or dir)")
    ap.add_argument("--nbest", type=Path, required=True, help="nbest.json of a rescoring decode")
    ap.add_argument("--feats", type=Path, required=True, help="feats.scp of the same set (stage 1)")
    ap.add_argument("--ref", type=Path, required=True, help="reference text of the set")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    ap.add_argument("--insert_costs", type=float, nargs="+", default=[2.0], help="align_insert_cost values")
    ap.add_argument("--delete_costs", type=float, nargs="+", default=[5.0], help="align_delete_cost values")
    ap.add_argument("--wb_costs", type=float, nargs="+", default=None,
                    help="align_wb_cost values (default: none, word boundaries cost as other units)")
    ap.add_argument("--prior_weights", type=float, nargs="+", default=None,
                    help="prior_weight values (default: none, the answers' priors left out)")
    ap.add_argument("--lexicon", type=Path, help="pronunciations to start from (hama: the training lexicon; read only, "
                    "the answers' new words go to a private copy)")
    args = ap.parse_args(argv)
    from tasu.data import read_posteriors, read_table_lines
    from tasu.inference import Speech2Text
    from tasu.rescore import alignment_cost, units_function
    from tasu.score import read_text, score_texts

    try:
        read_table_lines(args.ref)  # "<file>:<line>: not valid UTF-8"
        refs = read_text(args.ref)
        try:
            nbest = {u: [(str(t), float(s)) for t, s in c] for u, c in json.loads(args.nbest.read_text()).items()}
        except (ValueError, TypeError) as e:
            raise ValueError(f"{args.nbest}: not an n-best file of tasu.bin.decode ({e})") from None
        feats = read_posteriors(args.feats)
        missing = sorted(set(nbest) - set(feats))
        if missing:
            raise ValueError(f"{args.feats}: no posteriors for {len(missing)} utterance(s) of {args.nbest}, "
                             f"e.g. {missing[0]!r}: give the feats of the set that was decoded")
        if any(c < 0 for c in args.wb_costs or []):
            raise ValueError(f"--wb_costs must be >= 0, got {args.wb_costs}")
        if any(w < 0 for w in args.weights):
            raise ValueError(f"--weights must be >= 0, got {args.weights}")
        s2t = Speech2Text.from_pretrained(args.model, training_lexicon=args.lexicon, encoder_device="cpu")
        units_of = units_function(s2t.encoder, s2t.inventory.index())
        priors = None
        if args.prior_weights and any(args.prior_weights):
            tok = s2t.model.tokenizer
            uids = list(nbest)
            priors = {}
            for i in range(0, len(uids), 16):
                part = uids[i:i + 16]
                got = s2t.model.score_prior([[tok(t, add_special_tokens=False)["input_ids"] for t, _ in nbest[u]]
                                             for u in part])
                priors.update(zip(part, got))
    except (OSError, ValueError) as e:  # DataError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{len(nbest)} utterances of {args.nbest}, beams of {max(map(len, nbest.values()))}; "
          f"{len(refs)} references in {args.ref}")
    print("| insert cost | delete cost | wb cost | weight | prior weight | WER |\n|---:|---:|---:|---:|---:|---:|")
    best = None
    wb = s2t.inventory.wb_id
    for ins, dele, wbc in itertools.product(args.insert_costs, args.delete_costs, args.wb_costs or [None]):
        costs = {u: [alignment_cost(feats[u], units_of(t), ins, dele, wb, wbc) for t, _ in c] for u, c in nbest.items()}
        for w, pw in itertools.product(args.weights, args.prior_weights or [0.0]):
            wer = score_texts(refs, rerank(nbest, costs, w, priors, pw)).wer
            print(f"| {ins:g} | {dele:g} | {'-' if wbc is None else f'{wbc:g}'} | {w:g} | {pw:g} | {wer:.2f} |",
                  flush=True)
            if best is None or wer < best[0]:
                best = (wer, ins, dele, wbc, w, pw)
    wer, ins, dele, wbc, w, pw = best
    print(f"best: WER {wer:.2f} at acoustic_weight {w:g}, align_insert_cost {ins:g}, align_delete_cost {dele:g}"
          + ("" if wbc is None else f", align_wb_cost {wbc:g}") + (f", prior_weight {pw:g}" if pw else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
