from sinks.neo4j.entities import MAX_ENTITIES, extract_entities


def test_names_acronyms_and_codes_are_found_once_in_order() -> None:
    text = (
        "Apache Kafka stores streams. The Neo4j database and BM25 scoring run on a GPU "
        "like the H100. In Apache Kafka, KRaft mode runs without ZooKeeper."
    )
    assert extract_entities(text) == [
        "Apache Kafka",
        "Neo4j",
        "BM25",
        "GPU",
        "H100",
        "KRaft",
        "ZooKeeper",
    ]


def test_sentence_initial_stop_words_are_not_part_of_a_name() -> None:
    assert extract_entities("The Museum Of Art opened.") == ["Museum Of Art"]


def test_plain_lowercase_text_has_no_entities() -> None:
    assert extract_entities("the quick brown fox jumps over the lazy dog") == []


def test_the_number_of_entities_is_bounded() -> None:
    text = " ".join(f"X{i}Y" for i in range(100))
    assert len(extract_entities(text)) == MAX_ENTITIES
