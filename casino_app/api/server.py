"""The web process of ``casino run`` (production): Reflex's production backend on one
port, serving the front end that ``casino build`` made (``.web/build/client``) beside
the websocket and the API, without compiling or building anything.

``casino run`` checks the build's stamp (``casino_app/webbuild.py``), builds it if it is
missing or stale, then replaces itself with ``python -m casino_app.api.server --host H
--port P``. This is what ``reflex run --env prod --single-port`` does after its build:
the same Reflex calls (``run_backend_prod`` with the compiled front end mounted), the
same server (granian), the same settings in the environment for its workers.
"""

from __future__ import annotations

import argparse
import os


def serve(host: str, port: int) -> None:
    # Reflex's configuration reads these (like `reflex run --backend-port P --backend-host
    # H`), here and in the server's workers.
    os.environ["REFLEX_FRONTEND_PORT"] = os.environ["REFLEX_BACKEND_PORT"] = str(port)
    os.environ["REFLEX_BACKEND_HOST"] = host

    from reflex.istate.manager import reset_disk_state_manager
    from reflex.utils import exec as reflex_exec
    from reflex_base import constants
    from reflex_base.config import get_config
    from reflex_base.environment import environment

    environment.REFLEX_COMPILE_CONTEXT.set(constants.CompileContext.RUN)
    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    environment.REFLEX_SKIP_COMPILE.set(True)  # the pages are built: never recompile
    config = get_config()
    reset_disk_state_manager()
    reflex_exec.notify_app_running()
    reflex_exec.notify_frontend(f"http://{host}:{port}", backend_present=True)
    reflex_exec.run_backend_prod(host, port, config.loglevel.subprocess_level(),
                                 mount_frontend_compiled_app=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m casino_app.api.server",
                                description="serve the built front end, websocket and API "
                                            "on one port (run by `casino run`)")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
