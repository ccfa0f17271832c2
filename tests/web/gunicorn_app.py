"""The app as gunicorn serves it in the cross-process tests: the test run's settings (from the environment,
as JSON) and a response header naming the worker process that answered (tests only)."""

from __future__ import annotations

import json
import os

from sapien import create_app

app = create_app(json.loads(os.environ["SAPIEN_TEST_OVERRIDES"]))
_serve = app.wsgi_app


def _with_worker_pid(environ, start_response):
    def start(status, headers, exc_info=None):
        return start_response(status, [*headers, ("X-Worker-Pid", str(os.getpid()))], exc_info)

    return _serve(environ, start)


app.wsgi_app = _with_worker_pid
