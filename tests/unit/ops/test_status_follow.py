"""`docstream status` shows follow mode: followers, notifications and their
rate, the delay to the event, and followers refused or dropped."""

from ops.status import pipeline_metrics, render

NOW = 1_000_100.0
TEXT = """
# TYPE docstream_followers gauge
docstream_followers 3.0
# TYPE docstream_follow_notifications_total counter
docstream_follow_notifications_total 50.0
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1000000.0
# TYPE docstream_follow_delay_seconds histogram
docstream_follow_delay_seconds_bucket{le="0.05"} 8.0
docstream_follow_delay_seconds_bucket{le="0.1"} 9.0
docstream_follow_delay_seconds_bucket{le="1.0"} 10.0
docstream_follow_delay_seconds_bucket{le="+Inf"} 10.0
docstream_follow_delay_seconds_count 10.0
docstream_follow_delay_seconds_sum 0.6
# TYPE docstream_follow_closed_total counter
docstream_follow_closed_total{reason="over_cap"} 2.0
docstream_follow_closed_total{reason="dropped"} 0.0
"""


def test_follow_figures_are_read_from_the_metrics() -> None:
    follow = pipeline_metrics(TEXT, now=NOW)["follow"]
    assert follow["followers"] == 3 and follow["notifications"] == 50
    assert follow["notifications_per_s"] == 0.5
    assert follow["delay_s"]["count"] == 10
    assert 0 < follow["delay_s"]["p50"] <= 0.05
    assert follow["closed"] == {"over_cap": 2}


def test_a_process_without_follow_mode_has_no_follow_figures() -> None:
    assert pipeline_metrics("# nothing\n", now=NOW)["follow"] is None


def test_the_status_text_has_a_follow_line() -> None:
    pipeline = {"source": "x", **pipeline_metrics(TEXT, now=NOW)}
    unreachable = {"error": "not asked"}
    report = {"at": "now", "kafka": unreachable, "qdrant": unreachable, "neo4j": unreachable}
    text = render({**report, "pipeline": pipeline})
    [line] = [line for line in text.splitlines() if line.strip().startswith("follow:")]
    assert "3 followers" in line and "50 notifications (0.5/s since start)" in line
    assert "n=10" in line and "over_cap 2" in line
