"""The synthetic load of `bench/rebuild.py`: SciFact abstracts cut into
chunks and published as EmbeddedChunk events, made the way the pipeline makes
them, with random unit vectors in place of a model."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator, Sequence

import numpy as np
from confluent_kafka import Producer

from bench import scifact
from core.correlation import event_headers, mint_correlation_id, mint_traceparent
from core.ids import chunk_id
from core.kafka.config import client_config
from core.settings import Settings
from core.types import Chunk
from schemas.codec import Codecs
from schemas.events import DocumentEvent
from streams.records import chunk_events, embedded

DIMENSION = 384
CHUNK_WORDS = 60
Headers = list[tuple[str, str | bytes | None]]
Message = tuple[bytes, bytes, Headers]
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def cut(text: str) -> list[str]:
    """Whole sentences, about CHUNK_WORDS words per chunk."""
    chunks: list[str] = []
    current: list[str] = []
    for sentence in SENTENCE.split(text):
        current.append(sentence)
        if sum(len(s.split()) for s in current) >= CHUNK_WORDS:
            chunks.append(" ".join(current))
            current = []
    if current:
        chunks.append(" ".join(current))
    return chunks


def documents(seed: int) -> Iterator[tuple[DocumentEvent, list[str]]]:
    """SciFact abstracts as documents (cycled with a new id past the end), each
    with its chunk texts; a third of them cite one to three others."""
    corpus = scifact.path(scifact.DATASET, "corpus.jsonl")
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line]
    rng = np.random.default_rng(seed)
    for cycle in itertools.count():
        ids = [f"sf{cycle}-{row['_id']}" for row in rows]
        for row in rows:
            cites = rng.random() < 1 / 3
            links = [str(d) for d in rng.choice(ids, rng.integers(1, 4))] if cites else []
            doc = DocumentEvent(
                doc_id=f"sf{cycle}-{row['_id']}",
                version=1,
                occurred_at=int(time.time() * 1000),
                title=row.get("title", ""),
                text=row.get("text", ""),
                source="scifact",
                metadata={"dataset": "scifact-dev"},
                links=links,
            )
            yield doc, cut(doc.text)


VECTORS = ("random", "clustered")
CENTRES = 200  # clustered vectors: points around this many centres
SPREAD = 0.6  # the norm of a point's noise around its centre, about


def synthetic_events(
    chunks: int, codecs: Codecs, seed: int, vectors: str = "random"
) -> tuple[list[Message], int]:
    """`chunks` encoded EmbeddedChunk events, keyed and with headers as the
    embedder stage publishes them; and how many documents they make.
    `vectors`: "random" unit vectors (no structure: the hardest case for an
    HNSW build), or "clustered" ones around CENTRES centres, closer to what a
    model's embeddings look like."""
    rng = np.random.default_rng(seed)
    centres = None
    if vectors == "clustered":
        centres = rng.standard_normal((CENTRES, DIMENSION)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    codec = codecs.embedded
    out: list[Message] = []
    for docs, (doc, texts) in enumerate(documents(seed), start=1):
        cuts = [
            Chunk(chunk_id(doc.doc_id, i), doc.doc_id, i, t, 0, len(t)) for i, t in enumerate(texts)
        ]
        points = unit_vectors(rng, len(cuts), centres)
        headers: Headers = [
            *event_headers(mint_correlation_id(), mint_traceparent(), codec.fingerprint_hex)
        ]
        for chunk, vector in zip(chunk_events(doc, cuts), points, strict=True):
            value = codec.encode(embedded(chunk, vector, "all-MiniLM-L6-v2").to_record())
            out.append((doc.doc_id.encode(), value, headers))
        if len(out) >= chunks:
            return out[:chunks], docs
    raise AssertionError("unreachable")


def unit_vectors(rng: np.random.Generator, count: int, centres: np.ndarray | None) -> np.ndarray:
    if centres is None:
        points = rng.standard_normal((count, DIMENSION)).astype(np.float32)
    else:
        noise = rng.standard_normal((count, DIMENSION)).astype(np.float32)
        points = centres[rng.integers(0, len(centres), count)] + noise * SPREAD / DIMENSION**0.5
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points


def publish(settings: Settings, messages: Sequence[Message]) -> float:
    # Raw speed over the pipeline's guarantees, on the servers and security of every client.
    producer = Producer(
        client_config(
            settings.kafka,
            **{
                "linger.ms": 20,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": max(100_000, 2 * len(messages)),
            },
        )
    )
    started = time.perf_counter()
    for key, value, headers in messages:
        producer.produce(settings.kafka.topics.chunks_embedded, value, key, headers=headers)
        producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("events not delivered to Kafka")
    return time.perf_counter() - started
