"""Publishing documents (`docstream publish`, `make run`): where documents come
from (`sources.py`: files, folders, JSONL, stdin) and sending them as Avro
DocumentEvents with their headers (`publisher.py`). It may import
core and schemas only; the CLI, `ops/dlq` and `tools/run.py` import it."""
