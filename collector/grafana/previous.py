"""What the files rendered before provisioned, so that the new ones delete what is gone (see "Deletions" below)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from collector.errors import TemplogError
from collector.grafana.common import NOTIFICATIONS_FILE, RULES_FILE

# Deletions
#
# Grafana (grafana/grafana@b4241e5b:pkg/services/provisioning/alerting/provisioner.go) provisions at each start, in
# this order: every file's rules (create or update by uid), then its deleteRules; contact points (create or update
# by receiver uid); policies (replace the tree); then resetPolicies; then deleteContactPoints. Deleting a uid that
# does not exist is a no-op (pkg/services/ngalert/provisioning/alert_rules.go deleteRules, contactpoints.go
# DeleteContactPoint); deleting a contact point's last receiver while a policy routes to it is refused
# (ErrContactPointReferenced), which the reset before it prevents. A contact point keeps every receiver uid it
# was given until one is deleted: a webhook replaced by e-mail stays unless listed in deleteContactPoints.
#
# "Before" is the provisioning directory as Grafana last read it (the one-shot renders into a staging directory
# and then replaces it). Its own deletions are carried forward, so one survives several renderings between two
# Grafana starts; a uid rendered again is dropped from them (Grafana would create it, then delete it).


UID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,40}")


@dataclass(frozen=True)
class Previous:
    """What an earlier rendering provisioned or deleted: rule uids, contact point receiver uids, whether it
    provisioned (or reset) the policy tree."""
    rule_uids: frozenset[str] = frozenset()
    receiver_uids: frozenset[str] = frozenset()
    policies: bool = False


NOTHING_BEFORE = Previous()


class PreviousUnusable(TemplogError, ValueError):
    """A previous provisioning file templog cannot take deletions from."""


def _listed_uids(document: dict, key: str, nested: str | None = None) -> set[str]:
    entries = document.get(key) or []
    if not isinstance(entries, list):
        raise PreviousUnusable(f"{key} is not a list")
    uids = set()
    for index, entry in enumerate(entries):
        items = entry.get(nested) if isinstance(entry, dict) and nested else [entry]
        if not isinstance(items, list):
            raise PreviousUnusable(f"{key}[{index}].{nested} is not a list")
        for item in items:
            uid = item.get("uid") if isinstance(item, dict) else None
            if not isinstance(uid, str) or not UID_PATTERN.fullmatch(uid):
                raise PreviousUnusable(f"{key}[{index}] has no valid uid")
            uids.add(uid)
    return uids


def _document(text: str) -> dict:
    document = yaml.safe_load(text)
    if not isinstance(document, dict) or document.get("apiVersion") != 1:
        raise PreviousUnusable("not an alerting provisioning file (apiVersion 1)")
    return document


def previous_rules(text: str) -> frozenset[str]:
    """The rule uids a rules file provisioned or deleted."""
    document = _document(text)
    groups = document.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(group, dict) for group in groups):
        raise PreviousUnusable("groups is not a list of rule groups")
    provisioned = _listed_uids({"groups": groups}, "groups", "rules")
    return frozenset(provisioned | _listed_uids(document, "deleteRules"))


def previous_notifications(text: str) -> tuple[frozenset[str], bool]:
    """The receiver uids a notifications file provisioned or deleted, and whether it set or reset the tree."""
    document = _document(text)
    receivers = _listed_uids(document, "contactPoints", "receivers") | _listed_uids(document, "deleteContactPoints")
    return frozenset(receivers), bool(document.get("policies") or document.get("resetPolicies"))


def read_previous(directory: str | Path) -> tuple[Previous, list[str]]:
    """What the provisioning files under `directory` provisioned; a file that is absent gives nothing, one that
    cannot be read or understood gives nothing and a warning (rendering goes on without its deletions)."""
    rules: frozenset[str] = frozenset()
    receivers: frozenset[str] = frozenset()
    policies = False
    warnings = []
    if not Path(directory).is_dir():
        return NOTHING_BEFORE, [f"{directory} is not a directory: rendering without deletions"]
    for relative in (RULES_FILE, NOTIFICATIONS_FILE):
        path = Path(directory) / relative
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            warnings.append(f"{path} cannot be read ({exc}): rendering without the deletions it would give")
            continue
        try:
            if relative == RULES_FILE:
                rules = previous_rules(text)
            else:
                receivers, policies = previous_notifications(text)
        except (yaml.YAMLError, PreviousUnusable) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.append(f"{path} is not usable ({reason}): rendering without the deletions it would give")
    return Previous(rules, receivers, policies), warnings



