"""Benchmark: script jobs (labstack.jobs.server) against plain ssh + nohup and scp -r, on the same test bed host, in one run.

Latency = from the call on this machine to the moment the job's script runs (the script writes `date +%s.%N`; the
test bed hosts share this machine's clock). Sides: `jobs.submit` (container of python:3.11-slim, the default) with
the container of that image that waits once a job of the image has started (the node agent's job-spare; the bench
waits, off the clock, until it is there), the same with none waiting (`cold`: the first job of an image on a server, or the
first after a reboot), `jobs.submit(on_host=True)`, one `ssh host 'cat > run.sh && nohup sh run.sh &'` (the issue's yardstick) and one
`ssh host 'cat > run.sh && docker run -d ... sh run.sh'` (the same container work done by hand: a container's start
alone costs the engine about as much as the whole nohup line). Throughput = bytes per second
of `jobs.fetch` of a folder (sha256-verified, temp name then rename) against `scp -r` of the same folder. Rounds
alternate which side goes first; medians with their range, and the median of the per-round ratios. Goals: latency <= 1.5x, throughput >= 0.8x.

    venv/bin/python bench/job_bench.py [--rounds N] [--data-mb N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import open_testbed, spread  # noqa: E402
from components.layout import JOBS_SRV  # noqa: E402
from labstack.jobs import server as jobs  # noqa: E402
from labstack.ssh.target import SshTarget  # noqa: E402

STAMP_SCRIPT = "date +%s.%N > started\nsleep 1\n"


def started_at(host, path: str, seconds: float = 60) -> float:
    # The script's own timestamp is the measure, so looking later changes nothing; looking at once would put this
    # poll's ssh handshakes on the two cores while the engine is still starting the container.
    time.sleep(1.0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = host.run(f"sudo cat {path} 2>/dev/null || true").stdout.strip()
        if out:
            return float(out)
        time.sleep(0.2)
    raise RuntimeError(f"{path} never appeared")


def spare_ready(host, seconds: float = 60) -> None:
    """Wait (off the clock) until a container of the job image waits for the next job, as it does once a job of
    that image has started (the node agent's job-spare)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if host.docker("ps", "-q", "--filter", "name=^labstack-job-spare-").stdout.strip():
            return
        time.sleep(0.2)
    raise RuntimeError("no waiting container appeared")


def no_spare(host) -> None:
    """Remove the waiting container and its folder (off the clock): the first job of an image on a server."""
    host.exec_in(["sh", "-c", "docker ps -aq --filter name=^labstack-job-spare- | xargs -r docker rm -f >/dev/null; "
                  f"rm -rf {JOBS_SRV}/.spare-*"])


def labstack_latency(target, host, script: Path, on_host: bool, spare: bool = True) -> float:
    if not on_host:
        spare_ready(host) if spare else no_spare(host)
    start = time.time()
    job_id = jobs.submit(target, script, [], on_host=on_host)
    return started_at(host, f"{JOBS_SRV}/{job_id}/started") - start


def raw_latency(target, host, script: Path, round_no: int) -> float:
    folder = f"/home/ubuntu/raw-{round_no}"
    start = time.time()
    subprocess.run(target.ssh_argv(f"mkdir -p {folder} && cd {folder} && cat > run.sh && "
                                   "{ nohup sh run.sh >log 2>&1 </dev/null & }"),
                   input=script.read_bytes(), check=True, capture_output=True)
    return started_at(host, f"{folder}/started") - start


def raw_docker_latency(target, host, script: Path, round_no: int) -> float:
    folder = f"/home/ubuntu/docker-{round_no}"
    start = time.time()
    subprocess.run(target.ssh_argv(f"mkdir -p {folder} && cd {folder} && cat > run.sh && "
                                   f"docker run -d -v {folder}:/job -w /job {jobs.DEFAULT_IMAGE} sh run.sh"),
                   input=script.read_bytes(), check=True, capture_output=True)
    return started_at(host, f"{folder}/started") - start


def rounds(ratios: list[float]) -> str:
    return " ".join(f"{r:.2f}" for r in ratios)


def scp_argv(target: SshTarget, remote: str, local: Path) -> list[str]:
    return ["scp", "-q", "-r", "-i", str(target.key_path), "-P", str(target.port), "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={target.known_hosts_file()}",
            "-o", "BatchMode=yes", f"{target.user}@{target.host}:{remote}", str(local)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-mb", type=int, default=100)
    args = parser.parse_args()
    testbed = open_testbed()
    if testbed is None:
        return 2
    host = testbed.new_host()
    work = Path(tempfile.mkdtemp(prefix="job-bench-"))
    try:
        host.install_hooks()  # what HostSetup copies on a server
        target = SshTarget(host=host.ip, user=host.user, key_path=Path(host.key_path),
                           known_hosts=host.known_hosts_line(), stack="bench")
        script = work / "run.sh"
        script.write_text(STAMP_SCRIPT)
        data = work / "data"
        data.mkdir()
        files = max(2, args.data_mb // 5)
        for i in range(files):
            (data / f"f{i}.bin").write_bytes(os.urandom(args.data_mb * 1024 * 1024 // files))
        size = sum(p.stat().st_size for p in data.iterdir())
        holder = jobs.submit(target, script, [data])  # a container job: its image gets a waiting container
        jobs.wait(target, holder)
        host.run(f"sudo cp -r {JOBS_SRV}/{holder}/data /home/ubuntu/scpdata && sudo chown -R ubuntu /home/ubuntu/scpdata")
        print(f"host {host.name}; {files} files, {size / 1e6:.0f} MB; {args.rounds} rounds, order alternating")

        latency = {"labstack (container)": [], "labstack (container, cold)": [], "labstack --on-host": [],
                   "ssh nohup": [], "ssh docker run -d": []}
        speed = {"labstack fetch": [], "scp -r": []}
        for round_no in range(args.rounds):
            sides = [("labstack (container)", lambda: labstack_latency(target, host, script, False)),
                     ("labstack (container, cold)", lambda: labstack_latency(target, host, script, False, False)),
                     ("labstack --on-host", lambda: labstack_latency(target, host, script, True)),
                     ("ssh nohup", lambda n=round_no: raw_latency(target, host, script, n)),
                     ("ssh docker run -d", lambda n=round_no: raw_docker_latency(target, host, script, n))]
            for name, measure in sides if round_no % 2 == 0 else reversed(sides):
                latency[name].append(measure())

            def fetch(n=round_no):
                start = time.perf_counter()
                jobs.fetch(target, holder, "data", work / f"fetch-{n}")
                return size / (time.perf_counter() - start)

            def scp(n=round_no):
                start = time.perf_counter()
                subprocess.run(scp_argv(target, "/home/ubuntu/scpdata", work / f"scp-{n}"), check=True)
                return size / (time.perf_counter() - start)
            for name, measure in ([("labstack fetch", fetch), ("scp -r", scp)] if round_no % 2 == 0
                                  else [("scp -r", scp), ("labstack fetch", fetch)]):
                speed[name].append(measure())
            shutil.rmtree(work / f"fetch-{round_no}", ignore_errors=True)
            shutil.rmtree(work / f"scp-{round_no}", ignore_errors=True)

        print("\nsubmit -> script running (seconds, median (range))")
        for name, values in latency.items():
            print(f"  {name:22s} {spread(values)}")
        for name in ("labstack (container)", "labstack (container, cold)", "labstack --on-host"):
            # Per-round ratios: both sides of a round ran under the same load from other processes.
            ratios = [a / b for a, b in zip(latency[name], latency["ssh nohup"])]
            ratio = statistics.median(ratios)
            print(f"  {name} / ssh nohup: {ratio:.2f}x per round ({min(ratios):.2f}-{max(ratios):.2f}) "
                  f"(goal <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'}); rounds {rounds(ratios)}")
        ratios = [a / b for a, b in zip(latency["labstack (container, cold)"], latency["ssh docker run -d"])]
        print(f"  labstack (container, cold) / ssh docker run -d: {statistics.median(ratios):.2f}x per round "
              f"({min(ratios):.2f}-{max(ratios):.2f}) (the same container work by hand; no goal of the issue); "
              f"rounds {rounds(ratios)}")
        print("\nfetch throughput (MB/s, median (range))")
        for name, values in speed.items():
            mbs = [v / 1e6 for v in values]
            print(f"  {name:22s} {statistics.median(mbs):7.1f} ({min(mbs):.1f}-{max(mbs):.1f})")
        ratios = [a / b for a, b in zip(speed["labstack fetch"], speed["scp -r"])]
        ratio = statistics.median(ratios)
        print(f"  labstack fetch / scp -r: {ratio:.2f}x per round ({min(ratios):.2f}-{max(ratios):.2f}) "
              f"(goal >= 0.8x: {'met' if ratio >= 0.8 else 'NOT met'}); rounds {rounds(ratios)}")
        return 0
    finally:
        testbed.stop_host(host)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
