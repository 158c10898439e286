"""Fixtures for the operator tasks' tests: stack files in a temporary stacks/, a Postgres app on a test bed host."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

import labstack.stacks.stackfile
from components import layout
from labstack.ssh.target import SshTarget
from tests.fakes import install_fake_pulumi
from tests.unit.helpers import digest, write_private_key

STACK_FILE = """\
# The Paris replication, batch 2 (test copy).
config:
  aws:region: eu-west-3
  labstack:serverPem: {pem}  # the lab's deploy key
  labstack:sshCidrs: [100.64.0.0/24]
  labstack:storageGb: "40"
  labstack:apps:
    elif:
      # pinned by `invoke build push`
      image: {image}
      build: {build}
      workers: 1
      workerCommand: python worker.py
    survey:
      image: registry.example.org/lab/survey@sha256:{digest}
      postgres: false
"""


@pytest.fixture
def moto_ec2(moto_server, monkeypatch):
    """labstack.stacks.lifecycle.ec2_client(region) against the test bed's moto server, with moto's fake credentials."""
    from labstack.stacks import lifecycle

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("LABSTACK_AWS_ENDPOINT_URL", moto_server)
    return lifecycle.ec2_client


@pytest.fixture
def stacks_dir(tmp_path, monkeypatch):
    """An empty stacks/ folder the ops modules read and write instead of the project's."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    monkeypatch.setattr(labstack.stacks.stackfile, "STACKS_DIR", folder)
    return folder


@pytest.fixture
def server_pem(tmp_path) -> Path:
    """The stack's private key: the typed config refuses a serverPem that is missing or readable by others."""
    path = tmp_path / "keys" / "labstack_ed25519"
    path.parent.mkdir()
    write_private_key(path)
    return path


@pytest.fixture
def write_stack(stacks_dir, server_pem):
    def write(name: str = "paris-batch2", image: str = "127.0.0.1:5000/lab/elif@sha256:" + digest("ab"),
              build: str = "examples/app", pem: Path = server_pem, text: str | None = None) -> Path:
        path = stacks_dir / f"Pulumi.{name}.yaml"
        path.write_text(text if text is not None else
                        STACK_FILE.format(image=image, build=build, pem=pem, digest=digest("bc")))
        return path
    return write


def data_compose(app: str) -> str:
    """An app's Postgres as deploy-app.sh runs it: its data folder, and the labels the tasks find it by."""
    return yaml.safe_dump({"services": {"postgres": {
        "image": "postgres:16", "labels": layout.labels(app, "postgres"),
        "environment": {"POSTGRES_USER": app, "POSTGRES_DB": app, "POSTGRES_PASSWORD": "not-used-locally",
                        "PGDATA": "/var/lib/postgresql/data/pgdata"},
        "volumes": [f"{layout.name('APP_SRV', app)}/postgres:/var/lib/postgresql/data"]}}})


def start_app_postgres(host, app: str = "elif") -> None:
    """The layout deploy-app.sh makes for an app's data: compose project <app>-data, service postgres."""
    etc, srv, project = layout.name("APP_ETC", app), layout.name("APP_SRV", app), layout.name("DATA_PROJECT", app)
    compose = layout.app_file(app, "DATA_COMPOSE")
    host.run(f"sudo mkdir -p {etc} {srv}/data {srv}/postgres")
    host.run(f"sudo tee {compose} >/dev/null", input=data_compose(app))
    host.run(f"sudo docker compose -p {project} -f {compose} up -d")
    for _ in range(60):
        if host.run(f"sudo docker compose -p {project} -f {compose} exec -T postgres pg_isready -q -U {app} -d {app}",
                    check=False).returncode == 0:
            return
        time.sleep(1)
    raise AssertionError(f"Postgres of {app} did not become ready")


def psql(host, app: str, sql: str, database: str | None = None) -> str:
    cid = host.run(f"sudo docker ps -q --filter label={layout.LABEL_APP}={app} "
                   f"--filter label={layout.LABEL_ROLE}=postgres").stdout.strip()
    return host.run(f"sudo docker exec -i {cid} psql -X -q -At -v ON_ERROR_STOP=1 -U {app} -d {database or app}",
                    input=sql).stdout


def target_of(host, stack: str = "paris-batch2") -> SshTarget:
    return SshTarget(host=host.ip, user=host.user, key_path=Path(host.key_path), known_hosts=host.known_hosts_line(),
                     stack=stack)


@pytest.fixture
def auth_registry(tmp_path_factory):
    """A second real registry (Debian's docker-registry) that demands htpasswd logins: pushes get a real 401."""
    import shutil
    import tempfile

    import bcrypt

    from tests.testbed.fixtures import testbed_unavailable
    from tests.testbed.services import Service, free_port

    if not shutil.which("docker-registry"):
        testbed_unavailable("no `docker-registry` on this machine")

    class AuthRegistry(Service):
        def __init__(self):
            port, debug_port = free_port(), free_port()
            workdir = Path(tempfile.mkdtemp(prefix="labstack-auth-registry-"))
            (workdir / "storage").mkdir()
            hashed = bcrypt.hashpw(b"correct-horse", bcrypt.gensalt(rounds=4)).decode()
            (workdir / "htpasswd").write_text(f"lab:{hashed}\n")
            (workdir / "config.yml").write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {workdir / 'storage'}
auth:
  htpasswd:
    realm: labstack-test
    path: {workdir / 'htpasswd'}
http:
  addr: 127.0.0.1:{port}
  debug:
    addr: 127.0.0.1:{debug_port}
""")
            self.address = f"127.0.0.1:{port}"
            # /v2/ answers 401 here by design; the debug listener tells when the process is up.
            super().__init__("auth-registry", [shutil.which("docker-registry"), "serve", str(workdir / "config.yml")],
                             port, workdir, f"http://127.0.0.1:{debug_port}/debug/vars")

    service = AuthRegistry()
    yield service
    service.stop()


@pytest.fixture
def recording_pulumi(tmp_path, monkeypatch):
    """A `pulumi` on PATH recording each argv; `stack output` answers FAKE_PULUMI_OUTPUTS."""
    calls = install_fake_pulumi(tmp_path, monkeypatch)
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path / 'state'}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")
    return lambda: [call["argv"] for call in calls()]


