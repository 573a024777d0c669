import pytest
from starlette.datastructures import QueryParams

from api.problems import FieldError
from api.queries import params_to_dict, query_from_dict
from api.search import QueryLimits

LIMITS = QueryLimits()


def test_get_parameters_with_filters_and_weights() -> None:
    params = QueryParams(
        "q=kafka&k=5&mode=hybrid&fusion=weighted&weight[lexical]=0.5"
        "&filter[lang]=en&source=a&source=b&doc_id=x,y"
    )
    query = query_from_dict(params_to_dict(params), LIMITS)
    assert (query.text, query.k, query.mode, query.fusion) == ("kafka", 5, "hybrid", "weighted")
    assert query.weights == {"lexical": 0.5}
    assert query.where.metadata == (("lang", "en"),)
    assert query.where.sources == ("a", "b") and query.where.doc_ids == ("x", "y")


def test_a_json_body_gives_the_same_query() -> None:
    body = {
        "q": "kafka",
        "k": 5,
        "weights": {"lexical": 0.5},
        "filter": {"lang": "en"},
        "source": ["a", "b"],
        "doc_id": ["x", "y"],
        "fusion": "weighted",
    }
    from_json = query_from_dict(body, LIMITS)
    from_get = query_from_dict(
        params_to_dict(
            QueryParams(
                "q=kafka&k=5&fusion=weighted&weight[lexical]=0.5&filter[lang]=en&source=a,b&doc_id=x&doc_id=y"
            )
        ),
        LIMITS,
    )
    assert from_json == from_get


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "q"),
        ({"q": " "}, "q"),
        ({"q": "x", "k": 0}, "k"),
        ({"q": "x", "k": "many"}, "k"),
        ({"q": "x", "k": 101}, "k"),
        ({"q": "x", "mode": "fuzzy"}, "mode"),
        ({"q": "x", "fusion": "borda"}, "fusion"),
        ({"q": "x", "weights": {"graph": 1}}, "weight[graph]"),
        ({"q": "x", "weights": {"dense": "heavy"}}, "weight[dense]"),
        ({"q": "x", "filter": {"n": 1}}, "filter"),
        ({"q": "x", "source": [1]}, "source"),
        ([], "body"),
    ],
)
def test_each_bad_field_is_named(body: object, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        query_from_dict(body, LIMITS)
    assert caught.value.field == field
