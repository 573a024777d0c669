"""A processing profile that stands still, for the readers of `CurrentProfile`
(the stages, the query service) under test. The holder that a replay switches
is `streams/profile.py`'s LiveProfile, tested in tests/unit/streams/test_profile.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.settings import ChunkerSettings
from core.types import Chunker, Embedder
from streams.chunker import SentenceChunker
from streams.embedding.tokens import WordCounter
from tests.fakes import FakeEmbedder


def word_chunker(max_tokens: int = 2) -> SentenceChunker:
    return SentenceChunker(ChunkerSettings(max_tokens=max_tokens, overlap_tokens=0), WordCounter())


@dataclass
class FixedProfile:
    chunker: Chunker = field(default_factory=word_chunker)
    embedder: Embedder = field(default_factory=FakeEmbedder)
    digest: str = "fixed"
    retired_models: set[str] = field(default_factory=set)

    def retired(self, model: str) -> bool:
        return model in self.retired_models
