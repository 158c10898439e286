"""The infrastructure images every server runs (Caddy, Postgres, Redis, Python for the log viewer and its Docker API
gate, and Ray's default image), in one place: images.json beside this file.

Pinned, an entry's `image` reads `name:tag@sha256:<digest>`: the tag says what it is, the digest is what runs (Docker
ignores the tag when a digest is given), so no server picks up a changed image by surprise. A new digest changes the
rendered compose files, so the next `pulumi up` rolls it out (blue/green for the apps' own services). Beside each
pin, `record` and `date` say where the digest was read: for the official images, the multi-platform index digest
docker-library/repo-info records for that tag (repos/<image>/remote/<tag>.md, at the commit named) and the date of
that build. An entry may stay unpinned only with an `unpinned` reason (tests/unit/test_render.py refuses any other).

Update path, on a machine that reaches Docker Hub: `venv/bin/python -m components.render.images --update` pulls each
`name:tag`, writes the digest it resolved to into images.json (its record: that pull and its date); review the diff,
run the tests, commit.

The test bed's stand-in images carry the production tags and are registered under these pinned references in its
engines (tests/testbed/images.py, register_pins), so the program renders the same references everywhere.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

IMAGES_FILE = Path(__file__).with_name("images.json")
NAMES = ("caddy", "postgres", "redis", "python", "ray")  # ray: the default image of cluster nodes
PINNED = re.compile(r"^[a-z0-9][a-z0-9./_-]*:[\w.-]+@sha256:[0-9a-f]{64}$")


def infra_images() -> dict[str, str]:
    """NAMES -> the reference a server runs."""
    return {name: entry["image"] for name, entry in json.loads(IMAGES_FILE.read_text()).items()}


def infra_image(name: str) -> str:
    """The reference a server runs for one of NAMES."""
    return infra_images()[name]


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
    """Pin every entry to the digest its tag resolves to now (the tag, never the old digest, is pulled)."""
    today = datetime.now(timezone.utc).date().isoformat()
    pinned = {}
    for name, reference in infra_images().items():
        tag = reference.split("@")[0]
        pinned[name] = {"image": f"{tag}@{_resolved_digest(tag)}", "record": f"docker pull {tag}", "date": today}
    IMAGES_FILE.write_text(json.dumps(pinned, indent=2) + "\n")
    return {name: entry["image"] for name, entry in pinned.items()}


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        raise SystemExit("usage: python -m components.render.images --update")
    for name, reference in update().items():
        print(f"{name}: {reference}")
