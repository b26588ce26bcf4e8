"""Design tokens: colours, radii and spacing in one place."""

BG = "#0f1115"
SURFACE = "#171a21"
SURFACE_2 = "#1f232c"
BORDER = "#2a2f3a"
TEXT = "#e8e8ea"
MUTED = "#9aa0ab"
ACCENT = "#f5b400"
DANGER = "#ff6b6b"
SUCCESS = "#3ecf8e"
RADIUS = "12px"
MAX_WIDTH = "1100px"
FORM_WIDTH = "440px"

global_style = {
    "body": {"background_color": BG, "color": TEXT},
    "a": {"color": ACCENT},
}

card = {
    "background_color": SURFACE,
    "border": f"1px solid {BORDER}",
    "border_radius": RADIUS,
    "padding": ["16px", "20px", "24px"],
    "width": "100%",
}
