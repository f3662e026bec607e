"""Peak memory and time of decoding the worst photos the limits accept (`media.images.decode_image`).

Usage: `python -m benchmarks.bench_decode_memory [--out reports/bench-decode] [--megapixels 40]`.

Each case is a synthetic photo at the limits of `media.AttachmentLimits` (40 megapixels, every colour mode a
PNG, GIF, WebP or JPEG decodes into), built once in a temporary folder. Every photo is small on disk (flat
colour compresses ~1000:1: the 16-bit grayscale PNG of 40 megapixels is 75 KiB), which is what makes them
dangerous. Each decode runs in a fresh Python process that has already imported Pillow and numpy and read the
file: the figure is that process's peak resident set size (VmHWM, reset before the call where the kernel
allows it) minus its resident size just before the call, i.e. what one decode adds, in MiB. A photo that
`decode_image` refuses is reported with its error code and costs ~0.

The JPEG is decoded twice: at full size (`draft_size` None, as `make catalog-images` does) and with the
ImageFeaturizer's `draft_size` of 256 pixels.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from benchmarks.machine import machine_description

#: Side lengths of a 40 megapixel photo (8000 × 5000).
WIDTH, HEIGHT = 8000, 5000
#: WebP's largest side is 16383 pixels (16383 × 2441 ≈ 40 megapixels).
WEBP_SIZE = (16383, 2441)
#: The ImageFeaturizer's `resize_size` default: its `draft_size`.
FEATURIZER_DRAFT = 256


def _cases() -> Dict[str, Tuple[Callable[[Tuple[int, int]], Any], str, Dict[str, Any], str]]:
    """name → (image factory taking (width, height), Pillow format, save options, decoded mode)."""
    import numpy as np
    from PIL import Image

    return {
        "png-16bit-gray": (
            lambda size: Image.fromarray(np.zeros((size[1], size[0]), np.uint16)), "PNG", {}, "I;16"
        ),
        "png-rgba": (lambda size: Image.new("RGBA", size, (10, 20, 30, 128)), "PNG", {}, "RGBA"),
        "png-rgb": (lambda size: Image.new("RGB", size, (10, 20, 30)), "PNG", {}, "RGB"),
        "png-la": (lambda size: Image.new("LA", size, (10, 128)), "PNG", {}, "LA"),
        "png-gray": (lambda size: Image.new("L", size, 10), "PNG", {}, "L"),
        "png-palette-transparent": (lambda size: Image.new("P", size, 0), "PNG", {"transparency": 0}, "P"),
        "gif-palette": (lambda size: Image.new("P", size, 0), "GIF", {}, "P"),
        "webp-rgba": (
            lambda size: Image.new("RGBA", size, (10, 20, 30, 128)), "WEBP", {"lossless": True}, "RGBA"
        ),
        "jpeg-rgb": (lambda size: Image.new("RGB", size, (10, 20, 30)), "JPEG", {"quality": 90}, "RGB"),
    }


def largest_accepted(fmt: str, mode: str, megapixels: Optional[float]) -> Tuple[int, int]:
    """The largest 8:5 size (WebP: 16383 × h) the default limits accept for ``mode``, or ``megapixels``."""
    from media.images import decoded_bytes
    from media.limits import AttachmentLimits

    limits = AttachmentLimits()
    if megapixels is not None:
        pixels = int(megapixels * 1e6)
    elif fmt == "JPEG":  # decoded at a smaller scale when over the byte limit: the pixel limit binds
        pixels = limits.image_max_pixels
    else:
        per_pixel = decoded_bytes(mode, (1, 1), fmt)
        pixels = min(limits.image_max_pixels, limits.image_max_decoded_bytes // per_pixel)
    if fmt == "WEBP":
        return WEBP_SIZE[0], max(1, pixels // WEBP_SIZE[0])
    height = int((pixels * HEIGHT / WIDTH) ** 0.5)
    width = int(height * WIDTH / HEIGHT)
    while (width + 1) * height <= pixels:
        width += 1
    return width, height


def _child(path: str, draft: Optional[int]) -> None:
    """Runs one decode and prints `{"code", "added_mib", "seconds", "size"}` as JSON (the child process)."""
    import numpy as np  # noqa: F401  (imported before the measurement, as in the server)
    from PIL import Image  # noqa: F401

    from media.errors import AttachmentError
    from media.images import decode_image

    data = Path(path).read_bytes()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    code, shape = "ok", None
    try:
        image = decode_image(data, 40_000_000, draft)
        shape = list(image.size)
        del image
    except AttachmentError as error:
        code = error.code
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    print(json.dumps({"code": code, "added_mib": round((peak - before) / 1024, 1),
                      "seconds": round(seconds, 2), "size": shape}))


def _status_kib(field: str) -> int:
    """A `/proc/self/status` field in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure(megapixels: Optional[float] = None) -> List[Dict[str, Any]]:
    """Builds every case and decodes each in a fresh process; one result row per decode.

    Args:
        megapixels: size of every case; None: the largest each case's mode may have under the default limits.
    """
    rows: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as scratch:
        for name, (factory, fmt, options, mode) in _cases().items():
            path = Path(scratch) / f"{name}.{fmt.lower()}"
            size = largest_accepted(fmt, mode, megapixels)
            image = factory(size)
            image.save(path, fmt, **options)
            del image
            drafts = [None, FEATURIZER_DRAFT] if fmt == "JPEG" else [None]
            for draft in drafts:
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.bench_decode_memory", "--child", str(path)]
                    + (["--draft", str(draft)] if draft else []),
                    capture_output=True, text=True, check=True,
                )
                result = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append({"case": name + (f" (draft {draft})" if draft else ""), "mode": mode,
                             "file_kib": round(path.stat().st_size / 1024, 1),
                             "megapixels": round(size[0] * size[1] / 1e6, 1), **result})
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for decode-memory.json")
    parser.add_argument("--megapixels", type=float, default=None,
                        help="size of every photo (default: the largest the limits accept for its mode)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--draft", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.draft)
        return 0
    rows = measure(args.megapixels)
    print(f"{'case':34} {'file KiB':>9} {'MP':>5} {'result':>10} {'added MiB':>10} {'seconds':>8}")
    for row in rows:
        print(f"{row['case']:34} {row['file_kib']:9.1f} {row['megapixels']:5.1f} {row['code']:>10} "
              f"{row['added_mib']:10.1f} {row['seconds']:8.2f}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {"date": time.strftime("%Y-%m-%d"), "machine": machine_description(), "rows": rows}
        (args.out / "decode-memory.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
