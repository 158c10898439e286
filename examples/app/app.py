"""Example experiment app that labstack deploys: a Flask web process backed by Postgres and Redis."""
import functools
import logging
import os
import re
import socket
from pathlib import Path

import psycopg2.errors
import redis
from flask import Flask, Response, abort, request

import db

# Health checks must answer well within the deploy hooks' and Caddy's own timeouts.
_CHECK_TIMEOUT = 2
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_NO_PARTICIPANTS = "table participants does not exist: the init command (python init_db.py) has not run"

app = Flask(__name__)
# Bounds what POST /files can write to the data directory in one request.
app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
# gunicorn's error log goes to stderr, so these lines reach the container's log.
log = logging.getLogger("gunicorn.error")


@functools.cache
def _redis():
    # One client (and connection pool) per worker process, made on first use so a missing REDIS_URL only
    # fails the requests that need Redis.
    return redis.Redis.from_url(os.environ["REDIS_URL"],
                                socket_connect_timeout=_CHECK_TIMEOUT, socket_timeout=_CHECK_TIMEOUT)


def _db_ok():
    try:
        with db.transaction(timeout=_CHECK_TIMEOUT) as cur:
            cur.execute("SELECT 1")
        return True
    except Exception as exc:  # any failure, whatever its kind, means "not healthy"
        log.warning("health: Postgres check failed: %s", exc)
        return False


def _redis_ok():
    try:
        return bool(_redis().ping())
    except Exception as exc:  # as above
        log.warning("health: Redis check failed: %s", exc)
        return False


@app.get("/health")
def health():
    if os.environ.get("EXAMPLE_BREAK_HEALTH"):
        return {"ok": False, "broken": "EXAMPLE_BREAK_HEALTH is set"}, 503
    db_ok, redis_ok = _db_ok(), _redis_ok()
    ok = db_ok and redis_ok
    return {"ok": ok, "db": db_ok, "redis": redis_ok}, 200 if ok else 503


@app.get("/")
def index():
    return {"app": os.environ.get("LABSTACK_APP"), "version": os.environ.get("APP_VERSION", "dev"),
            "hostname": socket.gethostname()}


def _visit_counts(cur, redis_count):
    cur.execute("SELECT count(*) FROM visits")
    (db_count,) = cur.fetchone()
    return {"db_visits": db_count, "redis_visits": redis_count}


@app.post("/visits")
def add_visit():
    with db.transaction() as cur:
        # Created here too, not only by init, so the app works before its init command ever ran.
        db.create_tables(cur, "visits")
        cur.execute("INSERT INTO visits DEFAULT VALUES")
        return _visit_counts(cur, _redis().incr("visits"))


@app.get("/visits")
def visits():
    with db.transaction() as cur:
        db.create_tables(cur, "visits")
        return _visit_counts(cur, int(_redis().get("visits") or 0))


@app.get("/env/<name>")
def env(name):
    # Lets tests check that env values (quotes, $, spaces, newlines) reach the container verbatim. It would show
    # secrets such as DATABASE_URL too, so it answers only where EXAMPLE_DEBUG_ENV=1 is set on purpose.
    if os.environ.get("EXAMPLE_DEBUG_ENV") != "1":
        abort(404)
    value = os.environ.get(name)
    if value is None:
        abort(404)
    return Response(value, mimetype="text/plain")


def _data_file(name):
    # "." and ".." match the pattern but name directories, not files.
    if not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
        abort(400, description="file names may only use A-Z a-z 0-9 . _ -")
    return Path(os.environ.get("LABSTACK_DATA_DIR", "/data")) / name


@app.post("/files/<name>")
def write_file(name):
    path = _data_file(name)
    body = request.get_data()
    path.write_bytes(body)
    return {"written": name, "bytes": len(body)}, 201


@app.get("/files/<name>")
def read_file(name):
    path = _data_file(name)
    if not path.is_file():
        abort(404)
    return Response(path.read_bytes(), mimetype="application/octet-stream")


@app.post("/launch")
def launch():
    host = request.host
    try:
        with db.transaction() as cur:
            cur.execute("INSERT INTO participants (host) VALUES (%s)", (host,))
    except psycopg2.errors.UndefinedTable:
        return {"launched": False, "error": _NO_PARTICIPANTS}, 500
    return {"launched": True, "url": f"https://{host}/"}


@app.get("/launches")
def launches():
    try:
        with db.transaction() as cur:
            cur.execute("SELECT count(*) FROM participants")
            (count,) = cur.fetchone()
    except psycopg2.errors.UndefinedTable:
        return {"launches": None, "error": _NO_PARTICIPANTS}, 500
    return {"launches": count}
