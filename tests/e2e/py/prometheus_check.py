"""Parses nydusd's Prometheus exposition with prometheus_client's parser and
checks every value against the JSON metrics routes.

usage: prometheus_check.py SOCK MNT FIXTURE_DIR NYDUSCTL
"""
import subprocess
import sys

import nydus_http as nh

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    nh.skip("python3-prometheus-client is not installed")

SOCK, MNT, FIXTURE, NYDUSCTL = sys.argv[1:5]
ID = "/prom"
FOPS = ["getattr", "readlink", "open", "release", "read", "statfs", "getxattr", "listxattr", "opendir",
        "lookup", "readdir", "readdirplus", "access", "forget", "batch_forget"]
INF = float("inf")
SIZE_LE = [1023, 4095, 16383, 65535, 131071, 524287, 1048575, INF]
FUSE_LAT_LE = [0.0002, 0.001, 0.02, 0.05, 0.5, 1, 2, INF]
BACKEND_LAT_LE = [0.001, 0.02, 0.05, 0.1, 0.5, 1, 2, INF]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def labels_key(labels):
    """Labels as a hashable key; `le` compared as a number, not as spelled."""
    return tuple(sorted((k, float(v) if k == "le" else v) for k, v in labels.items()))


def parse(text):
    samples = {}
    types = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if fam.type == "counter":
                check(s.name.endswith("_total"), "counter sample %s ends with _total" % s.name)
            types[s.name] = fam.type
            key = (s.name, labels_key(s.labels))
            check(key not in samples, "duplicate sample %r" % (key,))
            samples[key] = s.value
    return samples, types


def value(samples, name, **labels):
    key = (name, labels_key(labels))
    check(key in samples, "missing sample %s%r" % (name, labels))
    return samples[key]


def cumulative(counts):
    out, total = [], 0
    for c in counts:
        total += c
        out.append(total)
    return out


def json_state(files):
    routes = ["/api/v1/metrics?id=" + ID, "/api/v1/metrics/backend?id=" + ID]
    if files:
        routes.append("/api/v1/metrics/files?id=" + ID)
    return [nh.call(SOCK, "GET", r).json() for r in routes]


def consistent_snapshot(files):
    """The exposition and the JSON it must match, taken while no counter moved
    (the kernel may send requests of its own; retry until a quiet pair)."""
    for _ in range(100):
        before = json_state(files)
        r = nh.call(SOCK, "GET", "/api/v1/metrics/prometheus" + ("?files=true" if files else ""))
        if before == json_state(files):
            return r, before
    raise AssertionError("metrics never held still across two reads")


def check_global(samples, g):
    lab = {"id": ID}
    check(value(samples, "nydusd_fuse_read_bytes_total", **lab) == g["data_read"], "data_read")
    check(value(samples, "nydusd_fuse_open_files", **lab) == g["nr_opens"], "nr_opens")
    check(value(samples, "nydusd_fuse_files_account_enabled", **lab) == 1, "files_account_enabled")
    for i, op in enumerate(FOPS):
        check(value(samples, "nydusd_fuse_operations_total", id=ID, op=op) == g["fop_hits"][i], "fop_hits " + op)
        check(value(samples, "nydusd_fuse_operation_errors_total", id=ID, op=op) == g["fop_errors"][i], "errors " + op)
    for le, want in zip(SIZE_LE, cumulative(g["block_count_read"])):
        check(value(samples, "nydusd_fuse_read_request_size_bytes_bucket", id=ID, le=le) == want, "size le=%s" % le)
    check(value(samples, "nydusd_fuse_read_request_size_bytes_count", **lab) == sum(g["block_count_read"]), "count")
    check(value(samples, "nydusd_fuse_read_request_size_bytes_sum", **lab) == g["data_read"], "size sum")
    for le, want in zip(FUSE_LAT_LE, cumulative(g["read_latency_dist"])):
        check(value(samples, "nydusd_fuse_read_latency_seconds_bucket", id=ID, le=le) == want, "latency le=%s" % le)
    got = value(samples, "nydusd_fuse_read_latency_seconds_sum", **lab)
    check(abs(got - g["fop_cumulative_latency_total"][4] / 1e6) < 1e-9, "latency sum")


