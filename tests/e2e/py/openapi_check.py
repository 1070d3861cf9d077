"""Drives every route of a live nydusd, error cases included, and validates
each status code and body against docs/openapi.yaml.

usage: openapi_check.py SOCK MNT FIXTURE_DIR OPENAPI_YAML [--dump]
"""
import json
import sys

import nydus_http as nh

try:
    import jsonschema
    import yaml
except ImportError as e:
    nh.skip("python3-jsonschema / python3-yaml not installed (%s)" % e)

SOCK, MNT, FIXTURE, SPEC = sys.argv[1:5]
DUMP = "--dump" in sys.argv
MP = "/oa"
MOUNT_BODY = None  # set in main()


def cases():
    """(method, target, body) in an order that keeps the daemon useful to the end."""
    q = "?mountpoint=" + MP
    bad_json = '{"source": '
    return [
        ("GET", "/api/v1/daemon", None),
        ("GET", "/api/v1/daemon", "{}"),
        ("POST", "/api/v1/daemon", None),
        ("PUT", "/api/v1/daemon", '{"log_level":"INFO"}'),
        ("PUT", "/api/v1/daemon", '{"log_level":"warning"}'),
        ("PUT", "/api/v1/daemon", '{"level":"info"}'),
        ("PUT", "/api/v1/daemon", None),
        ("GET", "/api/v2/daemon", None),
        ("PUT", "/api/v2/daemon", '{"log_level":"info"}'),
        ("DELETE", "/api/v2/daemon", None),
        ("GET", "/api/v1/daemon/events", None),
        ("PUT", "/api/v1/daemon/events", None),
        ("POST", "/api/v1/mount" + q, MOUNT_BODY),
        ("POST", "/api/v1/mount" + q, MOUNT_BODY),
        ("POST", "/api/v1/mount", MOUNT_BODY),
        ("POST", "/api/v1/mount" + q, bad_json),
        ("POST", "/api/v1/mount?mountpoint=/x", json.dumps({"source": "/nope", "fs_type": "ext4", "config": ""})),
        ("PUT", "/api/v1/mount" + q, MOUNT_BODY),
        ("PUT", "/api/v1/mount?mountpoint=/absent", MOUNT_BODY),
        ("GET", "/api/v1/mount" + q, None),
        ("GET", "/api/v1/daemon/backend" + q, None),
        ("GET", "/api/v1/daemon/backend", None),
        ("GET", "/api/v1/daemon/backend?mountpoint=/absent", None),
        ("GET", "/api/v1/metrics?id=" + MP, None),
        ("GET", "/api/v1/metrics?id=/absent", None),
        ("POST", "/api/v1/metrics", None),
        ("GET", "/api/v1/metrics/files?id=" + MP, None),
        ("GET", "/api/v1/metrics/files?id=" + MP + "&latest=true", None),
        ("GET", "/api/v1/metrics/files?id=/absent", None),
        ("GET", "/api/v1/metrics/pattern?id=" + MP, None),
        ("GET", "/api/v1/metrics/pattern?id=/absent", None),
        ("GET", "/api/v1/metrics/backend?id=" + MP, None),
        ("GET", "/api/v1/metrics/backend?id=/absent", None),
        ("GET", "/api/v1/metrics/blobcache?id=" + MP, None),
        ("GET", "/api/v1/metrics/inflight", None),
        ("PUT", "/api/v1/metrics/inflight", None),
        ("GET", "/api/v1/metrics/prometheus", None),
        ("POST", "/api/v1/metrics/prometheus", None),
        ("GET", "/api/v1/config", None),
        ("GET", "/api/v1/config?id=" + MP, None),
        ("PUT", "/api/v1/config?id=" + MP, '{"registry_auth":"dXNlcjpwYXNz"}'),
        ("PUT", "/api/v1/config", '{"no_such_key":"1"}'),
        ("PUT", "/api/v1/config", '{"registry_auth":1}'),
        ("DELETE", "/api/v1/config", None),
        ("GET", "/api/v2/blobs?domain_id=d", None),
        ("GET", "/api/v2/blobs", None),
        ("PUT", "/api/v2/blobs", json.dumps({"type": "bootstrap", "id": "b", "domain_id": "d",
                                             "config": {"id": "b", "backend_type": "localfs",
                                                        "backend_config": {"dir": "/tmp"},
                                                        "cache_type": "fscache",
                                                        "cache_config": {"work_dir": "/tmp"}}})),
        ("PUT", "/api/v2/blobs", '{"type":"bootstrap"}'),
        ("DELETE", "/api/v2/blobs?domain_id=d", None),
        ("DELETE", "/api/v2/blobs?blob_id=b", None),
        ("DELETE", "/api/v2/blobs", None),
        ("PUT", "/api/v1/daemon/fuse/takeover", None),
        ("GET", "/api/v1/daemon/fuse/takeover", None),
        ("PUT", "/api/v1/daemon/start", None),
        ("GET", "/api/v1/daemon/start", None),
        ("GET", "/api/v1/daemon/fuse/sendfd", None),
        ("PUT", "/api/v1/daemon/fuse/sendfd", None),
        ("GET", "/api/v1/nope", None),
        ("GET", "/api/v1/daemon/", None),
        ("GET", "/api/v1/daemon?x=\"", None),
        ("DELETE", "/api/v1/mount" + q, None),
        ("DELETE", "/api/v1/mount" + q, None),
        ("GET", "/api/v1/daemon/exit", None),
        ("PUT", "/api/v1/daemon/exit", None),
    ]


