#!/usr/bin/env python3
"""Recording HTTP sink for integration tests (Sentry envelopes, Datadog/OTLP JSON, ...).

Usage: http_sink.py PORT [--verbose] [--tls CERT KEY] [--control-stdin] [--down]      (PORT 0 = pick a free port)

With --tls, every connection is HTTPS with the certificate chain CERT (PEM) and its key KEY
(PEM); the control endpoints too.

Binds 127.0.0.1 only and prints "LISTENING <port>" (flushed) once ready.  Stops cleanly on SIGTERM/SIGINT.

The port stays the sink's for its whole life, up or down: besides the listening socket it holds a bound,
never-listening socket on the same port (both SO_REUSEPORT, which no other process's bind to port 0 can share),
so no other process can take the port while the sink is "down".  With --control-stdin it reads commands, one
a line, from stdin and answers each on stdout: "down" closes the listening socket and every open connection
(clients then get "connection refused", as from a server that is gone) and answers "DOWN"; "up" listens on
the same port again and answers "UP".  What was recorded is kept.  EOF on stdin stops the sink.  --down starts
it down ("LISTENING <port>" still names the held port).

Every POST/PUT to a non-control path is recorded: method, path, query, headers (names lower-cased, repeats
joined with ", "), raw body length, the decoded body (chunked transfer and Content-Encoding gzip / deflate
(zlib) undone) as UTF-8 text in "body" (null if not UTF-8) and as base64 in "body_b64", receive time, and
"answered" (the status sent, or "closed").

Control endpoints:
  GET    /__received   JSON list of recorded requests (oldest first)
  DELETE /__received   clear the list
  GET    /__behavior   current fault behaviour ({"active": false} when default)
  POST   /__behavior   set fault behaviour, e.g.
         {"status":429,"headers":{"Retry-After":"3"},"delay":0.5,"close":false,"times":2}
         all keys optional; "times" absent/null = until changed; "body" = reply body (string or JSON value);
         {} or null resets to default
  DELETE /__behavior   reset to default

Default replies: 200 {"id":"<32 hex>"} for /api/<n>/envelope/ (the envelope's event_id when it has one),
202 {"errors":[]} for /api/v2/..., 200 {} for OTLP /v1/..., 200 {"status":"ok"} otherwise.
Faults apply only to recorded requests (POST/PUT to non-control paths).
"""

import base64
import gzip
import http.server
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
import zlib

ENVELOPE_PATH = re.compile(r"^/api/\d+/envelope/?$")
BEHAVIOR_KEYS = {"status", "headers", "delay", "close", "times", "body", "truncate", "hang"}
MAX_BODY = 256 * 1024 * 1024

_lock = threading.Lock()
_records = []
_behavior = None  # dict with validated keys + "remaining" (int or None)
VERBOSE = False


class BadRequest(Exception):
    pass


def validate_behavior(obj):
    """Returns a normalized behaviour dict, or None for 'reset'. Raises BadRequest."""
    if obj is None or obj == {}:
        return None
    if not isinstance(obj, dict):
        raise BadRequest("behaviour must be a JSON object or null")
    unknown = set(obj) - BEHAVIOR_KEYS
    if unknown:
        raise BadRequest(f"unknown behaviour keys: {sorted(unknown)}")
    b = {"status": None, "headers": {}, "delay": 0.0, "close": False, "remaining": None, "body": None,
         "truncate": False, "hang": False}
    status = obj.get("status")
    if status is not None:
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise BadRequest("status must be an integer in 100..599")
        b["status"] = status
    headers = obj.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            raise BadRequest("headers must be an object")
        for k, v in headers.items():
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise BadRequest(f"header {k!r}: value must be a string or number")
            if any(c in str(k) + str(v) for c in "\r\n"):
                raise BadRequest(f"header {k!r}: no CR/LF allowed")
        b["headers"] = {str(k): str(v) for k, v in headers.items()}
    delay = obj.get("delay")
    if delay is not None:
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
            raise BadRequest("delay must be a non-negative number (seconds)")
        b["delay"] = float(delay)
    close = obj.get("close")
    if close is not None:
        if not isinstance(close, bool):
            raise BadRequest("close must be a boolean")
        b["close"] = close
    for flag in ("truncate", "hang"):
        value = obj.get(flag)
        if value is not None:
            if not isinstance(value, bool):
                raise BadRequest(f"{flag} must be a boolean")
            b[flag] = value
    times = obj.get("times")
    if times is not None:
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise BadRequest("times must be a positive integer or null")
        b["remaining"] = times
    if "body" in obj and obj["body"] is not None:
        body = obj["body"]
        b["body"] = body if isinstance(body, str) else json.dumps(body)
    return b


