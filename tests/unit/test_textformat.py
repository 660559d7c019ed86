"""runtime.textformat renders the very bytes prometheus_client's generate_latest renders."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from saasmon.runtime.exposition import negotiate
from saasmon.runtime.families import counter, gauge
from saasmon.runtime.textformat import generate_text


class Listed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def families() -> list[Metric]:
    gauge = GaugeMetricFamily("pg_connections", 'Client "connections"\\ by\nstate.',
                              labels=["database", "state"])
    gauge.add_metric(["app", "idle"], 3)
    gauge.add_metric(['we"ird\\db\nname', "äctive ✓"], 0.1)
    gauge.add_metric(["big", "x"], 12345678901.0)
    gauge.add_metric(["nan", "x"], float("nan"))
    gauge.add_metric(["inf", "x"], float("inf"))
    gauge.add_metric(["ninf", "x"], float("-inf"))
    gauge.add_metric(["neg", "x"], -2.5e-7)
    counter = CounterMetricFamily("pg_database_xact_commit", "Committed.", labels=["database"],
                                  created=1700000000.5)
    counter.add_metric(["app"], 42, created=1700000000.25)
    no_labels = GaugeMetricFamily("pg_up", "Up.", value=1)
    info = InfoMetricFamily("pg_build", "Build.", value={"version": "1.2", "commit": "abc"})
    histogram = HistogramMetricFamily("pg_scrape_seconds", "Scrape time.", labels=["target"])
    histogram.add_metric(["a"], [("0.1", 1), ("1", 4), ("+Inf", 5)], sum_value=2.5)
    summary = SummaryMetricFamily("pg_round_seconds", "Rounds.", count_value=3, sum_value=1.5)
    gauge_histogram = GaugeHistogramMetricFamily("pg_queue", "Queue.", buckets=[("+Inf", 2)],
                                                 gsum_value=7)
    stateset = StateSetMetricFamily("pg_state", "State.", value={"up": True, "down": False})
    unknown = UnknownMetricFamily("pg_thing", "Thing.", value=4)
    with_colon = GaugeMetricFamily("job:pg_rate:sum", "Recorded-rule style name.", value=1)
    return [gauge, counter, no_labels, info, histogram, summary, gauge_histogram, stateset,
            unknown, with_colon]


def test_same_bytes_as_prometheus_client() -> None:
    assert generate_text(Listed(families())) == generate_latest(Listed(families()))


def test_names_outside_the_legacy_set_are_rendered_by_prometheus_client() -> None:
    utf8 = GaugeMetricFamily("pg.dotted", "Dotted.", labels=["lä bel"])
    utf8.add_metric(["v"], 1)
    bad_label = GaugeMetricFamily("pg_ok", "OK name, label with a colon.", labels=["a:b"])
    bad_label.add_metric(["v"], 1)
    for family in (utf8, bad_label):
        assert generate_text(Listed([family])) == generate_latest(Listed([family]))


def test_timestamped_sample_falls_back() -> None:
    gauge = GaugeMetricFamily("pg_ts", "With a timestamp.", labels=["x"])
    gauge.add_metric(["a"], 1, timestamp=1700000000.123)
    assert generate_text(Listed([gauge])) == generate_latest(Listed([gauge]))


def test_plain_text_scrapes_use_it_openmetrics_does_not() -> None:
    assert negotiate("").encoder is generate_text
    assert negotiate("text/plain;version=0.0.4").encoder is generate_text
    assert negotiate("application/openmetrics-text;version=1.0.0").encoder is not generate_text


def built() -> list[Metric]:
    """Families of runtime.families' builders, whose rows the renderer reads directly."""
    return [
        gauge("pg_connections", "By state.", labels=("state", "database"),
              rows=[(("idle", "app"), 3), (('we"ird\\', "db\nname"), 0.1),
                    (("x", "nan"), float("nan")), (("x", 7), 12345678901.0)]),
        counter("pg_database_xact_commit", "Committed.", labels=("database",),
                rows=[(("app",), 42), (("äpp ✓",), 1e-7)]),
        gauge("pg_untracked", "Beyond top_n.", 4),
        gauge("pg_empty", "No rows now.", labels=("slot",), rows=[]),
        counter("pg_checkpoints_timed", "One value.", 12.0),
        gauge("pg_both", "A value and rows.", 1, labels=("a",), rows=[(("b",), 2)]),
    ]


def test_builder_rows_render_as_their_samples_would() -> None:
    # generate_latest asks for the samples, which builds them from the rows.
    assert generate_text(Listed(built())) == generate_latest(Listed(built()))


def test_builder_rows_with_a_label_outside_the_legacy_set_fall_back() -> None:
    odd = [gauge("pg_ok", "Label with a colon.", labels=("a:b",), rows=[(("v",), 1)])]
    assert generate_text(Listed(odd)) == generate_latest(Listed(odd))


