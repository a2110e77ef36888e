#!/usr/bin/env python3
"""Strict Sentry envelope framing check (stdlib only).

Usage: envelope_strict.py FILE|-

Rules (https://develop.sentry.dev/sdk/data-model/envelopes/):
  * line 1 is the envelope header, a JSON object, ended by "\\n" (or EOF when there are no items);
  * then items: an item header line (JSON object with a string "type"); if it has "length" (a non-negative
    integer), exactly that many payload bytes follow, then "\\n" or EOF; without "length" the payload runs to
    the next "\\n" (or EOF);
  * JSON item types (event, transaction, session, sessions, client_report, trace_metric, span, log, check_in)
    must be JSON objects;
  * envelope header "event_id", when present, is 32 lowercase hex; "sent_at", when present, is RFC 3339;
  * container items (trace_metric, span, log) need "content_type" and "item_count" == len(payload["items"]);
  * at most one event/transaction item per envelope;
  * JSON must be UTF-8, without NaN/Infinity or duplicate keys; no CR before a line's "\\n".

Prints "OK <header json> [(type, length), ...]" and exits 0, or "ERROR <reason>" lines and exits 1.
Importable: parse_envelope(data) -> (header, [(item_header, payload_bytes)]) raises FramingError;
check(data) -> (header, items, errors).
"""

import json
import re
import sys
from datetime import datetime

JSON_TYPES = {"event", "transaction", "session", "sessions", "client_report", "trace_metric", "span", "log",
              "check_in"}
CONTAINER_TYPES = {"trace_metric", "span", "log"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")
RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class FramingError(Exception):
    pass


def is_rfc3339(value):
    """True if value is an RFC 3339 date-time string (T separator, explicit offset or Z)."""
    if not isinstance(value, str):
        return False
    m = RFC3339.match(value)
    if not m:
        return False
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        datetime(y, mo, d, h, mi, min(s, 59))  # allow a leap second (60)
    except ValueError:
        return False
    if s > 60:
        return False
    off = m.group(8)
    if off not in ("Z", "z") and (int(off[1:3]) > 23 or int(off[4:6]) > 59):
        return False
    return True


def _no_dup_pairs(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def _bad_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def strict_json(data, what):
    """Parses bytes as strict JSON (UTF-8, no NaN/Infinity, no duplicate keys)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FramingError(f"{what}: not UTF-8 ({e})")
    try:
        return json.loads(text, object_pairs_hook=_no_dup_pairs, parse_constant=_bad_constant)
    except ValueError as e:
        snippet = text[:120] + ("..." if len(text) > 120 else "")
        raise FramingError(f"{what}: invalid JSON ({e}): {snippet!r}")


def _read_line(data, pos, what):
    """Returns (line without '\\n', next pos). The line may end at EOF."""
    nl = data.find(b"\n", pos)
    end = len(data) if nl < 0 else nl
    line = data[pos:end]
    if line.endswith(b"\r"):
        raise FramingError(f"{what} at byte {pos}: line ends with CR LF (envelopes use bare \\n)")
    return line, (len(data) if nl < 0 else nl + 1)


def parse_envelope(data):
    """Splits an envelope into (header dict, [(item header dict, payload bytes), ...])."""
    if not data:
        raise FramingError("empty input")
    line, pos = _read_line(data, 0, "envelope header")
    header = strict_json(line, "envelope header")
    if not isinstance(header, dict):
        raise FramingError(f"envelope header is not a JSON object: {line[:120]!r}")
    items = []
    while pos < len(data):
        n = len(items)
        start = pos
        line, pos = _read_line(data, pos, f"item {n} header")
        if not line.strip():
            raise FramingError(f"item {n} header at byte {start}: empty line where an item header was expected")
        ih = strict_json(line, f"item {n} header")
        if not isinstance(ih, dict):
            raise FramingError(f"item {n} header is not a JSON object: {line[:120]!r}")
        ty = ih.get("type")
        if not isinstance(ty, str) or not ty:
            raise FramingError(f"item {n} header has no string 'type': {line[:120]!r}")
        if "length" in ih:
            length = ih["length"]
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise FramingError(f"item {n} ({ty}): 'length' must be a non-negative integer, got {length!r}")
            payload = data[pos:pos + length]
            if len(payload) < length:
                raise FramingError(
                    f"item {n} ({ty}): length {length} but only {len(payload)} bytes remain (payload truncated or "
                    f"length too large)")
            pos += length
            if pos < len(data):
                if data[pos:pos + 1] != b"\n":
                    nl = data.find(b"\n", pos)
                    extra = (len(data) if nl < 0 else nl) - pos
                    raise FramingError(
                        f"item {n} ({ty}): length {length} is wrong: after {length} payload bytes comes "
                        f"{data[pos:pos + 20]!r} instead of a newline ({extra} more bytes up to the next newline; "
                        f"length should probably be {length + extra})")
                pos += 1
        else:
            payload, pos = _read_line(data, pos, f"item {n} ({ty}) payload")
        items.append((ih, payload))
    return header, items


def check(data):
    """Returns (header, items, errors): framing errors stop parsing, semantic ones are collected."""
    try:
        header, items = parse_envelope(data)
    except FramingError as e:
        return None, [], [str(e)]
    errors = []
    if "event_id" in header:
        eid = header["event_id"]
        if not isinstance(eid, str) or not HEX32.match(eid):
            errors.append(f"envelope header: event_id must be 32 lowercase hex characters, got {eid!r}")
    if "sent_at" in header and not is_rfc3339(header["sent_at"]):
        errors.append(f"envelope header: sent_at is not RFC 3339: {header['sent_at']!r}")
    if "dsn" in header and not isinstance(header["dsn"], str):
        errors.append(f"envelope header: dsn must be a string, got {header['dsn']!r}")
    primary = [ih["type"] for ih, _ in items if ih["type"] in ("event", "transaction")]
    if len(primary) > 1:
        errors.append(f"more than one event/transaction item: {primary}")
    for n, (ih, payload) in enumerate(items):
        ty = ih["type"]
        if ty in JSON_TYPES:
            try:
                body = strict_json(payload, f"item {n} ({ty}) payload")
            except FramingError as e:
                errors.append(str(e))
                continue
            if not isinstance(body, dict):
                errors.append(f"item {n} ({ty}) payload is not a JSON object")
                continue
            if ty in CONTAINER_TYPES:
                if not isinstance(ih.get("content_type"), str) or not ih.get("content_type"):
                    errors.append(f"item {n} ({ty}): container item header needs a 'content_type'")
                sub = body.get("items")
                if not isinstance(sub, list):
                    errors.append(f"item {n} ({ty}): container payload needs an 'items' array")
                    continue
                count = ih.get("item_count")
                if not isinstance(count, int) or isinstance(count, bool):
                    errors.append(f"item {n} ({ty}): container item header needs an integer 'item_count', "
                                  f"got {count!r}")
                elif count != len(sub):
                    errors.append(f"item {n} ({ty}): item_count is {count} but the payload has {len(sub)} items")
    return header, items, errors


def read_input(arg):
    if arg == "-":
        return sys.stdin.buffer.read()
    with open(arg, "rb") as f:
        return f.read()


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: envelope_strict.py FILE|-\n")
        return 2
    try:
        data = read_input(argv[1])
    except OSError as e:
        print(f"ERROR cannot read {argv[1]}: {e}")
        return 1
    header, items, errors = check(data)
    if errors:
        for e in errors:
            print(f"ERROR {e}")
        return 1
    print("OK", json.dumps(header), [(ih["type"], len(p)) for ih, p in items])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
