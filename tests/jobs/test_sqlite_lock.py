"""On the embedded SQLite default, the lease is also a file lock: a second process on the
same machine (``casino worker`` beside ``casino run``) cannot take a job that is held."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from casino_app.jobs.lease import lease_for


def test_a_second_process_cannot_take_a_job_held_on_sqlite(app_env) -> None:  # noqa: ANN001
    lease = lease_for("sqlite-lock-probe")
    assert lease.try_acquire()
    probe = textwrap.dedent("""
        from casino_app.jobs.lease import lease_for
        print(lease_for("sqlite-lock-probe").try_acquire())
    """)
    other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           timeout=60, check=True)
    assert other.stdout.strip() == "False"
    lease.release()
    other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           timeout=60, check=True)
    assert other.stdout.strip() == "True"
