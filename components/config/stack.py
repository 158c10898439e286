"""The typed stack configuration the program and the operator tasks use, read from a validated stack file.

Every key lives in the `labstack:` namespace of `stacks/Pulumi.<stack>.yaml`, except the region, which is the AWS
provider's own `aws:region`; `components.config.schema` says what each one means and accepts. Parsing collects *all*
problems and reports them together, one line each, naming the key, the bad value and the fix, so a scientist fixes
their stack file in one go instead of one `pulumi up` per typo.

Two phases:
  * `load_stack_config(raw)` checks everything that can be checked offline (shapes, ranges, files on disk).
  * `components.config.cloud.resolve_cloud_facts(cfg)` asks AWS (through Pulumi invokes) what only AWS knows and
    turns a miss into the same kind of message. Both run before the first resource is declared.
"""
from __future__ import annotations

import getpass
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from pydantic import SecretStr, ValidationError
from pydantic.alias_generators import to_camel

from components.config.cluster import ClusterConfig, cluster_config
from components.config.auto_stop import AutoStopConfig, auto_stop_config
from components.config.data_volume import DataVolumeConfig, data_volume_config
from components.config.apps import PROCESS_COMMANDS, AppConfig, is_compound, looks_like_a_secret_name
from components.config.formats import is_ip, resolved_host
from components.config.messages import ConfigError, as_invoke, problem_lines
from components.config.registry import EcrRepository, RegistryLogin, ecr_repositories
from components.config.cost import BudgetSettings, SpotSettings, unpriced_warning
from components.config.schema import SECRET_KEYS, ExistingServerConfig, StackFile


@dataclass(frozen=True)
class KeyPairConfig:
    existing_name: Optional[str]  # an EC2 key pair that already exists in the region
    pem_path: Optional[Path]  # the seeds' server_pem: the local private key labstack connects with
    public_key: Optional[str]  # OpenSSH public key derived from pem_path; imported unless existing_name

    def private_key(self) -> Optional[str]:
        return self.pem_path.read_text() if self.pem_path else None


@dataclass(frozen=True)
class FirewallConfig:
    existing_id: Optional[str]
    ports: tuple[int, ...]
    cidrs: tuple[str, ...]
    ipv6_cidrs: tuple[str, ...]
    ssh_cidrs: tuple[str, ...]  # IPv4 and IPv6 networks port 22 opens to, instead of cidrs and ipv6_cidrs


@dataclass(frozen=True)
class NetworkConfig:
    mode: str  # default | create | subnet
    subnet_id: Optional[str]
    vpc_cidr: str


@dataclass(frozen=True)
class DnsConfig:
    host: Optional[str]
    zone_id: Optional[str]


@dataclass(frozen=True)
class ProxyConfig:
    tls: str  # acme | internal
    acme_email: Optional[str]
    dashboard_user: str
    dashboard_path: str
    log_viewer: bool  # /labstack-logs/ on every app's site, behind the dashboard password
    dashboard_password: Optional[SecretStr] = None


@dataclass(frozen=True)
class StackConfig:
    stack: str
    project: str
    server_name: str
    region: str  # empty for an existing server: nothing is made in AWS
    instance_type: str
    storage_gb: int
    desired_state: str  # running | stopped | auto (Pulumi does not own the power state: docs/lifecycle.md)
    ami: str  # an ami-… id or an SSM parameter path
    key_pair: KeyPairConfig
    firewall: FirewallConfig
    network: NetworkConfig
    dns: DnsConfig
    creator: str
    user_tags: Mapping[str, str]
    apps: tuple[AppConfig, ...]
    proxy: ProxyConfig
    existing_server: Optional[ExistingServerConfig]
    discard_data_on_destroy: bool  # only an explicit `true` lets a delete skip the export
    container_metadata: bool  # true: no metadata guard (hooks/metadata-guard.sh) on the nodes labstack made
    exports_dir: str
    registry_auth: Mapping[str, RegistryLogin]  # logins for private registries other than ECR
    warnings: tuple[str, ...] = ()  # never fail: `invoke check` shows them, the program logs them
    spot: Optional[SpotSettings] = None  # None: on-demand instances (components/config/cost.py)
    budget: Optional[BudgetSettings] = None
    cluster: Optional[ClusterConfig] = None  # None: one server (components/config/cluster.py)
    data_volume: Optional[DataVolumeConfig] = None  # None: data on the root disk (components/config/data_volume.py)
    auto_stop: Optional[AutoStopConfig] = None  # None: no watcher (components/config/auto_stop.py)

    @property
    def ecr_repositories(self) -> tuple[EcrRepository, ...]:
        """The ECR repositories the apps' images name: what the server's instance role may pull."""
        return ecr_repositories(app.image for app in self.apps)

    def base_host(self, address: str) -> str:
        """The name the head serves HTTPS under (the `url` output, the base of app names); `address` is its IP or
        name."""
        # nip.io resolves <ip>.nip.io to <ip>: HTTPS without DNS. A server known by name is its own base.
        return self.dns.host or (f"{address}.nip.io" if is_ip(address) else address)

    def app_host(self, app: AppConfig, address: str) -> str:
        """The public name an app is served under; `address` is the server's IP when there is no DNS host."""
        return resolved_host(app.host, app.name, self.base_host(address))

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


