"""Preview latency of the plugin's synthesis job on a 512 × 512 view of a real Joplin chip.

Runs `plugin.synthesis_jobs.preview_job` (what the dock's QgsTask runs: read the window, rasterise the footprints, simulate
4 removals + 2 copies, synthesize, write the GeoTIFF, vectorise the change) for each method, cold (first call:
generator loading included) and warm (median of the next runs). Without a shipped generator a random-init one of
the same architecture stands in (same cost). Usage: `.venv/bin/python bench/bench_preview.py [--runs 5]`.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN_LINK = Path(tempfile.mkdtemp(prefix="changen-bench-")) / "changen"
PLUGIN_LINK.symlink_to(REPO)
sys.path.insert(0, str(PLUGIN_LINK.parent))


def build_request(method: str, model: str):
    import geopandas
    from rasterio.windows import Window

    from changen.core.io.rasters import raster_grid
    from changen.core.paths import shared_data_dir
    from changen.plugin.synthesis_jobs import PlacementSpec, SynthesisRequest

    data = shared_data_dir() / "georef" / "joplin"
    image = data / "chips" / "pre" / "0_pre.tif"
    grid = raster_grid(image)
    window = Window(256, 256, 512, 512)
    west, south, east, north = grid.window_grid(window).bounds
    frame = geopandas.read_file(data / "footprints_2020.geojson").to_crs(grid.crs)
    frame["fid"] = frame.index
    frame = frame.cx[west:east, south:north][["fid", "geometry"]].set_crs(None, allow_override=True)
    large = frame[frame.geometry.area > 80].fid.tolist()
    source = frame[frame.fid == large[4]].geometry.iloc[0]
    col, row = ~grid.window_grid(window).transform * (source.centroid.x, source.centroid.y)
    placements = [
        PlacementSpec(large[4], None, (min(row + 60, 500), col), 30.0, 1.0),
        PlacementSpec(large[4], None, (max(row - 60, 10), col), -15.0, 1.2),
    ]
    return SynthesisRequest(
        str(image), window, frame, large[:4], placements, 0, 0, 0, 1, method, "auto", model
    )


def main() -> int:
    import torch

    from changen.core.paths import MODELS_DIR
    from changen.core.synthesis.changen_gan import build_generator
    from changen.core.weights import save_weights
    from changen.plugin.synthesis_jobs import preview_job

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    model = ""
    if not any(MODELS_DIR.glob("changen*.safetensors")):
        generator = build_generator("cpu")
        model = str(PLUGIN_LINK.parent / "random_init_generator.safetensors")
        save_weights(
            model, generator.state_dict(), {"model": "changen_generator", "architecture": generator.config}
        )
    print(f"torch threads: {torch.get_num_threads()}; generator: {model or 'shipped'}")
    for method in ("changen", "copy-paste", "inpainting"):
        request = build_request(method, model)
        times = []
        for _ in range(args.runs + 1):
            started = time.perf_counter()
            result = preview_job(request)(lambda value: None, lambda: False)
            times.append(time.perf_counter() - started)
            shutil.rmtree(result.folder)
        print(
            f"{method:>11}: 512x512 preview cold {times[0]:.3f} s, warm median {statistics.median(times[1:]):.3f} s "
            f"({result.removed} removed, {result.created} created, {result.device})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
