"""Builds the Reflex app: pages, API routes, PWA head tags and the lifespan tasks (jobs,
wallet push).
Nothing else happens at import time."""

import reflex as rx
from reflex.utils.prerequisites import get_web_dir
from reflex_base.constants import Dirs

from casino_app.api.app import api_transformers
from casino_app.core.heap import freeze_when_started
from casino_app.core.logging import configure_logging
from casino_app.core.settings import get_settings
from casino_app.jobs.worker import run_in_app
from casino_app.ui import pages, push  # noqa: F401  (pages registers every page)
from casino_app.ui.components.connection import reconnecting
from casino_app.ui.pwa import head_components
from casino_app.ui.state.deposits import DepositsState
from casino_app.ui.state.wallet_page import refresh_open_tab
from casino_app.ui.styles import global_style

_settings = get_settings()
configure_logging(_settings.log_level, _settings.log_json)

app = rx.App(
    style=global_style,
    head_components=head_components(),
    # The built pages that the backend serves in production (single port); the CSP lists
    # the hashes of their inline scripts.
    api_transformer=api_transformers(frontend_dir=(get_web_dir() / Dirs.STATIC).resolve()),
    html_lang="en",
)
# Reflex's connection overlay (a pulsing icon and a raw "Cannot connect to server:
# websocket error ..." toast) gives way to a calm "reconnecting" line.
app.app_wraps[(5, "Overlay")] = lambda stateful: reconnecting() if stateful else None
app.register_lifespan_task(run_in_app)
# Deposits reach open wallet tabs without a reload (idle without an Ethereum node).
push.configure(DepositsState, refresh_open_tab)
app.register_lifespan_task(push.run)
# What start-up made lives as long as the process: out of the garbage collector's way.
app.register_lifespan_task(freeze_when_started)
