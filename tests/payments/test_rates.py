"""Display rates: both sources, the stored copy, staleness, exact Decimal conversion and
the rates-refresh job. CoinGecko is the one stand-in here (tests/support/coingecko_standin:
there is no internet); the database is the real SQLite ledger."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal, localcontext

import pytest
from sqlalchemy import select

from casino_app.core.clock import utcnow
from casino_app.core.db import ledger_tx
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import rates
from casino_app.payments.rate_models import DisplayRate
from casino_app.payments.rates import CoinGeckoSource, FixedSource, RatesError, RateTable
from tests.support.coingecko_standin import MODES, CoinGeckoStandIn, decimal_prices

BAD_MODES = [m for m in MODES if m != "ok"]


@pytest.fixture
def cg() -> Iterator[CoinGeckoStandIn]:
    with CoinGeckoStandIn() as standin:
        yield standin


@pytest.fixture
def live(app_env, cg: CoinGeckoStandIn, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
         ) -> CoinGeckoStandIn:
    """Settings pointing at the stand-in, as an operator would set CASINO_RATES_URL."""
    monkeypatch.setenv("CASINO_RATES_URL", cg.url)
    monkeypatch.setenv("CASINO_RATES_STALE_SECONDS", "1800")
    reset_settings_cache()
    return cg


def stored() -> dict[tuple[str, str], tuple[str, str]]:
    with ledger_tx(readonly=True) as s:
        return {(r.currency, r.quote): (r.rate, r.source)
                for r in s.execute(select(DisplayRate)).scalars()}


# --- CoinGecko-compatible source ------------------------------------------------------------

def test_a_good_answer_gives_every_pair_as_decimal(cg: CoinGeckoStandIn) -> None:
    got = CoinGeckoSource(cg.url).fetch()
    assert got == decimal_prices(cg)
    assert len(got) == 16 and all(type(v) is Decimal for v in got.values())
    assert got[("USDT", "USD")] == Decimal("1.001")
    assert cg.requests == ["/api/v3/simple/price?ids=bitcoin,ethereum,tether,usd-coin"
                           "&vs_currencies=usd,eur,btc,eth"]


@pytest.mark.parametrize("mode", BAD_MODES)
def test_a_bad_answer_is_refused_and_the_last_rates_are_kept(live: CoinGeckoStandIn,
                                                             mode: str) -> None:
    assert rates.refresh() == {"pairs": 16}
    before = stored()
    assert before[("ETH", "USD")] == ("3000", "127.0.0.1")
    live.mode = mode
    with pytest.raises(RatesError):
        rates.refresh()
    assert stored() == before
    table = rates.snapshot()
    assert table.rate("ETH", "EUR") == Decimal("2750")
    assert not table.status().stale


def test_an_error_never_becomes_a_zero_rate(live: CoinGeckoStandIn) -> None:
    live.mode = "zero"
    with pytest.raises(RatesError, match="above 0"):
        rates.refresh()
    assert stored() == {}
    table = rates.snapshot()
    assert rates.convert(10**9, "ETH", "USD", table) is None
    assert rates.display(10**9, "ETH", "USD", table) == ""
    assert rates.note(table) == "no rates yet"


def test_a_slow_source_times_out_quickly(cg: CoinGeckoStandIn) -> None:
    cg.delay = 3.0
    started = time.monotonic()
    with pytest.raises(RatesError, match="Timeout"):
        CoinGeckoSource(cg.url, timeout=0.5).fetch()
    assert time.monotonic() - started < 2.5


def test_an_unreachable_source_is_an_error() -> None:
    from tests.support.services import free_port

    with pytest.raises(RatesError, match="ConnectError"):
        CoinGeckoSource(f"http://127.0.0.1:{free_port()}/api/v3", timeout=1).fetch()


def test_the_source_name_hides_the_url() -> None:
    src = CoinGeckoSource("https://user:secret@pro-api.example.com/api/v3?key=abc")
    assert src.name == "pro-api.example.com"
    with pytest.raises(ValueError, match="CASINO_RATES_URL"):
        CoinGeckoSource("ftp://example.com")


def test_rates_turn_stale_after_the_configured_age(live: CoinGeckoStandIn) -> None:
    rates.refresh()
    table = rates.snapshot()
    st = rates.status(table)
    assert (st.source, st.stale, st.fixed) == ("127.0.0.1", False, False)
    assert st.fetched_at is not None and rates.note(table) == ""
    # the source goes down; two hours later the last rates still show, marked stale
    live.mode = "error"
    with pytest.raises(RatesError):
        rates.refresh()
    later = utcnow() + timedelta(hours=2)
    assert table.status(later).stale
    assert rates.note(table, later) == "rates 2 h old"
    assert rates.display(10**9, "ETH", "USD", table) == "≈ $3,000.00"
    # stored long ago: stale for every reader
    rates.store(decimal_prices(live), "127.0.0.1", utcnow() - timedelta(seconds=1801))
    assert rates.status().stale
    assert rates.note(rates.snapshot()) == "rates 30 min old"


# --- fixed rates ------------------------------------------------------------------------------

def test_the_embedded_default_uses_the_fixed_rates_and_says_so(app_env) -> None:  # noqa: ANN001
    table = rates.snapshot()
    assert rates.status(table) == ("settings", None, False, True)
    assert rates.note(table) == "rates from settings, not live"
    assert rates.convert(10**9, "ETH", "EUR", table) == Decimal("2750")
    assert rates.refresh() == {"fixed": 1}  # nothing to fetch, nothing stored
    assert stored() == {}


def test_fixed_rates_are_parsed_as_decimal_strings() -> None:
    src = FixedSource("ETH:USD:3000, btc:eur:83000.5,USDT:USD:0.9990")
    assert src.fetch() == {("ETH", "USD"): Decimal("3000"), ("BTC", "EUR"): Decimal("83000.5"),
                           ("USDT", "USD"): Decimal("0.9990")}
    assert src.fixed and src.name == "settings"
    for bad in ("ETH:USD", "DOGE:USD:1", "ETH:GBP:1", "ETH:USD:0", "ETH:USD:-1", "ETH:USD:3e3",
                "ETH:USD:NaN", "ETH:USD:1,ETH:USD:2", "ETH:USD:abc"):
        with pytest.raises(ValueError, match="CASINO_RATES_FIXED"):
            FixedSource(bad)


def test_a_bad_fixed_spec_shows_no_conversion(app_env, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CASINO_RATES_FIXED", "ETH:USD:zero")
    reset_settings_cache()
    table = rates.snapshot()
    assert table.rates == {} and rates.display(10**9, "ETH", "USD", table) == ""


# --- conversion -------------------------------------------------------------------------------

FIXED = RateTable(FixedSource("BTC:USD:90000,BTC:EUR:83000,ETH:USD:3000,ETH:EUR:2750,"
                              "USDT:USD:1,USDT:EUR:0.92,USDC:USD:0.9998").fetch(),
                  "settings", None, True)


def test_conversion_is_exact_decimal() -> None:
    # 0.123456789 ETH at 3000 USD
    assert rates.convert(123_456_789, "ETH", "USD", FIXED) == Decimal("370.370367")
    # one satoshi at 90000 USD, one micro-USDT at 0.92 EUR
    assert rates.convert(1, "BTC", "USD", FIXED) == Decimal("0.0009")
    assert rates.convert(1, "USDT", "EUR", FIXED) == Decimal("0.00000092")
    # the largest amount a column holds, still exact
    assert rates.convert(2**62, "USDT", "USD", FIXED) == Decimal(2**62) / 10**6
    assert rates.convert(-5_000_000, "USDT", "USD", FIXED) == Decimal("-5")
    assert rates.convert(10**8, "BTC", "BTC", FIXED) == Decimal(1)


def test_missing_pairs_cross_through_usd() -> None:
    with localcontext() as ctx:
        ctx.prec = 60
        # no ETH:BTC pair: 3000 / 90000 (60 significant digits)
        assert rates.convert(10**9, "ETH", "BTC", FIXED) == Decimal(3000) / Decimal(90000)
        assert str(rates.convert(10**9, "ETH", "BTC", FIXED))[:12] == "0.0333333333"
        assert FIXED.rate("BTC", "ETH") == Decimal(30)
        # no USDC:EUR pair: USDC in USD, then USD in EUR through BTC's two prices
        assert FIXED.rate("USDC", "EUR") == \
            Decimal("0.9998") * Decimal(83000) / Decimal(90000)
    assert RateTable({("ETH", "EUR"): Decimal(1)}).rate("ETH", "USD") is None
    assert RateTable({("ETH", "USD"): Decimal(1)}).rate("ETH", "EUR") is None


def test_nothing_converts_play_money_or_unknown_codes() -> None:
    assert rates.convert(10_000, "FUN", "USD", FIXED) is None
    assert rates.display(10_000, "FUN", "USD", FIXED) == "play money"
    assert rates.convert(1, "DOGE", "USD", FIXED) is None
    assert rates.convert(1, "ETH", "GBP", FIXED) is None
    assert rates.convert(True, "ETH", "USD", FIXED) is None
    assert rates.display(1, "ETH", "NONE", FIXED) == ""
    assert rates.display(10**8, "BTC", "BTC", FIXED) == ""  # already in BTC


def test_display_formats() -> None:
    assert rates.display(4_113_333, "ETH", "USD", FIXED) == "≈ $12.34"
    assert rates.display(123_456_789_000, "ETH", "USD", FIXED) == "≈ $370,370.37"
    assert rates.display(4_145_455, "ETH", "EUR", FIXED) == "≈ 11.40 €"
    assert rates.display(12_000, "BTC", "ETH", FIXED) == "≈ 0.0036 ETH"
    assert rates.display(10_800_000, "USDT", "BTC", FIXED) == "≈ 0.00012 BTC"
    assert rates.display(-1_000_000, "USDT", "USD", FIXED, signed=True) == "≈ -$1.00"
    assert rates.display(1_000_000, "USDT", "USD", FIXED, signed=True) == "≈ +$1.00"
    assert rates.display(1, "USDT", "USD", FIXED, signed=True) == "≈ $0.00"
    assert rates.display(0, "ETH", "EUR", FIXED) == "≈ 0.00 €"
    assert [rates.age_text(s) for s in (5, 300, 7200, 3 * 86400)] == \
        ["5 s", "5 min", "2 h", "3 d"]


# --- the job ----------------------------------------------------------------------------------

def test_the_rates_refresh_job_fetches_and_stores(live: CoinGeckoStandIn,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from casino_app.jobs.builtin import builtin_jobs

    monkeypatch.setenv("CASINO_RATES_SECONDS", "120")
    reset_settings_cache()
    job = {j.name: j for j in builtin_jobs()}["rates-refresh"]
    assert job.interval == 120
    assert job.func() == {"pairs": 16}
    assert stored()[("BTC", "EUR")] == ("83000", "127.0.0.1")
    # another process (the web) reads what the worker stored
    table = rates.load()
    assert table.rates == decimal_prices(live)
    assert not table.fixed and table.source == "127.0.0.1"
    # a new answer replaces the set
    live.prices["ethereum"]["usd"] = "3100.25"
    job.func()
    assert rates.snapshot().rate("ETH", "USD") == Decimal("3100.25")
    assert rates.cached() is rates.snapshot()


def test_no_rates_job_without_a_source(app_env) -> None:  # noqa: ANN001
    from casino_app.jobs.builtin import builtin_jobs

    assert "rates-refresh" not in {j.name for j in builtin_jobs()}


# --- storage ----------------------------------------------------------------------------------

def test_rates_are_stored_as_decimal_strings_and_migrate_down_and_up(any_env: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from casino_app.core.db import databases
    from casino_app.migrations import alembic_config, current

    rates.store({("ETH", "USD"): Decimal("3012.123456789012345678"),
                 ("BTC", "EUR"): Decimal("83000")}, "api.example.com")
    assert stored() == {("ETH", "USD"): ("3012.123456789012345678", "api.example.com"),
                        ("BTC", "EUR"): ("83000", "api.example.com")}
    assert rates.load().rate("ETH", "USD") == Decimal("3012.123456789012345678")
    rates.store({("ETH", "USD"): Decimal("3013")}, "api.example.com")  # replaces the set
    assert set(stored()) == {("ETH", "USD")}

    engine, cfg = databases().ledger_engine, alembic_config("ledger")
    command.downgrade(cfg, "led0006")
    assert current("ledger") == "led0006"
    assert "display_rates" not in inspect(engine).get_table_names()
    command.upgrade(cfg, "head")
    assert "display_rates" in inspect(engine).get_table_names()
