#!/usr/bin/env python3
"""Strict validator for Datadog HTTP API JSON bodies, built on datadog-api-client's models.

Usage: dd_validate.py KIND FILE|- [--check-time]
KIND: v2-series        POST /api/v2/series               MetricPayload
      v1-series        POST /api/v1/series               MetricsPayload
      v1-distribution  POST /api/v1/distribution_points  DistributionPointsPayload
      v1-event         POST /api/v1/events               EventCreateRequest

The body may be plain JSON or gzip / zlib ("deflate") compressed (detected from its first bytes). It must be
UTF-8 JSON without NaN/Infinity, numbers that overflow, or duplicate keys. Then:
  1. datadog_api_client.model_utils.validate_and_convert_types(data, (Model,), ["body"], True, True,
     Configuration()) must not raise, and nothing in its result may be an UnparsedObject or carry _unparsed
     (an enum value the model does not know, or a list item that failed to parse);
  2. a walk of the JSON guided by the models' openapi_types / attribute_map / constructors (the models accept
     all of these silently): unknown fields, missing required fields, wrong JSON types (an int field must be a
     JSON integer, not 1.0 or true; a float field a number, not "1"), enum values, the models' length / item /
     range limits, at every level;
  3. rules the models do not encode: a non-empty series list; v2 points are {timestamp: int, value: number}
     with both present, v2 type 0..3, resources {name, type} both non-empty strings; v1 points are
     [timestamp, number or null] and v1 type is "", "count", "gauge" or "rate"; distribution points are
     [timestamp, [one or more numbers]] (v1 timestamps are typed float: 1700000000.0 passes, 1700000000.5 does
     not; v2 and event timestamps must be JSON integers); interval is a positive integer; metric names are
     non-empty; event title is non-empty.
  --check-time also requires point timestamps within [now - 1 h, now + 10 min] and event date_happened within
  [now - 18 h, now + 10 min] (what the API accepts).
Prints "OK <Model> (<summary>)" and exits 0, or one "ERROR <path>: <problem>" line per problem and exits 1
(exit 2 for bad usage or an unreadable file).

Importable: validate(kind, body_bytes, check_time=False) -> (model_name, summary, [errors]); inflate(bytes).
"""

import gzip
import inspect
import json
import math
import sys
import time
import zlib

from datadog_api_client import Configuration
from datadog_api_client.model_utils import (
    ModelNormal,
    ModelSimple,
    OpenApiModel,
    UnparsedObject,
    none_type,
    validate_and_convert_types,
)
from datadog_api_client.v1.model.distribution_points_payload import DistributionPointsPayload
from datadog_api_client.v1.model.event_create_request import EventCreateRequest
from datadog_api_client.v1.model.metrics_payload import MetricsPayload
from datadog_api_client.v2.model.metric_payload import MetricPayload

KINDS = {
    "v2-series": MetricPayload,
    "v1-series": MetricsPayload,
    "v1-distribution": DistributionPointsPayload,
    "v1-event": EventCreateRequest,
}
V1_TYPES = ("", "count", "gauge", "rate")
POINT_PAST, POINT_FUTURE, EVENT_PAST = 3600, 600, 18 * 3600


class BodyError(Exception):
    pass


