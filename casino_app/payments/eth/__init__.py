"""The Ethereum adapter (payments/chains.Chain: ``adapter``): deposit addresses from the hot
wallet's xpub (``keys``, ``addresses``), the watcher that finds deposits (``watcher``; the
chain-neutral crediting is payments/deposits.py), its transactions (``sender``, ``batcher``,
``sweeper``, the Safe: ``safe_payments``, ``safe_exec``), ``reconcile``, ``wallets`` and the
contracts used on a devnet. What every chain shares is in payments/.

The web process imports only public-key code from here; the seed is read by
``payments/signer`` alone.
"""
