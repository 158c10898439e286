"""Postgres helpers shared by the web app, the init command and the worker."""
import os
from contextlib import contextmanager

import psycopg2

TABLES = {
    "visits": "CREATE TABLE IF NOT EXISTS visits ("
              " id bigserial PRIMARY KEY, visited_at timestamptz NOT NULL DEFAULT now())",
    "participants": "CREATE TABLE IF NOT EXISTS participants ("
                    " id bigserial PRIMARY KEY, host text NOT NULL, launched_at timestamptz NOT NULL DEFAULT now())",
    "init_runs": "CREATE TABLE IF NOT EXISTS init_runs ("
                 " id bigserial PRIMARY KEY, ran_at timestamptz NOT NULL DEFAULT now())",
    "jobs_done": "CREATE TABLE IF NOT EXISTS jobs_done ("
                 " id bigserial PRIMARY KEY, payload text NOT NULL, done_at timestamptz NOT NULL DEFAULT now())",
}

# Any fixed number works; it only has to be the same in every process that creates tables.
_SCHEMA_LOCK = 7_061_021


def connect(timeout=5):
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    return psycopg2.connect(url, connect_timeout=timeout)


@contextmanager
def transaction(timeout=5):
    """A cursor in one transaction: committed on success, rolled back on error, connection closed either way."""
    conn = connect(timeout)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def create_tables(cur, *names):
    # Two processes running CREATE TABLE IF NOT EXISTS at the same moment can still both try to create the table
    # (and one fails on pg_type's unique index), so creators take a transaction-scoped lock first.
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
    for name in names:
        cur.execute(TABLES[name])