def describe_behavior(b):
    if b is None:
        return {"active": False}
    return {
        "active": True,
        "status": b["status"],
        "headers": b["headers"],
        "delay": b["delay"],
        "close": b["close"],
        "times": b["remaining"],
        "body": b["body"],
        "truncate": b["truncate"],
        "hang": b["hang"],
    }


def take_behavior():
    """Consumes one use of the active behaviour (if any) and returns a snapshot of it."""
    global _behavior
    with _lock:
        b = _behavior
        if b is None:
            return None
        snap = dict(b)
        if b["remaining"] is not None:
            b["remaining"] -= 1
            if b["remaining"] <= 0:
                _behavior = None
        return snap


def default_reply(path, body):
    """(status, json body) of the default answer for a request to path."""
    if ENVELOPE_PATH.match(path):
        event_id = None
        try:
            header = json.loads(body.split(b"\n", 1)[0])
            if isinstance(header, dict) and isinstance(header.get("event_id"), str):
                candidate = header["event_id"].replace("-", "").lower()
                if re.fullmatch(r"[0-9a-f]{32}", candidate):
                    event_id = candidate
        except Exception:
            pass
        return 200, {"id": event_id or uuid.uuid4().hex}
    if path.startswith("/api/v2/"):
        return 202, {"errors": []}
    if path.startswith("/v1/"):
        return 200, {}
    return 200, {"status": "ok"}


