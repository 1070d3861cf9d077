#!/usr/bin/env python3
"""A registry that misbehaves on request, for the registry backend's tests.

Serves blobs (files named by their sha256 in --blob-dir) under
/v2/<repo>/blobs/sha256:<id> on one port, and an "object store" on a
second port (and optionally a Unix socket) that blob GETs may be redirected
to, serving /<anything>/<id>; the object store refuses
any request carrying Authorization (as S3 does for presigned URLs).

Auth (--auth): none | basic (user:pass in --user) | bearer (challenge naming
/token on the first port; tokens expire after --expires-in seconds, or
never expire when it is 0 and the reply has no expires_in).

Control, on the first port, without auth:
  POST /_control   JSON {"faults": [...], "redirect": bool, "expire_tokens": bool}
                   faults apply to the next blob requests, one each, in order:
                   503 | 429 | reset | hang | truncate | bad_range | full200 |
                   huge_headers
  GET  /_stats     JSON counters: token_fetches, token_posts, blob_gets,
                   blob_heads, redirected_gets, auth_on_redirect, test_header
                   (blob requests with `X-Nydus-Test: on`), test_header_on_redirect,
                   unauthorized (bearer 401 answers), proxied (absolute-form requests:
                   the server used as an HTTP forward proxy, any origin host),
                   connects (CONNECT requests, refused with 405)
Distance (benchmarks): --latency-ms N delays every request by N ms before
its answer (one round trip to a far registry); --rate-bytes B paces each
connection's body bytes at B bytes/s with a token bucket (a 256 KiB burst),
like a per-flow bandwidth limit.
Prints "PORTS <registry> <store>" on stdout once both ports listen; runs until killed.
"""
import argparse
import base64
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOCK = threading.Lock()
STATE = {"faults": [], "redirect": False, "tokens": {}, "serial": 0}
STATS = {"token_fetches": 0, "token_posts": 0, "blob_gets": 0, "blob_heads": 0,
         "redirected_gets": 0, "auth_on_redirect": 0, "test_header": 0, "test_header_on_redirect": 0,
         "unauthorized": 0, "proxied": 0, "connects": 0}
ARGS = None
BLOB_RE = re.compile(r"^/v2/(.+)/blobs/sha256:([0-9a-f]{64})$")
HANG = threading.Event()  # never set: a "hang" fault waits until the client gives up


def bump(key):
    with LOCK:
        STATS[key] += 1


def next_fault():
    with LOCK:
        return STATE["faults"].pop(0) if STATE["faults"] else None


def blob_path(digest):
    return os.path.join(ARGS.blob_dir, digest)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    BURST = 256 << 10

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        self.tokens, self.refilled = self.BURST, time.monotonic()  # this connection's bucket

    def parse_request(self):
        ok = super().parse_request()
        if ok and ARGS.latency_ms:
            time.sleep(ARGS.latency_ms / 1000.0)
        return ok

    def send_body(self, data):
        if not ARGS.rate_bytes:
            return self.wfile.write(data)
        view = memoryview(data)
        for off in range(0, len(view), 64 << 10):
            piece = view[off:off + (64 << 10)]
            while True:  # an oversleep is credited (up to the burst), so the mean rate holds
                now = time.monotonic()
                self.tokens = min(self.BURST, self.tokens + (now - self.refilled) * ARGS.rate_bytes)
                self.refilled = now
                if self.tokens >= len(piece):
                    break
                time.sleep((len(piece) - self.tokens) / ARGS.rate_bytes)
            self.tokens -= len(piece)
            self.wfile.write(piece)

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.send_body(body)

    def reset(self):
        # RST instead of FIN: SO_LINGER with a zero timeout, then close.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def serve_range(self, path, fault):
        size = os.path.getsize(path)
        rng = self.headers.get("Range")
        m = re.match(r"bytes=(\d+)-(\d+)$", rng or "")
        with open(path, "rb") as f:
            if not m or fault == "full200":
                data = f.read()
                return self.reply(200, data, {"Content-Type": "application/octet-stream"})
            first, last = int(m.group(1)), min(int(m.group(2)), size - 1)
            f.seek(first)
            data = f.read(last - first + 1)
        if fault == "bad_range":
            first += 1
        cr = "bytes %d-%d/%d" % (first, first + len(data) - 1, size)
        if fault == "truncate":
            self.send_response(206)
            self.send_header("Content-Range", cr)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            return self.reset()
        self.reply(206, data, {"Content-Range": cr})


