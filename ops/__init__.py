"""Operating docstream: the CLI, the publisher, the local service stack, and the
composition root that runs the worker (and the API beside it)."""
