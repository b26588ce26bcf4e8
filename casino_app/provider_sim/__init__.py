"""The reference game provider, ``casino provider-sim``: a small outside studio.

A real separate process on 127.0.0.1 that speaks both provider dialects of
shared/reference/PROVIDERS.md: it plays the Hub88-style aggregator (RSA-signed) and the
BGaming-style studio (HMAC-signed), serves its game list, thumbnails, a playable game page
meant for an iframe, round recall pages, and calls the casino's wallet during rounds. Its
games are provably fair under the published scheme ``hhsim-1``
(``casino_app/games/providers/hhsim.py``). On command it misbehaves
(``misbehave.py``), for the tests and for staff demos.

It plays the role of a studio outside the casino: it imports nothing from ``casino_app``
but the published scheme. docs/PROVIDERS.md, "The reference provider", describes it.
"""
