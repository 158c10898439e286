"""The infrastructure images every server runs (Caddy, Postgres, Redis, and Python for the log viewer and its
Docker API gate), in one place: images.json beside this file.

Pinned, an entry reads `name:tag@sha256:<digest>`: the tag says what it is, the digest is what runs (Docker ignores
the tag when a digest is given), so no server picks up a changed image by surprise. A new digest changes the
rendered compose files, so the next `pulumi up` rolls it out (blue/green for the apps' own services).

Update path, on a machine that reaches Docker Hub: `venv/bin/python -m components.render.images --update` pulls each
`name:tag`, writes the digest it resolved to into images.json; review the diff, run the tests, commit.

The test bed's stand-in images carry the same tags but digests of their own: the end-to-end tests point
LABSTACK_INFRA_IMAGES at a file of their own (tests/e2e/standin-images.json).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

IMAGES_FILE = Path(__file__).with_name("images.json")
NAMES = ("caddy", "postgres", "redis", "python", "ray")  # ray: the default image of cluster nodes
PINNED = re.compile(r"^[a-z0-9][a-z0-9./_-]*:[\w.-]+@sha256:[0-9a-f]{64}$")


def images_file() -> Path:
    return Path(os.environ.get("LABSTACK_INFRA_IMAGES") or IMAGES_FILE)


def infra_image(name: str) -> str:
    """The reference a server runs for one of NAMES, read when a file is rendered (so an override applies)."""
    return json.loads(images_file().read_text())[name]


def _resolved_digest(tag: str) -> str:
    """The registry digest `docker pull` resolved TAG to (the multi-platform index, as RepoDigests records it)."""
    subprocess.run(["docker", "pull", "-q", tag], check=True, stdout=subprocess.DEVNULL)
    repository = tag.rsplit(":", 1)[0]
    digests = subprocess.run(["docker", "image", "inspect", "-f", "{{range .RepoDigests}}{{println .}}{{end}}", tag],
                             check=True, capture_output=True, text=True).stdout.split()
    found = [d.split("@", 1)[1] for d in digests if d.split("@", 1)[0] in (repository, f"docker.io/library/{repository}")]
    if len(found) != 1:
        raise SystemExit(f"cannot tell the digest of {tag} from {digests}")
    return found[0]


def update() -> dict[str, str]:
    images = json.loads(IMAGES_FILE.read_text())
    pinned = {name: f"{ref.split('@')[0]}@{_resolved_digest(ref.split('@')[0])}" for name, ref in images.items()}
    IMAGES_FILE.write_text(json.dumps(pinned, indent=2) + "\n")
    return pinned


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        raise SystemExit("usage: python -m components.render.images --update")
    for name, reference in update().items():
        print(f"{name}: {reference}")
