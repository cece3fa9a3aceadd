"""Lab 15 - a small FastAPI service that puts the earlier labs together.

The service (labs/lab15/app.py, built by create_app()) uses:

  * an import hook (as in lab 02): its configuration is the module
    `lab15_config`, which has no file - a MetaPathFinder in confighook.py
    builds it from defaults and LAB15_* environment variables;
  * descriptors (settings.py): every setting is a validating descriptor, so
    a bad value fails at load time with the setting's name and the reason;
  * Pydantic v2 request models, one of them built at run time with
    create_model() so its limits come from the settings, and a model
    validator for a rule that spans two fields;
  * asyncio: /fanout runs concurrent lookups with asyncio.gather, /slow is
    cut off by asyncio.timeout() (new in 3.11) with a 504;
  * tracemalloc: /memory returns the top allocation sites (file, line,
    size, count), /alloc holds memory so they have something to show;
  * pluggy (plugins.py): plugins transform requests and responses; a
    wrapper counts every hook call;
  * Prometheus: /metrics, in the exposition format, from the app's own
    CollectorRegistry (requests, latency, plugin calls, encryptions);
  * Fernet: /encrypt and /decrypt.

Endpoints: GET /health, GET /config, POST /echo, POST /encrypt,
POST /decrypt, GET /fanout, GET /slow, POST /alloc, DELETE /alloc,
GET /memory, GET /metrics (and FastAPI's own /docs).

Run it from the repository root (it is the package labs.lab15):

    .venv/shared/bin/python -m labs.lab15                # serve on 127.0.0.1:8015
    .venv/shared/bin/python -m labs.lab15 --port 9000    # or LAB15_PORT=9000
    .venv/shared/bin/python -m labs.lab15 --verify       # the check below

or from anywhere by path:

    .venv/shared/bin/python /path/to/labs/lab15/__main__.py --verify

--verify runs the pytest suite in labs/lab15/tests in-process, then starts
the app under uvicorn on a free loopback port and requests /health and
/metrics over real HTTP, and prints "VERIFY lab15: ... ok" (exit status 0)
or a line with FAIL (non-zero exit status).  The suite also runs alone:

    .venv/shared/bin/python -m pytest -q labs/lab15

Needs fastapi, pydantic, uvicorn, httpx, pluggy, prometheus-client,
cryptography and pytest (labs/requirements.txt; `make deps`).
"""
