"""In-process transformers backend: batched generation and batched teacher-forced scoring.

Scoring computes prefixes shared by several continuations once: requests whose prefixes nest (the k
candidates after one trajectory; every step of one solution, each given the ones before; the "with" and
"without rationale" variants after one text) run one forward over the longest, and each continuation
either lies on that forward already or runs on its KV cache cut back to its own prefix. The rest run as
plain full forwards, length-sorted and batched by a token budget. Logits are projected only where a
continuation token is predicted, so a long prefix costs no vocabulary projection.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from common.llm.base import Branches, Completion, Prompt, TokenScores, cut_at_stop, is_chat, request_seed
from common.models import auto_bos_id, use_varlen_sdpa, with_single_bos


class _RowSampler:
    """Temperature + top-p sampling with one RNG per row, so that a row's sample does not depend
    on which other rows share its batch. Returns logits that make greedy pick the sampled token."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device):
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > self.top_p  # keeps the smallest set reaching top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        picks = torch.stack([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, picks, 0.0)


def _one_call_at_a_time(method):
    """Calls from several threads (inference with `streams`) run one after another: the model batches
    within a call, and the KV store is not shared state that two calls may change at once."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class HFBackend:
    def __init__(
        self,
        model: str = "smollm2-135m-instruct",
        device: str = "auto",
        dtype: str = "auto",
        max_batch_tokens: int = 0,
        max_batch_size: int = 64,
        prefix_reuse: bool = True,
        kv_cache_tokens: int = 32768,
        missing_head: str = "",
        model_obj=None,
        tokenizer=None,
    ):
        if model_obj is None:
            from common.models import load_causal_lm

            model_obj, tokenizer = load_causal_lm(model, device, dtype, missing_head)
        self.model, self.tok = model_obj.eval(), tokenizer
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.name = model
        self.device = next(self.model.parameters()).device
        if max_batch_tokens <= 0:  # auto: 8192 on a CPU, scaled with the GPU's memory
            from common.models import hf_batch_tokens

            cuda = self.device.type == "cuda"
            max_batch_tokens = hf_batch_tokens(
                torch.cuda.get_device_properties(self.device).total_memory if cuda else None
            )
        self.max_batch_tokens, self.max_batch_size = max_batch_tokens, max_batch_size
        self.packs = use_varlen_sdpa(self.model)  # scoring forwards run packed rows, no pads (_score_packed)
        self.prefix_reuse = prefix_reuse
        self.kv_store = KVStore(kv_cache_tokens)
        self._lock = threading.RLock()
        self.bos_id = auto_bos_id(self.tok)
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = sorted({e for e in eos + [self.tok.eos_token_id] if e is not None})

    # ------------------------------------------------------------------ tokenisation
    def render_chat(self, messages, add_generation_prompt: bool = True) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def render(self, prompt: Prompt) -> str:
        return self.render_chat(prompt) if is_chat(prompt) else prompt

    def encode_prompt(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt with exactly one BOS when the model uses one."""
        return with_single_bos(self.tok(self.render(prompt), add_special_tokens=False).input_ids, self.bos_id)

    def encode_text(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False).input_ids if text else []

    def _batches(self, order: list[int], lengths: list[int], rows_per_item: int = 1, extra: int = 0):
        """Consecutive runs of `order` (sorted by length) within the token and row budgets."""
        batch: list[int] = []
        longest = 0
        for i in order:
            longest_if = max(longest, lengths[i] + extra)
            rows = (len(batch) + 1) * rows_per_item
            if batch and (rows * longest_if > self.max_batch_tokens or rows > self.max_batch_size):
                yield batch
                batch, longest_if = [], lengths[i] + extra
            batch.append(i)
            longest = longest_if
        if batch:
            yield batch

    # ------------------------------------------------------------------ generation
    @_one_call_at_a_time
    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_tokens: int = 256,
        stop: Sequence[str] | None = None,
        seed: int = 0,
        logprobs: bool = False,
    ) -> list[Completion]:
        from transformers import GenerationConfig

        encoded = [self.encode_prompt(p) for p in prompts]
        lengths = [len(e) for e in encoded]
        greedy = temperature <= 0
        per_prompt = 1 if greedy else n
        results = [Completion(texts=[], token_logprobs=[] if logprobs else None) for _ in prompts]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        pad = self.tok.pad_token_id
        config = GenerationConfig(
            max_new_tokens=max_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad,
            eos_token_id=self.eos_ids,
            stop_strings=list(stop) if stop else None,
            return_dict_in_generate=True,
            output_logits=logprobs,
        )
        if self.prefix_reuse:  # each prompt's prefill once, from what the store already holds, in length order
            caches = {i: self._prefill(encoded[i]) for i in order}
        for batch in self._batches(order, lengths, per_prompt, max_tokens):
            rows = [i for i in batch for _ in range(per_prompt)]
            width = max(lengths[i] for i in batch)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):  # left padding for generation
                ids[r, width - lengths[i] :] = torch.tensor(encoded[i])
                mask[r, width - lengths[i] :] = 1
            processors = None
            if not greedy:
                seeds = [request_seed(seed, prompts[i]) + k for i in batch for k in range(per_prompt)]
                processors = [_RowSampler(seeds, temperature, top_p, self.device)]
            extra = {}
            if self.prefix_reuse and all(caches[i] is not None for i in batch):
                # the prompts but their last token are cached: the n samples of a prompt share its prefill
                extra["past_key_values"] = _batched_cache([caches[i] for i in rows], width - 1)
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                generation_config=config,
                logits_processor=processors,
                tokenizer=self.tok if stop else None,
                **extra,
            )
            new = out.sequences[:, width:].tolist()
            step_lp = torch.log_softmax(torch.stack(out.logits, 1).float(), -1) if logprobs else None
            for r, i in enumerate(rows):
                toks = self._trim(new[r])
                text = cut_at_stop(self.tok.decode(toks, skip_special_tokens=True), stop)
                copies = n if greedy else 1
                results[i].texts.extend([text] * copies)
                if logprobs:
                    lp = step_lp[r, torch.arange(len(toks)), torch.tensor(toks, dtype=torch.long)].tolist()
                    results[i].token_logprobs.extend([lp] * copies)
        return results

    def _prefill(self, ids: list[int]):
        """The KV cache of a prompt but its last token, from the longest prefix the store holds; stored for the
        next call (a trajectory's next round extends it by one step). None for a one-token prompt."""
        if len(ids) < 2:
            return None
        n, cache = self.kv_store.lookup(ids, len(ids) - 1)
        if n < len(ids) - 1:
            cache = self.model(
                input_ids=torch.tensor([ids[n:-1]], device=self.device),
                past_key_values=cache,
                position_ids=torch.arange(n, len(ids) - 1, device=self.device)[None],
                use_cache=True,
                logits_to_keep=1,
            ).past_key_values
        self.kv_store.put(ids[:-1], cache)
        return cache

    def _trim(self, toks: list[int]) -> list[int]:
        for k, t in enumerate(toks):
            if t in self.eos_ids:
                return toks[:k]
        pad = self.tok.pad_token_id
        while toks and toks[-1] == pad:
            toks = toks[:-1]
        return toks

    # ------------------------------------------------------------------ scoring
    def score(self, pairs: Sequence[tuple[Prompt, str]]) -> list[TokenScores]:
        return self.score_branches([Branches(p, [("", c)]) for p, c in pairs])

    @_one_call_at_a_time
    @torch.inference_mode()
    def score_branches(self, requests: Sequence[Branches]) -> list[TokenScores]:
        """Scores of every (middle, continuation) branch, flattened in request order."""
        items: list[tuple[list[int], list[int], list[int]]] = []
        for req in requests:
            p = self.encode_prompt(req.prefix)
            if not p:
                raise ValueError(
                    "the prefix is empty and the model has no BOS token, so the first "
                    "continuation token has nothing to be predicted from"
                )
            items.extend((p, self.encode_text(m), self.encode_text(c)) for m, c in req.branches)
        results: list[TokenScores | None] = [None] * len(items)
        todo = []
        for i, (_, _, c) in enumerate(items):
            if c:
                todo.append(i)
            else:
                results[i] = TokenScores([], [])
        if not self.prefix_reuse:
            self._score_sequences([_single(i, items) for i in todo], items, results)
            return results  # type: ignore[return-value]
        sequences = []
        for trunk, members in _trunks(todo, items):
            if len(members) == 1:
                sequences.append(_single(members[0], items))
                continue
            spine, covered, rest = _tree(trunk, members, items)
            if rest or self.kv_store.peek(spine, min(start for _, start in covered) - 1):
                self._score_tree(trunk, members, items, results)
            else:  # every branch lies on the spine and nothing is stored: one row of a batched forward
                sequences.append((spine, covered))
        self._score_sequences(sequences, items, results)
        return results  # type: ignore[return-value]

    def _score_sequences(self, sequences: list[tuple[list[int], list[tuple[int, int]]]], items, results) -> None:
        """Plain forwards, length-sorted and batched by the token budget: each sequence scores the branches
        whose continuations lie on it, (item, position of its first continuation token)."""
        if self.packs:
            return self._score_packed(sequences, items, results)
        lengths = [len(seq) for seq, _ in sequences]
        order = sorted(range(len(sequences)), key=lambda k: lengths[k])
        pad = self.tok.pad_token_id
        for batch in self._batches(order, lengths):
            width = max(lengths[k] for k in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, k in enumerate(batch):  # right padding: pads come after every real token
                ids[r, : lengths[k]] = torch.tensor(sequences[k][0])
                mask[r, : lengths[k]] = 1
            first = min(start for k in batch for _, start in sequences[k][1]) - 1  # first predicting position
            keep = torch.arange(first, width - 1, device=self.device)
            logits = self.model(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device), logits_to_keep=keep
            ).logits
            for r, k in enumerate(batch):
                for i, start in sequences[k][1]:
                    a = start - 1 - first
                    results[i] = self._gather(logits[r, a : a + len(items[i][2])], items[i][2])

    def _score_packed(self, sequences: list[tuple[list[int], list[tuple[int, int]]]], items, results) -> None:
        """The same as padded batches, with each batch's sequences packed into one row (position ids restarting
        per sequence: common.models.varlen_sdpa), so no pad is computed, and only the positions that predict a
        continuation token are projected onto the vocabulary."""
        lengths = [len(seq) for seq, _ in sequences]
        order = sorted(range(len(sequences)), key=lambda k: lengths[k])
        batch: list[int] = []
        tokens = 0
        for k in order:
            if batch and tokens + lengths[k] > self.max_batch_tokens:
                self._score_pack(batch, sequences, items, results)
                batch, tokens = [], 0
            batch.append(k)
            tokens += lengths[k]
        if batch:
            self._score_pack(batch, sequences, items, results)

    def _score_pack(self, batch: list[int], sequences, items, results) -> None:
        ids: list[int] = []
        positions: list[int] = []
        keep: list[int] = []
        windows: list[tuple[int, int]] = []  # (item, its first row in the kept logits)
        for k in batch:
            seq, branches = sequences[k]
            for i, start in branches:
                windows.append((i, len(keep)))
                keep.extend(range(len(ids) + start - 1, len(ids) + start - 1 + len(items[i][2])))
            ids.extend(seq)
            positions.extend(range(len(seq)))
        logits = self.model(
            input_ids=torch.tensor([ids], device=self.device),
            position_ids=torch.tensor([positions], device=self.device),
            use_cache=False,
            logits_to_keep=torch.tensor(keep, device=self.device),
        ).logits[0]
        for i, first in windows:
            results[i] = self._gather(logits[first : first + len(items[i][2])], items[i][2])

    def _score_tree(self, trunk: tuple[int, ...], idxs, items, results) -> None:
        """Items whose prefixes nest (all are prefixes of `trunk`), from one forward over a spine: the trunk
        followed by one of its own items. An item whose whole sequence lies on the spine (an earlier step of
        the same solution, a duplicate candidate) is read off that forward; the others run only their middle
        and continuation on the spine's KV cache, cut back to their prefix (longest prefixes first, so the
        cut only ever removes)."""
        spine, on_spine, rest = _tree(trunk, idxs, items)
        covered = [i for i, _ in on_spine]
        windows = {i: range(start - 1, start - 1 + len(items[i][2])) for i, start in on_spine}
        keep = sorted({j for w in windows.values() for j in w} | {n - 1 for n in rest})
        # what an earlier call computed (the trajectory before this round's step) is not computed again
        start, cache = self.kv_store.lookup(spine, keep[0]) if self.prefix_reuse else (0, None)
        out = self.model(
            input_ids=torch.tensor([spine[start:]], device=self.device),
            past_key_values=cache,
            position_ids=torch.arange(start, len(spine), device=self.device)[None],
            use_cache=True,
            logits_to_keep=torch.tensor([j - start for j in keep], device=self.device),
        )
        self.kv_store.put(trunk, _cropped(out.past_key_values, len(trunk)))
        row_of = {j: r for r, j in enumerate(keep)}
        logits = out.logits[0]
        for i in covered:
            results[i] = self._gather(logits[[row_of[j] for j in windows[i]]], items[i][2])
        cache = out.past_key_values
        for n_prefix in sorted(rest, reverse=True):
            _crop(cache, n_prefix)
            self._score_on_cache(cache, n_prefix, logits[row_of[n_prefix - 1]], rest[n_prefix], items, results)

    def _score_on_cache(self, cache, P: int, last: torch.Tensor, idxs, items, results) -> None:
        """Rows (middle + continuation) after a prefix of length P held in `cache` (batch 1), batched by the
        token budget; the cache is repeated per batch and brought back to the prefix afterwards."""
        rows = {i: items[i][1] + items[i][2] for i in idxs}
        lengths = {i: P + len(rows[i]) for i in idxs}
        pad = self.tok.pad_token_id
        for batch in self._batches(sorted(idxs, key=lambda i: lengths[i]), lengths):
            width = max(len(rows[i]) for i in batch)
            logits = None
            if width > 1:  # row position j predicts token j+1; the last row token predicts nothing needed
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), P + width), dtype=torch.long)
                mask[:, :P] = 1
                for r, i in enumerate(batch):
                    ids[r, : len(rows[i])] = torch.tensor(rows[i])
                    mask[r, P : P + len(rows[i])] = 1
                if len(batch) > 1:
                    cache.batch_repeat_interleave(len(batch))
                logits = self.model(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=torch.arange(P, P + width, device=self.device).expand(len(batch), -1),
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=torch.arange(0, width - 1, device=self.device),
                ).logits
                if len(batch) > 1:
                    cache.batch_select_indices(torch.tensor([0], device=self.device))
                _crop(cache, P)
            for r, i in enumerate(batch):
                middle, cont = items[i][1], items[i][2]
                # predictors of the continuation: prefix's last position (index -1), then row positions
                src = range(len(middle) - 1, len(middle) + len(cont) - 1)
                picked = [last if j < 0 else logits[r, j] for j in src]
                results[i] = self._gather(torch.stack(picked), cont)

    @staticmethod
    def _gather(logit_rows: torch.Tensor, targets: list[int]) -> TokenScores:
        lp = torch.log_softmax(logit_rows.float(), dim=-1)
        picked = lp[torch.arange(len(targets)), torch.tensor(targets, device=lp.device)]
        return TokenScores(token_ids=list(targets), logprobs=picked.tolist())


