"""`invoke debug -s STACK --app APP [--clean] [--port N]`: the app on this machine's Docker engine, as the server
runs it, until Ctrl-C (labstack/stacks/debug.py)."""
import subprocess

from invoke import Exit

from labstack.tasks.invoke_support import task


@task(help={"stack": "stack name (stacks/Pulumi.<stack>.yaml)",
            "app": "app name in labstack:apps (default: the stack's only app)",
            "clean": "also remove the run's data (.debug/<stack>/<app>/: Postgres, Redis, /data) when it stops",
            "port": "the web's port on 127.0.0.1 (default: a free one)"})
def debug(c, stack, app=None, clean=False, port=None):
    """Run the app locally with Docker: the server's compose, env and secrets, its own Postgres and Redis, the web
    at a printed http://127.0.0.1:PORT/; Ctrl-C removes containers and network (data kept unless --clean)."""
    from labstack.tasks import actions as commands
    from labstack.tasks.errors import call
    from labstack.stacks.debug import debug as run_debug

    try:
        call(run_debug, stack, app, clean=clean, port=int(port) if port else None,
             say=lambda line: commands.console.print(line, markup=False))
    except subprocess.CalledProcessError as error:
        raise Exit(f"labstack: `{' '.join(error.cmd[:6])} …` failed (exit {error.returncode}); its output is above",
                   code=1)
