"""The composition root: the only place that knows every room.

Everything else is written against small seams (`core/types.py`) and takes
what it needs in its constructor; here the concrete pieces are made once and
handed over, and nothing is patched into an object after it was built.

- `stores.py`: the vector and graph stores, their generations, the health
  checks, and the admin control of rebuilds and replays;
- `worker.py`: the Faust worker (its stages share one `LiveProfile`), with the
  API on its event loop or only the probes and the scrape;
- `api.py`: the query edge, in the worker or as a process of its own.
"""
