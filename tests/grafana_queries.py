"""Reading the query texts back out of rendered provisioning, for the tests that check them (test-only: templog
renders queries, it never reads them back)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from collector.grafana import (
    EXPRESSION_DATASOURCE_UID,
    FLUX_DATASOURCE_UID,
    INFLUXQL_DATASOURCE_UID,
    INFLUXQL_LONGTERM_DATASOURCE_UID,
    SQL_DATASOURCE_UID,
)

LANGUAGES = {FLUX_DATASOURCE_UID: "flux", INFLUXQL_DATASOURCE_UID: "influxql",
             INFLUXQL_LONGTERM_DATASOURCE_UID: "influxql", SQL_DATASOURCE_UID: "sql"}


@dataclass(frozen=True)
class Query:
    where: str  # e.g. "panel 3 'Temperature…' A" or "rule templog-above-… A"
    datasource_uid: str
    text: str

    @property
    def language(self) -> str:
        return LANGUAGES.get(self.datasource_uid, "expression")


def _panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a row's panels


def dashboard_queries(dashboard: dict) -> list[Query]:
    """Every query text of a dashboard: the panels' targets and the template variables."""
    queries = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid", "")
            queries.append(Query(f"panel {panel['id']} {panel.get('title', '')!r} {target.get('refId', '')}", uid,
                                 target.get("query", "")))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else query
            queries.append(Query(f"variable {variable['name']}", (variable.get("datasource") or {}).get("uid", ""),
                                 text or ""))
    return queries


def rule_queries(rules_file: dict) -> list[Query]:
    """Every datasource query of an alerting provisioning file's rules (expressions left out; SQL's is `rawSql`)."""
    return [Query(f"rule {rule['uid']} {item['refId']}", item["datasourceUid"],
                  item["model"].get("query", item["model"].get("rawSql", "")))
            for group in rules_file.get("groups", []) for rule in group["rules"] for item in rule["data"]
            if item["datasourceUid"] != EXPRESSION_DATASOURCE_UID]
