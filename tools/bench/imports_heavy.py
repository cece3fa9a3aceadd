"""Import 200+ standard-library modules (each in a fresh interpreter run)."""
import importlib
import sys

NAMES = """abc argparse array ast asyncio base64 bdb binascii bisect bz2 calendar cmath cmd code
codecs codeop collections colorsys compileall concurrent.futures configparser contextlib
contextvars copy copyreg cProfile csv ctypes dataclasses datetime decimal difflib dis doctest
email email.mime.text email.parser encodings.idna enum errno faulthandler filecmp fileinput
fnmatch fractions ftplib functools gc getopt getpass gettext glob graphlib gzip hashlib heapq
hmac html html.parser http http.client http.cookies http.server imaplib inspect io ipaddress
itertools json json.decoder keyword linecache locale logging logging.handlers lzma mailbox
marshal math mimetypes mmap modulefinder multiprocessing multiprocessing.pool netrc numbers
operator optparse os pathlib pdb pickle pickletools pkgutil platform plistlib poplib pprint
profile pstats py_compile pyclbr pydoc queue quopri random re reprlib rlcompleter runpy sched
secrets select selectors shelve shlex shutil signal site smtplib socket socketserver sqlite3
ssl stat statistics string stringprep struct subprocess symtable sysconfig tabnanny tarfile
tempfile textwrap threading timeit token tokenize tomllib trace traceback tracemalloc tty
types typing unicodedata unittest unittest.mock urllib urllib.error urllib.parse
urllib.request urllib.response uuid warnings wave weakref webbrowser wsgiref
wsgiref.simple_server xml xml.dom xml.dom.minidom xml.etree.ElementTree xml.parsers.expat
xml.sax xmlrpc xmlrpc.client xmlrpc.server zipapp zipfile zipimport zlib zoneinfo
asyncio.subprocess concurrent email.utils email.headerregistry encodings.utf_16 importlib.util
importlib.metadata importlib.resources json.encoder logging.config lib2to3 msilib sndhdr
""".split()

if __name__ == "__main__":
    ok = 0
    for name in NAMES:
        try:
            importlib.import_module(name)
            ok += 1
        except ImportError:
            pass
    print("imported", ok, "modules;", len(sys.modules), "in sys.modules")
