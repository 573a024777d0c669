"""What every room shares: settings, the contracts between rooms (`types.py`:
the Protocols, the data that crosses a seam and the stores' error contract),
correlation ids, tracing, JSON logs, metrics and generic backoff, and the
Kafka plumbing in `core/kafka/`. The bottom of the house: it imports no other room of docstream,
and every other room may import it."""
