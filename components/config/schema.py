"""The stack file's schema: every `labstack:` key (and `aws:region`) of stacks/Pulumi.<stack>.yaml with its default,
its meaning and its checks, written once. The configuration reference (docs/configuration.md) and stacks/labstack.schema.json are generated
from these models (`python -m components.config.docs`); `components.config.stack` turns a validated file into the
StackConfig the program uses.
"""
from __future__ import annotations

import difflib
import ipaddress
from typing import Annotated, Any, ClassVar, Literal, Mapping, Optional, Union, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from components.config.apps import AppName, AppSettings, secret_env_problems
from components.config.base import Settings, rule
from components.config.formats import (AMI_ID_RE, DASHBOARD_USER_RE, DEFAULT_AMI_SSM_PATH, DEFAULT_INGRESS_PORTS,
                                       DEFAULT_INSTANCE_TYPE, DEFAULT_STORAGE_GB, DEFAULT_VPC_CIDR, EMAIL_RE,
                                       INSTANCE_TYPE_RE, KEY_PAIR_NAME_RE, LOGIN_NAME_RE, LOGIN_USER, MAX_STORAGE_GB,
                                       NAMESPACE, REGION_RE, SECURITY_GROUP_ID_RE, SERVER_NAME_RE, SSM_PATH_RE,
                                       SUBNET_ID_RE, URL_PATH_RE, ZONE_ID_RE, MIN_DASHBOARD_PASSWORD, SSH_PORT, is_arm,
                                       is_dns_name, is_ip, resolved_host)
from components.config.aws_names import did_you_mean, known_instance_types, known_regions
from components.config.auto_stop import AutoStop, auto_stop_problem
from components.config.cluster import ClusterSettings, architecture_problem
from components.config.data_volume import DataVolumeSettings, data_volume_problems
from components.config.cost import (BudgetSettings, Spot, over_hourly_budget, spot_with_apps_problem,
                                    stack_instance_types)
from components.config.messages import SECRET_SHOWN_AS
from components.config.registry import RegistryLogin, registry_hosts
from components.config.ssh_keys import KeyFile, host_key_line, key_file
from components.config.placeholders import MAKE_IT_YOURS, documentation_network, is_example_host
from components.config.values import (Shown, choice, flag, mapping, network_list, passes, port_list, problem,
                                      secret_entry, secret_field, text, whole_number)

EXISTING_SERVER_FIX = ("expected {host: <name or IP>, hostKey: <its ssh-ed25519 public host key>, user: ubuntu}; read "
                       "the host key on the server with `cat /etc/ssh/ssh_host_ed25519_key.pub`")
SERVER_NAME_FIX = "use lower-case letters, digits and dashes only (as Dallinger), e.g. paris-batch2"
NETWORK_FIX = ("expected `default` (the region's default VPC), `create` (a new VPC and public subnet) or an existing "
               "subnet id such as subnet-0123456789abcdef0")


class ExistingServerConfig(Settings):
    """A server the operator already controls (the seeds' docker-ssh mode): no EC2 resources are declared."""

    shape_fix: ClassVar[str] = EXISTING_SERVER_FIX

    host: Annotated[str, text(passes(lambda host: is_ip(host) or is_dns_name(host),
                                     "expected the server's IP address or DNS name"))] = Field(
        description="the server's DNS name or IP address")
    host_key: Annotated[str, text(host_key_line)] = Field(
        description="its OpenSSH public host key (`/etc/ssh/ssh_host_ed25519_key.pub`), pinned")
    user: Annotated[str, text(passes(LOGIN_NAME_RE.match, "expected a Linux login name such as ubuntu"))] = Field(
        LOGIN_USER, description="the login user")
    port: Annotated[int, whole_number(1, 65535)] = Field(22, description="its SSH port")


def _exists(kind: str, known: Any, note: str = "") -> Any:
    """A name AWS must know (a region, an instance type), with the closest known one as a hint."""
    def check(value: str) -> str:
        names = known()
        if value in names:
            return value
        hint = did_you_mean(value, names)
        raise problem(f"AWS has no {kind} of that name" + (f"; did you mean {hint}?" if hint else note), shown=value)
    return check


