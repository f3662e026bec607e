"""What every benchmark reports about the machine it ran on, and its memory high-water mark."""
from __future__ import annotations

import os
import platform
import resource
from pathlib import Path
from typing import Any, Dict, Optional


def machine_description() -> Dict[str, Any]:
    """CPU model (from /proc/cpuinfo), logical cores, cores this process may use, Python and OS."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def total_memory_gib() -> Optional[float]:
    """Physical memory of the machine in GiB (MemTotal of /proc/meminfo, 1 decimal), None where unreadable."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)  # KiB → GiB
    except OSError:
        pass
    return None


def load_1min() -> float:
    """The 1-minute load average, rounded to 2 decimals (NaN where the OS has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def peak_rss_mib() -> float:
    """The process's peak resident set size so far, in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
