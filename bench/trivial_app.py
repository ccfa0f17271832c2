"""The ceiling: the smallest Flask pages, served exactly like Sapien (gunicorn, same workers)."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)
ROWS = [{"rank": i, "name": f"member {i}", "xp": 1000 - i} for i in range(50)]
TABLE = """<!doctype html><title>rows</title><table>{% for row in rows %}
<tr><td>{{ row.rank }}</td><td>{{ row.name }}</td><td>{{ row.xp }}</td></tr>{% endfor %}</table>"""


TABLE_TEMPLATE = app.jinja_env.from_string(TABLE)


@app.get("/static-page")
def static_page():
    return "<!doctype html><title>ok</title><p>ok</p>"


@app.get("/table")
def table():
    return TABLE_TEMPLATE.render(rows=ROWS)


@app.get("/healthz")
def healthz():
    return "ok"
