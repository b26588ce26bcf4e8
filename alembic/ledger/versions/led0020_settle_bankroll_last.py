"""settle_bets_v1 writes the house bankroll last, by the batch's net, so that two batches
can be in the server at once: the bankroll is read without a lock to decide the exposure
caps, its row lock is taken by the last statement (held only until COMMIT), and a batch
that finds the bankroll lower than it read (another batch committed a loss meanwhile)
decides the caps of its accepted bets again from where the bankroll stands and, if one
no longer fits, fails with SQLSTATE HH001 and nothing written (the writer sends it
again). Player accounts are locked FOR NO KEY UPDATE (their balances change, never their
keys), so other transactions' foreign-key checks do not wait for them. Same signature,
same decisions.

Revision ID: led0020_settle_bankroll_last
Revises: led0019_settle_key_probe
Create Date: 2026-12-04 22:00:00
"""

from collections.abc import Sequence

from alembic import op

from casino_app.migrations import earlier_revision, replaced_once

revision: str = 'led0020_settle_bankroll_last'
down_revision: str | None = 'led0019_settle_key_probe'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LOCKS = """  PERFORM 1 FROM ledger_accounts WHERE id = ANY (p_player_acct || p_bank_acct)
    ORDER BY id FOR UPDATE;
"""
_PLAYER_LOCKS = """  PERFORM 1 FROM ledger_accounts WHERE id = ANY (p_player_acct)
    ORDER BY id FOR NO KEY UPDATE;
"""
_WRITES = """    UPDATE ledger_accounts AS la SET balance = v.bal
    FROM unnest(acct_ids, acct_bal, acct_orig) AS v(id, bal, orig)
    WHERE la.id = v.id AND v.bal <> v.orig;

    UPDATE seed_pairs AS sp SET nonce = v.nonce
    FROM unnest(pair_ids, pair_nonce) AS v(id, nonce)
    WHERE sp.id = v.id AND sp.nonce <> v.nonce;
  END IF;
"""
_WRITES_BANKROLL_LAST = """    UPDATE ledger_accounts AS la SET balance = v.bal
    FROM unnest(acct_ids, acct_bal, acct_orig) AS v(id, bal, orig)
    WHERE la.id = v.id AND v.bal <> v.orig AND NOT (v.id = ANY (p_bank_acct));

    UPDATE seed_pairs AS sp SET nonce = v.nonce
    FROM unnest(pair_ids, pair_nonce) AS v(id, nonce)
    WHERE sp.id = v.id AND sp.nonce <> v.nonce;

    -- each bankroll of an accepted bet, in id order, last: by its net, from the value
    -- committed when its lock is granted; ``cap`` is then where it stood before this batch
    FOR a IN SELECT DISTINCT p_bank_acct[g.i] FROM generate_subscripts(st, 1) AS g(i)
             WHERE st[g.i] = 'ok' ORDER BY 1 LOOP
      b := array_position(acct_ids, a);
      UPDATE ledger_accounts SET balance = balance + (acct_bal[b] - acct_orig[b])
        WHERE id = a RETURNING balance - (acct_bal[b] - acct_orig[b]) INTO cap;
      IF cap < acct_orig[b] THEN  -- it fell since it was read: the caps again, in order
        FOR i IN 1 .. n LOOP
          CONTINUE WHEN st[i] <> 'ok' OR p_bank_acct[i] <> a;
          IF p_max_win[i] IS NOT NULL
             AND p_max_win[i] > greatest(cap, 0) * p_cap_bps / 10000 THEN
            RAISE EXCEPTION 'bankroll % fell under the batch', a USING ERRCODE = 'HH001';
          END IF;
          cap := cap + p_stake[i] - p_payout[i];
        END LOOP;
      END IF;
    END LOOP;
  END IF;
"""


def _led0019_function() -> str:
    """settle_bets_v1 as led0019 left it."""
    return earlier_revision(__file__, "led0019_settle_key_probe.py").function_sql()


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(replaced_once(_led0019_function(), {
            _LOCKS: _PLAYER_LOCKS, _WRITES: _WRITES_BANKROLL_LAST}, "led0019"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_led0019_function())
