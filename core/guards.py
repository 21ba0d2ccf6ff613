"""Guards that keep a user's data safe: an output never replaces an input, an output's folder can exist, model
files that cannot (or must not) be read get a message in our words, and an interrupt (Ctrl-C, SIGTERM) ends a
command cleanly with exit code 130 and no temporary files.

No QGIS, no torch at import time: the plugin and every command use these.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError

INTERRUPTED_EXIT = 130

# Outputs moved into place (by `core.atomic` and `GeoTiffWriter`) since the command started: an interrupt says
# which finished files it kept instead of pretending that nothing was written.
_written: list[Path] = []


# ------------------------------------------------------------------------------------------------ inputs/outputs
def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when `a` and `b` name the same file: equal resolved paths (symbolic links followed), or the same
    inode on the same device (hard links)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
    except OSError:
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: it cannot be a hard link of the other
        return False


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """True when `path` is `folder` or lies somewhere below it (resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def check_output_parent(output: str | os.PathLike, what: str = "output") -> None:
    """Refuse an output whose folder cannot be made because a part of its path is a file (`-o notes.txt/c.tif`),
    or that is itself an existing folder where a file is expected."""
    output = Path(output)
    for parent in output.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(
                    f"Cannot write the {what} {output}: {parent} is a file, not a folder. Choose a path inside an "
                    "existing folder, or a new folder name."
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"Cannot write the {what} {output}: the folder {parent} is not writable.")
            return


def check_output_folder(folder: str | os.PathLike, what: str = "output folder") -> None:
    """An output folder: it may exist (as a folder) or be made."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(
            f"The {what} {folder} is a file, not a folder: choose a folder (it is made if missing)."
        )
    check_output_parent(folder / "_", what)


def check_outputs(
    inputs: Iterable[str | os.PathLike | None],
    outputs: Iterable[str | os.PathLike | None],
    what: str = "output",
) -> None:
    """Refuse outputs that would replace one of the inputs (same path, symbolic or hard link), that repeat each
    other, or whose folder cannot be made. `None` entries are skipped."""
    inputs = [Path(path) for path in inputs if path]
    outputs = [Path(path) for path in outputs if path]
    for output in outputs:
        for source in inputs:
            if same_file(output, source):
                raise InputError(
                    f"The {what} {output} is the input {source}"
                    + ("" if output.resolve() == source.resolve() else " (a link to the same file)")
                    + ": writing it would destroy the input. Choose another output path."
                )
        check_output_parent(output, what)
    for index, output in enumerate(outputs):
        for other in outputs[index + 1 :]:
            if output.resolve() == other.resolve():
                raise InputError(f"{output} is given for two outputs: give each output its own path.")


def check_folder_outputs(
    inputs: Iterable[str | os.PathLike | None], folder: str | os.PathLike, names: Iterable[str]
) -> None:
    """A command writing files `names` into `folder`: none of them may be an input, and the folder must be
    usable."""
    check_output_folder(folder)
    check_outputs(inputs, [Path(folder) / name for name in names])


def check_folder_patterns(
    inputs: Iterable[str | os.PathLike | None], folder: str | os.PathLike, patterns: Iterable[str]
) -> None:
    """A command writing files named like `patterns` (fnmatch) into `folder`: no existing file there that it
    may replace is one of the inputs (hard links included)."""
    import fnmatch

    check_output_folder(folder)
    folder, patterns = Path(folder), list(patterns)
    if not folder.is_dir():
        return
    existing = [p for p in folder.iterdir() if any(fnmatch.fnmatch(p.name, pattern) for pattern in patterns)]
    check_outputs(inputs, existing)


def check_folders_apart(
    sources: Iterable[str | os.PathLike], out: str | os.PathLike, what: str = "output folder"
) -> None:
    """An output folder that is, holds or lies inside an input folder would mix results into the data."""
    check_output_folder(out, what)
    for source in sources:
        if is_inside(out, source) or is_inside(source, out):
            raise InputError(
                f"The {what} {out} overlaps the input folder {source}: results would be written among the "
                "inputs. Choose a folder outside it."
            )


# ------------------------------------------------------------------------------------------------ rasters
def band_choice_error(path: str | os.PathLike, count: int) -> InputError:
    """A raster whose band count gives no RGB image by default (2 bands, or more when the wanted ones differ)."""
    return InputError(
        f"{path} has {count} band(s); Changen needs three bands in red, green, blue order. Choose them: "
        f"on the command line with --bands (e.g. --bands 1,2,{count} for detect, --bands 1 2 {count} for "
        "synthesize), in QGIS in the band fields of the dock or the Processing dialog. A band may repeat "
        "(1,1,1 shows one band as grey)."
    )


# ------------------------------------------------------------------------------------------------ model files
def unsafe_pickle_error(path: str | os.PathLike) -> InputError:
    return InputError(
        f"{path} holds program code (pickled Python objects), not only tensors, so it is not loaded: opening it "
        "could run that code. Use a file that holds tensors only (a .safetensors file, or a .pth saved from a "
        "model's state_dict()); if you wrote this file yourself and trust it, load it in Python and save its "
        "state_dict() again."
    )


def corrupt_model_error(path: str | os.PathLike, detail: str = "") -> InputError:
    size = Path(path).stat().st_size if Path(path).is_file() else 0
    return InputError(
        f"{path} ({size:,} bytes) is not a readable model file: it is damaged, truncated (an interrupted download?) "
        "or of another format" + (f" ({detail})" if detail else "") + ". Download or export it again."
    )


def is_pickle_refusal(error: BaseException) -> bool:
    """torch.load(weights_only=True) refusing objects other than tensors and plain values."""
    import pickle

    return (
        isinstance(error, pickle.UnpicklingError) and "weights_only" in str(error).replace(" ", "_").lower()
    )


def torch_load_tensors(path: str | os.PathLike, what: str = "checkpoint"):
    """`torch.load(weights_only=True)` with our messages: pickled code is refused, damage is named."""
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        if is_pickle_refusal(error):
            raise unsafe_pickle_error(path) from None
        raise corrupt_model_error(path, f"{type(error).__name__}") from None


# ------------------------------------------------------------------------------------------------ interrupts
def note_written(path: str | os.PathLike) -> None:
    _written.append(Path(path))


def _terminate(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def signals_held():
    """Ctrl-C and SIGTERM wait until the block ends: `_terminate`'s KeyboardInterrupt raised inside an import
    (importlib's lock callbacks ignore exceptions) would be lost and the command would run on to the end."""
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def interrupted_message() -> str:
    if not _written:
        return "interrupted, nothing written (no partial or temporary file left)."
    kept = ", ".join(str(path) for path in _written[:3]) + (" …" if len(_written) > 3 else "")
    return (
        f"interrupted: no partial or temporary file left; {len(_written)} file(s) finished before the interrupt "
        f"were kept ({kept})."
    )


def run_interruptible(job: Callable[[], int]) -> int:
    """Run a command: SIGTERM is handled like Ctrl-C (Python unwinds, so every atomic writer removes its
    temporary file), and either ends with a one-line message and exit code 130 instead of a traceback."""
    _written.clear()
    previous = None
    previous_int = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread():  # signals can only be set there
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return job()
    except KeyboardInterrupt:
        # Ignore further signals while the message is printed; the writers' cleanup has already run.
        if previous is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(interrupted_message(), file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
