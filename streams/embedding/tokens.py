"""Token counts for the chunker, which sizes chunks in tokens of the embedding
model's own tokenizer so that the model never silently truncates a chunk.

`TokenizerCounter` counts exactly what the embedder sees (the model's fast
tokenizer, special tokens left out) and knows how many tokens the model takes;
`WordCounter` is a cheap stand-in for tests that must not load a model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from streams.embedding.model import resolve_model


class TokenCounter(Protocol):
    @property
    def limit(self) -> int | None:
        """The most tokens (special tokens excluded) the model reads of one text,
        or None where that is unknown."""
        ...

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens in each text, without special tokens, in one batched call."""
        ...


# Ideographs, kana and hangul count one token each (BERT's tokenizers split
# ideographs apart, too); any other run of non-space characters counts one.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_WORDS = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


class WordCounter:
    """Counts words (and CJK characters) as tokens. No model, no limit."""

    limit: int | None = None

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORDS.findall(text)) for text in texts]


# transformers gives tokenizers with no known limit a huge model_max_length.
_NO_LIMIT = 1_000_000


class TokenizerCounter:
    """Counts with the model's own fast tokenizer, as the embedder will see the text."""

    def __init__(self, tokenizer: Any, limit: int | None) -> None:
        from tokenizers import Tokenizer

        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer")
        # A copy of the Rust tokenizer, without the truncation and padding its
        # tokenizer.json may set (all-MiniLM-L6-v2's pads and cuts to 128): we
        # want true lengths.
        self._tokenizer = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        # Offsets are not needed; encode_batch_fast skips them where it exists.
        self._encode = getattr(self._tokenizer, "encode_batch_fast", self._tokenizer.encode_batch)
        self._limit = limit

    @classmethod
    def load(cls, model: str) -> TokenizerCounter:
        """The tokenizer of `model`, named as EmbedderSettings.model names it."""
        from transformers import AutoTokenizer

        path = resolve_model(model)
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
        return cls(tokenizer, _limit(path, tokenizer))

    @property
    def limit(self) -> int | None:
        return self._limit

    def count(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(encoding) for encoding in self._encode(list(texts), add_special_tokens=False)]


def _limit(path: str, tokenizer: Any) -> int | None:
    """Tokens of text the model reads: the smaller of sentence-transformers'
    max_seq_length and the tokenizer's model_max_length, less the special tokens."""
    lengths: list[int] = []
    config = Path(path) / "sentence_bert_config.json"
    if config.is_file():
        seq = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(seq, int) and seq > 0:
            lengths.append(seq)
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < _NO_LIMIT:
        lengths.append(model_max)
    if not lengths:
        return None
    return max(1, min(lengths) - int(tokenizer.num_special_tokens_to_add(pair=False)))
