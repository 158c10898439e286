"""Which Dockerfiles want the SSH agent, and the docker CLI line that lends it to the build."""
from pathlib import Path

from labstack import images


def test_only_a_run_that_mounts_ssh_wants_the_agent():
    assert images.uses_ssh_mount("FROM x\nRUN --mount=type=ssh pip install -r requirements.txt\n")
    assert images.uses_ssh_mount("FROM x\nRUN --mount=type=cache,target=/root/.cache --mount=type=ssh,id=default "
                                 "pip install git+ssh://git@github.com/lab/private.git\n")
    assert not images.uses_ssh_mount("FROM x\nRUN --mount=type=cache,target=/root/.cache pip install flask\n")
    assert not images.uses_ssh_mount("FROM x\n# RUN --mount=type=ssh is how private deps would come in\n")


def test_build_command_with_and_without_buildx():
    context = Path("/src/app")
    common = dict(dockerfile="Dockerfile", build_args={"B": "2", "A": "1"},
                  labels={images.SOURCE_HASH_LABEL: "abc"}, force=True)
    assert images.ssh_build_command("docker", True, context, "reg/lab/app:src-1", **common) == [
        "docker", "buildx", "build", "--load", "--ssh", "default", "--progress", "plain", "-f",
        "/src/app/Dockerfile", "-t", "reg/lab/app:src-1", "--build-arg", "A=1", "--build-arg", "B=2",
        "--label", "org.labstack.source-hash=abc", "--no-cache", "/src/app"]
    plain = images.ssh_build_command("/usr/bin/docker", False, context, "reg/lab/app:src-1",
                                     **dict(common, force=False, build_args=None))
    assert plain[:4] == ["/usr/bin/docker", "build", "--ssh", "default"] and "--no-cache" not in plain
