"""Kafka in one room: how every producer writes (`config.py`), the admin client
and `ensure_topics` (`admin.py`), the
asyncio producer of the HTTP intake (`producer.py`), the batch consumer that
commits only after its handler returned (`batches.py`), and reading a topic to
its end (`catchup.py`). It may import only the rest of `core`; streams, api, ops
and tools import it."""
