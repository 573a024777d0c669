"""The local service stack: Kafka (KRaft) and Neo4j as JVM processes assembled from
Maven Central, for machines without a Docker engine, and a Qdrant server from
the user's binary when QDRANT_URL names this machine. Everything they write
lives under one ignored folder (`.stack/` by default); `down` stops exactly the
processes `up` started, by PID. Plaintext by default; `up --secure` runs the
secured profile (secure.py) with a throwaway PKI (certs.py) and random
secrets (credentials.py) made under that folder."""
