#!/usr/bin/env python3
"""Checks that every PromQL query of a Grafana dashboard parses, with promtool.

Each panel target's `expr` (rows' panels included), with the dashboard's variables substituted,
becomes a recording rule of a throwaway rules file that `promtool check rules` parses. Template
variables (`$namespace`, `${namespace}`, `[[namespace]]`) become a two-value regex alternation
(`namespace_1|namespace_2`), as Grafana writes a multi-value selection; Grafana's built-ins
(`$__rate_interval`, ...) become durations. A `$` left over fails the check.

Usage: scripts/check-dashboard-promql.py [DASHBOARD_JSON ...]
       (default monitoring/grafana_dashboard.json; needs promtool, Debian package `prometheus`)
"""

import json
import os
import re
import subprocess
import sys
import tempfile

BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}


def targets(panels):
    """(panel id, title, refId, expr) of every target, rows' panels included."""
    for panel in panels:
        yield from targets(panel.get("panels", []))
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel.get("id"), panel.get("title", ""), target.get("refId", ""), target["expr"]


def substitute(expr, variables):
    def value(match):
        name = match.group(1) or match.group(2) or match.group(3)
        if name in BUILTINS:
            return BUILTINS[name]
        if name in variables:
            return f"{name}_1|{name}_2"
        return match.group(0)

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", value, expr)


def check(path):
    dashboard = json.load(open(path))
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    rules, errors = [], []
    for pid, title, ref, expr in targets(dashboard.get("panels", [])):
        promql = substitute(expr, variables)
        record = f"dashboard:panel_{pid}_{ref}"
        if "$" in promql:
            errors.append(f"{record} ({title}): unknown variable in {expr}")
        rules.append({"record": record, "expr": promql})
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        # JSON is YAML: no quoting to get wrong.
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)
    try:
        run = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if run.returncode != 0:
        errors.append((run.stdout + run.stderr).strip().replace(f.name, f"<rules generated from {path}>"))
    for error in errors:
        print(error, file=sys.stderr)
    print(f"{path}: {len(rules)} queries, {'OK' if not errors else 'FAILED'}")
    return not errors


def main():
    paths = sys.argv[1:] or ["monitoring/grafana_dashboard.json"]
    sys.exit(0 if all([check(p) for p in paths]) else 1)


if __name__ == "__main__":
    main()
