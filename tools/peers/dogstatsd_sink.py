#!/usr/bin/env python3
"""Strict DogStatsD receiver for integration tests: records every datagram and checks its grammar.

Usage: dogstatsd_sink.py OUT [--udp PORT] [--uds PATH] [--uds-stream PATH] [--max-datagram N]
       (at least one transport; --udp 0 picks a free port; stdlib only)

Binds UDP on 127.0.0.1, a Unix datagram socket and/or a Unix stream socket (each message batch framed by a
4-byte little-endian length, as DogStatsD's unixstream transport does), then prints, flushed, one line per
transport: "LISTENING udp <port>", "LISTENING uds <path>", "LISTENING uds-stream <path>". Stale socket files at
the paths are replaced; they are removed on exit. SIGTERM/SIGINT exit 0 at once.

OUT (truncated at start) gets one JSON object per datagram (per frame on uds-stream):
  {"seq": n, "transport": "udp|uds|uds-stream", "size": bytes, "datagram": "<text>", "ok": bool,
   "error": null | "<datagram-level problem>", "lines": [...]}     (+ "kernel_drops" on udp, "conn" on uds-stream)
Each line (split on "\\n"; one trailing "\\n" is allowed) is an object with "line", "kind" and "error" (null or the
first grammar error), plus:
  metric:        name, values (strings, as sent), type, sample_rate, tags, timestamp, container, external,
                 cardinality
  event:         title, text (with "\\n" unescaped), timestamp (d:), hostname (h:), aggregation_key (k:),
                 priority (p:), source_type_name (s:), alert_type (t:), tags, container, external, cardinality
  service_check: name, status, timestamp (d:), hostname (h:), tags, message (m:, unescaped), container,
                 external, cardinality

Grammar checked (DogStatsD v1.6; the Agent itself is more lenient, this is what a careful client sends):
  metric   <name>:<v>[:<v>...]|<c|g|ms|h|s|d>[|@<rate>][|#<tag>,...][|T<unix s>][|c:<id>][|e:<data>][|card:<c>]
           name [A-Za-z][A-Za-z0-9_.]{0,199}; each value a finite decimal number (no leading '+', which plain
           StatsD reads as a gauge delta); a set takes exactly one non-empty member; rate 0 < r <= 1; tags
           non-empty; T (counts and gauges only) a positive integer; fields in any order.
  event    _e{<title bytes>,<text bytes>}:<title>|<text>[|d:<ts>][|h:..][|k:..][|p:normal|low][|s:..]
           [|t:error|warning|info|success][|#tags][|c:..][|e:..][|card:..]; lengths are UTF-8 byte counts of the
           escaped text as sent (a newline travels as the two characters backslash-n); non-empty title; the
           title must be followed by '|' and the text by '|' or the end of the line; at most 8192 bytes.
  service  _sc|<name>|<0|1|2|3>[|d:<ts>][|h:..][|#tags][|m:<message>][|c:..][|e:..][|card:..]; only c:, e:,
  check    card: may follow m: (datadog-go and datadogpy put them there). As in the Agent, m: ends at the next
           '|', so a '|' inside the message is an error (the Agent would cut the message there).
  all      c: is <id>, ci-<id>, cid-<id>, in-<inode> or "ci-<id>,in-<inode>"; e: printable; card: one of
           none|low|orchestrator|high; no empty fields, no unknown fields, each field at most once.
Datagram-level errors: empty datagram, not UTF-8, over --max-datagram N bytes, empty line inside, and a last
line without "\\n" that fails the grammar ("ends with a partial line", e.g. a line cut in two by packing).
Datagrams are read whole (256 KiB buffer; a longer one is flagged as truncated). "kernel_drops" is the UDP
socket's cumulative drop counter (SO_MEMINFO) when the datagram was read: 0 unless the kernel discarded datagrams
because the sink's receive buffer (8 MiB when root can force it) was full. OUT is flushed whenever the sockets
have nothing more to read, so it is complete as soon as the sink is idle.

Importable: parse_line(raw_bytes) -> dict, check_datagram(raw_bytes, max_datagram=None) -> (error, lines).
"""

import argparse
import json
import math
import os
import re
import selectors
import signal
import socket
import stat
import struct
import sys

