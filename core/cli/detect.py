"""`python -m core detect T1 T2 -o CHANGE.tif`: tiled change detection on rasters (core.detection.inference).

The parser is built without torch; `run` imports the pipeline, which checks the inputs before it loads a model."""

import argparse
from pathlib import Path

from ..detection import DEFAULT_OVERLAP, DEFAULT_TILE
from ..paths import DEFAULT_DETECTOR
from .options import add_device_argument, add_precision_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("t1", type=Path, help="earlier image (GeoTIFF, PNG or JPEG)")
    parser.add_argument("t2", type=Path, help="later image; resampled onto T1's grid when the grids differ")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, help="change mask GeoTIFF (uint8, 1 = change)"
    )
    parser.add_argument(
        "--probabilities", type=Path, help="also write change probabilities (float32 GeoTIFF)"
    )
    parser.add_argument("--vector", type=Path, help="also write change polygons with their area (GeoPackage)")
    parser.add_argument("--threshold", type=float, help="decision threshold (default: the model's)")
    parser.add_argument(
        "--model", default=DEFAULT_DETECTOR, help="shipped model name or .safetensors/.pth path"
    )
    parser.add_argument(
        "--bands", help="three 1-based bands of T1 in R,G,B order, e.g. 1,2,3 (default 1,2,3)"
    )
    parser.add_argument("--bands-t2", help="bands of T2 when they differ from --bands")
    add_device_argument(parser)
    add_precision_argument(parser)
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE)
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)


def run(args) -> int:
    from tqdm import tqdm

    from ..detection.inference import detect_change

    bars = []  # drawn at the first progress report, once the inputs and the model have been checked
    try:

        def progress(value: float) -> None:
            if not bars:
                bars.append(tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {elapsed}<{remaining}"))
            bars[0].update(value - bars[0].n)

        result = detect_change(
            args.t1,
            args.t2,
            args.output,
            probability_path=args.probabilities,
            vector_path=args.vector,
            threshold=args.threshold,
            model=args.model,
            bands=args.bands,
            bands_t2=args.bands_t2,
            device=args.device,
            precision=args.precision,
            tile=args.tile,
            overlap=args.overlap,
            progress=progress,
        )
    finally:
        for bar in bars:
            bar.close()
    for note in result.notes:
        print(f"note: {note}")
    print(
        f"{result.change_path}: {result.changed_pixels} changed pixels ("
        + (
            f"{result.changed_area:.6g} px², no CRS"
            if result.changed_area_m2 is None
            else f"{result.changed_area_m2:,.1f} m² ellipsoidal"
        )
        + f") at "
        f"threshold {result.threshold:.2f}; {result.tiles} tiles ({result.skipped_tiles} without data skipped), "
        f"{result.device}, {result.seconds:.1f} s"
    )
    if result.vector_path:
        print(f"{result.vector_path}: {result.polygons} polygons")
    return 0
