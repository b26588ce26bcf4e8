"""Fixtures for the job runner tests: a clean job registry and lease registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def clean_job_registries() -> Iterator[None]:
    """Each test starts with no registered jobs and no in-process leases, and leaves
    the registries as it found them."""
    from casino_app.jobs import lease, runner

    with runner._registry_lock:
        saved_jobs = dict(runner._registry)
        runner._registry.clear()
    with lease._registry_lock:
        saved_leases = dict(lease._registry)
        lease._registry.clear()
    yield
    with runner._registry_lock:
        runner._registry.clear()
        runner._registry.update(saved_jobs)
    with lease._registry_lock:
        lease._registry.clear()
        lease._registry.update(saved_leases)
