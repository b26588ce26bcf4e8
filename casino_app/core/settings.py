"""One typed settings object, read from ``CASINO_*`` environment variables.

The embedded defaults run the whole platform on one machine with no services: two SQLite
files under ``data_dir``, Reflex's in-process state, no Redis, mail written to a folder.
``CASINO_ENV=production`` turns every missing secret or service into a start-up error.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import secrets
import sys
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CASINO_"
# Settings that hold secrets: each may also be given as a file path in <NAME>_FILE.
SECRET_FIELDS = ("encryption_keys", "smtp_password", "metrics_token", "btc_rpc_password")
# The shortest /api/metrics token production accepts (32 hex characters: 128 bits).
METRICS_TOKEN_MIN = 32
# Presets of payments/btc/network.py (CASINO_BTC_NETWORK).
BTC_NETWORKS = ("mainnet", "testnet", "signet", "regtest-core", "regtest-bcoin")


class Environment(StrEnum):
    development = "development"
    production = "production"


class ConfigError(Exception):
    """A setting is missing or has a bad value; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", case_sensitive=False, validate_default=True
    )

    env: Environment = Environment.development
    data_dir: Path = Path("data")
    # Development only: `casino run` starts the reference game provider (`casino
    # provider-sim`) beside the app and registers it, so the lobby has provider games.
    dev_providers: bool = True
    # The Ed25519 key that signs the proofs of reserves (PEM, PKCS#8); empty: a key made
    # on first use in <data>/reserves-signing-key.pem.
    reserves_key_file: str = ""
    # How often the provider-checks job verifies closed provider rounds and RTP drift.
    provider_checks_seconds: float = Field(60.0, ge=0.5, le=86400)
    public_url: str = "http://localhost:3000"
    port: int = Field(3000, ge=1, le=65535)
    # The address `casino run` listens on (one port: pages, websocket, /api). The default,
    # in development and production alike, is this machine only: a reverse proxy on the
    # same machine reaches it, nobody else. 0.0.0.0 (or ::) listens on every interface:
    # for a container or a proxy on another host, with the port firewalled.
    bind_host: str = "127.0.0.1"

    identity_db_url: str = ""
    ledger_db_url: str = ""
    # Reflex reads REFLEX_REDIS_URL for its state manager; we share it for limits and leases.
    redis_url: str = Field("", validation_alias="REFLEX_REDIS_URL")

    # Comma-separated "key_id:base64(32 bytes)"; the first is used to encrypt, all decrypt.
    encryption_keys: str = ""

    session_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    session_absolute_days: int = Field(7, ge=1, le=90)
    lockout_threshold: int = Field(5, ge=1, le=100)
    lockout_window_minutes: int = Field(15, ge=1, le=24 * 60)
    reset_token_minutes: int = Field(15, ge=1, le=24 * 60)
    unlock_token_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    # The mailed link that finishes a sign-up (the account exists only once it is used).
    register_token_minutes: int = Field(24 * 60, ge=5, le=7 * 24 * 60)
    mfa_challenge_minutes: int = Field(5, ge=1, le=60)
    minimum_age: int = Field(18, ge=18, le=25)
    # Withdrawal protection (users/withdrawal_guard.py, payments/withdrawal_addresses.py):
    # a mailed confirmation link lives this long; a new withdrawal address is usable this
    # many hours after it is first named (0: at once) unless it is on the allow-list;
    # after a password, 2FA (or email) change withdrawals wait this many hours.
    withdraw_confirm_minutes: int = Field(30, ge=5, le=24 * 60)
    withdraw_cooling_hours: float = Field(24, ge=0, le=30 * 24)
    withdraw_lock_hours: float = Field(24, ge=0, le=30 * 24)
    # Account risk (users/risk.py): signals count for this many hours; from
    # risk_step_up points a withdrawal cannot be confirmed by the password alone, from
    # risk_hold points withdrawals are held for risk_hold_hours and staff alerted;
    # risk_factor_failures wrong second factors within an hour are a signal.
    risk_window_hours: float = Field(72, gt=0, le=30 * 24)
    risk_step_up: int = Field(1, ge=1, le=100)
    risk_hold: int = Field(3, ge=1, le=100)
    risk_hold_hours: float = Field(24, gt=0, le=30 * 24)
    risk_factor_failures: int = Field(5, ge=1, le=100)
    # Staff pages and actions need a second factor on the staff account (ASVS level 3).
    staff_require_2fa: bool = True

    argon2_memory_kib: int = Field(19 * 1024, ge=19 * 1024)
    argon2_time_cost: int = Field(2, ge=2)
    argon2_parallelism: int = Field(1, ge=1, le=16)

    # Rate limits in the `limits` library's notation.
    rate_login_ip: str = "30/minute;300/hour"
    rate_login_account: str = "10/minute"
    rate_register_ip: str = "5/minute;30/hour"
    rate_reset_ip: str = "5/minute;30/hour"
    rate_reset_account: str = "3/15 minutes"
    # Mails of the account flows (sign-up, password reset) to one address, whoever asks
    # from wherever: past it the form answers the same and no mail goes out.
    rate_mail_address: str = "3/hour;10/day"
    rate_mfa_session: str = "10/minute"
    rate_reauth_account: str = "10/15 minutes"

    smtp_host: str = ""
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "HashHouse <no-reply@localhost>"
    mail_outbox_dir: Path | None = None

    # /api/metrics wants "Authorization: Bearer <token>". Required in production (at
    # least METRICS_TOKEN_MIN characters); unset in development: /api/metrics is open.
    metrics_token: str = ""

    log_level: str = "INFO"
    log_json: bool = True
    run_jobs_in_app: bool = True
    lease_renew_seconds: float = Field(5.0, gt=0, le=600)
    # How often the audit head is copied to the ledger database (``audit_anchors``).
    audit_anchor_seconds: int = Field(600, ge=10, le=86400)
    trusted_proxies: int = Field(0, ge=0, le=5)

    # Games and bets. Payout tables and house edges live in a JSON file (games/config.py
    # documents its shape); empty means the built-in tables.
    games_config_file: Path | None = None
    # Largest payout one bet may win, as a share of the house bankroll (basis points).
    exposure_cap_bps: int = Field(100, ge=1, le=10_000)
    # Bet limits per currency in its base unit: "CUR:min:max" separated by commas;
    # currencies not named use the defaults of payments/currencies.py.
    bet_limits: str = ""
    rate_bets_player: str = "20/second;600/minute"
    # Play money a demo top-up grants (FUN hundredths) and the balance under which it may.
    fun_topup_amount: int = Field(100_000, ge=1, le=10**12)
    # Play money a new account starts with (FUN hundredths; 0: none), so a newcomer's
    # first bet is not refused with "Insufficient balance".
    fun_welcome: int = Field(100_000, ge=0, le=10**12)

    # Ethereum custody. Empty RPC URL: no chain (the wallet says deposits are off).
    eth_rpc_url: str = ""
    eth_chain_id: int = Field(31337, ge=1)
    # The hot wallet's account-level xpub (BIP44 m/44'/60'/0'): all the web process knows.
    # Empty in development: the signer's development seed writes it to the data folder.
    eth_xpub: str = ""
    # Only the signer reads the seed (a BIP39 mnemonic), from this file or variable.
    eth_hot_seed_file: Path | None = None
    eth_hot_seed: str = ""
    # The passphrase of a sealed seed (``casino keys seal-seed``): a file (a systemd
    # credential, /dev/fd/N) or a variable; neither set: asked at the terminal.
    seed_passphrase_file: Path | None = None
    seed_passphrase: str = ""
    # ERC-20 contracts on the network: "USDT:0x...,USDC:0x..." (checksummed).
    eth_tokens: str = ""
    # Confirmations for a deposit to become withdrawable (1 = credited as pending).
    eth_confirmations: int = Field(12, ge=1, le=1000)
    # "confirmations" (the count above) or "finalized": available once the node's
    # `finalized` block covers it (nodes without the tag fall back to the count).
    eth_finality: str = Field("confirmations", pattern="^(confirmations|finalized)$")
    # Unconfirmed deposits a player may play with, per currency in base units
    # ("ETH:100000000,USDT:..."); currencies not named: nothing (wait for N confirmations).
    eth_pending_cap: str = ""
    # Deposits below these (base units per currency) are recorded, never credited.
    eth_dust: str = ""
    eth_watch_seconds: float = Field(2.0, gt=0, le=3600)
    eth_blocks_per_poll: int = Field(500, ge=1, le=10_000)
    # ETH that a contract passes on to a deposit address (an internal call) is found in
    # the node's call traces: "auto" uses them when the node has them (a loud error in
    # the log when not), "on" requires them (the watcher stops without), "off" never.
    eth_traces: str = Field("auto", pattern="^(auto|on|off)$")
    # Withdrawals, per currency in base units "CUR:amount,...": smallest and largest
    # request, the fee the player pays, and from which amount two staff approve and the
    # cold Safe pays.
    eth_withdraw_min: str = ""
    eth_withdraw_max: str = ""
    eth_withdraw_fee: str = ""
    eth_withdraw_large: str = ""
    # How often queued withdrawals are joined into one transaction per currency, and how
    # long a broadcast transaction may wait before its fee is bumped.
    eth_batch_seconds: float = Field(60.0, gt=0, le=86400)
    eth_fee_bump_seconds: float = Field(180.0, gt=0, le=86400)
    # A sent transaction none of whose versions has a receipt while its nonce is used
    # (and, for a BatchPay call, no Paid log names its withdrawals) is settled as not paid
    # only once the nonce was already used this many blocks below the confirmed depth
    # (until then: an error every run). Keep it plus the confirmations within the node's
    # recent state (128 blocks on a pruned geth).
    eth_void_after_blocks: int = Field(64, ge=1, le=100_000)
    # The batch-payment contract (payments/eth/contracts/BatchPay.sol) on the network.
    eth_batch_contract: str = ""
    # The cold wallet (a Safe) and the hot wallet's band per currency "CUR:min:max,..."
    # (base units): the sweep job sends what is above max to the Safe (down to the middle
    # of the band) and alerts staff when the hot wallet is below min.
    eth_safe_address: str = ""
    eth_hot_band: str = ""
    # Sweeps (payments/eth/sweeper.py, the eth-sweep job): confirmed coins on deposit
    # addresses move to the hot wallet when at least the minimum per currency (base units
    # "CUR:amount,..."; not named: any amount, for ETH any amount above the gas).
    eth_sweep_seconds: float = Field(300.0, gt=0, le=86400)
    eth_sweep_min: str = ""
    # Gas (ETH in gwei) a deposit address that must send a token and lacks gas is topped
    # up to; never less than twice the token transfer's gas at the current fees.
    eth_sweep_topup: int = Field(0, ge=0, le=10**12)
    # How often the books are reconciled against the chain (also `casino reconcile`).
    eth_reconcile_seconds: float = Field(3600.0, gt=0, le=7 * 86400)

    # Bitcoin custody (payments/btc). Empty RPC URL: no Bitcoin node. The network's
    # parameters (bech32 prefix, key versions, coin type, confirmations) come from the preset
    # (payments/btc/network.py); the prefix and the confirmations can be overridden.
    btc_network: str = "mainnet"
    btc_rpc_url: str = ""
    btc_rpc_user: str = ""
    btc_rpc_password: str = ""
    # "auto": ask the node (getnetworkinfo's subversion); "core" or "bcoin" to say it.
    btc_rpc_dialect: str = "auto"
    btc_rpc_timeout: float = Field(30.0, gt=0, le=600)
    btc_bech32_hrp: str = ""
    # 0: the network's default (mainnet 3, testnet 6, signet 3, regtest 2).
    btc_confirmations: int = Field(0, ge=0, le=1000)
    # The BIP84 account's extended public key (m/84'/coin'/0': zpub/vpub, or xpub/tpub):
    # all the web process knows. Empty in development: the signer writes it to the data folder.
    btc_xpub: str = ""
    # Cold storage (payments/btc/cold.py): the cosigners' BIP48 P2WSH account keys
    # (m/48'/coin'/account'/2'), each with its master fingerprint and path, separated by
    # commas: "[fp/48h/0h/0h/2h]xpub...,[fp/48h/0h/0h/2h]Zpub...,...". Public keys only:
    # the server never holds a cold private key. Empty: no cold wallet.
    btc_cold_keys: str = ""
    # Signatures a cold spend needs (2 of the 3 keys by default; never fewer than 2).
    btc_cold_threshold: int = Field(2, ge=2, le=15)
    # Deposits (payments/btc/watcher.py, the btc-watch job): the watcher's pace and the
    # blocks one pass may scan; how much unconfirmed-to-final deposit a player may play with
    # (credited at 1 confirmation; satoshis; empty: no cap, every deposit is playable at 1
    # confirmation, withdrawable at CASINO_BTC_CONFIRMATIONS); deposits below the dust
    # minimum (satoshis) are recorded and never credited.
    btc_watch_seconds: float = Field(2.0, gt=0, le=3600)
    btc_blocks_per_poll: int = Field(100, ge=1, le=10_000)
    # The block the watcher's very first pass starts from (unset: the node's head minus
    # the confirmations). Set it to a height before the first deposit address was shown
    # when the watcher starts late; ignored once blocks are stored (the cursor wins).
    btc_watch_from: int | None = Field(None, ge=0)
    btc_pending_cap: str = ""
    btc_dust: int = Field(1_000, ge=1, le=10**8)
    # Withdrawals (satoshis): smallest and largest request (empty: no maximum), the fee the
    # player pays on top (kept by the house), and from which amount two staff approve and
    # the cold wallet pays (empty: never).
    btc_withdraw_min: int = Field(10_000, ge=1, le=21 * 10**14)
    btc_withdraw_max: str = ""
    btc_withdraw_fee: int = Field(0, ge=0, le=10**8)
    btc_withdraw_large: str = ""
    # The batcher (payments/btc/batcher.py, the btc-batch job): how often the queue is paid
    # in one transaction; the fee rate in sat/vB from the node's estimate for
    # CASINO_BTC_FEE_TARGET blocks, kept within [floor, ceiling], FALLBACK when the node has
    # no estimate; a broadcast batch not mined after CASINO_BTC_FEE_BUMP_SECONDS is
    # replaced (RBF) at a higher rate.
    btc_batch_seconds: float = Field(60.0, gt=0, le=86400)
    btc_fee_target: int = Field(6, ge=1, le=1008)
    btc_fee_floor: int = Field(1, ge=1, le=10_000)
    btc_fee_ceiling: int = Field(500, ge=1, le=10_000)
    btc_fee_fallback: int = Field(10, ge=1, le=10_000)
    btc_fee_bump_seconds: float = Field(1800.0, gt=0, le=7 * 86400)
    # Sweeps and the hot band (payments/btc/sweeper.py, the btc-sweep job): deposit coins
    # move to the hot wallet at CASINO_BTC_SWEEP_FEE sat/vB (consolidation: a low rate) once
    # a deposit address holds at least CASINO_BTC_SWEEP_MIN; the hot band "min:max"
    # (satoshis): above max the overflow goes to the cold wallet, below min staff are
    # alerted to refill from cold.
    btc_sweep_seconds: float = Field(600.0, gt=0, le=86400)
    btc_sweep_min: int = Field(10_000, ge=1, le=21 * 10**14)
    btc_sweep_fee: int = Field(1, ge=1, le=10_000)
    btc_hot_band: str = ""
    # How often the books are reconciled against the Bitcoin chain.
    btc_reconcile_seconds: float = Field(3600.0, gt=0, le=7 * 86400)

    # Display currency conversion: a CoinGecko-compatible API ("" = fixed rates below).
    rates_url: str = ""
    rates_seconds: float = Field(300.0, gt=0, le=86400)
    rates_stale_seconds: float = Field(1800.0, gt=0, le=7 * 86400)
    # Fixed rates used without a source (and said so): "ETH:USD:3000,ETH:EUR:2750,...".
    rates_fixed: str = ("BTC:USD:90000,BTC:EUR:83000,ETH:USD:3000,ETH:EUR:2750,"
                        "USDT:USD:1,USDT:EUR:0.92,USDC:USD:1,USDC:EUR:0.92")

    # Loyalty (games/loyalty): VIP tiers by the USD value wagered, rakeback and level-up
    # bonuses. Tiers "Name:wagered USD:rakeback %:level-up bonus USD" separated by commas,
    # thresholds rising from 0; the rakeback % is the share of the house edge returned.
    loyalty_tiers: str = ("Bronze:0:5:0,Silver:10000:7.5:10,Gold:50000:10:50,"
                          "Platinum:250000:12.5:250,Diamond:1000000:15:1000")
    # A period (the unit of accrual and of a claim): this many hours, aligned on UTC
    # midnight of 1970-01-01; it is accrued this many seconds after it ends (bets that
    # commit late are in it) by the loyalty-accrue job, which runs every CASINO_LOYALTY_SECONDS.
    loyalty_period_hours: int = Field(24, ge=1, le=168)
    loyalty_grace_seconds: int = Field(300, ge=0, le=86400)
    loyalty_seconds: float = Field(60.0, ge=1, le=86400)
    # Rakeback farming: near-even dice bets on both sides (over and under) within the same
    # bucket of this many seconds count as hedged; a period whose hedged volume is at least
    # this share of the player's volume in that currency (basis points) and worth at least
    # this many USD is flagged, and the player's claims wait for staff for FLAG_DAYS days.
    loyalty_hedge_seconds: int = Field(60, ge=1, le=86400)
    loyalty_hedge_share_bps: int = Field(5000, ge=1, le=10_000)
    loyalty_hedge_min_usd: int = Field(100, ge=0, le=10**9)
    loyalty_flag_days: int = Field(30, ge=1, le=3650)

    @field_validator("eth_rpc_url", "btc_rpc_url")
    @classmethod
    def _rpc(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// JSON-RPC URL")
        return v.rstrip("/")

    @field_validator("loyalty_tiers")
    @classmethod
    def _loyalty_tiers(cls, v: str) -> str:
        parse_loyalty_tiers(v)
        return v

    @field_validator("bind_host")
    @classmethod
    def _bind(cls, v: str) -> str:
        return check_bind_host(v)

    @field_validator("btc_network")
    @classmethod
    def _btc_network(cls, v: str) -> str:
        if v not in BTC_NETWORKS:
            raise ValueError(f"unknown network '{v}' (one of {', '.join(BTC_NETWORKS)})")
        return v

    @field_validator("btc_rpc_dialect")
    @classmethod
    def _btc_dialect(cls, v: str) -> str:
        if v not in ("auto", "core", "bcoin"):
            raise ValueError("must be auto (ask the node), core (Bitcoin Core or compatible) "
                             "or bcoin")
        return v

    @field_validator("btc_bech32_hrp")
    @classmethod
    def _hrp(cls, v: str) -> str:
        if v and not (len(v) <= 83 and v == v.lower() and all(33 <= ord(c) <= 126 for c in v)):
            raise ValueError("not a bech32 prefix (1 to 83 lowercase printable ASCII "
                             "characters, such as 'bc', 'tb', 'bcrt' or 'rb')")
        return v

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v

    @field_validator("identity_db_url", "ledger_db_url")
    @classmethod
    def _db(cls, v: str) -> str:
        if v and not v.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        if v.startswith(("postgresql://", "postgres://")):
            v = "postgresql+psycopg://" + v.split("://", 1)[1]
        return v

    @field_validator("rate_login_ip", "rate_login_account", "rate_register_ip",
                     "rate_reset_ip", "rate_reset_account", "rate_mail_address",
                     "rate_mfa_session",
                     "rate_reauth_account", "rate_bets_player")
    @classmethod
    def _rate(cls, v: str) -> str:
        from limits import parse_many

        try:
            parse_many(v)
        except ValueError as exc:
            raise ValueError(f"not a rate limit such as '10/minute': {exc}") from None
        return v

    @field_validator("encryption_keys")
    @classmethod
    def _keys(cls, v: str) -> str:
        if v:
            parse_keyring(v)
        return v

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.env is not Environment.production:
            return self
        missing = []
        if not self.identity_db_url.startswith("postgresql"):
            missing.append("CASINO_IDENTITY_DB_URL (a postgresql:// URL)")
        if not self.ledger_db_url.startswith("postgresql"):
            missing.append("CASINO_LEDGER_DB_URL (a postgresql:// URL)")
        if self.identity_db_url and self.identity_db_url == self.ledger_db_url:
            missing.append("CASINO_LEDGER_DB_URL (must differ from CASINO_IDENTITY_DB_URL)")
        if not self.redis_url:
            missing.append("REFLEX_REDIS_URL")
        if not self.encryption_keys:
            missing.append("CASINO_ENCRYPTION_KEYS (or CASINO_ENCRYPTION_KEYS_FILE)")
        if not self.smtp_host:
            missing.append("CASINO_SMTP_HOST")
        if not self.public_url.startswith("https://"):
            missing.append("CASINO_PUBLIC_URL (must be https:// in production)")
        # /api/metrics shows sign-in outcomes and invariant counters: never open in
        # production (a loopback bind does not hide it: the proxy forwards /api too).
        if len(self.metrics_token) < METRICS_TOKEN_MIN:
            missing.append(f"CASINO_METRICS_TOKEN (or CASINO_METRICS_TOKEN_FILE; at least "
                           f"{METRICS_TOKEN_MIN} characters, e.g. from `openssl rand -hex "
                           "32`)")
        if missing:
            raise ValueError("production needs: " + ", ".join(missing))
        return self

    # Derived values -------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.env is Environment.production

    @property
    def identity_url(self) -> str:
        return self.identity_db_url or f"sqlite:///{(self.data_dir / 'identity.db').resolve()}"

    @property
    def ledger_url(self) -> str:
        return self.ledger_db_url or f"sqlite:///{(self.data_dir / 'ledger.db').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        return (self.mail_outbox_dir or self.data_dir / "outbox").resolve()

    @property
    def keyring(self) -> list[tuple[str, bytes]]:
        if self.encryption_keys:
            return parse_keyring(self.encryption_keys)
        return parse_keyring(_development_keys(self.data_dir))


class LoyaltyTier(NamedTuple):
    """One VIP tier of ``CASINO_LOYALTY_TIERS`` (games/loyalty/tiers.py uses them)."""

    name: str
    threshold_e2: int      # USD cents wagered from which the tier holds
    rakeback_bps: int      # share of the house edge returned, in basis points
    bonus_e2: int          # USD cents paid once when the tier is reached


_TIER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9 ]{0,19}")
_TIER_NUMBER = re.compile(r"[0-9]+(\.[0-9]{1,2})?")


