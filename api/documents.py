"""Document intake over HTTP: the JSON a producer posts, checked field by field,
becomes DocumentEvents. No I/O here, so every rule is unit-tested."""

from __future__ import annotations

from typing import Any

from api.problems import FieldError
from schemas.events import MAX_MILLIS, DocumentEvent, InvalidEvent, now_millis

STRING_FIELDS = ("title", "text", "source", "content_type")
KNOWN_FIELDS = {"doc_id", "version", "op", "metadata", "links", "occurred_at", *STRING_FIELDS}
MAX_DOC_ID = 512
MAX_LONG = 2**63 - 1  # Avro long


def documents_of(payload: Any, max_batch: int) -> tuple[list[DocumentEvent], bool]:
    """The documents in a posted body, and whether it was a batch.

    A body is one document (an object), or a batch: a list of documents or
    `{"documents": [...]}`."""
    if isinstance(payload, dict) and set(payload) == {"documents"}:
        payload = payload["documents"]
        prefix = "documents"
    else:
        prefix = ""
    if isinstance(payload, list):
        if not payload:
            raise FieldError(prefix or "body", "a batch needs at least one document")
        if len(payload) > max_batch:
            raise FieldError(prefix or "body", f"at most {max_batch} documents per request")
        return [document_of(d, f"{prefix}[{i}]") for i, d in enumerate(payload)], True
    return [document_of(payload, prefix)], False


def _where(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def doc_id_of(value: Any, where: str = "doc_id") -> str:
    """The one rule for a doc_id, in a body or a path: a string of at most
    MAX_DOC_ID characters that is not only whitespace (Unicode whitespace too:
    the event would refuse it later)."""
    if not isinstance(value, str) or not value.strip():
        raise FieldError(where, "is required and must be a non-empty string")
    if len(value) > MAX_DOC_ID:
        raise FieldError(where, f"must be at most {MAX_DOC_ID} characters")
    return value


def document_of(raw: Any, path: str = "") -> DocumentEvent:
    if not isinstance(raw, dict):
        raise FieldError(path or "body", "must be a JSON object")
    unknown = sorted(set(raw) - KNOWN_FIELDS)
    if unknown:
        raise FieldError(_where(path, unknown[0]), "unknown field")
    values: dict[str, Any] = {"doc_id": doc_id_of(raw.get("doc_id"), _where(path, "doc_id"))}
    for field in STRING_FIELDS:
        if field in raw:
            if not isinstance(raw[field], str):
                raise FieldError(_where(path, field), "must be a string")
            values[field] = raw[field]
    now = now_millis()
    values["version"] = _non_negative_int(raw, "version", path, now, MAX_LONG)
    # A timestamp a reader cannot decode (after year 9999) would stop every
    # consumer that reads the topic: refused here, with the range it must be in.
    values["occurred_at"] = _non_negative_int(raw, "occurred_at", path, now, MAX_MILLIS)
    values["op"] = raw.get("op", "UPSERT")
    if values["op"] not in ("UPSERT", "DELETE"):
        raise FieldError(_where(path, "op"), "must be UPSERT or DELETE")
    values["metadata"] = _string_map(raw.get("metadata", {}), _where(path, "metadata"))
    values["links"] = _string_list(raw.get("links", []), _where(path, "links"))
    if values["op"] == "UPSERT" and not values.get("text", "").strip():
        raise FieldError(_where(path, "text"), "is required (non-blank) for an UPSERT")
    _check_unicode(values, path)
    try:
        return DocumentEvent(**values)
    except InvalidEvent as exc:
        raise FieldError(path or "body", str(exc)) from exc


def _non_negative_int(
    raw: dict[str, Any], field: str, path: str, default: int, maximum: int
) -> int:
    value = raw.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise FieldError(_where(path, field), f"must be an integer from 0 to {maximum}")
    return value


def _check_unicode(values: dict[str, Any], path: str) -> None:
    """JSON can carry lone surrogates (`"\\ud800"`), which UTF-8 cannot: refuse
    them here, naming the field, rather than fail while encoding the event."""
    for field, value in values.items():
        texts = [value] if isinstance(value, str) else []
        if isinstance(value, list):
            texts = value
        elif isinstance(value, dict):
            texts = [*value.keys(), *value.values()]
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise FieldError(
                    _where(path, field), "is not valid Unicode (lone surrogate)"
                ) from None


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise FieldError(where, "must be an object whose values are strings")
    return dict(value)


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise FieldError(where, "must be a list of non-empty strings (doc_ids)")
    return list(value)