METRIC_TYPES = ("c", "g", "ms", "h", "s", "d")
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,199}")
NUMBER_RE = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
CARDINALITIES = ("none", "low", "orchestrator", "high")
PRIORITIES = ("normal", "low")
ALERT_TYPES = ("error", "warning", "info", "success")
EVENT_HEADER = re.compile(rb"_e\{(\d+),(\d+)\}:")
MAX_EVENT_BYTES = 8192
MAX_FRAME = 64 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux: u32[9], index 8 = SK_MEMINFO_DROPS
AFTER_MESSAGE = ("|c:", "|e:", "|card:", "|#", "|d:", "|h:")


class LineError(Exception):
    pass


def _tags(field):
    """The tags of a '#...' field (without the '#')."""
    if field == "":
        raise LineError("empty tag list '|#'")
    tags = field.split(",")
    for tag in tags:
        if tag == "":
            raise LineError(f"empty tag in '|#{field}'")
    return tags


def _timestamp(text, what):
    if not text.isdigit() or not text.isascii() or int(text) <= 0:
        raise LineError(f"bad {what} {text!r} (want a positive integer of unix seconds)")
    return int(text)


def _common_field(rec, field, seen):
    """Handles the fields shared by all kinds (#, c:, e:, card:). Returns False if field is not one of them."""
    for prefix in ("#", "card:", "c:", "e:"):
        if field.startswith(prefix):
            break
    else:
        return False
    if prefix in seen:
        raise LineError(f"duplicate field '|{prefix}'")
    seen.add(prefix)
    value = field[len(prefix):]
    if prefix == "#":
        rec["tags"] = _tags(value)
    elif prefix == "c:":
        items = value.split(",")
        if value == "" or len(items) > 2 or not value.isprintable() or " " in value:
            raise LineError(f"bad container field {field!r} (want <id>, ci-<id>, in-<inode> or ci-<id>,in-<inode>)")
        for item in items:
            if item.startswith("in-"):
                if not (item[3:].isdigit() and item[3:].isascii()):
                    raise LineError(f"bad container inode {item!r} in {field!r} (in- takes a number)")
            elif item in ("", "ci-", "cid-"):
                raise LineError(f"empty container id in {field!r}")
            elif len(items) > 1 and not item.startswith(("ci-", "cid-")):
                raise LineError(f"bad container field {field!r} (a list takes ci-<id> and in-<inode>)")
        rec["container"] = value
    elif prefix == "e:":
        if value == "" or not value.isprintable():
            raise LineError(f"bad external data {field!r}")
        rec["external"] = value
    else:
        if value not in CARDINALITIES:
            raise LineError(f"bad cardinality {field!r} (want one of {', '.join(CARDINALITIES)})")
        rec["cardinality"] = value
    return True


def _metric(text, rec):
    rec.update(name=None, values=[], type=None, sample_rate=None, tags=[], timestamp=None, container=None,
               external=None, cardinality=None)
    parts = text.split("|")
    head = parts[0]
    if ":" not in head:
        raise LineError(f"missing ':' between metric name and value in {head!r}")
    name, _, raw_values = head.partition(":")
    rec["name"] = name
    if len(name) > 200 and NAME_RE.fullmatch(name[:200]):
        raise LineError(f"metric name is {len(name)} characters (max 200)")
    if not NAME_RE.fullmatch(name):
        raise LineError(f"bad metric name {name!r}")
    if len(parts) < 2:
        raise LineError("missing metric type")
    mtype = parts[1]
    if mtype not in METRIC_TYPES:
        raise LineError(f"bad metric type {mtype!r}" if mtype else "empty metric type")
    rec["type"] = mtype
    values = raw_values.split(":")
    rec["values"] = values
    if mtype == "s":
        if len(values) != 1:
            raise LineError(f"a set takes one member, got {len(values)} packed values")
        if values[0] == "":
            raise LineError("empty set member")
    else:
        for v in values:
            if v == "":
                raise LineError("empty value")
            if v.startswith("+"):
                raise LineError(f"value {v!r} has a leading '+' (a gauge delta in plain StatsD)")
            if not NUMBER_RE.fullmatch(v):
                raise LineError(f"bad value {v!r}")
            if not math.isfinite(float(v)):
                raise LineError(f"value {v!r} is not finite")
    seen = set()
    for field in parts[2:]:
        if field == "":
            raise LineError("empty field '||' or trailing '|'")
        if _common_field(rec, field, seen):
            continue
        if field.startswith("@"):
            if "@" in seen:
                raise LineError("duplicate field '|@'")
            seen.add("@")
            r = field[1:]
            if not NUMBER_RE.fullmatch(r):
                raise LineError(f"bad sample rate {field!r}")
            rate = float(r)
            if not 0 < rate <= 1:
                raise LineError(f"sample rate {r} outside (0, 1]")
            rec["sample_rate"] = rate
        elif field.startswith("T"):
            if "T" in seen:
                raise LineError("duplicate field '|T'")
            seen.add("T")
            rec["timestamp"] = _timestamp(field[1:], "timestamp")
            if mtype not in ("c", "g"):
                raise LineError(f"timestamp '|T' on type {mtype!r} (only c and g may carry one)")
        else:
            raise LineError(f"unknown field {'|' + field!r}")