def _vpc_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise problem(f"expected an IPv4 network such as {DEFAULT_VPC_CIDR}", shown=value) from None
    if not 16 <= network.prefixlen <= 24:
        raise problem("AWS VPCs must be between /16 and /24", shown=value)
    return value


def _dns_host(host: str) -> str:
    host = host.rstrip(".").lower()
    if host.startswith("*."):
        raise problem("give the plain host; labstack adds the *.host wildcard record itself", shown=host)
    if "." not in host or len(host) > 253 or not is_dns_name(host):
        raise problem("expected a DNS name such as elif.my-experiments.org (letters, digits and dashes, at least two "
                      "labels)", shown=host)
    if is_example_host(host):
        raise problem(f"{MAKE_IT_YOURS}: the example's domain; use a name under a domain whose Route53 hosted zone "
                      "you have, e.g. `invoke config -s <stack> --set labstack:dnsHost=elif.<your-domain>`", shown=host)
    return host


def _tag(name: str, value: Any) -> Any:
    if name.lower().startswith(("aws:", "labstack:")) or name == "Name":
        return problem("tag names starting with aws: or labstack:, and Name, are reserved; pick another name")
    if len(name) > 128 or len(str(value)) > 256:
        return problem("AWS limits tag names to 128 and values to 256 characters")
    return None


AWS_TAGS_PER_RESOURCE = 50
# The most tags labstack adds to one resource itself: Name, labstack:stack, :project, :role and :creator, and on a
# cluster's worker its labstack:index and labstack:hourly-usd (tests/unit/test_config.py counts them under mocks).
OWN_TAGS = 7


def _apps(value: Any) -> Any:
    if value and not isinstance(value, dict):
        raise problem("expected a map of app name to settings; see docs/configuration.md")
    return value or {}


def _app_secrets(value: Any) -> Any:
    if value and (not isinstance(value, dict) or not all(isinstance(item, dict) for item in value.values())):
        raise problem("expected a map app -> {NAME: value}: `pulumi config set --secret --path "
                      "'labstack:appSecrets.<app>.<NAME>' <value>`", secret=True)
    return value or {}


Scalar = Union[str, int, float, bool]


