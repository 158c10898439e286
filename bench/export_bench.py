"""Benchmark: `invoke export` (labstack.data.export) against `pg_dump -Fc` + `tar czf` run on the host and copied back with scp.

One fresh test bed host holds an app laid out as deploy-app.sh lays it out: its Postgres with >= 200k rows and a
data folder of >= 200 MB (half random bytes, half text, so gzip has both kinds of work). In the same run, rounds
alternate which side goes first. labstack's export is the whole of labstack.data.export.export_app (snapshot, dump,
restore-verification, archive, manifest, checksums); the raw side does no verification, so the time
verification takes on its own is printed too. Run as root after `bash setup.sh --tests`:

    venv/bin/python bench/export_bench.py [--rounds N] [--rows N] [--data-mb N]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components import layout  # noqa: E402
from bench.common import open_testbed, spread  # noqa: E402
from labstack.data import export  # noqa: E402
from tests.ops.conftest import psql, start_app_postgres, target_of  # noqa: E402

APP = "bench"


def seed(host, rows: int, data_mb: int) -> tuple[int, int]:
    """Fill the app's database and data folder; returns (database bytes, data folder bytes)."""
    psql(host, APP, f"""
        CREATE TABLE participants (id serial PRIMARY KEY, code text NOT NULL, joined timestamptz DEFAULT now());
        INSERT INTO participants (code) SELECT md5(g::text) FROM generate_series(1, {rows // 10}) g;
        CREATE TABLE answers (participant int, question int, answer text);
        INSERT INTO answers SELECT g % {rows // 10} + 1, g % 40, md5(g::text) || repeat('y', g % 120)
          FROM generate_series(1, {rows - rows // 10}) g;
        CREATE INDEX ON answers (participant);""")
    folder = f"{layout.name('APP_SRV', APP)}/data"
    files = max(2, data_mb // 10)
    host.run(f"sudo sh -c 'mkdir -p {folder}/uploads {folder}/logs && "
             f"for i in $(seq 1 {files // 2}); do head -c 10M /dev/urandom > {folder}/uploads/file$i.bin; "
             f"head -c 7680K /dev/urandom | base64 -w 100 > {folder}/logs/log$i.txt; done'", timeout=900)
    db_bytes = int(psql(host, APP, f"SELECT pg_database_size('{APP}');").strip())
    data_bytes = int(host.run(f"sudo du -sb {folder}").stdout.split()[0])
    return db_bytes, data_bytes


def labstack_export(host, destination: Path, verify_times: list[float]) -> float:
    verify = export.verify_dump

    def timed_verify(*args, **kwargs):
        start = time.perf_counter()
        try:
            return verify(*args, **kwargs)
        finally:
            verify_times.append(time.perf_counter() - start)

    export.verify_dump = timed_verify  # export_app calls it by its module name
    try:
        start = time.perf_counter()
        export.export_app(target_of(host, "bench"), "bench", APP, exports_dir=destination)
        return time.perf_counter() - start
    finally:
        export.verify_dump = verify


def raw_export(host, destination: Path) -> float:
    """pg_dump -Fc and tar czf into files on the host, then scp both back."""
    srv = layout.name("APP_SRV", APP)
    start = time.perf_counter()
    host.run(f"cid=$(sudo docker ps -q --filter label={layout.LABEL_APP}={APP} "
             f"--filter label={layout.LABEL_ROLE}=postgres) && "
             f"sudo docker exec $cid pg_dump -Fc -U {APP} -d {APP} > /tmp/raw.dump && "
             f"sudo tar czf /tmp/raw.tar.gz -C {srv} data && sudo chmod 0644 /tmp/raw.tar.gz", timeout=3600)
    options = host.ssh_base()[1:-3]  # the pinned key and known host, without ssh, -p PORT and user@ip
    subprocess.run(["scp", "-q", *options, "-P", str(host.port), f"{host.user}@{host.ip}:/tmp/raw.dump",
                    f"{host.user}@{host.ip}:/tmp/raw.tar.gz", str(destination)], check=True, timeout=3600)
    elapsed = time.perf_counter() - start
    host.run("sudo rm -f /tmp/raw.dump /tmp/raw.tar.gz")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument("--rows", type=int, default=250_000, help="rows in the database (default 250000)")
    parser.add_argument("--data-mb", type=int, default=220, help="size of the data folder (default 220 MB)")
    args = parser.parse_args()
    testbed = open_testbed()
    if testbed is None:
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="labstack-export-bench-"))
    try:
        host = testbed.new_host()
        start_app_postgres(host, APP)
        host.run(f"sudo mkdir -p {layout.name('APP_ETC', APP)}")  # the app counts as deployed
        db_bytes, data_bytes = seed(host, args.rows, args.data_mb)
        print(f"database {db_bytes / 1e6:.0f} MB ({args.rows} rows), data folder {data_bytes / 1e6:.0f} MB",
              flush=True)
        ours, raw, verify_times = [], [], []
        for n in range(args.rounds):
            sides = [("labstack", lambda d: labstack_export(host, d, verify_times), ours),
                     ("raw", lambda d: raw_export(host, d), raw)]
            for name, run, results in (sides if n % 2 == 0 else sides[::-1]):
                destination = scratch / f"{name}-{n}"
                destination.mkdir()
                results.append(run(destination))
                print(f"round {n + 1}: {name} {results[-1]:.2f}s", flush=True)
                shutil.rmtree(destination)
                time.sleep(1)  # each export starts a second apart: export_app names them by the second
        ratios = [r / o for o, r in zip(ours, raw)]
        total_mb = (db_bytes + data_bytes) / 1e6
        print(f"\n{args.rounds} alternated rounds on one host; median (min-max)")
        print(f"labstack export (verified)    {spread(ours)}  {total_mb / statistics.median(ours):6.1f} MB/s")
        print(f"pg_dump + tar czf + scp       {spread(raw)}  {total_mb / statistics.median(raw):6.1f} MB/s")
        print(f"throughput ratio (labstack/raw) {statistics.median(ratios):.2f}x  per round "
              f"{' '.join(f'{x:.2f}' for x in ratios)}")
        print(f"verification alone (restore into a scratch database + row counts): {spread(verify_times)}")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        testbed.stop_all()


if __name__ == "__main__":
    sys.exit(main())