def check_backend(samples, b):
    lab = {"id": ID, "backend_type": b["backend_type"]}
    check(value(samples, "nydusd_backend_read_requests_total", **lab) == b["read_count"], "read_count")
    check(value(samples, "nydusd_backend_read_errors_total", **lab) == b["read_errors"], "read_errors")
    for le, want in zip(SIZE_LE, cumulative(b["read_count_block_size_dist"])):
        check(value(samples, "nydusd_backend_read_request_size_bytes_bucket", le=le, **lab) == want, "be size %s" % le)
    check(value(samples, "nydusd_backend_read_request_size_bytes_sum", **lab) == b["read_amount_total"], "amount")
    by_latency = [sum(row[i] for row in b["read_latency_sizes_dist"]) for i in range(8)]
    for le, want in zip(BACKEND_LAT_LE, cumulative(by_latency)):
        check(value(samples, "nydusd_backend_read_latency_seconds_bucket", le=le, **lab) == want, "be lat %s" % le)
    got = value(samples, "nydusd_backend_read_latency_seconds_sum", **lab)
    check(abs(got - b["read_cumulative_latency_millis_total"] / 1000) < 1e-9, "be latency sum")


def check_files(samples, files):
    check(len(files) > 0, "per-file metrics are collected")
    for ino, f in files.items():
        check(value(samples, "nydusd_file_read_bytes_total", id=ID, ino=ino) == f["data_read"], "file " + ino)
        check(value(samples, "nydusd_file_operations_total", id=ID, ino=ino) == f["total_fops"], "fops " + ino)


def check_common(samples):
    check(value(samples, "nydusd_process_resident_memory_bytes") > 0, "rss")
    check(value(samples, "nydusd_process_open_fds") > 0, "fds")
    check(value(samples, "nydusd_fuse_inflight_requests") >= 0, "inflight")
    check(value(samples, "nydusd_fuse_inflight_oldest_age_seconds") >= 0, "inflight age")
    # No blob cache exists, so nothing may pretend to be one.
    check(nh.call(SOCK, "GET", "/api/v1/metrics/blobcache?id=" + ID).status == 404, "blobcache route is 404")
    check(not any(name.startswith("nydusd_blobcache_") for name, _ in samples), "no blob cache samples")


def main():
    nh.mount_rafs(SOCK, ID, FIXTURE)
    for name in ("lib.rs", "sync_io.rs"):
        with open(MNT + ID + "/" + name, "rb") as f:
            check(len(f.read()) > 0, "read " + name)

    r, (g, b) = consistent_snapshot(files=False)
    check(r.status == 200, "status %d" % r.status)
    check(r.headers.get("content-type") == CONTENT_TYPE, "content type %r" % r.headers.get("content-type"))
    samples, _ = parse(r.body.decode())
    check(g["data_read"] > 0 and b["read_count"] > 0, "the reads reached the counters")
    check_global(samples, g)
    check_backend(samples, b)
    check_common(samples)
    check(not any(name.startswith("nydusd_file_") for name, _ in samples), "per-file metrics off by default")

    r, (g, b, files) = consistent_snapshot(files=True)
    samples, _ = parse(r.body.decode())
    check_global(samples, g)
    check_files(samples, files)

    # Method rules: exactly those of the other metrics routes (contract §2.0).
    for method, body in (("POST", None), ("PUT", "{}"), ("DELETE", None), ("GET", "{}")):
        ours = nh.call(SOCK, method, "/api/v1/metrics/prometheus", body)
        theirs = nh.call(SOCK, method, "/api/v1/metrics/inflight", body)
        check(ours.status == 400 and (ours.status, ours.body) == (theirs.status, theirs.body),
              "%s (body %r): %d %r" % (method, body, ours.status, ours.body))

    out = subprocess.run([NYDUSCTL, "-S", SOCK, "metrics", "--prometheus"], check=True, capture_output=True, timeout=120)
    samples, _ = parse(out.stdout.decode())
    value(samples, "nydusd_fuse_read_bytes_total", id=ID)
    print("OK")


if __name__ == "__main__":
    main()
