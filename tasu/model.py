"""SpeechLLM: projector + causal LM. Takes tensors, returns tensors (no I/O here)."""
from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from tasu.config import GuardConfig
from tasu.constrain import GenerationGuard, length_bounds, trim_loops
from tasu.projector import project_batch
from tasu.prompt import PromptTemplate

IGNORE = -100


def pad_batch(rows: Sequence[torch.Tensor], labels: Sequence[torch.Tensor] | None = None, left: bool = False,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``[T_i, D]`` rows (and their ``[T_i]`` labels) -> ``(x [B, T, D], mask [B, T], labels [B, T] or None)``,
    padded on the right, or on the left (``left``: generation continues every row at its end)."""
    side = (lambda t: t.flip(0)) if left else (lambda t: t)  # noqa: E731  (flip, pad right, flip back)
    x = pad_sequence([side(r) for r in rows], batch_first=True)
    mask = pad_sequence([torch.ones(len(r), dtype=torch.long) for r in rows], batch_first=True)
    y = None if labels is None else pad_sequence([side(lab) for lab in labels], batch_first=True, padding_value=IGNORE)
    if left:
        x, mask, y = x.flip(1), mask.flip(1), (None if y is None else y.flip(1))
    return x, mask, y


class SpeechLLM(nn.Module):
    """``prompt prefix + projector(posteriors) + prompt suffix + answer`` through an LLM."""

    def __init__(self, llm: nn.Module, projector: nn.Module, template: PromptTemplate,
                 pad_id: int, amp_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.llm = llm
        self.projector = projector
        self.template = template
        self.pad_id = pad_id
        self.amp_dtype = amp_dtype
        self.share_prefix = True  # training: the prompt's prefix once a batch (see _hidden)

    # -- pieces -------------------------------------------------------------------------
    @property
    def base(self) -> nn.Module:
        """The underlying ``*ForCausalLM`` (LoRA layers, if any, are injected in place)."""
        return self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm

    @property
    def device(self) -> torch.device:
        return next(self.projector.parameters()).device

    def _embed_ids(self, ids: Sequence[int]) -> torch.Tensor:
        emb = self.base.get_input_embeddings()
        return emb(torch.tensor(list(ids), dtype=torch.long, device=self.device))

    def _embed_many(self, seqs: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """:meth:`_embed_ids` of each sequence from one host-to-device copy and one lookup (on a
        GPU each copy of a host list waits for the device: one a batch, not one an example)."""
        flat = torch.tensor([i for s in seqs for i in s], dtype=torch.long)
        return list(self.base.get_input_embeddings()(flat.to(self.device)).split([len(s) for s in seqs]))

    def project(self, feats: Sequence) -> list[torch.Tensor]:
        """Projected rows ``[L'_b, D]`` per utterance, from one projector call over the whole batch
        (``L'_b = L_b`` for per-row projectors; see :func:`tasu.projector.project_batch`)."""
        return project_batch(self.projector, feats, self.device)

    def _templates(self, n: int, templates: Sequence[PromptTemplate] | None) -> list[PromptTemplate]:
        """One template per example: ``templates``, or the model's own for all when None."""
        if templates is None:
            return [self.template] * n
        if len(templates) != n:
            raise ValueError(f"{len(templates)} prompt templates for {n} examples")
        return list(templates)

    def assemble(self, feats: Sequence[torch.Tensor], answers: Sequence[Sequence[int]] | None = None,
                 left_pad: bool = False, templates: Sequence[PromptTemplate] | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Build ``(inputs_embeds [B,T,D], attention_mask [B,T], labels [B,T])``.

        ``labels`` hold the answer token ids at the answer positions and ``-100``
        elsewhere (prompt, speech, padding), so the loss covers the answer only. The speech
        takes as many positions as the projector writes (fewer than rows for sequence projectors).
        ``templates``: one prompt per example (e.g. per task); None: the model's own.
        """
        tpls = self._templates(len(feats), templates)
        distinct = list(dict.fromkeys(tpls))
        pieces = self._embed_many([t.prefix for t in distinct] + [t.suffix for t in distinct]
                                  + (list(answers) if answers is not None else []))
        embedded = {t: (pieces[j], pieces[len(distinct) + j]) for j, t in enumerate(distinct)}
        ans = pieces[2 * len(distinct):]
        rows, labels = [], []
        for i, (sp, tpl) in enumerate(zip(self.project(feats), tpls)):
            pre, suf = embedded[tpl]
            parts = [pre, sp.to(pre.dtype), suf]
            lab = [IGNORE] * (len(tpl.prefix) + sp.shape[0] + len(tpl.suffix))
            if answers is not None:
                parts.append(ans[i])
                lab += list(answers[i])
            rows.append(torch.cat(parts))
            labels.append(torch.tensor(lab, dtype=torch.long))
        x, mask, y = pad_batch(rows, labels, left_pad)
        return x, mask.to(self.device), y.to(self.device)

    def _autocast(self):
        enabled = self.amp_dtype is not None
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=enabled)

    # -- training -----------------------------------------------------------------------
    def forward(self, feats: Sequence[torch.Tensor], answers: Sequence[Sequence[int]],
                templates: Sequence[PromptTemplate] | None = None) -> tuple[torch.Tensor, int]:
        """Mean cross-entropy over answer tokens, and their number (``templates``: see :meth:`assemble`).

        Logits are computed only where a label follows (the answer), not over the
        prompt and speech positions: the LM head is a 49k x 576 matmul per position.
        """
        with self._autocast():
            x, mask, y = self.assemble(feats, answers, templates=templates)
            h = self._hidden(x, mask, self._templates(len(feats), templates))
            tgt = y[:, 1:]
            sel = tgt != IGNORE
            logits = self.base.get_output_embeddings()(h[:, :-1][sel])
        loss = nn.functional.cross_entropy(logits.float(), tgt[sel])
        return loss, int(sel.sum())

    def _hidden(self, x: torch.Tensor, mask: torch.Tensor, tpls: Sequence[PromptTemplate]) -> torch.Tensor:
        """The last hidden states ``[B, T, D]`` of the right-padded batch ``x``, from the decoder
        stack of any ``*ForCausalLM`` (Llama ``model``, GPT-2 ``transformer``...).

        With :attr:`share_prefix` and one prompt for the whole batch, the prompt's prefix (the
        same tokens in every row) goes through the LLM once, not once a row: its keys and values
        are then the cache every row continues from, and gradients reach the prefix's LoRA
        weights through them. Same result as the plain pass (a test compares them); an LLM with
        dropout draws one mask for the prefix that every row then shares.
        """
        body = self.base.base_model
        n = len(tpls[0].prefix) if tpls else 0
        if not self.share_prefix or len(x) < 2 or n == 0 or len(set(tpls)) > 1 or n >= x.shape[1]:
            return body(inputs_embeds=x, attention_mask=mask).last_hidden_state
        pre = body(inputs_embeds=x[:1, :n], use_cache=True)
        cache = pre.cache if getattr(pre, "cache", None) is not None else pre.past_key_values
        rows = torch.zeros(len(x), dtype=torch.long, device=x.device)
        pos = torch.arange(n, x.shape[1], device=x.device).expand(len(x), -1)
        rest = body(inputs_embeds=x[:, n:], attention_mask=mask, position_ids=pos, use_cache=True,
                    **{_cache_arg(body): cache_rows(cache, rows)}).last_hidden_state
        return torch.cat([pre.last_hidden_state.expand(len(x), -1, -1).to(rest.dtype), rest], 1)

    # -- inference ----------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, feats: Sequence[torch.Tensor], max_new_tokens: int = 64,
                 num_beams: int = 1, constraint=None,
                 templates: Sequence[PromptTemplate] | None = None,
                 guard: GuardConfig | None = None) -> list[list[int]]:
        """Greedy (or beam) decoding; returns the answer token ids without the end token.

        ``constraint`` is a logits processor, e.g. a :class:`tasu.constrain.VocabularyConstraint`;
        ``templates``: one prompt per example (None: the model's own), see :meth:`assemble`;
        ``guard``: answer length bounded by the speech length, loops stopped (see :class:`GuardConfig`).
        """
        with self._autocast():
            x, mask, _ = self.assemble(feats, left_pad=True, templates=templates)
        return self._generate(x, mask, self._templates(len(feats), templates), max_new_tokens, num_beams,
                              constraint, guard=self._guard(feats, guard, max_new_tokens, num_beams))[0]

    def _guard(self, feats: Sequence, guard: GuardConfig | None, max_new_tokens: int, num_beams: int):
        if guard is None or (guard.max_len_ratio <= 0 and guard.loop_repeats <= 1):
            return None
        bounds = None
        if guard.max_len_ratio > 0:
            bounds = length_bounds([len(f) for f in feats], guard.max_len_ratio, guard.max_len_offset, max_new_tokens)
        return GenerationGuard(bounds, self.template.eos_id, num_beams, guard.loop_repeats)

    @torch.no_grad()
    def generate_from_text(self, texts: Sequence[Sequence[int]], max_new_tokens: int = 64, num_beams: int = 1,
                           templates: Sequence[PromptTemplate] | None = None) -> list[list[int]]:
        """The cascade: token ids of a text (e.g. an ASR hypothesis) in place of the speech."""
        tpls = self._templates(len(texts), templates)
        rows = [torch.cat([self._embed_ids(t.prefix), self._embed_ids(ids), self._embed_ids(t.suffix)])
                for t, ids in zip(tpls, texts)]
        x, mask, _ = pad_batch(rows, left=True)
        return self._generate(x, mask.to(self.device), tpls, max_new_tokens, num_beams, None)[0]

    @torch.no_grad()
    def generate_nbest(self, feats: Sequence[torch.Tensor], n: int, max_new_tokens: int = 64, constraint=None,
                       templates: Sequence[PromptTemplate] | None = None,
                       guard: GuardConfig | None = None) -> list[list[tuple[list[int], float]]]:
        """Beam search with ``n`` beams; per example, its ``n`` answers (token ids without the end
        token) with their summed token log-probabilities, best first."""
        with self._autocast():
            x, mask, _ = self.assemble(feats, left_pad=True, templates=templates)
        hyps, scores = self._generate(x, mask, self._templates(len(feats), templates), max_new_tokens, n,
                                      constraint, n_return=n, guard=self._guard(feats, guard, max_new_tokens, n))
        return [list(zip(hyps[i * n:(i + 1) * n], scores[i * n:(i + 1) * n])) for i in range(len(feats))]

    def _generate(self, x: torch.Tensor, mask: torch.Tensor, tpls: Sequence[PromptTemplate], max_new_tokens: int,
                  num_beams: int, constraint, n_return: int = 0,
                  guard: GenerationGuard | None = None) -> tuple[list[list[int]], list[float] | None]:
        """``(answer ids per row, None)``; with ``n_return``, ``n_return`` beams per row and their
        summed log-probabilities in place of None, best first.

        The log-probabilities come from one teacher-forced pass over the answers (end token
        included when written), not from ``generate(output_scores=True)``, which keeps a
        ``[rows, vocabulary]`` tensor per generated token: gigabytes for a batch of 8-beam searches.
        """
        from transformers import LogitsProcessorList

        eos = sorted({t.eos_id for t in tpls}) or [self.template.eos_id]
        procs = LogitsProcessorList([p for p in (constraint, guard) if p is not None])
        # the beam keeps its finished answers by HF's default length-normalised score; they are
        # then ranked by their plain summed log-probabilities (below, and in rescoring)
        extra = dict(num_return_sequences=n_return) if n_return else {}
        with self._autocast():
            seqs = self.llm.generate(inputs_embeds=x, attention_mask=mask, max_new_tokens=max_new_tokens,
                                     do_sample=False, num_beams=num_beams,
                                     eos_token_id=eos[0] if len(eos) == 1 else eos,
                                     pad_token_id=self.pad_id, logits_processor=procs, **extra)
        hyps, ends = [], []
        for row in seqs.tolist():
            at = [(row.index(e), e) for e in eos if e in row]
            end = min(at) if at else None
            if end is not None:
                row = row[:end[0]]
            row = [t for t in row if t != self.pad_id]
            hyps.append(trim_loops(row, guard.loop_repeats) if guard is not None else row)
            ends.append(end[1] if end is not None else None)
        if not n_return:
            return hyps, None
        scores = self._answer_logprobs(x, mask, [h + ([e] if e is not None else []) for h, e in zip(hyps, ends)],
                                       n_return)
        for i in range(0, len(hyps), n_return):  # best first within each example
            order = sorted(range(i, i + n_return), key=lambda r: -scores[r])
            hyps[i:i + n_return] = [hyps[r] for r in order]
            scores[i:i + n_return] = [scores[r] for r in order]
        return hyps, scores

    @torch.no_grad()
    def score_answers(self, feats: Sequence[torch.Tensor], answers: Sequence[Sequence[Sequence[int]]],
                      templates: Sequence[PromptTemplate] | None = None) -> list[list[float]]:
        """Per example, the summed log-probabilities of its ``answers`` (token ids; the prompt's end
        token is appended, as a finished beam answer has it), by teacher forcing on its speech."""
        if not any(answers):
            return [[] for _ in answers]
        tpls = self._templates(len(feats), templates)
        with self._autocast():
            x, mask, _ = self.assemble(feats, left_pad=True, templates=templates)
        owners = [i for i, a in enumerate(answers) for _ in a]
        return self._scores_by_example(x, mask, answers, tpls, owners)

    @torch.no_grad()
    def score_prior(self, answers: Sequence[Sequence[Sequence[int]]],
                    templates: Sequence[PromptTemplate] | None = None) -> list[list[float]]:
        """Per example, the summed log-probabilities of its ``answers`` given the prompt with the
        speech left out: the LLM's own prior of each answer as a transcript (its internal language
        model, estimated by removing the acoustic input, as ILME does), by teacher forcing."""
        if not any(answers):
            return [[] for _ in answers]
        tpls = self._templates(len(answers), templates)
        distinct = list(dict.fromkeys(tpls))
        x, mask, _ = pad_batch(self._embed_many([list(t.prefix) + list(t.suffix) for t in distinct]), left=True)
        mask = mask.to(self.device)
        slot = {t: j for j, t in enumerate(distinct)}
        owners = [slot[tpls[i]] for i, a in enumerate(answers) for _ in a]
        return self._scores_by_example(x, mask, answers, tpls, owners)

    def _scores_by_example(self, x: torch.Tensor, mask: torch.Tensor, answers: Sequence[Sequence[Sequence[int]]],
                           tpls: Sequence[PromptTemplate], owners: Sequence[int]) -> list[list[float]]:
        """:meth:`_answer_logprobs` of every example's answers (each with its prompt's end token;
        ``owners``: the prompt row each answer continues), split back per example."""
        flat = [list(ids) + [tpls[i].eos_id] for i, a in enumerate(answers) for ids in a]
        scores = self._answer_logprobs(x, mask, flat, owners)
        out, at = [], 0
        for a in answers:
            out.append(scores[at:at + len(a)])
            at += len(a)
        return out

    def _answer_logprobs(self, x: torch.Tensor, mask: torch.Tensor, answers: Sequence[Sequence[int]],
                         group: int | Sequence[int], chunk: int = 16) -> list[float]:
        """Summed log-probabilities of ``answers`` (row ``r`` continues prompt row ``r // group`` of
        the left-padded ``x``, or row ``group[r]`` when ``group`` is a list), by teacher forcing.

        The prompt rows go through the LLM once, keeping their keys and values; each answer is
        then a pass over its own tokens alone, ``chunk`` answers at a time, attending to its
        row's cache (the expansion scores some 20 answers an input on one speech prefix:
        recomputing the prefix for each was four fifths of the decoding time).
        """
        emb, head = self.base.get_input_embeddings(), self.base.get_output_embeddings()
        if not answers:
            return []
        body = self.base.base_model
        with self._autocast():
            pre = body(inputs_embeds=x, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                       use_cache=True)
        cache = pre.cache if getattr(pre, "cache", None) is not None else pre.past_key_values
        last = pre.last_hidden_state[:, -1:]  # each row's last position predicts the answer's first token
        start = mask.sum(1)  # the position of each row's first answer token
        out: list[float] = []
        for s in range(0, len(answers), chunk):
            part = answers[s:s + chunk]
            idx = torch.tensor([(s + k) // group if isinstance(group, int) else group[s + k]
                                for k in range(len(part))], device=x.device)
            L = max(1, max(len(a) for a in part))
            ans = torch.full((len(part), L), self.pad_id, dtype=torch.long, device=x.device)
            am = torch.zeros((len(part), L), dtype=mask.dtype, device=x.device)
            for k, a in enumerate(part):
                ans[k, :len(a)] = torch.tensor(list(a), dtype=torch.long)
                am[k, :len(a)] = 1
            with self._autocast():
                h = last[idx]
                if L > 1:  # the answer's tokens but its last, each predicting the next
                    pos = start[idx, None] + torch.arange(L - 1, device=x.device)
                    more = body(inputs_embeds=emb(ans[:, :-1]).to(x.dtype),
                                attention_mask=torch.cat([mask[idx], am[:, :-1]], 1), position_ids=pos,
                                use_cache=True, **{_cache_arg(body): cache_rows(cache, idx)}).last_hidden_state
                    h = torch.cat([h, more.to(h.dtype)], 1)
                logits = head(h)
            lp = logits.float().log_softmax(-1).gather(-1, ans.unsqueeze(-1)).squeeze(-1)
            out += (lp * am).sum(1).tolist()
        return out


@functools.cache
def _cache_keyword(forward) -> str:
    """What an LLM's forward calls its key/value cache: ``cache`` (transformers 5), or
    ``past_key_values`` (before)."""
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def _cache_arg(body: nn.Module) -> str:
    return _cache_keyword(type(body).forward)


def cache_rows(cache, idx: torch.Tensor):
    """A new key/value cache of the rows ``idx`` of ``cache`` (repeats allowed); ``cache`` is
    left as it is, so every chunk of answers starts from the prompt's keys and values alone."""
    from transformers.cache_utils import DynamicCache

    if hasattr(cache, "layers"):  # transformers >= 4.56
        return DynamicCache([(layer.keys[idx], layer.values[idx]) for layer in cache.layers])
    return DynamicCache.from_legacy_cache(tuple((k[idx], v[idx]) for k, v in zip(cache.key_cache, cache.value_cache)))
