#!/usr/bin/env python3
"""Content check of a Sentry envelope with Relay's own normalizer (PyPI sentry-relay) plus protocol rules.

Usage: sentry_check.py [-v] FILE|-        (-v also prints each normalized event)

* event / transaction items: the payload bytes go through
  sentry_relay.processing.StoreNormalizer(project_id=42).normalize_event(raw_event=...). Any entry in the
  result's "errors", any path in its "_meta" (a field Relay rejected, replaced or moved, e.g. platform "rust"
  -> "other"; annotations the payload's own "_meta" already carried, without errors, excepted), and any exception (first line only; e.g. ProcessingErrorInvalidTransaction) is a problem.
  A transaction payload without "type" gets "type":"transaction" first (as Relay does from the item type).
  The event's event_id must match the envelope header's, when both are present.
Relay has no parser for the other item types in this package, so their fields go through the same
normalizer wherever Relay's event schema has a field of that kind ("Relay fields" below: a synthetic event
holding only those fields is normalized, and any error, _meta entry or exception is a problem), and through
sentry_relay.parse_release and sentry_relay.DataCategory; what is left are hand-written rules ("rules"):
* session: Relay fields: sid as event_id (a UUID), started and timestamp as timestamps, attrs.environment
  as environment, did as user.id; attrs.release through sentry_relay.parse_release. Rules: status
  (ok|exited|crashed|abnormal), required keys, types and non-negative counts, unknown keys.
* sessions: Relay fields: each aggregate's started as a timestamp, attrs.environment; attrs.release through
  parse_release. Rules: non-negative integer counts (exited, errored, abnormal, crashed, unhandled), keys.
* client_report: Relay fields: timestamp; each category through sentry_relay.DataCategory.parse. Rules:
  reason a non-empty string, quantity a non-negative integer, keys.
* trace_metric: Relay fields per item: timestamp, trace_id and span_id as contexts.trace ids, value and
  unit as a measurement (Relay's unit rules), the sentry.release / sentry.environment attributes as release /
  environment (an item without span_id gets a valid stand-in, as an event's trace context needs one). Rules: container headers (content_type, item_count), name, type (counter|gauge|distribution),
  keys, and attributes {key: {"value": v, "type": "string|integer|double|boolean"}} with v matching the type.
* statsd (legacy): one line per metric, NAME@UNIT:VALUE[:VALUE...]|TYPE|#k:v,...|T<ts>. Relay fields: the
  unit as a measurement unit, the tags (values as sent, escaped) as event tags, T as a timestamp. Rules: the line's
  shape, the name ([A-Za-z0-9_.-], 1-150), TYPE c|d|s|g with numeric values (c one, g one or five:
  last:min:max:sum:count, s integers), escapes in tag values.
Other item types are listed as "not checked". Framing is parsed with envelope_strict.parse_envelope.

Prints "ERROR <problem>" lines and exits 1, or "OK <n> items checked" (last line) and exits 0.
"""

import json
import math
import os
import re
import sys
import time
import uuid

sys.dont_write_bytecode = True  # keep tools/peers free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from envelope_strict import FramingError, is_rfc3339, parse_envelope, read_input, strict_json  # noqa: E402

from sentry_relay import DataCategory, parse_release  # noqa: E402
from sentry_relay.processing import StoreNormalizer  # noqa: E402

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
SESSION_STATUSES = {"ok", "exited", "crashed", "abnormal"}
SESSION_KEYS = {"sid", "did", "seq", "init", "timestamp", "started", "duration", "status", "errors", "attrs",
                "abnormal_mechanism"}
ATTRS_KEYS = {"release", "environment", "ip_address", "user_agent"}
AGGREGATE_COUNTS = {"exited", "errored", "abnormal", "crashed", "unhandled"}
CLIENT_REPORT_KEYS = {"timestamp", "discarded_events", "rate_limited_events", "filtered_events",
                      "filtered_sampling_events"}
