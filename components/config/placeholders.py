"""The example stack's placeholders, refused until the stack is yours: they would deploy a server nobody can reach
(documentation-only networks in sshCidrs), behind a name nobody owns, running an image no registry holds. Refused by
the model, so `invoke check`, `invoke up` and `pulumi up` all stop at them before anything is created."""
from __future__ import annotations

import ipaddress

# Networks reserved for documentation (RFC 5737, RFC 3849): no one connects from them.
DOCUMENTATION_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))
EXAMPLE_DOMAIN = "my-experiments.org"  # the example's DNS name (stacks/Pulumi.paris-batch2.yaml)
EXAMPLE_REGISTRY = "ghcr.io/your-lab/"  # the example's image repository
MAKE_IT_YOURS = "make it yours"


def documentation_network(cidr: str) -> str:
    """The RFC that reserves the network `cidr` lies in, or ''."""
    network = ipaddress.ip_network(cidr, strict=False)
    for reserved in DOCUMENTATION_NETWORKS:
        if network.version == reserved.version and network.subnet_of(reserved):
            return "RFC 3849" if network.version == 6 else "RFC 5737"
    return ""


def is_example_host(host: str) -> bool:
    return host == EXAMPLE_DOMAIN or host.endswith("." + EXAMPLE_DOMAIN)


def is_example_image(image: str) -> bool:
    return image.startswith(EXAMPLE_REGISTRY)
