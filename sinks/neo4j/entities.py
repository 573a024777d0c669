"""A lightweight, rule-based entity extractor: no model to download, stable
output for the same text. It finds what a graph can usefully expand on: names
written with capitals (multi-word: "Apache Kafka"), acronyms and product codes
("BM25", "GPU", "H100", "Neo4j")."""

from __future__ import annotations

import re

MAX_ENTITIES = 20
# Sentence-initial words that are capitalised only because they start a sentence.
_LEADING_STOP = {
    "a", "an", "and", "as", "at", "but", "by", "each", "every", "for", "from", "how", "if",
    "in", "it", "its", "of", "on", "only", "or", "so", "such", "that", "the", "their", "then",
    "there", "these", "this", "those", "to", "when", "where", "which", "while", "with", "why",
}  # fmt: skip
_PHRASE = re.compile(r"\b[A-Z][a-z0-9]+(?:[ -][A-Z][A-Za-z0-9]+)+\b")
# A token with an inner capital or a digit beside letters: BM25, GPU, Neo4j, H100.
_CODE = re.compile(
    r"\b(?=[A-Za-z0-9-]*(?:[A-Z][A-Za-z0-9-]*[A-Z0-9]|\d))[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]\b"
)


def _clean(phrase: str) -> str:
    words = phrase.split()
    while words and words[0].lower() in _LEADING_STOP:
        words = words[1:]
    return " ".join(words)


def extract_entities(text: str) -> list[str]:
    """Entity names in order of first appearance, each once (case-insensitive)."""
    found: dict[str, str] = {}
    candidates = [(m.start(), _clean(m.group())) for m in _PHRASE.finditer(text)]
    candidates += [(m.start(), m.group()) for m in _CODE.finditer(text)]
    for _, name in sorted(candidates):
        key = name.lower()
        if len(name) >= 2 and key not in found and not any(key in k.split() for k in found):
            found[key] = name
        if len(found) >= MAX_ENTITIES:
            break
    return list(found.values())
