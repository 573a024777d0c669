"""Tools for a source checkout, outside the runtime package (the wheel and the
image do not carry them): the local JVM Kafka + Neo4j stack (`stack/`,
`python -m tools.stack`), the offline checks of the deployment assets
(`validate_deploy/`, `python -m tools.validate_deploy`), `make run`
(`run.py`, `python -m tools.run`) and the local stack's admin key
(`admin_key.py`). It may import every room; nothing in the
runtime package imports it."""
