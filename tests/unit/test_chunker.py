from core.ids import chunk_id
from core.settings import ChunkerSettings
from streams.chunker import SentenceChunker

TEXT = (
    "Kafka keeps events in order. Partitions split a topic. Keys pick partitions.\n\n"
    "Qdrant stores vectors. Neo4j stores the graph of chunks and documents. "
    "Both are projections of the log and can be rebuilt."
)


def chunker(max_words: int = 12, overlap: int = 1) -> SentenceChunker:
    return SentenceChunker(ChunkerSettings(max_words=max_words, overlap_sentences=overlap))


def test_same_text_gives_the_same_chunks_and_ids() -> None:
    first, second = chunker().chunk("doc", TEXT), chunker().chunk("doc", TEXT)
    assert first == second
    assert [c.chunk_id for c in first] == [chunk_id("doc", i) for i in range(len(first))]


def test_chunk_ids_differ_between_documents() -> None:
    assert chunker().chunk("a", TEXT)[0].chunk_id != chunker().chunk("b", TEXT)[0].chunk_id


def test_offsets_point_at_the_chunk_text() -> None:
    for chunk in chunker().chunk("doc", TEXT):
        assert TEXT[chunk.start : chunk.end] == chunk.text


def test_chunks_respect_the_word_budget_and_sentence_boundaries() -> None:
    chunks = chunker(max_words=12).chunk("doc", TEXT)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk.text.split()) <= 12
        assert chunk.text.rstrip()[-1] in ".!?"


def test_a_paragraph_end_closes_a_chunk() -> None:
    chunks = chunker(max_words=20, overlap=0).chunk("doc", TEXT)
    assert chunks[0].text.endswith("Keys pick partitions.")


def test_overlap_repeats_the_last_sentence() -> None:
    text = "One two three. Four five six. Seven eight. Nine ten eleven."
    chunks = chunker(max_words=6, overlap=1).chunk("doc", text)
    assert [c.text for c in chunks] == [
        "One two three. Four five six.",
        "Four five six. Seven eight.",
        "Seven eight. Nine ten eleven.",
    ]


def test_empty_and_blank_text_give_no_chunks() -> None:
    assert chunker().chunk("doc", "") == []
    assert chunker().chunk("doc", " \n\n \t") == []


def test_one_huge_sentence_is_cut_at_words() -> None:
    text = " ".join(f"w{i}" for i in range(1000))
    chunks = chunker(max_words=100, overlap=0).chunk("doc", text)
    assert len(chunks) == 10
    assert " ".join(c.text for c in chunks) == text


def test_text_without_spaces_is_cut_by_characters() -> None:
    text = "字" * 5000
    chunks = chunker(max_words=50, overlap=0).chunk("doc", text)
    assert len(chunks) > 1
    assert "".join(c.text for c in chunks) == text


def test_cjk_sentence_ends_are_boundaries() -> None:
    chunks = chunker(max_words=3, overlap=0).chunk("doc", "日本語の文です。" * 20)
    assert all(c.text.endswith("。") for c in chunks)
