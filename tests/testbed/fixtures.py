"""pytest plugin of the test bed (loaded by tests/conftest.py).

Fixtures (scope):
  testbed          (session)  Testbed: prerequisites checked, leftovers of crashed sessions cleaned, stand-in
                              images built or taken from the cache; .new_host(...), .images, .hosts
  testbed_host     (function) one started TestbedHost with the standard stand-in images loaded
  testbed_hosts    (function) factory: testbed_hosts(n=2, images=..., host_keys=...) -> [TestbedHost, ...]
  moto_process     (session)  the moto server process (MotoServer: .url, .reset())
  moto_server      (function) endpoint URL of moto, reset to an empty account before the test
  registry_service (session)  the Registry (address, catalog(), tags(repo))
  registry         (session)  "127.0.0.1:PORT" of the registry
  build_engine     (function) docker.DockerClient on a fresh host's engine (standard images loaded) that reaches
                              the registry as 127.0.0.1:PORT; .testbed_host and .registry attributes

Without prerequisites the test bed tests skip with a loud reason; with LABSTACK_REQUIRE_TESTBED=1 (CI) they fail.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from . import host as hostmod
from . import images as imagemod
from .host import TestbedHost
from .services import MotoServer, Registry, cleanup_service_leftovers

REQUIRE_ENV = "LABSTACK_REQUIRE_TESTBED"


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run test bed hosts (empty list = ready)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("not running as root (network namespaces, mounts and dockerd need root)")
    for tool, why in [("ip", "iproute2"), ("nsenter", "util-linux"), ("unshare", "util-linux"),
                      ("dockerd", "docker.io"), ("containerd", "containerd"), ("runc", "runc"),
                      ("debootstrap", "debootstrap"), ("sudo", "sudo"), ("ssh", "openssh-client"),
                      ("ssh-keygen", "openssh-client"), ("iptables", "iptables")]:
        if not shutil.which(tool, path=hostmod.CLEAN_PATH):
            missing.append(f"no `{tool}` ({why})")
    if not Path("/usr/sbin/sshd").exists():
        missing.append("no /usr/sbin/sshd (openssh-server)")
    if not Path(hostmod.DOCKER_CLI).exists() and not shutil.which("docker", path=hostmod.CLEAN_PATH):
        missing.append("no docker CLI")
    if not any(Path(d, "docker-compose").exists() for d in
               ("/usr/local/lib/docker/cli-plugins", "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")):
        missing.append("no docker compose v2 CLI plugin (run .ci/testbed-setup.sh)")
    if not missing and subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        missing.append("`ip netns` does not work here")
    return missing


def testbed_unavailable(reason: str):
    """Skip loudly locally; fail in CI (LABSTACK_REQUIRE_TESTBED=1), so a broken machine never looks green."""
    msg = f"TEST BED UNAVAILABLE: {reason}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{msg} ({REQUIRE_ENV}=1, so this is a failure)", pytrace=False)
    pytest.skip(f"{msg} (set {REQUIRE_ENV}=1 to make this a failure; run .ci/testbed-setup.sh as root)")


def _log(msg: str) -> None:
    sys.stderr.write(msg + "\n")


class Testbed:
    """Session handle: starts hosts, remembers them, stops them all at the end (and at exit)."""

    def __init__(self, images: dict[str, Path]):
        self.images = images
        self.hosts: list[TestbedHost] = []
        self._lock = threading.Lock()
        self._counter = 0

    def _next_name(self) -> str:
        with self._lock:
            self._counter += 1
            return f"h{os.getpid() % 10000}x{self._counter}"[:12]

    def new_host(self, name: str | None = None, images=imagemod.STANDARD_IMAGES,
                 host_key: str | None = None) -> TestbedHost:
        """Start a host with `images` present: stand-in names come from a cached engine seed (no load);
        anything else (a `docker save` tarball path) is loaded after start."""
        stand_ins = [i for i in images if str(i) in imagemod.RECIPES]
        others = [i for i in images if str(i) not in imagemod.RECIPES]
        seed = hostmod.ensure_engine_seed(stand_ins, log=_log) if stand_ins else None
        h = TestbedHost.start(name or self._next_name(), host_key=host_key, log=_log, seed=seed)
        with self._lock:
            self.hosts.append(h)
        try:
            for img in others:
                h.load_image(img)
        except BaseException:
            self.stop_host(h)
            raise
        return h

    def stop_host(self, h: TestbedHost) -> None:
        h.stop()
        with self._lock:
            if h in self.hosts:
                self.hosts.remove(h)

    def stop_all(self) -> None:
        for h in list(self.hosts):
            self.stop_host(h)
        hostmod.remove_bridge_if_unused()


_SESSION: dict = {}


def _atexit_cleanup() -> None:
    # finalizers normally did this already; this catches exits that skip them
    tb = _SESSION.get("testbed")
    if tb:
        tb.stop_all()
    for svc in _SESSION.get("services", []):
        svc.stop()


atexit.register(_atexit_cleanup)


def _sigterm_to_exit(signum, frame):
    # make `kill PID` of pytest (e.g. a CI timeout) behave like Ctrl-C: pytest stops, fixture finalizers and
    # atexit run, and the hosts go away instead of living on until the next session's leftover cleanup
    raise KeyboardInterrupt(f"signal {signum}")


def _iptables_snapshot() -> str:
    out = []
    for table in ("filter", "nat", "mangle", "raw"):
        p = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True)
        out.append(f"## {table}\n{p.stdout}")
    return "".join(out)


@pytest.fixture(scope="session")
def testbed():
    missing = missing_prerequisites()
    if missing:
        testbed_unavailable("; ".join(missing))
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm_to_exit)
    hostmod.cleanup_leftovers(log=_log)
    cleanup_service_leftovers(log=_log)
    iptables_before = _iptables_snapshot()
    try:
        imgs = imagemod.ensure_images(imagemod.STANDARD_IMAGES, log=_log)
        hostmod.ensure_engine_seed(imagemod.STANDARD_IMAGES, log=_log)
    except Exception as e:  # a broken mirror or debootstrap is an unavailable test bed, not a green run
        testbed_unavailable(f"building the stand-in images failed: {e}")
    tb = Testbed(imgs)
    tb.iptables_before = iptables_before
    _SESSION["testbed"] = tb
    yield tb
    tb.stop_all()
    _SESSION.pop("testbed", None)


@pytest.fixture
def testbed_hosts(testbed):
    """Factory: start n hosts in parallel (each with the given images loaded); all stopped after the test."""
    mine: list[TestbedHost] = []

    def make(n: int = 2, images=imagemod.STANDARD_IMAGES, host_keys: list[str | None] | None = None):
        keys = host_keys or [None] * n
        with ThreadPoolExecutor(max_workers=min(n, 4)) as ex:
            futs = [ex.submit(testbed.new_host, None, images, keys[i]) for i in range(n)]
            errors = []
            for f in futs:
                try:
                    mine.append(f.result())
                except Exception as e:  # keep the started ones for the finalizer
                    errors.append(e)
            if errors:
                raise errors[0]
        return mine[-n:]

    yield make
    for h in mine:
        testbed.stop_host(h)


@pytest.fixture
def testbed_host(testbed):
    h = testbed.new_host()
    yield h
    testbed.stop_host(h)


@pytest.fixture(scope="module")
def hooks_host(testbed):
    """One host per test file with labstack's hooks where HostSetup copies them on a server (jobs, the agent)."""
    h = testbed.new_host()
    try:
        h.install_hooks()
        yield h
    finally:
        testbed.stop_host(h)


