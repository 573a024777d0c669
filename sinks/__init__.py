"""The writers (and readers) of the two projections: Qdrant for vectors, Neo4j for the graph."""
