"""The Grafana dashboard and the Prometheus alert rules agree with what the poller serves.

- Every metric (and label) the rules and the Prometheus panels use is exported by a real
  /metrics after each Metrics method has run once.
- Every SQL panel runs, read-only, on a PostgreSQL database migrated to head, with Grafana's
  macros expanded the way Grafana expands them, and reads only tables and views the migrations
  create; the attendance panels show a seeded month as worked out here.
- The rules have the shape Prometheus loads; with promtool installed (on PATH, or
  $TIMEMAN_POLLER_PROMTOOL) they are checked by it and their alerts are unit-tested on
  made-up series.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sql_relations import relations, schema_relations
from sqlalchemy import Engine, text
from worktime_seed import seed_worktime

from poller.daemon.metrics import Metrics, MetricsServer

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "timeman-poller.json"
DATASOURCES = ROOT / "deploy" / "grafana" / "datasources" / "timeman-poller.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

# Labels Prometheus adds to every scraped series, and the bucket label of histograms.
SCRAPE_LABELS = {"instance", "job", "le"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
PROMQL_WORDS |= {"and", "or", "unless", "inf", "nan"}
# Grafana's time range as its PostgreSQL macros write it: quoted RFC 3339 instants.
TIME_FROM, TIME_TO = "'2026-11-01T00:00:00Z'", "'2026-11-30T23:59:59Z'"


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def targets(datasource_type: str) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every query sent to a data source of `datasource_type`."""
    found = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            source = target.get("datasource") or panel["datasource"]
            if source["type"] == datasource_type:
                found.append((panel["title"], target))
    return found


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def promql_expressions() -> list[tuple[str, str]]:
    """(where, expression) of every PromQL expression in the rules and the dashboard."""
    found = [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]
    found += [(f"panel {title!r}", target["expr"]) for title, target in targets("prometheus")]
    return found


# -- PromQL: the metric names and labels an expression uses -------------------------------


