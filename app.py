"""WSGI entry point: `flask --app app …` and `gunicorn app:app` both find the app here."""

from sapien import create_app

app = create_app()
