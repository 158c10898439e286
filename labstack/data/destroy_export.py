"""Export an app's data before Pulumi deletes it: run by a `command:local:Command`'s delete (components/remote/app.py).

Pulumi deletes the export resource before the app itself (it depends on the app's deploy), so when an app is
removed from the stack, or the whole stack is destroyed, this runs first on the operator's machine. A failed export
exits non-zero, which stops the delete or destroy: the app keeps running and nothing is lost. Everything it needs
arrives in the environment, set by the program from the typed stack config: the Pulumi CLI is busy with the destroy
and cannot be asked for outputs, and an app removed from the stack file is no longer in it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from labstack.data.export import ExportError, export_app
from labstack.ssh.target import RemoteError, SshTarget
from labstack.ssh.commands import pause_app

ENVIRONMENT = ("LABSTACK_STACK", "LABSTACK_APP", "LABSTACK_HOST", "LABSTACK_USER", "LABSTACK_KEY_FILE",
               "LABSTACK_KNOWN_HOSTS", "LABSTACK_POSTGRES", "LABSTACK_EXPORTS_DIR")


def main() -> int:
    missing = [name for name in ENVIRONMENT if not os.environ.get(name)]
    if missing:
        print(f"labstack: cannot export before the delete: {', '.join(missing)} not set", file=sys.stderr)
        return 2
    env = os.environ
    if env.get("LABSTACK_DISCARD_DATA") == "true":
        print(f"labstack: {env['LABSTACK_APP']}: not exported (labstack:discardDataOnDestroy is true)", file=sys.stderr)
        return 0
    target = SshTarget(host=env["LABSTACK_HOST"], user=env["LABSTACK_USER"], key_path=Path(env["LABSTACK_KEY_FILE"]),
                       known_hosts=env["LABSTACK_KNOWN_HOSTS"], port=int(env.get("LABSTACK_PORT", "22")),
                       stack=env["LABSTACK_STACK"])
    app = env["LABSTACK_APP"]
    try:
        # Nothing may write between the export and the delete: what it wrote would be lost. pause-app.sh repairs a
        # half-finished deploy first and stops exactly the release the server's state names (it refuses to guess).
        target.run(pause_app(app, "stop"), what=f"stopping {app}'s web, workers and clock")
        result = export_app(target, env["LABSTACK_STACK"], app,
                            postgres=env["LABSTACK_POSTGRES"] == "true", exports_dir=Path(env["LABSTACK_EXPORTS_DIR"]),
                            progress=lambda line: print(f"labstack: {line}", file=sys.stderr))
    except (ExportError, RemoteError, OSError, KeyboardInterrupt) as error:
        # Whatever stopped the export (even a failed or interrupted stop), the app serves again: started always.
        restarted = start_again(target, app)
        reason = "interrupted (Ctrl-C)" if isinstance(error, KeyboardInterrupt) else str(error)
        print(f"labstack: {app}: the export before the delete failed, so nothing was deleted{restarted}: {reason}. "
              f"Fix that and run the delete again, or delete without an export: `invoke config -s {target.stack} --set "
              f"labstack:discardDataOnDestroy=true`, then `invoke up -s {target.stack}`.", file=sys.stderr)
        return 1
    print(f"labstack: {env['LABSTACK_APP']}: exported to {result.path}", file=sys.stderr)
    return 0


def start_again(target: SshTarget, app: str) -> str:
    """Start the app's release again after a failed export; the words for the message."""
    try:
        target.run(pause_app(app, "start"), what=f"starting {app} again")
    except (RemoteError, OSError) as error:
        return (f" and {app} could NOT be started again ({error}; on the server: `{pause_app(app, 'start')}`, e.g. "
                f"through `invoke ssh -s {target.stack}`)")
    return f" and {app} serves again"


if __name__ == "__main__":
    sys.exit(main())
