import json

from collector.history import HistoryQuery, aggregate, flux_params, flux_query, influxql_query, render, rfc3339
from collector.readings import Reading

S = 1_000_000_000


def test_aggregate_windows_start_on_the_epoch_grid():
    readings = [Reading("a", t * S, v) for t, v in [(0, 20.0), (30, 22.0), (59, 21.0), (60, 25.0)]] + [Reading("b", 10 * S, 5.0)]
    assert aggregate(readings, 60 * S) == [
        {"time": 0, "sensor": "a", "mean": 21.0, "min": 20.0, "max": 22.0},
        {"time": 0, "sensor": "b", "mean": 5.0, "min": 5.0, "max": 5.0},
        {"time": 60 * S, "sensor": "a", "mean": 25.0, "min": 25.0, "max": 25.0},
    ]


def test_render_json_csv_and_table_shapes():
    rows = [{"time": 1_764_000_000 * S, "sensor": "desk", "celsius": 21.5},
            {"time": 1_764_000_000 * S + 500_000_000, "sensor": "a, b", "celsius": -3.25}]
    assert json.loads(render(rows, "json")) == [
        {"time": "2025-11-24T16:00:00Z", "sensor": "desk", "celsius": 21.5},
        {"time": "2025-11-24T16:00:00.5Z", "sensor": "a, b", "celsius": -3.25},
    ]
    assert render(rows, "csv").splitlines() == [
        "time,sensor,celsius", "2025-11-24T16:00:00Z,desk,21.5", '2025-11-24T16:00:00.5Z,"a, b",-3.25']
    assert render(rows, "table").splitlines() == [
        "time                    sensor  celsius",
        "2025-11-24T16:00:00Z    desk      21.50",
        "2025-11-24T16:00:00.5Z  a, b      -3.25",
    ]
    assert json.loads(render([], "json")) == []


def test_windowed_rows_render_mean_min_max():
    rows = [{"time": 0, "sensor": "a", "mean": 21.0, "min": 20.0, "max": 22.0}]
    assert json.loads(render(rows, "json")) == [{"time": "1970-01-01T00:00:00Z", "sensor": "a", "mean": 21.0, "min": 20.0, "max": 22.0}]


def test_influxql_quotes_sensor_names():
    q = influxql_query(HistoryQuery(0, 10, ("it's", "b"), 900))
    assert "(\"sensor\" = 'it\\'s' OR \"sensor\" = 'b')" in q
    assert "GROUP BY time(900000ms), \"sensor\" fill(none)" in q


def test_flux_keeps_values_out_of_the_query_text():
    query = HistoryQuery(0, 10 * S, ('evil") |> drop(', ), 60)
    text = flux_query(query)
    assert 'evil' not in text and "contains(value: r.sensor, set: sensors)" in text
    params = flux_params(query, "temperature")
    assert params["sensors"] == ['evil") |> drop('] and params["bucket"] == "temperature"
    assert params["every"].total_seconds() == 60


def test_rfc3339():
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_500_000_000) == "1970-01-01T00:00:01.5Z"
