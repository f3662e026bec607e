"""Latency and memory that `ImageFeaturizer` adds to a user turn carrying one ~1 megapixel phone photo.

Usage: `python -m benchmarks.bench_image_featurizer [-n 100] [--image PATH] [--num-threads N]`.

The photo is `--image` (default `../shared/cases/images/banana_ok.jpg`, a real Grocery Store Dataset photo)
scaled in memory to about `--megapixels` (default 1.0) with its aspect ratio kept, and re-encoded as a JPEG
(quality 90), as a phone app would send it. Without the shared folder a generated picture of the same size is
used instead, and the result says so. The JPEG is stored once in a temporary `AttachmentStore`; each timed
call is one `process([message])` with a fresh message referencing it — what one user turn costs: metadata
parsing, reading and hash-checking the upload, decoding, EXIF/colour handling, crop and resize, the network,
labels.

Also reported: the process CPU time per call (p50; on a machine shared with other work it estimates what the
call costs on idle cores better than wall time does: with one torch thread, CPU time ≈ idle wall time), the
p50 of the two halves (decode + pre-processing, and the network alone) and the model load time. Peak RSS is
`ru_maxrss`, the whole process's high-water mark (Rasa, TensorFlow imported by Rasa, torch, model), so it
includes anything that ran earlier in the same process.
"""
from __future__ import annotations

import argparse
import io
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from assistant.paths import PROJECT_ROOT
from benchmarks.machine import machine_description, peak_rss_mib

DEFAULT_IMAGE = PROJECT_ROOT.parent / "shared" / "cases" / "images" / "banana_ok.jpg"
WARM_UP_CALLS = 5
TARGET_P50_MS = 60.0  # on 2 cores

logger = logging.getLogger(__name__)






def photo_jpeg(image_path: Optional[Path], megapixels: float) -> tuple:
    """(JPEG bytes, width, height, source description) of a photo scaled to about `megapixels` M pixels."""
    from PIL import Image, ImageDraw, ImageOps

    path = Path(image_path) if image_path else DEFAULT_IMAGE
    if path.is_file():
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        source = str(path)
    else:
        logger.warning("%s not found; timing a generated picture instead", path)
        image = Image.new("RGB", (400, 300), (230, 220, 200))
        draw = ImageDraw.Draw(image)
        draw.ellipse((80, 60, 320, 240), fill=(245, 200, 40))
        source = "generated picture (no photo found)"
    scale = math.sqrt(megapixels * 1e6 / (image.width * image.height))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), size[0], size[1], source


