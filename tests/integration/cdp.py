#!/usr/bin/env python3
"""cdp.py: drive a headless Chromium through its DevTools protocol, for the
status page test. Python's standard library only (a minimal WebSocket client).

  cdp.py PORT eval EXPR        print the JSON value of EXPR in the first page
  cdp.py PORT screenshot FILE  write a PNG of the page
PORT is Chromium's --remote-debugging-port. Exits 1 on any error."""
import base64
import json
import os
import socket
import struct
import sys
import urllib.request


class WS:
    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(1)
            if not chunk:
                raise OSError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise OSError(f"websocket handshake refused: {head!r}")

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise OSError("websocket closed")
            buf += chunk
        return buf

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            msg += payload
            if b0 & 0x80:
                return msg.decode()


def call(ws, ident, method, params):
    ws.send(json.dumps({"id": ident, "method": method, "params": params}))
    while True:
        m = json.loads(ws.recv())
        if m.get("id") == ident:
            if "error" in m:
                raise RuntimeError(m["error"])
            return m["result"]


def main():
    port, what, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
    page = next(p for p in pages if p.get("type") == "page")
    ws = WS(page["webSocketDebuggerUrl"])
    if what == "eval":
        r = call(ws, 1, "Runtime.evaluate", {"expression": arg, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"])
        print(json.dumps(r["result"].get("value"), ensure_ascii=False))
    elif what == "screenshot":
        r = call(ws, 1, "Page.captureScreenshot", {"format": "png"})
        with open(arg, "wb") as f:
            f.write(base64.b64decode(r["data"]))
    else:
        raise SystemExit(f"unknown command {what!r}")


try:
    main()
except Exception as e:  # the test reads the reason
    sys.stderr.write(f"cdp.py: {e}\n")
    sys.exit(1)
