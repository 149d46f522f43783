"""Grafana provisioning rendered from config.yaml: alert rules and the Temperatures dashboards.

Grafana's behaviour is cited from its source at the commits the source index holds, none of them the pinned 12.3.1
(grafana/README.md, "How this stack was verified").

Thresholds live only in config.yaml (each sensor's `min` and `max`, and `humidity_min`, `humidity_max`), so everything
that depends on them is rendered from the config by the pure functions here: the alert rules (at or above max, below
min and silent per sensor and host, plus each collector's health per host), the Flux dashboard and its InfluxQL twin
(stat panels coloured by each sensor's thresholds; humidity and dew-point panels when a sensor measures humidity).
The contact point and the notification policy do not depend on the config; they are rendered when the environment
names a notification channel (a webhook URL or e-mail addresses). `dump_yaml` and `dump_json` give the files'
exact, deterministic text; `write_provisioning` writes them under a provisioning directory.

Grafana expands environment variables (`$NAME`, `${NAME}`, and its `$__env{}`/`$__file{}` expanders; `$$` is a
literal `$`) in the values of alerting provisioning files: a rule's uid, title and labels, the group's name and
folder, a contact point's settings. It keeps a rule's annotations and its query models raw, and does not expand
dashboards (grafana/grafana@9ff3317d:pkg/services/provisioning/alerting/rules_types.go: `Annotations.Raw`,
`Model.Raw`; pkg/services/provisioning/values/values.go: interpolateValue). So titles and labels escape `$` as
`$$`, annotations and queries do not, and the webhook URL is left to Grafana as `$TEMPLOG_ALERT_WEBHOOK_URL`.

Grafana's file provisioning creates and updates what the files list but deletes only what they list for deletion
(`deleteRules`, `deleteContactPoints`, `resetPolicies`): `render_alert_rules` and `render_notifications` derive
those from the files rendered before (`read_previous`), see previous.py.

The modules, by concern: common (names, file paths, intervals), literals (Grafana's escapes, rule uids), rules and
rule_dialects (each rule once; its queries in Flux, InfluxQL or SQL, after `influxdb.api`), notifications, previous,
panels, humidity_panels, flux_dashboard, influxql_dashboard, files; the query texts come from collector.query, as
`templog history`'s do. This package exposes what `templog grafana` and the tests use.
"""

from collector.grafana.common import (
    CONTACT_POINT,
    DASHBOARD_FILE,
    DASHBOARD_UID,
    DASHBOARDS_DIR,
    DATASOURCE_TYPE,
    EXPRESSION_DATASOURCE_UID,
    FLUX_DATASOURCE_UID,
    FOLDER,
    INFLUXQL_DASHBOARD_FILE,
    INFLUXQL_DASHBOARD_UID,
    INFLUXQL_DATASOURCE_UID,
    INFLUXQL_LONGTERM_DATASOURCE_UID,
    LONGTERM_BUCKET,
    NOTIFICATIONS_FILE,
    OUTBOX_ALERT_DEPTH,
    PANEL_AGE,
    PANEL_CURRENT,
    PANEL_DEWPOINT_CURRENT,
    PANEL_DEWPOINT_LONG_RANGE,
    PANEL_DEWPOINT_SERIES,
    PANEL_HEALTH_ROW,
    PANEL_HUMIDITY_CURRENT,
    PANEL_HUMIDITY_LONG_RANGE,
    PANEL_HUMIDITY_ROW,
    PANEL_HUMIDITY_SERIES,
    PANEL_LONG_RANGE,
    PANEL_PROBLEMS,
    PANEL_SERIES,
    RULES_FILE,
    SQL_DATASOURCE_UID,
    outbox_fresh_s,
)
from collector.grafana.files import alert_rules_yaml, notifications_yaml, rendered_files, write_provisioning
from collector.grafana.flux_dashboard import render_dashboard
from collector.grafana.influxql_dashboard import render_influxql_dashboard
from collector.grafana.literals import grafana_literal, grafana_regex_escape, rule_uid
from collector.grafana.notifications import notification_channel, render_notifications
from collector.grafana.panels import BLUE, RED, temperature_thresholds
from collector.grafana.previous import NOTHING_BEFORE, UID_PATTERN, Previous, read_previous
from collector.grafana.rules import render_alert_rules

__all__ = [
    "BLUE", "CONTACT_POINT", "DASHBOARD_FILE", "DASHBOARD_UID", "DASHBOARDS_DIR", "DATASOURCE_TYPE",
    "EXPRESSION_DATASOURCE_UID", "FLUX_DATASOURCE_UID", "FOLDER", "INFLUXQL_DASHBOARD_FILE", "INFLUXQL_DASHBOARD_UID",
    "INFLUXQL_DATASOURCE_UID", "INFLUXQL_LONGTERM_DATASOURCE_UID", "LONGTERM_BUCKET", "NOTHING_BEFORE",
    "NOTIFICATIONS_FILE", "OUTBOX_ALERT_DEPTH", "PANEL_AGE", "PANEL_CURRENT", "PANEL_DEWPOINT_CURRENT",
    "PANEL_DEWPOINT_LONG_RANGE", "PANEL_DEWPOINT_SERIES", "PANEL_HEALTH_ROW", "PANEL_HUMIDITY_CURRENT",
    "PANEL_HUMIDITY_LONG_RANGE", "PANEL_HUMIDITY_ROW", "PANEL_HUMIDITY_SERIES", "PANEL_LONG_RANGE", "PANEL_PROBLEMS",
    "PANEL_SERIES", "RED", "RULES_FILE", "SQL_DATASOURCE_UID", "UID_PATTERN", "Previous", "alert_rules_yaml",
    "grafana_literal", "grafana_regex_escape", "notification_channel", "notifications_yaml", "outbox_fresh_s",
    "read_previous", "render_alert_rules", "rendered_files", "render_dashboard", "render_influxql_dashboard",
    "render_notifications", "rule_uid", "temperature_thresholds", "write_provisioning",
]
