"""WSGI entry point: `flask --app app …` and `gunicorn app:app` both find the app here."""

import gc

from sapien import create_app

app = create_app()
# Everything made so far (modules, the app, its templates' caches) lives as long as the process: keep it out
# of the collector's full passes, whose pauses over that heap would land on whichever request runs then.
gc.freeze()
