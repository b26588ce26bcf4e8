"""The sim's HTML: the game page (for the casino's iframe) and a round's recall page.

No inline script or style: the page loads ``/static/game.js`` and ``/static/game.css``
from the sim's own origin, under a CSP that allows nothing else. Everything dynamic is
escaped.
"""

from __future__ import annotations

from html import escape

from casino_app.games.providers import hhsim
from casino_app.provider_sim import catalog
from casino_app.provider_sim.rounds import Round


def csp(frame_origins: list[str]) -> str:
    """The pages' policy; ``frame-ancestors`` is the casino's origin given at launch
    (lobby, deposit or return URL), or any when the launch named none."""
    framers = " ".join(frame_origins) if frame_origins else "*"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'; base-uri 'none'; form-action 'none'; "
            f"frame-ancestors {framers}")


def _head(title: str, script: bool) -> str:
    js = '<script src="/static/game.js" defer></script>' if script else ""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)} · {catalog.PRODUCT}</title>'
            f'<link rel="stylesheet" href="/static/game.css">{js}</head>')


def play_page(name: str) -> str:
    return _head(name, script=True) + f"""<body>
<main class="game" id="game" data-kind="" data-busy="false">
  <header class="top">
    <h1>{escape(name)}</h1>
    <span class="badge" id="mode" hidden>Demo: play money</span>
  </header>
  <section class="balance">Balance <strong id="balance">…</strong>
    <span id="currency"></span></section>
  <section class="board" id="board" aria-live="polite">
    <div class="reels" id="reels" hidden><span>?</span><span>?</span><span>?</span></div>
    <ol class="ladder" id="ladder" reversed hidden></ol>
    <p class="result" id="result"></p>
  </section>
  <section class="controls">
    <label>Stake <select id="stake" disabled></select></label>
    <button type="button" id="spin" hidden disabled>Spin</button>
    <button type="button" id="step" hidden disabled>Step</button>
    <button type="button" id="stop" hidden disabled>Stop</button>
  </section>
  <p class="message" id="message" role="alert"></p>
  <section class="fair">
    <h2>Provably fair ({escape(hhsim.SCHEME)})</h2>
    <dl>
      <dt>Next round: seed hash (committed before it starts)</dt><dd id="next-hash">…</dd>
      <dt>Last round</dt><dd id="last-round">none yet</dd>
      <dt>Its seed hash</dt><dd id="last-hash">–</dd>
      <dt>Its seed (revealed when it closes)</dt><dd id="last-seed">–</dd>
    </dl>
    <a id="recall" href="#" target="_blank" rel="noopener noreferrer" hidden>Round details</a>
  </section>
  <details class="paytable"><summary>Paytable, RTP <span id="rtp"></span>%</summary>
    <table><thead><tr><th id="row-head">Outcome</th><th>Chance</th><th>Pays</th></tr>
    </thead><tbody id="paytable"></tbody></table></details>
</main>
</body></html>
"""


def recall_page(r: Round, digits: int, currency: str) -> str:
    info = catalog.GAMES[r.game]
    view = r.public(digits)
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{escape(catalog.display_units(s.bet, digits))}</td>"
        f"<td>{s.mult / 100:.2f}×</td><td>{escape(catalog.display_units(s.win, digits))}"
        "</td></tr>" for i, s in enumerate(r.steps))
    seed = view["seed"]
    if seed is None:
        reveal = "<dd>not revealed (the round is open, or it was cancelled)</dd>"
    else:
        verdict = "matches the hash" if view["reveal_matches"] else \
            "does NOT match the hash committed before the round"
        reveal = f"<dd><code>{escape(seed)}</code> ({verdict})</dd>"
    return _head(f"Round {r.id}", script=False) + f"""<body>
<main class="game recall">
  <header class="top"><h1>{escape(info.name)}: round <code>{escape(r.id)}</code></h1></header>
  <p>Status: <strong>{escape(r.status)}</strong>{' (a call awaits a retry)'
                                                  if r.unsettled else ''}.
     {escape(r.message)}</p>
  <table><thead><tr><th>Bet</th><th>Stake ({escape(currency)})</th><th>Multiplier</th>
    <th>Win</th></tr></thead><tbody>{rows}</tbody></table>
  <section class="fair"><h2>Provably fair ({escape(hhsim.SCHEME)})</h2>
    <dl><dt>Seed hash, committed before the round</dt>
      <dd><code>{escape(view['seed_hash'])}</code></dd>
      <dt>Seed</dt>{reveal}</dl>
    <p>Check: sha256 of the seed's 32 bytes is the hash; draw k of the round is
      HMAC-SHA256(key = seed bytes, message = "{escape(r.id)}:k"), its first 13 hex digits
      over 2<sup>52</sup>.</p>
  </section>
</main></body></html>
"""
