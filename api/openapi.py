"""The OpenAPI document of the edge, served at `/openapi.json`. Written by hand
(the routes are few) and checked against the routes by a unit test."""

from __future__ import annotations

from typing import Any

from api.rebuild import MAX_CHUNK_TOKENS, MODEL_PATTERN
from schemas.events import MAX_MILLIS

PROBLEM = {"$ref": "#/components/schemas/Problem"}


REPLAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "enum": ["documents"], "default": "documents"},
        "model": {"type": "string", "pattern": MODEL_PATTERN, "description": "default: live"},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_CHUNK_TOKENS},
        "overlap_tokens": {"type": "integer", "minimum": 0, "maximum": MAX_CHUNK_TOKENS},
    },
}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


QUERY_PARAMETERS = [
    {
        "name": "q",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 2000},
    },
    {
        "name": "k",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
    },
    {
        "name": "expand",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": 20, "default": 3},
    },
    {
        "name": "mode",
        "in": "query",
        "schema": {"type": "string", "enum": ["hybrid", "dense", "lexical"]},
    },
    {"name": "fusion", "in": "query", "schema": {"type": "string", "enum": ["rrf", "weighted"]}},
    {"name": "source", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
    {"name": "doc_id", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
    {
        "name": "follow",
        "in": "query",
        "description": "Keep the event stream open: hit and retract events as documents "
        "are indexed, changed or deleted (needs Accept: text/event-stream)",
        "schema": {"type": "boolean", "default": False},
    },
    {
        "name": "min_score",
        "in": "query",
        "description": "Follow mode: a new chunk is sent when its score (dense cosine; "
        "BM25 in lexical mode) reaches this, instead of ranking within k",
        "schema": {"type": "number"},
    },
    {
        "name": "Last-Event-ID",
        "in": "header",
        "description": "A reconnect: resumes a follower after this event, or gets 204 "
        "after a one-shot answer",
        "schema": {"type": "string"},
    },
]

DOCUMENT = {
    "type": "object",
    "required": ["doc_id"],
    "additionalProperties": False,
    "properties": {
        "doc_id": {"type": "string", "minLength": 1, "maxLength": 512},
        "version": {"type": "integer", "minimum": 0},
        "op": {"type": "string", "enum": ["UPSERT", "DELETE"]},
        "title": {"type": "string"},
        "text": {"type": "string"},
        "source": {"type": "string"},
        "content_type": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "links": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "occurred_at": {"type": "integer", "minimum": 0, "maximum": MAX_MILLIS},
    },
}

QUERY_RESULTS = {
    "200": {
        "description": "Hits as JSON, or as Server-Sent Events (meta, hit…, degraded, done; "
        "error instead of done when a bug ended the answer) with Accept: text/event-stream",
        "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}},
    },
    "204": {"description": "A reconnect after a finished one-shot answer: stop reconnecting"},
    "422": _problem("A parameter is missing or out of range"),
    "429": _problem("Rate limit exceeded, or this process serves its cap of followers"),
    "500": _problem("A bug ended the query (not a store outage): its correlation id names it"),
    "503": _problem("Follow mode is not available in this process"),
}

# /admin/rebuild and /admin/replay share one job slot: GET and DELETE on either
# answer for the current or last job, whichever kind it is.
JOB_OPERATIONS: dict[str, Any] = {
    "get": {
        "summary": "Progress of the current or last rebuild or replay",
        "security": [{"bearer": []}, {"apiKey": []}],
        "responses": {
            "200": _json("Phase, generation, written, offsets left, rate, ETA"),
            "401": _problem("Missing or wrong API key, or no keys configured"),
        },
    },
    "delete": {
        "summary": "Interrupt the running rebuild or replay (run it again to resume)",
        "security": [{"bearer": []}, {"apiKey": []}],
        "responses": {
            "202": _json("Interrupted"),
            "401": _problem("Missing or wrong API key, or no keys configured"),
            "409": _problem("No rebuild or replay is running"),
        },
    },
}


def openapi(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "docstream",
            "version": version,
            "description": "Hybrid search over a streaming document index, and document intake.",
        },
        "paths": {
            "/": {
                "get": {
                    "summary": "The search page (HTML)",
                    "responses": {"200": {"description": "The page", "content": {"text/html": {}}}},
                }
            },
            "/query": {
                "get": {
                    "summary": "Hybrid search",
                    "parameters": QUERY_PARAMETERS,
                    "responses": QUERY_RESULTS,
                },
                "post": {
                    "summary": "Hybrid search (JSON body)",
                    "requestBody": {
                        "content": {"application/json": {"schema": {"type": "object"}}}
                    },
                    "responses": QUERY_RESULTS,
                },
            },
            "/documents": {
                "post": {
                    "summary": "Publish one document or a batch (needs an API key)",
                    "security": [{"bearer": []}, {"apiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        DOCUMENT,
                                        {"type": "array", "items": DOCUMENT},
                                        {
                                            "type": "object",
                                            "properties": {
                                                "documents": {"type": "array", "items": DOCUMENT}
                                            },
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json("Accepted: Kafka acknowledged every event"),
                        "401": _problem("Missing or wrong API key"),
                        "413": _problem("Body too large"),
                        "422": _problem("A field is wrong"),
                        "503": _problem("Kafka did not acknowledge in time (Retry-After)"),
                    },
                }
            },
            "/documents/{doc_id}": {
                "parameters": [
                    {
                        "name": "doc_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 512},
                    }
                ],
                "get": {
                    "summary": "Where a document stands",
                    "responses": {
                        "200": _json("The document's status"),
                        "404": _problem("Never seen"),
                        "503": _problem("Document state is not in this process"),
                    },
                },
                "delete": {
                    "summary": "Publish a DELETE (needs an API key)",
                    "security": [{"bearer": []}, {"apiKey": []}],
                    "responses": {
                        "202": _json("Accepted"),
                        "401": _problem("Missing or wrong API key"),
                        "422": _problem("The doc_id is blank or too long"),
                        "503": _problem("Kafka unavailable"),
                    },
                },
            },
            "/admin/status": {
                "get": {
                    "summary": "Operator status: Kafka offsets and lag per stage, breakers, "
                    "freshness percentiles, store counts (always needs an API key)",
                    "security": [{"bearer": []}, {"apiKey": []}],
                    "responses": {
                        "200": _json("The report; a part that did not answer holds an error"),
                        "401": _problem("Missing or wrong API key, or no keys configured"),
                        "503": _problem("The report did not complete in time"),
                    },
                }
            },
            "/admin/rebuild": {
                "post": {
                    "summary": "Start a rebuild of qdrant, neo4j or all from chunks.embedded "
                    "into a new generation, then switch (worker only; always needs an API key)",
                    "security": [{"bearer": []}, {"apiKey": []}],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "target": {
                                            "type": "string",
                                            "enum": ["qdrant", "neo4j", "all"],
                                            "default": "all",
                                        },
                                        "from_offset": {
                                            "type": "string",
                                            "description": "A repair from this offset of every "
                                            "partition, or partition:offset pairs (0:12,1:9)",
                                        },
                                        "from_time": {
                                            "type": "string",
                                            "format": "date-time",
                                            "description": "A repair from the first event at "
                                            "or after this time",
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json("Started: progress per target"),
                        "401": _problem("Missing or wrong API key, or no keys configured"),
                        "409": _problem("A rebuild is already running"),
                        "422": _problem("Unknown target or invalid JSON"),
                    },
                },
                **JOB_OPERATIONS,
            },
            "/admin/replay": {
                "post": {
                    "summary": "Start a replay: re-chunk and re-embed the documents topic with "
                    "a profile into a new generation of both stores, then switch (worker only; "
                    "always needs an API key)",
                    "security": [{"bearer": []}, {"apiKey": []}],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": REPLAY_SCHEMA}},
                    },
                    "responses": {
                        "202": _json("Started: progress, profile, settings to configure"),
                        "401": _problem("Missing or wrong API key, or no keys configured"),
                        "409": _problem("A rebuild or replay is already running"),
                        "422": _problem("Unknown topic, a profile that cannot be made"),
                    },
                },
                **JOB_OPERATIONS,
            },
            "/health": {
                "get": {
                    "summary": "Status, version, uptime, dependencies",
                    "responses": {"200": _json("Health")},
                }
            },
            "/health/live": {
                "get": {"summary": "The process answers", "responses": {"200": _json("Live")}}
            },
            "/health/ready": {
                "get": {
                    "summary": "Every dependency answers",
                    "responses": {
                        "200": _json("Ready"),
                        "503": _json("Not ready: names what is down"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {"description": "Text format", "content": {"text/plain": {}}}
                    },
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": _json("OpenAPI")}}
            },
        },
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "field": {"type": "string"},
                    },
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
