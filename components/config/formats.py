"""The formats and defaults of the stack file's values: what AWS, Docker and ssh accept, in one place."""
from __future__ import annotations

import ipaddress
import re

NAMESPACE = "labstack"
DEFAULT_AMI_SSM_PATH = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
DEFAULT_INSTANCE_TYPE = "m7i.large"
DEFAULT_STORAGE_GB = 32
MAX_STORAGE_GB = 16384  # gp3 limit
# SSH, and Caddy's HTTP (ACME challenges, redirect) and HTTPS; apps listen only behind Caddy, so no app port.
DEFAULT_INGRESS_PORTS = (22, 80, 443)
SSH_PORT = 22
MIN_DASHBOARD_PASSWORD = 12
DEFAULT_VPC_CIDR = "10.42.0.0/16"
LOGIN_USER = "ubuntu"  # the login user of Canonical's Ubuntu AMIs
# Set by labstack in every app container; an app may not set them itself.
RESERVED_ENV = ("DATABASE_URL", "REDIS_URL", "LABSTACK_APP", "PORT", "LABSTACK_DATA_DIR")

SERVER_NAME_RE = re.compile(r"^[a-z0-9-]+$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")
# family (letters, generation digit, attribute letters) "." size, e.g. t3.micro, m7i.large, c6gn.16xlarge, u-6tb1.metal
INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$")
AMI_ID_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
SSM_PATH_RE = re.compile(r"^/[A-Za-z0-9_.\-/]+$")
KEY_PAIR_NAME_RE = re.compile(r"^[\x20-\x7e]{1,255}$")
SECURITY_GROUP_ID_RE = re.compile(r"^sg-[0-9a-f]{8,17}$")
SUBNET_ID_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
ZONE_ID_RE = re.compile(r"^Z[A-Z0-9]{1,32}$")
DNS_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
APP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# registry[:port]/path[:tag]@sha256:<64 hex>, as `docker pull` accepts it
PINNED_IMAGE_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(\.[a-z0-9-]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                             r"(:[\w][\w.-]{0,127})?@sha256:[0-9a-f]{64}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
URL_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOGIN_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
DASHBOARD_USER_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Graviton families end their family name in "g" (t4g, m7g, c6gn, r8gd): they cannot boot an amd64 AMI.
ARM_FAMILY_RE = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*$")
ARM_FAMILY_PREFIXES = ("a1",)


def is_arm(instance_type: str) -> bool:
    family = instance_type.split(".", 1)[0]
    return family.startswith(ARM_FAMILY_PREFIXES) or bool(ARM_FAMILY_RE.match(family))


def resolved_host(app_host: str | None, app: str, base: str) -> str:
    """The name an app is served under: `@` is the base itself, a label goes under it, a full name stands alone."""
    if app_host and "." in app_host:
        return app_host
    if app_host == "@":
        return base
    return f"{app_host or app}.{base}"


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def is_dns_name(value: str) -> bool:
    """Every label a valid DNS label (case-insensitive); the caller checks how many labels it needs."""
    return all(DNS_LABEL_RE.match(label) for label in value.lower().split("."))
