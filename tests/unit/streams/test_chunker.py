import logging
from collections.abc import Sequence

import pytest

from core.ids import chunk_id
from core.settings import ChunkerSettings, Settings
from streams.chunker import SentenceChunker
from streams.embedding.tokens import TokenizerCounter, WordCounter

TEXT = (
    "Kafka keeps events in order. Partitions split a topic. Keys pick partitions.\n\n"
    "Qdrant stores vectors. Neo4j stores the graph of chunks and documents. "
    "Both are projections of the log and can be rebuilt."
)

# Counting stand-in: every word (and every CJK character) is one token.
WORDS = WordCounter()


def chunker(max_tokens: int = 12, overlap: int = 4) -> SentenceChunker:
    return SentenceChunker(ChunkerSettings(max_tokens=max_tokens, overlap_tokens=overlap), WORDS)


class CountingWords(WordCounter):
    def __init__(self) -> None:
        self.calls: list[int] = []

    def count(self, texts: Sequence[str]) -> list[int]:
        self.calls.append(len(texts))
        return super().count(texts)


def test_same_text_gives_the_same_chunks_and_ids() -> None:
    first, second = chunker().chunk("doc", TEXT), chunker().chunk("doc", TEXT)
    assert first == second
    assert [c.chunk_id for c in first] == [chunk_id("doc", i) for i in range(len(first))]


def test_chunk_ids_differ_between_documents() -> None:
    assert chunker().chunk("a", TEXT)[0].chunk_id != chunker().chunk("b", TEXT)[0].chunk_id


def test_offsets_point_at_the_chunk_text() -> None:
    for chunk in chunker().chunk("doc", TEXT):
        assert TEXT[chunk.start : chunk.end] == chunk.text


def test_chunks_respect_the_token_budget_and_sentence_boundaries() -> None:
    chunks = chunker(max_tokens=12).chunk("doc", TEXT)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk.text.split()) <= 12
        assert chunk.text.rstrip()[-1] in ".!?"


def test_a_paragraph_end_closes_a_chunk() -> None:
    chunks = chunker(max_tokens=20, overlap=0).chunk("doc", TEXT)
    assert chunks[0].text.endswith("Keys pick partitions.")


def test_a_paragraph_end_does_not_close_a_chunk_less_than_half_full() -> None:
    text = "Short one.\n\nAnother short one. And a third sentence here."
    chunks = chunker(max_tokens=20, overlap=0).chunk("doc", text)
    assert [c.text for c in chunks] == [text]


def test_overlap_repeats_the_last_whole_sentences_up_to_the_overlap_budget() -> None:
    text = "One two three. Four five six. Seven eight. Nine ten eleven."
    chunks = chunker(max_tokens=6, overlap=3).chunk("doc", text)
    assert [c.text for c in chunks] == [
        "One two three. Four five six.",
        "Four five six. Seven eight.",
        "Seven eight. Nine ten eleven.",
    ]
    chunks = chunker(max_tokens=8, overlap=5).chunk("doc", text)
    assert [c.text for c in chunks] == [
        "One two three. Four five six. Seven eight.",
        "Four five six. Seven eight. Nine ten eleven.",
    ]


def test_no_overlap_repeats_nothing() -> None:
    text = "One two three. Four five six. Seven eight. Nine ten eleven."
    chunks = chunker(max_tokens=6, overlap=0).chunk("doc", text)
    assert " ".join(c.text for c in chunks) == text


def test_empty_and_blank_text_give_no_chunks() -> None:
    assert chunker().chunk("doc", "") == []
    assert chunker().chunk("doc", " \n\n \t") == []


def test_one_huge_sentence_is_cut_at_words() -> None:
    text = " ".join(f"w{i}" for i in range(1000))
    chunks = chunker(max_tokens=100, overlap=0).chunk("doc", text)
    assert len(chunks) == 10
    assert " ".join(c.text for c in chunks) == text


def test_a_huge_sentence_starts_a_chunk_of_its_own_and_is_not_overlapped() -> None:
    huge = " ".join(f"w{i}" for i in range(25)) + "."
    text = f"A short lead. {huge} A short tail."
    chunks = chunker(max_tokens=10, overlap=4).chunk("doc", text)
    assert chunks[0].text == "A short lead."
    assert all(len(c.text.split()) <= 10 for c in chunks)
    assert chunks[-1].text.endswith("A short tail.")
    assert sum(c.text.count("w1 ") for c in chunks) == 1


