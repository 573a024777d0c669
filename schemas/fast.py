"""The cheapest correct reader of `chunks.embedded`, for bulk rebuilds.

`AvroCodec.decode` resolves every record from its writer's schema to the
reader's and turns each `timestamp-millis` into a datetime. A rebuild reads
every event of the topic, almost all written with the current schema, so this
reader skips both for those: when the single-object fingerprint is the current
schema's, it reads the body with that schema alone (no resolution), its logical
types left out (a timestamp stays epoch milliseconds, which is what the events
keep anyway), and reads the vector (the schema's last field, a float array)
straight into an `array('f')` from its bytes instead of one Python float at a
time, which was four fifths of the decode. Anything else (an older schema,
the Confluent framing) goes to the full codec, so what decodes there decodes
here, to the same values."""

from __future__ import annotations

import io
import json
import sys
from array import array
from typing import Any

from fastavro import parse_schema, schemaless_reader

from schemas.codec import HEADER_SIZE, MARKER, AvroCodec
from schemas.errors import MalformedBody


def _without_logical_types(schema: Any) -> Any:
    """The same schema with every `logicalType` removed: the same bytes, the
    underlying type's values (a long instead of a datetime)."""
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(item) for item in schema]
    return schema


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    """An Avro long (zig-zag varint) at `pos`: its value and the next position."""
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def read_floats(data: memoryview, pos: int) -> tuple[array[float], int]:
    """An Avro array of floats at `pos` (blocks of little-endian 32-bit floats)."""
    values: array[float] = array("f")
    while True:
        count, pos = _varint(data, pos)
        if count == 0:
            break
        if count < 0:  # a block with its size in bytes first
            count = -count
            _, pos = _varint(data, pos)
        end = pos + 4 * count
        if end > len(data):
            raise EOFError("the vector ends early")
        values.frombytes(data[pos:end])
        pos = end
    if sys.byteorder != "little":
        values.byteswap()
    return values, pos


class FastDecoder:
    """`decode(bytes) -> dict` like `AvroCodec.decode`, cheaper for the current schema."""

    def __init__(self, codec: AvroCodec) -> None:
        self.codec = codec
        self._prefix = MARKER + codec.schema.fingerprint_bytes
        # Parsed once: fastavro's per-call cost is then the body alone.
        plain = _without_logical_types(json.loads(codec.schema.text))
        last = plain["fields"][-1]
        # The vector is read by hand when it is the last field and an array of floats.
        self._vector = last["name"] if last["type"] == {"type": "array", "items": "float"} else ""
        if self._vector:
            plain = {**plain, "fields": plain["fields"][:-1]}
        self._plain = parse_schema(plain, _write_hint=False)
        self.fast = 0  # records read without resolution (the rest went to the codec)

    def decode(self, data: bytes | None) -> dict[str, Any]:
        if data is None or not data.startswith(self._prefix):
            return self.codec.decode(data)
        body = memoryview(data)[HEADER_SIZE:]
        stream = io.BytesIO(body)
        try:
            record = schemaless_reader(stream, self._plain, None)
            end = stream.tell()
            if self._vector and isinstance(record, dict):
                record[self._vector], end = read_floats(body, end)
        except Exception:  # let the full codec say what is wrong, in its words
            return self.codec.decode(data)
        if end != len(body) or not isinstance(record, dict):
            raise MalformedBody(
                f"{self.codec.schema.name} body has {len(body) - end} trailing bytes"
            )
        self.fast += 1
        return record
