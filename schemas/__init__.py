"""The contracts on the topics: the Avro schemas of every record (`*.avsc`, with
the released versions in `history/`), the codec that reads and writes them
(single-object or Confluent framing), compatibility checks, and typed views of
the events with the validation Avro cannot express (`events.py`). It may import
only core; streams, sinks, api, ops and tools import it."""

from schemas.codec import AvroCodec, codec_for
from schemas.errors import BadMarker, CodecError, EncodeError, MalformedBody, UnknownSchema

__all__ = [
    "AvroCodec",
    "BadMarker",
    "CodecError",
    "EncodeError",
    "MalformedBody",
    "UnknownSchema",
    "codec_for",
]