def test_text_without_spaces_is_cut_by_characters() -> None:
    text = "字" * 5000
    chunks = chunker(max_tokens=50, overlap=0).chunk("doc", text)
    assert len(chunks) == 100
    assert "".join(c.text for c in chunks) == text


def test_cjk_sentence_ends_are_boundaries() -> None:
    chunks = chunker(max_tokens=20, overlap=0).chunk("doc", "日本語の文です。" * 20)
    assert len(chunks) == 10
    assert all(c.text == "日本語の文です。" * 2 for c in chunks)


def test_sentences_are_counted_in_one_batched_call() -> None:
    counter = CountingWords()
    text = (TEXT + "\n\n") * 50
    SentenceChunker(ChunkerSettings(max_tokens=40, overlap_tokens=8), counter).chunk("d", text)
    assert counter.calls == [300]


def test_settings_are_read_from_the_environment() -> None:
    env = {"DOCSTREAM_CHUNK_MAX_TOKENS": "48", "DOCSTREAM_CHUNK_OVERLAP_TOKENS": "8"}
    assert Settings.from_env(env).chunker == ChunkerSettings(max_tokens=48, overlap_tokens=8)
    assert Settings.from_env({}).chunker == ChunkerSettings(max_tokens=200, overlap_tokens=32)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(0, 0), (10, -1), (10, 10)])
def test_nonsense_sizes_are_refused(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        ChunkerSettings(max_tokens=max_tokens, overlap_tokens=overlap)


# The real tokenizer of the embedding model: loaded from site-packages, offline.


@pytest.fixture(scope="module")
def minilm() -> TokenizerCounter:
    return TokenizerCounter.load("all-MiniLM-L6-v2")


def mixed_text() -> str:
    prose = " ".join(
        f"Section {n} explains how the worker's tokenizer (WordPiece) splits "
        f"'unbelievably' into pieces, and why chunk #{n} must stay under the limit!"
        for n in range(40)
    )
    enormous = (
        " ".join(f"token{i}-x{i * 7}/y{i % 13}" for i in range(2500))
        + " https://example.com/"
        + "/".join(f"seg{i}" for i in range(600))
        + " end."
    )
    cjk = "東京の研究所は新しい言語モデルを発表しました。" * 30 + "漢字" * 800 + "。"
    return f"{prose}\n\n{enormous}\n\n{cjk}\n\nA last short paragraph."


def test_every_chunk_fits_the_model_by_its_own_tokenizer(minilm: TokenizerCounter) -> None:
    from transformers import AutoTokenizer

    from streams.embedding.model import resolve_model

    assert minilm.limit == 254  # 256 word pieces less [CLS] and [SEP]
    text = mixed_text()
    settings = ChunkerSettings(max_tokens=200, overlap_tokens=32)
    chunks = SentenceChunker(settings, minilm).chunk("doc", text)
    assert chunks == SentenceChunker(settings, minilm).chunk("doc", text)

    # Counted independently, as sentence-transformers will tokenize them.
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("all-MiniLM-L6-v2"), use_fast=True)
    lengths = [len(ids) for ids in tokenizer([c.text for c in chunks])["input_ids"]]
    assert max(lengths) <= 200 + 2
    assert sum(lengths) / len(lengths) > 150, "chunks should be reasonably full"

    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
    # Chunks run in text order and every character but spaces lands in one.
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered for i, char in enumerate(text) if not char.isspace())
    assert chunks[-1].text == "A last short paragraph."
    assert any(c.text.endswith("。") for c in chunks)


def test_the_model_limit_caps_max_tokens(
    minilm: TokenizerCounter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        capped = SentenceChunker(ChunkerSettings(max_tokens=1000, overlap_tokens=32), minilm)
    assert capped.max_tokens == 254
    assert "capped" in caplog.text
    text = " ".join(f"word{i}" for i in range(3000)) + "."
    assert max(minilm.count([c.text for c in capped.chunk("doc", text)])) <= 254
