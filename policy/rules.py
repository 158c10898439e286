"""labstack's policy rules as plain functions over plain data: a resource's type, name and properties as Pulumi hands
them to policies (camelCase keys, numbers possibly floats), returning one message per violation. No Pulumi here, so
the rules are tested against what the real program declares under mocks (tests/unit/test_policy.py), and
`__main__.py` only wires them into a pulumi_policy PolicyPack.

Properties are only read, key by key (`.get`): during a preview Pulumi raises on reading a value that is not known
yet, so a rule must touch only what it needs (never copy or walk a whole property map). Sequences arrive as
sequences that are not lists, so the rules test for `Mapping`/`Sequence`, not `dict`/`list`.

Every message names the resource, the problem and the fix: the stack key to change, or, where no stack key can cause
the problem (encryption, IMDS, labstack's own tags), the code that must keep doing it.
"""
from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
SNAPSHOT = "aws:ebs/snapshot:Snapshot"
SNAPSHOT_COPY = "aws:ebs/snapshotCopy:SnapshotCopy"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
AWS_PROVIDER = "pulumi:providers:aws"

REQUIRED_TAGS = ("labstack:stack", "labstack:creator")

# Services that authenticate weakly or not at all, or whose compromise is the data itself: never reachable from the
# internet. The apps reach Postgres and Redis over their compose network, Ray's members over the cluster rule, and
# operators reach all of them through SSH or Caddy's basic auth.
DATA_PORTS = {
    5432: "Postgres",
    6379: "Redis (also Ray's GCS)",
    8265: "Ray's dashboard and Jobs API",
    10001: "Ray's client server",
    # The rest of Ray's pinned ports (components/layout.py RAY_PORTS; tests/unit/test_cluster.py keeps them equal):
    # a cluster's members reach them over the group's self rule, never from the internet.
    6380: "Ray's node manager",
    6381: "Ray's object manager",
    6382: "Ray's runtime-env agent",
    6383: "Ray's dashboard agent (gRPC)",
    6384: "Ray's metrics export",
    52365: "Ray's dashboard agent (HTTP)",
    2375: "Docker's API (plain)",
    2376: "Docker's API (TLS)",
}
# Port ranges of the same kind, (first, last) -> service: a rule opening any port of the range counts.
DATA_PORT_RANGES = {(11000, 11999): "Ray's worker processes"}
SSH_PORT = 22

# Defaults of the advisory allow-lists; policy/config.json overrides them (README, "Policies").
# Instance types: the general-purpose, compute and memory families labstack is tested with, up to 2xlarge, so an
# accidental GPU or 48xlarge type (tens to hundreds of dollars an hour) gets a second look.
DEFAULT_INSTANCE_TYPES = ("t3.*", "t3a.*", "m7i.large", "m7i.xlarge", "m7i.2xlarge", "c7i.large", "c7i.xlarge",
                          "c7i.2xlarge", "r7i.large", "r7i.xlarge", "r7i.2xlarge")
# Regions: the EU's, where participant data collected by European labs may stay under GDPR without further paperwork.
DEFAULT_REGIONS = ("eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1",
                   "eu-west-2", "eu-west-3")

# The lab's ceiling for one stack's instances, USD per hour (hourly-price-cap): well above any CPU stack labstack is
# tested with, below a multi-GPU instance left running by mistake.
DEFAULT_MAX_HOURLY_USD = 5.0
PRICE_TAG = "labstack:hourly-usd"  # set by the program at creation (components/config/cost.py)

TAGS_FIX = ("labstack gives every resource cfg.tags(...) (components/config/stack.py); the creator comes from "
            "labstack:creator (default: your login name)")


@dataclass(frozen=True)
class Resource:
    """One resource of a stack, as stack rules see it."""

    type: str
    name: str
    props: Mapping[str, Any]
    # Which resources (by name) a property's value came from, e.g. {"volumeId": ["data"]}.
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)


def _items(value: Any) -> Sequence[Any]:
    """A list property, or none (absent, or a single string where a list belongs)."""
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _true(value: Any) -> bool:
    # Some resources spell their booleans as strings ("true").
    return value is True or (isinstance(value, str) and value.lower() == "true")


# --- mandatory: encrypted EBS ---------------------------------------------------------------------------------------

