#!/usr/bin/env python3
"""Summarises what dogstatsd_sink.py recorded: exact totals per metric context, events, service checks, errors.

Usage: dogstatsd_check.py OUT [--expect-none-bad] [--expect-lines N] [--compact]

Reads the sink's JSONL file OUT (stdlib only) and prints one JSON object:
  {"datagrams": n, "lines": n, "bytes": n, "max_datagram": largest size, "kernel_drops": n,
   "transports": {"udp": n, ...},
   "bad": [{"seq", "line", "error"}],              lines with a grammar error
   "bad_datagrams": [{"seq", "error"}],            datagram-level errors (size, partial line, ...)
   "metrics": {"<name>|<type>|<tags sorted, comma-joined>": entry},
   "events": [{title, text, ..., tags}], "service_checks": [{name, status, ..., message}]}
Metric entries (only good lines count; "n" is the number of values received, packed values each count):
  c          {"n", "sum": sum of value/rate, "raw_sum": sum of values}
  g          {"n", "last": last value received}
  ms, h, d   {"n", "count": sum of 1/rate per value, "sum": sum of values, "min", "max"}
  s          {"n", "members": sorted distinct members}
plus "timestamps" (sorted distinct |T values), "containers", "externals", "cardinalities" when any line of the
context carried them. Numbers are floats; a rate of 0.5 makes each value count twice, exactly as the Agent
weights it. Tags are sorted for the key but not de-duplicated, so a repeated tag shows.
Exit status: 0, or 1 with --expect-none-bad when a line or datagram has an error, or with --expect-lines N
when the number of lines differs; 2 if OUT cannot be read.
"""

import argparse
import json
import sys
import time


def context_key(line):
    return f"{line['name']}|{line['type']}|{','.join(sorted(line.get('tags') or []))}"


def add_metric(metrics, line):
    key = context_key(line)
    mtype = line["type"]
    rate = line.get("sample_rate") or 1.0
    entry = metrics.get(key)
    if entry is None:
        if mtype == "c":
            entry = {"n": 0, "sum": 0.0, "raw_sum": 0.0}
        elif mtype == "g":
            entry = {"n": 0, "last": None}
        elif mtype == "s":
            entry = {"n": 0, "members": []}
        else:
            entry = {"n": 0, "count": 0.0, "sum": 0.0, "min": None, "max": None}
        metrics[key] = entry
    for raw in line["values"]:
        entry["n"] += 1
        if mtype == "s":
            if raw not in entry["members"]:
                entry["members"].append(raw)
                entry["members"].sort()
            continue
        v = float(raw)
        if mtype == "c":
            entry["sum"] += v / rate
            entry["raw_sum"] += v
        elif mtype == "g":
            entry["last"] = v
        else:
            entry["count"] += 1.0 / rate
            entry["sum"] += v
            entry["min"] = v if entry["min"] is None else min(entry["min"], v)
            entry["max"] = v if entry["max"] is None else max(entry["max"], v)
    for field, plural in (("timestamp", "timestamps"), ("container", "containers"), ("external", "externals"),
                          ("cardinality", "cardinalities")):
        if line.get(field) is not None:
            values = entry.setdefault(plural, [])
            if line[field] not in values:
                values.append(line[field])
                values.sort()


def summarise(records):
    out = {"datagrams": len(records), "lines": 0, "bytes": 0, "max_datagram": 0, "kernel_drops": 0,
           "transports": {}, "bad": [], "bad_datagrams": [], "metrics": {}, "events": [], "service_checks": []}
    for rec in records:
        out["lines"] += len(rec["lines"])
        out["bytes"] += rec["size"]
        out["max_datagram"] = max(out["max_datagram"], rec["size"])
        out["kernel_drops"] = max(out["kernel_drops"], rec.get("kernel_drops") or 0)
        out["transports"][rec["transport"]] = out["transports"].get(rec["transport"], 0) + 1
        if rec.get("error"):
            out["bad_datagrams"].append({"seq": rec["seq"], "error": rec["error"]})
        for line in rec["lines"]:
            if line.get("error"):
                out["bad"].append({"seq": rec["seq"], "line": line["line"], "error": line["error"]})
            elif line["kind"] == "metric":
                add_metric(out["metrics"], line)
            elif line["kind"] == "event":
                out["events"].append({k: v for k, v in line.items() if k not in ("line", "kind", "error")})
            elif line["kind"] == "service_check":
                out["service_checks"].append({k: v for k, v in line.items() if k not in ("line", "kind", "error")})
    return out


