#!/usr/bin/env python3
"""Checks every Datadog HTTP request a running http_sink.py received, with dd_validate.

Usage: dd_check_received.py PORT [KIND ...] [--any-status] [--check-time]

Fetches http://127.0.0.1:PORT/__received and, for each recorded request:
  * maps the path to a KIND: /api/v2/series -> v2-series, /api/v1/series -> v1-series,
    /api/v1/distribution_points -> v1-distribution, /api/v1/events -> v1-event (a trailing "/" and a query are
    ignored; /api/beta/sketches is noted, not checked; any other path is an error);
  * requires method POST, a non-empty DD-API-KEY header, Content-Type application/json (parameters such as
    "; charset=utf-8" allowed; text/json too for v1 series and distribution_points, which Datadog's OpenAPI spec
    declares and the official client sends), and a Content-Encoding the endpoint accepts (v2 series: gzip,
    deflate, zstd1; v1 series: gzip, deflate; distribution_points: deflate; events: none);
  * requires that the sink could decode the body (its "error" is null) and answered 2xx (unless --any-status,
    for fault-injection tests where some requests were answered 429/5xx on purpose);
  * validates the decoded body with dd_validate.validate(KIND, body) (--check-time: timestamps must be recent).
Each KIND given must appear at least once. Prints one line per request, then "OK <n> requests" (exit 0) or the
"ERROR ..." lines (exit 1).
"""

import base64
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dd_validate  # noqa: E402

PATH_KINDS = {
    "/api/v2/series": "v2-series",
    "/api/v1/series": "v1-series",
    "/api/v1/distribution_points": "v1-distribution",
    "/api/v1/events": "v1-event",
}
CONTENT_TYPES = {  # the v1 metric endpoints are declared "text/json" in Datadog's OpenAPI spec
    "v2-series": {"application/json"},
    "v1-series": {"application/json", "text/json"},
    "v1-distribution": {"application/json", "text/json"},
    "v1-event": {"application/json"},
}
ENCODINGS = {
    "v2-series": {"gzip", "deflate", "zstd1"},
    "v1-series": {"gzip", "deflate"},
    "v1-distribution": {"deflate"},
    "v1-event": set(),
}


def check_record(record, any_status, check_time):
    """Returns (kind or None, description, [problems])."""
    path = (record.get("path") or "").split("?", 1)[0]
    if len(path) > 1:
        path = path.rstrip("/")
    encoding = (record.get("content_encoding") or "").strip().lower()
    desc = f"{record.get('method')} {path}" + (f", {encoding}" if encoding else "")
    if path == "/api/beta/sketches":
        return None, desc + ": note: sketches (protobuf) are not checked", []
    kind = PATH_KINDS.get(path)
    if kind is None:
        return None, desc, [f"unknown Datadog path {path!r}"]
    problems = []
    headers = record.get("headers") or {}
    if record.get("method") != "POST":
        problems.append(f"method {record.get('method')} (want POST)")
    if not (headers.get("dd-api-key") or "").strip():
        problems.append("no DD-API-KEY header")
    ctype = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if ctype not in CONTENT_TYPES[kind]:
        want = " or ".join(sorted(CONTENT_TYPES[kind]))
        problems.append(f"Content-Type {headers.get('content-type')!r} (want {want})")
    if encoding and encoding not in ENCODINGS[kind]:
        allowed = ", ".join(sorted(ENCODINGS[kind])) or "none"
        problems.append(f"Content-Encoding {encoding!r} not accepted by {path} (allowed: {allowed})")
    if record.get("error"):
        problems.append(f"the sink could not read the request: {record['error']}")
        return kind, desc, problems
    answered = record.get("answered")
    if not any_status and not (isinstance(answered, int) and 200 <= answered < 300):
        problems.append(f"answered {answered!r} (use --any-status for fault tests)")
    body = base64.b64decode(record.get("body_b64") or "")
    model, summary, errors = dd_validate.validate(kind, body, check_time)
    problems.extend(errors)
    if not errors:
        desc += f": OK {model} ({summary})"
    return kind, desc, problems


def main(argv):
    flags = {a for a in argv[1:] if a.startswith("--")}
    args = [a for a in argv[1:] if not a.startswith("--")]
    unknown = flags - {"--any-status", "--check-time"}
    if not args or unknown or any(k not in dd_validate.KINDS for k in args[1:]):
        sys.stderr.write(f"usage: dd_check_received.py PORT [{'|'.join(dd_validate.KINDS)} ...] "
                         "[--any-status] [--check-time]\n")
        return 2
    port, wanted = args[0], set(args[1:])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__received", timeout=10) as response:
        received = json.load(response)
    problems, seen = [], set()
    for n, record in enumerate(received):
        kind, desc, errors = check_record(record, "--any-status" in flags, "--check-time" in flags)
        if kind:
            seen.add(kind)
        print(f"request {n} ({desc})")
        problems.extend(f"request {n} ({record.get('path')}): {e}" for e in errors)
    missing = sorted(wanted - seen)
    if missing:
        problems.append(f"no request of kind {', '.join(missing)}")
    if problems:
        for p in problems:
            print(f"ERROR {p}")
        return 1
    print(f"OK {len(received)} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