def _event(raw, rec):
    rec.update(title=None, text=None, timestamp=None, hostname=None, aggregation_key=None, priority=None,
               source_type_name=None, alert_type=None, tags=[], container=None, external=None, cardinality=None)
    m = EVENT_HEADER.match(raw)
    if not m:
        raise LineError("bad event header (want _e{<title bytes>,<text bytes>}:)")
    tlen, xlen = int(m.group(1)), int(m.group(2))
    body = raw[m.end():]
    if tlen == 0:
        raise LineError("empty event title (_e{0,...})")
    if len(body) < tlen + 1 + xlen:
        raise LineError(f"event shorter than its header: title+'|'+text need {tlen + 1 + xlen} bytes, "
                        f"got {len(body)}")
    if body[tlen:tlen + 1] != b"|":
        raise LineError(f"no '|' after the title's {tlen} bytes (wrong title length?)")
    rest = body[tlen + 1 + xlen:]
    if rest and not rest.startswith(b"|"):
        raise LineError(f"text of {xlen} bytes is followed by {rest[:20].decode('utf-8', 'replace')!r}, "
                        "not '|' or the end of the line (wrong text length?)")
    try:
        title = body[:tlen].decode("utf-8")
        text = body[tlen + 1:tlen + 1 + xlen].decode("utf-8")
    except UnicodeDecodeError:
        raise LineError("title or text length cuts a UTF-8 character (lengths must be in bytes)")
    rec["title"] = title.replace("\\n", "\n")
    rec["text"] = text.replace("\\n", "\n")
    if len(raw) > MAX_EVENT_BYTES:
        raise LineError(f"event is {len(raw)} bytes (max {MAX_EVENT_BYTES})")
    if not rest:
        return
    seen = set()
    for field in rest[1:].decode("utf-8").split("|"):
        if field == "":
            raise LineError("empty field '||' or trailing '|'")
        if _common_field(rec, field, seen):
            continue
        prefix = field[:2]
        if prefix not in ("d:", "h:", "k:", "p:", "s:", "t:"):
            raise LineError(f"unknown event field {'|' + field!r}")
        if prefix in seen:
            raise LineError(f"duplicate field '|{prefix}'")
        seen.add(prefix)
        value = field[2:]
        if prefix == "d:":
            rec["timestamp"] = _timestamp(value, "event date")
        elif prefix == "p:":
            if value not in PRIORITIES:
                raise LineError(f"bad priority {field!r} (want normal or low)")
            rec["priority"] = value
        elif prefix == "t:":
            if value not in ALERT_TYPES:
                raise LineError(f"bad alert type {field!r} (want {', '.join(ALERT_TYPES)})")
            rec["alert_type"] = value
        else:
            if value == "":
                raise LineError(f"empty field '|{prefix}'")
            key = {"h:": "hostname", "k:": "aggregation_key", "s:": "source_type_name"}[prefix]
            rec[key] = value


