"""The loyalty programme: VIP tiers by the USD value wagered, rakeback and level-up
bonuses (docs/ARCHITECTURE.md, "Loyalty").

- ``tiers``: the tiers of ``CASINO_LOYALTY_TIERS``, periods, house edges (pure maths).
- ``accrual``: the ``loyalty-accrue`` job. Each period, once it has ended (plus a grace),
  is accrued once from what the settlement writer and the provider wallet wrote (settled
  ``bets``, closed ``provider_rounds``): volume, its USD value, rakeback, level-ups and
  rakeback-farming flags.
- ``rewards``: what a player sees and claims (an idempotent ledger transfer from the
  house ``loyalty`` account per reward), and the staff's decisions on held claims.
"""
