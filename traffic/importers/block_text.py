"""Prompt text for a trace that records only the hashes of its prompt blocks.

A block-hash trace (Mooncake) says which requests share which leading blocks of
``block_size`` tokens, not what the blocks said. :class:`BlockText` makes up the text:
each hash id always becomes the same run of words, so prompts that share leading hash
ids share leading text, and the served model's tokenizer turns that text back into
exactly the tokens chosen. The words are the tokenizer's own single-token words (a
space and 3–9 lowercase letters, e.g. ``" the"``) that encode back to themselves; a
space starts every one, so no merge crosses from one word, or one block, to the next.

``block_tokens`` (default ``block_size``) is how many tokens a block becomes: smaller
shrinks every prompt by the same factor, which keeps the trace's share of reused tokens
and makes a trace written for an 8-GPU deployment fit a small model's context. The last
block is partial, as in the trace (``input_length`` − full blocks), scaled alike.

The prompt is two messages: the system message holds every block but the last, and the
user message the last block. A request that repeats an earlier one's leading blocks thus
repeats its system message (what ``kv_cache_eviction`` follows as a shared context
when it is the whole of it), and the served chat template puts the same tokens first.

A cap (``max_prompt_tokens``) cuts whole blocks from the middle: the leading blocks
(where the sharing is) and the last one stay.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traffic.errors import WorkloadError

__all__ = ["BlockText", "default_tokenizer_path"]

_WORD = re.compile(r"Ġ[a-z]{3,9}")  # byte-level BPE spells a leading space Ġ


def default_tokenizer_path() -> Path:
    """The prepared model's ``tokenizer.json`` (``cluster-eval model prepare``)."""
    from cluster_eval.settings import get_settings

    return get_settings().model_dir / "tokenizer.json"


@dataclass
class BlockText:
    """Hash ids → messages, in a tokenizer's words (see the module doc)."""

    words: list[str]  # each one token of the tokenizer, round-trip exact
    block_size: int
    block_tokens: int
    seed: int = 0

    @classmethod
    def load(cls, tokenizer: Path | None, *, block_size: int, block_tokens: int | None,
             seed: int = 0) -> BlockText:
        """Read the words of ``tokenizer`` (a ``tokenizer.json`` or a folder holding one)."""
        path = tokenizer or default_tokenizer_path()
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise WorkloadError(
                f"no tokenizer at {path}: block-hash traces need the served model's "
                "tokenizer.json (run `cluster-eval model prepare`, or give --tokenizer)")
        from tokenizers import Tokenizer

        try:
            loaded = Tokenizer.from_file(str(path))
        except Exception as exc:  # the library raises its own untyped errors
            raise WorkloadError(f"{path}: not a tokenizer.json the tokenizers library "
                                f"reads: {exc}") from exc
        words = []
        for piece, token_id in sorted(loaded.get_vocab().items(), key=lambda item: item[1]):
            if _WORD.fullmatch(piece):
                word = loaded.decode([token_id])
                if loaded.encode(word, add_special_tokens=False).ids == [token_id]:
                    words.append(word)
        if len(words) < 100:
            raise WorkloadError(
                f"{path}: only {len(words)} single-token words ('Ġ' + letters); block-hash "
                "traces need a byte-level BPE tokenizer (GPT-2, Llama 3, Qwen, SmolLM)")
        return cls(words, block_size, block_tokens or block_size, seed)

    def block(self, hash_id: int, tokens: int) -> str:
        """The first ``tokens`` words of the block ``hash_id`` (the same seed and hash id
        give the same words; a shorter block is the start of the longer one)."""
        rng = random.Random(f"{self.seed}:{hash_id}")
        return "".join(rng.choices(self.words, k=tokens))

    def sizes(self, n_blocks: int, input_length: int) -> list[int]:
        """Tokens of each block: full ones, then the partial last one, scaled."""
        last = min(max(input_length - self.block_size * (n_blocks - 1), 1), self.block_size)
        scaled_last = max(1, round(last * self.block_tokens / self.block_size))
        return [self.block_tokens] * (n_blocks - 1) + [scaled_last]

    def messages(self, hash_ids: tuple[int, ...], input_length: int,
                 max_prompt_tokens: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """(the prompt's messages, whether the cap cut blocks from the middle)."""
        sizes = self.sizes(len(hash_ids), input_length)
        kept = list(range(len(hash_ids)))
        cut = False
        if max_prompt_tokens is not None and sum(sizes) > max_prompt_tokens:
            cut = True
            room = max_prompt_tokens - sizes[-1]
            head = []
            for index in kept[:-1]:
                if room < sizes[index]:
                    break
                head.append(index)
                room -= sizes[index]
            kept = head + [kept[-1]]
        if cut and sizes[-1] > (max_prompt_tokens or 0):
            sizes[-1] = max_prompt_tokens or 1  # the last block alone passes the cap
        texts = [self.block(hash_ids[i], sizes[i]) for i in kept]
        user = {"role": "user", "content": texts[-1]}
        if len(texts) == 1:
            return [user], cut
        return [{"role": "system", "content": "".join(texts[:-1])}, user], cut
