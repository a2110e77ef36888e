#!/usr/bin/env python3
"""Runs a real Etsy statsd (npm statsd 0.9.0) on loopback and reports what it aggregated.

Usage: statsd_run.py STATS_JS [--flush-ms N] [--node NODE] [--log FILE] [--keep-gauges] [--no-stdin]

STATS_JS is the path `scripts/statsd-setup.sh` prints. The driver picks a free UDP port and a free management TCP
port, points statsd's graphite backend at a TCP listener of its own on 127.0.0.1, starts
`node STATS_JS <config>` (flushInterval N ms, default 500; deleteIdleStats on; percentThreshold [90, 100]) and
prints, flushed, one line each:
    MGMT <tcp port>   HTTP <port>   GRAPHITE <port>   STATSD_PID <pid>
and last `LISTENING <udp port>`, once statsd's UDP and management sockets are really bound (read from /proc).

Every flush arrives as one graphite TCP connection; the driver parses its lines and keeps running totals:
    {"flushes": n,
     "counters": {key: sum of stats.counters.<key>.count over flushes},
     "gauges":   {key: last value flushed},
     "timers":   {key: {"count": sum of count (1/rate weighted), "samples": sum of count_100 (values received),
                        "sum", "sum_squares", "lower": min, "upper": max, "flushes": n}},
     "sets":     {key: {"last": count in the last flush that had it, "max": ..., "per_flush": [...]}},
     "bad_lines": n, "bad_line_texts": [{"value": "<rejected part>", "line": "<whole line>"}],
     "packets_received": n, "metrics_received": n}
Keys are statsd's internal keys, i.e. after its tag folding and sanitising (`name;tag=v;tag2` for `|#tag:v,tag2`).
statsd's own `statsd.*` counters and gauges are left out (bad_lines etc. come from them), and so are the driver's
flush markers. Numbers JSON cannot hold (statsd gives Infinity for `|@0`) are the strings "Infinity", "NaN".

Commands, one per line on stdin (one JSON line answers each, on stdout), or over HTTP at 127.0.0.1:<HTTP port>:
    totals                      GET  /totals            totals so far
    flush-wait [TIMEOUT_S]      POST /flush-wait?timeout=S
                                    sends a marker datagram to statsd and waits until a flush contained it, so
                                    everything sent to statsd before the call is in the totals; then the totals
                                    (or {"error": ...} after the timeout, default 3 flush intervals + 5 s)
    reset                       POST /reset             forget the totals (do a flush-wait first)
    raw                         GET  /raw               every flush as the list of its graphite lines
    quit                        POST /quit              stop statsd and exit 0
EOF on stdin also means quit (so the driver dies with a test that forgets it), unless --no-stdin is given.
SIGTERM/SIGINT stop statsd and exit 0. statsd also gets SIGKILL if the driver is killed (PR_SET_PDEATHSIG).
--keep-gauges keeps gauges between flushes (statsd's default), so `+N|g` deltas add up across flushes.
--log FILE appends statsd's own output (e.g. "Bad line" messages) to FILE.
Exit status 1 if statsd cannot be started or dies on its own.
"""

import argparse
import collections
import ctypes
import http.server
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

MARKER_KEY = "statsd_run.flush_marker"
INTERNAL_COUNTERS = {"statsd.bad_lines_seen": "bad_lines", "statsd.packets_received": "packets_received",
                     "statsd.metrics_received": "metrics_received"}
INTERNAL_GAUGES = {"statsd.timestamp_lag"}
BAD_LINE = re.compile(r'Bad line: (.*) in msg "(.*)"$')

_out_lock = threading.Lock()


