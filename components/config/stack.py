"""Typed stack configuration for labstack, read from `pulumi.Config` and validated before any resource exists.

Every key lives in the `labstack:` namespace of `stacks/Pulumi.<stack>.yaml`, except the region, which is the AWS
provider's own `aws:region`. Parsing collects *all* problems and reports them together, one line each, naming the
key, the bad value and the fix, so a scientist fixes their stack file in one go instead of one `pulumi up` per typo.

Two phases:
  * `load_stack_config(raw)` checks everything that can be checked offline (shapes, ranges, files on disk).
  * `resolve_cloud_facts(cfg)` asks AWS (through Pulumi invokes) for what only AWS knows — the AMI behind an SSM
    path and its root volume size, the hosted zone of the DNS host, the VPC of an existing subnet — and turns a
    miss into the same kind of message. Both run before the first resource is declared.
"""
from __future__ import annotations

import getpass
import ipaddress
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import pulumi

NAMESPACE = "labstack"
DEFAULT_AMI_SSM_PATH = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
DEFAULT_INSTANCE_TYPE = "m7i.large"
DEFAULT_STORAGE_GB = 32
MAX_STORAGE_GB = 16384  # gp3 limit
DEFAULT_INGRESS_PORTS = (22, 80, 443, 5000)
DEFAULT_VPC_CIDR = "10.42.0.0/16"
LOGIN_USER = "ubuntu"  # the login user of Canonical's Ubuntu AMIs

SERVER_NAME_RE = re.compile(r"^[a-z0-9-]+$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")
# family (letters, generation digit, attribute letters) "." size, e.g. t3.micro, m7i.large, c6gn.16xlarge, u-6tb1.metal
INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$")
AMI_ID_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
SSM_PATH_RE = re.compile(r"^/[A-Za-z0-9_.\-/]+$")
KEY_PAIR_NAME_RE = re.compile(r"^[\x20-\x7e]{1,255}$")
SECURITY_GROUP_ID_RE = re.compile(r"^sg-[0-9a-f]{8,17}$")
SUBNET_ID_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
ZONE_ID_RE = re.compile(r"^Z[A-Z0-9]{1,32}$")
DNS_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Graviton families end their family name in "g" (t4g, m7g, c6gn, r8gd): they cannot boot an amd64 AMI.
ARM_FAMILY_RE = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*$")
ARM_FAMILY_PREFIXES = ("a1",)


class ConfigError(pulumi.RunError):
    """All the problems of one stack file; `pulumi up` prints it without a Python traceback."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"labstack: the stack configuration has {len(problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class KeyPairConfig:
    existing_name: Optional[str] = None  # an EC2 key pair that already exists in the region
    pem_path: Optional[Path] = None  # the seeds' server_pem: the local private key labstack connects with
    public_key: Optional[str] = None  # OpenSSH public key derived from pem_path; imported unless existing_name

    def private_key(self) -> Optional[str]:
        return self.pem_path.read_text() if self.pem_path else None


@dataclass(frozen=True)
class FirewallConfig:
    existing_id: Optional[str] = None
    ports: tuple[int, ...] = DEFAULT_INGRESS_PORTS
    cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    ipv6_cidrs: tuple[str, ...] = ("::/0",)


@dataclass(frozen=True)
class NetworkConfig:
    mode: str = "default"  # default | create | subnet
    subnet_id: Optional[str] = None
    vpc_cidr: str = DEFAULT_VPC_CIDR


@dataclass(frozen=True)
class DnsConfig:
    host: Optional[str] = None
    zone_id: Optional[str] = None


@dataclass(frozen=True)
class AppConfig:
    """One docker-compose app on the server (web + workers, with its own Postgres and Redis)."""

    name: str
    image: str  # repo@sha256:… — pinned, so a redeploy happens only when the digest changes
    port: int = 5000
    command: Optional[str] = None  # web command; None keeps the image's CMD
    workers: int = 0
    worker_command: Optional[str] = None
    env: Mapping[str, str] = field(default_factory=dict)
    host: Optional[str] = None  # "@" (the DNS host), a label (<label>.<dns host>; default: the app's name) or a
    # full name. Explicit, so adding or removing another app never moves this one.
    health_path: str = "/health"
    health_timeout_seconds: int = 120
    postgres: bool = True
    redis: bool = True
    build: Optional[str] = None  # build context for `invoke build`, relative to the project
    clock_command: Optional[str] = None  # one more service of the same image (a scheduler), like a worker
    init_command: Optional[str] = None  # runs once per app lifetime, before web takes traffic
    init_run: int = 1  # raise it to run the init command once more
    post_deploy: Optional["PostDeployConfig"] = None


@dataclass(frozen=True)
class PostDeployConfig:
    """After a deploy: an HTTP request through the app's public URL, or a command in the web container."""

    when: str = "first"  # first (only after the first deploy) | always
    method: str = "POST"
    path: Optional[str] = None
    expect_status: int = 200
    retries: int = 5
    command: Optional[str] = None


