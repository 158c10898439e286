"""Background worker (`python worker.py`): takes jobs from the Redis list `jobs` and records each in Postgres.

A job `sleep:<seconds>[:<name>]` works that long before it is recorded: a job in flight when the worker is stopped (an update,
a pause, a destroy) is finished first. WORKER_EVENT_LOG, when set, names a file the worker appends its stop events to.
"""
import logging
import os
import signal
import sys
import time

import psycopg2
import redis

import db

QUEUE = "jobs"
# BRPOP blocks at most this long, so a SIGTERM is noticed well within docker stop's 10-second grace period.
_POLL_SECONDS = 2
# After a failure, wait before trying again instead of spinning.
_RETRY_SECONDS = 1

log = logging.getLogger("worker")
_stopping = False
_in_job = False


def _event(text: str) -> None:
    log.info(text)
    if os.environ.get("WORKER_EVENT_LOG"):
        with open(os.environ["WORKER_EVENT_LOG"], "a") as events:
            events.write(f"{time.time():.3f} {os.getpid()} {text}\n")


def _stop(signum, _frame):
    global _stopping
    _event(f"got {signal.Signals(signum).name}{' during a job' if _in_job else ''}, stopping after the current job")
    _stopping = True


def _work(payload: str) -> None:
    kind, seconds, *_name = payload.split(":") + [""]
    if kind == "sleep" and seconds.replace(".", "", 1).isdigit():
        time.sleep(float(seconds))


def _record(conn, payload):
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO jobs_done (payload) VALUES (%s)", (payload,))


def main():
    global _in_job
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Checked up front: finding out at the first job would mean taking that job off the queue and losing it.
    if not os.environ.get("DATABASE_URL"):
        sys.exit("worker: DATABASE_URL is not set")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # The socket timeout must outlast BRPOP's own wait, or every idle poll would end in a timeout error.
    queue = redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=5,
                                 socket_timeout=_POLL_SECONDS + 5)
    conn = None
    log.info("waiting for jobs on Redis list %r", QUEUE)
    while not _stopping:
        try:
            item = queue.brpop(QUEUE, timeout=_POLL_SECONDS)
        except redis.RedisError as exc:
            log.warning("Redis unavailable: %s", exc)
            time.sleep(_RETRY_SECONDS)
            continue
        if item is None:
            continue
        raw = item[1]
        payload = raw.decode("utf-8", "replace")
        _in_job = True
        _work(payload)
        try:
            if conn is None or conn.closed:
                conn = db.connect()
                with conn, conn.cursor() as cur:
                    db.create_tables(cur, "jobs_done")
            _record(conn, payload)
        except psycopg2.Error as exc:
            log.warning("could not record job %r, putting it back: %s", payload, exc)
            # BRPOP took it from the right end; RPUSH returns it there, so it is the next job taken.
            queue.rpush(QUEUE, raw)
            if conn is not None:
                conn.close()
            conn = None
            _in_job = False
            time.sleep(_RETRY_SECONDS)
            continue
        _in_job = False
        log.info("job done: %r", payload)
    if conn is not None:
        conn.close()
    _event("stopped")


if __name__ == "__main__":
    main()
