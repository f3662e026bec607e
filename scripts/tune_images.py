"""Fine-tune the image encoder on the catalog's product photos (`make tune-images`), once per photo change.

Reads every product photo the shop database lists (attach them first with `make catalog-images DIR=...`),
labels each with its product's sku, fine-tunes the last stages of EfficientNet-Lite0 with
`tuning.image.fine_tune_images` and writes models/image-encoder/ (weights.safetensors and
tuning.json; ignored by git). When that directory already holds a model tuned on the same photos with the
same settings, nothing is done. To use it, set `weights_path: models/image-encoder/weights.safetensors` on
`components.image_featurizer.ImageFeaturizer` in config.yml and run `make train` (the model's name hashes
that file too, so it retrains; the ProductRecognizer's catalog index is rebuilt from the tuned embeddings).

Photos are read exactly as the ProductRecognizer reads them when it builds its index: inside the catalog
image root only (`resolve_catalog_image`: no `..`, no absolute paths, no links out), at most `--max-bytes`
bytes and `--max-pixels` pixels, decoded with Pillow (`decode_image`); a photo that fails is skipped with one
log line.

Exit status: 0 tuned or up to date; 2 nothing to tune on (fewer than 2 products with photos, or fewer than
`--min-photos` photos in all), a bad argument, or an unreadable database — one line each, no traceback.

Usage: python scripts/tune_images.py [--out models/image-encoder] [--epochs 3] [--image-root PATH]
       [--database-url URL] [--min-photos 10] [--force]
"""
from __future__ import annotations

import _bootstrap  # noqa: F401  (the project root on sys.path: scripts/_bootstrap.py)

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from assistant.paths import MODELS_DIR
from shop.photo_import import PHOTO_MAX_BYTES, PHOTO_MAX_PIXELS

logger = logging.getLogger("tune-images")


def catalog_photos(database_url: Optional[str], image_root: Optional[str]) -> Tuple[List[Path], List[str]]:
    """(photo files, sku of each) of the products the database lists photos for, inside the image root.

    Raises:
        RuntimeError: if the database cannot be read (its message names the cause).
    """
    from components.products.catalog import catalog_photo_files
    from shop.catalog_photos import resolve_image_root
    from shop.repository import ShopRepository

    try:
        pairs = ShopRepository.from_url(database_url).product_images()
    except Exception as error:  # no schema, server unreachable, driver missing
        raise RuntimeError(f"the shop database could not be read ({type(error).__name__}: "
                           f"{str(error).splitlines()[0][:200] if str(error) else ''})") from error
    found = catalog_photo_files(pairs, resolve_image_root(image_root))
    return [path for _, _, path in found], [sku for sku, _, _ in found]


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the process exit code."""
    from encoders.image import packaged_weights_path
    from tuning.image import ImageTuningConfig, fine_tune_images, is_up_to_date, iter_photos, photo_digest

    defaults = ImageTuningConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "image-encoder",
                        help="tuned model directory")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--first-tuned-block", type=int, default=defaults.first_tuned_block)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--num-threads", type=int, default=defaults.num_threads,
                        help="torch threads; 0 = all")
    parser.add_argument("--image-root", default=None,
                        help="catalog image root (default: CATALOG_IMAGE_DIR or var/catalog-images)")
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL or var/shop.db")
    parser.add_argument("--max-bytes", type=int, default=PHOTO_MAX_BYTES)
    parser.add_argument("--max-pixels", type=int, default=PHOTO_MAX_PIXELS)
    parser.add_argument("--min-photos", type=int, default=10, help="refuse to tune on fewer photos")
    parser.add_argument("--force", action="store_true", help="tune even if an up-to-date model exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("components", "shop", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    try:
        config = ImageTuningConfig(epochs=args.epochs, first_tuned_block=args.first_tuned_block,
                                   seed=args.seed, num_threads=args.num_threads)
        config.validate()
        if args.max_bytes < 1 or args.max_pixels < 1:
            raise ValueError("--max-bytes and --max-pixels must be >= 1")
        paths, skus = catalog_photos(args.database_url, args.image_root)
        base = packaged_weights_path()
    except (OSError, ValueError, RuntimeError) as error:  # EncoderError (no weights) is a ValueError
        logger.error("tune-images: %s", error)
        return 2

    products = len(set(skus))
    if products < 2 or len(paths) < args.min_photos:
        logger.error("tune-images: the catalog lists %d photo(s) of %d product(s); at least %d photos of 2 "
                     "products are needed. Attach photos first: make catalog-images DIR=<folder with one "
                     "sub-folder per sku>", len(paths), products, args.min_photos)
        return 2
    digest = photo_digest(paths, skus)
    if not args.force and is_up_to_date(args.out, digest, config, base):
        logger.info("tune-images: %s is up to date (%d photos, %d products).", args.out, len(paths), products)
        return 0
    logger.info("tune-images: fine-tuning EfficientNet-Lite0 from block %d on %d photos of %d products, "
                "%d epochs ...", config.first_tuned_block, len(paths), products, config.epochs)
    photos = iter_photos(paths, skus, config, args.max_bytes, args.max_pixels)
    try:
        report = fine_tune_images(photos, base, args.out, config, data_digest=digest)
    except ValueError as error:  # too few usable photos once the damaged ones are skipped
        logger.error("tune-images: %s", error)
        return 2
    logger.info("tune-images: wrote %s in %.0f s from %d photos (training accuracy %.3f). Set weights_path: "
                "models/image-encoder/weights.safetensors on the ImageFeaturizer in config.yml, then make "
                "train.", args.out, report["seconds"], report["photos"],
                report["history"][-1]["train_accuracy"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