def test_builder_samples_once_asked_for_are_an_ordinary_list() -> None:
    family = gauge("pg_x", "X.", labels=("a",), rows=[(("1",), 1)])
    family.samples.append(family.samples[0]._replace(labels={"a": "2"}, value=2))
    expected = GaugeMetricFamily("pg_x", "X.", labels=["a"])
    expected.add_metric(["1"], 1)
    expected.add_metric(["2"], 2)
    assert family == expected
    assert generate_text(Listed([family])) == generate_latest(Listed([expected]))


def test_a_family_rendered_again_follows_its_rows() -> None:
    # The renderer keeps each rows family's last text: equal rows give it back, any change
    # (a value, a label, a row more or less, the lone value) renders afresh.
    def once(rows: list[tuple[tuple[str, ...], float]], value: float | None = None) -> bytes:
        family = [gauge("pg_cache_probe", "Cache probe.", value, labels=("db", "state"),
                        rows=rows)]
        text = generate_text(Listed(family))
        assert text == generate_latest(Listed(
            [gauge("pg_cache_probe", "Cache probe.", value, labels=("db", "state"),
                   rows=rows)]))
        return text

    first = once([(("app", "idle"), 3), (("app", "active"), 1)])
    assert once([(("app", "idle"), 3), (("app", "active"), 1)]) == first
    assert b"4.0" in once([(("app", "idle"), 3), (("app", "active"), 4)])
    assert b'state="busy"' in once([(("app", "idle"), 3), (("app", "busy"), 1)])
    assert once([(("app", "idle"), 3)]).count(b"\npg_cache_probe{") == 1
    assert b"pg_cache_probe 7.0" in once([(("app", "idle"), 3)], value=7)
    assert once([]).count(b"pg_cache_probe") == 2  # HELP and TYPE only


def test_label_values_that_are_not_text_are_never_served_from_the_last_text() -> None:
    # 1 == 1.0, yet they render "1" and "1.0": such rows are rendered every time.
    for label in (1, 1.0, 1):
        rows = [((label,), 5)]
        family = [gauge("pg_cache_numeric", "Numeric labels.", labels=("n",), rows=rows)]
        text = generate_text(Listed(family))
        assert f'n="{label}"'.encode() in text
        assert text == generate_latest(Listed(
            [gauge("pg_cache_numeric", "Numeric labels.", labels=("n",), rows=rows)]))


def test_label_sets_seen_before_render_as_new_ones_do() -> None:
    # Sample line starts are kept by label values: a family whose numbers change keeps its
    # labels' text, escaping and the sorted label order included.
    odd = ['q"uote', "back\\slash", "new\nline", "plain"]

    def family(scale: float) -> list[Metric]:
        return [gauge("pg_prefix_probe", "Prefix probe.", labels=("query", "database"),
                      rows=[((text, f"db{i}"), i * scale) for i, text in enumerate(odd)])]

    for scale in (1.0, 2.0, 3.0):
        assert generate_text(Listed(family(scale))) == generate_latest(Listed(family(scale)))
    assert b'database="db0",query="q\\"uote"} 0.0' in generate_text(Listed(family(5.0)))


def test_a_family_whose_label_sets_churn_is_kept_bounded() -> None:
    from saasmon.runtime import textformat

    for scrape in range(40):
        rows = [((f"id-{scrape}-{i}",), 1.0) for i in range(20)]
        text = generate_text(Listed([gauge("pg_churn_probe", "Churn.", labels=("id",),
                                           rows=rows)]))
        assert text.count(b"pg_churn_probe{") == 20
    known = textformat._PREFIXES[("pg_churn_probe", ("id",))]
    assert len(known) <= textformat._PREFIXES_PER_FAMILY_MIN + 20


def test_families_built_again_equal_prometheus_clients_own() -> None:
    # The builders remember what prometheus_client's constructor set for a name: the second
    # and later families must still be whole, independent families.
    expected_gauge = GaugeMetricFamily("pg_again", "Again.", labels=["a"])
    expected_gauge.add_metric(["x"], 1)
    expected_counter = CounterMetricFamily("pg_again_events", "Events.", labels=["a"])
    expected_counter.add_metric(["x"], 2)
    built = []
    for _ in range(3):
        g = gauge("pg_again", "Again.", labels=("a",), rows=[(("x",), 1)])
        c = counter("pg_again_events", "Events.", labels=("a",), rows=[(("x",), 2)])
        assert g == expected_gauge and c == expected_counter
        assert c.name == "pg_again_events" and c.samples[0].name == "pg_again_events_total"
        built.append(g)
    built[0].samples.append(built[0].samples[0])
    assert len(built[1].samples) == len(built[2].samples) == 1
