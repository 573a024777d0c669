"""The worker's live processing (its profile: chunker and embedding model) and
the one place a replay replaces it at its switch (`ops/jobs/replay.py`).

After the switch the chunker, the embedder and the query embedder are the
replay's, the query-vector cache starts empty (its vectors are of the old
model), and the sinks skip vectors of the old model still in flight. The
worker's configuration is not rewritten: until it names the same profile, a
restart brings the old one back, and the log says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from api.rebuild import ReplayRequest
from api.search import QueryEmbeddings, SearchService
from core.logs import get_logger
from core.metrics import PROFILE
from core.settings import ChunkerSettings, Settings
from core.types import Embedder
from ops.jobs.replay import Processing, Profile
from streams.app import Stages
from streams.chunker import SentenceChunker
from streams.embedding.model import SentenceTransformerEmbedder

log = get_logger(__name__)


@dataclass
class LiveProcessing:
    """The profile the worker runs and its embedder; the chunker lives in the
    chunk stage, which this keeps told of the profile's digest."""

    profile: Profile
    embedder: Embedder
    stages: Stages
    search: SearchService | None = None

    def __post_init__(self) -> None:
        self.configured = self.profile  # what the worker started with
        self.retired_models: set[str] = set()  # replaced by a replay, in this process
        self.stages.chunk.profile = self.profile.digest
        self._export()

    def _export(self) -> None:
        """The profile in use as a metric (status and alerts read it)."""
        PROFILE.clear()
        profile = self.profile
        configured = "true" if profile == self.configured else "false"
        PROFILE.labels(
            profile.model, str(profile.max_tokens), str(profile.overlap_tokens), configured
        ).set(1)

    def retired(self, model: str) -> bool:
        """Whether vectors of `model` were replaced by a replay's (and so must
        not be written again)."""
        return model in self.retired_models

    def cut_by_current(self, digest: str) -> bool:
        """Whether a document state's profile digest is the one in use (a state
        written before digests were kept is of the configured profile)."""
        return (digest or self.configured.digest) == self.profile.digest

    def processing_for(self, request: ReplayRequest, settings: Settings) -> Processing:
        """The chunker and embedder a replay asks for (slow when it names another
        model: it loads it). Raises ValueError when they cannot be made."""
        profile = Profile(
            request.model or self.profile.model,
            self.profile.max_tokens if request.max_tokens is None else request.max_tokens,
            self.profile.overlap_tokens
            if request.overlap_tokens is None
            else request.overlap_tokens,
        )
        embedder = (
            self.embedder if profile.model == self.profile.model else _load(profile, settings)
        )
        if embedder.dimension != self.embedder.dimension:
            raise ValueError(
                f"model {profile.model!r} makes {embedder.dimension}-d vectors and the index "
                f"holds {self.embedder.dimension}-d ones: a replay keeps the dimension"
            )
        chunker_settings = ChunkerSettings(
            max_tokens=profile.max_tokens,
            overlap_tokens=profile.overlap_tokens,
            max_text_bytes=settings.chunker.max_text_bytes,
        )
        chunker = SentenceChunker.for_model(chunker_settings, profile.model)
        return Processing(profile, chunker, embedder)

    def adopt(self, processing: Processing) -> None:
        """Called by a replay at its switch, with no await in between: what the
        worker chunks, embeds and queries with from now on."""
        if processing.embedder.model_name != self.embedder.model_name:
            self.retired_models.add(self.embedder.model_name)
        self.retired_models.discard(processing.embedder.model_name)
        self.profile, self.embedder = processing.profile, processing.embedder
        self.stages.chunk.chunker = processing.chunker
        self.stages.chunk.profile = processing.profile.digest
        if self.stages.embed is not None:
            self.stages.embed.embedder = processing.embedder
        if self.search is not None:
            self.search.embeddings = QueryEmbeddings(processing.embedder)
        self._export()
        log.warning(
            "the worker now chunks and embeds with the replay's profile; "
            "configure it before the next restart, which would bring the old one back",
            extra={"profile": vars(processing.profile), "configure": processing.profile.settings()},
        )


def configured_profile(settings: Settings) -> Profile:
    return Profile(
        settings.embedder.model, settings.chunker.max_tokens, settings.chunker.overlap_tokens
    )


def _load(profile: Profile, settings: Settings) -> Embedder:
    try:
        return SentenceTransformerEmbedder(replace(settings.embedder, model=profile.model))
    except Exception as exc:  # whatever the loader raises: the request named it
        raise ValueError(f"model {profile.model!r} cannot be loaded: {exc}") from exc
