"""Child processes the platform starts itself (the development chain nodes)."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> bool:
    """SIGTERM ``proc`` and wait up to ``timeout`` s for it to exit, then SIGKILL it and
    reap it. Nothing to do when it has exited. True when it had to be killed."""
    if proc.poll() is not None:
        return False
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True
    return False
