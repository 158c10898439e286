"""labstack: one stack = one experiment. Reads the typed stack config; makes the nodes (EC2: the head and any cluster
workers, set up, watched, with Ray when the cluster runs it; or the server the operator already has); deploys the
apps on the head; exports how to reach every node."""
from pathlib import Path

import pulumi

from components.aws.dns import Dns, DnsArgs
from components.aws.placement import place
from components.cluster import Cluster, ClusterArgs
from components.config.cloud import resolve_cloud_facts
from components.config.pulumi_source import load_stack_config, raw_config_from_pulumi, secret_config_keys
from components.nodes import existing_server_node
from components.operator_side import OperatorSide
from components.outputs import Reach, export_outputs
from components.remote.app import AppsArgs, deploy_apps
from components.remote.host_setup import HostSetup, HostSetupArgs
from components.remote.registry_login import RegistryLogins
from components.remote.state_secret import dashboard_key

cfg = load_stack_config(raw_config_from_pulumi(), stack=pulumi.get_stack(), project=pulumi.get_project(),
                        secret_keys=secret_config_keys())
for warning in cfg.warnings:  # valid but probably not meant; never fails the update
    pulumi.log.warn(warning)
name = cfg.server_name
operator_side = OperatorSide(project_dir=str(Path(__file__).resolve().parent))
# Salts the password's bcrypt hashes and keys Ray's login mark: random, kept in the state (only with a password).
site_key = dashboard_key(name) if cfg.proxy.dashboard_password else None

if cfg.existing_server:
    # The seeds' docker-ssh mode: deploy to a server the operator already has; nothing is made in AWS.
    server = cfg.existing_server
    head = existing_server_node(name, server.host, server.host_key, server.user, server.port,
                                cfg.key_pair.private_key())
    nodes = [head]
    head_ready = HostSetup(name, HostSetupArgs(node=head, storage_gb=cfg.storage_gb,
                                               proxy=cfg.proxy if cfg.apps else None,
                                               container_metadata=cfg.container_metadata)).ready
else:
    facts = resolve_cloud_facts(cfg)
    cluster = Cluster(name, ClusterArgs(config=cfg, facts=facts, placement=place(cfg, facts),
                                        operator_side=operator_side, dashboard_key=site_key))
    head, nodes, head_ready = cluster.head, cluster.nodes, cluster.head_ready
    if cfg.dns.host:
        Dns(name, DnsArgs(host=cfg.dns.host, zone_id=facts.zone_id, address=head.public_address))

if cfg.registry_auth:
    # Private registries other than ECR: docker logs in on the head before its apps pull.
    head_ready = [*head_ready, *RegistryLogins(f"{name}-registry", head, cfg.registry_auth, after=head_ready).ready]
reach = Reach.of(cfg, head)
apps = deploy_apps(AppsArgs(config=cfg, head=head, known_hosts=reach.known_hosts(head), operator_side=operator_side,
                            after=head_ready, dashboard_key=site_key))
export_outputs(cfg, reach, nodes, apps)
