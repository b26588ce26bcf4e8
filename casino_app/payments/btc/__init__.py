"""Bitcoin custody: the network's parameters from configuration (``network``), public keys,
deposit addresses and address validation (``keys``, ``bech32``), and the adapter that speaks
Bitcoin Core's JSON-RPC to the node, absorbing bcoin's differences (``rpc``).

The web process imports only public-key code from here; the seed is read by
``payments/signer`` alone (``payments/signer/btc.py`` signs Bitcoin transactions).
"""
