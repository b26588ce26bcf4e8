"""Ethereum custody: deposit addresses from the hot wallet's xpub (``keys``, ``addresses``),
the chain watcher that credits deposits (``watcher``), and the contracts used on a devnet.

The web process imports only public-key code from here; the seed is read by
``payments/signer`` alone.
"""
