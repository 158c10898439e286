"""Stand-in container images for the test bed, built from Debian packages.

No image registry can be pulled from on the build machines, so the images labstack deploys in production
(postgres:16, redis:7, caddy:2, python:3.11-slim) are replaced by *stand-ins*: a debootstrap'ed Debian bookworm
base plus Debian packages, with entrypoints that honour the parts of the official images labstack relies on
(see docs/testbed.md). They carry the production tags so compose files need no test-only edits.

Build path, all without a Docker engine:
  debootstrap (once, cached) -> copy of the base -> chroot apt-get install -> a one-layer diff against the base
  -> a `docker save`-format tarball written by hand (manifest.json + config + layers).
Every image shares the base layer, so loading several into one engine stores the base once.
Everything is cached under CACHE_DIR keyed by a hash of the recipe (this file + the recipe directory), so CI
builds once per recipe change and hosts only pay for `docker load`.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .locks import file_lock

CACHE_DIR = Path(os.environ.get("LABSTACK_TESTBED_CACHE", "/var/cache/labstack-testbed"))
RECIPES_DIR = Path(__file__).parent / "images"
SUITE = "bookworm"

# Paths never shipped in a layer: the engine provides /dev, /proc, /sys and the resolver files, and apt caches
# only make images bigger (the official images drop them too).
_EXCLUDE_PREFIXES = ("dev/", "proc/", "sys/", "var/cache/apt/archives/", "var/lib/apt/lists/", "tmp/",
                     "var/cache/debconf/templates.dat-old", "var/cache/debconf/config.dat-old")


@dataclass(frozen=True)
class Recipe:
    name: str                      # production tag, e.g. "postgres:16"
    directory: str | None          # tests/testbed/images/<directory>/rootfs is copied over the image root
    packages: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    workdir: str = ""
    ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    # shell run in the chroot after the packages are installed (why: per-image tweaks such as dropping the
    # cluster Debian's postgresql package would create)
    post_install: str = ""
    labels: dict = field(default_factory=dict)
    # pip requirements installed offline in the chroot from wheels downloaded once into CACHE_DIR/wheels/<key>
    # (mounted at /tmp/wheels during post_install; hosts have no route to the package index)
    wheels: tuple[str, ...] = ()


_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RAY_VERSION = "2.60.0"  # components/render/images.json names the same official image
RAY_IMAGE = f"rayproject/ray:{RAY_VERSION}-py311"

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe(
        name="debian:bookworm-slim", directory=None,
        env=(f"PATH={_PATH}",), cmd=("bash",),
    ),
    Recipe(
        # Debian bookworm ships PostgreSQL 15, not 16: the stand-in keeps the production tag but the server is 15.
        # labstack relies on the entrypoint contract, pg_isready/psql/pg_dump, and password auth on 5432.
        name="postgres:16", directory="postgres",
        packages=("postgresql-15", "postgresql-client-15", "gosu", "gzip"),
        env=("PATH=/usr/lib/postgresql/15/bin:" + _PATH, "PG_MAJOR=15", "PGDATA=/var/lib/postgresql/data",
             "LANG=C.UTF-8"),
        entrypoint=("docker-entrypoint.sh",), cmd=("postgres",),
        ports=("5432/tcp",), volumes=("/var/lib/postgresql/data",), stop_signal="SIGINT",
        post_install=(
            # Debian's postinst creates a 'main' cluster; the official image starts empty and initdb's on first run
            "rm -rf /etc/postgresql/15/main /var/lib/postgresql/15/main\n"
            "mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql /var/lib/postgresql/data\n"
            "chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql\n"
            "chmod 2777 /var/run/postgresql\n"
        ),
    ),
    Recipe(
        name="redis:7", directory="redis",
        packages=("redis-server", "redis-tools", "gosu"),
        env=(f"PATH={_PATH}",),
        entrypoint=("docker-entrypoint.sh",), cmd=("redis-server",),
        workdir="/data", ports=("6379/tcp",), volumes=("/data",),
        post_install="mkdir -p /data && chown redis:redis /data\n",
    ),
    Recipe(
        # Debian bookworm's caddy is 2.6.2; the official caddy:2 tag is newer but the Caddyfile features labstack
        # uses (reverse_proxy, tls internal, reload through the admin API) exist in 2.6.
        name="caddy:2", directory="caddy",
        packages=("caddy", "ca-certificates"),
        env=(f"PATH={_PATH}", "XDG_CONFIG_HOME=/config", "XDG_DATA_HOME=/data"),
        cmd=("caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"),
        workdir="/srv", ports=("80/tcp", "443/tcp", "443/udp", "2019/tcp"), volumes=("/data", "/config"),
        post_install="mkdir -p /data /config /srv /usr/share/caddy\n",
    ),
    Recipe(
        # Official rayproject/ray:<version>-py311: Debian's python3 (3.11, so the cp311 wheels) plus Ray with its
        # head/dashboard/Jobs API dependencies, installed offline from the cached wheels.
        name=RAY_IMAGE, directory="ray",
        packages=("python3", "python3-pip", "python3-venv", "python-is-python3", "curl", "procps",
                  "ca-certificates"),
        env=(f"PATH={_PATH}", "LANG=C.UTF-8", "PIP_BREAK_SYSTEM_PACKAGES=1",
             "PIP_DISABLE_PIP_VERSION_CHECK=1", "PYTHON_VERSION=3.11"),
        cmd=("bash",),
        wheels=(f"ray[default]=={RAY_VERSION}",),
        post_install=(
            'test "$(python3 -c \'import sys; print("%d.%d" % sys.version_info[:2])\')" = 3.11\n'
            "pip install --quiet --break-system-packages --no-index --find-links /tmp/wheels $WHEELS\n"
            "ray --version\n"
            # the official image's user (uid 1000, group users), whom labstack runs Ray as
            "useradd --uid 1000 --gid 100 --create-home --home-dir /home/ray --shell /bin/bash ray\n"
        ),
    ),
    Recipe(
        # Debian's python3 (3.11) with the example app's dependencies preinstalled as Debian packages, so an
        # unpinned `pip install -r requirements.txt` is satisfied without an index (hosts have no route out).
        name="python:3.11-slim", directory="python",
        packages=("python3", "python3-pip", "python3-venv", "python-is-python3", "python3-flask",
                  "python3-psycopg2", "python3-redis", "gunicorn", "python3-requests", "curl",
                  "ca-certificates"),
        env=(f"PATH={_PATH}", "LANG=C.UTF-8", "PIP_BREAK_SYSTEM_PACKAGES=1",
             "PIP_DISABLE_PIP_VERSION_CHECK=1", "PYTHON_VERSION=3.11"),
        cmd=("python3",),
    ),
]}

STANDARD_IMAGES = ("postgres:16", "redis:7", "caddy:2", "python:3.11-slim", "debian:bookworm-slim")


def debian_mirrors() -> tuple[str, str | None]:
    """The Debian mirror (and security mirror) apt already uses on this machine: no host names hard-coded."""
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.is_file() and p.suffix in ("", ".list", ".sources"):
            texts.append(p.read_text(errors="replace"))
    uris: list[tuple[str, str]] = []  # (uri, suites)
    for text in texts:
        # one-line format: deb [opts] URI suite comps
        for m in re.finditer(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            uris.append((m.group(1), m.group(2)))
        # deb822 format
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if fields.get("Types", "").split() and "deb" in fields["Types"].split() and "URIs" in fields:
                for u in fields["URIs"].split():
                    uris.append((u, fields.get("Suites", "")))
    main = next((u for u, s in uris if SUITE in s.split() and "security" not in u), None)
    sec = next((u for u, s in uris if f"{SUITE}-security" in s.split()), None)
    if not main:
        raise RuntimeError("no Debian bookworm mirror found in /etc/apt/sources.list*; the test bed builds its "
                           "images from the mirror apt already uses")
    return main.rstrip("/"), (sec.rstrip("/") if sec else None)


def _hash_tree(h, root: Path) -> None:
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        st = p.lstat()
        h.update(f"{rel}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
        if p.is_symlink():
            h.update(os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())


def base_key() -> str:
    h = hashlib.sha256()
    h.update(f"base\0{SUITE}\0minbase\0v1".encode())
    return h.hexdigest()[:16]


# Bump when the way images are assembled changes (layer format, exclusions, chroot script semantics).
FORMAT_VERSION = "1"


def recipe_key(recipe: Recipe) -> str:
    """Hash of everything that shapes an image: build format, chroot script, exclusions, recipe and its files,
    base. (Not this whole module: editing unrelated code must not force a rebuild on every machine.)"""
    h = hashlib.sha256()
    h.update(FORMAT_VERSION.encode())
    h.update(_CHROOT_SCRIPT.encode())
    h.update(repr(_EXCLUDE_PREFIXES).encode())
    h.update(base_key().encode())
    h.update(repr(recipe).encode())
    if recipe.directory:
        _hash_tree(h, RECIPES_DIR / recipe.directory)
    return h.hexdigest()[:16]


def _cache_lock():
    """Serialise builds across processes (parallel CI jobs, two pytest sessions) on one machine."""
    return file_lock(CACHE_DIR / ".lock")


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# The chroot work runs in its own private mount namespace (unshare), so /proc and /dev mounted for package
# scripts disappear with the process even if the build is interrupted: nothing is left mounted on the machine.
_CHROOT_SCRIPT = r"""
set -euo pipefail
root=$1
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# no daemons start inside the chroot during installs
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
if [ -n "${PACKAGES:-}" ]; then
  # shellcheck disable=SC2086
  chroot "$root" apt-get -o Acquire::Retries=3 update -qq
  # shellcheck disable=SC2086
  chroot "$root" apt-get install -y -qq --no-install-recommends $PACKAGES
