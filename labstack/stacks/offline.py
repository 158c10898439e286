"""Run the real Pulumi program offline, under Pulumi's mocks, and record every resource it declares.

This is what `invoke check` runs and what the test suites assert on. It executes `__main__.py` itself — the same
file `pulumi up` runs — with Pulumi's mock monitor standing in for the engine and a small fake of the AWS lookups
(`FakeAws`). No AWS credentials, no Pulumi CLI, no network. It is *not* a `pulumi preview`: AWS is never asked
whether the AMI, zone or subnet exist, so those answers come from `FakeAws`.
"""
from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import runpy
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.config.schema import SECRET_KEYS
from labstack.stacks.stackfile import PROJECT_DIR

# pulumi-aws and pulumi-command warn about their own deprecated modules on import: noise for our users.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_(aws|command)\..*")

PROGRAM = PROJECT_DIR / "__main__.py"
UBUNTU_OWNER = "099720109477"  # Canonical's AWS account


class LookupMiss(Exception):
    """What a provider function answers when the thing asked for does not exist."""


@dataclass
class FakeAws:
    """The answers AWS would give to the program's lookups. Defaults suit `invoke check` of any stack file."""

    ami_root_size_gb: int = 8
    # None: every parent domain of a DNS host counts as a hosted zone (offline we cannot know better).
    zones: Optional[dict[str, str]] = None  # zone name -> zone id
    subnets: dict[str, str] = field(default_factory=dict)  # subnet id -> vpc id; empty: any subnet exists
    missing_ssm_paths: set[str] = field(default_factory=set)
    ssm_paths: dict[str, str] = field(default_factory=dict)  # fake ami id -> the SSM path it came from
    # Elastic IPs handed out in order; the e2e tests put a test bed host's address here.
    public_ips: list[str] = field(default_factory=list)
    # Node name -> its address (e.g. "paris-batch2-worker-1" -> a test bed host's IP): the instance's privateIp, and
    # its publicIp when it has no Elastic IP. Test bed hosts share one link, so one address is both. Unnamed nodes
    # get 10.42.0.10 and the next public address.
    node_addresses: dict[str, str] = field(default_factory=dict)
    # Public addresses handed out, by resource name: evaluating again with the same FakeAws gives each the same one, as
    # Pulumi's state would (resources register in the order their inputs resolve, which varies between runs).
    handed_out: dict[str, str] = field(default_factory=dict)
    # Private keys (OpenSSH text) the tls provider "generates", by resource name. Filled on first use, so
    # evaluating again with the same FakeAws gives the same keys, as Pulumi's state would.
    private_keys: dict[str, str] = field(default_factory=dict)
    # What a remote command printed when it last ran, by resource name (the engine keeps it as the `stdout` output).
    command_stdout: dict[str, str] = field(default_factory=dict)
    # EBS volumes an attached labstack:dataVolume.id may name: id -> {"availabilityZone", "encrypted" (default true),
    # "attachedTo": {instance id: its labstack:stack tag}}; an unknown id is an unattached, encrypted volume in the
    # region's first zone.
    volumes: dict[str, dict] = field(default_factory=dict)

    def ami_for(self, path: str) -> str:
        return "ami-" + hashlib.sha256(path.encode()).hexdigest()[:17]

    def call(self, token: str, args: dict) -> dict:
        if token == "aws:ssm/getParameter:getParameter":
            if args["name"] in self.missing_ssm_paths:
                raise LookupMiss(f"ParameterNotFound: {args['name']}")
            return {"name": args["name"], "value": self.ami_for(args["name"]), "type": "String"}
        if token == "aws:ec2/getAmi:getAmi":
            image_id = args["filters"][0]["values"][0]
            arm = "arm64" in self.ssm_paths.get(image_id, "")
            return {"id": image_id, "imageId": image_id, "architecture": "arm64" if arm else "x86_64",
                    "ownerId": UBUNTU_OWNER, "rootDeviceName": "/dev/sda1",
                    "blockDeviceMappings": [{"deviceName": "/dev/sda1",
                                             "ebs": {"volume_size": str(self.ami_root_size_gb),
                                                     "volume_type": "gp3"}}]}
        if token == "aws:route53/getZone:getZone":
            return self._zone(args)
        if token == "aws:ec2/getSubnet:getSubnet":
            if self.subnets and args["id"] not in self.subnets:
                raise LookupMiss(f"InvalidSubnetID.NotFound: {args['id']}")
            vpc = self.subnets.get(args["id"]) or "vpc-" + hashlib.sha256(args["id"].encode()).hexdigest()[:17]
            return {"id": args["id"], "vpcId": vpc, "availabilityZone": f"{pulumi.Config('aws').get('region')}a"}
        if token == "aws:ebs/getVolume:getVolume":
            volume_id = args["filters"][0]["values"][0]
            volume = self.volumes.get(volume_id, {})
            if volume.get("missing"):
                raise LookupMiss(f"InvalidVolume.NotFound: {volume_id}")
            return {"id": volume_id, "volumeId": volume_id, "size": 100, "volumeType": "gp3",
                    "encrypted": volume.get("encrypted", True),
                    "availabilityZone": volume.get("availabilityZone") or f"{pulumi.Config('aws').get('region')}a"}
        if token == "aws:ec2/getInstances:getInstances":
            wanted = {f["name"]: f["values"][0] for f in args["filters"]}
            attached = self.volumes.get(wanted["block-device-mapping.volume-id"], {}).get("attachedTo", {})
            ids = [instance for instance, stack in attached.items()
                   if wanted.get("tag:labstack:stack", stack) == stack]
            return {"id": "instances", "ids": ids, "privateIps": [], "publicIps": [], "ipv6Addresses": []}
        raise LookupMiss(f"offline evaluation has no answer for {token}")

    def remember_path(self, path: str) -> None:
        self.ssm_paths[self.ami_for(path)] = path

    def _zone(self, args: dict) -> dict:
        if self.zones is None:
            wanted = args.get("name") or ""
            # Offline guess: the registrable domain (last two labels) is the hosted zone.
            if args.get("zoneId"):
                raise LookupMiss("offline evaluation cannot look up zone ids; the zone is assumed to exist")
            if wanted.count(".") != 1:
                raise LookupMiss(f"no matching Route53Zone found for {wanted}")
            return {"zoneId": "Z" + hashlib.sha256(wanted.encode()).hexdigest()[:20].upper(), "name": wanted}
        for zone_name, zone_id in self.zones.items():
            if args.get("zoneId") == zone_id or args.get("name") == zone_name:
                return {"zoneId": zone_id, "name": zone_name}
        raise LookupMiss("no matching Route53Zone found")


