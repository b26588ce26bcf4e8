"""Reflex configuration, derived from the one settings object (casino_app.core.settings).

Embedded default: Reflex keeps per-tab state in process memory. With REFLEX_REDIS_URL set
(production), Reflex keeps it in Redis so that several workers can serve one player.

The production build does not depend on the address it is served from (`casino build`,
casino_app/webbuild.py): its pages use their own origin (SameOriginPlugin) and its
sitemap holds paths, completed with CASINO_PUBLIC_URL when /sitemap.xml is served
(deploy_url=None).
"""

import reflex as rx

from casino_app.core.settings import get_settings
from casino_app.ui.same_origin import SameOriginPlugin

_s = get_settings()

config = rx.Config(
    app_name="casino_app",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    state_manager_mode="redis" if _s.redis_url else "memory",
    cors_allowed_origins=[_s.public_url],
    trusted_proxy_hops=_s.trusted_proxies,
    frontend_port=_s.port,
    backend_port=_s.port,
    deploy_url=None,
    default_color_mode="dark",
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(appearance="dark", accent_color="amber", gray_color="slate",
                           radius="large", scaling="100%")),
        rx.plugins.SitemapPlugin(),
        SameOriginPlugin(),
    ],
)
