"""Making processing profiles: the configured one the worker starts with, and
the one a replay asks for (`ops/jobs/replay.py`), which it hands to the live
holder (`streams/profile.py`) at its switch.
"""

from __future__ import annotations

from dataclasses import replace

from core.settings import ChunkerSettings, Settings
from core.types import Embedder, ReplayRequest
from streams.chunker import SentenceChunker
from streams.embedding.model import SentenceTransformerEmbedder
from streams.profile import LiveProfile, Processing, Profile


def configured_profile(settings: Settings) -> Profile:
    return Profile(
        settings.embedder.model, settings.chunker.max_tokens, settings.chunker.overlap_tokens
    )


def configured_processing(settings: Settings, embedder: Embedder) -> Processing:
    """The configured profile with `embedder` (already loaded: the caller also
    needs its dimension) and a chunker counting with the model's tokenizer."""
    chunker = SentenceChunker.for_model(settings.chunker, settings.embedder.model)
    return Processing(configured_profile(settings), chunker, embedder)


def processing_for(live: LiveProfile, request: ReplayRequest, settings: Settings) -> Processing:
    """The chunker and embedder a replay asks for (slow when it names another
    model: it loads it). Raises ValueError when they cannot be made."""
    current = live.current
    profile = Profile(
        request.model or current.profile.model,
        current.profile.max_tokens if request.max_tokens is None else request.max_tokens,
        current.profile.overlap_tokens
        if request.overlap_tokens is None
        else request.overlap_tokens,
    )
    embedder = (
        current.embedder if profile.model == current.profile.model else _load(profile, settings)
    )
    if embedder.dimension != current.embedder.dimension:
        raise ValueError(
            f"model {profile.model!r} makes {embedder.dimension}-d vectors and the index "
            f"holds {current.embedder.dimension}-d ones: a replay keeps the dimension"
        )
    chunker_settings = ChunkerSettings(
        max_tokens=profile.max_tokens,
        overlap_tokens=profile.overlap_tokens,
        max_text_bytes=settings.chunker.max_text_bytes,
    )
    chunker = SentenceChunker.for_model(chunker_settings, profile.model)
    return Processing(profile, chunker, embedder)


def _load(profile: Profile, settings: Settings) -> Embedder:
    try:
        return SentenceTransformerEmbedder(replace(settings.embedder, model=profile.model))
    except Exception as exc:  # whatever the loader raises: the request named it
        raise ValueError(f"model {profile.model!r} cannot be loaded: {exc}") from exc