@dataclass
class Declared:
    """One resource the program declared, with the inputs it gave and the outputs the mocks answered."""

    type: str
    name: str
    inputs: dict
    outputs: dict
    custom: bool
    id: str = ""
    urn: str = ""  # carries the parent chain: ...::labstack:index:Server$aws:ec2/instance:Instance::name
    secret_inputs: frozenset = frozenset()  # top-level inputs that held a Pulumi secret (anywhere inside)


class RecordingMocks(Mocks):
    """Pulumi mocks that remember every resource, in the order the program declared them."""

    def __init__(self, aws: FakeAws):
        self.aws = aws
        self.declared: list[Declared] = []
        # TEST-NET-3 then TEST-NET-1 addresses are never routed, unless the caller hands out real (test bed) ones;
        # both, so a cluster of 500 workers (labstack:cluster.workers' maximum) plus its head gets one each.
        documentation = [str(a) for net in ("203.0.113.0/24", "192.0.2.0/24")
                         for a in ipaddress.IPv4Network(net).hosts()]
        self._addresses = iter(list(aws.public_ips) + documentation)

    def _public_address(self, name: str) -> str:
        if name not in self.aws.handed_out:
            taken = set(self.aws.handed_out.values())
            self.aws.handed_out[name] = next(a for a in map(str, self._addresses) if a not in taken)
        return self.aws.handed_out[name]

    def call(self, args: MockCallArgs):
        # A miss is answered as a provider failure, as the engine does, so the program can catch it.
        try:
            return self.aws.call(args.token, args.args)
        except LookupMiss as miss:
            return {}, [("", str(miss))]

    def new_resource(self, args: MockResourceArgs):
        secret_inputs = frozenset(key for key, value in args.inputs.items() if _holds_secret(value))
        inputs = {key: _unwrap(value) for key, value in args.inputs.items()}
        outputs = dict(inputs)
        resource_id = f"{args.name}-id"
        digest = hashlib.sha256(args.name.encode()).hexdigest()
        if args.typ == "aws:ec2/instance:Instance":
            resource_id = "i-" + digest[:17]
            # EC2 picks a zone of the stack's region (the first, here) unless the subnet decides.
            address = self.aws.node_addresses.get(args.name.removesuffix("-instance"))
            outputs.update(privateIp=address or "10.42.0.10", arn=f"arn:aws:ec2:::instance/{resource_id}",
                           availabilityZone=f"{pulumi.Config('aws').get('region')}a")
            if args.inputs.get("associatePublicIpAddress"):  # a cluster worker: EC2's own address, no Elastic IP
                outputs["publicIp"] = address or self._public_address(args.name)
        elif args.typ == "aws:ec2/eip:Eip":
            resource_id = "eipalloc-" + digest[:17]
            outputs.update(publicIp=self._public_address(args.name), allocationId=resource_id)
        elif args.typ == "aws:ec2/securityGroup:SecurityGroup":
            resource_id = "sg-" + digest[:17]
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            resource_id = args.inputs.get("keyName") or args.name
            outputs.setdefault("keyName", resource_id)
        elif args.typ == "tls:index/privateKey:PrivateKey":
            outputs.update(_real_key_pair(self.aws.private_keys, args.name))  # real: e2e tests install and pin it
        elif args.typ == "aws:ec2/vpc:Vpc":
            resource_id = "vpc-" + digest[:17]
        elif args.typ == "aws:ec2/subnet:Subnet":
            resource_id = "subnet-" + digest[:17]
        elif args.typ == "aws:ebs/volume:Volume":
            resource_id = "vol-" + digest[:17]  # hooks/mount-data.sh finds the device by this id
        elif args.typ == "command:remote:Command" and args.name in self.aws.command_stdout:
            outputs["stdout"] = self.aws.command_stdout[args.name]
        self.declared.append(Declared(args.typ, args.name, inputs, outputs, bool(args.custom), id=resource_id,
                                      secret_inputs=secret_inputs))
        return resource_id, outputs


SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")  # Pulumi's wire marker


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def _holds_secret(value: Any) -> bool:
    if _is_secret(value):
        return True
    if isinstance(value, dict):
        return any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def _unwrap(value: Any) -> Any:
    if _is_secret(value):
        return _unwrap(value["value"])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _real_key_pair(known: dict[str, str], name: str) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if name not in known:
        known[name] = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    key = serialization.load_ssh_private_key(known[name].encode(), password=None)
    return {
        "privateKeyOpenssh": known[name],
        "publicKeyOpenssh": key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                          serialization.PublicFormat.OpenSSH).decode() + "\n",
        "algorithm": "ED25519",
    }


@dataclass
class Evaluation:
    stack: str
    resources: list[Declared]
    outputs: dict[str, Any]
    error: Optional[BaseException] = None  # what the program raised, e.g. a ConfigError

    def ok(self) -> "Evaluation":
        if self.error is not None:
            raise self.error
        return self

    def of_type(self, type_token: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: Optional[str] = None) -> Declared:
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token} {name or ''}, found {[r.name for r in found]}")
        return found[0]


def evaluate(config: dict[str, Any], stack: str, aws: Optional[FakeAws] = None,
             secret_keys: Optional[Iterable[str]] = None) -> Evaluation:
    """Run __main__.py under mocks with this stack config (keys like `labstack:instanceType`). `secret_keys`: the keys
    Pulumi would mark secret (set with `--secret`); by default the secret settings the config holds, as if each had
    been set so (`invoke check` passes what the stack file really says)."""
    if secret_keys is None:
        secret_keys = SECRET_KEYS & set(config)
    aws = aws or FakeAws()
    for value in config.values():
        if isinstance(value, str) and value.startswith("/"):
            aws.remember_path(value)
    # A fresh context per evaluation: Pulumi keeps its settings, config and root stack in context variables.
    return contextvars.Context().run(_evaluate, config, stack, aws, sorted(secret_keys))


def _ensure_event_loop() -> None:
    """Pulumi's mocks run on the thread's current event loop; an asyncio.run() earlier in the process (a task, a
    test) closes its loop and leaves none set."""
    import asyncio

    try:
        if not asyncio.get_event_loop().is_closed():
            return
    except RuntimeError:
        pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def _evaluate(config: dict[str, Any], stack: str, aws: FakeAws, secret_keys: list[str]) -> Evaluation:
    import json

    _ensure_event_loop()
    mocks = RecordingMocks(aws)
    pulumi.runtime.set_mocks(mocks, project="labstack", stack=stack, preview=False)
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
                                   secret_keys=secret_keys)
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(PROGRAM), run_name="__main__")))
    except Exception as error:  # noqa: BLE001 - handed to the caller with what was declared before it
        return Evaluation(stack=stack, resources=mocks.declared, outputs={}, error=error)
    urns = {(urn.rsplit("::", 1)[1], urn.split("::")[2].split("$")[-1]): urn
            for urn in pulumi.runtime.settings.SETTINGS.monitor.resources}
    for declared in mocks.declared:
        declared.urn = urns.get((declared.name, declared.type), "")
    root = pulumi.runtime.get_root_resource()
    outputs = {}
    for key, value in root.outputs.items():
        outputs[key] = _sync_await(pulumi.Output.from_input(value).future())
    return Evaluation(stack=stack, resources=mocks.declared, outputs=outputs)

