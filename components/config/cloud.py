"""What only AWS knows, asked through Pulumi invokes before any resource is declared: the AMI behind an SSM path
and its root volume size, the hosted zone of the DNS host, the VPC of an existing subnet. Misses become the same
one-line problems as offline config errors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from components.config.formats import AMI_ID_RE, DEFAULT_INSTANCE_TYPE, is_arm
from components.config.stack import StackConfig


@dataclass(frozen=True)
class CloudFacts:
    """What AWS told us before we declared anything."""

    ami_id: str
    zone_id: Optional[str]
    vpc_id: Optional[str]  # only known up front for an existing subnet
    # labstack:dataVolume.id: the zone the attached volume lives in, where the head must be placed (None: any zone)
    data_volume_zone: Optional[str] = None


def zone_candidates(host: str) -> list[str]:
    """Suffixes of the host, longest first: the hosted zone is the longest one that exists."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def resolve_cloud_facts(cfg: StackConfig) -> CloudFacts:
    """Ask AWS what only AWS knows, before any resource is declared; misses become ConfigError lines."""
    import pulumi_aws as aws

    from components.config.pulumi_source import StackConfigError  # a RunError: printed without a traceback

    problems: list[str] = []
    ami_id = cfg.ami
    if not AMI_ID_RE.match(cfg.ami):
        try:
            ami_id = aws.ssm.get_parameter(name=cfg.ami).value
        except Exception as error:  # noqa: BLE001 - any invoke failure becomes one clear line
            raise StackConfigError([f"labstack:ami = {cfg.ami!r}: the SSM parameter could not be read in "
                                    f"{cfg.region} ({_first_line(error)}); check the path and region"]) from None
    try:
        image = aws.ec2.get_ami(owners=["self", "amazon", "aws-marketplace", "099720109477"],
                                filters=[aws.ec2.GetAmiFilterArgs(name="image-id", values=[ami_id])])
    except Exception as error:  # noqa: BLE001
        raise StackConfigError([f"labstack:ami = {cfg.ami!r}: image {ami_id} not found in {cfg.region} "
                                f"({_first_line(error)}); AMI ids are per region"]) from None
    root_size = 0
    for mapping in image.block_device_mappings or []:
        if mapping.device_name == image.root_device_name:
            ebs = dict(mapping.ebs or {})
            root_size = max(root_size, int(ebs.get("volume_size") or 0))
    if root_size and cfg.storage_gb < root_size:
        problems.append(f"labstack:storageGb = '{cfg.storage_gb}': smaller than the image's root volume "
                        f"({root_size} GB); set it to at least {root_size}")
    if image.architecture == "arm64" and not is_arm(cfg.instance_type):
        problems.append(f"labstack:instanceType = {cfg.instance_type!r}: the AMI {ami_id} is arm64; choose a Graviton "
                        "type such as m7g.large or an amd64 AMI")
    elif image.architecture == "x86_64" and is_arm(cfg.instance_type):
        problems.append(f"labstack:instanceType = {cfg.instance_type!r}: an ARM type cannot boot the x86_64 AMI "
                        f"{ami_id}; choose an x86 type such as {DEFAULT_INSTANCE_TYPE}")

    zone_id = zone_name = None
    if cfg.dns.host:
        if cfg.dns.zone_id:
            try:
                zone = aws.route53.get_zone(zone_id=cfg.dns.zone_id)
                zone_id, zone_name = zone.zone_id, zone.name.rstrip(".")
                if not (cfg.dns.host == zone_name or cfg.dns.host.endswith("." + zone_name)):
                    problems.append(f"labstack:dnsZoneId = {cfg.dns.zone_id!r}: zone {zone_name} cannot hold "
                                    f"{cfg.dns.host}; use that domain's zone id or remove the key")
            except Exception as error:  # noqa: BLE001
                problems.append(f"labstack:dnsZoneId = {cfg.dns.zone_id!r}: no such hosted zone "
                                f"({_first_line(error)}); check `aws route53 list-hosted-zones`")
        else:
            for candidate in zone_candidates(cfg.dns.host):
                try:
                    zone = aws.route53.get_zone(name=candidate, private_zone=False)
                except Exception as error:  # noqa: BLE001
                    if "no matching" in str(error).lower():
                        continue  # the expected miss while walking up to the parent domain
                    # Anything else (throttling, AccessDenied) must not send the records to a parent zone.
                    raise StackConfigError([f"labstack:dnsHost = {cfg.dns.host!r}: looking up the hosted zone "
                                            f"{candidate} failed ({_first_line(error)}); check the credentials' "
                                            "route53 permissions, or set labstack:dnsZoneId"]) from None
                zone_id, zone_name = zone.zone_id, zone.name.rstrip(".")
                break
            else:
                problems.append(f"labstack:dnsHost = {cfg.dns.host!r}: no public Route53 hosted zone found for any of "
                                f"{', '.join(zone_candidates(cfg.dns.host))}; create the zone, set "
                                "labstack:dnsZoneId, or remove dnsHost to use the server's IP")

    vpc_id = subnet_zone = None
    if cfg.network.mode == "subnet":
        try:
            subnet = aws.ec2.get_subnet(id=cfg.network.subnet_id)
            vpc_id, subnet_zone = subnet.vpc_id, subnet.availability_zone
        except Exception as error:  # noqa: BLE001
            problems.append(f"labstack:network = {cfg.network.subnet_id!r}: subnet not found in {cfg.region} "
                            f"({_first_line(error)})")
    volume_zone = None
    if cfg.data_volume and cfg.data_volume.existing_id:
        volume_zone = _existing_volume_zone(cfg, subnet_zone, problems)
    if problems:
        raise StackConfigError(problems)
    return CloudFacts(ami_id=ami_id, zone_id=zone_id, vpc_id=vpc_id, data_volume_zone=volume_zone)