def ebs_encrypted(type_: str, name: str, props: Mapping[str, Any]) -> list[str]:
    """Every EBS volume a resource creates is encrypted: an instance's root and extra volumes, a volume, a snapshot
    copy."""
    fix = "keep encrypted=True in ROOT_VOLUME (components/aws/baseline.py); no stack key turns it off"
    if type_ == INSTANCE:
        problems = []
        if not _true(_map(props.get("rootBlockDevice")).get("encrypted")):
            problems.append(f"{name}: its root volume is not encrypted. Fix: {fix}")
        for device in _items(props.get("ebsBlockDevices")):
            if not _true(_map(device).get("encrypted")):
                problems.append(f"{name}: its volume {_map(device).get('deviceName')} is not encrypted. "
                                "Fix: set encrypted=True on it")
        return problems
    if type_ in (VOLUME, SNAPSHOT_COPY) and not _true(props.get("encrypted")):
        kind = "EBS volume" if type_ == VOLUME else "snapshot copy"
        return [f"{name}: the {kind} is not encrypted. Fix: set encrypted=True on it"]
    return []


def snapshots_encrypted(resources: Sequence[Resource]) -> list[str]:
    """A snapshot is encrypted exactly when its volume is (EBS gives it no choice): a snapshot of a volume this stack
    declares must come from an encrypted one. Once created, the snapshot's own `encrypted` says so directly."""
    volumes = {r.name: r for r in resources if r.type == VOLUME}
    problems = []
    for snapshot in (r for r in resources if r.type == SNAPSHOT):
        sources = [volumes[n] for n in snapshot.property_dependencies.get("volumeId", ()) if n in volumes]
        unencrypted = [v.name for v in sources if not _true(v.props.get("encrypted"))]
        # Read last: before the snapshot exists its `encrypted` is not known.
        if unencrypted or ("encrypted" in snapshot.props and not _true(snapshot.props["encrypted"])):
            source = unencrypted[0] if unencrypted else "its volume"
            problems.append(f"{snapshot.name}: a snapshot of {source}, which is not encrypted, is not encrypted "
                            "either. Fix: encrypt the volume (encrypted=True on it), or snapshot an encrypted "
                            "aws.ebs.SnapshotCopy instead")
    return problems


# --- mandatory: IMDSv2 with a hop limit of 1 ------------------------------------------------------------------------

def imdsv2_hop_limit_1(type_: str, name: str, props: Mapping[str, Any]) -> list[str]:
    """Instances answer metadata requests only with an IMDSv2 token, and the
    token cannot travel through a container's extra network hop: the user data holds the SSH host key."""
    if type_ != INSTANCE:
        return []
    metadata = _map(props.get("metadataOptions"))
    if metadata.get("httpEndpoint") == "disabled":
        return []  # no metadata service at all is stricter still
    problems = []
    if metadata.get("httpTokens") != "required":
        problems.append(f"{name}: the metadata service accepts requests without an IMDSv2 token "
                        f"(httpTokens={metadata.get('httpTokens')!r}).")
    hop_limit = metadata.get("httpPutResponseHopLimit")
    if hop_limit != 1:
        hops = "the AMI's default number of" if hop_limit is None else int(hop_limit)
        problems.append(f"{name}: an IMDSv2 token can travel {hops} hops, so containers can get one "
                        "(httpPutResponseHopLimit must be 1).")
    fix = (" Fix: keep METADATA in components/aws/baseline.py (http_tokens required, hop limit 1); no stack key "
           "changes it")
    return [problem + fix for problem in problems]


# --- mandatory: every instance and volume tagged with its stack and creator -----------------------------------------

def _missing(tags: Any) -> list[str]:
    return [key for key in REQUIRED_TAGS if not _map(tags).get(key)]


def _tag_problem(name: str, what: str, missing: list[str]) -> str:
    return f"{name}: {what} lacks the tag(s) {', '.join(missing)}. Fix: {TAGS_FIX}"


def stack_and_creator_tags(type_: str, name: str, props: Mapping[str, Any]) -> list[str]:
    """Instances and volumes carry labstack:stack and labstack:creator, so inventory, cost reports and clean-ups
    find them: an instance on itself and on its volumes, and a volume."""
    problems = []
    if type_ == INSTANCE:
        volume_tags = props.get("volumeTags")  # the alternative to per-device tags: one map for all its volumes
        targets = [("the instance", props.get("tags")),
                   ("its root volume", volume_tags or _map(props.get("rootBlockDevice")).get("tags"))]
        targets += [(f"its volume {_map(d).get('deviceName')}", volume_tags or _map(d).get("tags"))
                    for d in _items(props.get("ebsBlockDevices"))]
    elif type_ == VOLUME:
        targets = [("the volume", props.get("tags"))]
    else:
        return []
    for what, tags in targets:
        missing = _missing(tags)
        if missing:
            problems.append(_tag_problem(name, what, missing))
    return problems


