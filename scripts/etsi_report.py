"""Summarise an ETSI NGSI-LD conformance run (robot's output.xml) as Markdown.

    python scripts/etsi_report.py /tmp/etsi-results/<run>/output.xml > report.md

Prints pass/fail counts per folder and one line per failing test with robot's
message, for docs/conformance.md.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path


def folder_of(source: str) -> str:
    relative = source.split("TP/NGSI-LD/", 1)[-1]
    parts = relative.split("/")
    return "/".join(parts[:3] if parts[0] == "ContextInformation" else parts[:2])


def main(path: Path) -> None:
    root = ET.parse(path).getroot()
    counts: Counter[tuple[str, str]] = Counter()
    failures: list[tuple[str, str, str]] = []
    for suite in root.iter("suite"):
        source = suite.get("source") or ""
        for test in suite.findall("test"):
            status = test.find("status")
            assert status is not None
            outcome = status.get("status", "FAIL")
            folder = folder_of(source)
            counts[(folder, outcome)] += 1
            if outcome == "FAIL":
                message = " ".join((status.text or "").split())[:160]
                failures.append((folder, test.get("name", ""), message))
    folders = sorted({folder for folder, _ in counts})
    total_pass = sum(n for (_, o), n in counts.items() if o == "PASS")
    total_fail = sum(n for (_, o), n in counts.items() if o == "FAIL")
    print("| folder | pass | fail |")
    print("|---|---:|---:|")
    for folder in folders:
        print(f"| {folder} | {counts[(folder, 'PASS')]} | {counts[(folder, 'FAIL')]} |")
    share = 100 * total_pass / max(1, total_pass + total_fail)
    print(f"| **total** | **{total_pass}** | **{total_fail}** ({share:.1f}% pass) |")
    print()
    for folder, name, message in failures:
        print(f"- `{name}` ({folder}): {message}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
