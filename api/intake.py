"""`POST /documents` and `DELETE /documents/{doc_id}`: producers over HTTP.

A write needs an API key. It answers 202 only after Kafka acknowledged every
event of the request; if Kafka does not, 503 with Retry-After (a retry is safe:
the pipeline skips versions it has already indexed)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import key_is_valid, presented_key, unauthorized
from api.documents import doc_id_of, documents_of
from api.problems import FieldError, problem
from core.correlation import event_headers, mint_traceparent
from core.kafka.errors import KafkaUnavailable
from core.kafka.producer import Headers
from core.logs import get_logger
from core.metrics import EVENTS
from core.settings import ApiSettings
from core.tracing import current_traceparent, http_status, server_span
from schemas.codec import AvroCodec
from schemas.events import DocumentEvent, now_millis

log = get_logger(__name__)
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
RETRY_AFTER_S = "5"


class Sender(Protocol):
    async def send_all(
        self, topic: str, messages: Sequence[tuple[bytes, bytes, Headers]]
    ) -> None: ...


class BodyTooLarge(Exception):
    pass


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


class Intake:
    def __init__(
        self,
        sender: Sender,
        codec: AvroCodec,
        topic: str,
        settings: ApiSettings,
        max_text_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.sender = sender
        self.codec = codec
        self.topic = topic
        self.max_text_bytes = max_text_bytes
        self.settings = settings

    def authorize(self, request: Request) -> Response | None:
        if not self.settings.api_keys:
            return unauthorized(
                "writes are disabled: no API keys are configured (DOCSTREAM_API_KEYS)"
            )
        if not key_is_valid(presented_key(request), self.settings.api_keys):
            return unauthorized(
                "a valid API key is required (Authorization: Bearer … or X-API-Key)"
            )
        return None

    async def post(self, request: Request) -> Response:
        if (denied := self.authorize(request)) is not None:
            return denied
        try:
            body = await read_limited(request, self.settings.max_body_bytes)
        except BodyTooLarge:
            limit = self.settings.max_body_bytes
            return problem(413, "Body too large", f"the limit is {limit} bytes")
        try:
            parsed = json.loads(body)
        except ValueError as exc:  # not JSON, or bytes that are not UTF-8
            return problem(422, "Invalid JSON", f"the body is not valid JSON: {exc}", field="body")
        try:
            documents, batch = documents_of(parsed, self.settings.max_batch)
        except FieldError as exc:
            return problem(422, "Invalid document", str(exc), field=exc.field, reason=exc.reason)
        for i, document in enumerate(documents):
            size = len(document.text.encode("utf-8"))
            if size > self.max_text_bytes:
                where = f"[{i}].text" if batch else "text"
                detail = f"{where} is {size} bytes; the limit is {self.max_text_bytes}"
                return problem(413, "Text too large", detail, field=where)
        return await self._publish(request, documents, batch)

    async def delete(self, request: Request) -> Response:
        if (denied := self.authorize(request)) is not None:
            return denied
        try:
            doc_id = doc_id_of(request.path_params["doc_id"])
        except FieldError as exc:
            return problem(422, "Invalid document id", str(exc), field=exc.field, reason=exc.reason)
        now = now_millis()
        document = DocumentEvent(doc_id, now, now, op="DELETE")
        return await self._publish(request, [document], batch=False)

    async def _publish(
        self, request: Request, documents: list[DocumentEvent], batch: bool
    ) -> Response:
        """Publish within a server span: the span, child of the caller's
        traceparent, is the parent the events carry (when tracing is on)."""
        route = "/documents/{doc_id}" if "doc_id" in request.path_params else "/documents"
        attributes = {
            "http.request.method": request.method,
            "http.route": route,
            "docstream.correlation_id": request.scope["state"]["correlation_id"],
            "docstream.documents": len(documents),
        }
        with server_span(f"{request.method} {route}", request.headers, attributes) as current:
            response = await self._send(request, documents, batch)
            http_status(current, response.status_code)
            return response

    async def _send(
        self, request: Request, documents: list[DocumentEvent], batch: bool
    ) -> Response:
        correlation_id = request.scope["state"]["correlation_id"]
        given = request.headers.get("traceparent", "")
        traceparent = current_traceparent(given if TRACEPARENT.match(given) else mint_traceparent())
        headers: Headers = list(
            event_headers(correlation_id, traceparent, self.codec.fingerprint_hex)
        )
        messages = [
            (d.doc_id.encode(), self.codec.encode(d.to_record()), headers) for d in documents
        ]
        try:
            await self.sender.send_all(self.topic, messages)
        except KafkaUnavailable as exc:
            log.warning("intake refused: kafka unavailable", extra={"error": str(exc)})
            return problem(
                503,
                "Kafka unavailable",
                "the documents were not acknowledged by Kafka; retrying is safe",
                headers={"Retry-After": RETRY_AFTER_S},
            )
        EVENTS.labels("intake", "ok").inc(len(documents))
        log.info(
            "documents accepted",
            extra={"count": len(documents), "doc_ids": [d.doc_id for d in documents][:20]},
        )
        accepted = [{"doc_id": d.doc_id, "version": d.version, "op": d.op} for d in documents]
        if batch:
            return JSONResponse(
                {"correlation_id": correlation_id, "accepted": accepted}, status_code=202
            )
        return JSONResponse({**accepted[0], "correlation_id": correlation_id}, status_code=202)
