"""Follow mode of `GET|POST /query`: after its answer a query keeps its stream
open and receives `hit` and `retract` events as documents are indexed, changed
or deleted.

- `join.py`: the sinks' notices (Kafka topic `chunks.indexed`) joined per
  document version until every sink reported it written;
- `consumer.py`: decodes the notices a `TopicTail` (core/kafka/reading.py)
  reads in a thread, from the topic's end, and hands them to the event loop;
- `follower.py`: one follower's state: ids, the replay buffer, what it shows;
- `hub.py`: the followers of this process, the cap, and the matching;
- `stream.py`: the event streams (follow and one-shot) and their event ids.

Matching happens here, in the API process: the worker only sends one small
notice per written batch.
"""
