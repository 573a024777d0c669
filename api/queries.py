"""A query, from `GET /query` parameters or a `POST /query` JSON body, checked
field by field. Both shapes become the same dict first, then one validator:

    GET  /query?q=…&k=10&expand=3&mode=hybrid&fusion=rrf&weight[dense]=1
              &weight[lexical]=0.5&filter[lang]=en&source=a&doc_id=x&doc_id=y
              &follow=true&min_score=0.4
    POST /query {"q": "…", "k": 10, "mode": "hybrid", "weights": {"dense": 1},
                 "filter": {"lang": "en"}, "source": ["a"], "doc_id": ["x", "y"]}
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import QueryParams

from api.problems import FieldError
from api.search import MODES, Query, QueryLimits
from core.types import SearchFilter

_BRACKETED = re.compile(r"^(filter|weight)\[([^\]]+)\]$")
RETRIEVERS = ("dense", "lexical")
MAX_QUERY_CHARS = 2000


def params_to_dict(params: QueryParams) -> dict[str, Any]:
    body: dict[str, Any] = {"filter": {}, "weights": {}}
    for key, value in params.multi_items():
        if match := _BRACKETED.match(key):
            body["filter" if match[1] == "filter" else "weights"][match[2]] = value
        elif key in ("source", "doc_id"):
            body.setdefault(key, []).extend(v for v in value.split(",") if v)
        else:
            body[key] = value
    return body


def _int(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = body.get(name, default)
    if raw == "" or raw is None:
        return default
    if isinstance(raw, bool):
        raise FieldError(name, "must be an integer")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise FieldError(name, f"must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise FieldError(name, f"must be between {low} and {high}, got {value}")
    return value


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = body.get(name) or choices[0]
    if value not in choices:
        raise FieldError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _weights(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise FieldError("weights", "must map retriever names to numbers")
    weights = {}
    for name, value in raw.items():
        if name not in RETRIEVERS:
            raise FieldError(f"weight[{name}]", f"unknown retriever; use {', '.join(RETRIEVERS)}")
        try:
            weights[name] = float(value)
        except (TypeError, ValueError):
            raise FieldError(f"weight[{name}]", f"must be a number, got {value!r}") from None
        if not 0 <= weights[name] <= 100:
            raise FieldError(f"weight[{name}]", "must be between 0 and 100")
    return weights


def _strings(raw: Any, name: str) -> tuple[str, ...]:
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise FieldError(name, "must be a list of non-empty strings")
    return tuple(values)


def _filter(body: dict[str, Any]) -> SearchFilter:
    metadata = body.get("filter", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise FieldError("filter", "must map metadata keys to string values")
    return SearchFilter(
        metadata=tuple(sorted(metadata.items())),
        sources=_strings(body.get("source", []), "source"),
        doc_ids=_strings(body.get("doc_id", []), "doc_id"),
    )


def _flag(body: dict[str, Any], name: str) -> bool:
    raw = body.get(name, False)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("", "true", "1", "false", "0"):
        return raw.lower() in ("true", "1")
    raise FieldError(name, f"must be true or false, got {raw!r}")


def _score(body: dict[str, Any], name: str) -> float | None:
    raw = body.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise FieldError(name, "must be a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise FieldError(name, f"must be a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise FieldError(name, "must be a finite number")
    return value


def query_from_dict(body: Any, limits: QueryLimits) -> Query:
    if not isinstance(body, dict):
        raise FieldError("body", "must be a JSON object")
    text = body.get("q")
    if not isinstance(text, str) or not text.strip():
        raise FieldError("q", "is required and must not be blank")
    if len(text) > MAX_QUERY_CHARS:
        raise FieldError("q", f"must be at most {MAX_QUERY_CHARS} characters")
    return Query(
        text=text.strip(),
        k=_int(body, "k", 10, 1, limits.max_k),
        expand=_int(body, "expand", 3, 0, limits.max_expand),
        mode=_choice(body, "mode", MODES),
        fusion=_choice(body, "fusion", ("rrf", "weighted")),
        weights=_weights(body.get("weights", {})),
        where=_filter(body),
        follow=_flag(body, "follow"),
        min_score=_score(body, "min_score"),
    )
