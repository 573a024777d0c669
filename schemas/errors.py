"""The codec's exception hierarchy.

CodecError            the bytes cannot be read as an event: dead-letter it
├── BadMarker         not Avro single-object encoding (no C3 01 marker)
├── UnknownSchema     a fingerprint no known schema version has
└── MalformedBody     truncated, trailing bytes, or data that breaks the schema
EncodeError           a record that does not fit its schema (a producer bug)
"""


class CodecError(Exception):
    """An event's bytes cannot be decoded; it will never succeed, so it is a dead letter."""


class BadMarker(CodecError):
    pass


class UnknownSchema(CodecError):
    pass


class MalformedBody(CodecError):
    pass


class EncodeError(ValueError):
    pass
