#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fetch_profile_proto.py - pprof's official profile.proto, pinned, into OUT.

The pprof format is defined by proto/profile.proto in github.com/google/pprof.
It is taken from the Go module proxy (a registry this project may use) at a
pinned version and checked against the module zip's SHA-256, never
copied into the repository; protoc-c compiles it at build time.  Go's own
module cache is used when it already holds that zip.

Usage: tools/fetch_profile_proto.py OUT   (e.g. build/proto/profile.proto)
Exit status: 0, or 1 with one line on stderr (download failed, hash wrong).
"""
import hashlib
import io
import os
import sys
import urllib.request
import zipfile

MODULE = "github.com/google/pprof"
VERSION = "v0.0.0-20261105003125-4bf881d7fb0b"
SHA256 = "e303ea4392d969e8acb3c6aa59dd81cdc261bf1c799971ea4d070cbc4fb28598"
MEMBER = f"{MODULE}@{VERSION}/proto/profile.proto"
PROXY = os.environ.get("GOPROXY_URL", "https://proxy.golang.org")


def module_zip():
    cached = os.path.join(os.environ.get("GOMODCACHE", os.path.expanduser("~/go/pkg/mod")),
                          "cache/download", MODULE, "@v", VERSION + ".zip")
    if os.path.isfile(cached):
        with open(cached, "rb") as f:
            return f.read()
    url = f"{PROXY}/{MODULE}/@v/{VERSION}.zip"
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read()


def main():
    if len(sys.argv) != 2:
        print("usage: tools/fetch_profile_proto.py OUT", file=sys.stderr)
        return 1
    out = sys.argv[1]
    try:
        data = module_zip()
    except OSError as e:
        print(f"fetch_profile_proto: cannot download {MODULE}@{VERSION}: {e}", file=sys.stderr)
        return 1
    got = hashlib.sha256(data).hexdigest()
    if got != SHA256:
        print(f"fetch_profile_proto: {MODULE}@{VERSION}.zip has SHA-256 {got}, expected {SHA256}",
              file=sys.stderr)
        return 1
    proto = zipfile.ZipFile(io.BytesIO(data)).read(MEMBER)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out + ".tmp", "wb") as f:
        f.write(proto)
    os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