def parse_loyalty_tiers(value: str) -> tuple[LoyaltyTier, ...]:
    """``"Bronze:0:5:0,Silver:10000:7.5:10,..."`` -> tiers; ValueError naming the part."""
    out: list[LoyaltyTier] = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        bits = [b.strip() for b in part.split(":")]
        if len(bits) != 4:
            raise ValueError(f"'{part[:40]}' is not Name:wagered USD:rakeback %:bonus USD")
        name, *numbers = bits
        if not _TIER_NAME.fullmatch(name):
            raise ValueError(f"'{name[:40]}': a tier name is a letter, then up to 19 "
                             "letters, digits or spaces")
        if any(not _TIER_NUMBER.fullmatch(n) for n in numbers):
            raise ValueError(f"'{part[:40]}': amounts are plain decimals with at most 2 "
                             "decimals, e.g. 7.5")
        threshold, pct, bonus = (int(Decimal(n) * 100) for n in numbers)
        if pct > 100 * 100:
            raise ValueError(f"{name}: the rakeback is at most 100% of the house edge")
        if threshold > 10**15 or bonus > 10**12:
            raise ValueError(f"{name}: amount too large")
        if any(t.name.lower() == name.lower() for t in out):
            raise ValueError(f"tier '{name}' appears twice")
        if not out and threshold != 0:
            raise ValueError("the first tier starts at 0 wagered")
        if out and threshold <= out[-1].threshold_e2:
            raise ValueError(f"{name}: thresholds must rise from tier to tier")
        out.append(LoyaltyTier(name, threshold, pct, bonus))
    if not out:
        raise ValueError("name at least one tier, e.g. Bronze:0:5:0")
    return tuple(out)