def _start_service(cls, needs: str | None = None):
    if needs and not shutil.which(needs):
        testbed_unavailable(f"no `{needs}` on this machine")
    svc = cls()
    _SESSION.setdefault("services", []).append(svc)
    return svc


@pytest.fixture(scope="session")
def moto_process():
    cleanup_service_leftovers(log=_log)
    svc = _start_service(MotoServer)
    yield svc
    svc.stop()
    _SESSION["services"].remove(svc)


@pytest.fixture
def moto_server(moto_process):
    """Endpoint URL of moto (server mode, 127.0.0.1); every test starts from an empty, reset account."""
    moto_process.reset()
    yield moto_process.url


@pytest.fixture(scope="session")
def registry_service():
    cleanup_service_leftovers(log=_log)
    svc = _start_service(Registry, needs="docker-registry")
    yield svc
    svc.stop()
    _SESSION["services"].remove(svc)


@pytest.fixture(scope="session")
def registry(registry_service):
    """"127.0.0.1:PORT" of a real (Debian docker-registry, distribution v2) registry on the machine."""
    yield registry_service.address


@pytest.fixture
def build_engine(testbed, registry_service):
    """docker-py client on a fresh host's engine; that engine reaches the registry as 127.0.0.1:PORT too."""
    h = testbed.new_host()
    h.forward_port(registry_service.port)
    client = h.docker_client()
    client.testbed_host = h
    client.registry = registry_service.address
    yield client
    client.close()
    testbed.stop_host(h)
