"""The signer: the only code that loads the hot wallet's seed (``seed``).

It runs inside ``casino worker`` (or ``casino run`` with jobs in the app) or in its own
process; the web process imports nothing from here and knows only the account xpub
(``payments/eth/keys.hot_wallet_xpub``).
"""
