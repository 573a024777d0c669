"""The local service stack: Kafka (KRaft) and Neo4j as JVM processes assembled from
Maven Central, for machines without a Docker engine. Everything they write lives
under one ignored folder (`.stack/` by default); `down` stops exactly the
processes `up` started, by PID."""
