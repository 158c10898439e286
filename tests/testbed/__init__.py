"""The labstack test bed: fake EC2 hosts (network namespace + sshd + dockerd), stand-in images, moto, registry.

See docs/testbed.md. The pytest fixtures live in tests.testbed.fixtures (loaded by tests/conftest.py).
"""
