"""Child processes the platform starts itself (the development chain nodes)."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For ``Popen(preexec_fn=...)``: on Linux the child gets SIGTERM when the process that
    started it dies, however it dies (SIGKILL, a crash, a closed terminal), so a chain node
    is never left running on its port. Elsewhere nothing."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG,
                                                            int(signal.SIGTERM))
        except OSError:
            pass


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
