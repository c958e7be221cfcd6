"""steelscan.memory: the CLI keeps freed memory in the process (fewer page faults per step)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = ("import os, numpy as np\n"
         "from steelscan.memory import keep_freed_memory\n"
         "applied = keep_freed_memory()\n"
         "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') >> 20\n"
         "before = rss()\n"
         "a = np.ones(256 << 20 >> 3)   # 256 MiB, far above every mmap threshold\n"
         "del a\n"
         "print(applied, rss() - before)\n")


def probe(env_value: str | None) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k != "STEELSCAN_MALLOC"}
    if env_value is not None:
        env["STEELSCAN_MALLOC"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_blocks_stay_in_the_process_for_reuse():
    applied, kept_mib = probe(None)
    system_applied, system_kept_mib = probe("system")
    assert applied and not system_applied
    # glibc's default maps a block this big on its own and unmaps it on free (the next step faults
    # and zeroes it again); kept, the freed 256 MiB stay resident for the next allocation
    assert system_kept_mib < 32
    assert kept_mib > 200
