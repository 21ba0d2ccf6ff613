"""The trainers' shared run loop: log cadence, checkpoints, step target, time budget and stop signals."""

import os
import signal

from core.training.run_loop import Cadence, StopSignals, run_loop


class Counter:
    def __init__(self, stop_signal_at=None):
        self.step = 0
        self.stop_signal_at = stop_signal_at
        self.rows, self.checkpoints = [], []

    def train_step(self):
        self.step += 1
        if self.step == self.stop_signal_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return {"loss": float(self.step)}

    def run(self, cadence, **options):
        return run_loop(
            self.train_step,
            lambda: self.step,
            cadence,
            lambda: self.checkpoints.append(self.step),
            self.rows.append,
            **options,
        )


def test_rows_every_few_steps_and_at_the_end_and_a_checkpoint_at_the_stop():
    counter = Counter()
    interrupted = counter.run(
        Cadence(steps=5, checkpoint_minutes=60, log_every=2),
        speed=lambda steps, seconds: {"steps": steps},
        after_step=lambda step: {"sampled": True} if step == 3 else None,
    )
    assert not interrupted and counter.step == 5 and counter.checkpoints == [5]
    assert counter.rows == [
        {"step": 2, "loss": 1.5, "steps": 2},
        {"step": 3, "sampled": True},
        {"step": 4, "loss": 3.5, "steps": 2},
        {"step": 5, "loss": 5.0, "steps": 1},
    ]
    again = Counter()
    again.step = 5  # a finished run resumed with the same target: nothing to do
    assert not again.run(Cadence(5, 60, 2)) and again.rows == [] and again.checkpoints == []


def test_every_step_checkpoints_when_the_cadence_is_zero_and_other_processes_only_step():
    counter = Counter()
    counter.run(Cadence(steps=3, checkpoint_minutes=0, log_every=10))
    assert counter.checkpoints == [1, 2, 3] and [row["step"] for row in counter.rows] == [3]
    follower = Counter()
    assert not follower.run(Cadence(steps=3, checkpoint_minutes=0, log_every=1), lead=False)
    assert follower.step == 3 and follower.rows == [] and follower.checkpoints == []


def test_a_signal_or_the_time_budget_stops_after_the_step_with_a_checkpoint():
    previous = signal.getsignal(signal.SIGTERM)
    counter = Counter(stop_signal_at=2)
    assert counter.run(Cadence(steps=100, checkpoint_minutes=60, log_every=10))
    assert counter.step == 2 and counter.checkpoints == [2] and counter.rows[-1]["step"] == 2
    assert signal.getsignal(signal.SIGTERM) is previous  # the handlers come back
    budget = Counter()
    assert not budget.run(Cadence(steps=100, checkpoint_minutes=60, log_every=10, minutes=1e-9))
    assert budget.step == 1 and budget.checkpoints == [1]
    agreed = Counter()
    agreed.run(Cadence(steps=100, checkpoint_minutes=60, log_every=10), agree=lambda stop: True)
    assert agreed.step == 1  # another process asked to stop


def test_stop_signals_note_sigint_too():
    with StopSignals() as signals:
        assert not signals.requested
        os.kill(os.getpid(), signal.SIGINT)
        assert signals.requested


def test_a_diffusion_run_logs_adds_the_hours_checkpoints_and_scores(tmp_path, capsys):
    import argparse
    import json

    import torch

    from core.training.diffusion.checkpoints import autocast, load_checkpoint, run_training

    class Trainer:
        step, elapsed = 5, 3600.0

        def state(self):
            return {"step": self.step, "elapsed": self.elapsed, "weights": torch.ones(2)}

        def train_step(self):
            self.step += 1
            return {"loss": 0.5}

    trainer = Trainer()
    args = argparse.Namespace(run_dir=tmp_path, steps=7, checkpoint_minutes=60.0, log_every=1, minutes=0.0)
    describe = lambda scores: f"scored {scores}"  # noqa: E731
    assert run_training(args, trainer, trainer.train_step, lambda: {"psnr": 30.0}, describe) == 0
    assert trainer.elapsed > 3600.0
    state = load_checkpoint(tmp_path)
    assert (
        state["step"] == 7
        and state["elapsed"] == trainer.elapsed
        and torch.equal(state["weights"], torch.ones(2))
    )
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows == [{"step": 6, "loss": 0.5}, {"step": 7, "loss": 0.5}]
    (row,) = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert row["step"] == 7 and row["psnr"] == 30.0 and row["hours"] > 1.0
    assert "scored {'psnr': 30.0}" in capsys.readouterr().out
    cpu, ones = torch.device("cpu"), torch.ones(2, 2)
    with autocast("auto", cpu):
        assert (ones @ ones).dtype == torch.bfloat16  # auto is bf16 on the CPU
    with autocast("fp32", cpu):
        assert (ones @ ones).dtype == torch.float32