ORDER = {key: rank for rank, key in enumerate(StackFile.setting_keys())}


def load_stack_config(raw: Mapping[str, Any], stack: str, project: str = "labstack",
                      secret_keys: Optional[Iterable[str]] = None, warnings: Iterable[str] = ()) -> StackConfig:
    """Parse and validate everything that can be checked offline. Raises ConfigError listing every problem; values
    of `secret_keys` (the keys Pulumi marks secret: stored encrypted) are never quoted, and the secret settings must
    be among them. None: not known (a config built in memory, as in tests), so that one check cannot run; the
    program and labstack/stacks/stackfile.py always know. `warnings` (e.g. from reading the file) join the config's own."""
    encrypted = None if secret_keys is None else frozenset(secret_keys)
    masked = SECRET_KEYS | (encrypted or frozenset())
    try:
        file = StackFile.model_validate(dict(raw), context={"stack": stack, "secret_keys": masked,
                                                            "encrypted_keys": encrypted})
    except ValidationError as error:
        raise ConfigError(problem_lines(error, ORDER, masked, stack)) from None
    unpriced = unpriced_warning(file.region or "", file.instance_types(), file.spot, file.budget)
    return replace(stack_config(file, stack, project),
                   warnings=tuple(as_invoke(warning, stack) for warning in
                                  (*warnings, *config_warnings(file), *([unpriced] if unpriced else []))))


def config_warnings(file: StackFile) -> list[str]:
    """What is valid but probably not meant: a plain env variable whose name says it holds a credential."""
    return [f"labstack:apps.{app}.env.{name}: the name looks secret but the value is plain text in the stack file "
            f"(and in git); if it is a credential, move it: `pulumi config set --secret --path "
            f"'labstack:appSecrets.{app}.{name}' <value>` and remove it from env"
            for app, settings in file.apps.items() for name in settings.env if looks_like_a_secret_name(name)] + [
        f"labstack:apps.{app}.{to_camel(field)}: uses shell syntax, so the shell stays PID 1 of the {role} container "
        f"and SIGTERM never reaches your program: it is killed after stopGraceSeconds, mid-job; put the steps in a "
        f"script that ends with `exec <program>`"
        for app, settings in file.apps.items() for field, role in PROCESS_COMMANDS.items()
        if getattr(settings, field) and is_compound(getattr(settings, field))]


def stack_config(file: StackFile, stack: str, project: str) -> StackConfig:
    """The program's view of a valid stack file: settings grouped by what they configure, defaults filled in."""
    pem = file.server_pem
    subnet = file.network not in ("default", "create")
    return StackConfig(
        stack=stack, project=project, server_name=file.server_name or stack, region=file.region or "",
        instance_type=file.instance_type, storage_gb=file.storage_gb, desired_state=file.desired_state, ami=file.ami,
        key_pair=KeyPairConfig(existing_name=file.key_pair, pem_path=pem.path if pem else None,
                               public_key=pem.public_key if pem else None),
        firewall=FirewallConfig(existing_id=file.security_group, ports=file.ingress_ports, cidrs=file.ingress_cidrs,
                                ipv6_cidrs=file.ingress_ipv6_cidrs, ssh_cidrs=file.ssh_cidrs or ()),
        network=NetworkConfig(mode="subnet" if subnet else file.network, subnet_id=file.network if subnet else None,
                              vpc_cidr=file.vpc_cidr),
        dns=DnsConfig(host=file.dns_host, zone_id=file.dns_zone_id),
        creator=file.creator or _local_user(), user_tags=dict(file.tags),
        # Validated already: the app's settings plus what the program adds (model_construct skips a second check).
        apps=tuple(AppConfig.model_construct(name=name, secrets=dict(file.app_secrets.get(name, {})), **dict(settings))
                   for name, settings in file.apps.items()),
        proxy=ProxyConfig(tls=file.tls, acme_email=file.acme_email, dashboard_user=file.dashboard_user,
                          dashboard_path=file.dashboard_path, log_viewer=file.log_viewer,
                          dashboard_password=file.dashboard_password),
        existing_server=file.existing_server, discard_data_on_destroy=file.discard_data_on_destroy,
        container_metadata=file.container_metadata,
        exports_dir=file.exports_dir, registry_auth=dict(file.registry_auth),
        spot=file.spot, budget=file.budget,
        cluster=cluster_config(file.cluster, file.instance_type, file.storage_gb),
        data_volume=data_volume_config(file.data_volume),
        auto_stop=auto_stop_config(file.auto_stop, has_apps=bool(file.apps), existing_server=file.existing_server is not None),
    )


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
