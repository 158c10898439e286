"""Shared pytest setup: the test bed plugin provides hosts, moto server and the registry."""
pytest_plugins = ["tests.testbed.fixtures"]
