#!/usr/bin/env python3
"""Checks everything a running http_sink.py received with the three checkers.

Usage: check_received.py PORT [TYPE ...]

Fetches http://127.0.0.1:PORT/__received; every request must have been answered 2xx, and every
body must pass envelope_strict.check, sentry_sdk's Envelope.deserialize and sentry_check.Checker.
Each TYPE given (e.g. event transaction session trace_metric) must appear in at least one envelope.
Prints one line per envelope and "OK <n> envelopes" (exit 0), or the problems (exit 1).
"""

import base64
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import envelope_strict  # noqa: E402
import sentry_check  # noqa: E402


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: check_received.py PORT [TYPE ...]\n")
        return 2
    port, wanted = argv[1], set(argv[2:])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__received", timeout=10) as response:
        received = json.load(response)
    from sentry_sdk.envelope import Envelope

    problems, seen = [], set()
    for n, record in enumerate(received):
        where = f"request {n} ({record.get('path')})"
        answered = record.get("answered")
        if not isinstance(answered, int) or not 200 <= answered < 300:
            problems.append(f"{where}: answered {answered!r}, error {record.get('error')!r}")
            continue
        body = base64.b64decode(record.get("body_b64") or "")
        _, items, errors = envelope_strict.check(body)
        problems.extend(f"{where}: {e}" for e in errors)
        try:
            Envelope.deserialize(body)
        except Exception as e:  # the SDK's parser is the judge
            problems.append(f"{where}: sentry_sdk could not parse it: {type(e).__name__}: {e}")
        checker = sentry_check.Checker(False)
        checker.run(body)
        problems.extend(f"{where}: {p}" for p in checker.problems)
        types = [header["type"] for header, _ in items]
        seen.update(types)
        print(f"{where}: {', '.join(types) or '(no items)'}")
    missing = sorted(wanted - seen)
    if missing:
        problems.append(f"no envelope had an item of type {', '.join(missing)}")
    if problems:
        for p in problems:
            print(f"ERROR {p}")
        return 1
    print(f"OK {len(received)} envelopes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