def to_json_schema(node):
    """OpenAPI 3.0 schema objects -> JSON Schema (draft 4 style): `nullable`
    becomes a "null" alternative; OpenAPI-only keywords are dropped."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items()
           if k not in ("nullable", "example", "description", "readOnly", "writeOnly", "deprecated")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def operation(spec, path, method):
    item = spec["paths"].get(path)
    if item is None:
        return None
    return item.get(method.lower())


def resolve(spec, node):
    """Follows a local $ref ("#/components/responses/X") to what it names."""
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def validate(spec, components, method, target, body, reply):
    path = target.split("?", 1)[0]
    op = operation(spec, path, method)
    if op is None:
        # Not a documented operation: must be answered by the documented default rules.
        op = spec["x-undocumented-request"]
    responses = op["responses"]
    if body is not None and 200 <= reply.status < 300:
        # A body the daemon accepted must fit the documented request schema too.
        req = resolve(spec, op.get("requestBody"))
        if req is None:
            raise AssertionError("%s %s accepted a body the spec does not document" % (method, target))
        schema = to_json_schema(req["content"]["application/json"]["schema"])
        schema["components"] = components
        try:
            jsonschema.validate(json.loads(body), schema)
        except jsonschema.ValidationError as e:
            raise AssertionError("%s %s request body: %s" % (method, target, e.message))
    want = resolve(spec, responses.get(str(reply.status)))
    if want is None:
        raise AssertionError("%s %s: status %d is not documented (%s)" % (method, target, reply.status, list(responses)))
    content = want.get("content")
    ctype = reply.headers.get("content-type")
    if not content:
        if reply.body:
            raise AssertionError("%s %s: %d documents no body, got %r" % (method, target, reply.status, reply.body))
        return
    media = content.get(ctype)
    if media is None:
        raise AssertionError("%s %s: content type %r not in %s" % (method, target, ctype, list(content)))
    if ctype != "application/json":
        return
    schema = to_json_schema(media["schema"])
    schema["components"] = components
    try:
        jsonschema.validate(json.loads(reply.body), schema)
    except jsonschema.ValidationError as e:
        raise AssertionError("%s %s -> %d %s: %s" % (method, target, reply.status, reply.body[:300], e.message))


def main():
    global MOUNT_BODY
    config = {"version": 2, "backend": {"type": "localfs", "localfs": {"dir": FIXTURE + "/blobs"}},
              "cache": {"type": ""}, "rafs": {"mode": "direct", "iostats_files": True, "access_pattern": True,
                                               "latest_read_files": True}}
    MOUNT_BODY = json.dumps({"source": FIXTURE + "/rafs-v6-2.2.boot", "fs_type": "rafs",
                             "config": json.dumps(config)})
    with open(SPEC) as f:
        spec = yaml.safe_load(f)
    components = to_json_schema(spec["components"])
    seen = set()
    failures = []
    for method, target, body in cases():
        reply = nh.call(SOCK, method, target, body)
        if target == "/api/v1/mount?mountpoint=" + MP and method == "POST" and reply.status == 204:
            with open(MNT + MP + "/lib.rs", "rb") as f:
                f.read()  # give the metrics routes something to report
        if DUMP:
            print(method, target, reply.status, reply.headers.get("content-type"), reply.body[:400])
        seen.add((target.split("?", 1)[0], method.lower()))
        try:
            validate(spec, components, method, target, body, reply)
        except AssertionError as e:
            failures.append(str(e))
    for path, item in spec["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "delete") and (path, method) not in seen:
                failures.append("%s %s is documented but never exercised" % (method.upper(), path))
    for f in failures:
        print("FAIL:", f)
    if failures:
        sys.exit(1)
    print("OK: %d requests validated" % len(cases()))


if __name__ == "__main__":
    main()