def inflate(body):
    """Returns (bytes, encoding name) with gzip or zlib undone; raises BodyError."""
    if body[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(body), "gzip"
        except (OSError, EOFError, zlib.error) as e:
            raise BodyError(f"bad gzip body: {e}")
    if len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0:
        try:
            return zlib.decompress(body), "zlib"
        except zlib.error as e:
            raise BodyError(f"bad zlib (deflate) body: {e}")
    if body[:4] == b"\x28\xb5\x2f\xfd":
        raise BodyError("zstd body: this checker cannot inflate zstd (stdlib only)")
    if body[:1] not in (b"{", b"[", b" ", b"\n", b"\r", b"\t"):
        try:
            zlib.decompress(body, -15)
            raise BodyError("body is raw deflate without the zlib wrapper ('deflate' means zlib, RFC 1950)")
        except zlib.error:
            pass
    return body, None


def parse_json(text):
    def no_constants(name):
        raise BodyError(f"JSON contains {name} (not valid JSON)")

    def finite_float(s):
        v = float(s)
        if not math.isfinite(v):
            raise BodyError(f"JSON number {s} overflows a 64-bit float")
        return v

    def no_duplicates(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                raise BodyError(f"duplicate JSON key {k!r}")
            seen[k] = v
        return seen

    try:
        return json.loads(text, parse_constant=no_constants, parse_float=finite_float,
                          object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as e:
        raise BodyError(f"not JSON: {e}")


def short(value):
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_model(t):
    return isinstance(t, type) and issubclass(t, OpenApiModel)


def required_fields(cls):
    """JSON names of the constructor's required parameters."""
    params = inspect.signature(cls.__init__).parameters
    names = [n for n, p in params.items()
             if n not in ("self_", "self", "kwargs") and p.default is inspect.Parameter.empty
             and p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD]
    return [cls.attribute_map.get(n, n) for n in names]


def type_name(spec):
    if isinstance(spec, list):
        return "list of " + "|".join(type_name(s) for s in spec)
    if spec is none_type:
        return "null"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(spec, getattr(spec, "__name__", "?"))


class Walker:
    """Checks raw JSON against the model classes' declared types, strictly."""

    def __init__(self):
        self.errors = []

    def error(self, path, msg):
        self.errors.append(f"{path}: {msg}")

    def value(self, value, types, path):
        if value is None:
            if none_type in types or any(is_model(t) and t._nullable for t in types):
                return
            self.error(path, "null is not allowed")
            return
        specs = [t for t in types if t is not none_type]
        if len(specs) == 1:
            self.spec(value, specs[0], path)
            return
        for spec in specs:  # one of several: fine if any matches cleanly
            trial = Walker()
            trial.spec(value, spec, path)
            if not trial.errors:
                return
        self.error(path, f"{short(value)} is none of {', '.join(type_name(s) for s in specs)}")

    def spec(self, value, spec, path):
        if isinstance(spec, list):
            if not isinstance(value, list):
                self.error(path, f"expected a list, got {short(value)}")
                return
            for i, item in enumerate(value):
                self.value(item, tuple(spec), f"{path}[{i}]")
        elif spec is str:
            if not isinstance(value, str):
                self.error(path, f"expected a string, got {short(value)}")
        elif spec is int:
            if type(value) is not int:
                self.error(path, f"expected an integer, got {short(value)}")
        elif spec is float:
            if type(value) not in (int, float):
                self.error(path, f"expected a number, got {short(value)}")
        elif spec is bool:
            if type(value) is not bool:
                self.error(path, f"expected a boolean, got {short(value)}")
        elif is_model(spec) and issubclass(spec, ModelSimple):
            inner = spec.openapi_types["value"]
            before = len(self.errors)
            self.value(value, inner, path)
            if len(self.errors) == before:
                self.limits(value, spec.validations.get("value", {}), path)
                if spec.allowed_values and value not in spec.allowed_values:
                    allowed = ", ".join(sorted(repr(v) for v in spec.allowed_values))
                    self.error(path, f"bad value {short(value)} for {spec.__name__} (allowed: {allowed})")
        elif is_model(spec) and issubclass(spec, ModelNormal):
            if not isinstance(value, dict):
                self.error(path, f"expected an object ({spec.__name__}), got {short(value)}")
                return
            by_json = {j: p for p, j in spec.attribute_map.items()}
            for key in value:
                if key not in by_json:
                    self.error(f"{path}.{key}", f"unknown field for {spec.__name__} "
                                                f"(known: {', '.join(sorted(by_json))})")
            for key in required_fields(spec):
                if key not in value:
                    self.error(path, f"missing required field {key!r} of {spec.__name__}")
            for key, v in value.items():
                if key in by_json:
                    py = by_json[key]
                    before = len(self.errors)
                    self.value(v, spec.openapi_types[py], f"{path}.{key}")
                    if len(self.errors) == before and v is not None:
                        self.limits(v, spec.validations.get(py, {}), f"{path}.{key}")
        else:
            self.error(path, f"no rule for type {spec!r}")

    def limits(self, value, rules, path):
        for rule, bound in rules.items():
            if rule in ("max_length", "max_items") and len(value) > bound:
                self.error(path, f"{rule.replace('_', ' ')} is {bound}, got {len(value)}")
            elif rule in ("min_length", "min_items") and len(value) < bound:
                self.error(path, f"{rule.replace('_', ' ')} is {bound}, got {len(value)}")
            elif rule == "inclusive_maximum" and value > bound:
                self.error(path, f"must be <= {bound}, got {value}")
            elif rule == "inclusive_minimum" and value < bound:
                self.error(path, f"must be >= {bound}, got {value}")
            elif rule == "exclusive_maximum" and value >= bound:
                self.error(path, f"must be < {bound}, got {value}")
            elif rule == "exclusive_minimum" and value <= bound:
                self.error(path, f"must be > {bound}, got {value}")


def unparsed(obj, path):
    """Problems the model conversion hid in its result: UnparsedObject items and _unparsed enum values."""
    if isinstance(obj, UnparsedObject):
        yield f"{path}: the model could not parse {short(obj._data_store)}"
    elif isinstance(obj, ModelSimple):
        if obj._unparsed:
            yield f"{path}: bad value {short(obj.get('value'))} for {type(obj).__name__}"
    elif isinstance(obj, ModelNormal):
        for key, v in obj._data_store.items():
            yield from unparsed(v, f"{path}.{key}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from unparsed(v, f"{path}[{i}]")


def is_number(v):
    return type(v) in (int, float)


class Rules:
    """Kind-specific rules on top of the models; tolerant of shapes the walker already rejected."""

    def __init__(self, check_time):
        self.errors = []
        self.check_time = check_time
        self.now = time.time()
        self.points = 0

    def error(self, path, msg):
        self.errors.append(f"{path}: {msg}")

    def timestamp(self, ts, path, past=POINT_PAST, integral_float=False):
        if integral_float and type(ts) is float and ts.is_integer():
            ts = int(ts)  # v1 points are typed float: 1700000000.0 is what the official client sends
        if type(ts) is not int:
            self.error(path, f"timestamp must be an integer number of seconds, got {short(ts)}")
        elif ts <= 0:
            self.error(path, f"timestamp must be positive, got {ts}")
        elif self.check_time and not self.now - past <= ts <= self.now + POINT_FUTURE:
            self.error(path, f"timestamp {ts} is {ts - self.now:+.0f} s from now "
                             f"(allowed: -{past} s .. +{POINT_FUTURE} s)")

    def series_list(self, data, path="body"):
        series = data.get("series") if isinstance(data, dict) else None
        if not isinstance(series, list):
            return []
        if not series:
            self.error(f"{path}.series", "empty series list (nothing to send)")
        return [(f"{path}.series[{i}]", s) for i, s in enumerate(series) if isinstance(s, dict)]

    def common(self, p, s):
        if s.get("metric") == "":
            self.error(f"{p}.metric", "empty metric name")
        if "interval" in s and s["interval"] is not None and type(s["interval"]) is int and s["interval"] <= 0:
            self.error(f"{p}.interval", f"interval must be a positive number of seconds, got {s['interval']}")
        if not isinstance(s.get("points"), list):
            return []
        if not s["points"]:
            self.error(f"{p}.points", "empty points list")
        self.points += len(s["points"])
        return list(enumerate(s["points"]))

    def v2_series(self, data):
        for p, s in self.series_list(data):
            for i, pt in self.common(p, s):
                if not isinstance(pt, dict):
                    continue
                for key in ("timestamp", "value"):
                    if key not in pt:
                        self.error(f"{p}.points[{i}]", f"missing {key!r} (both timestamp and value are needed)")
                if "timestamp" in pt:
                    self.timestamp(pt["timestamp"], f"{p}.points[{i}].timestamp")
            for j, r in enumerate(s.get("resources") or []):
                if isinstance(r, dict):
                    for key in ("name", "type"):
                        if not isinstance(r.get(key), str) or not r.get(key):
                            self.error(f"{p}.resources[{j}]", f"resource needs a non-empty {key!r}")
            if "type" in s and type(s["type"]) is int and s["type"] not in (0, 1, 2, 3):
                self.error(f"{p}.type", f"v2 type must be 0..3, got {s['type']}")

    def v1_series(self, data):
        for p, s in self.series_list(data):
            if "type" in s and s["type"] not in V1_TYPES:
                self.error(f"{p}.type", f"v1 type must be one of {', '.join(repr(t) for t in V1_TYPES)}, "
                                        f"got {short(s['type'])}")
            for i, pt in self.common(p, s):
                where = f"{p}.points[{i}]"
                if not isinstance(pt, list) or len(pt) != 2:
                    self.error(where, f"a v1 point is [timestamp, value], got {short(pt)}")
                    continue
                self.timestamp(pt[0], where + "[0]", integral_float=True)
                if pt[1] is not None and not is_number(pt[1]):
                    self.error(where + "[1]", f"value must be a number or null, got {short(pt[1])}")

    def v1_distribution(self, data):
        for p, s in self.series_list(data):
            for i, pt in self.common(p, s):
                where = f"{p}.points[{i}]"
                if not isinstance(pt, list) or len(pt) != 2 or not isinstance(pt[1], list):
                    self.error(where, f"a distribution point is [timestamp, [values...]], got {short(pt)}")
                    continue
                self.timestamp(pt[0], where + "[0]", integral_float=True)
                if not pt[1]:
                    self.error(where + "[1]", "empty value list")
                for j, v in enumerate(pt[1]):
                    if not is_number(v):
                        self.error(f"{where}[1][{j}]", f"value must be a number, got {short(v)}")

    def v1_event(self, data):
        if not isinstance(data, dict):
            return
        if data.get("title") == "":
            self.error("body.title", "empty title")
        if "date_happened" in data:
            self.timestamp(data["date_happened"], "body.date_happened", EVENT_PAST)


def merge(own, model_errors):
    """One error per path: the walk's and the rules' first; the model's only where they found nothing near."""
    kept, paths = [], []
    for e in own:
        path = e.split(": ", 1)[0]
        if path not in paths:
            kept.append(e)
            paths.append(path)
    for e in model_errors:
        path = e.split(": ", 1)[0]
        near = any(p == path or p.startswith(path + ".") or p.startswith(path + "[") or path.startswith(p + ".")
                   or path.startswith(p + "[") for p in paths)
        if not near and not (path == "body" and kept):
            kept.append(e)
    return kept


def validate(kind, body, check_time=False):
    """Returns (model name, summary text, list of error strings)."""
    model = KINDS[kind]
    try:
        raw, encoding = inflate(body)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BodyError(f"body is not UTF-8 (byte {e.start})")
        data = parse_json(text)
    except BodyError as e:
        return model.__name__, "", [f"body: {e}"]

    model_errors = []
    try:
        result = validate_and_convert_types(data, (model,), ["body"], True, True, Configuration())
        model_errors.extend(unparsed(result, "body"))
    except Exception as e:  # the models raise TypeError, ValueError and Api*Error
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        model_errors.append(f"body: {model.__name__} rejected it: {type(e).__name__}: {first}")

    walker = Walker()
    walker.value(data, (model,), "body")
    rules = Rules(check_time)
    getattr(rules, kind.replace("-", "_"))(data)
    errors = merge(walker.errors + rules.errors, model_errors)

    if kind == "v1-event":
        summary = f"title {short(data.get('title'))}" if isinstance(data, dict) else ""
    else:
        n = len(data.get("series") or []) if isinstance(data, dict) and isinstance(data.get("series"), list) else 0
        summary = f"{n} series, {rules.points} points"
    if encoding:
        summary += f", {encoding}"
    return model.__name__, summary, errors


def main(argv):
    args = [a for a in argv[1:] if a != "--check-time"]
    check_time = len(args) != len(argv) - 1
    if len(args) != 2 or args[0] not in KINDS:
        sys.stderr.write(f"usage: dd_validate.py {{{'|'.join(KINDS)}}} FILE|- [--check-time]\n")
        return 2
    try:
        body = sys.stdin.buffer.read() if args[1] == "-" else open(args[1], "rb").read()
    except OSError as e:
        sys.stderr.write(f"dd_validate: {e}\n")
        return 2
    name, summary, errors = validate(args[0], body, check_time)
    if errors:
        for e in errors:
            print(f"ERROR {e}")
        return 1
    print(f"OK {name} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
