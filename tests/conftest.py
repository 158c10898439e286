"""Shared pytest setup: the test bed (hosts, moto server, registry) and the end-to-end deploy fixtures, as plugins
so every suite shares one session-wide build of the example images."""
pytest_plugins = ["tests.testbed.fixtures", "tests.e2e.fixtures"]
