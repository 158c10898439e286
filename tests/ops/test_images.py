"""invoke build / push against the test bed: a real engine, the real local registry, and one that demands a login."""
from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from labstack import images

from labstack.stacks import stackfile
from tests.ops.test_tasks import invoke

pytestmark = pytest.mark.testbed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "app"
MANIFEST_TYPES = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                            "application/vnd.oci.image.manifest.v1+json",
                            "application/vnd.docker.distribution.manifest.list.v2+json",
                            "application/vnd.oci.image.index.v1+json"])


def registry_digest(registry: str, repository: str, tag: str) -> str:
    request = urllib.request.Request(f"http://{registry}/v2/{repository}/manifests/{tag}",
                                     headers={"Accept": MANIFEST_TYPES})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers["Docker-Content-Digest"]


def test_build_push_one_line_pins_the_registry_digest(build_engine, write_stack, monkeypatch, capsys):
    registry = build_engine.registry
    path = write_stack(build=str(EXAMPLE))
    monkeypatch.setenv("DOCKER_HOST", build_engine.testbed_host.docker_url)
    assert invoke("build", "push", "-s", "paris-batch2", "--app", "elif", "--repo", f"{registry}/lab/elif") == 0, \
        capsys.readouterr().err

    tag = f"src-{images.source_hash(EXAMPLE)[:16]}"
    digest = registry_digest(registry, "lab/elif", tag)
    pinned = stackfile.load("paris-batch2").apps[0].image
    assert pinned == f"{registry}/lab/elif@{digest}"
    assert capsys.readouterr().out.strip().splitlines()[-1] == pinned
    assert "# pinned by `invoke build push`" in path.read_text()  # the operator's comments survive
    image = build_engine.images.get(f"{registry}/lab/elif:{tag}")
    assert image.labels[images.SOURCE_HASH_LABEL] == images.source_hash(EXAMPLE)

    # Unchanged source: the next push reuses the image and pins the same digest; the repository now comes from the
    # pinned image itself (no --repo).
    assert invoke("push", "-s", "paris-batch2", "--app", "elif") == 0
    err = capsys.readouterr().err
    assert "reusing" in err and stackfile.load("paris-batch2").apps[0].image == pinned


def test_generated_dockerfile_build_args_reuse_and_force(build_engine, tmp_path):
    context = tmp_path / "experiment"
    context.mkdir()
    (context / "requirements.txt").write_text("flask==2.2.2\n")  # preinstalled in the stand-in python image
    (context / "prepare_docker_image.sh").write_text('echo "prepared $(python3 -c "import flask; print(flask.__version__)")" > /prepared\n')
    (context / "app.py").write_text("print('hello')\n")
    (context / ".dockerignore").write_text("notes\n")
    (context / "notes").write_text("not part of the image\n")
    repository = f"{build_engine.registry}/lab/generated"

    built = images.build(build_engine, context, repository, build_args={"GREETING": "salut"})
    assert not built.reused and sorted(p.name for p in context.iterdir()) == [
        ".dockerignore", "app.py", "notes", "prepare_docker_image.sh", "requirements.txt"]  # no Dockerfile left
    output = build_engine.containers.run(built.reference, "sh -c 'cat /prepared; ls /app'", remove=True).decode()
    assert output.splitlines()[0] == "prepared 2.2.2"
    assert "app.py" in output and "notes" not in output.split()

    again = images.build(build_engine, context, repository, build_args={"GREETING": "salut"})
    assert again.reused and again.tag == built.tag
    (context / "notes").write_text("ignored files do not change the tag\n")
    assert images.build(build_engine, context, repository, build_args={"GREETING": "salut"}).tag == built.tag
    assert images.build(build_engine, context, repository, build_args={"GREETING": "hallo"}).tag != built.tag
    forced = images.build(build_engine, context, repository, build_args={"GREETING": "salut"}, force=True)
    assert not forced.reused and forced.tag == built.tag

    pinned = images.push(build_engine, built)
    assert pinned == f"{repository}@{registry_digest(build_engine.registry, 'lab/generated', built.tag)}"


def test_a_failing_build_is_one_clear_error(build_engine, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nRUN exit 3\n")
    with pytest.raises(images.ImageError, match=r"docker build of .* failed: .*returned a non-zero code: 3"):
        images.build(build_engine, tmp_path, f"{build_engine.registry}/lab/broken")


def test_push_refused_by_registry_gives_login_help(build_engine, auth_registry, write_stack, monkeypatch, capsys):
    build_engine.testbed_host.forward_port(auth_registry.port)
    monkeypatch.setenv("DOCKER_HOST", build_engine.testbed_host.docker_url)
    path = write_stack(build=str(EXAMPLE))
    before = path.read_text()
    assert invoke("build", "push", "-s", "paris-batch2", "--app", "elif",
                  "--repo", f"{auth_registry.address}/lab/elif") == 1
    err = capsys.readouterr().err.strip().splitlines()
    message = [line for line in err if line.startswith("labstack:")]
    assert len(message) == 1 and message[0].startswith(f"labstack: push to {auth_registry.address} was refused")
    assert err[-1] == f"Log in first: docker login {auth_registry.address}"
    assert path.read_text() == before  # nothing pinned