def _service_check(text, rec):
    rec.update(name=None, status=None, timestamp=None, hostname=None, tags=[], message=None, container=None,
               external=None, cardinality=None)
    parts = text[len("_sc|"):].split("|", 2)
    if not text.startswith("_sc|") or len(parts) < 2:
        raise LineError("service check needs _sc|<name>|<status>")
    name, status = parts[0], parts[1]
    if name == "":
        raise LineError("empty service check name")
    rec["name"] = name
    if status not in ("0", "1", "2", "3"):
        raise LineError(f"bad status {status!r}")
    rec["status"] = int(status)
    if len(parts) < 3:
        return
    seen = set()
    message_seen = False
    for field in parts[2].split("|"):  # like the Agent: every field ends at the next '|', m: included
        if field == "":
            raise LineError("empty field '||' or trailing '|'")
        if message_seen and not field.startswith(("c:", "e:", "card:")):
            if field.startswith(("d:", "h:", "#", "m:")):
                raise LineError(f"field {'|' + field[:2]!r} after m: (only c:, e:, card: may follow m:)")
            raise LineError(f"'|' inside the m: message (the Agent ends the message there): "
                            f"{'|' + field[:30]!r} is not a field")
        if _common_field(rec, field, seen):
            continue
        prefix = field[:2]
        if prefix not in ("d:", "h:", "m:"):
            raise LineError(f"unknown service check field {'|' + field!r}")
        if prefix in seen:
            raise LineError(f"duplicate field '|{prefix}'")
        seen.add(prefix)
        value = field[2:]
        if prefix == "d:":
            rec["timestamp"] = _timestamp(value, "service check date")
        elif value == "":
            raise LineError(f"empty field '|{prefix}'")
        elif prefix == "h:":
            rec["hostname"] = value
        else:
            message_seen = True
            rec["message"] = value.replace("m\\:", "m:").replace("\\n", "\n")


def parse_line(raw):
    """Parses one line (bytes, without its newline). Returns the line's record; "error" is None if it is good."""
    text = raw.decode("utf-8", "replace")
    if raw.startswith(b"_e"):  # metric names cannot start with '_'
        kind = "event"
    elif raw.startswith(b"_sc"):
        kind = "service_check"
    else:
        kind = "metric"
    rec = {"line": text, "kind": kind}
    try:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise LineError(f"not valid UTF-8 (byte {e.start})")
        if "\r" in text:
            raise LineError("carriage return in line")
        if kind == "event":
            _event(raw, rec)
        elif kind == "service_check":
            _service_check(text, rec)
        else:
            _metric(text, rec)
        rec["error"] = None
    except LineError as e:
        rec["error"] = str(e)
    return rec


def check_datagram(data, max_datagram=None):
    """Returns (datagram error or None, [line records])."""
    errors = []
    if not data:
        return "empty datagram", []
    if max_datagram is not None and len(data) > max_datagram:
        errors.append(f"datagram is {len(data)} bytes, over --max-datagram {max_datagram}")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        errors.append(f"not valid UTF-8 (byte {e.start})")
    body = data[:-1] if data.endswith(b"\n") else data
    raws = body.split(b"\n")
    lines = []
    for i, raw in enumerate(raws):
        if raw == b"":
            rec = {"line": "", "kind": None, "error": "empty line"}
            if "empty line inside the datagram" not in errors:
                errors.append("empty line inside the datagram")
        else:
            rec = parse_line(raw)
        lines.append(rec)
    if not data.endswith(b"\n") and lines and lines[-1]["error"] is not None:
        errors.append(f"datagram ends with a partial line (invalid, no newline): {lines[-1]['line'][-40:]!r}")
    return ("; ".join(errors) or None), lines


