"""Avro contracts of every topic (`*.avsc`) and the codec that reads and writes them."""

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
