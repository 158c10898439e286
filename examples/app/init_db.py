"""The app's init command (`python init_db.py`): creates the tables and records that it ran."""
import time

import psycopg2

import db

# The init command may run right after the Postgres container starts, before it accepts connections.
_WAIT_SECONDS = 60


def wait_for_postgres():
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        try:
            db.connect(timeout=3).close()
            return
        except psycopg2.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise
            print(f"init_db: waiting for Postgres ({str(exc).strip()})", flush=True)
            time.sleep(2)


def main():
    wait_for_postgres()
    with db.transaction() as cur:
        db.create_tables(cur, "visits", "participants", "init_runs")
        # Tests count these rows to see how often the init command ran.
        cur.execute("INSERT INTO init_runs DEFAULT VALUES")
        cur.execute("SELECT count(*) FROM init_runs")
        (runs,) = cur.fetchone()
    print(f"init_db: tables ready (init has run {runs} time(s))", flush=True)


if __name__ == "__main__":
    main()
