"""The Faust worker: the app and its agents (`app.py`), what each stage does
(`stages.py`: chunk, embed, sink), waiting for topics and stores before the
consumers start (`startup.py`), the chunker and its document state, the one
holder of the processing profile (`profile.py`), dead letters, and the
embedding model (`streams/embedding/`). It may import core,
schemas and sinks (the sink stages use its write plan and retry; the stores
themselves come in as Protocols), never api; only ops (the composition root
and the jobs) and tools import it."""