class Registry(Handler):
    def authorized(self):
        auth = self.headers.get("Authorization", "")
        if ARGS.auth == "none":
            return True
        if ARGS.auth == "basic":
            if auth == "Basic " + base64.b64encode(ARGS.user.encode()).decode():
                return True
            self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": 'Basic realm="fake"'})
            return False
        tok = auth[7:] if auth.startswith("Bearer ") else None
        with LOCK:
            exp = STATE["tokens"].get(tok)
        if exp is not None and (exp == 0 or time.time() < exp):
            return True
        bump("unauthorized")
        port = self.server.server_address[1]
        challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="fake-registry",scope="repository:%s:pull"' % (
            port, ARGS.repo)
        self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
        return False

    def token(self):
        if ARGS.user and self.headers.get("Authorization") != "Basic " + base64.b64encode(ARGS.user.encode()).decode():
            return self.reply(401, b"{}")
        if self.command == "POST":
            bump("token_posts")
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if ARGS.no_post_token:
                return self.reply(405, b"{}")
        with LOCK:
            STATS["token_fetches"] += 1
            STATE["serial"] += 1
            tok = "tok-%d" % STATE["serial"]
            STATE["tokens"][tok] = time.time() + ARGS.expires_in if ARGS.expires_in else 0
        body = {"token": tok}
        if ARGS.expires_in:
            body["expires_in"] = ARGS.expires_in
        self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def control(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        with LOCK:
            STATE["faults"] = list(req.get("faults", []))
            STATE["redirect"] = bool(req.get("redirect", STATE["redirect"]))
            if req.get("expire_tokens"):
                STATE["tokens"].clear()
        self.reply(204)

    def blob(self, digest):
        bump("blob_heads" if self.command == "HEAD" else "blob_gets")
        if self.headers.get("X-Nydus-Test") == "on":
            bump("test_header")
        if not self.authorized():
            return
        fault = next_fault() if self.command == "GET" else None
        if fault in ("503", "429"):
            return self.reply(int(fault), b"busy")
        if fault == "reset":
            return self.reset()
        if fault == "huge_headers":  # 1 MiB of headers; the client must give up, not us
            self.close_connection = True
            try:
                self.send_response(206)
                for i in range(1024):
                    self.send_header("X-Filler-%d" % i, "f" * 1000)
                self.end_headers()
                self.connection.settimeout(60)
                while self.connection.recv(65536):
                    pass
            except OSError:
                pass
            return
        if fault == "hang":
            HANG.wait(3600)
            return self.reset()
        path = blob_path(digest)
        if not os.path.exists(path):
            return self.reply(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        with LOCK:
            redirect = STATE["redirect"]
        if redirect:
            url = "http://127.0.0.1:%d/store/%s?X-Signature=s3cr3t-sig" % (ARGS.store_port, digest)
            return self.reply(307, b"", {"Location": url})
        if self.command == "HEAD":
            return self.head_ok(path)
        self.serve_range(path, fault)

    def head_ok(self, path):
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.end_headers()

    def route(self):
        if self.path.startswith("http://"):  # forward-proxy request: serve it for any origin
            bump("proxied")
            parts = urlsplit(self.path)
            self.path = parts.path + ("?" + parts.query if parts.query else "")
        path = self.path.split("?")[0]
        if path == "/_control" and self.command == "POST":
            return self.control()
        if path == "/_stats":
            with LOCK:
                return self.reply(200, json.dumps(STATS).encode())
        if path == "/token":
            return self.token()
        m = BLOB_RE.match(path)
        if m and m.group(1) == ARGS.repo and self.command in ("GET", "HEAD"):
            return self.blob(m.group(2))
        if path == "/v2/" and self.authorized():
            return self.reply(200, b"{}")
        if m:
            return self.reply(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')

    def do_CONNECT(self):
        bump("connects")
        self.reply(405, b"no tunnels here")

    do_GET = do_HEAD = do_POST = route


class Store(Handler):
    def route(self):
        if self.headers.get("Authorization"):
            bump("auth_on_redirect")
            return self.reply(400, b"<Error>Only one auth mechanism allowed</Error>")
        bump("redirected_gets")
        if self.headers.get("X-Nydus-Test"):
            bump("test_header_on_redirect")
        digest = self.path.split("?")[0].rsplit("/", 1)[-1]
        path = blob_path(digest)
        if not os.path.exists(path):
            return self.reply(404)
        if self.command == "HEAD":
            self.send_response(200)
            self.send_header("Content-Length", str(os.path.getsize(path)))
            return self.end_headers()
        self.serve_range(path, None)

    do_GET = do_HEAD = route


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--blob-dir", required=True)
    p.add_argument("--repo", default="test/repo")
    p.add_argument("--auth", choices=["none", "basic", "bearer"], default="none")
    p.add_argument("--user", default="")
    p.add_argument("--expires-in", type=int, default=0)
    p.add_argument("--no-post-token", action="store_true")
    p.add_argument("--unix-socket", default="", help="also serve the object store on this Unix socket")
    p.add_argument("--latency-ms", type=float, default=0, help="delay before answering each request")
    p.add_argument("--rate-bytes", type=float, default=0, help="body bytes per second per connection (0: unpaced)")
    ARGS = p.parse_args()
    store = ThreadingHTTPServer(("127.0.0.1", 0), Store)
    ARGS.store_port = store.server_address[1]
    reg = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    servers = [store, reg]
    if ARGS.unix_socket:
        servers.append(socketserver.ThreadingUnixStreamServer(ARGS.unix_socket, Store))
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("PORTS %d %d" % (reg.server_address[1], ARGS.store_port), flush=True)
    threading.Event().wait()  # until the test kills us


if __name__ == "__main__":
    main()
