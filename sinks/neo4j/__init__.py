"""Neo4j as the graph store: documents, chunks, `NEXT`, `LINKS_TO` and
`MENTIONS` edges (`store.py`; the live write in `live.py`, the statements'
rows in `rows.py`, the bulk path in `bulk.py`), the rule-based entity extractor
(`entities.py`), and the generations a rebuild switches between
(`generations.py`). The adapter maps the driver's exceptions to the error
contract of `core/types.py` in one place (`errors.py`). It may import core and schemas only; the
composition root and the jobs in `ops/jobs/` import it."""
