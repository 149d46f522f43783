"""The contact point and the notification policy: not from the config, but from the notification channel the
environment names (a webhook URL or e-mail addresses)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.grafana.common import CONTACT_POINT, EMAIL_ADDRESSES_ENV, ORG_ID, WEBHOOK_URL_ENV
from collector.grafana.previous import NOTHING_BEFORE, Previous


def render_contact_points(channel: str = "webhook") -> dict:
    """The `templog` contact point: a webhook whose URL Grafana reads from $TEMPLOG_ALERT_WEBHOOK_URL, or (channel
    "email", the documented alternative) e-mail to $TEMPLOG_ALERT_EMAIL through Grafana's SMTP settings."""
    receiver: dict[str, object]
    if channel == "webhook":
        receiver = {"uid": "templog-webhook", "type": "webhook",
                    "settings": {"url": f"${WEBHOOK_URL_ENV}", "httpMethod": "POST"}}
    elif channel == "email":
        receiver = {"uid": "templog-email", "type": "email",
                    "settings": {"addresses": f"${EMAIL_ADDRESSES_ENV}", "singleEmail": False}}
    else:
        raise ValueError(f"unknown notification channel {channel!r} (webhook or email)")
    receiver["disableResolveMessage"] = False
    return {"apiVersion": 1, "contactPoints": [{"orgId": 1, "name": CONTACT_POINT, "receivers": [receiver]}]}


def render_notification_policies() -> dict:
    """The organisation's notification policy tree: everything to the `templog` contact point, one notification
    per rule and sensor/host."""
    return {"apiVersion": 1, "policies": [{
        "orgId": 1,
        "receiver": CONTACT_POINT,
        "group_by": ["grafana_folder", "alertname", "sensor", "host"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
    }]}


def render_notifications(channel: str | None = "webhook", previous: Previous | None = None) -> dict | None:
    """Contact point and notification policy in one provisioning file, for `channel` (None: no channel); with
    `previous`, the deletions that take back what was provisioned before: `deleteContactPoints` for each earlier
    receiver uid not rendered now, and with no channel now `resetPolicies` (Grafana's default tree) if a tree was
    provisioned before. None when there is nothing to provision or delete."""
    previous = previous or NOTHING_BEFORE
    document: dict[str, Any] = {"apiVersion": 1}
    current: set[str] = set()
    if channel:
        document.update(render_contact_points(channel))
        document["policies"] = render_notification_policies()["policies"]
        current = {receiver["uid"] for point in document["contactPoints"] for receiver in point["receivers"]}
    gone = sorted(previous.receiver_uids - current)
    if gone:
        document["deleteContactPoints"] = [{"orgId": ORG_ID, "uid": uid} for uid in gone]
    if not channel and previous.policies:
        document["resetPolicies"] = [ORG_ID]
    return document if len(document) > 1 else None


def notification_channel(environ: Mapping[str, str]) -> str | None:
    """How alerts are sent, from the environment Grafana will run in: "webhook" when $TEMPLOG_ALERT_WEBHOOK_URL is
    set, else "email" when $TEMPLOG_ALERT_EMAIL is, else None (Grafana refuses to start with a contact point
    whose URL or address is empty, so then none is provisioned: alerts show in Grafana only)."""
    if environ.get(WEBHOOK_URL_ENV, "").strip():
        return "webhook"
    if environ.get(EMAIL_ADDRESSES_ENV, "").strip():
        return "email"
    return None


