"""The writers (and readers) of the two projections: Qdrant for vectors
(`sinks/qdrant/`), Neo4j for the graph (`sinks/neo4j/`), plus what both sinks
share: the write plan of a batch (`plan.py`), what an operating-system error
means for a store (`errors.py`), retrying a write on the store error contract
alone (`retry.py`), the circuit breaker (`breaker.py`) and
fault injection for the fault suite (`faults.py`). It may import core (its
Protocols and the store error contract) and schemas, never streams or api;
streams' sink stages, the jobs in `ops/jobs/` and the composition root import
it."""