def _without_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` selects (function names, keywords and durations left out)."""
    rest = _without_strings(expr)
    rest = re.sub(r"\{[^}]*\}", " ", rest)  # label matchers
    rest = re.sub(r"\[[^\]]*\]", " ", rest)  # range selectors
    rest = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", rest)
    names = set()
    for match in re.finditer(r"(?<![\w:.$])[A-Za-z_:][\w:]*", rest):
        if match.group() in PROMQL_WORDS or rest[match.end() :].lstrip().startswith("("):
            continue
        names.add(match.group())
    return names


def selector_labels(expr: str) -> set[tuple[str, str]]:
    """(metric, label) of every label matcher written after a metric name."""
    pairs = set()
    for match in re.finditer(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", _without_strings(expr)):
        for label in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", match.group(2)):
            pairs.add((match.group(1), label))
    return pairs


def grouping_labels(expr: str) -> set[str]:
    """Labels named by `by (...)`, `on (...)` and the like."""
    labels = set()
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", _without_strings(expr)):
        labels |= {label.strip() for label in clause.split(",") if label.strip()}
    return labels


def test_the_promql_reader_finds_metrics_and_labels_and_skips_the_rest() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (portal, le) (rate(a_seconds_bucket{code="x"}[$__rate_interval])))'
        " > on (portal) 2 * (b_total offset 15m or vector(1)) unless time() - c > 26 * 3600"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c"}
    assert selector_labels(expr) == {("a_seconds_bucket", "code")}
    assert grouping_labels(expr) == {"portal", "le"}


# -- /metrics exports every name they use -------------------------------------------------


def exercised_metrics() -> Metrics:
    """A Metrics on which every method has run once, as the daemon would call them."""
    metrics = Metrics(["acme", "globex"], clock=lambda: 1_800_000_000.0)
    metrics.cycle_finished("acme", 2.5, succeeded=True)
    metrics.count_users("acme", stored=40, failed=2)
    metrics.count_error("acme", "USER_NOT_FOUND", 2)
    metrics.request_observer("acme")(0.3)
    metrics.set_spool_rows(12)
    metrics.set_spool_in_memory(True)
    metrics.count_quarantined(1, "rejected")
    metrics.rate_limit_waited("acme", 1.5)
    metrics.count_query_limit_exceeded("acme")
    metrics.token_refreshed("globex", ok=False)
    metrics.reconcile_finished("acme", 300)
    metrics.set_owned("acme", "replica-1", True)
    return metrics


def exported() -> dict[str, set[str]]:
    """Sample name -> label names, as scraped from a MetricsServer's /metrics."""
    server = MetricsServer(exercised_metrics(), "127.0.0.1", 0, max_age_seconds=60).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as answer:
            body = answer.read().decode()
    finally:
        server.stop()
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def test_every_metric_the_alert_rules_and_panels_use_is_exported_by_metrics() -> None:
    samples = exported()
    expressions = promql_expressions()
    assert len(expressions) >= 20
    missing = [
        f"{where}: {name}"
        for where, expr in expressions
        for name in sorted(metric_names(expr))
        if name not in samples
    ]
    assert not missing, "not exported by /metrics:\n" + "\n".join(missing)
    used = {name for _, expr in expressions for name in metric_names(expr)}
    assert {name.removesuffix("_bucket") for name in used} >= {
        "timeman_poller_cycle_seconds",
        "timeman_poller_users_stored_total",
        "timeman_poller_errors_total",
        "timeman_poller_spool_rows",
        "timeman_poller_spool_in_memory",
        "timeman_poller_rate_limit_wait_seconds_total",
        "timeman_poller_query_limit_exceeded_total",
        "timeman_poller_token_refreshes_total",
        "timeman_poller_last_success_timestamp_seconds",
        "timeman_poller_reconcile_last_success_timestamp_seconds",
        "timeman_poller_portal_owned",
    }


def test_every_label_the_alert_rules_and_panels_use_is_exported_by_metrics() -> None:
    samples = exported()
    known = set().union(*samples.values()) | SCRAPE_LABELS
    problems = []
    for where, expr in promql_expressions():
        problems += [f"{where}: {metric}{{{label}}}" for metric, label in selector_labels(expr)
                     if label not in samples.get(metric, set())]  # fmt: skip
        problems += [f"{where}: by/on {label}" for label in grouping_labels(expr) - known]
    assert not problems, "labels not exported:\n" + "\n".join(problems)


# -- the dashboard --------------------------------------------------------------------------


def test_every_panel_queries_a_data_source_that_grafana_is_provisioned_with() -> None:
    provisioned = {
        source["uid"]: source["type"] for source in yaml.safe_load(DATASOURCES.read_text())["datasources"]
    }
    board = dashboard()
    assert board["uid"] == "timeman-poller"
    queried = 0
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        sources = [panel["datasource"]] + [target["datasource"] for target in panel["targets"]]
        for source in sources:
            assert provisioned.get(source["uid"]) == source["type"], (panel["title"], source)
        assert panel["targets"] and panel["title"] and panel["description"]
        queried += 1
    assert queried >= 15
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


def test_panels_fit_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[x, y]!r}"
                cells[x, y] = panel["title"]


def test_the_dashboard_covers_the_views_and_the_poller() -> None:
    sql = " ".join(target["rawSql"] for _, target in targets("grafana-postgresql-datasource"))
    for relation in ("latest_status", "workdays", "daily_worktime", "workday_records"):
        assert re.search(rf"\bFROM {relation}\b", sql), relation
    for relation in ("attendance", "workday_revisions", "departments"):
        assert re.search(rf"\b(?:FROM|JOIN) {relation}\b", sql), relation
    titles = {title for title, _ in targets("grafana-postgresql-datasource")}
    assert {"Who is working now", "Hours per day per department", "Pending approvals"} <= titles
    assert {"Estimates vs records", "Estimates vs records per portal"} <= titles
    assert set(ATTENDANCE_PANELS) <= titles


def test_relations_skip_strings_comments_ctes_and_functions() -> None:
    sql = (
        "WITH m AS (SELECT 1), n AS (SELECT 2) -- FROM nowhere\n"
        'SELECT \'FROM quoted\' AS "days from records" FROM attendance a JOIN "users" u ON 1 = 1, m'
        " LEFT JOIN json_each(u.department_ids) j ON 1 = 1 WHERE x IN (SELECT 1 FROM n JOIN Departments d)"
    )
    assert relations(sql) == {"attendance", "users", "departments"}


# -- SQL panels on a migrated PostgreSQL ---------------------------------------------------


def expand_grafana_macros(sql: str) -> str:
    """Expand the macros of Grafana's PostgreSQL data source over a fixed time range.

    `$__timeFilter(column)` becomes `column BETWEEN '<from>' AND '<to>'`, as Grafana writes
    it; any other macro or `$variable` is an error, so a new one gets a rule here first.
    """
    sql = re.sub(r"\$__timeFilter\(([^)]*)\)", rf"\1 BETWEEN {TIME_FROM} AND {TIME_TO}", sql)
    sql = sql.replace("$__timeFrom()", TIME_FROM).replace("$__timeTo()", TIME_TO)
    leftover = re.findall(r"\$\{?\w+", sql)
    assert not leftover, f"no expansion for {leftover}"
    return sql


def test_grafana_macros_expand_to_a_plain_condition() -> None:
    assert expand_grafana_macros("WHERE $__timeFilter(w.work_date) AND x > $__timeFrom()") == (
        f"WHERE w.work_date BETWEEN {TIME_FROM} AND {TIME_TO} AND x > {TIME_FROM}"
    )
    with pytest.raises(AssertionError, match="no expansion"):
        expand_grafana_macros("WHERE portal IN (${portal:sqlstring})")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_every_sql_panel_query_runs_read_only_on_a_migrated_postgresql(engine: Engine) -> None:
    queries = targets("grafana-postgresql-datasource")
    assert len(queries) >= 8
    failures = []
    for title, target in queries:
        with engine.connect() as connection, connection.begin():
            connection.execute(text("SET TRANSACTION READ ONLY"))
            try:
                result = connection.execute(text(expand_grafana_macros(target["rawSql"])))
            except Exception as exc:  # collect every failing panel, not just the first
                failures.append(f"{title}: {str(exc).splitlines()[0]}")
                continue
            columns = list(result.keys())
            result.fetchall()
        if target["format"] == "time_series":
            assert columns[0] == "time" and "metric" in columns, (title, columns)
    assert not failures, "SQL panels that fail on the migrated schema:\n" + "\n".join(failures)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_sql_panels_read_only_tables_and_views_the_migrations_create(engine: Engine) -> None:
    known = schema_relations(engine)
    assert {"attendance", "workdays", "workday_revisions", "users", "departments"} <= known
    read = {title: relations(target["rawSql"]) for title, target in targets("grafana-postgresql-datasource")}
    assert all(read.values()), read
    unknown = {title: names - known for title, names in read.items() if names - known}
    assert not unknown, f"panels reading what no migration creates: {unknown}"


# The attendance panels on the seeded November 2026 (tests/worktime_seed.py), which the time
# range of `expand_grafana_macros` covers; each a panel title and the rows it shows.
ANNA, BORIS, CARL = "Anna Petrova", "Boris Ivanov", "Carl Smith"
ATTENDANCE_PANELS: dict[str, list[tuple[Any, ...]]] = {
    "Late and early days per employee": [
        # portal, user, name, late days, minutes late, early days, minutes early, short days
        ("acme", 1, ANNA, 1, 40, 1, 60, 1),
    ],
    "Overtime per department": [
        # department, overtime on workdays, worked on days off (the holiday, then a Saturday)
        ("acme / Support", 2.5, 7.0),
        ("acme / Sales", 0.33, 0.0),
    ],
    "Violations of the month (attendance flags)": [
        # portal, user, name, late, early leave, short, no-show, unclosed, overtime days and hours,
        # days off worked, pending; 20 workdays in November (the 4th a holiday); most flagged days first
        ("acme", 2, BORIS, 0, 0, 0, 19, 0, 1, 2.5, 2, 0),
        ("acme", 1, ANNA, 1, 1, 1, 18, 0, 1, 0.33, 0, 0),
        ("acme", 3, CARL, 0, 0, 0, 18, 0, 0, 0.0, 0, 1),
    ],
    "Corrections of the month": [
        ("acme", 1, ANNA, "2026-11-03", "workday", "worked_seconds", "25200", "27000",
         "2026-11-05T08:00:00+00:00", False),
    ],
}  # fmt: skip


def panel_rows(engine: Engine, title: str) -> list[tuple[Any, ...]]:
    """The rows of panel `title` over the test's time range, dates and instants as ISO text."""
    (sql,) = [target["rawSql"] for name, target in targets("grafana-postgresql-datasource") if name == title]
    with engine.connect() as connection:
        rows = connection.execute(text(expand_grafana_macros(sql))).all()
    return [tuple(_plain(value) for value in row) for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat() if isinstance(value, date) else value


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_attendance_panels_show_a_seeded_month_as_worked_out_by_hand(engine: Engine) -> None:
    seed_worktime(engine)
    for title, expected in ATTENDANCE_PANELS.items():
        assert panel_rows(engine, title) == expected, title
    cells = panel_rows(engine, "Worked hours per employee and day")
    assert len(cells) == 3 * 30  # every user on every day of November, work or not
    worked = {(day[:10], employee): hours for day, employee, hours in cells if hours}
    assert worked == {
        ("2026-11-02", f"acme / {ANNA} #1"): 8.33,
        ("2026-11-03", f"acme / {ANNA} #1"): 7.5,
        ("2026-11-02", f"acme / {BORIS} #2"): 10.5,
        ("2026-11-04", f"acme / {BORIS} #2"): 4.0,
        ("2026-11-07", f"acme / {BORIS} #2"): 3.0,
        ("2026-11-02", f"acme / {CARL} #3"): 8.0,
    }


# -- alert rules -------------------------------------------------------------------------


DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def test_the_alert_rules_cover_each_failure_and_have_what_an_operator_needs() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert {
        "TimemanPollerPortalStale",
        "TimemanPollerErrorsRising",
        "TimemanPollerSpoolNotEmpty",
        "TimemanPollerSpoolInMemory",
        "TimemanPollerTokenRefreshFailing",
        "TimemanPollerReconcileLate",
    } <= set(names)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert DURATION.match(rule.get("for", "0s")), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    by_name = {rule["alert"]: rule for rule in rules}
    assert "> 900" in by_name["TimemanPollerPortalStale"]["expr"]
    assert by_name["TimemanPollerSpoolNotEmpty"]["for"] == "10m"
    assert "26 * 3600" in by_name["TimemanPollerReconcileLate"]["expr"]


def promtool() -> str:
    found = os.environ.get("TIMEMAN_POLLER_PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.skip("promtool is not installed (apt-get install prometheus, or set TIMEMAN_POLLER_PROMTOOL)")
    return found


def test_promtool_accepts_the_alert_rules() -> None:
    checked = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def alert(name: str, **labels: str) -> dict[str, Any]:
    severity = next(rule["labels"]["severity"] for rule in alert_rules() if rule["alert"] == name)
    return {"exp_labels": {**labels, "severity": severity}}


def at(eval_time: str, name: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": name, "exp_alerts": list(alerts)}


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    inner = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


STORED, FAILED = "timeman_poller_users_stored_total", "timeman_poller_users_failed_total"
LAST_SUCCESS = "timeman_poller_last_success_timestamp_seconds"
RECONCILED = "timeman_poller_reconcile_last_success_timestamp_seconds"
ERRORS, REFRESHES = "timeman_poller_errors_total", "timeman_poller_token_refreshes_total"

# Each case: made-up series (one sample a minute) and when which alerts fire.
RULE_CASES: list[dict[str, Any]] = [
    {
        "interval": "1m",
        "input_series": [
            series(LAST_SUCCESS, "0+60x40", instance="a", portal="fresh"),
            series(LAST_SUCCESS, "0x40", instance="a", portal="stuck"),
            # A replica let "moved" go (its series froze); another polls it.
            series(LAST_SUCCESS, "0x40", instance="a", portal="moved"),
            series(LAST_SUCCESS, "0+60x40", instance="b", portal="moved"),
            *(series(STORED, "0x40", instance="a", portal=p) for p in ("fresh", "stuck", "moved", "never")),
        ],
        "alert_rule_test": [
            at("10m", "TimemanPollerPortalStale"),
            at("20m", "TimemanPollerPortalStale", alert("TimemanPollerPortalStale", portal="stuck")),
            at("10m", "TimemanPollerPortalNeverSucceeded"),
            at(
                "20m",
                "TimemanPollerPortalNeverSucceeded",
                alert("TimemanPollerPortalNeverSucceeded", portal="never"),
            ),
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            series(ERRORS, "0+5x100", instance="a", portal="steady", code="USER_NOT_FOUND"),
            series(ERRORS, "0x60 0+20x40", instance="a", portal="jump", code="TIMEOUT"),
            series(ERRORS, "_x70 0+20x30", instance="a", portal="newbie", code="TIMEOUT"),
        ],
        "alert_rule_test": [
            at("50m", "TimemanPollerErrorsRising"),
            at(
                "80m",
                "TimemanPollerErrorsRising",
                alert("TimemanPollerErrorsRising", portal="jump"),
                alert("TimemanPollerErrorsRising", portal="newbie"),
            ),
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            series(STORED, "0+10x60", instance="a", portal="bad"),
            series(FAILED, "0+5x60", instance="a", portal="bad"),
            series(STORED, "0+10x60", instance="a", portal="good"),
            series(FAILED, "0x60", instance="a", portal="good"),
            series("timeman_poller_spool_rows", "0x5 5x30", instance="a"),
            series("timeman_poller_spool_rows", "0x40", instance="b"),
            series("timeman_poller_spool_in_memory", "0x5 1x30", instance="a"),
            series(
                "timeman_poller_spool_quarantined_rows_total", "0x10 3x30", instance="a", reason="rejected"
            ),
            series("timeman_poller_spool_quarantined_rows_total", "0x40", instance="a", reason="unreadable"),
            series(REFRESHES, "0+1x60", instance="a", portal="dead", outcome="failed"),
            series(REFRESHES, "0x60", instance="a", portal="dead", outcome="ok"),
            series(REFRESHES, "0+1x60", instance="a", portal="flaky", outcome="failed"),
            series(REFRESHES, "0+1x60", instance="a", portal="flaky", outcome="ok"),
            series("timeman_poller_portal_owned", "1x20", instance="a", portal="p", replica="a"),
            series("timeman_poller_portal_owned", "0x5 1x15", instance="b", portal="p", replica="b"),
            series("timeman_poller_portal_owned", "0x20", instance="b", portal="q", replica="b"),
            series("timeman_poller_portal_owned", "1x20", instance="c", portal="q", replica="c"),
        ],
        "alert_rule_test": [
            at("40m", "TimemanPollerUsersFailing", alert("TimemanPollerUsersFailing", portal="bad")),
            at("12m", "TimemanPollerSpoolNotEmpty"),
            at("20m", "TimemanPollerSpoolNotEmpty", alert("TimemanPollerSpoolNotEmpty", instance="a")),
            at("3m", "TimemanPollerSpoolInMemory"),
            at("10m", "TimemanPollerSpoolInMemory", alert("TimemanPollerSpoolInMemory", instance="a")),
            at(
                "20m",
                "TimemanPollerSpoolRowsQuarantined",
                alert("TimemanPollerSpoolRowsQuarantined", instance="a", reason="rejected"),
            ),
            at(
                "40m",
                "TimemanPollerTokenRefreshFailing",
                alert("TimemanPollerTokenRefreshFailing", portal="dead"),
            ),
            at("3m", "TimemanPollerPortalHeldTwice"),
            at("15m", "TimemanPollerPortalHeldTwice", alert("TimemanPollerPortalHeldTwice", portal="p")),
        ],
    },
    {
        "interval": "1m",  # samples further apart than 5 minutes would go stale between them
        "input_series": [
            series(RECONCILED, "0x1700", instance="a", portal="late"),
            series(RECONCILED, "0+60x1700", instance="a", portal="daily"),
            *(series(STORED, "0x1700", instance="a", portal=p) for p in ("late", "daily", "never")),
        ],
        "alert_rule_test": [
            at("25h", "TimemanPollerReconcileLate"),
            at("27h", "TimemanPollerReconcileLate", alert("TimemanPollerReconcileLate", portal="late")),
            at("25h", "TimemanPollerReconcileNeverRan"),
            at(
                "27h",
                "TimemanPollerReconcileNeverRan",
                alert("TimemanPollerReconcileNeverRan", portal="never"),
            ),
        ],
    },
]


def test_every_alert_rule_has_a_case_that_fires_it() -> None:
    fired = {
        case["alertname"] for group in RULE_CASES for case in group["alert_rule_test"] if case["exp_alerts"]
    }
    assert fired == {rule["alert"] for rule in alert_rules()}


def test_the_alerts_fire_when_they_should_and_not_before(tmp_path: Path) -> None:
    """promtool's rule unit tests compare annotations too: the rules are tested without them
    (`promtool check rules` above checks that their templates parse)."""
    binary = promtool()
    document = yaml.safe_load(ALERTS.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(document))
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": RULE_CASES})
    )
    tested = subprocess.run(
        [binary, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
