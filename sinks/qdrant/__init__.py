"""Qdrant as the vector store: the server and local-mode client (`server.py`),
the embedded Qdrant Edge engine (`edge.py`), BM25 sparse vectors
(`lexical.py`), and the generations a rebuild switches between
(`generations.py`, `edge_generations.py`, `names.py`). Each adapter maps its
library's exceptions to the error contract of `core/types.py`. It may import
core and schemas only; the composition root and the jobs in `ops/jobs/`
import it."""
