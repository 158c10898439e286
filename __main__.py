"""labstack: one stack = one experiment. Reads the typed stack config, builds the shared AWS pieces, composes the list
of nodes (today one: the head), sets up each node, deploys the apps on the head, exports."""
from pathlib import Path

import pulumi

from components.aws.cluster import Cluster, ClusterArgs
from components.aws.data_volume import DataVolume, DataVolumeArgs
from components.aws.dns import Dns, DnsArgs
from components.aws.firewall import Firewall, FirewallArgs
from components.aws.host_key import HostKey
from components.aws.idle_alarm import IdleAlarm, IdleAlarmArgs
from components.aws.job_template import JobTemplate, JobTemplateArgs
from components.aws.keypair import KeyPair, KeyPairArgs
from components.aws.network import Network, NetworkArgs
from components.aws.node import Node, NodeArgs
from components.aws.registry_access import RegistryAccess
from components.config import LOGIN_USER
from components.config.cloud import resolve_cloud_facts
from components.config.cost import watcher_budget_env
from components.config.pulumi_source import load_stack_config, raw_config_from_pulumi, secret_config_keys
from components.nodes import HEAD, WORKER, NodeHandle, existing_server_node
from components.render.images import infra_image
from components.remote.app import App, AppArgs, ExportOnDelete
from components.remote.host_setup import HostSetup, HostSetupArgs
from components.remote.ray_node import RayNode, RayNodeArgs, ray_token
from components.remote.registry_login import RegistryLogins
from components.remote.watcher import Watcher, WatcherArgs

cfg = load_stack_config(raw_config_from_pulumi(), stack=pulumi.get_stack(), project=pulumi.get_project(),
                        secret_keys=secret_config_keys())
for warning in cfg.warnings:  # valid but probably not meant; never fails the update
    pulumi.log.warn(warning)
name = cfg.server_name
private_key = cfg.key_pair.private_key()

nodes: list[NodeHandle] = []
data_volume: DataVolume | None = None  # labstack:dataVolume, on the head
if cfg.existing_server:
    # The seeds' docker-ssh mode: deploy to a server the operator already has; nothing is made in AWS.
    existing = cfg.existing_server
    nodes.append(existing_server_node(name, existing.host, existing.host_key, existing.user, existing.port,
                                      private_key))
