"""AWS resources: one ComponentResource per module (network, firewall, key pair, node, DNS, host key)."""