fi
if [ -n "${WHEEL_DIR:-}" ]; then
  mkdir -p "$root/tmp/wheels"
  mount --bind "$WHEEL_DIR" "$root/tmp/wheels"
fi
if [ -n "${POST_INSTALL:-}" ]; then
  chroot "$root" /usr/bin/env WHEELS="${WHEELS:-}" /bin/sh -eu -c "$POST_INSTALL"
fi
if [ -n "${WHEEL_DIR:-}" ]; then
  umount "$root/tmp/wheels"
fi
chroot "$root" apt-get clean
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/apt/* "$root"/var/log/dpkg.log
: > "$root/etc/resolv.conf"
"""


def _apt_sources(main: str, sec: str | None) -> str:
    lines = [f"deb {main} {SUITE} main", f"deb {main} {SUITE}-updates main"]
    if sec:
        lines.append(f"deb {sec} {SUITE}-security main")
    return "\n".join(lines) + "\n"


def ensure_base(log=print) -> Path:
    """The debootstrap'ed bookworm root and its layer tarball, built once per base_key()."""
    d = CACHE_DIR / f"base-{base_key()}"
    if (d / "done").exists():
        return d
    with _cache_lock():
        if (d / "done").exists():
            return d
        main, sec = debian_mirrors()
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        t = time.monotonic()
        log(f"testbed: debootstrap {SUITE} from {main} (once; cached in {d})")
        _run(["debootstrap", "--variant=minbase", SUITE, str(d / "rootfs"), main],
             stdout=subprocess.DEVNULL)
        (d / "rootfs/etc/apt/sources.list").write_text(_apt_sources(main, sec))
        _run(["unshare", "--mount", "--propagation", "private", "--", "bash", "-c", _CHROOT_SCRIPT, "x",
              str(d / "rootfs")], env={**os.environ, "PACKAGES": "", "POST_INSTALL": ""})
        _layer_tar(d / "rootfs", None, d / "layer.tar")
        (d / "done").write_text(f"{time.monotonic() - t:.0f}s\n")
        return d


def _excluded(rel: str) -> bool:
    r = rel + "/"
    return any(r.startswith(p) and r != p for p in _EXCLUDE_PREFIXES)


def _walk(root: Path):
    """Relative paths under root (no leading ./), parents before children, excluded paths dropped."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames.sort()
        for n in sorted(dirnames) + sorted(filenames):
            rel = n if rel_dir == "." else f"{rel_dir}/{n}"
            if not _excluded(rel):
                yield rel


def _sig(st: os.stat_result, path: str):
    base = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    if stat.S_ISDIR(st.st_mode):
        return base
    if stat.S_ISLNK(st.st_mode):
        return base + (os.readlink(path),)
    return base + (st.st_size, st.st_mtime_ns)


def _layer_tar(root: Path, base: Path | None, out: Path) -> None:
    """Write a layer tarball of root; with base, only what differs from base plus overlay whiteouts."""
    names: list[str] = []
    whiteouts: list[str] = []
    for rel in _walk(root):
        p = str(root / rel)
        if base is None:
            names.append(rel)
            continue
        b = str(base / rel)
        try:
            bst = os.lstat(b)
        except FileNotFoundError:
            names.append(rel)
            continue
        if _sig(os.lstat(p), p) != _sig(bst, b):
            names.append(rel)
    if base is not None:
        gone_dirs: list[str] = []
        for rel in _walk(base):
            if any(rel.startswith(g + "/") for g in gone_dirs):
                continue
            if not os.path.lexists(root / rel):
                parent, _, leaf = rel.rpartition("/")
                whiteouts.append(f"{parent}/.wh.{leaf}" if parent else f".wh.{leaf}")
                if os.path.isdir(base / rel) and not os.path.islink(base / rel):
                    gone_dirs.append(rel)
    with tempfile.NamedTemporaryFile("w", delete=False) as lst:
        lst.write("\0".join(names))
        lst_name = lst.name
    try:
        # GNU tar: fast, keeps hard links within the layer, numeric owners as the engine expects
        _run(["tar", "-C", str(root), "--numeric-owner", "--no-recursion", "--null", "-T", lst_name,
              "-cf", str(out)])
    finally:
        os.unlink(lst_name)
    if whiteouts:
        with tarfile.open(out, "a") as tf:
            for w in whiteouts:
                ti = tarfile.TarInfo(w)
                ti.mode = 0o644
                tf.addfile(ti)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _image_config(recipe: Recipe, diff_ids: list[str]) -> dict:
    cfg: dict = {"Env": list(recipe.env), "Cmd": list(recipe.cmd) if recipe.cmd else None,
                 "WorkingDir": recipe.workdir,
                 "Labels": {"org.labstack.testbed.stand-in": "debian-bookworm", **recipe.labels}}
    if recipe.entrypoint:
        cfg["Entrypoint"] = list(recipe.entrypoint)
    if recipe.ports:
        cfg["ExposedPorts"] = {p: {} for p in recipe.ports}
    if recipe.volumes:
        cfg["Volumes"] = {v: {} for v in recipe.volumes}
    if recipe.stop_signal:
        cfg["StopSignal"] = recipe.stop_signal
    return {
        "architecture": "amd64", "os": "linux", "created": "2025-01-01T00:00:00Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
        "history": [{"created": "2025-01-01T00:00:00Z", "created_by": "labstack testbed: debootstrap base"},
                    *([{"created": "2025-01-01T00:00:00Z",
                        "created_by": f"labstack testbed: apt-get install {' '.join(recipe.packages)}"}]
                      if len(diff_ids) > 1 else [])],
    }


def wheels_dir(recipe: Recipe) -> Path:
    return CACHE_DIR / "wheels" / hashlib.sha256(repr(recipe.wheels).encode()).hexdigest()[:16]


def ensure_wheels(recipe: Recipe, log=print) -> Path:
    """The recipe's wheels (and their dependencies) for CPython 3.11 on x86_64, downloaded once from the package
    index pip is configured with; later builds install them offline."""
    d = wheels_dir(recipe)
    if (d / "done").exists():
        return d
    log(f"testbed: downloading wheels {' '.join(recipe.wheels)} (once; cached in {d})")
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
          "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
          "--platform", "manylinux2014_x86_64", "-d", str(tmp), *recipe.wheels])
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    (d / "done").write_text("\n".join(recipe.wheels) + "\n")
    return d


def ensure_image(name: str, log=print) -> Path:
    """Path of the cached `docker save` tarball for one stand-in image (built if missing)."""
    recipe = RECIPES[name]
    key = recipe_key(recipe)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    d = CACHE_DIR / "images" / f"{safe}-{key}"
    if (d / "image.tar").exists():
        return d / "image.tar"
    base = ensure_base(log)
    with _cache_lock():
        if (d / "image.tar").exists():
            return d / "image.tar"
        t = time.monotonic()
        log(f"testbed: building stand-in image {name} (cached in {d})")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        layers = [base / "layer.tar"]
        work = d / "rootfs"
        try:
            if recipe.packages or recipe.directory or recipe.post_install:
                wheel_env = ({"WHEEL_DIR": str(ensure_wheels(recipe, log)), "WHEELS": " ".join(recipe.wheels)}
                             if recipe.wheels else {})
                _run(["cp", "-a", str(base / "rootfs"), str(work)])
                _run(["unshare", "--mount", "--propagation", "private", "--", "bash", "-c", _CHROOT_SCRIPT, "x",
                      str(work)], env={**os.environ, "PACKAGES": " ".join(recipe.packages),
                                       "POST_INSTALL": recipe.post_install, **wheel_env},
                     stdout=subprocess.DEVNULL)
                if recipe.directory and (RECIPES_DIR / recipe.directory / "rootfs").is_dir():
                    _run(["cp", "-r", "--no-preserve=ownership", "--preserve=mode",
                          f"{RECIPES_DIR / recipe.directory / 'rootfs'}/.", str(work)])
                _layer_tar(work, base / "rootfs", d / "layer.tar")
                layers.append(d / "layer.tar")
            diff_ids = [_sha256(p) for p in layers]
            config = json.dumps(_image_config(recipe, diff_ids), sort_keys=True).encode()
            config_id = hashlib.sha256(config).hexdigest()
            tmp = d / "image.tar.tmp"
            with tarfile.open(tmp, "w") as tf:
                def add_bytes(arc: str, data: bytes) -> None:
                    ti = tarfile.TarInfo(arc)
                    ti.size = len(data)
                    ti.mode = 0o644
                    import io
                    tf.addfile(ti, io.BytesIO(data))
                for p, dg in zip(layers, diff_ids):
                    tf.add(str(p), arcname=f"{dg}/layer.tar")
                add_bytes(f"{config_id}.json", config)
                add_bytes("manifest.json", json.dumps([{
                    "Config": f"{config_id}.json", "RepoTags": [name],
                    "Layers": [f"{dg}/layer.tar" for dg in diff_ids]}]).encode())
            tmp.rename(d / "image.tar")
            (d / "built").write_text(f"{time.monotonic() - t:.0f}s\n")
        finally:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (d / "layer.tar").unlink()
        return d / "image.tar"


def ensure_images(names=STANDARD_IMAGES, log=print) -> dict[str, Path]:
    return {n: ensure_image(n, log) for n in names}


def pinned_references(names) -> dict[str, str]:
    """Stand-in name (a production tag) -> the pinned reference components/render/images.json gives that tag."""
    from components.render.images import infra_images
    by_tag = {reference.split("@")[0]: reference for reference in infra_images().values() if "@" in reference}
    return {name: by_tag[name] for name in names if name in by_tag}


def register_pins(data_root: Path, names) -> dict[str, str]:
    """Make a stopped engine's data root resolve each pinned reference to its stand-in, so the program's own
    pinned references (`caddy:2@sha256:...`) run the stand-ins with no test-only override. A stand-in cannot
    have the official digest (that is the registry's manifest digest), and no Docker API adds a digest reference;
    the engine's reference store (image/<driver>/repositories.json) holds one as `<repository>@<digest>` beside
    the tag, exactly as a `docker pull` by digest leaves it. Returns what was registered."""
    pins = pinned_references(names)
    for store in data_root.glob("image/*/repositories.json"):
        repositories = json.loads(store.read_text())
        for name, reference in pins.items():
            repository, tag = name.rsplit(":", 1)
            digest = reference.split("@", 1)[1]
            # the store's names are normalised (docker.io/library/caddy); try both spellings
            for repo_key in (repository, f"docker.io/library/{repository}", f"docker.io/{repository}"):
                references = repositories["Repositories"].get(repo_key, {})
                if f"{repo_key}:{tag}" in references:
                    references[f"{repo_key}@{digest}"] = references[f"{repo_key}:{tag}"]
        store.write_text(json.dumps(repositories))
    return pins


