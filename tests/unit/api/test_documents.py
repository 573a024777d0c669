import pytest

from api.documents import document_of, documents_of
from api.problems import FieldError


def test_one_document_with_every_field() -> None:
    doc = document_of(
        {
            "doc_id": "d1",
            "version": 7,
            "title": "T",
            "text": "Body.",
            "source": "s",
            "content_type": "text/markdown",
            "metadata": {"lang": "en"},
            "links": ["d2"],
            "occurred_at": 1_700_000_000_000,
        }
    )
    assert (doc.doc_id, doc.version, doc.metadata, doc.links) == ("d1", 7, {"lang": "en"}, ["d2"])


def test_version_and_time_default_to_now() -> None:
    doc = document_of({"doc_id": "d1", "text": "Body."})
    assert doc.version > 1_700_000_000_000 and doc.occurred_at > 1_700_000_000_000


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "body"),
        ({"text": "no id"}, "doc_id"),
        ({"doc_id": "", "text": "x"}, "doc_id"),
        ({"doc_id": "d", "text": "x", "version": -1}, "version"),
        ({"doc_id": "d", "text": "x", "version": True}, "version"),
        ({"doc_id": "d", "text": "x", "op": "MERGE"}, "op"),
        ({"doc_id": "d", "text": "x", "metadata": {"n": 1}}, "metadata"),
        ({"doc_id": "d", "text": "x", "links": "d2"}, "links"),
        ({"doc_id": "d", "text": 5}, "text"),
        ({"doc_id": "d", "text": "  "}, "text"),
        ({"doc_id": "d", "text": "x", "colour": "red"}, "colour"),
        ({"doc_id": "d", "text": "x", "version": 2**63}, "version"),
        ({"doc_id": "d", "text": "x", "occurred_at": 2**64}, "occurred_at"),
        # An Avro long, but after year 9999: no reader could decode the event.
        ({"doc_id": "d", "text": "x", "occurred_at": 253_402_300_800_000}, "occurred_at"),
        ({"doc_id": "d\ud800", "text": "x"}, "doc_id"),
        ({"doc_id": "d", "text": "x", "links": ["\udc00"]}, "links"),
        ({"doc_id": "d", "text": "x", "metadata": {"k": "\ud83d"}}, "metadata"),
    ],
)
def test_each_broken_field_is_named(raw: object, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        documents_of(raw, max_batch=10) if isinstance(raw, list) else document_of(raw)
    assert caught.value.field == field


def test_a_delete_needs_no_text() -> None:
    assert document_of({"doc_id": "d", "op": "DELETE"}).op == "DELETE"


def test_batches_as_a_list_or_under_documents() -> None:
    docs, batch = documents_of([{"doc_id": "a", "text": "x"}, {"doc_id": "b", "text": "y"}], 10)
    assert batch and [d.doc_id for d in docs] == ["a", "b"]
    docs, batch = documents_of({"documents": [{"doc_id": "a", "text": "x"}]}, 10)
    assert batch and len(docs) == 1
    docs, batch = documents_of({"doc_id": "a", "text": "x"}, 10)
    assert not batch


def test_a_batch_error_names_the_member() -> None:
    with pytest.raises(FieldError) as caught:
        documents_of({"documents": [{"doc_id": "a", "text": "x"}, {"text": "y"}]}, 10)
    assert caught.value.field == "documents[1].doc_id"


def test_batches_have_a_size_limit() -> None:
    with pytest.raises(FieldError, match="at most 2"):
        documents_of([{"doc_id": str(i), "text": "x"} for i in range(3)], max_batch=2)


def test_the_last_millisecond_of_year_9999_is_accepted() -> None:
    doc = document_of({"doc_id": "d", "text": "x", "occurred_at": 253_402_300_799_999})
    assert doc.occurred_at == 253_402_300_799_999
