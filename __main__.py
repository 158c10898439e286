"""labstack: one stack = one experiment server. Reads the typed stack config, composes the components, exports."""
from pathlib import Path

import pulumi

from components.aws.dns import Dns, DnsArgs
from components.aws.firewall import Firewall, FirewallArgs
from components.aws.host_key import HostKey
from components.aws.keypair import KeyPair, KeyPairArgs
from components.aws.network import Network, NetworkArgs
from components.aws.node import Node, NodeArgs
from components.config import LOGIN_USER, load_stack_config
from components.config.cloud import resolve_cloud_facts
from components.config.pulumi_source import raw_config_from_pulumi, secret_config_keys
from components.remote.app import App, AppArgs, ExportOnDelete
from components.remote.host_setup import HostSetup, HostSetupArgs, connection

raw = raw_config_from_pulumi()
cfg = load_stack_config(raw, stack=pulumi.get_stack(), project=pulumi.get_project(),
                        secret_keys=secret_config_keys())
name = cfg.server_name

if cfg.existing_server:
    # The seeds' docker-ssh mode: deploy to a server the operator already has; nothing is made in AWS.
    existing = cfg.existing_server
    address = pulumi.Output.from_input(existing.host)
    host_public_key = pulumi.Output.from_input(existing.host_key)
    login = connection(existing.host, existing.user, cfg.key_pair.private_key(), existing.host_key, existing.port)
    login_user = existing.user
    ssh_port = existing.port
    server_ready = []
    server_id = None
else:
    facts = resolve_cloud_facts(cfg)
    network = Network(name, NetworkArgs(mode=cfg.network.mode, vpc_cidr=cfg.network.vpc_cidr,
                                        subnet_id=cfg.network.subnet_id, subnet_vpc_id=facts.vpc_id,
                                        tags=cfg.tags("network")))
    if cfg.firewall.existing_id:
        security_group_id = pulumi.Output.from_input(cfg.firewall.existing_id)
    else:
        security_group_id = Firewall(name, FirewallArgs(
            description=f"labstack {cfg.stack}: ssh, http, https and the app port",
            ports=cfg.firewall.ports, cidrs=cfg.firewall.cidrs, ipv6_cidrs=cfg.firewall.ipv6_cidrs,
            vpc_id=network.vpc_id, tags=cfg.tags("firewall"))).security_group_id
    key_pair = KeyPair(name, KeyPairArgs(existing_name=cfg.key_pair.existing_name,
                                         public_key=cfg.key_pair.public_key, tags=cfg.tags("key")))
    host_key = HostKey(name)
    server = Node(name, NodeArgs(
        ami_id=facts.ami_id, instance_type=cfg.instance_type, storage_gb=cfg.storage_gb,
        desired_state=cfg.desired_state, key_name=key_pair.key_name, security_group_id=security_group_id,
        subnet_id=network.subnet_id, user_data=host_key.cloud_init(), tags=cfg.tags("server"),
        volume_tags=cfg.tags("server")))
    if cfg.dns.host:
        Dns(name, DnsArgs(host=cfg.dns.host, zone_id=facts.zone_id, address=server.public_ip))
    address = server.public_ip
    host_public_key = host_key.public_key
    login_user = LOGIN_USER
    ssh_port = 22
    login = connection(server.public_ip, LOGIN_USER, cfg.key_pair.private_key(), host_key.public_key)
    server_ready = [server.power_state]
    server_id = server.instance_id
    pulumi.export("instanceId", server.instance_id)
    pulumi.export("region", cfg.region)
    pulumi.export("instanceType", cfg.instance_type)

ssh_host = pulumi.Output.from_input(cfg.dns.host) if cfg.dns.host else address


def known_hosts_line(host: str, ip: str, key: str) -> str:
    """One known_hosts line for every name the server answers to; ssh writes [name]:port for other ports."""
    names = dict.fromkeys([host, ip])
    return ",".join(name if ssh_port == 22 else f"[{name}]:{ssh_port}" for name in names) + f" {key}"


known_hosts = pulumi.Output.all(ssh_host, address, host_public_key).apply(lambda v: known_hosts_line(*v))
project_dir = Path(__file__).resolve().parent
app_urls = {}
# Apps stay declared while the server is stopped: unchanged, they run nothing (and are not deleted).
if cfg.apps:
    host_setup = HostSetup(name, HostSetupArgs(connection=login, login_user=login_user, storage_gb=cfg.storage_gb,
                                                  proxy=cfg.proxy, server=server_ready,
                                                  grow_filesystem=cfg.existing_server is None, server_id=server_id))
    secrets = raw.get("labstack:appSecrets") or {}
    for app in cfg.apps:
        deployed = App(f"{name}-{app.name}", AppArgs(
            app=app, connection=login, host=address.apply(lambda ip, app=app: cfg.app_host(app, ip)),
            proxy=cfg.proxy, secrets=pulumi.Output.secret(secrets.get(app.name) or {}),
            dashboard_password=pulumi.Output.secret(raw.get("labstack:dashboardPassword")),
            depends_on=host_setup.ready, server_id=server_id,
            export=ExportOnDelete(stack=cfg.stack, host=address, port=ssh_port, user=login_user,
                                  key_file=str(cfg.key_pair.pem_path),
                                  known_hosts=known_hosts, exports_dir=str(project_dir / cfg.exports_dir),
                                  project_dir=str(project_dir), discard_data=cfg.discard_data_on_destroy)))
        app_urls[app.name] = deployed.url

key_file = str(cfg.key_pair.pem_path) if cfg.key_pair.pem_path else f"~/.ssh/{cfg.key_pair.existing_name}.pem"
pulumi.export("publicIp", address)
pulumi.export("dnsHost", cfg.dns.host or address)
pulumi.export("url", ssh_host.apply(lambda host: f"https://{host}"))
port_option = f" -p {ssh_port}" if ssh_port != 22 else ""
pulumi.export("sshCommand", ssh_host.apply(lambda host: f"ssh -i {key_file}{port_option} {login_user}@{host}"))
# For ~/.ssh/known_hosts: operators verify the server exactly as labstack's own connections do.
pulumi.export("knownHosts", known_hosts)
pulumi.export("appUrls", app_urls)
