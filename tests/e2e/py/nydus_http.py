"""HTTP/1.1 over the nydusd API Unix socket, for the Python end-to-end checks.

Exit code 77 means "skipped" to the C++ test that runs these scripts.
"""
import http.client
import json
import socket
import sys

SKIP = 77


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(SKIP)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)  # hang guard only
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(120)
        s.connect(self._path)
        self.sock = s


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else None


def call(sock, method, target, body=None):
    conn = _UnixConnection(sock)
    try:
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, target, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def mount_rafs(sock, mountpoint, fixture, iostats_files=True):
    config = {
        "version": 2,
        "backend": {"type": "localfs", "localfs": {"dir": fixture + "/blobs"}},
        "cache": {"type": ""},
        "rafs": {"mode": "direct", "iostats_files": iostats_files},
    }
    body = json.dumps({"source": fixture + "/rafs-v6-2.2.boot", "fs_type": "rafs", "config": json.dumps(config)})
    r = call(sock, "POST", "/api/v1/mount?mountpoint=" + mountpoint, body)
    if r.status != 204:
        raise AssertionError("mount failed: %d %r" % (r.status, r.body))