# --- security-group ingress: what is open to the world --------------------------------------------------------------

@dataclass(frozen=True)
class Opening:
    """One TCP port range a security-group rule opens to one network."""

    first_port: int
    last_port: int
    cidr: str

    def covers(self, port: int) -> bool:
        return self.first_port <= port <= self.last_port


def _ports(protocol: Any, from_port: Any, to_port: Any) -> Optional[tuple[int, int]]:
    """The TCP port range a rule opens, or None when it opens no TCP port. Protocol -1 is every port."""
    protocol = str(protocol).lower()
    if protocol in ("-1", "all"):
        return 0, 65535
    if protocol not in ("tcp", "6"):
        return None
    if from_port is None or to_port is None:
        return 0, 65535
    return int(from_port), int(to_port)


def _openings(type_: str, props: Mapping[str, Any]) -> list[Opening]:
    """Every (port range, network) an ingress rule of any of the three AWS spellings opens."""
    if type_ == INGRESS_RULE:
        rules = [(props.get("ipProtocol"), props.get("fromPort"), props.get("toPort"),
                  [c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c])]
    elif type_ == SECURITY_GROUP:
        rules = [(_map(r).get("protocol"), _map(r).get("fromPort"), _map(r).get("toPort"),
                  [*_items(_map(r).get("cidrBlocks")), *_items(_map(r).get("ipv6CidrBlocks"))])
                 for r in _items(props.get("ingress"))]
    elif type_ == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        rules = [(props.get("protocol"), props.get("fromPort"), props.get("toPort"),
                  [*_items(props.get("cidrBlocks")), *_items(props.get("ipv6CidrBlocks"))])]
    else:
        return []
    found = []
    for protocol, from_port, to_port, cidrs in rules:
        ports = _ports(protocol, from_port, to_port)
        if ports:
            found += [Opening(ports[0], ports[1], str(cidr)) for cidr in cidrs]
    return found


def _network(cidr: str) -> Optional[Union[ipaddress.IPv4Network, ipaddress.IPv6Network]]:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _world(resources: Sequence[Resource], opens: Callable[[Opening], bool]) -> dict[str, str]:
    """The networks of the openings `opens` picks that together reach every address of their family, each with how a
    message names that world: 0.0.0.0/0 itself, or halves such as 0.0.0.0/1 and 128.0.0.0/1, which AWS accepts as two
    rules and which open the port to the world all the same."""
    networks: dict[str, Any] = {}
    for r in resources:
        for opening in _openings(r.type, r.props):
            network = _network(opening.cidr)
            if network is not None and opens(opening):
                networks[opening.cidr] = network
    world = {}
    for version in (4, 6):
        family = {cidr: net for cidr, net in networks.items() if net.version == version}
        # a network inside another one adds nothing: 10.0.0.0/8 beside 0.0.0.0/0 is not what opens the world
        family = {cidr: net for cidr, net in family.items()
                  if not any(net != other and net.subnet_of(other) for other in family.values())}
        if any(net.prefixlen == 0 for net in ipaddress.collapse_addresses(family.values())):
            for cidr, net in family.items():
                others = sorted({str(n) for c, n in family.items() if c != cidr})
                world[cidr] = cidr if net.prefixlen == 0 else f"{cidr}, which with {', '.join(others)} covers every " \
                                                               f"IPv{version} address"
    return world


def _networks_fix(type_: str, cidr: str) -> str:
    if type_ == INGRESS_RULE:  # labstack's firewall: labstack:ingressPorts x labstack:ingressCidrs/ingressIpv6Cidrs
        key = "labstack:ingressIpv6Cidrs" if ":" in cidr else "labstack:ingressCidrs"
        return f"list only your own networks in {key}"
    return f"narrow the rule's {'ipv6CidrBlocks' if ':' in cidr else 'cidrBlocks'} to your own networks"


