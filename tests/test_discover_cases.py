"""`templog discover`'s golden output (issue 11 item 5): each folder tests/discover_cases/<case>/ holds a sysfs tree
(sys/), expected.yaml, what `discover` prints for a config whose `collector.sysfs` is that tree, byte for byte, and
expected.json, what `templog read --json` prints once those entries are pasted into that same config: the values
in the tree discover searched (on 5b389f9, `discover --sysfs TREE` printed `zone: 0`, which read the real
/sys/class/thermal/thermal_zone0/temp). TEMPLOG_UPDATE_GOLDEN=1 rewrites both (tests/sensor_cases/README.md).
"""

import json

import pytest

from cli import ROOT, templog
from golden import as_case_relative, compare_json, compare_text

CASES = ROOT / "tests/discover_cases"


def cases() -> list:
    return [pytest.param(folder, id=folder.name) for folder in sorted(CASES.iterdir()) if folder.is_dir()]


@pytest.mark.parametrize("case", cases())
def test_discover_case(case, write_config):
    collector = f"collector: {{sysfs: '{case / 'sys'}'}}\n"
    config = write_config(collector)  # no sensor yet: finding them is what discover is for
    found = templog("discover", "-c", str(config))
    assert found.returncode == 0, found.stderr
    compare_text(case / "expected.yaml", as_case_relative(found.stdout, case))
    pasted = write_config(collector + found.stdout, name="pasted.yaml")
    read = templog("read", "--json", "-c", str(pasted))
    records = json.loads(as_case_relative(read.stdout, case))
    compare_json(case / "expected.json", records)
    assert read.returncode == 0 and all(r["error"] is None for r in records), read.stdout
