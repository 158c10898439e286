"""labstack: one stack = one experiment server. Reads the typed stack config, composes the components, exports."""
import pulumi

from components.config import LOGIN_USER, load_stack_config, raw_config_from_pulumi, resolve_cloud_facts
from components.dns import Dns, DnsArgs
from components.firewall import Firewall, FirewallArgs
from components.keypair import KeyPair, KeyPairArgs
from components.network import Network, NetworkArgs
from components.server import Server, ServerArgs

cfg = load_stack_config(raw_config_from_pulumi(), stack=pulumi.get_stack(), project=pulumi.get_project())
facts = resolve_cloud_facts(cfg)
name = cfg.server_name

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
server = Server(name, ServerArgs(
    ami_id=facts.ami_id, instance_type=cfg.instance_type, storage_gb=cfg.storage_gb,
    desired_state=cfg.desired_state, key_name=key_pair.key_name, security_group_id=security_group_id,
    subnet_id=network.subnet_id, tags=cfg.tags("server"), volume_tags=cfg.tags("server")))

if cfg.dns.host and facts.zone_id:
    Dns(name, DnsArgs(host=cfg.dns.host, zone_id=facts.zone_id, address=server.public_ip))
    address = pulumi.Output.from_input(cfg.dns.host)
else:
    address = server.public_ip

key_file = str(cfg.key_pair.pem_path) if cfg.key_pair.pem_path else f"~/.ssh/{cfg.key_pair.existing_name}.pem"
pulumi.export("instanceId", server.instance_id)
pulumi.export("publicIp", server.public_ip)
pulumi.export("dnsHost", cfg.dns.host or server.public_ip)
pulumi.export("url", address.apply(lambda host: f"https://{host}"))
pulumi.export("sshCommand", address.apply(lambda host: f"ssh -i {key_file} {LOGIN_USER}@{host}"))
pulumi.export("region", cfg.region)
pulumi.export("instanceType", cfg.instance_type)