def no_data_ports_open_to_world(resources: Sequence[Resource]) -> list[str]:
    """No ingress opens Postgres, Redis, Ray or Docker's API to the whole internet (port ranges count, and so do
    networks that cover it together, across rules)."""
    worlds = {port: _world(resources, lambda o, port=port: o.covers(port)) for port in DATA_PORTS}
    worlds.update({span: _world(resources, lambda o, span=span: o.first_port <= span[1] and span[0] <= o.last_port)
                   for span in DATA_PORT_RANGES})
    problems = []
    for r in resources:
        for opening in _openings(r.type, r.props):
            found = [(str(port), f"{service} ({port})", worlds[port]) for port, service in DATA_PORTS.items()
                     if opening.covers(port) and opening.cidr in worlds[port]]
            found += [(f"{max(first, opening.first_port)}-{min(last, opening.last_port)}",
                       f"{service} ({first}-{last})", worlds[(first, last)])
                      for (first, last), service in DATA_PORT_RANGES.items()
                      if opening.first_port <= last and first <= opening.last_port
                      and opening.cidr in worlds[(first, last)]]
            if not found:
                continue
            ports = ", ".join(port for port, _, _ in found)
            remove = f"remove {ports} from labstack:ingressPorts" if r.type == INGRESS_RULE else "close those ports"
            problems.append(f"{r.name}: opens {', '.join(service for _, service, _ in found)} to the world "
                            f"({found[0][2][opening.cidr]}). Fix: {remove}, or {_networks_fix(r.type, opening.cidr)}; "
                            "reach these services over SSH or through Caddy")
    return problems


# --- advisory -------------------------------------------------------------------------------------------------------

def ssh_not_open_to_world(resources: Sequence[Resource]) -> list[str]:
    """SSH answers only your own networks: the whole internet probes port 22 all day."""
    world = _world(resources, lambda o: o.covers(SSH_PORT))
    # labstack's firewall opens 22 to labstack:sshCidrs alone
    return [f"{r.name}: SSH ({SSH_PORT}) is open to the world ({world[o.cidr]}). Fix: "
            + ("list only your own networks in labstack:sshCidrs" if r.type == INGRESS_RULE
               else _networks_fix(r.type, o.cidr))
            for r in resources for o in _openings(r.type, r.props) if o.covers(SSH_PORT) and o.cidr in world]


def instance_type_allowed(type_: str, name: str, props: Mapping[str, Any],
                          allowed_instance_types: Sequence[str] = DEFAULT_INSTANCE_TYPES) -> list[str]:
    """Instances use an instance type of the allow-list (shell-style patterns such as `t3.*`)."""
    if type_ != INSTANCE:
        return []
    instance_type = props.get("instanceType")
    if instance_type is None or any(fnmatch.fnmatchcase(instance_type, p) for p in allowed_instance_types):
        return []
    return [f"{name}: instance type {instance_type} is not in the policy's allow-list "
            f"({', '.join(allowed_instance_types)}). Fix: set labstack:instanceType to an allowed type, or add it to "
            "allowed_instance_types in policy/config.json"]


def region_allowed(resources: Sequence[Resource], allowed_regions: Sequence[str] = DEFAULT_REGIONS) -> list[str]:
    """The stack's AWS resources live in an allowed region (data residency). The region is a property of the AWS
    providers (the default one reads aws:region from the stack file)."""
    return [f"{r.name}: region {r.props.get('region')} is outside the allowed regions ({', '.join(allowed_regions)}),"
            " where the data may have to stay. Fix: set aws:region to an allowed region, or add it to "
            "allowed_regions in policy/config.json"
            for r in resources
            # A provider without a region takes it from the environment, which a policy cannot see.
            if r.type == AWS_PROVIDER and r.props.get("region") and r.props.get("region") not in allowed_regions]


def hourly_price_cap(resources: Sequence[Resource], max_hourly_usd: float = DEFAULT_MAX_HOURLY_USD) -> list[str]:
    """The stack's instances together cost at most the lab's cap per hour, by the price the program tags each
    instance with at creation (`labstack:hourly-usd`, "<usd> <type>"; spot at its cap). Unlike labstack:budget,
    which the stack file's author sets, the cap is the lab's (policy/config.json). Instances without the tag (a
    type the built-in price table lacks) cannot be priced here; `invoke check` warns about them."""
    priced = []
    for r in resources:
        if r.type != INSTANCE:
            continue
        value = str(_map(r.props.get("tags")).get(PRICE_TAG) or "").split()
        try:
            priced.append((r.name, float(value[0])))
        except (IndexError, ValueError):
            continue
    total = sum(usd for _, usd in priced)
    if total <= max_hourly_usd:
        return []
    names = ", ".join(name for name, _ in priced)
    return [f"{names}: the stack's instances cost ${total:.4f}/h (their {PRICE_TAG} tags), above the lab's cap of "
            f"${max_hourly_usd:.2f}/h. Fix: set a smaller labstack:instanceType (or fewer or smaller workers, or "
            "labstack:spot with a lower maxPrice), or raise max_hourly_usd in policy/config.json"]