def prune_cache(log=print) -> None:
    """Remove cache entries of recipes that no longer exist (old bases, images, engine seeds built from them)."""
    with _cache_lock():
        keep_base = CACHE_DIR / f"base-{base_key()}"
        for d in CACHE_DIR.glob("base-*"):
            if d != keep_base:
                log(f"testbed: pruning {d}")
                shutil.rmtree(d, ignore_errors=True)
        current = {f"{re.sub(r'[^A-Za-z0-9_.-]', '_', n)}-{recipe_key(r)}" for n, r in RECIPES.items()}
        for d in (CACHE_DIR / "images").glob("*"):
            if d.name not in current:
                log(f"testbed: pruning {d}")
                shutil.rmtree(d, ignore_errors=True)
    (CACHE_DIR / "engines").mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / "engines" / ".lock", "w") as lock:  # the lock ensure_engine_seed takes
        fcntl.flock(lock, fcntl.LOCK_EX)
        for d in (p for p in (CACHE_DIR / "engines").glob("*") if p.is_dir()):
            listed = (d / "images.txt").read_text().split() if (d / "images.txt").exists() else []
            if not listed or not all(Path(p).exists() for p in listed):
                log(f"testbed: pruning {d}")
                shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":  # `python -m tests.testbed.images [--prune] [NAME...]` warms the cache (CI setup)
    import sys
    args = sys.argv[1:]
    if "--prune" in args:
        args.remove("--prune")
        prune_cache()
    for n, p in ensure_images(args or STANDARD_IMAGES).items():
        print(f"{n}\t{p}\t{p.stat().st_size // (1 << 20)} MiB")