def check_bind_host(value: str) -> str:
    """An IP address to listen on (``CASINO_BIND_HOST``, ``casino run --host``)."""
    v = value.strip()
    try:
        ipaddress.ip_address(v)
    except ValueError:
        raise ValueError(f"'{v[:40]}' is not an IP address to listen on: use 127.0.0.1 "
                         "(this machine only) or 0.0.0.0 (every interface)") from None
    return v


def parse_keyring(value: str) -> list[tuple[str, bytes]]:
    """Parse "id:base64key,id2:base64key" into [(id, 32-byte key)], first = active."""
    ring: list[tuple[str, bytes]] = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        kid, sep, b64 = part.partition(":")
        if not sep or not kid.isalnum() or len(kid) > 16:
            raise ValueError("each key is 'id:base64', id alphanumeric up to 16 characters")
        try:
            key = base64.b64decode(b64, validate=True)
        except ValueError:
            raise ValueError(f"key '{kid}' is not valid base64") from None
        if len(key) != 32:
            raise ValueError(f"key '{kid}' must decode to 32 bytes (AES-256)")
        if any(k == kid for k, _ in ring):
            raise ValueError(f"key id '{kid}' appears twice")
        ring.append((kid, key))
    if not ring:
        raise ValueError("no keys given")
    return ring


def _development_keys(data_dir: Path) -> str:
    """Embedded default only: a key created on first run in the data folder."""
    path = data_dir / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())["encryption_keys"]
    data_dir.mkdir(parents=True, exist_ok=True)
    value = "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"encryption_keys": value, "note": "DEVELOPMENT ONLY"}, fh)
    os.replace(tmp, path)
    print(f"WARNING: created a development encryption key in {path}; "
          "set CASINO_ENCRYPTION_KEYS in production", file=sys.stderr)
    return value


def _env_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    return ENV_PREFIX + field.upper()


def _secret_files() -> dict[str, Any]:
    """Read <NAME>_FILE variables for secret settings."""
    values: dict[str, Any] = {}
    for field in SECRET_FIELDS:
        var = _env_name(field) + "_FILE"
        path = os.environ.get(var)
        if path:
            try:
                values[field] = Path(path).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{var}: cannot read {path}: {exc.strerror}") from None
    return values


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; raise ConfigError naming the bad variable."""
    try:
        return Settings(**{**_secret_files(), **overrides})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(x) for x in err["loc"]]
            name = _env_name(loc[0]) if loc else "configuration"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {msg}")
        raise ConfigError("; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