else:
    facts = resolve_cloud_facts(cfg)
    network = Network(name, NetworkArgs(mode=cfg.network.mode, vpc_cidr=cfg.network.vpc_cidr,
                                        subnet_id=cfg.network.subnet_id, subnet_vpc_id=facts.vpc_id,
                                        availability_zone=facts.data_volume_zone, tags=cfg.tags("network")))
    if cfg.firewall.existing_id:
        security_group_id = pulumi.Output.from_input(cfg.firewall.existing_id)
    else:
        security_group_id = Firewall(name, FirewallArgs(
            description=f"labstack {cfg.stack}: ssh, http, https and the app port",
            ports=cfg.firewall.ports, cidrs=cfg.firewall.cidrs, ipv6_cidrs=cfg.firewall.ipv6_cidrs,
            ssh_cidrs=cfg.firewall.ssh_cidrs,
            vpc_id=network.vpc_id, tags=cfg.tags("firewall"))).security_group_id
    key_pair = KeyPair(name, KeyPairArgs(existing_name=cfg.key_pair.existing_name,
                                         public_key=cfg.key_pair.public_key, tags=cfg.tags("key")))
    # Private ECR images are pulled with the nodes' instance role; no ECR image, no role.
    registry_access = (RegistryAccess(name, cfg.ecr_repositories, tags=cfg.tags("registry-access"))
                       if cfg.ecr_repositories else None)

    def ec2_node(node_name: str, role: str) -> Node:
        """One EC2 node with its own SSH host key, delivered by cloud-init and pinned by every connection."""
        host_key = HostKey(node_name)
        return Node(node_name, NodeArgs(
            role=role, ami_id=facts.ami_id, instance_type=cfg.instance_type, storage_gb=cfg.storage_gb,
            desired_state=cfg.desired_state, key_name=key_pair.key_name, security_group_id=security_group_id,
            subnet_id=network.subnet_id, user_data=host_key.cloud_init(), host_key=host_key.public_key,
            iam_instance_profile=registry_access.profile_name if registry_access else None,
            login_user=LOGIN_USER, private_key=private_key, tags=cfg.tags("server"),
            volume_tags=cfg.tags("server"), region=cfg.region, spot=cfg.spot,
            # With the default network EC2 picks a subnet: in the zone of an attached labstack:dataVolume.id
            availability_zone=facts.data_volume_zone if cfg.network.mode == "default" else None))

    # The head keeps the server's name, so its resources keep their names; a cluster appends its workers here.
    head_node = ec2_node(name, HEAD)
    nodes.append(head_node.handle)
    if cfg.data_volume:
        # The apps' data outlives the instance (README, Data volume); mounted by hooks/mount-data.sh.
        data_volume = DataVolume(name, DataVolumeArgs(
            config=cfg.data_volume, instance_id=head_node.instance_id, availability_zone=head_node.availability_zone,
            region=cfg.region, stack=cfg.stack, creator=cfg.creator, project_dir=str(Path(__file__).resolve().parent),
            tags=cfg.tags("data")))
    if cfg.cluster:
        nodes += Cluster(name, ClusterArgs(
            worker_names=cfg.cluster.worker_names(name), instance_type=cfg.cluster.worker_type,
            storage_gb=cfg.cluster.worker_storage_gb, ami_id=facts.ami_id, desired_state=cfg.desired_state,
            key_name=key_pair.key_name, security_group_id=security_group_id, subnet_id=head_node.subnet_id,
            login_user=LOGIN_USER, private_key=private_key, tags=cfg.tags(WORKER),
            owns_security_group=not cfg.firewall.existing_id,
            iam_instance_profile=registry_access.profile_name if registry_access else None, region=cfg.region,
            spot=cfg.spot)).workers
    if cfg.dns.host:
        Dns(name, DnsArgs(host=cfg.dns.host, zone_id=facts.zone_id, address=nodes[0].public_address))
    # Throwaway job instances are the operator side's (docs/lifecycle.md); Pulumi owns only how they are launched.
    job_template = JobTemplate(name, JobTemplateArgs(
        ami_id=facts.ami_id, root_device_name=facts.root_device_name, instance_type=cfg.instance_type,
        storage_gb=cfg.storage_gb, key_name=key_pair.key_name, security_group_id=security_group_id,
        tags=cfg.tags("job"), spot=cfg.spot is not None))
    pulumi.export("instanceId", nodes[0].instance_id)
    pulumi.export("region", cfg.region)
    pulumi.export("instanceType", cfg.instance_type)
    pulumi.export("launchTemplateId", job_template.template_id)

head = next(node for node in nodes if node.role == HEAD)
key_file = str(cfg.key_pair.pem_path) if cfg.key_pair.pem_path else f"~/.ssh/{cfg.key_pair.existing_name}.pem"


# The DNS host names the head for SSH only when labstack points it there (its Route53 record); for an existing server
# the record is the user's, so SSH outputs name the address labstack really connects to.
ssh_dns_host = cfg.dns.host if not cfg.existing_server else None


def login_name(node: NodeHandle) -> pulumi.Output[str]:
    """The name operators reach a node by over SSH: the DNS host for the head, when labstack made its record."""
    return pulumi.Output.from_input(ssh_dns_host if node is head and ssh_dns_host else node.public_address)


def known_hosts(node: NodeHandle) -> pulumi.Output[str]:
    # For ~/.ssh/known_hosts: operators verify the server exactly as labstack's own connections do.
    return node.known_hosts(ssh_dns_host if node is head else None)


project_dir = Path(__file__).resolve().parent
app_urls = {}
post_deploy_answers = {}
# Apps stay declared while the server is stopped: unchanged, they run nothing (and are not deleted).
# Every node gets Docker and the hooks, with or without apps: jobs, Ray and the watcher need them. Caddy only where
# it serves something: the head's apps, or Ray's dashboard at ray.<host> (a dashboard password on a Ray cluster).
serves_http = bool(cfg.apps) or bool(cfg.cluster and cfg.cluster.engine == "ray" and cfg.proxy.dashboard_password)
setups = {node.name: HostSetup(node.name, HostSetupArgs(
    node=node, storage_gb=cfg.cluster.worker_storage_gb if node.role == WORKER else cfg.storage_gb,
    proxy=cfg.proxy if node.role == HEAD and serves_http else None, data_volume=(data_volume.volume_id, cfg.data_volume.size_gb, data_volume.ready)
    if data_volume and node.role == HEAD else None)) for node in nodes}
# Private registries other than ECR: docker logs in on the head before its apps pull (after Docker is installed).
logins = (RegistryLogins(f"{head.name}-registry", head, cfg.registry_auth, after=setups[head.name].ready).ready
          if cfg.registry_auth else [])
