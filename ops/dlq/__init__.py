"""Dead letters for operators (`docstream dlq list|show|redrive|purge`): the
pure logic of listing, redriving and purging (`letters.py`) and its Kafka side
(`topics.py`). It reads what `streams/deadletter.py` writes, but may import
only core, schemas and `ops/publishing`; the CLI imports it."""
