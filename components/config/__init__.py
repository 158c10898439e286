"""The typed stack configuration: read, validated and reported before any resource is declared."""
from components.config.stack import *  # noqa: F401,F403
from components.config.stack import (APP_NAME_RE, DEFAULT_AMI_SSM_PATH, DEFAULT_INSTANCE_TYPE, DEFAULT_STORAGE_GB,  # noqa: F401
                                     DEFAULT_VPC_CIDR, LOGIN_USER, MAX_STORAGE_GB, ConfigError, env_text,
                                     load_stack_config, raw_config_from_pulumi, resolve_cloud_facts,
                                     secret_config_keys, zone_candidates)