class Sink:
    def __init__(self, out_path, max_datagram):
        self.out = open(out_path, "w", encoding="utf-8")
        self.max_datagram = max_datagram
        self.seq = 0
        self.sel = selectors.DefaultSelector()
        self.paths = []
        self.streams = {}  # conn socket -> [conn number, bytearray]
        self.next_conn = 0

    def record(self, transport, data, extra=None, error=None):
        if error and not data:
            derr, lines = error, []
        else:
            derr, lines = check_datagram(data, self.max_datagram)
            if error:
                derr = error if derr is None else f"{error}; {derr}"
        rec = {"seq": self.seq, "transport": transport, "size": len(data),
               "datagram": data.decode("utf-8", "replace")}
        rec.update(extra or {})
        rec["ok"] = derr is None and all(ln["error"] is None for ln in lines)
        rec["error"] = derr
        rec["lines"] = lines
        self.seq += 1
        self.out.write(json.dumps(rec, ensure_ascii=False) + "\n")

    # --- sockets ----------------------------------------------------------------------------------
    def _unix_path(self, path):
        if len(os.fsencode(path)) > 107:
            sys.exit(f"dogstatsd_sink: socket path too long for sun_path (max 107 bytes): {path}")
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
        self.paths.append(path)

    def bind_udp(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            try:
                s.setsockopt(socket.SOL_SOCKET, opt, 8 * 1024 * 1024)
                break
            except OSError:
                continue
        s.bind(("127.0.0.1", port))
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, ("udp", s))
        return s.getsockname()[1]

    def bind_uds(self, path):
        self._unix_path(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        except OSError:
            pass
        s.bind(path)
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, ("uds", s))

    def bind_uds_stream(self, path):
        self._unix_path(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(64)
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, ("listen", s))

    # --- events -----------------------------------------------------------------------------------
    def on_datagram(self, transport, s):
        while True:
            try:
                data, _, flags, _ = s.recvmsg(262144)
            except (BlockingIOError, InterruptedError):
                return
            extra = {}
            if transport == "udp":
                extra["kernel_drops"] = self.drops(s)
            error = "datagram truncated by the receive buffer" if flags & socket.MSG_TRUNC else None
            self.record(transport, data, extra, error)

    @staticmethod
    def drops(s):
        try:
            info = s.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 64)
            return struct.unpack("=9I", info[:36])[8] if len(info) >= 36 else None
        except OSError:
            return None

    def on_accept(self, listener):
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(False)
        self.streams[conn] = [self.next_conn, bytearray()]
        self.next_conn += 1
        self.sel.register(conn, selectors.EVENT_READ, ("stream", conn))

    def on_stream(self, conn):
        number, buf = self.streams[conn]
        try:
            data = conn.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        buf += data
        while len(buf) >= 4:
            n = struct.unpack("<I", buf[:4])[0]
            if n > MAX_FRAME:
                self.record("uds-stream", bytes(buf[4:4096]), {"conn": number},
                            f"frame length prefix {n} is absurd (wrong byte order?); connection dropped")
                self.close_stream(conn)
                return
            if len(buf) < 4 + n:
                break
            frame = bytes(buf[4:4 + n])
            del buf[:4 + n]
            self.record("uds-stream", frame, {"conn": number})
        if not data:
            if buf:
                have = len(buf) - 4 if len(buf) >= 4 else len(buf)
                want = struct.unpack("<I", buf[:4])[0] if len(buf) >= 4 else None
                what = (f"{have} of {want} frame bytes" if want is not None
                        else f"{len(buf)} bytes of a 4-byte length prefix")
                self.record("uds-stream", bytes(buf[4:]) if want is not None else b"", {"conn": number},
                            f"connection closed inside a frame ({what})")
            self.close_stream(conn)

    def close_stream(self, conn):
        self.sel.unregister(conn)
        self.streams.pop(conn, None)
        conn.close()

    def run(self, wakeup):
        self.sel.register(wakeup, selectors.EVENT_READ, ("wakeup", wakeup))
        while True:
            for key, _ in self.sel.select():
                kind, s = key.data
                if kind == "wakeup":
                    return
                if kind in ("udp", "uds"):
                    self.on_datagram(kind, s)
                elif kind == "listen":
                    self.on_accept(s)
                else:
                    self.on_stream(s)
            self.out.flush()

    def close(self):
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        for path in self.paths:
            try:
                os.unlink(path)
            except OSError:
                pass
        self.out.close()


def main(argv):
    ap = argparse.ArgumentParser(prog="dogstatsd_sink.py", description="Strict DogStatsD receiver (JSONL out).")
    ap.add_argument("out", help="JSONL file to write (truncated at start)")
    ap.add_argument("--udp", type=int, metavar="PORT", help="UDP port on 127.0.0.1 (0 = pick a free one)")
    ap.add_argument("--uds", metavar="PATH", help="Unix datagram socket path")
    ap.add_argument("--uds-stream", metavar="PATH", help="Unix stream socket path (4-byte LE length framing)")
    ap.add_argument("--max-datagram", type=int, metavar="N", help="flag datagrams/frames over N bytes")
    args = ap.parse_args(argv[1:])
    if args.udp is None and args.uds is None and args.uds_stream is None:
        ap.error("give at least one of --udp, --uds, --uds-stream")
    if args.udp is not None and not 0 <= args.udp <= 65535:
        ap.error("--udp must be a port number")

    sink = Sink(args.out, args.max_datagram)
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: None)  # the wakeup fd ends the loop
    try:
        if args.udp is not None:
            print(f"LISTENING udp {sink.bind_udp(args.udp)}", flush=True)
        if args.uds is not None:
            sink.bind_uds(args.uds)
            print(f"LISTENING uds {args.uds}", flush=True)
        if args.uds_stream is not None:
            sink.bind_uds_stream(args.uds_stream)
            print(f"LISTENING uds-stream {args.uds_stream}", flush=True)
        sink.run(r)
    finally:
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
