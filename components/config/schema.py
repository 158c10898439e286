"""The stack file's schema: every `labstack:` key (and `aws:region`) of stacks/Pulumi.<stack>.yaml with its default,
its meaning and its checks, written once. The README's config tables and stacks/labstack.schema.json are generated
from these models (`python -m components.config.docs`); `components.config.stack` turns a validated file into the
StackConfig the program uses.
"""
from __future__ import annotations

import ipaddress
from typing import Annotated, Any, ClassVar, Literal, Mapping, Optional, Union, get_args

from pydantic import BeforeValidator, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from components.config.apps import AppName, AppSettings, secret_env_problems
from components.config.base import Settings, rule
from components.config.formats import (AMI_ID_RE, DASHBOARD_USER_RE, DEFAULT_AMI_SSM_PATH, DEFAULT_INGRESS_PORTS,
                                       DEFAULT_INSTANCE_TYPE, DEFAULT_STORAGE_GB, DEFAULT_VPC_CIDR, EMAIL_RE,
                                       INSTANCE_TYPE_RE, KEY_PAIR_NAME_RE, LOGIN_NAME_RE, LOGIN_USER, MAX_STORAGE_GB,
                                       NAMESPACE, REGION_RE, SECURITY_GROUP_ID_RE, SERVER_NAME_RE, SSM_PATH_RE,
                                       SUBNET_ID_RE, URL_PATH_RE, ZONE_ID_RE, is_arm, is_dns_name, is_ip)
from components.config.messages import SECRET_SHOWN_AS
from components.config.registry import RegistryLogin, registry_hosts
from components.config.ssh_keys import KeyFile, host_key_line, key_file
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
    return host


def _tag(name: str, value: Any) -> Any:
    if name.lower().startswith(("aws:", "labstack:")) or name == "Name":
        return problem("tag names starting with aws: or labstack:, and Name, are reserved; pick another name")
    if len(name) > 128 or len(str(value)) > 256:
        return problem("AWS limits tag names to 128 and values to 256 characters")
    return None


def _apps(value: Any) -> Any:
    if value and not isinstance(value, dict):
        raise problem("expected a map of app name to settings; see the README's apps section")
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
                                                                  "us-east-1")), Shown("(required)")] = Field(
        None, alias="aws:region", description="AWS region, e.g. `eu-west-3`")
    server_name: Annotated[Optional[str], text(passes(SERVER_NAME_RE.match, SERVER_NAME_FIX)),
                           Shown("the stack name")] = Field(
        None, description="server name: lower-case letters, digits, dashes")
    instance_type: Annotated[str, text(passes(INSTANCE_TYPE_RE.match, "expected an EC2 instance type such as "
                                              f"{DEFAULT_INSTANCE_TYPE} or t3.medium"))] = Field(
        DEFAULT_INSTANCE_TYPE, description="EC2 instance type (x86; ARM types need an arm64 `ami`)")
    storage_gb: Annotated[int, whole_number(8, MAX_STORAGE_GB, " GB")] = Field(
        DEFAULT_STORAGE_GB,
        description=f"encrypted gp3 root volume, GB (8–{MAX_STORAGE_GB}, at least the AMI's size; grow only)")
    desired_state: Annotated[str, choice("running", "stopped", "auto", fix=(
        "must be `running` or `stopped` (Pulumi keeps the server so), or `auto` (Pulumi leaves its power state "
        "alone)"))] = Field("auto", description="`auto`: Pulumi leaves the power state alone (a server that stopped "
                                                "itself stays stopped and is not drift); `running` or `stopped`: "
                                                "Pulumi starts or stops the server to match on every `pulumi up` "
                                                "([docs/lifecycle.md](docs/lifecycle.md))")
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
        DEFAULT_INGRESS_PORTS, description="TCP ports open in the created security group")
    ingress_cidrs: Annotated[tuple[str, ...], network_list(ipaddress.IPv4Network)] = Field(
        ("0.0.0.0/0",), description="IPv4 networks allowed in")
    ingress_ipv6_cidrs: Annotated[tuple[str, ...], network_list(ipaddress.IPv6Network)] = Field(
        ("::/0",), description="IPv6 networks allowed in (`[]` for none)")
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
        {}, description="map of extra tags for every resource (instances and volumes too)")
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
        None, description="secret: protects `dashboardPath` of every app with basic auth (user `dashboardUser`)")
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
    exports_dir: Annotated[str, text()] = Field(
        "exports", description="where exports land on this machine (relative to the project)")
    discard_data_on_destroy: Annotated[bool, flag("expected true or false (true deletes apps without exporting their "
                                                  "data first)")] = Field(
        False, description="`true` lets a removed app or a destroyed stack go **without** exporting its data first "
                           "(apply it with `pulumi up` before `pulumi destroy`)")
    existing_server: Optional[ExistingServerConfig] = Field(
        None, description="`{host, hostKey, user: ubuntu, port: 22}`: deploy to a server you already have (no AWS "
                          "resources; `serverPem` is its login key; `hostKey` from its "
                          "`/etc/ssh/ssh_host_ed25519_key.pub`)")

    @classmethod
    def own_keys(cls, data: Any) -> dict:
        """Only our namespace and the region are ours to judge; other providers' keys (aws:profile) are theirs."""
        return {key: value for key, value in data.items()
                if (key.startswith(f"{NAMESPACE}:") or key == "aws:region") and value is not None}

    @classmethod
    def unknown_fix(cls, hint: Optional[str]) -> str:
        return "unknown key: " + (f"did you mean {hint}?" if hint else
                                  "not a labstack setting; see the README's config table")

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

    @rule("security_group", "ingress_ports", "ingress_cidrs", "ingress_ipv6_cidrs")
    def _existing_group_takes_no_rules(self, context: dict) -> list:
        if not self.security_group:
            return []
        return [self.at(name, list(getattr(self, name)), problem(
            "has no effect with an existing labstack:securityGroup; remove one of them"))
            for name in self.given("ingress_ports", "ingress_cidrs", "ingress_ipv6_cidrs")]

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

    @rule("existing_server", "network", "security_group", "dns_zone_id", "key_pair")
    def _existing_server_makes_nothing_in_aws(self, context: dict) -> list:
        if self.existing_server is None:
            return []
        return [self.at(name, getattr(self, name), problem("has no effect with labstack:existingServer (no AWS "
                                                           "resources are made); remove it"))
                for name in self.given("network", "security_group", "dns_zone_id", "key_pair")]

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

    @rule("log_viewer", "dashboard_password")
    def _log_viewer_needs_a_password(self, context: dict) -> list:
        if self.log_viewer and self.dashboard_password is None:
            return [self.at("log_viewer", True, problem(line=(
                "{key} is true but labstack:dashboardPassword is not set: the log viewer is only served behind that "
                "password (`pulumi config set --secret labstack:dashboardPassword <password>`)")))]
        return []


def _mentions(annotation: Any, kind: type) -> bool:
    return annotation is kind or any(_mentions(arg, kind) for arg in get_args(annotation))


# Keys whose values are masked in every message, whatever Pulumi says about them.
SECRET_KEYS = frozenset(field.alias for field in StackFile.model_fields.values()
                        if _mentions(field.annotation, SecretStr))
