"""settle_bets_v1 looks up stored bet keys one index probe per bet (a LATERAL subquery on
uq_bet_key): the join of led0018 was planned once for the function, as a hash join over
every bet, and took 36 µs of each bet's 153 at 20,000 bets in the table (pg_stat_statements,
2026-12-04), growing with the table. Same signature, same decisions.

Revision ID: led0019_settle_key_probe
Revises: led0018_settlement
Create Date: 2026-12-04 19:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'led0019_settle_key_probe'
down_revision: str | None = 'led0018_settlement'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTLE_BETS = r"""
CREATE OR REPLACE FUNCTION settle_bets_v1(
  p_player text[], p_key text[], p_entry_key text[], p_game text[], p_cur text[],
  p_stake bigint[], p_payout bigint[], p_mult bigint[], p_state text[], p_params text[],
  p_outcome text[], p_pair integer[], p_nonce bigint[], p_client_seed text[],
  p_seed_hash text[], p_player_acct integer[], p_bank_acct integer[], p_max_win bigint[],
  p_fingerprint text[], p_memo text[], p_cap_bps bigint, p_now timestamp)
RETURNS TABLE (r_idx integer, r_status text, r_bet_id bigint, r_before bigint,
               r_after bigint, r_cap bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  n integer := coalesce(array_length(p_player, 1), 0);
  pair_ids integer[]; pair_owner text[]; pair_nonce bigint[]; pair_active boolean[];
  acct_ids integer[]; acct_bal bigint[]; acct_orig bigint[]; acct_res bigint[];
  acct_neg boolean[];
  st text[]; bet_id bigint[]; bal_before bigint[]; bal_after bigint[]; cap_at bigint[];
  held text[]; open_players text[];
  i integer; a integer; b integer; k integer; cap bigint; r record;
BEGIN
  IF n = 0 THEN RETURN; END IF;
  st := array_fill(NULL::text, ARRAY[n]);
  bet_id := array_fill(NULL::bigint, ARRAY[n]);
  bal_before := bet_id; bal_after := bet_id; cap_at := bet_id;

  PERFORM 1 FROM seed_pairs WHERE id = ANY (p_pair) ORDER BY id FOR UPDATE;
  PERFORM 1 FROM ledger_accounts WHERE id = ANY (p_player_acct || p_bank_acct)
    ORDER BY id FOR UPDATE;
  SELECT array_agg(id ORDER BY id), array_agg(player_id ORDER BY id),
         array_agg(nonce ORDER BY id), array_agg(state = 'active' ORDER BY id)
    INTO pair_ids, pair_owner, pair_nonce, pair_active
    FROM seed_pairs WHERE id = ANY (p_pair);
  SELECT array_agg(id ORDER BY id), array_agg(balance ORDER BY id),
         array_agg(reserved ORDER BY id), array_agg(allow_negative ORDER BY id)
    INTO acct_ids, acct_bal, acct_res, acct_neg
    FROM ledger_accounts WHERE id = ANY (p_player_acct || p_bank_acct);
  acct_orig := acct_bal;

  -- keys already stored: the same bet again (replay) or another bet under its key
  FOR r IN
    SELECT v.i, bt.id, (bt.game = p_game[v.i] AND bt.currency = p_cur[v.i]
                        AND bt.stake = p_stake[v.i] AND bt.params = p_params[v.i]) AS same
    FROM unnest(p_player, p_key) WITH ORDINALITY AS v(pl, k, i)
    CROSS JOIN LATERAL (SELECT b2.id, b2.game, b2.currency, b2.stake, b2.params
                        FROM bets b2 WHERE b2.player_id = v.pl AND b2.bet_key = v.k
                        LIMIT 1) AS bt
  LOOP
    st[r.i] := CASE WHEN r.same THEN 'replay' ELSE 'conflict' END;
    bet_id[r.i] := r.id;
  END LOOP;
  SELECT coalesce(array_agg(DISTINCT player_id), '{}') INTO held
    FROM player_holds WHERE player_id = ANY (p_player) AND released_at IS NULL;
  SELECT coalesce(array_agg(player_id), '{}') INTO open_players
    FROM bets WHERE state = 'open' AND player_id = ANY (p_player);

  FOR i IN 1 .. n LOOP
    CONTINUE WHEN st[i] IS NOT NULL;
    IF p_player[i] = ANY (held) THEN st[i] := 'hold'; CONTINUE; END IF;
    k := array_position(pair_ids, p_pair[i]);
    IF k IS NULL OR NOT pair_active[k] OR pair_owner[k] <> p_player[i]
       OR pair_nonce[k] <> p_nonce[i] THEN
      st[i] := 'stale'; CONTINUE;
    END IF;
    a := array_position(acct_ids, p_player_acct[i]);
    b := array_position(acct_ids, p_bank_acct[i]);
    IF p_max_win[i] IS NOT NULL THEN
      cap := greatest(coalesce(acct_bal[b], 0), 0) * p_cap_bps / 10000;
      IF p_max_win[i] > cap THEN st[i] := 'exposure'; cap_at[i] := cap; CONTINUE; END IF;
    END IF;
    IF a IS NULL OR (NOT acct_neg[a] AND acct_bal[a] - acct_res[a] < p_stake[i]) THEN
      st[i] := 'funds'; CONTINUE;
    END IF;
    IF p_state[i] = 'open' AND p_player[i] = ANY (open_players) THEN
      st[i] := 'mines_open'; CONTINUE;
    END IF;
    IF b IS NULL THEN st[i] := 'need_bank'; CONTINUE; END IF;
    bal_before[i] := acct_bal[a];
    acct_bal[a] := acct_bal[a] - p_stake[i] + p_payout[i];
    acct_bal[b] := acct_bal[b] + p_stake[i] - p_payout[i];
    bal_after[i] := acct_bal[a];
    pair_nonce[k] := pair_nonce[k] + 1;
    IF p_state[i] = 'open' THEN open_players := open_players || p_player[i]; END IF;
    st[i] := 'ok';
  END LOOP;

  IF 'ok' = ANY (st) THEN
    WITH acc AS (SELECT g.i FROM generate_subscripts(st, 1) AS g(i) WHERE st[g.i] = 'ok'),
    e AS (
      INSERT INTO journal_entries (key, kind, fingerprint, memo, created_at)
      SELECT p_entry_key[acc.i], 'bet', p_fingerprint[acc.i], p_memo[acc.i], p_now
      FROM acc ORDER BY acc.i
      RETURNING id, key
    )
    INSERT INTO postings (entry_id, account_id, currency, amount)
    SELECT e.id, l.acct, p_cur[acc.i], l.amt
    FROM acc JOIN e ON e.key = p_entry_key[acc.i]
    CROSS JOIN LATERAL (VALUES (1, p_player_acct[acc.i], -p_stake[acc.i]),
                               (2, p_bank_acct[acc.i], p_stake[acc.i]),
                               (3, p_bank_acct[acc.i], -p_payout[acc.i]),
                               (4, p_player_acct[acc.i], p_payout[acc.i])) AS l(n, acct, amt)
    WHERE l.amt <> 0
    ORDER BY acc.i, l.n;

    FOR r IN
      WITH acc AS (SELECT g.i FROM generate_subscripts(st, 1) AS g(i) WHERE st[g.i] = 'ok'),
      ins AS (
        INSERT INTO bets (player_id, bet_key, game, currency, stake, payout, mult_e4, state,
                          params, outcome, progress, seed_pair_id, nonce, client_seed,
                          server_seed_hash, balance_before, balance_after, created_at,
                          settled_at)
        SELECT p_player[acc.i], p_key[acc.i], p_game[acc.i], p_cur[acc.i], p_stake[acc.i],
               p_payout[acc.i], p_mult[acc.i], p_state[acc.i], p_params[acc.i],
               p_outcome[acc.i], '[]', p_pair[acc.i], p_nonce[acc.i], p_client_seed[acc.i],
               p_seed_hash[acc.i], bal_before[acc.i], bal_after[acc.i], p_now,
               CASE WHEN p_state[acc.i] = 'open' THEN NULL ELSE p_now END
        FROM acc ORDER BY acc.i
        RETURNING id, player_id, bet_key
      )
      SELECT acc.i, ins.id FROM acc
      JOIN ins ON ins.player_id = p_player[acc.i] AND ins.bet_key = p_key[acc.i]
    LOOP
      bet_id[r.i] := r.id;
    END LOOP;

    INSERT INTO player_stats AS ps (player_id, currency, bets, wagered, paid, best_mult_e4,
                                    updated_at)
    SELECT p_player[g.i], p_cur[g.i], count(*), sum(p_stake[g.i])::bigint,
           sum(p_payout[g.i])::bigint, max(p_mult[g.i]), p_now
    FROM generate_subscripts(st, 1) AS g(i)
    WHERE st[g.i] = 'ok' AND p_state[g.i] <> 'open'
    GROUP BY p_player[g.i], p_cur[g.i]
    ON CONFLICT (player_id, currency) DO UPDATE SET
      bets = ps.bets + excluded.bets, wagered = ps.wagered + excluded.wagered,
      paid = ps.paid + excluded.paid,
      best_mult_e4 = greatest(ps.best_mult_e4, excluded.best_mult_e4),
      updated_at = excluded.updated_at;

    UPDATE ledger_accounts AS la SET balance = v.bal
    FROM unnest(acct_ids, acct_bal, acct_orig) AS v(id, bal, orig)
    WHERE la.id = v.id AND v.bal <> v.orig;

    UPDATE seed_pairs AS sp SET nonce = v.nonce
    FROM unnest(pair_ids, pair_nonce) AS v(id, nonce)
    WHERE sp.id = v.id AND sp.nonce <> v.nonce;
  END IF;

  RETURN QUERY SELECT g.i, st[g.i], bet_id[g.i], bal_before[g.i], bal_after[g.i], cap_at[g.i]
    FROM generate_subscripts(st, 1) AS g(i);
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(SETTLE_BETS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        import importlib.util
        from pathlib import Path

        spec = importlib.util.spec_from_file_location(
            "led0018", Path(__file__).with_name("led0018_settlement_batches.py"))
        assert spec is not None and spec.loader is not None
        led0018 = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(led0018)
        op.execute(led0018.SETTLE_BETS_V1)
