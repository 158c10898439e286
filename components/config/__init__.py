"""The typed stack configuration: read, validated and reported before any resource is declared.

Pulumi-free on purpose (the operator tasks import it and must start fast); what needs the engine lives in
`components.config.pulumi_source` (the config as the engine hands it) and `components.config.cloud` (AWS lookups).
"""
from components.config.stack import (APP_NAME_RE, DEFAULT_AMI_SSM_PATH, DEFAULT_INSTANCE_TYPE,  # noqa: F401
                                     DEFAULT_STORAGE_GB, DEFAULT_VPC_CIDR, LOGIN_USER, MAX_STORAGE_GB, AppConfig,
                                     ConfigError, ExistingServerConfig, PostDeployConfig, ProxyConfig, StackConfig,
                                     env_text, load_stack_config)