def emit(line):
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def parse_number(text):
    """A graphite value as statsd printed it (JavaScript Number.toString)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def json_number(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


class Totals:
    """Running totals built from the graphite lines of each flush."""

    def __init__(self):
        self.cond = threading.Condition()
        self.markers_seen = 0  # flush markers statsd processed; never reset (flush-wait relies on it)
        self.bad_texts = []  # from statsd's log, appended by the log reader
        self.clear()

    def clear(self):
        self.flushes = 0
        self.raw = []
        self.counters = {}
        self.gauges = {}
        self.timers = {}
        self.sets = {}
        self.internal = {"bad_lines": 0, "packets_received": 0, "metrics_received": 0}
        self.markers_in_totals = 0
        self.bad_texts_base = len(self.bad_texts)

    def add_flush(self, text):
        lines = [ln for ln in text.split("\n") if ln]
        with self.cond:
            self.flushes += 1
            self.raw.append(lines)
            timer_parts = {}
            for line in lines:
                parts = line.split(" ")
                if len(parts) != 3:
                    continue
                path, value = parts[0], parse_number(parts[1])
                name, sep, tags = path.partition(";")
                tags = sep + tags
                if name.startswith("stats.counters.") and name.endswith(".count"):
                    key = name[len("stats.counters."):-len(".count")] + tags
                    if key == MARKER_KEY:
                        self.markers_seen += value
                        self.markers_in_totals += value
                    elif key in INTERNAL_COUNTERS:
                        self.internal[INTERNAL_COUNTERS[key]] += value
                    else:
                        self.counters[key] = self.counters.get(key, 0) + value
                elif name.startswith("stats.gauges."):
                    key = name[len("stats.gauges."):] + tags
                    if key not in INTERNAL_GAUGES:
                        self.gauges[key] = value
                elif name.startswith("stats.sets.") and name.endswith(".count"):
                    key = name[len("stats.sets."):-len(".count")] + tags
                    s = self.sets.setdefault(key, {"last": None, "max": None, "per_flush": []})
                    s["last"] = value
                    s["max"] = value if s["max"] is None else max(s["max"], value)
                    s["per_flush"].append(value)
                elif name.startswith("stats.timers."):
                    key, _, stat = name[len("stats.timers."):].rpartition(".")
                    timer_parts.setdefault(key + tags, {})[stat] = value
            for key, stats in timer_parts.items():
                t = self.timers.setdefault(key, {"count": 0, "samples": 0, "sum": 0, "sum_squares": 0,
                                                 "lower": None, "upper": None, "flushes": 0})
                t["flushes"] += 1
                t["count"] += stats.get("count", 0)
                t["samples"] += stats.get("count_100", 0)
                t["sum"] += stats.get("sum", 0)
                t["sum_squares"] += stats.get("sum_squares", 0)
                if "lower" in stats:
                    t["lower"] = stats["lower"] if t["lower"] is None else min(t["lower"], stats["lower"])
                if "upper" in stats:
                    t["upper"] = stats["upper"] if t["upper"] is None else max(t["upper"], stats["upper"])
            self.cond.notify_all()

    def add_bad_text(self, value, line):
        with self.cond:
            self.bad_texts.append({"value": value, "line": line})
            self.cond.notify_all()

    def snapshot(self, wait_logs=1.0):
        """The totals; first waits (briefly) until the log reader has caught up with bad_lines."""
        deadline = time.monotonic() + wait_logs
        with self.cond:
            while (len(self.bad_texts) - self.bad_texts_base < self.internal["bad_lines"]
                   and time.monotonic() < deadline):
                self.cond.wait(deadline - time.monotonic())
            markers = self.markers_in_totals
            result = {
                "flushes": self.flushes,
                "counters": dict(self.counters),
                "gauges": dict(self.gauges),
                "timers": {k: dict(v) for k, v in self.timers.items()},
                "sets": {k: {"last": v["last"], "max": v["max"], "per_flush": list(v["per_flush"])}
                         for k, v in self.sets.items()},
                "bad_lines": self.internal["bad_lines"],
                "bad_line_texts": list(self.bad_texts[self.bad_texts_base:]),
                # the driver's own marker datagrams are one packet and one metric each
                "packets_received": self.internal["packets_received"] - markers,
                "metrics_received": self.internal["metrics_received"] - markers,
            }
        return _finite(result)


def _finite(obj):
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return json_number(obj)


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def bound_inode(table, port, want_listen):
    """Inode of the socket bound to 127.0.0.1:port in /proc/net/{udp,tcp}, or None."""
    local = "0100007F:%04X" % port
    try:
        with open(f"/proc/net/{table}") as f:
            next(f)
            for row in f:
                cols = row.split()
                if cols[1] == local and (not want_listen or cols[3] == "0A"):
                    return cols[9]
    except OSError:
        pass
    return None


def set_pdeathsig():
    """In the child: get SIGKILL when the driver's main thread dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Driver:
    def __init__(self, args):
        self.args = args
        self.totals = Totals()
        self.stop = threading.Event()
        self.tmp = tempfile.mkdtemp(prefix="statsd_run.")
        self.proc = None
        self.log_tail = collections.deque(maxlen=50)
        self.log_file = open(args.log, "a") if args.log else None
        self.marker_lock = threading.Lock()
        self.markers_sent = 0
        self.udp_port = self.mgmt_port = None
        self.graphite = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.graphite.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.graphite.bind(("127.0.0.1", 0))
        self.graphite.listen(16)
        self.graphite.settimeout(0.2)
        self.sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    # --- statsd process ---------------------------------------------------------------------------
    def write_config(self):
        conf = {
            "address": "127.0.0.1", "port": self.udp_port,
            "mgmt_address": "127.0.0.1", "mgmt_port": self.mgmt_port,
            "flushInterval": self.args.flush_ms,
            "deleteIdleStats": True,
            "backends": ["./backends/graphite"],
            "graphiteHost": "127.0.0.1", "graphitePort": self.graphite.getsockname()[1],
            "graphite": {"legacyNamespace": False},
            "percentThreshold": [90, 100],
            "automaticConfigReload": False,
        }
        if self.args.keep_gauges:
            conf["deleteGauges"] = False
        path = os.path.join(self.tmp, "statsd.conf.js")
        with open(path, "w") as f:
            json.dump(conf, f)  # a JSON object is a valid JS object literal
        return path

    def start_statsd(self, attempts=5, timeout=10.0):
        for attempt in range(attempts):
            self.udp_port = free_port(socket.SOCK_DGRAM)
            self.mgmt_port = free_port(socket.SOCK_STREAM)
            conf = self.write_config()
            self.proc = subprocess.Popen(
                [self.args.node, self.args.stats_js, conf], cwd=self.tmp, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=set_pdeathsig)
            reader = threading.Thread(target=self.read_log, args=(self.proc,), daemon=True)
            reader.start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                mine = socket_inodes(self.proc.pid)
                udp = bound_inode("udp", self.udp_port, False)
                tcp = bound_inode("tcp", self.mgmt_port, True)
                if udp in mine and tcp in mine:
                    return True
                time.sleep(0.01)
            self.kill_statsd()
            reader.join(1)
            port_taken = any("EADDRINUSE" in ln for ln in self.log_tail)
            sys.stderr.write(f"statsd_run: statsd did not start (attempt {attempt + 1}); its output:\n"
                             + "".join(f"  {ln}\n" for ln in self.log_tail))
            self.log_tail.clear()
            if not port_taken:  # only a port grabbed by someone else since free_port() is worth a retry
                break
        return False

    def read_log(self, proc):
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log_tail.append(line)
            if self.log_file:
                self.log_file.write(line + "\n")
                self.log_file.flush()
            m = BAD_LINE.search(line)
            if m:
                self.totals.add_bad_text(m.group(1), m.group(2))

    def kill_statsd(self):
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    # --- graphite listener ------------------------------------------------------------------------
    def serve_graphite(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.graphite.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                chunks = []
                try:
                    while True:
                        data = conn.recv(65536)
                        if not data:
                            break
                        chunks.append(data)
                except OSError:
                    pass
            self.totals.add_flush(b"".join(chunks).decode("utf-8", "replace"))

    # --- commands ---------------------------------------------------------------------------------
    def flush_wait(self, timeout=None):
        if timeout is None:
            timeout = 3 * self.args.flush_ms / 1000 + 5
        with self.marker_lock:
            self.markers_sent += 1
            target = self.markers_sent
            self.sender.sendto(f"{MARKER_KEY}:1|c".encode(), ("127.0.0.1", self.udp_port))
        deadline = time.monotonic() + timeout
        t = self.totals
        with t.cond:  # snapshot() below takes the same (re-entrant) lock
            while t.markers_seen < target:
                left = deadline - time.monotonic()
                if left <= 0 or self.stop.is_set():
                    return {"error": f"no flush with marker {target} within {timeout} s "
                                     f"(flushes so far: {t.flushes})"}
                t.cond.wait(min(left, 0.2))
        return t.snapshot()

    def command(self, line):
        """Runs one command; returns (reply object, quit?)."""
        words = line.split()
        if not words:
            return None, False
        cmd, rest = words[0], words[1:]
        if cmd == "totals":
            return self.totals.snapshot(), False
        if cmd == "flush-wait":
            try:
                timeout = float(rest[0]) if rest else None
            except ValueError:
                return {"error": f"bad timeout {rest[0]!r}"}, False
            return self.flush_wait(timeout), False
        if cmd == "reset":
            with self.totals.cond:
                self.totals.clear()
            return {"ok": True}, False
        if cmd == "raw":
            with self.totals.cond:
                return {"flushes": [list(f) for f in self.totals.raw]}, False
        if cmd == "quit":
            return {"ok": True}, True
        return {"error": f"unknown command {cmd!r} (totals, flush-wait [S], reset, raw, quit)"}, False

    def serve_stdin(self):
        for line in sys.stdin:
            reply, quit_ = self.command(line)
            if reply is not None:
                emit(json.dumps(reply))
            if quit_:
                break
        self.stop.set()

    def serve_http(self):
        driver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def handle_any(self):
                url = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                query = urllib.parse.parse_qs(url.query)
                cmd = url.path.strip("/")
                line = cmd + (" " + query["timeout"][0] if cmd == "flush-wait" and "timeout" in query else "")
                if cmd not in ("totals", "flush-wait", "reset", "raw", "quit"):
                    reply, quit_, status = {"error": f"unknown path {url.path}"}, False, 404
                else:
                    reply, quit_ = driver.command(line)
                    status = 504 if "error" in reply else 200
                body = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if quit_:
                    driver.stop.set()

            do_GET = do_POST = handle_any

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.http_server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return server.server_address[1]

    # --- main -------------------------------------------------------------------------------------
    def run(self):
        if not self.start_statsd():
            return 1
        threading.Thread(target=self.serve_graphite, daemon=True).start()
        http_port = self.serve_http()
        emit(f"MGMT {self.mgmt_port}")
        emit(f"HTTP {http_port}")
        emit(f"GRAPHITE {self.graphite.getsockname()[1]}")
        emit(f"STATSD_PID {self.proc.pid}")
        emit(f"LISTENING {self.udp_port}")
        if not self.args.no_stdin:
            threading.Thread(target=self.serve_stdin, daemon=True).start()
        status = 0
        while not self.stop.wait(0.1):
            if self.proc.poll() is not None:
                sys.stderr.write(f"statsd_run: statsd exited by itself with status {self.proc.returncode}; "
                                 "its last output:\n" + "".join(f"  {ln}\n" for ln in self.log_tail))
                status = 1
                break
        return status

    def cleanup(self):
        self.stop.set()
        self.kill_statsd()
        try:
            self.http_server.shutdown()
        except AttributeError:
            pass
        self.graphite.close()
        self.sender.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv):
    ap = argparse.ArgumentParser(prog="statsd_run.py", description="Run Etsy statsd on loopback; report totals.")
    ap.add_argument("stats_js", help="statsd's stats.js (printed by scripts/statsd-setup.sh)")
    ap.add_argument("--flush-ms", type=int, default=500, help="statsd flushInterval in ms (default 500)")
    ap.add_argument("--node", default="node", help="node executable (default: node on PATH)")
    ap.add_argument("--log", help="append statsd's output to this file")
    ap.add_argument("--keep-gauges", action="store_true", help="keep gauges between flushes")
    ap.add_argument("--no-stdin", action="store_true", help="ignore stdin (stop only by signal or /quit)")
    args = ap.parse_args(argv[1:])
    if args.flush_ms < 10:
        ap.error("--flush-ms must be at least 10")
    if not os.path.isfile(args.stats_js):
        ap.error(f"no such file: {args.stats_js}")
    args.stats_js = os.path.abspath(args.stats_js)  # statsd runs in a temp dir
    if shutil.which(args.node) is None:
        ap.error(f"node executable not found: {args.node}")

    driver = Driver(args)
    signal.signal(signal.SIGTERM, lambda s, f: driver.stop.set())
    signal.signal(signal.SIGINT, lambda s, f: driver.stop.set())
    try:
        return driver.run()
    finally:
        driver.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
