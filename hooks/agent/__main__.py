"""`python3 -I -S -B REMOTE_HOOKS/agent COMMAND ARGS...` (the folder run as a program)."""
import os
import sys

# Run as a folder, the folder itself is sys.path[0]; the package is imported from the folder above it.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from agent.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
