"""Operating docstream: the `docstream` CLI (`cli.py`), the operator's status
view (`status/`), the client of the worker's admin routes
(`admin_client.py`) and the admin key it sends (`admin_key.py`), the
composition root (`composition.py`), index jobs
(`jobs/`), dead letters (`dlq/`) and publishing (`publishing/`). The top of the
runtime package: it may import every room below it, and only tools (and the
benchmarks) import it."""
