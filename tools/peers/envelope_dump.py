#!/usr/bin/env python3
"""Dumps a Sentry envelope as the real Python SDK (PyPI sentry-sdk) parses it.

Usage: envelope_dump.py FILE|-

Uses sentry_sdk.envelope.Envelope.deserialize on the bytes and prints the envelope headers, then for each
item its type, headers and payload (JSON-parsed when possible, else text, else base64). Exits 1 if
deserialization raises.

Caveats (the SDK parser is lenient; use envelope_strict.py for framing): a too-short "length" silently
truncates the payload and drops the rest of that line; the parser adds a "content_type" item header that was
not on the wire; it stops at the first empty line.
"""

import base64
import json
import sys


def render_payload(item):
    if item.payload.json is not None:
        return "json", item.payload.json
    data = item.payload.get_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "base64", base64.b64encode(data).decode("ascii")
    try:
        return "json", json.loads(text)
    except ValueError:
        return "text", text


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: envelope_dump.py FILE|-\n")
        return 2
    try:
        if argv[1] == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(argv[1], "rb") as f:
                data = f.read()
    except OSError as e:
        print(f"ERROR cannot read {argv[1]}: {e}")
        return 1
    from sentry_sdk.envelope import Envelope

    try:
        env = Envelope.deserialize(data)
    except Exception as e:
        print(f"ERROR Envelope.deserialize raised {type(e).__name__}: {e}")
        return 1
    print("headers:", json.dumps(env.headers, sort_keys=True))
    print(f"items: {len(env.items)}")
    for n, item in enumerate(env.items):
        kind, payload = render_payload(item)
        print(f"item {n}: type={item.type} headers={json.dumps(item.headers, sort_keys=True)}")
        size = "" if item.payload.json is not None else f", {len(item.payload.get_bytes())} bytes"
        print(f"  payload ({kind}{size}): "
              f"{json.dumps(payload, sort_keys=True, ensure_ascii=False) if kind == 'json' else payload}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
