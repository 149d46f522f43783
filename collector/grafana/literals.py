"""Text in Grafana's own syntaxes: provisioning values it expands `$` in, regexes it matches, rule uids."""

from __future__ import annotations

import hashlib
import re


def grafana_literal(text: str) -> str:
    """`text` in a provisioning field Grafana expands environment variables in: `$` written as `$$`."""
    return text.replace("$", "$$")


def rule_uid(kind: str, name: str = "") -> str:
    """A stable rule uid (Grafana: at most 40 of [A-Za-z0-9_-]): kind, a readable part of the name, a hash of it."""
    if not name:
        return f"templog-{kind}"
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    prefix = f"templog-{kind}-"
    room = 40 - len(prefix) - len(digest) - 1
    slug = slug[:room].strip("-")
    return f"{prefix}{slug}-{digest}" if slug else f"{prefix}{digest}"


_GRAFANA_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")


def grafana_regex_escape(text: str) -> str:
    """`text` matched literally in a JavaScript regex, as Grafana escapes a variable's values
    (grafana/grafana@0524cbafcfcf packages/grafana-data/src/text/string.ts escapeRegex)."""
    return _GRAFANA_REGEX_SPECIAL.sub(r"\\\g<0>", text)