for app in cfg.apps:
    deployed = App(f"{name}-{app.name}", AppArgs(
        app=app, node=head, host=head.public_address.apply(lambda ip, app=app: cfg.app_host(app, ip)),
        proxy=cfg.proxy, secrets=pulumi.Output.secret({k: v.get_secret_value() for k, v in app.secrets.items()}),
        dashboard_password=pulumi.Output.secret(
            cfg.proxy.dashboard_password.get_secret_value() if cfg.proxy.dashboard_password else None),
        depends_on=[*setups[head.name].ready, *logins],
        export=ExportOnDelete(stack=cfg.stack, key_file=str(cfg.key_pair.pem_path), known_hosts=known_hosts(head),
                              exports_dir=str(project_dir / cfg.exports_dir), project_dir=str(project_dir),
                              discard_data=cfg.discard_data_on_destroy)))
    app_urls[app.name] = deployed.url
    post_deploy_answers[app.name] = deployed.post_deploy

if not cfg.existing_server:
    # labstack:autoStop and labstack:budget.total: each node it made stops itself (hooks/auto-stop.sh).
    budget_env = watcher_budget_env(cfg)
    for node in nodes:
        Watcher(node.name, WatcherArgs(
            node=node, auto_stop=cfg.auto_stop, budget_env=budget_env, after=setups[node.name].ready,
            busy_commands={app.name: app.busy_command for app in cfg.apps if app.busy_command} if node is head else {}))
        # CloudWatch's backstop, should the watcher die; it sees only CPU, so never on a node serving apps.
        if cfg.auto_stop and not (node is head and cfg.apps):
            IdleAlarm(node.name, IdleAlarmArgs(instance_id=node.instance_id, region=cfg.region,
                                               auto_stop=cfg.auto_stop, tags=cfg.tags("alarm")))

if cfg.cluster and cfg.cluster.engine == "ray":
    # Ray on every node (hooks/ray-start.sh): each worker joins the head's private IP. Every node's Ray starts as soon
    # as its own Docker is ready (the head's does not wait for Caddy, only its ray.<host> site does), workers beside
    # the head, not after it: a worker's Ray retries the head's GCS until it answers (the hook waits, bounded, until
    # the node is in the cluster), so a cluster comes up in one Ray start instead of two in a row. One token, kept
    # secret in the state, reaches every node on stdin.
    ray_image = cfg.cluster.image or infra_image("ray")
    token = ray_token(name)
    RayNode(head.name, RayNodeArgs(
        node=head, role=HEAD, head_address=head.private_address, image=ray_image, token=token,
        after=setups[head.name].docker_ready, proxy=cfg.proxy, site_after=setups[head.name].ready,
        site_host=head.public_address.apply(lambda address: f"ray.{cfg.base_host(address)}")))
    for node in nodes:
        if node.role == WORKER:
            RayNode(node.name, RayNodeArgs(node=node, role=WORKER, head_address=head.private_address, image=ray_image,
                                           token=token, after=setups[node.name].docker_ready))

# The head under today's names (labstack/ reads publicIp, knownHosts, instanceId and region), every node in `nodes`.
pulumi.export("publicIp", head.public_address)
pulumi.export("dnsHost", cfg.dns.host or head.public_address)
# Where Caddy serves the head: the DNS host, else <ip>.nip.io (a bare IP has no certificate).
pulumi.export("url", head.public_address.apply(lambda address: f"https://{cfg.base_host(address)}"))
pulumi.export("sshCommand", head.ssh_command(key_file, login_name(head)))
pulumi.export("knownHosts", known_hosts(head))
pulumi.export("appUrls", app_urls)
pulumi.export("postDeploy", post_deploy_answers)  # per app: the last post-deploy response, secrets masked
if cfg.cluster and cfg.cluster.engine == "ray" and cfg.proxy.dashboard_password:
    # Ray's dashboard and Jobs API, served by the head's Caddy at ray.<base host>, behind the dashboard password
    # (without one, no site: the ray.* tasks use their SSH tunnel).
    pulumi.export("rayDashboardUrl", head.public_address.apply(lambda address: f"https://ray.{cfg.base_host(address)}"))
pulumi.export("nodes", {node.name: {
    "role": node.role, "publicIp": node.public_address, "privateIp": node.private_address,
    "instanceId": node.instance_id, "availabilityZone": node.availability_zone,
    "knownHosts": known_hosts(node), "sshCommand": node.ssh_command(key_file, login_name(node)),
} for node in nodes})
