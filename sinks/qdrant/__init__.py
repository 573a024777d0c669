"""Qdrant as the vector store: what both stores share before their engine
(`base.py`), the server and local-mode client (`server.py`), the embedded
Qdrant Edge engine (`edge.py`) and its filters (`edge_filters.py`), BM25
sparse vectors (`lexical.py`), and the generations a rebuild switches between
(`generations.py`, over both engines, and `names.py`). Both adapters map their
libraries' exceptions to the error contract of `core/types.py` in one place
(`errors.py`). It may import
core and schemas only; the composition root and the jobs in `ops/jobs/`
import it."""