# --- the catalogue __main__.py wires into the pack ------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """A policy setting read from the pack's config (policy/config.json), with its default."""

    default: Union[tuple[str, ...], float]  # a list of names, or a number
    description: str


@dataclass(frozen=True)
class Rule:
    name: str  # the policy's name in the pack, in `pulumi up` output and in policy/config.json
    description: str
    mandatory: bool  # mandatory stops `pulumi up`; advisory only warns
    # Resource rules: check(type, name, props, **settings); stack rules: check(resources, **settings).
    check: Callable[..., list[str]]
    on_stack: bool = False
    settings: Mapping[str, Setting] = field(default_factory=dict)

    def settings_from(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The rule's keyword arguments: each setting from the pack's config, else its default."""
        return {key: config.get(key, setting.default) for key, setting in self.settings.items()}


RULES = (
    Rule("ebs-encrypted", "EBS volumes (instance root and extra volumes, volumes, snapshot "
         "copies) are encrypted.", True, ebs_encrypted),
    Rule("ebs-snapshot-encrypted", "EBS snapshots come from encrypted volumes.", True, snapshots_encrypted,
         on_stack=True),
    Rule("imdsv2-hop-limit-1", "Instances require IMDSv2 tokens with a hop limit of 1.", True,
         imdsv2_hop_limit_1),
    Rule("stack-and-creator-tags", "Instances and their volumes, and volumes, are tagged labstack:stack and "
         "labstack:creator.", True, stack_and_creator_tags),
    Rule("no-data-ports-open-to-world", "No security-group ingress opens Postgres, Redis, Ray or Docker's API to "
         "0.0.0.0/0 or ::/0 (also when several rules' networks cover them together).", True, no_data_ports_open_to_world,
         on_stack=True),
    Rule("ssh-not-open-to-world", "SSH (22) is not open to 0.0.0.0/0 or ::/0 (also when several rules' networks cover "
         "them together).", False, ssh_not_open_to_world, on_stack=True),
    Rule("instance-type-allowed", "Instance types come from an allow-list.", False, instance_type_allowed,
         settings={"allowed_instance_types": Setting(DEFAULT_INSTANCE_TYPES, "Allowed instance types: names or "
                                                     "shell-style patterns such as t3.*")}),
    Rule("region-allowed", "AWS regions come from an allow-list (data residency).", False, region_allowed,
         on_stack=True, settings={"allowed_regions": Setting(DEFAULT_REGIONS, "Allowed AWS regions")}),
    Rule("hourly-price-cap", "The stack's instances cost at most the lab's cap per hour.", False, hourly_price_cap,
         on_stack=True, settings={"max_hourly_usd": Setting(DEFAULT_MAX_HOURLY_USD, "USD per hour for all the "
                                                            "instances of one stack")}),
)


def violations(resources: Sequence[Resource], config: Mapping[str, Any]) -> list[tuple[Rule, str]]:
    """Every rule over the stack's resources, as the pack runs them at `pulumi up` and `invoke check` runs them
    offline: (rule, message) per violation. `config` is policy/config.json's: per rule a level (`mandatory`,
    `advisory`, `disabled`) or a map of its settings with an optional `enforcementLevel`."""
    found = []
    for rule in RULES:
        given = config.get(rule.name, {})
        level = given if isinstance(given, str) else _map(given).get("enforcementLevel")
        if level == "disabled":
            continue
        mandatory = rule.mandatory if level is None else level == "mandatory"
        kwargs = rule.settings_from(_map(given))
        if rule.on_stack:
            messages = rule.check(resources, **kwargs)
        else:
            messages = [m for r in resources for m in rule.check(r.type, r.name, r.props, **kwargs)]
        found += [(Rule(rule.name, rule.description, mandatory, rule.check, rule.on_stack, rule.settings), message)
                  for message in messages]
    return found
