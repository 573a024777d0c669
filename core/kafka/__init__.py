"""Kafka in one room: every Kafka client the project builds comes from here,
configured in one place, so its servers and security reach all of them.

- `config.py`: every client's configuration (`client_config`, `producer_config`,
  `consumer_config`) and the Faust app's (`faust_settings`); `security.py`
  turns the security settings into each library's terms.
- `connect.py`: whether this process can reach Kafka as configured, before a
  start (the setting to fix when it never can).
- `errors.py`: the library's exceptions as the project's (`KafkaUnavailable`,
  `KafkaRefused`).
- `admin.py`: the admin client and `ensure_topics`; `offsets.py`: where
  partitions start and end and where groups stand.
- `producer.py`: the HTTP intake's asyncio producer; `bulk.py`: the
  publisher's and the redrive's.
- `records.py`: a consumed record as the stages see it; `batches.py`: the
  batch consumer that commits only after its handler is done; `reading.py`:
  reading a topic to its end, or tailing it from its end; `catchup.py`: a job
  reading a topic to its end with a group of its own.
- `registry.py`: the schema registry's client.

It may import only the rest of `core`; schemas, streams, sinks, api, ops and
tools import it. No module outside it imports a Kafka client library, the
Faust app's own setup excepted."""
