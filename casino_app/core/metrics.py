"""Prometheus metric objects shared by every layer.

Services import the counters from here (never from ``casino_app.api``) and increment them;
``/api/metrics`` renders the default registry. Label values must come from a small fixed
set chosen in code (a result, an action name, a route template), never from user input,
so the number of series stays bounded.

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder shared
by the workers (prometheus-client's multiprocess mode); ``render`` then merges them.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

# Accounts and sessions ----------------------------------------------------------------
LOGINS = Counter(
    "casino_logins_total",
    "Login attempts by result (ok, bad_credentials, locked, mfa_required, rate_limited...).",
    ["result"],
)
REGISTRATIONS = Counter(
    "casino_registrations_total",
    "Sign-ups by step: started (form accepted, mail sent), ok (account created by its link).",
    ["result"],
)
RATE_LIMITED = Counter(
    "casino_rate_limited_total",
    "Requests refused by a rate limit, by limit name (login_ip, register_ip...).",
    ["limit"],
)

# Security -----------------------------------------------------------------------------
AUDIT_EVENTS = Counter(
    "casino_audit_events_total",
    "Rows appended to the audit log, by action.",
    ["action"],
)
INVARIANT_VIOLATIONS = Counter(
    "casino_invariant_violations_total",
    "Failed consistency checks (ledger balance, chain == ledger, audit chain...), by check.",
    ["check"],
)
PROVIDER_ALERTS = Counter(
    "casino_provider_alerts_total",
    "Alerts about game providers (bad_signature, win_without_round, fair_mismatch, "
    "rtp_drift), by kind.",
    ["kind"],
)
PROVIDER_CALLS = Counter(
    "casino_provider_calls_total",
    "Wallet calls from game providers, by provider dialect and status.",
    ["dialect", "status"],
)

# Background work ----------------------------------------------------------------------
JOB_RUNS = Counter(
    "casino_job_runs_total",
    "Background job runs by job name and result (ok, error, skipped).",
    ["job", "result"],
)

# Custody --------------------------------------------------------------------------------
HOT_WALLET_BELOW_MIN = Gauge(
    "casino_hot_wallet_below_min",
    "1 while the hot wallet holds less than its band's minimum (CASINO_ETH_HOT_BAND, "
    "CASINO_BTC_HOT_BAND), by currency; set by the eth-sweep and btc-sweep jobs.",
    ["currency"],
    multiprocess_mode="livemax",
)
PAYMENT_ANOMALIES = Counter(
    "casino_eth_payment_anomalies_total",
    "Hot-wallet transactions the eth-batch job could not settle on its own, counted once a "
    "run while they last, by anomaly (nonce_used_no_receipt: a sent transaction has no "
    "receipt but its nonce is used; voided_after_grace: settled as not paid after "
    "CASINO_ETH_VOID_AFTER_BLOCKS; no_paid_log: a withdrawal of a mined BatchPay batch has "
    "neither a Paid nor a Refused log and stays batched for staff).",
    ["anomaly"],
)
BTC_PAYMENT_ANOMALIES = Counter(
    "casino_btc_payment_anomalies_total",
    "Bitcoin transactions of ours, and queues, that the btc-batch job cannot resolve on its "
    "own, counted once a run while they last, by anomaly (hot_wallet_short: queued "
    "withdrawals the hot wallet's coins cannot pay, counting its unconfirmed change; "
    "settled_batch_reorged: a settled batch's block was replaced by a reorg and the "
    "transaction is not in the chain again yet; inputs_spent_elsewhere: a batch's coins were "
    "spent at the confirmed depth by a transaction that is none of its versions; "
    "bump_unfunded: a stuck batch whose fee bump no coin can pay; no_paid_log: a "
    "withdrawal of a mined batch without its output).",
    ["anomaly"],
)

# HTTP (recorded by casino_app.api.middleware) -----------------------------------------
HTTP_REQUESTS = Counter(
    "casino_http_requests_total",
    "HTTP requests by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "casino_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def render(accept: str = "") -> tuple[bytes, str]:
    """The metrics page body and its content type, negotiated from the scraper's Accept
    header: the Prometheus text format 0.0.4 by default, OpenMetrics when asked for."""
    encoder, content_type = choose_encoder(accept)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return encoder(registry), content_type
    return encoder(REGISTRY), content_type
