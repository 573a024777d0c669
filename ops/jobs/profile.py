"""Making processing profiles: the configured one the worker starts with, and
the one a replay asks for (`ops/jobs/replay.py`), which it hands to the live
holder (`streams/profile.py`) at its switch.

Each generation keeps the profile that made it in its store
(`Generations.record_profile`: rebuilds and replays write it before their
switch). A starting worker reads the active generation's back
(`restore_profile`), so a replay's profile outlives a restart.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from typing import Any

from core.logs import get_logger
from core.settings import ChunkerSettings, Settings
from core.types import Embedder, Generations, ReplayRequest
from streams.chunker import SentenceChunker
from streams.embedding.model import SentenceTransformerEmbedder
from streams.profile import LiveProfile, Processing, Profile

log = get_logger(__name__)


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


def stored_profile(processing: Processing) -> dict[str, Any]:
    """What a generation keeps of the profile that made it."""
    return {**asdict(processing.profile), "dimension": processing.embedder.dimension}


async def restore_profile(live: LiveProfile, generations: Generations, settings: Settings) -> None:
    """At start-up: the active generation's recorded profile becomes the one the
    worker uses (a replay's, say, that the configuration does not name yet).
    A generation with none recorded (made before profiles were kept, or the
    first one) gets the configured profile recorded."""
    active = (await generations.state()).active
    stored = await generations.profile_of(active)
    mine = stored_profile(live.current)
    if stored is None:
        await generations.record_profile(active, mine)
        return
    if stored == mine:
        return
    request = ReplayRequest(
        model=str(stored["model"]),
        max_tokens=int(stored["max_tokens"]),
        overlap_tokens=int(stored["overlap_tokens"]),
    )
    # Raises ValueError when it cannot be made (another dimension, a model that
    # does not load): the worker then fails to start, saying why.
    processing = await asyncio.to_thread(processing_for, live, request, settings)
    live.adopt(processing)
    log.warning(
        "the active index was made with another profile than the configured one: "
        "the worker uses the index's; configure it, or replay to change it",
        extra={"generation": active, "stored": stored, "configured": mine},
    )