def expectation(text):
    """'NAME|TYPE=VALUE' -> (NAME, TYPE, VALUE)."""
    key, sep, value = text.rpartition("=")
    name, bar, kind = key.partition("|")
    if not sep or not bar or kind not in ("c", "g", "ms", "h", "d", "s"):
        raise argparse.ArgumentTypeError(f"expected NAME|TYPE=VALUE, got {text!r}")
    return name, kind, float(value)


def unmet(summary, expectations, events):
    """What is missing from `summary`: one message per expectation that does not hold."""
    problems = []
    for name, kind, want in expectations:
        found = [m for k, m in summary["metrics"].items() if k.split("|")[:2] == [name, kind]]
        if not found:
            problems.append(f"{name}|{kind}: nothing received")
            continue
        if kind == "c":
            got = sum(m["sum"] for m in found)
        elif kind == "s":
            got = len({member for m in found for member in m["members"]})
        elif kind == "g":
            lasts = {m["last"] for m in found}
            got = lasts.pop() if len(lasts) == 1 else sorted(lasts)
        else:
            got = sum(m["count"] for m in found)
        if isinstance(got, int):
            got = float(got)
        if not isinstance(got, float) or abs(got - want) > 1e-9 * max(1.0, abs(want)):
            problems.append(f"{name}|{kind}: got {got}, expected {want:g}")
    if events is not None and len(summary["events"]) != events:
        problems.append(f"{len(summary['events'])} events, expected {events}")
    return problems


def main(argv):
    ap = argparse.ArgumentParser(prog="dogstatsd_check.py", description="Summarise dogstatsd_sink.py output.")
    ap.add_argument("out", help="the sink's JSONL file")
    ap.add_argument("--expect-none-bad", action="store_true", help="exit 1 if any line or datagram is bad")
    ap.add_argument("--expect-lines", type=int, metavar="N", help="exit 1 unless exactly N lines were received")
    ap.add_argument("--expect", type=expectation, action="append", default=[], metavar="NAME|TYPE=VALUE",
                    help="exit 1 unless the metric's total over its tag sets is VALUE: a counter's sum "
                         "(sample rates applied), the number of ms/h/d values, a set's distinct members, "
                         "a gauge's last value")
    ap.add_argument("--expect-events", type=int, metavar="N", help="exit 1 unless exactly N events arrived")
    ap.add_argument("--wait", type=float, default=0.0, metavar="S",
                    help="re-read OUT until the --expect* conditions hold, for at most S seconds")
    ap.add_argument("--compact", action="store_true", help="one-line JSON")
    args = ap.parse_args(argv[1:])
    deadline = time.monotonic() + args.wait
    while True:
        try:
            with open(args.out, encoding="utf-8") as f:
                records = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            if time.monotonic() < deadline:  # not there yet, or half-way through a record
                time.sleep(0.05)
                continue
            sys.stderr.write(f"dogstatsd_check: cannot read {args.out}: {e}\n")
            return 2
        summary = summarise(records)
        problems = unmet(summary, args.expect, args.expect_events)
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    print(json.dumps(summary, ensure_ascii=False, indent=None if args.compact else 1, sort_keys=False))
    status = 0
    if args.expect_none_bad and (summary["bad"] or summary["bad_datagrams"]):
        sys.stderr.write(f"dogstatsd_check: {len(summary['bad'])} bad lines, "
                         f"{len(summary['bad_datagrams'])} bad datagrams\n")
        status = 1
    for problem in problems:
        sys.stderr.write(f"dogstatsd_check: {problem}\n")
        status = 1
    if args.expect_lines is not None and summary["lines"] != args.expect_lines:
        sys.stderr.write(f"dogstatsd_check: {summary['lines']} lines, expected {args.expect_lines}\n")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
