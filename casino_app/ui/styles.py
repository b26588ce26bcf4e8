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

# No colour for every <a> here: it outranked the buttons' own text colour ("Join" was
# amber on amber, 1.16:1). Links are Radix links (the amber accent, 11:1 on the page).
global_style = {
    "body": {"background_color": BG, "color": TEXT},
}

# text for screen readers only (present in the accessible name, not on screen)
sr_only = {"position": "absolute", "width": "1px", "height": "1px", "padding": "0",
           "margin": "-1px", "overflow": "hidden", "clip": "rect(0 0 0 0)",
           "white_space": "nowrap", "border": "0"}

card = {
    "background_color": SURFACE,
    "border": f"1px solid {BORDER}",
    "border_radius": RADIUS,
    "padding": ["16px", "20px", "24px"],
    "width": "100%",
}
