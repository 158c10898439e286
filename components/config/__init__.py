"""The typed stack configuration: read, validated and reported before any resource is declared.

Pulumi-free on purpose (the operator tasks import it and must start fast); what needs the engine lives in
`components.config.pulumi_source` (the config as the engine hands it) and `components.config.cloud` (AWS lookups).
The schema of the stack file is `components.config.schema`; the configuration reference (docs/configuration.md) and stacks/labstack.schema.json are
generated from it by `python -m components.config.docs`.
"""
from components.config.apps import (AppConfig, PostDeployCommand, PostDeployConfig, PostDeployRequest,  # noqa: F401
                                    is_compound)
from components.config.formats import (APP_NAME_RE, DEFAULT_AMI_SSM_PATH, DEFAULT_INSTANCE_TYPE,  # noqa: F401
                                       DEFAULT_STORAGE_GB, DEFAULT_VPC_CIDR, LOGIN_USER, MAX_STORAGE_GB)
from components.config.messages import ConfigError  # noqa: F401
from components.config.schema import ExistingServerConfig  # noqa: F401
from components.config.stack import ProxyConfig, StackConfig, load_stack_config  # noqa: F401
from components.config.values import env_text  # noqa: F401