METRIC_TYPES = {"counter", "gauge", "distribution"}
METRIC_KEYS = {"timestamp", "trace_id", "span_id", "name", "type", "value", "unit", "attributes"}
TRACE_METRIC_CONTENT_TYPE = "application/vnd.sentry.items.trace-metric+json"
STATSD_LINE = re.compile(r"^(?P<name>[^@:|]+)(?:@(?P<unit>[^:|]+))?(?P<values>(?::[^:|]+)+)\|(?P<type>[cdsg])"
                         r"(?:\|#(?P<tags>[^|]*))?(?:\|T(?P<ts>[0-9]+))?$")
STATSD_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,150}$")
STATSD_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}


def unescape_statsd(value):
    """Undoes Relay's statsd tag-value escapes (\\n \\r \\t \\\\ \\u{...}); ValueError on a bad one."""
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = value[i + 1:i + 2]
        if nxt in STATSD_ESCAPES:
            out.append(STATSD_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and value[i + 2:i + 3] == "{" and "}" in value[i + 3:]:
            end = value.index("}", i + 3)
            out.append(chr(int(value[i + 3:end], 16)))
            i = end + 1
        else:
            raise ValueError(f"bad escape at {i}")
    return "".join(out)


def first_line(exc):
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and not (isinstance(v, float) and not math.isfinite(v)))


def walk_meta(meta, path=""):
    """Yields (path, meta entry) for every "" entry in a Relay _meta tree."""
    if not isinstance(meta, dict):
        return
    for key, sub in meta.items():
        if key == "":
            yield (path or "<root>"), sub
        else:
            yield from walk_meta(sub, f"{path}.{key}" if path else key)


def describe_meta(entry):
    parts = []
    if not isinstance(entry, dict):
        return repr(entry)
    for err in entry.get("err") or []:
        if isinstance(err, list) and len(err) == 2:
            parts.append(f"err {err[0]} {json.dumps(err[1])}")
        else:
            parts.append(f"err {err}")
    if "val" in entry:
        parts.append(f"original value {json.dumps(entry['val'])[:200]}")
    if entry.get("rem"):
        parts.append(f"remarks {json.dumps(entry['rem'])}")
    if "len" in entry:
        parts.append(f"original length {entry['len']}")
    return "; ".join(parts) or json.dumps(entry)


def describe_error(err):
    if not isinstance(err, dict):
        return repr(err)
    rest = {k: v for k, v in err.items() if k not in ("type", "name")}
    detail = f" {json.dumps(rest)[:300]}" if rest else ""
    return f"{err.get('type')} at {err.get('name', '<event>')}{detail}"


