"""The Faust app: topics, agents (chunk, embed, sink fan-out) and the worker."""