@dataclass(frozen=True)
class ProxyConfig:
    tls: str = "acme"  # acme | internal
    acme_email: Optional[str] = None
    dashboard_user: str = "admin"
    dashboard_path: str = "/dashboard"
    log_viewer: bool = False  # /labstack-logs/ on every app's site, behind the dashboard password


@dataclass(frozen=True)
class ExistingServerConfig:
    """A server the operator already controls (the seeds' docker-ssh mode): no EC2 resources are declared."""

    host: str
    host_key: str  # OpenSSH public host key, pinned
    user: str = LOGIN_USER
    port: int = 22


@dataclass(frozen=True)
class StackConfig:
    stack: str
    project: str
    server_name: str
    region: str
    instance_type: str
    storage_gb: int
    desired_state: str
    ami: str  # an ami-… id or an SSM parameter path
    key_pair: KeyPairConfig
    firewall: FirewallConfig
    network: NetworkConfig
    dns: DnsConfig
    creator: str
    user_tags: Mapping[str, str] = field(default_factory=dict)
    apps: tuple[AppConfig, ...] = ()
    proxy: ProxyConfig = ProxyConfig()
    existing_server: Optional[ExistingServerConfig] = None
    discard_data_on_destroy: bool = False  # only an explicit `true` lets a delete skip the export
    exports_dir: str = "exports"

    def app_host(self, app: AppConfig, address: str) -> str:
        """The public name an app is served under; `address` is the server's IP when there is no DNS host."""
        # nip.io resolves <ip>.nip.io to <ip>: HTTPS without DNS. A server known by name is its own base.
        base = self.dns.host or (f"{address}.nip.io" if _is_ip(address) else address)
        if app.host and "." in app.host:
            return app.host
        if app.host == "@":
            return base
        return f"{app.host or app.name}.{base}"

    def tags(self, role: str) -> dict[str, str]:
        """User tags plus labstack's own; ours win so inventory and cost reports can trust them."""
        return {
            **self.user_tags,
            "Name": self.server_name if role == "server" else f"{self.server_name}-{role}",
            "labstack:stack": self.stack,
            "labstack:project": self.project,
            "labstack:role": role,
            "labstack:creator": self.creator,
        }


SECRET_SHOWN_AS = "[secret]"
ALWAYS_SECRET_KEYS = {"labstack:appSecrets", "labstack:dashboardPassword"}


class _Reader:
    """Reads raw config values and collects problems instead of failing at the first one. Values of secret keys
    are never quoted back: error messages reach terminals and CI logs."""

    def __init__(self, raw: Mapping[str, Any], secret_keys: Iterable[str] = ()):
        self.raw = raw
        self.secret_keys = set(secret_keys) | ALWAYS_SECRET_KEYS
        self.problems: list[str] = []

    def fail(self, key: str, value: Any, fix: str, secret: bool = False) -> None:
        if secret or key in self.secret_keys or _looks_secret(key):
            shown = SECRET_SHOWN_AS
        else:
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
        self.problems.append(f"{key} = {shown!r}: {fix}")

    def get(self, key: str) -> Any:
        return self.raw.get(key)

    def string(self, key: str, default: Optional[str] = None) -> Optional[str]:
        value = self.raw.get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            self.fail(key, value, "expected a text value")
            return default
        return value.strip()

    def integer(self, key: str, default: int, low: int, high: int, unit: str = "") -> int:
        value = self.raw.get(key)
        if value is None or value == "":
            return default
        try:
            number = int(str(value).strip())
        except ValueError:
            self.fail(key, value, f"expected a whole number{unit}, e.g. `pulumi config set {key} {default}`")
            return default
        if not low <= number <= high:
            self.fail(key, value, f"must be between {low} and {high}{unit}")
            return default
        return number

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, str):  # `pulumi config set labstack:ingressCidrs 1.2.3.0/24,5.6.7.0/24`
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            self.fail(key, value, "expected a list, e.g. `pulumi config set --path 'KEY[0]' VALUE` or a comma list")
            return default
        return tuple(str(v).strip() for v in value)


