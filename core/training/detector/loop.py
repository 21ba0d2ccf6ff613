"""The detector training loop: ChangeStar on synthetic pairs; resumable, torchrun-capable.

Sources: pair folders written by `python -m core generate-dataset` (t1.png, t2.png, change.png per pair) and
STAR pairs made on the fly from single-temporal building tiles (t2 = another crop, change = XOR of the masks).
Every pair gets independent appearance changes per date (colour, gamma, blur, noise, 0–2 px misregistration) and a
share of pairs are "no change" pairs (t2 = t1 restyled, label empty): labelled negatives for the precision the
zero-shot detector lacks. The decision threshold is chosen on a held-out synthetic set, never on real test pairs.
"""

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ...atomic import atomic_path, write_text_atomic
from ...data.buildings import load_building_tiles
from ...data.pairs import find_pair_folders, is_validation_pair
from ...detection.changestar import ChangeStarConfig, build_changestar
from ...detection.metrics import threshold_sweep
from ...device import pick_device, use_bf16
from ...paths import shared_data_dir
from ..run_loop import Cadence, append_jsonl, run_loop
from .model import (
    bce_dice_loss,
    frozen_trunk_modules,
    learning_rate,
    load_initial_weights,
    predict_probabilities,
    set_training_mode,
)
from .sampler import PairSampler, build_validation_set


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(args) -> int:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = pick_device(args.device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    else:
        rank, world = 0, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir: Path = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    bf16 = use_bf16(args.precision, device)

    tiles = [] if args.no_star else load_building_tiles(args.star or shared_data_dir() / "buildings")
    pair_folders = find_pair_folders(args.pairs)
    train_folders = [folder for folder in pair_folders if not is_validation_pair(folder)]
    sampler = PairSampler.from_args(args, tiles, train_folders)

    model_config = ChangeStarConfig(encoder=args.encoder, fpn_channels=args.fpn_channels)
    held_out_names = sorted(f"{f.parent.name}/{f.name}" for f in pair_folders if is_validation_pair(f))
    validation_signature = hashlib.sha1(
        json.dumps(
            [held_out_names, len(tiles), args.val_pairs, args.local_star, args.balance_sources]
        ).encode()
    ).hexdigest()
    sources = {
        "star_tiles": [tile.name for tile in tiles],
        "pair_roots": [str(root) for root in args.pairs],
        "generated_pairs": len(train_folders),
    }
    checkpoint_path = run_dir / "checkpoint.pt"
    resume = (
        torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if checkpoint_path.is_file()
        else None
    )
    if resume is not None:
        model_config = ChangeStarConfig(**resume["model_config"])
    model = build_changestar(
        **model_config.__dict__,
        imagenet=resume is None and not args.no_imagenet and args.encoder != "resnet18" and not args.init,
    )
    if resume is None and args.init:
        load_initial_weights(model, args.init)
    frozen = frozen_trunk_modules(model, args.freeze_stride)
    for module in frozen:
        module.requires_grad_(False)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
    step, pairs_seen, elapsed, best = 0, 0, 0.0, None
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        step, pairs_seen, elapsed = resume["step"], resume["pairs_seen"], resume["elapsed"]
        # A different held-out set (new --pairs) makes earlier validation scores incomparable.
        best = resume.get("best_f1") if resume.get("validation_signature") == validation_signature else None
    model = model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    trained = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    set_training_mode(model, frozen)

    val_images, val_labels = build_validation_set(args, tiles, pair_folders) if rank == 0 else (None, None)
    log_path = run_dir / "log.jsonl"
    if rank == 0:
        print(
            f"train-detector: {'resuming at step ' + str(step) if resume else 'new run'}, {len(tiles)} STAR tiles, "
            f"{len(train_folders)} generated pairs (+{len(pair_folders) - len(train_folders)} held out), "
            f"world {world}, {'bf16' if bf16 else 'fp32'}, frozen up to stride {args.freeze_stride}, {torch.get_num_threads()} threads, device {device}",
            flush=True,
        )

    def save(validation: dict | None) -> None:
        nonlocal best
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "model_config": model_config.__dict__,
            "step": step,
            "pairs_seen": pairs_seen,
            "elapsed": elapsed,
            "args": {k: str(v) for k, v in vars(args).items()},
            "validation": validation,
            "best_f1": best,
            "validation_signature": validation_signature,
            "sources": sources,
        }
        if validation is not None and (best is None or validation["f1"] >= best):
            best = validation["f1"]
            state["best_f1"] = best
            _atomic_torch_save({k: state[k] for k in state if k != "optimizer"}, run_dir / "best.pt")
        _atomic_torch_save(state, checkpoint_path)
        write_text_atomic(
            run_dir / "validation.json", json.dumps({"step": step, **(validation or {})}, indent=1)
        )

    def validate() -> dict:
        probabilities = predict_probabilities(model, val_images, device, bf16, frozen)
        return threshold_sweep(probabilities, val_labels.numpy()[:, 0])

    started = time.time()
    session_start_elapsed = elapsed

    def train_step() -> dict[str, float]:
        nonlocal step, pairs_seen, elapsed
        rng = np.random.default_rng([args.seed, rank, step])
        images, labels = sampler.batch(args.batch, rng)
        images, labels = images.to(device), labels.to(device)
        if device.type == "cpu":
            images = images.contiguous(memory_format=torch.channels_last)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.lr, args.warmup, args.steps if args.cosine else 0)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logit = trained(images).change_logit
        loss = bce_dice_loss(logit, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        pairs_seen += args.batch * world
        elapsed = session_start_elapsed + time.time() - started
        return {"loss": float(loss.detach())}

    def speed(steps: int, seconds: float) -> dict:
        return {
            "pairs_per_s": round(steps * args.batch * world / max(seconds, 1e-9), 3),
            "pairs_seen": pairs_seen,
            "elapsed_min": round(elapsed / 60, 2),
            "lr": optimizer.param_groups[0]["lr"],
        }

    def log(record: dict) -> None:
        append_jsonl(log_path, record)
        print(json.dumps(record), flush=True)

    def checkpoint() -> None:
        validation = validate()
        save(validation)
        print(
            f"checkpoint at step {step}: synthetic val F1 {validation['f1']:.3f} at threshold "
            f"{validation['threshold']} (F1@0.5 {validation['f1_at_0.5']:.3f}, ECE {validation['ece']:.3f})",
            flush=True,
        )

    def agree(stop: bool) -> bool:
        if not distributed:
            return stop
        flag = torch.tensor([float(stop)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    interrupted = run_loop(
        train_step,
        lambda: step,
        Cadence.from_args(args),
        checkpoint,
        log,
        speed=speed,
        agree=agree,
        lead=rank == 0,
        digits=4,
    )
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    if interrupted:
        print(
            f"interrupted at step {step}: checkpoint saved in {checkpoint_path}; the same command resumes it."
        )
        return 130
    return 0
