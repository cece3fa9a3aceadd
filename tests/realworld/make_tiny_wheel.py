# SPDX-License-Identifier: MIT
"""Write archtrace_tinypkg-0.1-py3-none-any.whl: the smallest pure-Python
wheel pip installs, for the real-world test of `python -m pip install`
under archtrace without a network.  Run once; the wheel is kept in git.

    python3 tests/realworld/make_tiny_wheel.py tests/realworld
"""
import base64
import hashlib
import sys
import zipfile

NAME, VERSION = "archtrace_tinypkg", "0.1"
DIST = f"{NAME}-{VERSION}.dist-info"
FILES = {
    f"{NAME}/__init__.py": 'def hello():\n    return "hello from tinypkg"\n',
    f"{DIST}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
                        "Summary: a tiny wheel for archtrace's tests\n",
    f"{DIST}/WHEEL": "Wheel-Version: 1.0\nGenerator: make_tiny_wheel.py\n"
                     "Root-Is-Purelib: true\nTag: py3-none-any\n",
    f"{DIST}/top_level.txt": f"{NAME}\n",
}


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def main(outdir):
    path = f"{outdir}/{NAME}-{VERSION}-py3-none-any.whl"
    record = "".join(record_line(p, d.encode()) for p, d in FILES.items()) + f"{DIST}/RECORD,,\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in FILES.items():
            info = zipfile.ZipInfo(p, date_time=(2026, 1, 1, 0, 0, 0))
            z.writestr(info, d)
        z.writestr(zipfile.ZipInfo(f"{DIST}/RECORD", date_time=(2026, 1, 1, 0, 0, 0)), record)
    print(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
