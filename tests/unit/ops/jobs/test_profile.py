"""The profile a replay asks for, made from the live one."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from core.settings import ChunkerSettings, Settings
from core.types import GenerationState, ReplayRequest
from ops.jobs import profile as profiles
from ops.jobs.profile import configured_profile, processing_for
from streams.profile import LiveProfile, Processing
from tests.fakes import FakeEmbedder
from tests.profiles import word_chunker


class Chunkers:
    """Stands in for SentenceChunker.for_model, which loads a tokenizer."""

    made: ClassVar[list[tuple[ChunkerSettings, str]]] = []

    @classmethod
    def for_model(cls, settings: ChunkerSettings, model: str) -> Any:
        cls.made.append((settings, model))
        return word_chunker(settings.max_tokens)


class Wide(FakeEmbedder):
    model_name = "wide"
    dimension = 768


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> LiveProfile:
    monkeypatch.setattr(profiles, "SentenceChunker", Chunkers)
    Chunkers.made = []
    settings = Settings()
    configured = configured_profile(settings)
    embedder = FakeEmbedder()
    embedder.model_name = configured.model  # type: ignore[misc]
    return LiveProfile(Processing(configured, word_chunker(), embedder))


def test_a_replay_of_the_same_model_keeps_its_embedder_and_takes_the_new_chunking(
    live: LiveProfile,
) -> None:
    made = processing_for(live, ReplayRequest(max_tokens=64), Settings())
    assert made.embedder is live.embedder
    assert made.profile.model == live.profile.model
    assert (made.profile.max_tokens, made.profile.overlap_tokens) == (
        64,
        live.profile.overlap_tokens,
    )
    [(chunking, model)] = Chunkers.made
    assert (chunking.max_tokens, model) == (64, live.profile.model)


def test_a_model_of_another_dimension_is_refused(
    live: LiveProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profiles, "SentenceTransformerEmbedder", lambda _: Wide())
    with pytest.raises(ValueError, match="768-d vectors"):
        processing_for(live, ReplayRequest(model="wide"), Settings())


def test_a_model_that_cannot_be_loaded_is_a_clear_error(
    live: LiveProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(_: Any) -> Any:
        raise OSError("no such model")

    monkeypatch.setattr(profiles, "SentenceTransformerEmbedder", missing)
    with pytest.raises(ValueError, match="'nowhere' cannot be loaded: no such model"):
        processing_for(live, ReplayRequest(model="nowhere"), Settings())


def test_the_request_is_made_against_the_profile_in_use_not_the_configured_one(
    live: LiveProfile,
) -> None:
    live.adopt(processing_for(live, ReplayRequest(max_tokens=64, overlap_tokens=8), Settings()))
    made = processing_for(live, ReplayRequest(overlap_tokens=4), Settings())
    assert (made.profile.max_tokens, made.profile.overlap_tokens) == (64, 4)


class RecordedGenerations:
    """The profile side of `core.types.Generations`, in memory."""

    def __init__(self, active: str, stored: dict[str, Any] | None = None) -> None:
        self.active = active
        self.profiles = {active: stored} if stored is not None else {}

    async def state(self) -> GenerationState:
        return GenerationState(self.active, None)

    async def record_profile(self, gen: str, profile: dict[str, Any]) -> None:
        self.profiles[gen] = profile

    async def profile_of(self, gen: str) -> dict[str, Any] | None:
        return self.profiles.get(gen)


async def test_a_generation_without_a_profile_gets_the_configured_one(live: LiveProfile) -> None:
    gens = RecordedGenerations("g:0")
    await profiles.restore_profile(live, gens, Settings())  # type: ignore[arg-type]
    assert gens.profiles["g:0"] == {
        "model": live.profile.model,
        "max_tokens": live.profile.max_tokens,
        "overlap_tokens": live.profile.overlap_tokens,
        "dimension": 3,
    }
    assert live.profile == live.configured


async def test_a_restarted_worker_takes_the_profile_its_active_index_was_made_with(
    live: LiveProfile,
) -> None:
    stored = {**profiles.stored_profile(live.current), "max_tokens": 64}
    gens = RecordedGenerations("g:1", stored)
    await profiles.restore_profile(live, gens, Settings())  # type: ignore[arg-type]
    assert live.profile.max_tokens == 64 and live.profile != live.configured
    assert profiles.stored_profile(live.current) == stored


async def test_an_index_of_another_dimension_stops_the_start_with_a_clear_error(
    live: LiveProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profiles, "SentenceTransformerEmbedder", lambda settings: Wide())
    stored = {**profiles.stored_profile(live.current), "model": "wide", "dimension": 768}
    with pytest.raises(ValueError, match="768-d"):
        await profiles.restore_profile(live, RecordedGenerations("g:1", stored), Settings())  # type: ignore[arg-type]