def _looks_secret(key: str) -> bool:
    """A mistyped secret key is still a secret: judge by its name too."""
    lowered = key.lower()
    return any(word in lowered for word in ("password", "secret", "token", "passphrase", "apikey", "api_key"))


KNOWN_KEYS = {
    "aws:region",
    "labstack:serverName", "labstack:instanceType", "labstack:storageGb", "labstack:desiredState",
    "labstack:ami", "labstack:keyPair", "labstack:serverPem", "labstack:securityGroup", "labstack:ingressPorts",
    "labstack:ingressCidrs", "labstack:ingressIpv6Cidrs", "labstack:network", "labstack:vpcCidr",
    "labstack:dnsHost", "labstack:dnsZoneId", "labstack:tags", "labstack:creator",
    "labstack:apps", "labstack:appSecrets", "labstack:tls", "labstack:acmeEmail", "labstack:dashboardUser",
    "labstack:dashboardPassword", "labstack:dashboardPath", "labstack:existingServer",
    "labstack:discardDataOnDestroy", "labstack:exportsDir", "labstack:logViewer",
}
APP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# registry[:port]/path[:tag]@sha256:<64 hex>, as `docker pull` accepts it
PINNED_IMAGE_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(\.[a-z0-9-]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                             r"(:[\w][\w.-]{0,127})?@sha256:[0-9a-f]{64}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEALTH_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
APP_KEYS = {"image", "port", "command", "workers", "workerCommand", "env", "host", "healthPath",
            "healthTimeoutSeconds", "postgres", "redis", "build", "clockCommand", "initCommand", "initRun",
            "postDeploy"}
POST_DEPLOY_KEYS = {"when", "method", "path", "expectStatus", "retries", "command"}
RESERVED_ENV = {"DATABASE_URL", "REDIS_URL", "LABSTACK_APP", "LABSTACK_DATA_DIR", "PORT"}


def load_stack_config(raw: Mapping[str, Any], stack: str, project: str = "labstack",
                      secret_keys: Iterable[str] = ()) -> StackConfig:
    """Parse and validate everything that can be checked offline. Raises ConfigError listing every problem."""
    r = _Reader(raw, secret_keys)
    for key in sorted(raw):
        if key.startswith(f"{NAMESPACE}:") and key not in KNOWN_KEYS:
            close = [k for k in KNOWN_KEYS if k.lower() == key.lower()]
            hint = f"did you mean {close[0]}?" if close else "not a labstack setting; see the README's config table"
            r.fail(key, raw[key], f"unknown key: {hint}")

    server_name = r.string("labstack:serverName", default=stack) or stack
    if not SERVER_NAME_RE.match(server_name):
        r.fail("labstack:serverName", server_name,
               "use lower-case letters, digits and dashes only (as Dallinger), e.g. paris-batch2")

    region = r.string("aws:region")
    if region is None and raw.get("labstack:existingServer") is not None:
        region = ""  # nothing is made in AWS for a server the operator already has
    elif region is None:
        r.problems.append("aws:region is not set: run `pulumi config set aws:region eu-west-3` (or your region)")
    elif not REGION_RE.match(region):
        r.fail("aws:region", region, "expected an AWS region code such as eu-west-3 or us-east-1")

    instance_type = r.string("labstack:instanceType", DEFAULT_INSTANCE_TYPE) or DEFAULT_INSTANCE_TYPE
    if not INSTANCE_TYPE_RE.match(instance_type):
        r.fail("labstack:instanceType", instance_type,
               f"expected an EC2 instance type such as {DEFAULT_INSTANCE_TYPE} or t3.medium")

    storage_gb = r.integer("labstack:storageGb", DEFAULT_STORAGE_GB, 8, MAX_STORAGE_GB, " GB")

    desired_state = r.string("labstack:desiredState", "running")
    if desired_state not in ("running", "stopped"):
        r.fail("labstack:desiredState", desired_state, "must be `running` or `stopped`")

    ami = r.string("labstack:ami", DEFAULT_AMI_SSM_PATH) or DEFAULT_AMI_SSM_PATH
    if not (AMI_ID_RE.match(ami) or SSM_PATH_RE.match(ami)):
        r.fail("labstack:ami", ami,
               "expected an AMI id such as ami-0123456789abcdef0 or an SSM parameter path starting with /")
    elif ami == DEFAULT_AMI_SSM_PATH and INSTANCE_TYPE_RE.match(instance_type) and _is_arm(instance_type):
        r.fail("labstack:instanceType", instance_type,
               "this is an ARM (Graviton) type but the default AMI is amd64: choose an x86 type such as "
               f"{DEFAULT_INSTANCE_TYPE}, or set labstack:ami to the arm64 SSM path "
               f"({DEFAULT_AMI_SSM_PATH.replace('/amd64/', '/arm64/')})")

    key_pair = _key_pair(r)
    firewall = _firewall(r)
    network = _network(r)
    dns = _dns(r)

    tags = r.get("labstack:tags") or {}
    user_tags: dict[str, str] = {}
    if not isinstance(tags, dict):
        r.fail("labstack:tags", tags, "expected a map of tag names to values, e.g. `pulumi config set --path "
               "'labstack:tags.team' psych-lab`")
    else:
        for name, value in tags.items():
            if name.lower().startswith(("aws:", "labstack:")) or name == "Name":
                r.fail(f"labstack:tags.{name}", value,
                       "tag names starting with aws: or labstack:, and Name, are reserved; pick another name")
            elif len(name) > 128 or len(str(value)) > 256:
                r.fail(f"labstack:tags.{name}", value, "AWS limits tag names to 128 and values to 256 characters")
            else:
                user_tags[str(name)] = str(value)

    creator = r.string("labstack:creator") or _local_user()
    existing_server = _existing_server(r)
    if existing_server is not None:
        for key in ("labstack:network", "labstack:securityGroup", "labstack:dnsZoneId", "labstack:keyPair"):
            if r.get(key) is not None:
                r.fail(key, r.get(key), "has no effect with labstack:existingServer (no AWS resources are made); "
                                        "remove it")
        if key_pair.pem_path is None and not r.problems:
            r.problems.append("labstack:existingServer needs labstack:serverPem: the private key to log in with")
    apps = _apps(r)
    if apps and key_pair.pem_path is None and key_pair.existing_name:
        r.problems.append(f"labstack:serverPem is not set: labstack deploys apps over SSH and needs the private key "
                          f"of key pair {key_pair.existing_name!r}: `pulumi config set labstack:serverPem <path>`")
    proxy = _proxy(r)
    discard = r.get("labstack:discardDataOnDestroy")
    if discard is not None and str(discard).lower() not in ("true", "false"):
        r.fail("labstack:discardDataOnDestroy", discard, "expected true or false (true deletes apps without "
                                                       "exporting their data first)")
    exports_dir = r.string("labstack:exportsDir", "exports") or "exports"

    if r.problems:
        raise ConfigError(r.problems)
    return StackConfig(
        stack=stack, project=project, server_name=server_name, region=region or "", instance_type=instance_type,
        storage_gb=storage_gb, desired_state=desired_state or "running", ami=ami, key_pair=key_pair,
        firewall=firewall, network=network, dns=dns, creator=creator, user_tags=user_tags,
        apps=apps, proxy=proxy, existing_server=existing_server,
        discard_data_on_destroy=str(discard).lower() == "true", exports_dir=exports_dir,
    )


def _apps(r: _Reader) -> tuple[AppConfig, ...]:
    raw_apps = r.get("labstack:apps") or {}
    if not isinstance(raw_apps, dict):
        r.fail("labstack:apps", raw_apps, "expected a map of app name to settings; see the README's apps section")
        return ()
    secrets = r.get("labstack:appSecrets") or {}
    if not isinstance(secrets, dict) or not all(isinstance(v, dict) for v in secrets.values()):
        r.fail("labstack:appSecrets", "[secret]", "expected a map app -> {NAME: value}: `pulumi config set --secret "
                                                 "--path 'labstack:appSecrets.<app>.<NAME>' <value>`")
        secrets = {}
    for app_name in secrets:
        if app_name not in raw_apps:
            r.fail(f"labstack:appSecrets.{app_name}", "[secret]", "names no app in labstack:apps; fix the app name")
    apps = []
    for name, spec in raw_apps.items():
        key = f"labstack:apps.{name}"
        if not APP_NAME_RE.match(str(name)):
            r.fail(key, name, "app names are lower-case letters, digits and dashes, starting with a letter, "
                              "at most 31 characters")
            continue
        if not isinstance(spec, dict):
            r.fail(key, spec, "expected the app's settings as a map with at least `image`")
            continue
        for unknown in sorted(set(spec) - APP_KEYS):
            r.fail(f"{key}.{unknown}", spec[unknown], f"unknown app setting; known: {', '.join(sorted(APP_KEYS))}")
        apps.append(_app(r, key, str(name), spec, secrets.get(name) or {}))
    return tuple(apps)


def _app(r: _Reader, key: str, name: str, spec: dict, secrets: dict) -> AppConfig:
    sub = _Reader({k: v for k, v in spec.items()})
    image = sub.string("image")
    if not image:
        r.problems.append(f"{key}.image is not set: build and pin one with `invoke build push -s <stack> --app {name}`")
    elif not PINNED_IMAGE_RE.match(image):
        r.fail(f"{key}.image", image, "must be pinned by digest (repo@sha256:<64 hex>) so a redeploy is exact: "
                                      f"run `invoke build push -s <stack> --app {name}` to pin it")
    port = sub.integer("port", 5000, 1, 65535)
    workers = sub.integer("workers", 0, 0, 64)
    timeout = sub.integer("healthTimeoutSeconds", 120, 5, 3600, " seconds")
    health_path = sub.string("healthPath", "/health") or "/health"
    if not HEALTH_PATH_RE.match(health_path):
        sub.fail("healthPath", health_path, "expected a URL path such as /health")
    env = spec.get("env") or {}
    if not isinstance(env, dict):
        sub.fail("env", env, "expected a map of variable names to values")
        env = {}
    for var, value in {**env, **secrets}.items():
        secret = var in secrets
        if not ENV_NAME_RE.match(str(var)):
            sub.fail(f"env.{var}", value, "variable names are letters, digits and underscores, not starting with a "
                                          "digit", secret=secret)
        elif var in RESERVED_ENV:
            sub.fail(f"env.{var}", value, f"is set by labstack itself ({', '.join(sorted(RESERVED_ENV))}); rename it",
                     secret=secret)
        elif var in env and secret:
            sub.fail(f"env.{var}", value, "is also in labstack:appSecrets; keep it in one place", secret=True)
    host = sub.string("host")
    if host is not None and host != "@" and not all(DNS_LABEL_RE.match(label) for label in host.lower().split(".")):
        sub.fail("host", host, "expected `@` (the DNS host itself), a label such as `elif`, or a full DNS name")
    worker_command = sub.string("workerCommand")
    if workers and not worker_command:
        sub.problems.append(f"workers = {workers} but workerCommand is not set: give the command the workers run, "
                            "e.g. `python worker.py`")
    flags = {}
    for flag in ("postgres", "redis"):
        value = spec.get(flag, True)
        if not isinstance(value, bool) and str(value).lower() not in ("true", "false"):
            sub.fail(flag, value, "expected true or false")
        flags[flag] = value if isinstance(value, bool) else str(value).lower() == "true"
    init_run = sub.integer("initRun", 1, 1, 1_000_000)
    post_deploy = _post_deploy(sub, spec.get("postDeploy"))
    r.problems.extend(f"{key}.{problem}" for problem in sub.problems)
    return AppConfig(name=name, image=image or "", port=port, command=sub.string("command"), workers=workers,
                     worker_command=worker_command, env={str(k): env_text(v) for k, v in env.items()}, host=host,
                     health_path=health_path, health_timeout_seconds=timeout, postgres=flags["postgres"],
                     redis=flags["redis"], build=sub.string("build"), clock_command=sub.string("clockCommand"),
                     init_command=sub.string("initCommand"), init_run=init_run, post_deploy=post_deploy)


def env_text(value: Any) -> str:
    """An env value as the user wrote it: YAML's true stays `true` (Python would say `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _post_deploy(sub: _Reader, spec: Any) -> Optional[PostDeployConfig]:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        sub.fail("postDeploy", spec, "expected {path: /launch, method: POST, expectStatus: 200} or {command: ...}")
        return None
    for unknown in sorted(set(spec) - POST_DEPLOY_KEYS):
        sub.fail(f"postDeploy.{unknown}", spec[unknown], f"unknown setting; known: {', '.join(sorted(POST_DEPLOY_KEYS))}")
    hook = _Reader(spec)
    when = hook.string("when", "first") or "first"
    if when not in ("first", "always"):
        hook.fail("when", when, "must be `first` (after the first deploy only) or `always` (after every deploy)")
    path, command = hook.string("path"), hook.string("command")
    if bool(path) == bool(command):
        hook.problems.append("needs exactly one of `path` (an HTTP request through the app's URL) or `command` "
                             "(run in the web container)")
    if path and not HEALTH_PATH_RE.match(path):
        hook.fail("path", path, "expected a URL path such as /launch")
    method = (hook.string("method", "POST") or "POST").upper()
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
        hook.fail("method", method, "expected GET, POST, PUT, PATCH, DELETE or HEAD")
    expect = hook.integer("expectStatus", 200, 100, 599)
    retries = hook.integer("retries", 5, 0, 20)
    sub.problems.extend(f"postDeploy.{problem}" for problem in hook.problems)
    return PostDeployConfig(when=when, method=method, path=path, expect_status=expect, retries=retries,
                            command=command)


def _proxy(r: _Reader) -> ProxyConfig:
    tls = r.string("labstack:tls", "acme") or "acme"
    if tls not in ("acme", "internal"):
        r.fail("labstack:tls", tls, "must be `acme` (Let's Encrypt certificates) or `internal` (Caddy's own CA, for "
                                    "tests and servers without a public name)")
    email = r.string("labstack:acmeEmail")
    if email is not None and not EMAIL_RE.match(email):
        r.fail("labstack:acmeEmail", email, "expected an email address for certificate expiry notices")
    user = r.string("labstack:dashboardUser", "admin") or "admin"
    if not re.match(r"^[A-Za-z0-9._-]{1,64}$", user):
        r.fail("labstack:dashboardUser", user, "use letters, digits, dot, dash or underscore")
    path = r.string("labstack:dashboardPath", "/dashboard") or "/dashboard"
    if not HEALTH_PATH_RE.match(path):
        r.fail("labstack:dashboardPath", path, "expected a URL path such as /dashboard")
    log_viewer = r.get("labstack:logViewer")
    if log_viewer is not None and str(log_viewer).lower() not in ("true", "false"):
        r.fail("labstack:logViewer", log_viewer, "expected true or false")
    log_viewer = str(log_viewer).lower() == "true"
    if log_viewer and not r.get("labstack:dashboardPassword"):
        r.problems.append("labstack:logViewer is true but labstack:dashboardPassword is not set: the log viewer is "
                          "only served behind that password (`pulumi config set --secret "
                          "labstack:dashboardPassword <password>`)")
    return ProxyConfig(tls=tls, acme_email=email, dashboard_user=user, dashboard_path=path.rstrip("/") or "/",
                       log_viewer=log_viewer)


def _existing_server(r: _Reader) -> Optional[ExistingServerConfig]:
    spec = r.get("labstack:existingServer")
    if spec is None:
        return None
    key = "labstack:existingServer"
    if not isinstance(spec, dict) or not spec.get("host") or not spec.get("hostKey"):
        r.fail(key, spec, "expected {host: <name or IP>, hostKey: <its ssh-ed25519 public host key>, user: ubuntu}; "
                          "read the host key on the server with `cat /etc/ssh/ssh_host_ed25519_key.pub`")
        return None
    host_key = str(spec["hostKey"]).strip()
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key
    try:
        load_ssh_public_key(" ".join(host_key.split()[:2]).encode())
    except (ValueError, UnsupportedAlgorithm):
        r.fail(f"{key}.hostKey", host_key, "expected an OpenSSH public key line such as `ssh-ed25519 AAAA…`, as in "
                                          "the server's /etc/ssh/ssh_host_ed25519_key.pub")
    sub = _Reader(spec)
    port = sub.integer("port", 22, 1, 65535)
    user = sub.string("user", LOGIN_USER) or LOGIN_USER
    if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", user):
        sub.fail("user", user, "expected a Linux login name such as ubuntu")
    host = str(spec["host"]).strip()
    if not (_is_ip(host) or all(DNS_LABEL_RE.match(label) for label in host.lower().split("."))):
        sub.fail("host", host, "expected the server's IP address or DNS name")
    r.problems.extend(f"{key}.{problem}" for problem in sub.problems)
    return ExistingServerConfig(host=host, host_key=" ".join(host_key.split()[:2]), user=user, port=port)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _is_arm(instance_type: str) -> bool:
    family = instance_type.split(".", 1)[0]
    return family.startswith(ARM_FAMILY_PREFIXES) or bool(ARM_FAMILY_RE.match(family))


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _key_pair(r: _Reader) -> KeyPairConfig:
    name = r.string("labstack:keyPair")
    pem = r.string("labstack:serverPem")
    if not name and not pem:
        r.problems.append("no SSH key: set labstack:serverPem to your private key file (its public half is imported, "
                          "e.g. `pulumi config set labstack:serverPem ~/.ssh/id_ed25519`) or labstack:keyPair to an "
                          "existing EC2 key pair name")
        return KeyPairConfig()
    if name and not KEY_PAIR_NAME_RE.match(name):
        r.fail("labstack:keyPair", name, "EC2 key pair names are 1-255 printable ASCII characters")
    if not pem:
        return KeyPairConfig(existing_name=name)
    # With keyPair set too, serverPem is that key pair's private half: used for SSH, not imported.
    path = Path(os.path.expanduser(pem))
    public_key = read_public_key(path, lambda fix: r.fail("labstack:serverPem", pem, fix))
    return KeyPairConfig(existing_name=name, pem_path=path, public_key=public_key)


def read_public_key(path: Path, fail: Callable[[str], None]) -> Optional[str]:
    """The OpenSSH public half of a local private key, after the checks ssh itself would make."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    if not path.is_file():
        fail(f"no such file {path}; create one with `ssh-keygen -t ed25519 -f {path}`")
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        fail(f"the key is readable by others (mode {mode:o}); ssh will refuse it: run `chmod 400 {path}`")
        return None
    data = path.read_bytes()
    key = None
    for loader in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            key = loader(data, password=None)
            break
        except TypeError:  # encrypted: cryptography asks for the password
            fail("the key is protected by a passphrase; labstack cannot read it: import its .pub as an EC2 key pair "
                 "and set labstack:keyPair instead, or use an unencrypted deploy key")
            return None
        except (ValueError, UnsupportedAlgorithm):
            continue
    if key is None:
        fail("not a private key labstack can read (expected OpenSSH or PEM format)")
        return None
    if isinstance(key, dsa.DSAPrivateKey):
        fail("DSA keys are refused: EC2 does not accept them and OpenSSH disabled them as too weak; "
             f"make an Ed25519 key with `ssh-keygen -t ed25519 -f {path.with_name('labstack_ed25519')}`")
        return None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        fail(f"RSA key of {key.key_size} bits is too weak; use at least 2048 bits or `ssh-keygen -t ed25519`")
        return None
    if not isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        fail(f"unsupported key type {type(key).__name__}; use Ed25519, RSA (2048+) or ECDSA")
        return None
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode()


def _firewall(r: _Reader) -> FirewallConfig:
    existing = r.string("labstack:securityGroup")
    if existing:
        if not SECURITY_GROUP_ID_RE.match(existing):
            r.fail("labstack:securityGroup", existing, "expected a security group id such as sg-0123456789abcdef0")
        for key in ("labstack:ingressPorts", "labstack:ingressCidrs", "labstack:ingressIpv6Cidrs"):
            if r.get(key) is not None:
                r.fail(key, r.get(key), "has no effect with an existing labstack:securityGroup; remove one of them")
        return FirewallConfig(existing_id=existing)

    ports: list[int] = []
    for value in r.string_list("labstack:ingressPorts", tuple(map(str, DEFAULT_INGRESS_PORTS))):
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            r.fail("labstack:ingressPorts", value, "each port must be a number from 1 to 65535")
        else:
            ports.append(int(value))
    if len(set(ports)) != len(ports):
        r.fail("labstack:ingressPorts", ports, "lists a port twice; remove the duplicate")
    cidrs = _cidrs(r, "labstack:ingressCidrs", ("0.0.0.0/0",), ipaddress.IPv4Network)
    ipv6 = _cidrs(r, "labstack:ingressIpv6Cidrs", ("::/0",), ipaddress.IPv6Network)
    return FirewallConfig(ports=tuple(dict.fromkeys(ports)), cidrs=cidrs, ipv6_cidrs=ipv6)


def _cidrs(r: _Reader, key: str, default: tuple[str, ...], kind: type) -> tuple[str, ...]:
    good: list[str] = []
    for value in r.string_list(key, default):
        try:
            good.append(str(kind(value, strict=True)))
        except ValueError:
            try:
                suggestion = f"; did you mean {kind(value, strict=False)}?"
            except ValueError:
                suggestion = ""
            family = "IPv4" if kind is ipaddress.IPv4Network else "IPv6"
            r.fail(key, value, f"expected an {family} network in CIDR form such as "
                               f"{'203.0.113.0/24' if family == 'IPv4' else '2001:db8::/32'}{suggestion}")
    return tuple(good)


def _network(r: _Reader) -> NetworkConfig:
    value = r.string("labstack:network", "default") or "default"
    vpc_cidr = r.string("labstack:vpcCidr", DEFAULT_VPC_CIDR) or DEFAULT_VPC_CIDR
    if r.get("labstack:vpcCidr") is not None and value != "create":
        r.fail("labstack:vpcCidr", vpc_cidr, "only used with labstack:network = create; remove it or set network")
    try:
        net = ipaddress.IPv4Network(vpc_cidr, strict=True)
        if not 16 <= net.prefixlen <= 24:
            r.fail("labstack:vpcCidr", vpc_cidr, "AWS VPCs must be between /16 and /24")
    except ValueError:
        r.fail("labstack:vpcCidr", vpc_cidr, f"expected an IPv4 network such as {DEFAULT_VPC_CIDR}")
    if value in ("default", "create"):
        return NetworkConfig(mode=value, vpc_cidr=vpc_cidr)
    if SUBNET_ID_RE.match(value):
        return NetworkConfig(mode="subnet", subnet_id=value)
    r.fail("labstack:network", value,
           "expected `default` (the region's default VPC), `create` (a new VPC and public subnet) or an existing "
           "subnet id such as subnet-0123456789abcdef0")
    return NetworkConfig()


def _dns(r: _Reader) -> DnsConfig:
    host = r.string("labstack:dnsHost")
    zone_id = r.string("labstack:dnsZoneId")
    if host is not None:
        host = host.rstrip(".").lower()
        labels = host.split(".")
        if host.startswith("*."):
            r.fail("labstack:dnsHost", host, "give the plain host; labstack adds the *.host wildcard record itself")
        elif len(labels) < 2 or len(host) > 253 or not all(DNS_LABEL_RE.match(label) for label in labels):
            r.fail("labstack:dnsHost", host, "expected a DNS name such as elif.my-experiments.org "
                                             "(letters, digits and dashes, at least two labels)")
    if zone_id is not None:
        if host is None:
            r.fail("labstack:dnsZoneId", zone_id, "only used with labstack:dnsHost; set the host too")
        elif not ZONE_ID_RE.match(zone_id):
            r.fail("labstack:dnsZoneId", zone_id, "expected a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ")
    return DnsConfig(host=host, zone_id=zone_id)