class Checker:
    def __init__(self, verbose=False):
        self.problems = []
        self.notes = []
        self.verbose = verbose
        self._normalizer = None

    @property
    def normalizer(self):
        if self._normalizer is None:
            self._normalizer = StoreNormalizer(project_id=42)
        return self._normalizer

    def problem(self, where, msg):
        self.problems.append(f"{where}: {msg}")

    def release(self, where, attrs):
        if not isinstance(attrs, dict):
            self.problem(where, "attrs must be an object with 'release'")
            return
        rel = attrs.get("release")
        if not isinstance(rel, str) or not rel:
            self.problem(where, f"attrs.release must be a non-empty string, got {rel!r}")
        else:
            try:
                parse_release(rel)
            except Exception as e:
                self.problem(where, f"attrs.release {rel!r} rejected by Relay: {first_line(e)}")
        if "environment" in attrs and not isinstance(attrs["environment"], str):
            self.problem(where, f"attrs.environment must be a string, got {attrs['environment']!r}")
        for k in sorted(set(attrs) - ATTRS_KEYS):
            self.problem(where, f"unknown key attrs.{k}")

    # --- event / transaction --------------------------------------------------------------------
    def event(self, where, ty, payload, envelope_header):
        try:
            ev = strict_json(payload, "payload")
        except FramingError as e:
            self.problem(where, str(e))
            return
        if not isinstance(ev, dict):
            self.problem(where, "payload is not a JSON object")
            return
        raw = payload
        ptype = ev.get("type")
        if ty == "transaction":
            if ptype is None:
                self.notes.append(f"{where}: payload has no \"type\"; normalized as type transaction")
                ev["type"] = "transaction"
                raw = json.dumps(ev, ensure_ascii=False).encode("utf-8")
            elif ptype != "transaction":
                self.problem(where, f"transaction item whose payload has type {ptype!r}")
        elif ptype == "transaction":
            self.problem(where, "event item whose payload has type 'transaction' (use a transaction item)")
        hid = envelope_header.get("event_id")
        pid = ev.get("event_id")
        if isinstance(hid, str) and isinstance(pid, str) and hid.replace("-", "").lower() != pid.replace("-", "").lower():
            self.problem(where, f"event_id {pid!r} differs from the envelope header's {hid!r}")
        try:
            out = self.normalizer.normalize_event(raw_event=raw)
        except Exception as e:
            self.problem(where, f"Relay rejected it: {first_line(e)}")
            return
        if self.verbose:
            print(f"{where}: normalized: {json.dumps(out, sort_keys=True)}")
        for err in out.get("errors") or []:
            self.problem(where, f"Relay error: {describe_error(err)}")
        # Annotations the SDK sent itself (e.g. a "len" of spans it dropped) are not Relay's doing.
        sent = dict(walk_meta(ev.get("_meta")))
        for path, entry in walk_meta(out.get("_meta")):
            if isinstance(entry, dict) and not entry.get("err") and sent.get(path) == entry:
                continue
            self.problem(where, f"Relay _meta at {path}: {describe_meta(entry)}")

    # --- fields of other items, through the same normalizer -------------------------------------
    def relay_fields(self, where, fields):
        """Normalizes a synthetic event made of `fields` (Relay's event schema: timestamp, event_id,
        environment, release, user, tags, contexts, measurements); each error, _meta entry or exception
        is a problem of `where`."""
        event = {"timestamp": fields.pop("timestamp", None)}
        if event["timestamp"] is None:
            del event["timestamp"]
        event.update(fields)
        if "measurements" in event:
            # Relay reads measurements (and checks their units) on transactions only.
            event["type"] = "transaction"
            event["transaction"] = "check"
            event.setdefault("timestamp", time.time())
            event["start_timestamp"] = event["timestamp"]
            trace = event.setdefault("contexts", {}).setdefault("trace", {})
            trace.setdefault("trace_id", "0123456789abcdef0123456789abcdef")
            trace.setdefault("span_id", "0000000000000001")
        try:
            out = self.normalizer.normalize_event(event)
        except Exception as e:
            self.problem(where, f"Relay rejected {sorted(event)}: {first_line(e)}")
            return
        for err in out.get("errors") or []:
            self.problem(where, f"Relay error: {describe_error(err)}")
        for path, entry in walk_meta(out.get("_meta")):
            self.problem(where, f"Relay _meta at {path}: {describe_meta(entry)}")

    def attrs_fields(self, attrs):
        fields = {}
        if isinstance(attrs, dict) and isinstance(attrs.get("environment"), str):
            fields["environment"] = attrs["environment"]
        return fields

    # --- session / sessions -----------------------------------------------------------------------
    def session(self, where, s):
        for key in ("sid", "started", "status", "attrs"):
            if key not in s:
                self.problem(where, f"missing required key {key!r}")
        if "sid" in s:
            sid = s["sid"]
            try:
                if not isinstance(sid, str):
                    raise ValueError
                uuid.UUID(sid)
            except ValueError:
                self.problem(where, f"sid must be a UUID string, got {sid!r}")
        if "started" in s and not is_rfc3339(s["started"]):
            self.problem(where, f"started is not RFC 3339: {s['started']!r}")
        if "timestamp" in s and not is_rfc3339(s["timestamp"]):
            self.problem(where, f"timestamp is not RFC 3339: {s['timestamp']!r}")
        if "status" in s and s["status"] not in SESSION_STATUSES:
            self.problem(where, f"status {s['status']!r} not one of {sorted(SESSION_STATUSES)}")
        if "attrs" in s:
            self.release(where, s["attrs"])
        for key in ("errors", "seq"):
            if key in s and not (is_int(s[key]) and s[key] >= 0):
                self.problem(where, f"{key} must be a non-negative integer, got {s[key]!r}")
        if "init" in s and not isinstance(s["init"], bool):
            self.problem(where, f"init must be a boolean, got {s['init']!r}")
        if "duration" in s and not (is_num(s["duration"]) and s["duration"] >= 0):
            self.problem(where, f"duration must be a non-negative number, got {s['duration']!r}")
        if "did" in s and not isinstance(s["did"], str):
            self.problem(where, f"did must be a string, got {s['did']!r}")
        for k in sorted(set(s) - SESSION_KEYS):
            self.problem(where, f"unknown key {k!r}")
        fields = self.attrs_fields(s.get("attrs"))
        if isinstance(s.get("sid"), str):
            fields["event_id"] = s["sid"]
        if isinstance(s.get("did"), str):
            fields["user"] = {"id": s["did"]}
        self.relay_fields(f"{where} (sid, started, attrs)", dict(fields, timestamp=s.get("started")))
        if "timestamp" in s:
            self.relay_fields(f"{where} (timestamp)", {"timestamp": s["timestamp"]})

    def sessions(self, where, s):
        if "attrs" not in s:
            self.problem(where, "missing required key 'attrs'")
        else:
            self.release(where, s["attrs"])
        aggs = s.get("aggregates")
        if not isinstance(aggs, list) or not aggs:
            self.problem(where, f"aggregates must be a non-empty array, got {aggs!r}"[:300])
            aggs = []
        for i, a in enumerate(aggs):
            w = f"{where} aggregates[{i}]"
            if not isinstance(a, dict):
                self.problem(w, "not an object")
                continue
            if not is_rfc3339(a.get("started")):
                self.problem(w, f"started missing or not RFC 3339: {a.get('started')!r}")
            for k, v in a.items():
                if k in AGGREGATE_COUNTS:
                    if not (is_int(v) and v >= 0):
                        self.problem(w, f"{k} must be a non-negative integer, got {v!r}")
                elif k == "did":
                    if not isinstance(v, str):
                        self.problem(w, f"did must be a string, got {v!r}")
                elif k != "started":
                    self.problem(w, f"unknown key {k!r}")
        for k in sorted(set(s) - {"attrs", "aggregates"}):
            self.problem(where, f"unknown key {k!r}")
        self.relay_fields(f"{where} (attrs)", self.attrs_fields(s.get("attrs")))
        for i, a in enumerate(aggs):
            if isinstance(a, dict) and "started" in a:
                fields = {"timestamp": a["started"]}
                if isinstance(a.get("did"), str):
                    fields["user"] = {"id": a["did"]}
                self.relay_fields(f"{where} aggregates[{i}]", fields)

    # --- client_report ----------------------------------------------------------------------------
    def client_report(self, where, r):
        ts = r.get("timestamp")
        if "timestamp" not in r:
            self.problem(where, "missing required key 'timestamp'")
        elif not (is_num(ts) and ts >= 0) and not is_rfc3339(ts):
            self.problem(where, f"timestamp must be a unix timestamp or RFC 3339, got {ts!r}")
        if "discarded_events" not in r:
            self.problem(where, "missing key 'discarded_events'")
        for key in ("discarded_events", "rate_limited_events", "filtered_events", "filtered_sampling_events"):
            if key not in r:
                continue
            entries = r[key]
            if not isinstance(entries, list):
                self.problem(where, f"{key} must be an array")
                continue
            for i, e in enumerate(entries):
                w = f"{where} {key}[{i}]"
                if not isinstance(e, dict):
                    self.problem(w, "not an object")
                    continue
                if not isinstance(e.get("reason"), str) or not e.get("reason"):
                    self.problem(w, f"reason must be a non-empty string, got {e.get('reason')!r}")
                cat = e.get("category")
                if not isinstance(cat, str) or not cat:
                    self.problem(w, f"category must be a non-empty string, got {cat!r}")
                elif DataCategory.parse(cat) is None:
                    self.problem(w, f"category {cat!r} is unknown to Relay (sentry_relay.DataCategory)")
                q = e.get("quantity")
                if not (is_int(q) and q >= 0):
                    self.problem(w, f"quantity must be a non-negative integer, got {q!r}")
                for k in sorted(set(e) - {"reason", "category", "quantity"}):
                    self.problem(w, f"unknown key {k!r}")
        for k in sorted(set(r) - CLIENT_REPORT_KEYS):
            self.problem(where, f"unknown key {k!r}")
        if "timestamp" in r:
            self.relay_fields(f"{where} (timestamp)", {"timestamp": r["timestamp"]})

    # --- trace_metric -----------------------------------------------------------------------------
    def trace_metric(self, where, item_header, body):
        ct = item_header.get("content_type")
        if ct != TRACE_METRIC_CONTENT_TYPE:
            self.problem(where, f"content_type should be {TRACE_METRIC_CONTENT_TYPE!r}, got {ct!r}")
        items = body.get("items")
        if not isinstance(items, list):
            self.problem(where, "payload needs an 'items' array")
            return
        count = item_header.get("item_count")
        if count != len(items):
            self.problem(where, f"item_count {count!r} but {len(items)} items")
        for i, m in enumerate(items):
            w = f"{where} items[{i}]"
            if not isinstance(m, dict):
                self.problem(w, "not an object")
                continue
            name = m.get("name")
            if name is not None:
                w = f"{w} ({name})"
            if not (is_num(m.get("timestamp")) and m.get("timestamp") >= 0):
                self.problem(w, f"timestamp must be a non-negative unix timestamp number, got {m.get('timestamp')!r}")
            tid = m.get("trace_id")
            if not isinstance(tid, str) or not HEX32.match(tid):
                self.problem(w, f"trace_id must be 32 lowercase hex characters, got {tid!r}")
            if "span_id" in m and (not isinstance(m["span_id"], str) or not HEX16.match(m["span_id"])):
                self.problem(w, f"span_id must be 16 lowercase hex characters, got {m['span_id']!r}")
            if not isinstance(name, str) or not name:
                self.problem(w, f"name must be a non-empty string, got {name!r}")
            if m.get("type") not in METRIC_TYPES:
                self.problem(w, f"type must be one of {sorted(METRIC_TYPES)}, got {m.get('type')!r}")
            if not is_num(m.get("value")):
                self.problem(w, f"value must be a finite number, got {m.get('value')!r}")
            if "unit" in m and not isinstance(m["unit"], str):
                self.problem(w, f"unit must be a string, got {m['unit']!r}")
            attrs = m.get("attributes", {})
            if not isinstance(attrs, dict):
                self.problem(w, f"attributes must be an object, got {attrs!r}")
                attrs = {}
            for k, a in attrs.items():
                self.attribute(f"{w} attributes[{k!r}]", a)
            for k in sorted(set(m) - METRIC_KEYS):
                self.problem(w, f"unknown key {k!r}")
            # An event's trace context needs a span id; a metric may have none (then a valid stand-in).
            span_id = m.get("span_id", "0000000000000001")
            fields = {"timestamp": m.get("timestamp"), "contexts": {"trace": {"trace_id": tid, "span_id": span_id}}}
            if is_num(m.get("value")):
                measurement = {"value": m["value"]}
                if "unit" in m:
                    measurement["unit"] = m["unit"]
                fields["measurements"] = {"value": measurement}
            for attribute, field in (("sentry.release", "release"), ("sentry.environment", "environment")):
                value = attrs.get(attribute)
                if isinstance(value, dict) and isinstance(value.get("value"), str):
                    fields[field] = value["value"]
            if isinstance(fields.get("release"), str):
                try:
                    parse_release(fields["release"])
                except Exception as e:
                    self.problem(w, f"release {fields['release']!r} rejected by Relay: {first_line(e)}")
            self.relay_fields(w, fields)

    # --- statsd (legacy) --------------------------------------------------------------------------
    def statsd(self, where, payload):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(where, "payload is not UTF-8")
            return
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if not lines:
            self.problem(where, "no metric lines")
        for i, line in enumerate(lines):
            w = f"{where} line {i} {line[:80]!r}"
            m = STATSD_LINE.match(line)
            if not m:
                self.problem(w, "not NAME@UNIT:VALUE...|TYPE[|#TAGS][|T<ts>]")
                continue
            name, unit, kind = m["name"], m["unit"], m["type"]
            if not STATSD_NAME.match(name):
                self.problem(w, f"bad metric name {name!r}")
            values = m["values"].split(":")[1:]
            try:
                numbers = [float(v) for v in values]
            except ValueError:
                self.problem(w, f"values must be numbers, got {values!r}")
                numbers = []
            if any(not math.isfinite(v) for v in numbers):
                self.problem(w, f"values must be finite, got {values!r}")
            if kind == "c" and len(values) != 1:
                self.problem(w, f"a counter takes one value, got {len(values)}")
            if kind == "g" and len(values) not in (1, 5):
                self.problem(w, f"a gauge takes 1 or 5 values (last:min:max:sum:count), got {len(values)}")
            if kind == "s" and any(not v.lstrip("-").isdigit() for v in values):
                self.problem(w, f"set members must be integers, got {values!r}")
            fields = {}
            if unit is not None and numbers:
                fields["measurements"] = {"value": {"value": numbers[0], "unit": unit}}
            if m["ts"] is not None:
                fields["timestamp"] = int(m["ts"])
            if m["tags"] is not None:
                tags = []
                for tag in m["tags"].split(","):
                    key, sep, value = tag.partition(":")
                    if not sep or not key:
                        self.problem(w, f"tag {tag!r} is not key:value")
                        continue
                    try:
                        unescape_statsd(value)
                    except ValueError as e:
                        self.problem(w, f"tag {tag!r}: {e}")
                    # As on the wire (escaped): event tags, unlike metric tags, refuse control characters.
                    tags.append([key, value])
                fields["tags"] = tags
            self.relay_fields(w, fields)

    def attribute(self, where, a):
        if not isinstance(a, dict) or set(a) != {"value", "type"}:
            self.problem(where, f'must be {{"value": ..., "type": ...}}, got {json.dumps(a)[:200]}')
            return
        t, v = a["type"], a["value"]
        ok = {
            "string": lambda: isinstance(v, str),
            "integer": lambda: is_int(v),
            "double": lambda: is_num(v),
            "boolean": lambda: isinstance(v, bool),
        }.get(t)
        if ok is None:
            self.problem(where, f"type must be string|integer|double|boolean, got {t!r}")
        elif not ok():
            self.problem(where, f"value {json.dumps(v)[:100]} does not match type {t!r}")

    # --- driver -----------------------------------------------------------------------------------
    def run(self, data):
        try:
            header, items = parse_envelope(data)
        except FramingError as e:
            self.problems.append(f"framing: {e}")
            return 0
        checked = 0
        for n, (ih, payload) in enumerate(items):
            ty = ih["type"]
            where = f"item {n} ({ty})"
            if ty in ("event", "transaction"):
                self.event(where, ty, payload, header)
                checked += 1
                continue
            if ty == "statsd":
                self.statsd(where, payload)
                checked += 1
                continue
            if ty not in ("session", "sessions", "client_report", "trace_metric"):
                self.notes.append(f"{where}: not checked")
                continue
            checked += 1
            try:
                body = strict_json(payload, "payload")
            except FramingError as e:
                self.problem(where, str(e))
                continue
            if not isinstance(body, dict):
                self.problem(where, "payload is not a JSON object")
                continue
            if ty == "session":
                self.session(where, body)
            elif ty == "sessions":
                self.sessions(where, body)
            elif ty == "client_report":
                self.client_report(where, body)
            else:
                self.trace_metric(where, ih, body)
        return checked


def main(argv):
    args = argv[1:]
    verbose = "-v" in args
    args = [a for a in args if a != "-v"]
    if len(args) != 1:
        sys.stderr.write("usage: sentry_check.py [-v] FILE|-\n")
        return 2
    try:
        data = read_input(args[0])
    except OSError as e:
        print(f"ERROR cannot read {args[0]}: {e}")
        return 1
    c = Checker(verbose)
    checked = c.run(data)
    for note in c.notes:
        print(f"note: {note}")
    if c.problems:
        for p in c.problems:
            print(f"ERROR {p}")
        return 1
    print(f"OK {checked} items checked")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
