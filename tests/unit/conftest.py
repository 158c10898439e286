import pytest

from tests.unit.helpers import write_private_key


@pytest.fixture
def pem(tmp_path):
    """A fresh Ed25519 private key file with safe permissions."""
    path = tmp_path / "id_ed25519"
    write_private_key(path)
    return path
