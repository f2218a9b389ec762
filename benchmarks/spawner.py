"""Runs the measured children for run.py: one JSON request line in, one JSON result line out per child.

Why a separate process: Linux counts the memory a process had when it exec'd into its ru_maxrss, and a
child starts as a copy of its parent. Started from run.py, whose in-process fake API holds N transcripts
(~150 MB at N=100k), every child would report at least that. This interpreter imports next to nothing,
so the floor it puts under a child's peak RSS (~13 MB, what `python -c pass` takes) is below every tool measured.
"""

import json
import os
import subprocess
import sys
import tempfile
import time


def run_child(command: list[str], env: dict[str, str], cwd: str) -> dict:
    with tempfile.TemporaryFile() as output:  # a file, not a pipe: nothing to drain while we wait
        started_at = time.monotonic()  # CLOCK_MONOTONIC is system-wide: run.py's timestamps compare with it
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        # wait4 gives this child's own rusage (with any processes it waited for), unlike
        # getrusage(RUSAGE_CHILDREN), whose ru_maxrss is the largest of all children so far.
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        return {
            "wall_s": wall,
            "started_at": started_at,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
            "returncode": child.returncode,
            "output": output.read().decode(errors="replace")[-3000:] if child.returncode else "",
        }


if __name__ == "__main__":
    for line in sys.stdin:
        print(json.dumps(run_child(**json.loads(line))), flush=True)