def _existing_volume_zone(cfg: StackConfig, subnet_zone: Optional[str], problems: list[str]) -> Optional[str]:
    """The zone of the volume `dataVolume.id` names, refusing one that cannot be attached to this stack's server:
    missing, in another zone than the subnet the server must use, or attached to an instance of another stack
    (EBS attaches a volume to one instance; crimpl's "bigger instance" means stopping the other stack's first)."""
    import pulumi_aws as aws

    volume_id = cfg.data_volume.existing_id
    key = f"labstack:dataVolume.id = {volume_id!r}"
    try:
        volume = aws.ebs.get_volume(filters=[aws.ebs.GetVolumeFilterArgs(name="volume-id", values=[volume_id])])
    except Exception as error:  # noqa: BLE001
        problems.append(f"{key}: no such volume in {cfg.region} ({_first_line(error)}); check the id and "
                        "aws:region (a volume lives in one availability zone of one region)")
        return None
    if not volume.encrypted:
        problems.append(f"{key}: the volume is not encrypted, and labstack keeps the apps' data on encrypted volumes "
                        f"only; snapshot it (`aws ec2 create-snapshot --volume-id {volume_id}`) and set "
                        "labstack:dataVolume.fromSnapshot to that snapshot instead of id: labstack makes an encrypted "
                        "volume from it")
    if subnet_zone and volume.availability_zone != subnet_zone:
        problems.append(f"{key}: the volume is in {volume.availability_zone} but labstack:network "
                        f"{cfg.network.subnet_id} is in {subnet_zone}; use a subnet of {volume.availability_zone}, "
                        "or make a copy there with `aws ec2 create-snapshot` and labstack:dataVolume.fromSnapshot")
    attached = set(_attached_instances(volume_id, []))
    ours = set(_attached_instances(volume_id, [aws.ec2.GetInstancesFilterArgs(name="tag:labstack:stack",
                                                                              values=[cfg.stack])]))
    others = sorted(attached - ours)
    if others:
        problems.append(f"{key}: the volume is attached to {', '.join(others)}, an instance of another stack; stop "
                        "that instance and remove the volume from its stack (or detach it) first, then run this again")
    return volume.availability_zone


def _attached_instances(volume_id: str, filters: list) -> list[str]:
    import pulumi_aws as aws

    found = aws.ec2.get_instances(
        filters=[aws.ec2.GetInstancesFilterArgs(name="block-device-mapping.volume-id", values=[volume_id]), *filters],
        instance_state_names=["pending", "running", "stopping", "stopped"])
    return list(found.ids)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
