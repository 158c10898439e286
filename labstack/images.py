"""Build and push experiment images with docker-py: content-hash tags, registry digests, clear failures.

The tag is a hash of everything the Dockerfile can see (the build context minus .dockerignore), so any code
change gives a new tag and an unchanged context reuses the image already built. After a push, the registry's
digest is what the stack pins (`repo@sha256:…`): `pulumi up` then deploys exactly those bytes.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

SOURCE_HASH_LABEL = "org.labstack.source-hash"
Progress = Callable[[str], None]


class ImageError(RuntimeError):
    """A build or push failed; the message says why and what to do."""


@dataclass(frozen=True)
class BuiltImage:
    repository: str
    tag: str
    source_hash: str
    reused: bool

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


def dockerignore_patterns(context: Path) -> list[str]:
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return []
    return [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]


def context_files(context: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """The files `docker build` would send, sorted, honouring .dockerignore exactly as docker-py does."""
    from docker.utils.build import exclude_paths  # here, not at the top: docker-py is slow to import for every task

    return sorted(p for p in exclude_paths(str(context), dockerignore_patterns(context), dockerfile=dockerfile)
                  if (context / p).is_file())


def source_hash(context: Path, dockerfile: str = "Dockerfile", build_args: Optional[dict] = None,
                extra: bytes = b"") -> str:
    """sha256 over each visible file's path, executable bit and bytes, plus the build args (and `extra`)."""
    digest = hashlib.sha256()
    for relative in context_files(context, dockerfile):
        path = context / relative
        executable = bool(path.stat().st_mode & stat.S_IXUSR)
        digest.update(f"{relative}\0{int(executable)}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    for key, value in sorted((build_args or {}).items()):
        digest.update(f"arg\0{key}={value}\0".encode())
    if extra:
        digest.update(b"generated\0" + extra)
    return digest.hexdigest()


GENERATED_DOCKERFILE = ".labstack.Dockerfile"  # added to the context sent to the engine, never to the folder
DEFAULT_BASE_IMAGE = "python:3.11-slim"
PREPARE_SCRIPT = "prepare_docker_image.sh"  # Dallinger's name for an experiment's own image preparation step


def generated_dockerfile(context: Path, base_image: str = DEFAULT_BASE_IMAGE) -> str:
    """A Dockerfile for an experiment folder that has none: base image, its requirements, its prepare script.

    Requirements are installed before the code is copied so that code changes reuse the dependency layer.
    """
    lines = [f"FROM {base_image}", "WORKDIR /app", "ENV PYTHONUNBUFFERED=1"]
    requirements = (context / "requirements.txt").is_file()
    constraints = (context / "constraints.txt").is_file()
    if requirements or constraints:
        copied = [name for name, present in (("requirements.txt", requirements), ("constraints.txt", constraints))
                  if present]
        lines.append(f"COPY {' '.join(copied)} ./")
        # constraints.txt alone (Dallinger's frozen set) is installed as the requirement list itself.
        install = "-r requirements.txt -c constraints.txt" if requirements and constraints else (
            "-r requirements.txt" if requirements else "-r constraints.txt")
        lines.append(f"RUN pip install --no-cache-dir {install}")
    if (context / PREPARE_SCRIPT).is_file():
        lines += [f"COPY {PREPARE_SCRIPT} ./", f"RUN sh ./{PREPARE_SCRIPT}"]
    lines += ["COPY . .", "ENV PORT=5000", "EXPOSE 5000",
              'CMD exec gunicorn --bind "0.0.0.0:${PORT}" --workers 2 --access-logfile - app:app']
    return "\n".join(lines) + "\n"


def build(client, context: Path, repository: str, *, dockerfile: str = "Dockerfile", build_args: Optional[dict] = None,
          force: bool = False, base_image: str = DEFAULT_BASE_IMAGE,
          progress: Progress = lambda line: None) -> BuiltImage:
    """Build `repository:src-<hash>` from `context`, or reuse it when an image with that tag exists.

    Without a Dockerfile in the context, one is generated (see generated_dockerfile) and its text is part of the
    hash, so changing the base image changes the tag too.
    """
    import docker.errors
    from docker.utils.build import tar

    context = context.resolve()
    if not context.is_dir():
        raise ImageError(f"build context {context} is not a folder: point the app's `build` setting at the folder "
                         "with its code")
    generated = None
    if not (context / dockerfile).is_file():
        if dockerfile != "Dockerfile":
            raise ImageError(f"no {dockerfile} in {context}: add it, or remove the dockerfile option to let "
                             "labstack generate one")
        generated = generated_dockerfile(context, base_image)
    source = source_hash(context, dockerfile, build_args, extra=generated.encode() if generated else b"")
    tag = f"src-{source[:16]}"
    if not force:
        try:
            client.images.get(f"{repository}:{tag}")
            progress(f"reusing {repository}:{tag} (same source; --force rebuilds)")
            return BuiltImage(repository, tag, source, reused=True)
        except docker.errors.ImageNotFound:
            pass
    progress(f"building {repository}:{tag} from {context}" + (" (generated Dockerfile)" if generated else ""))
    if not generated and uses_ssh_mount((context / dockerfile).read_text()):
        build_with_ssh_agent(context, f"{repository}:{tag}", dockerfile=dockerfile, build_args=build_args,
                             labels={SOURCE_HASH_LABEL: source}, force=force, progress=progress)
        return BuiltImage(repository, tag, source, reused=False)
    options = dict(tag=f"{repository}:{tag}", rm=True, forcerm=True, decode=True, buildargs=build_args or {},
                   labels={SOURCE_HASH_LABEL: source}, nocache=force)
    if generated:
        archive = tar(str(context), exclude=dockerignore_patterns(context),
                      dockerfile=(GENERATED_DOCKERFILE, generated))
        stream = client.api.build(fileobj=archive, custom_context=True, dockerfile=GENERATED_DOCKERFILE, **options)
    else:
        stream = client.api.build(path=str(context), dockerfile=dockerfile, **options)
    log: list[str] = []
    try:
        for chunk in stream:
            if "stream" in chunk and chunk["stream"].strip():
                log.append(chunk["stream"].rstrip())
                progress(chunk["stream"].rstrip())
            if "error" in chunk or "errorDetail" in chunk:
                message = chunk.get("error") or chunk["errorDetail"].get("message", "")
                tail = "\n".join(log[-15:])
                raise ImageError(f"docker build of {context} failed: {message.strip()}\n{tail}")
    except docker.errors.APIError as error:  # e.g. a bad build arg or an unreachable engine
        raise ImageError(f"docker build of {context} failed: {error.explanation or error}") from None
    return BuiltImage(repository, tag, source, reused=False)


SSH_MOUNT = re.compile(r"^\s*RUN\b[^\n]*--mount=[^\n]*\btype=ssh\b", re.MULTILINE)
DOCKER_CLI_VARIABLE = "LABSTACK_DOCKER_CLI"


def uses_ssh_mount(dockerfile_text: str) -> bool:
    """A Dockerfile with `RUN --mount=type=ssh …` wants the SSH agent (private `git+ssh://` requirements)."""
    return bool(SSH_MOUNT.search(dockerfile_text))


def ssh_build_command(cli: str, has_buildx: bool, context: Path, reference: str, *, dockerfile: str,
                      build_args: Optional[dict], labels: dict, force: bool) -> list[str]:
    """The BuildKit build with the agent forwarded: `--ssh default` lends the build the socket of SSH_AUTH_SOCK
    for the RUN steps that mount it and for nothing else, so no key is ever copied into the build or a layer."""
    head = [cli, "buildx", "build", "--load"] if has_buildx else [cli, "build"]
    argv = head + ["--ssh", "default", "--progress", "plain", "-f", str(context / dockerfile), "-t", reference]
    for key, value in sorted((build_args or {}).items()):
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    if force:
        argv.append("--no-cache")
    return argv + [str(context)]


def build_with_ssh_agent(context: Path, reference: str, *, dockerfile: str, build_args: Optional[dict],
                         labels: dict, force: bool, progress: Progress) -> None:
    """Build through the docker CLI (docker-py cannot forward an agent): `docker buildx build --ssh default` when
    buildx is installed, else `DOCKER_BUILDKIT=1 docker build --ssh default` (built into CLIs 18.09-22; from 23 on
    the CLI needs buildx for BuildKit). LABSTACK_DOCKER_CLI names another docker binary. The CLI reads DOCKER_HOST
    like docker-py, so both talk to the same engine."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        raise ImageError(f"{context / dockerfile} mounts the SSH agent (RUN --mount=type=ssh) but SSH_AUTH_SOCK is "
                         "not set: start an agent and add the key that reads your private repositories "
                         "(eval $(ssh-agent); ssh-add ~/.ssh/id_ed25519), then build again")
    cli = os.environ.get(DOCKER_CLI_VARIABLE) or "docker"
    if not shutil.which(cli):
        raise ImageError(f"{context / dockerfile} needs BuildKit's --ssh, which only the docker CLI offers, and "
                         f"{cli!r} is not on PATH: install the docker CLI (or set {DOCKER_CLI_VARIABLE})")
    has_buildx = subprocess.run([cli, "buildx", "version"], capture_output=True).returncode == 0
    argv = ssh_build_command(cli, has_buildx, context, reference, dockerfile=dockerfile, build_args=build_args,
                             labels=labels, force=force)
    log: list[str] = []
    process = subprocess.Popen(argv, env=dict(os.environ, DOCKER_BUILDKIT="1"), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        log.append(line.rstrip())
        progress(line.rstrip())
    if process.wait() != 0:
        tail = "\n".join(log[-15:])
        hint = ("" if has_buildx else f"\n(no buildx: a docker CLI from 23 on needs the buildx plugin for BuildKit; "
                                      f"install it, or set {DOCKER_CLI_VARIABLE} to a CLI of 20.10-22)")
        raise ImageError(f"docker build --ssh default of {context} failed (exit {process.returncode}):\n{tail}{hint}")


def push(client, image: BuiltImage, progress: Progress = lambda line: None) -> str:
    """Push and return the pinned reference `repository@sha256:…` read from the registry's answer."""
    progress(f"pushing {image.reference}")
    digest = None
    # docker-py does not raise on registry errors: they arrive as items of the stream.
    for chunk in client.api.push(image.repository, tag=image.tag, stream=True, decode=True):
        if "error" in chunk or "errorDetail" in chunk:
            raise ImageError(_push_failure(image.repository, chunk.get("error") or chunk["errorDetail"]["message"]))
        aux = chunk.get("aux") or {}
        if aux.get("Digest"):
            digest = aux["Digest"]
        if chunk.get("status") and chunk.get("id"):
            progress(f"{chunk['id']}: {chunk['status']}")
    if not digest:
        raise ImageError(f"the registry did not report a digest for {image.reference}; the push may not have "
                         "completed: run it again")
    return f"{image.repository}@{digest}"


def _push_failure(repository: str, message: str) -> str:
    registry = registry_of(repository)
    lowered = message.lower()
    if any(word in lowered for word in ("unauthorized", "denied", "authentication required", "no basic auth",
                                        "forbidden")):
        return f"push to {registry} was refused ({message.strip()}).\n{login_help(registry)}"
    return f"push of {repository} failed: {message.strip()}"


def registry_of(repository: str) -> str:
    first = repository.split("/", 1)[0]
    if "/" in repository and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def login_help(registry: str) -> str:
    if registry.endswith(".amazonaws.com") and ".dkr.ecr." in registry:
        region = registry.split(".")[3]
        return (f"Log in to ECR: aws ecr get-login-password --region {region} | docker login --username AWS "
                f"--password-stdin {registry}")
    if registry == "ghcr.io":
        return ("Log in to GitHub's registry with a token that has write:packages: "
                "echo $GITHUB_TOKEN | docker login ghcr.io -u <github-user> --password-stdin")
    if registry == "docker.io":
        return "Log in to Docker Hub: docker login (use an access token as the password)"
    return f"Log in first: docker login {registry}"


def repository_of(reference: str) -> str:
    """`registry:5000/lab/app:tag@sha256:…` -> `registry:5000/lab/app` (a port's colon is not a tag's)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name