class StackFile(Settings):
    """The `config:` map of a stack file: `labstack:` keys (the root keys are full keys) and `aws:region`."""

    model_config = ConfigDict(alias_generator=lambda name: f"{NAMESPACE}:{to_camel(name)}")  # merged with the base's

    region: Annotated[Optional[str], text(passes(REGION_RE.match, "expected an AWS region code such as eu-west-3 or "
                                                                  "us-east-1"),
                                       _exists("region", known_regions, " (botocore's list; a region newer than the "
                                               "installed boto3 needs `pip install -U boto3`)")), Shown("(required)")] = Field(
        None, alias="aws:region", description="AWS region, e.g. `eu-west-3`")
    server_name: Annotated[Optional[str], text(passes(SERVER_NAME_RE.match, SERVER_NAME_FIX)),
                           Shown("the stack name")] = Field(
        None, description="server name: lower-case letters, digits, dashes")
    instance_type: Annotated[str, text(passes(INSTANCE_TYPE_RE.match, "expected an EC2 instance type such as "
                                              f"{DEFAULT_INSTANCE_TYPE} or t3.medium"),
                                         _exists("EC2 instance type", known_instance_types))] = Field(
        DEFAULT_INSTANCE_TYPE, description="EC2 instance type (x86; ARM types need an arm64 `ami`)")
    storage_gb: Annotated[int, whole_number(8, MAX_STORAGE_GB, " GB")] = Field(
        DEFAULT_STORAGE_GB,
        description=f"encrypted gp3 root volume, GB (8–{MAX_STORAGE_GB}, at least the AMI's size; grow only)")
    desired_state: Annotated[str, choice("running", "stopped", "auto", fix=(
        "must be `running` or `stopped` (Pulumi keeps the server so), or `auto` (Pulumi leaves its power state "
        "alone)"))] = Field("auto", description="`auto`: Pulumi leaves the power state alone (a server that stopped "
                                                "itself stays stopped and is not drift); `running` or `stopped`: "
                                                "Pulumi starts or stops the server to match on every `pulumi up` "
                                                "([Lifecycle](lifecycle.md)); not with `existingServer`")
    ami: Annotated[str, text(passes(lambda ami: AMI_ID_RE.match(ami) or SSM_PATH_RE.match(ami),
                                    "expected an AMI id such as ami-0123456789abcdef0 or an SSM parameter path "
                                    "starting with /")), Shown("Ubuntu 24.04 SSM path")] = Field(
        DEFAULT_AMI_SSM_PATH, description="an `ami-…` id or an SSM parameter path")
    server_pem: Annotated[Optional[KeyFile], text(key_file)] = Field(
        None, description="your private key file: its public half is imported as the key pair, and labstack connects "
                          "with it (mode 400/600)")
    key_pair: Annotated[Optional[str], text(passes(KEY_PAIR_NAME_RE.match, "EC2 key pair names are 1-255 printable "
                                                                           "ASCII characters"))] = Field(
        None, description="use an existing EC2 key pair instead of importing (then `serverPem` is its private key, "
                          "needed for apps)")
    security_group: Annotated[Optional[str], text(passes(SECURITY_GROUP_ID_RE.match, "expected a security group id "
                                                         "such as sg-0123456789abcdef0"))] = Field(
        None, description="use an existing security group id instead of creating one")
    ingress_ports: Annotated[tuple[int, ...], port_list()] = Field(
        DEFAULT_INGRESS_PORTS, description="TCP ports open in the created security group: 22 (labstack deploys over "
                                           "SSH) and, with `tls: acme`, 80 and 443 are required")
    ingress_cidrs: Annotated[tuple[str, ...], network_list(ipaddress.IPv4Network)] = Field(
        ("0.0.0.0/0",), description="IPv4 networks allowed in (every port but 22)")
    ingress_ipv6_cidrs: Annotated[tuple[str, ...], network_list(ipaddress.IPv6Network)] = Field(
        ("::/0",), description="IPv6 networks allowed in (every port but 22; `[]` for none)")
    ssh_cidrs: Annotated[Optional[tuple[str, ...]], network_list(ipaddress.ip_network)] = Field(
        None, description="IPv4/IPv6 networks SSH (22) is open to, e.g. `[198.51.100.0/24]`: required when labstack "
                          "creates the security group, and no default, because only you know where you connect "
                          "from; the whole internet only when written (`[0.0.0.0/0, ::/0]`), so an open SSH port is "
                          "always a choice in the stack file")
    network: Annotated[str, text(passes(lambda network: network in ("default", "create") or SUBNET_ID_RE.match(network),
                                        NETWORK_FIX),
                                 schema=Union[Literal["default", "create"],
                                              Annotated[str, Field(pattern=SUBNET_ID_RE.pattern)]])] = Field(
        "default", description="`default` (default VPC), `create` (new VPC + public subnet), or a `subnet-…` id")
    vpc_cidr: Annotated[str, text(_vpc_cidr)] = Field(
        DEFAULT_VPC_CIDR, description="the new VPC's range, with `network: create`")
    dns_host: Annotated[Optional[str], text(_dns_host)] = Field(
        None, description="e.g. `elif.my-experiments.org`: A records for it and `*.` it, pointing at the Elastic IP")
    dns_zone_id: Annotated[Optional[str], text(passes(ZONE_ID_RE.match, "expected a Route53 hosted zone id such as "
                                                                        "Z0123456789ABCDEFGHIJ")),
                           Shown("longest matching zone")] = Field(
        None, description="the Route53 hosted zone id, when the lookup should not guess")
    tags: Annotated[Mapping[str, str], mapping("expected a map of tag names to values, e.g. `pulumi config set --path "
                                               "'labstack:tags.team' psych-lab`", _tag, str,
                                               schema=dict[str, Scalar])] = Field(
        {}, description="map of extra tags for every resource (instances and volumes too); at most "
                        f"{AWS_TAGS_PER_RESOURCE - OWN_TAGS}: AWS allows {AWS_TAGS_PER_RESOURCE} per resource and "
                        f"labstack adds up to {OWN_TAGS} of its own")
    creator: Annotated[Optional[str], text(), Shown("your login name")] = Field(
        None, description="the `labstack:creator` tag")
    apps: Annotated[Mapping[AppName, AppSettings], BeforeValidator(_apps)] = Field(
        {}, description="the apps to deploy, a map `name → settings` (below)",
        json_schema_extra={"additionalProperties": False})  # the name pattern alone lets other names through
    app_secrets: Annotated[Mapping[str, Mapping[str, Annotated[SecretStr, secret_entry()]]],
                           BeforeValidator(_app_secrets)] = Field(
        {}, description="secret env vars per app: `pulumi config set --secret --path "
                        "'labstack:appSecrets.elif.API_TOKEN' …`")
    registry_auth: Annotated[Mapping[str, RegistryLogin], BeforeValidator(registry_hosts)] = Field(
        {}, description="logins for private registries other than ECR, a map `registry → {username, password}` "
                        "(password secret): `pulumi config set --secret --path "
                        "'labstack:registryAuth[\"ghcr.io\"].password' <token>`; ECR needs none (the server's role)")
    tls: Annotated[str, choice("acme", "internal", fix="must be `acme` (Let's Encrypt certificates) or `internal` "
                                                       "(Caddy's own CA, for tests and servers without a public "
                                                       "name)")] = Field(
        "acme", description="`acme` (Let's Encrypt certificates for the app names) or `internal` (Caddy's own CA: "
                            "tests, private servers)")
    acme_email: Annotated[Optional[str], text(passes(EMAIL_RE.match, "expected an email address for certificate "
                                                                     "expiry notices"))] = Field(
        None, description="contact address for certificate expiry notices")
    dashboard_password: Annotated[Optional[SecretStr], secret_field()] = Field(
        None, description="secret: protects `dashboardPath` of every app with basic auth (user `dashboardUser`); on a "
                    "Ray cluster, also serves Ray's dashboard at `ray.<host>` behind it")
    dashboard_user: Annotated[str, text(passes(DASHBOARD_USER_RE.match, "use letters, digits, dot, dash or "
                                                                        "underscore"))] = Field(
        "admin", description="basic-auth user for the dashboard")
    dashboard_path: Annotated[str, text(passes(URL_PATH_RE.match, "expected a URL path such as /dashboard"),
                                        lambda path: path.rstrip("/") or "/")] = Field(
        "/dashboard", description="path (and everything below it) behind basic auth")
    log_viewer: Annotated[bool, flag()] = Field(
        False, description="`true` serves each app's recent container logs at `https://<app host>/labstack-logs/` "
                           "behind the same basic auth (needs `dashboardPassword`; a small viewer container with read "
                           "access to the Docker API, reachable only through Caddy)")
    container_metadata: Annotated[bool, flag("expected true or false (true lets the code your containers run "
                                             "reach the instance metadata service)")] = Field(
        False, description="`true` lets the containers that run your code reach the instance metadata service: Ray's "
                           "tasks (host networking) then get the instance role's credentials and the user data, which "
                           "holds the server's SSH host key; apps, jobs and functions on Docker's networks still get "
                           "no token past the hop limit of 1. Default: root on the server only")
    exports_dir: Annotated[str, text()] = Field(
        "exports", description="where exports land on this machine (relative to the project)")
    discard_data_on_destroy: Annotated[bool, flag("expected true or false (true deletes apps without exporting their "
                                                  "data first)")] = Field(
        False, description="`true` lets a removed app or a destroyed stack go **without** exporting its data first "
                           "(apply it with `pulumi up` before `pulumi destroy`)")
    existing_server: Optional[ExistingServerConfig] = Field(
        None, description="`{host, hostKey, user: ubuntu, port: 22}`: deploy to a server you already have (no AWS "
                          "resources; `serverPem` is its login key; `hostKey` from its "
                          "`/etc/ssh/ssh_host_ed25519_key.pub`). With `dnsHost`, point its record at the server "
                          "yourself: `url` names it, `sshCommand` and `knownHosts` name `host`")
    spot: Spot = Field(
        None, description="`true` or `{maxPrice: 0.05}`: every instance of the stack is a persistent spot request "
                          "that stops (disks and address kept) when AWS interrupts it; refused for stacks with apps")
    budget: Optional[BudgetSettings] = Field(
        None, description="`{hourly: 3.0, total: 500}` in USD: `hourly` caps the instances' price per hour (checked "
                          "before anything is created), `total` the spend since launch (the server's watcher stops "
                          "at it)")
    cluster: Optional[ClusterSettings] = Field(
        None, description="`{workers: 4, workerType: c7i.4xlarge, workerStorageGb: 64, engine: ray, image: …}`: the "
                          "stack is a cluster, the server its head plus `workers` worker nodes (docs/clusters.md)")
    auto_stop: AutoStop = Field(
        None, description="`{idleMinutes: 60, maxHours: 72}`, `true` or `false`: each server stops itself when idle "
                          "(and after maxHours in any case); default on (30 idle minutes) for stacks without apps, off "
                          "with apps (docs/data-and-cost.md, Auto-stop)")
    data_volume: Optional[DataVolumeSettings] = Field(
        None, description="`{sizeGb: 100, onDestroy: snapshot}` or `{id: vol-…}`: an encrypted gp3 EBS volume "
                          "mounted at /srv/labstack, so the apps' data outlives the instance (docs/data-and-cost.md, Data volume)")

    @classmethod
    def own_keys(cls, data: Any) -> dict:
        """Only our namespace and the region are ours to judge; other providers' keys (aws:profile) are theirs, but a
        misspelt `labstak:` is ours: Pulumi would hand it to no one and the setting would be silently ignored."""
        def ours(key: str) -> bool:
            namespace = key.partition(":")[0]
            return (namespace == NAMESPACE or key == "aws:region"
                    or difflib.SequenceMatcher(None, namespace.lower(), NAMESPACE).ratio() >= 0.75
                    or (namespace == "aws" and difflib.SequenceMatcher(None, key.lower(), "aws:region").ratio() >= 0.8))
        return {key: value for key, value in data.items() if ours(key) and value is not None}

    @classmethod
    def unknown_fix(cls, hint: Optional[str]) -> str:
        return "unknown key: " + (f"did you mean {hint}?" if hint else
                                  "not a labstack setting; see docs/configuration.md")

    @rule("region", "existing_server")
    def _region_is_needed(self, context: dict) -> list:
        if self.region is None and self.existing_server is None:  # nothing is made in AWS for an existing server
            return [self.at("region", None, problem(line="aws:region is not set: run `pulumi config set aws:region "
                                                         "eu-west-3` (or your region)"))]
        return []

    @rule("server_name")
    def _stack_name_fits(self, context: dict) -> list:
        stack = context.get("stack", "")
        if self.server_name is None and not SERVER_NAME_RE.match(stack):
            return [self.at("server_name", stack, problem(SERVER_NAME_FIX))]
        return []

    @rule("instance_type", "ami")
    def _arm_needs_an_arm_image(self, context: dict) -> list:
        if self.ami == DEFAULT_AMI_SSM_PATH and is_arm(self.instance_type):
            return [self.at("instance_type", self.instance_type, problem(
                "this is an ARM (Graviton) type but the default AMI is amd64: choose an x86 type such as "
                f"{DEFAULT_INSTANCE_TYPE}, or set labstack:ami to the arm64 SSM path "
                f"({DEFAULT_AMI_SSM_PATH.replace('/amd64/', '/arm64/')})"))]
        return []

    @rule("server_pem", "key_pair", "existing_server")
    def _an_ssh_key(self, context: dict) -> list:
        if self.server_pem is not None:
            return []
        if self.existing_server is not None:
            return [self.at("existing_server", None, problem(
                line="{key} needs labstack:serverPem: the private key to log in with"))]
        if self.key_pair is None:
            return [self.at("server_pem", None, problem(line=(
                "no SSH key: set labstack:serverPem to your private key file (its public half is imported, e.g. "
                "`pulumi config set labstack:serverPem ~/.ssh/id_ed25519`) or labstack:keyPair to an existing EC2 "
                "key pair name")))]
        return []

    @rule("server_pem", "key_pair", "existing_server", "apps")
    def _apps_need_the_private_key(self, context: dict) -> list:
        if self.apps and self.server_pem is None and self.key_pair and self.existing_server is None:
            secret = type(self).model_fields["key_pair"].alias in context.get("secret_keys", ())
            name = repr(SECRET_SHOWN_AS if secret else self.key_pair)
            return [self.at("server_pem", None, problem(line=(
                f"{{key}} is not set: labstack deploys apps over SSH and needs the private key of key pair {name}: "
                "`pulumi config set labstack:serverPem <path>`")))]
        return []

    @rule("security_group", "ingress_ports", "ingress_cidrs", "ingress_ipv6_cidrs", "ssh_cidrs")
    def _existing_group_takes_no_rules(self, context: dict) -> list:
        if not self.security_group:
            return []
        return [self.at(name, list(getattr(self, name)), problem(
            "has no effect with an existing labstack:securityGroup; remove one of them"))
            for name in self.given("ingress_ports", "ingress_cidrs", "ingress_ipv6_cidrs", "ssh_cidrs")]

    def _makes_the_group(self) -> bool:
        return self.security_group is None and self.existing_server is None

    @rule("security_group", "existing_server", "ingress_ports", "ssh_cidrs")
    def _ssh_is_open_to_chosen_networks(self, context: dict) -> list:
        if not self._makes_the_group():
            return []
        if SSH_PORT not in self.ingress_ports:
            return [self.at("ingress_ports", list(self.ingress_ports), problem(
                "has no 22: labstack deploys over SSH, so the server would be unreachable; add 22 (and list your "
                "networks in labstack:sshCidrs)"))]
        if not self.ssh_cidrs:
            return [self.at("ssh_cidrs", None, problem(line=(
                "labstack:sshCidrs is not set: SSH (22) opens only to the networks you list, e.g. `pulumi config set "
                "--path 'labstack:sshCidrs[0]' <your-address>/32` (your lab's network, or this machine's address: "
                "`curl -s https://checkip.amazonaws.com`; write 0.0.0.0/0 to open it to the whole internet on "
                "purpose)")))]
        return []

    @rule("ssh_cidrs", "ingress_cidrs", "ingress_ipv6_cidrs")
    def _networks_are_real(self, context: dict) -> list:
        found = []
        for field in ("ssh_cidrs", "ingress_cidrs", "ingress_ipv6_cidrs"):
            key = type(self).model_fields[field].alias
            for index, cidr in enumerate(getattr(self, field) or ()):
                rfc = documentation_network(cidr)
                if rfc:
                    found.append(self.at(field, cidr, problem(
                        f"{MAKE_IT_YOURS}: a documentation-only network ({rfc}), from which nobody connects; list "
                        f"your lab's network or this machine's address (`curl -s https://checkip.amazonaws.com`): "
                        f"`pulumi config set --path '{key}[{index}]' <your-address>/32`"), str(index)))
        return found

    @rule("security_group", "existing_server", "ingress_ports", "tls")
    def _acme_is_reachable(self, context: dict) -> list:
        missing = [port for port in (80, 443) if port not in self.ingress_ports]
        # Without 22 that rule speaks for the key (one problem per key).
        if self._makes_the_group() and self.tls == "acme" and missing and SSH_PORT in self.ingress_ports:
            return [self.at("ingress_ports", list(self.ingress_ports), problem(
                f"lacks {' and '.join(map(str, missing))}: with labstack:tls = acme, Let's Encrypt must reach Caddy "
                f"on 80 and 443 to issue certificates; add {'it' if len(missing) == 1 else 'them'}, or set labstack:tls "
                "internal"))]
        return []

    @rule("apps", "dns_host")
    def _one_app_per_host_name(self, context: dict) -> list:
        base = self.dns_host or "<ip>.nip.io"  # without a DNS host every app shares the server's nip.io name
        seen: dict[str, str] = {}
        problems = []
        for name, settings in self.apps.items():
            host = resolved_host(settings.host, name, base).lower()  # DNS names ignore case
            if host in seen:
                problems.append(self.at("apps", host, problem(
                    f"is also the host of app {seen[host]}: Caddy refuses two sites of one name and then serves "
                    "none of the apps; give one of them another `host`"), name, "host"))
            seen.setdefault(host, name)
        return problems

    @rule("apps", "cluster", "dashboard_password", "dns_host")
    def _no_app_on_rays_site(self, context: dict) -> list:
        if self.cluster is None or self.cluster.engine != "ray" or self.dashboard_password is None:
            return []
        base = self.dns_host or "<ip>.nip.io"
        return [self.at("apps", host, problem(
            "is where this cluster serves Ray's dashboard (a Ray cluster with labstack:dashboardPassword has the site "
            "ray.<host>); Caddy refuses two sites of one name and then serves neither: give the app another `host`"),
            name, "host")
            for name, settings in self.apps.items()
            if (host := resolved_host(settings.host, name, base).lower()) == f"ray.{base}"]

    @rule("tags")
    def _tags_fit_aws(self, context: dict) -> list:
        room = AWS_TAGS_PER_RESOURCE - OWN_TAGS
        if len(self.tags) <= room:
            return []
        return [self.at("tags", None, problem(line=(
            f"{{key}} has {len(self.tags)} tags: AWS allows {AWS_TAGS_PER_RESOURCE} per resource and labstack adds "
            f"up to {OWN_TAGS} of its own (Name, labstack:stack, labstack:project, labstack:role, labstack:creator, "
            f"a worker's labstack:index and labstack:hourly-usd), so at most {room}: remove "
            f"{len(self.tags) - room}")))]

    @rule("dashboard_password", "app_secrets", "registry_auth")
    def _secrets_are_encrypted(self, context: dict) -> list:
        """Plain text in the stack file is in git; Pulumi stores `--secret` values encrypted. The keys Pulumi (or the
        stack file's `secure:` values) mark secret come in context["encrypted_keys"]."""
        encrypted = context.get("encrypted_keys")
        if encrypted is None:  # not known: a config built in memory (load_stack_config says when)
            return []
        problems = []
        if self.dashboard_password is not None and "labstack:dashboardPassword" not in encrypted:
            problems.append(self.at("dashboard_password", None, problem(
                "is in plain text in the stack file: set it encrypted with `pulumi config set --secret "
                "labstack:dashboardPassword <password>`", secret=True)))
        if self.app_secrets and "labstack:appSecrets" not in encrypted:
            problems += [self.at("app_secrets", None, problem(
                "is in plain text in the stack file: set it encrypted with `pulumi config set --secret --path "
                f"'labstack:appSecrets.{app}.{name}' <value>`", secret=True), app, name)
                for app, secrets in self.app_secrets.items() for name in secrets]
        if self.registry_auth and "labstack:registryAuth" not in encrypted:
            problems += [self.at("registry_auth", None, problem(
                "the password is in plain text in the stack file: set it encrypted with `pulumi config set --secret "
                f"--path 'labstack:registryAuth[\"{host}\"].password' <token>`", secret=True), host, "password")
                for host in self.registry_auth]
        return problems

    @rule("dashboard_password")
    def _dashboard_password_is_long_enough(self, context: dict) -> list:
        password = self.dashboard_password
        if password is not None and len(password.get_secret_value()) < MIN_DASHBOARD_PASSWORD:
            return [self.at("dashboard_password", None, problem(
                f"is shorter than {MIN_DASHBOARD_PASSWORD} characters; it guards every app's dashboard on the open "
                "internet: `pulumi config set --secret labstack:dashboardPassword \"$(openssl rand -base64 18)\"`",
                secret=True))]
        return []

    @rule("vpc_cidr", "network")
    def _vpc_cidr_needs_create(self, context: dict) -> list:
        if self.given("vpc_cidr") and self.network != "create":
            return [self.at("vpc_cidr", self.vpc_cidr, problem(
                "only used with labstack:network = create; remove it or set network"))]
        return []

    @rule("dns_zone_id", "dns_host")
    def _zone_needs_a_host(self, context: dict) -> list:
        if self.dns_zone_id and self.dns_host is None:
            return [self.at("dns_zone_id", self.dns_zone_id, problem("only used with labstack:dnsHost; set the "
                                                                     "host too"))]
        return []

    @rule("existing_server", "network", "security_group", "dns_zone_id", "key_pair", "desired_state")
    def _existing_server_makes_nothing_in_aws(self, context: dict) -> list:
        if self.existing_server is None:
            return []
        powered = [self.at("desired_state", self.desired_state, problem(
            "has no effect with labstack:existingServer: labstack never powers a server it did not make on or off "
            "(`invoke stop` refuses too); remove it, and stop the server where it runs"))] \
            if self.desired_state != "auto" else []
        return [self.at(name, getattr(self, name), problem("has no effect with labstack:existingServer (no AWS "
                                                           "resources are made); remove it"))
                for name in self.given("network", "security_group", "dns_zone_id", "key_pair")] + powered

    @rule("apps", "app_secrets")
    def _secrets_fit_their_apps(self, context: dict) -> list:
        problems = []
        for app, secrets in self.app_secrets.items():
            if app not in self.apps:
                problems.append(self.at("app_secrets", None, problem("names no app in labstack:apps; fix the app "
                                                                     "name", secret=True), app))
                continue
            bad = dict(secret_env_problems(secrets))
            problems += [self.at("app_secrets", None, error, app, name) for name, error in bad.items()]
            problems += [self.at("apps", None, problem("is also in labstack:appSecrets; keep it in one place",
                                                       secret=True), app, "env", name)
                         for name in secrets if name not in bad and name in self.apps[app].env]
        return problems

    def instance_types(self) -> list[str]:
        """The type of every instance the stack makes: the head, then the workers of labstack:cluster."""
        return stack_instance_types(self.instance_type, getattr(self, "cluster", None))

    @rule("budget", "spot", "region", "instance_type", "cluster")
    def _within_the_hourly_budget(self, context: dict) -> list:
        error = over_hourly_budget(self.region or "", self.instance_types(), self.spot, self.budget)
        return [self.at("budget", self.budget.hourly, error, "hourly")] if error else []

    @rule("existing_server", "spot", "budget")
    def _no_money_settings_for_an_existing_server(self, context: dict) -> list:
        if self.existing_server is None:
            return []
        return [self.at(name, None, problem(line=(
            "{key} has no effect with labstack:existingServer (labstack makes no instance to put on spot or to "
            "price); remove it"))) for name in self.given("spot", "budget")]

    @rule("spot", "apps")
    def _no_spot_under_apps(self, context: dict) -> list:
        if self.spot is not None and self.apps:
            return [self.at("spot", self.spot.model_dump(by_alias=True, exclude_none=True) or True,
                            spot_with_apps_problem(self.apps))]
        return []

    @rule("cluster", "existing_server", "instance_type")
    def _cluster_fits_the_head(self, context: dict) -> list:
        if self.cluster is None:
            return []
        if self.existing_server is not None:
            return [self.at("cluster", None, problem(line=(
                "{key} cannot be used with labstack:existingServer: labstack makes a cluster's workers in AWS next to "
                "a head it made; remove one of them")))]
        mismatch = architecture_problem(self.instance_type, self.cluster)
        if mismatch is None:
            return []
        key, error = mismatch
        return [self.at("cluster", None, error, key)]  # the problem quotes the value it blames

    @rule("auto_stop", "existing_server")
    def _auto_stop_only_for_our_servers(self, context: dict) -> list:
        error = auto_stop_problem(self.auto_stop, self.existing_server is not None)
        return [self.at("auto_stop", None, error)] if error else []

    @rule("data_volume", "discard_data_on_destroy", "existing_server")
    def _data_volume_fits_the_stack(self, context: dict) -> list:
        if self.data_volume is None:
            return []
        return [self.at("data_volume", None if key is None else self.data_volume.on_destroy, error,
                        *((key,) if key else ()))
                for key, error in data_volume_problems(self.data_volume, self.discard_data_on_destroy,
                                                       self.existing_server is not None)]

    @rule("log_viewer", "dashboard_password")
    def _log_viewer_needs_a_password(self, context: dict) -> list:
        if self.log_viewer and self.dashboard_password is None:
            return [self.at("log_viewer", True, problem(line=(
                "{key} is true but labstack:dashboardPassword is not set: the log viewer is only served behind that "
                "password (`pulumi config set --secret labstack:dashboardPassword <password>`)")))]
        return []


def _mentions(annotation: Any, kind: type) -> bool:
    """Whether the type holds a `kind` anywhere, also inside a settings model (a registry login's password)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_mentions(field.annotation, kind) for field in annotation.model_fields.values())
    return annotation is kind or any(_mentions(arg, kind) for arg in get_args(annotation))


# Keys whose values are masked in every message, whatever Pulumi says about them.
SECRET_KEYS = frozenset(field.alias for field in StackFile.model_fields.values()
                        if _mentions(field.annotation, SecretStr))