def run(
    n: int = 100, image_path: Optional[Path] = None, num_threads: int = 0, megapixels: float = 1.0
) -> Dict[str, Any]:
    """Measures the featurizer on one photo; returns the figures as a flat dict (ms, s, MiB).

    Args:
        n: timed `process` calls (after `WARM_UP_CALLS` untimed ones).
        image_path: the photo (default ../shared/cases/images/banana_ok.jpg).
        num_threads: the component's `num_threads` (torch intra-op threads; 0 = torch's default).
        megapixels: size the photo is scaled to, in millions of pixels.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import torch
    from rasa.shared.nlu.constants import TEXT
    from rasa.shared.nlu.training_data.message import Message

    from assistant.keys import ATTACHMENTS, IMAGE_LABELS, METADATA
    from components.image_featurizer import ImageFeaturizer
    from encoders.image import crop_and_resize
    from media import AttachmentStore
    from media.images import decode_image

    data, width, height, source = photo_jpeg(image_path, megapixels)
    rss_before_load = peak_rss_mib()
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        store = AttachmentStore(Path(tmp) / "uploads")
        entry = store.save(data, name="photo.jpg").to_metadata()
        config = {
            **ImageFeaturizer.get_default_config(),
            "attachment_dir": str(store.root),
            "num_threads": num_threads,
        }
        started = time.perf_counter()
        featurizer = ImageFeaturizer(config, "bench_image_featurizer")
        load_s = time.perf_counter() - started

        def message() -> Message:
            return Message(data={TEXT: "", METADATA: {ATTACHMENTS: [dict(entry)]}})

        for _ in range(WARM_UP_CALLS):
            featurizer.process([message()])
        latencies_ms: List[float] = []
        cpu_ms: List[float] = []
        for _ in range(n):
            turn = message()
            started, cpu_started = time.perf_counter(), time.process_time()
            featurizer.process([turn])
            latencies_ms.append((time.perf_counter() - started) * 1000)
            cpu_ms.append((time.process_time() - cpu_started) * 1000)
        top = turn.get(IMAGE_LABELS)[0][0]

        decode_ms, network_ms = [], []
        size, resize = config["image_size"], config["resize_size"]
        for _ in range(max(10, n // 4)):
            started = time.perf_counter()
            pixels = crop_and_resize(decode_image(data, 40_000_000, resize), size, resize)
            decode_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            featurizer.encode([pixels])
            network_ms.append((time.perf_counter() - started) * 1000)

    p50 = float(np.percentile(latencies_ms, 50))
    return {
        "component": "ImageFeaturizer",
        "image": source,
        "width": width,
        "height": height,
        "jpeg_bytes": len(data),
        "top_label": f"{top['label']} ({top['confidence']:.2f})",
        "n": n,
        "p50_ms": p50,
        "p95_ms": float(np.percentile(latencies_ms, 95)),
        "max_ms": float(np.max(latencies_ms)),
        "cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
        "decode_preprocess_p50_ms": float(np.percentile(decode_ms, 50)),
        "network_p50_ms": float(np.percentile(network_ms, 50)),
        "target_p50_ms": TARGET_P50_MS,
        "meets_target": p50 <= TARGET_P50_MS,
        "load_s": load_s,
        "peak_rss_before_load_mib": rss_before_load,
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
        **machine_description(),
    }


def format_table(result: Dict[str, Any]) -> str:
    """The figures as a small aligned two-column table."""
    rows = [
        ("machine", f"{result['cpu']}, {result['usable_cores']}/{result['logical_cores']} cores usable, "
                    f"torch threads {result['torch_threads']}, "
                    f"load average {result['load_average_1min']:.1f}"),
        ("photo", f"{result['image']} scaled to {result['width']}x{result['height']} "
                  f"({result['width'] * result['height'] / 1e6:.2f} MP, "
                  f"JPEG {result['jpeg_bytes'] / 1024:.0f} KiB); "
                  f"top label {result['top_label']}"),
        ("latency p50 / p95 / max", f"{result['p50_ms']:.1f} / {result['p95_ms']:.1f} / "
                                    f"{result['max_ms']:.1f} ms "
                                    f"per image (process, 1 message, {result['n']} calls)"),
        ("process CPU time p50", f"{result['cpu_p50_ms']:.1f} ms per image (all threads together)"),
        ("  of which p50", f"decode + pre-process {result['decode_preprocess_p50_ms']:.1f} ms, "
                           f"network {result['network_p50_ms']:.1f} ms"),
        ("target", f"p50 <= {result['target_p50_ms']:.0f} ms on 2 cores: "
                   f"{'met' if result['meets_target'] else 'NOT met'}"),
        ("model load", f"{result['load_s']:.2f} s"),
        ("peak RSS", f"{result['peak_rss_mib']:.0f} MiB (before model load: "
                     f"{result['peak_rss_before_load_mib']:.0f} MiB)"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="timed calls (count)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="photo to time (JPEG/PNG/WebP/GIF)")
    parser.add_argument("--megapixels", type=float, default=1.0, help="photo size to scale to (M pixels)")
    parser.add_argument("--num-threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = run(args.n, args.image, args.num_threads, args.megapixels)
    sys.stdout.write(format_table(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
