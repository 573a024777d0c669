"""Index jobs that run inside the worker: rebuild an index from
`chunks.embedded` into a new generation (`rebuild.py`), replay the raw
documents with a new processing profile (`replay.py`), which it hands at its
switch to the one holder of the live profile (`streams/profile.py`). It may
import core, schemas, streams and sinks, never api; the composition root wires
it to the admin routes."""