def _single(i: int, items) -> tuple[list[int], list[tuple[int, int]]]:
    p, m, c = items[i]
    return p + m + c, [(i, len(p) + len(m))]


def _tree(trunk, idxs, items):
    """(spine, [(item, start)] of the items that lie on it, {prefix length: [items]} of the others): the spine
    is the trunk followed by one of its own items, the longest."""
    full = {i: items[i][0] + items[i][1] + items[i][2] for i in idxs}
    spine = max((full[i] for i in idxs if len(items[i][0]) == len(trunk)), key=len)
    covered = [
        (i, len(full[i]) - len(items[i][2]))
        for i in idxs
        if len(full[i]) <= len(spine) and spine[: len(full[i])] == full[i]
    ]
    on = {i for i, _ in covered}
    rest: dict[int, list[int]] = {}
    for i in sorted(set(idxs) - on):
        rest.setdefault(len(items[i][0]), []).append(i)
    return spine, covered, rest


def _crop(cache, length: int) -> None:
    """Cut a KV cache back to its first `length` positions (transformers 5 takes the count to remove)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def _trunks(idxs: list[int], items) -> list[tuple[tuple[int, ...], list[int]]]:
    """Items grouped by nesting prefixes: (trunk, members), where every member's prefix is a prefix of the
    trunk. In lexicographic order a prefix comes right before the prefixes that extend it, so one pass over
    the sorted distinct prefixes builds the chains."""
    by_prefix: dict[tuple[int, ...], list[int]] = {}
    for i in idxs:
        by_prefix.setdefault(tuple(items[i][0]), []).append(i)
    chains: list[list[tuple[int, ...]]] = []
    for prefix in sorted(by_prefix):
        last = chains[-1][-1] if chains else None
        if last is not None and prefix[: len(last)] == last:
            chains[-1].append(prefix)
        else:
            chains.append([prefix])
    return [(chain[-1], [i for p in chain for i in by_prefix[p]]) for chain in chains]


class KVStore:
    """KV caches of token sequences computed before (a question's trajectory under one model), kept across
    calls so that the next round computes only what is new. A lookup takes the stored sequence with the
    longest common prefix and cuts its cache back to it; a sequence that extends a stored one replaces it.
    Bounded by a token budget: the least recently used sequences go first, and a sequence not in the store
    is computed from scratch (`budget` 0 turns the store off)."""

    def __init__(self, budget: int):
        self.budget = budget
        self.entries: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self.hits = self.reused_tokens = self.lookups = 0

    def lookup(self, ids: Sequence[int], limit: int) -> tuple[int, object | None]:
        """(n, a cache of ids[:n]) for the longest stored common prefix, n <= limit; (0, None) if none."""
        self.lookups += 1
        best, best_key = 0, None
        for key in self.entries:
            n = _common_prefix(key, ids, limit)
            if n > best:
                best, best_key = n, key
        if best_key is None:
            return 0, None
        self.entries.move_to_end(best_key)
        self.hits += 1
        self.reused_tokens += best
        return best, _cropped(self.entries[best_key], best)

    def peek(self, ids: Sequence[int], limit: int) -> int:
        """The longest stored common prefix with `ids` (at most `limit`), without using it."""
        return max((_common_prefix(key, ids, limit) for key in self.entries), default=0)

    def put(self, ids: Sequence[int], cache) -> None:
        if not self.budget or not ids:
            return
        key = tuple(ids)
        for old in [k for k in self.entries if len(k) <= len(key) and key[: len(k)] == k]:
            del self.entries[old]  # extended by this one
        self.entries[key] = cache
        while sum(len(k) for k in self.entries) > self.budget and len(self.entries) > 1:
            self.entries.popitem(last=False)
        if len(key) > self.budget:
            self.entries.pop(key, None)


def _common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    m = min(len(a), len(b), limit)
    if m <= 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:m]) != np.asarray(b[:m]))
    return int(diff[0]) if len(diff) else m


def _cropped(cache, length: int):
    """A cache of the first `length` positions that shares the tensors (cutting and extending a
    DynamicCache make new tensors, never write into these)."""
    from transformers import DynamicCache

    return DynamicCache(
        ddp_cache_data=[(layer.keys[..., :length, :], layer.values[..., :length, :]) for layer in cache.layers]
    )


def _batched_cache(caches: list, width: int):
    """One batch cache from single-row caches of different lengths, left-padded to `width` (the padding is
    masked out by the attention mask, as the prompts' own left padding)."""
    from transformers import DynamicCache

    layers = []
    for li in range(len(caches[0].layers)):
        keys, values = [], []
        for c in caches:
            k, v = c.layers[li].keys, c.layers[li].values
            pad = width - k.shape[-2]
            keys.append(torch.nn.functional.pad(k, (0, 0, pad, 0)))
            values.append(torch.nn.functional.pad(v, (0, 0, pad, 0)))
        layers.append((torch.cat(keys), torch.cat(values)))
    return DynamicCache(ddp_cache_data=layers)
