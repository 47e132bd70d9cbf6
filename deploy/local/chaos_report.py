#!/usr/bin/env python3
"""Print the reliability suite's report (one JSON line per scenario) as a
Markdown table, the one the README's Reliability section shows."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| scenario | rounds | events | invalid | cases | lost | duplicated cases | deliveries | redelivered (same id) | dead-lettered | time to recover |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(
        f"| {r['scenario']} | {r['rounds']} | {r['events']} | {r['invalid']} | {r['cases']} "
        f"| {r['lost']} | {r['duplicated_cases']} | {r['deliveries']} | {r['redelivered']} "
        f"| {r['dead_lettered']} | {r['recovery_ms'] / 1000:.1f} s |"
    )