def decode_body(raw, encoding):
    """Undoes Content-Encoding. Returns (decoded bytes, error or None)."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    data = raw
    for coding in reversed(codings):  # applied in listed order, so undo from the last
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            try:
                data = gzip.decompress(data)
            except Exception as e:
                return raw, f"gzip: {e}"
        elif coding == "deflate":
            try:
                data = zlib.decompress(data)
            except zlib.error as e:
                hint = ""
                try:
                    zlib.decompress(data, -15)
                    hint = " (body is raw deflate without the zlib wrapper; HTTP 'deflate' means zlib)"
                except zlib.error:
                    pass
                return raw, f"deflate: {e}{hint}"
        else:
            return raw, f"unsupported Content-Encoding {coding!r}"
    return data, None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "peers-http-sink/1"
    timeout = 120
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (40 ms) on every kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if VERBOSE:
            sys.stderr.write("sink: %s - %s\n" % (self.address_string(), fmt % args))

    # --- body reading -------------------------------------------------------------------------
    def read_body(self):
        """Returns (raw bytes, chunked?). Raises BadRequest on malformed framing."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return self.read_chunked(), True
        cl = self.headers.get_all("Content-Length") or []
        if not cl:
            return b"", False
        values = {v.strip() for v in cl}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise BadRequest(f"bad Content-Length {cl!r}")
        n = int(next(iter(values)))
        if n > MAX_BODY:
            raise BadRequest(f"body too large ({n} bytes)")
        data = self.rfile.read(n)
        if len(data) != n:
            raise BadRequest(f"body truncated: got {len(data)} of {n} bytes")
        return data, False

    def read_chunked(self):
        out = bytearray()
        while True:
            line = self.rfile.readline(65537)
            if not line.endswith(b"\n"):
                raise BadRequest("chunked: truncated chunk-size line")
            size_s = line.split(b";", 1)[0].strip()
            try:
                size = int(size_s, 16)
            except ValueError:
                raise BadRequest(f"chunked: bad chunk size {size_s[:40]!r}")
            if size < 0 or len(out) + size > MAX_BODY:
                raise BadRequest("chunked: bad or too large chunk size")
            if size == 0:
                break
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise BadRequest("chunked: truncated chunk")
            out += chunk
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("chunked: missing CRLF after chunk data")
        while True:  # trailers
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
        return bytes(out)

    # --- replies ------------------------------------------------------------------------------
    def reply(self, status, body, extra_headers=None, content_type="application/json"):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout, TimeoutError):
            self.close_connection = True

    def dispatch(self):
        path, _, query = self.path.partition("?")
        try:
            raw, chunked = self.read_body()
        except BadRequest as e:
            self.close_connection = True
            if self.command in ("POST", "PUT") and not path.startswith("/__"):
                self.record(path, query, b"", False, b"", str(e), 400)
            self.reply(400, {"error": str(e)})
            return
        if path.startswith("/__"):
            self.control(path, raw)
            return
        if self.command not in ("POST", "PUT"):
            status, body = default_reply(path, b"")
            self.reply(status, body)
            return

        decoded, error = decode_body(raw, self.headers.get("Content-Encoding"))
        if error is not None:
            self.record(path, query, raw, chunked, decoded, error, 400)
            self.reply(400, {"error": error})
            return

        b = take_behavior()
        if b is None:
            status, body = default_reply(path, decoded)
            self.record(path, query, raw, chunked, decoded, None, status)
            self.reply(status, body)
            return
        if b["hang"]:
            # Accept the request and never answer, until the client gives up (or 120 s pass).
            self.record(path, query, raw, chunked, decoded, None, "hung")
            self.close_connection = True
            self.connection.settimeout(120)
            try:
                while self.connection.recv(65536):
                    pass
            except OSError:
                pass
            return
        if b["close"]:
            answered = "closed"
            status, body = None, None
        else:
            status = b["status"]
            d_status, d_body = default_reply(path, decoded)
            if status is None:
                status = d_status
            if b["body"] is not None:
                body = b["body"]
            elif 200 <= status < 300:
                body = d_body
            else:
                body = {"detail": f"injected status {status}"}
            answered = status
        self.record(path, query, raw, chunked, decoded, None, answered, truncated=b["truncate"])
        if b["delay"] > 0:
            time.sleep(b["delay"])
        if b["close"]:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if b["truncate"]:
            # The status line, the headers and half the body, then a reset.
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) + 64))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.close()
            except OSError:
                pass
            return
        self.reply(status, body, b["headers"])

    def record(self, path, query, raw, chunked, decoded, error, answered, truncated=False):
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        with _lock:
            _records.append({
                "seq": len(_records),
                "method": self.command,
                "path": path,
                "query": query,
                "headers": headers,
                "raw_len": len(raw),
                "body_len": len(decoded),
                "chunked": chunked,
                "content_encoding": self.headers.get("Content-Encoding"),
                "body": text,
                "body_b64": base64.b64encode(decoded).decode("ascii"),
                "received_at": time.time(),
                "answered": answered,
                "truncated": truncated,
                "error": error,
            })

    def control(self, path, raw):
        global _behavior
        if path == "/__received":
            if self.command == "GET":
                with _lock:
                    body = json.dumps(_records)
                self.reply(200, body)
            elif self.command == "DELETE":
                with _lock:
                    n = len(_records)
                    _records.clear()
                self.reply(200, {"cleared": n})
            else:
                self.reply(405, {"error": "use GET or DELETE"}, {"Allow": "GET, DELETE"})
        elif path == "/__behavior":
            if self.command == "GET":
                with _lock:
                    body = describe_behavior(_behavior)
                self.reply(200, body)
            elif self.command in ("POST", "PUT"):
                try:
                    try:
                        obj = json.loads(raw.decode("utf-8")) if raw.strip() else None
                    except (UnicodeDecodeError, json.JSONDecodeError) as e:
                        raise BadRequest(f"bad JSON: {e}")
                    b = validate_behavior(obj)
                except BadRequest as e:
                    self.reply(400, {"error": str(e)})
                    return
                with _lock:
                    _behavior = b
                    body = describe_behavior(_behavior)
                self.reply(200, body)
            elif self.command == "DELETE":
                with _lock:
                    _behavior = None
                self.reply(200, {"active": False})
            else:
                self.reply(405, {"error": "use GET, POST or DELETE"}, {"Allow": "GET, POST, DELETE"})
        else:
            self.reply(404, {"error": f"unknown control path {path}"})

    def safe_dispatch(self):
        try:
            self.dispatch()
        except (ConnectionError, socket.timeout, TimeoutError):
            self.close_connection = True
        except Exception as e:  # never let a request kill the server
            self.close_connection = True
            sys.stderr.write(f"sink: internal error on {self.command} {self.path}: {e!r}\n")
            try:
                self.reply(500, {"error": f"sink internal error: {e}"})
            except Exception:
                pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = safe_dispatch


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None  # an ssl.SSLContext when serving HTTPS

    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()
        self.connections = set()
        self.connections_lock = threading.Lock()
        # Holds the port while the listening socket is closed ("down"): bound, never listening.
        self.hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.hold.bind(self.server_address)

    def finish_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        try:
            # The TLS handshake runs on the connection's own thread: a client that refuses the
            # certificate fails there, and the server goes on.
            if self.tls is not None:
                request = self.tls.wrap_socket(request, server_side=True)
            super().finish_request(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def go_down(self):
        """Stops serving: the listening socket and every open connection are closed."""
        self.shutdown()
        self.socket.close()
        with self.connections_lock:
            open_now = list(self.connections)
        for connection in open_now:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def go_up(self):
        """Listens on the same port again and serves in a background thread."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(self.server_address)
        listener.listen(self.request_queue_size)
        self.socket = listener
        self.serve_in_background()

    def serve_in_background(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if VERBOSE or not isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
            sys.stderr.write(f"sink: error from {client_address}: {exc!r}\n")


def main(argv):
    global VERBOSE
    args = [a for a in argv[1:] if a != "--verbose"]
    VERBOSE = len(args) != len(argv) - 1
    control = "--control-stdin" in args
    start_down = "--down" in args
    args = [a for a in args if a not in ("--control-stdin", "--down")]
    tls = None
    if "--tls" in args:
        at = args.index("--tls")
        tls = args[at + 1:at + 3]
        del args[at:at + 3]
    if len(args) != 1 or not args[0].isdigit() or int(args[0]) > 65535 or (tls is not None and len(tls) != 2):
        sys.stderr.write("usage: http_sink.py PORT [--verbose] [--tls CERT KEY] [--control-stdin] [--down]"
                         "   (PORT 0 = pick a free port)\n")
        return 2
    server = Server(("127.0.0.1", int(args[0])), Handler)
    if tls is not None:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls[0], tls[1])
        server.tls = context

    stopped = threading.Event()

    def stop(signum, frame):
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if start_down:
        server.socket.close()
    else:
        server.serve_in_background()
    print(f"LISTENING {server.server_address[1]}", flush=True)
    if control:
        def commands():
            up = not start_down
            for line in sys.stdin:
                command = line.strip()
                if command == "down" and up:
                    server.go_down()
                    up = False
                elif command == "up" and not up:
                    server.go_up()
                    up = True
                elif command not in ("down", "up"):
                    print(f"ERROR unknown command {command!r}", flush=True)
                    continue
                print("UP" if up else "DOWN", flush=True)
            stopped.set()

        threading.Thread(target=commands, daemon=True).start()
    while not stopped.wait(0.05):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
