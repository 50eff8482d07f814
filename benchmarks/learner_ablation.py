"""Learner ablation on the VALIDATION split of a development folder (never reads Test/).

Trains the dense network (no development) with the package's learner and prints the validation
accuracy after every epoch, so that learner settings (loss, logit scale, time bins, learning-rate
schedule, augmentation) can be chosen on validation accuracy only. The loop is the training loop
of ``sdsnn-bio run`` without Brian2 and without a test evaluation: same initial structure for a
seed, same shuffling stream, same augmentation stream, same learning-rate schedule; validation
accuracy comes from the NumPy kernel (spike-for-spike equal to the Brian2 network, tested).

Usage (the folder is written by ``python -m sdsnn_bio.data emulate-idx``; see docs/data.md)::

    python benchmarks/learner_ablation.py DIR --subset 10000 --epochs 3 --dt-ms 10 --n-steps 30 \
        --logit-scale 30 --tag logit30 --output runs/ablation

Each run writes ``<output>/<tag>.json`` (its arguments and per-epoch history) after every epoch.
Binned recordings are cached in ``<output>/cache`` (one file per split, bin width and length).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="development folder with Train/ and Validation/")
    p.add_argument("--output", default="runs/ablation", help="folder for results and the cache")
    p.add_argument("--tag", required=True, help="name of this run's result file")
    p.add_argument("--subset", type=int, default=0, help="random training subset (0 = all)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dt-ms", type=float, default=1.0, help="time bin (ms)")
    p.add_argument("--n-steps", type=int, default=300, help="time bins per recording")
    p.add_argument("--hidden", type=int, default=800)
    p.add_argument("--loss", default="rate_cross_entropy")
    p.add_argument("--logit-scale", type=float, default=10.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--cosine", action="store_true", help="cosine learning-rate schedule")
    p.add_argument("--shift", type=int, default=0, help="augmentation: largest translation (px)")
    p.add_argument("--rotation", type=float, default=0.0, help="augmentation: largest rotation (degrees)")
    p.add_argument("--scale", type=float, default=0.0, help="augmentation: largest relative scaling")
    p.add_argument("--elastic-alpha", type=float, default=0.0, help="augmentation: elastic strength (px)")
    p.add_argument("--elastic-sigma", type=float, default=4.0, help="augmentation: elastic smoothness (px)")
    p.add_argument("--tau-ms", type=float, default=20.0)
    p.add_argument("--out-tau-ms", type=float, default=20.0)
    p.add_argument("--gain", type=float, default=4.0, help="network.weight_init_gain")
    p.add_argument("--surrogate", default="fast_sigmoid")
    p.add_argument("--surrogate-scale", type=float, default=0.0,
                   help="learning.surrogate_scale: the surrogate's slope (0 = its default)")
    p.add_argument("--min-lr", type=float, default=0.0, help="learning.min_learning_rate (cosine end)")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"), help="learning.dtype")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="learner threads (0 = the cores)")
    return p.parse_args(argv)


def load_split(folder: Path, cache: Path, dt_ms: float, n_steps: int):
    """Binned ``(channels, steps)`` samples and labels of every recording under ``folder``."""
    from brian2 import ms

    from sdsnn_bio.data import events_to_spikes
    from sdsnn_bio.data.format import read_nmnist_file

    if cache.is_file():
        with np.load(cache) as saved:
            offsets, channels, steps = saved["offsets"], saved["channels"], saved["steps"]
            labels = saved["labels"]
        return [(channels[offsets[i]:offsets[i + 1]], steps[offsets[i]:offsets[i + 1]])
                for i in range(len(offsets) - 1)], labels
    files = sorted(folder.glob("*/*.bin"))
    if not files:
        raise SystemExit(f"{folder}: no <class>/<name>.bin recording")
    samples, labels = [], []
    for path in files:
        samples.append(events_to_spikes(read_nmnist_file(path), dt_ms * ms, n_steps))
        labels.append(int(path.parent.name))
    offsets = np.concatenate([[0], np.cumsum([len(c) for c, _ in samples])])
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, offsets=offsets, labels=np.asarray(labels),
             channels=np.concatenate([c for c, _ in samples]).astype(np.int32),
             steps=np.concatenate([s for _, s in samples]).astype(np.int32))
    tmp.replace(cache)
    return samples, np.asarray(labels)


def main(argv=None) -> int:
    a = parse_args(argv)
    from sdsnn_bio.config import ExperimentConfig
    from sdsnn_bio.learning.augment import augment_batch
    from sdsnn_bio.learning.learner import InputBatch, Learner
    from sdsnn_bio.model import initial_structure

    root, output = Path(a.root), Path(a.output)
    key = f"{a.dt_ms:g}ms_{a.n_steps}"
    train, train_labels = load_split(root / "Train", output / "cache" / f"train_{key}.npz", a.dt_ms, a.n_steps)
    validation, validation_labels = load_split(root / "Validation", output / "cache" / f"validation_{key}.npz",
                                               a.dt_ms, a.n_steps)
    if a.subset:
        keep = np.sort(np.random.default_rng(5).choice(len(train), a.subset, replace=False))
        train, train_labels = [train[k] for k in keep], train_labels[keep]
    config = ExperimentConfig.from_dict({
        "network": {"hidden_sizes": [a.hidden], "dt": f"{a.dt_ms:g} ms", "n_steps": a.n_steps,
                    "tau_membrane": f"{a.tau_ms:g} ms", "output_tau_membrane": f"{a.out_tau_ms:g} ms",
                    "weight_init_gain": a.gain},
        "learning": {"loss": a.loss, "logit_scale": a.logit_scale, "learning_rate": a.lr,
                     "surrogate": a.surrogate, "surrogate_scale": a.surrogate_scale,
                     "min_learning_rate": a.min_lr, "dtype": a.dtype,
                     "batch_size": a.batch, "epochs": a.epochs,
                     "threads": a.threads, "lr_schedule": "cosine" if a.cosine else "constant",
                     "augment_max_shift": a.shift, "augment_max_rotation": a.rotation,
                     "augment_max_scale": a.scale, "augment_elastic_alpha": a.elastic_alpha,
                     "augment_elastic_sigma": a.elastic_sigma},
    })
    params, distortion = config.network_parameters(), config.distortion()
    structure = initial_structure(params, np.random.default_rng(a.seed))
    learner = Learner(structure, params.layer_dynamics(), config.learning_parameters(),
                      n_threads=a.threads or None)
    n_input, n_batches = params.n_input, math.ceil(len(train) / a.batch)
    schedule = config.learning_rate_schedule(a.epochs * n_batches)
    shuffle = np.random.default_rng([a.seed, 1])

    def accuracy(samples, labels, size=256) -> float:
        correct = 0
        for s in range(0, len(samples), size):
            predictions = learner.evaluate(InputBatch.from_samples(samples[s:s + size], a.n_steps, n_input))
            correct += int(np.count_nonzero(predictions == labels[s:s + size]))
        return correct / len(samples)

    history, batch_count = [], 0
    print(f"{a.tag}: {len(train)} training, {len(validation)} validation recordings", flush=True)
    for epoch in range(a.epochs):
        order, tick, loss, correct = shuffle.permutation(len(train)), time.perf_counter(), 0.0, 0
        for b in range(n_batches):
            chosen = order[b * a.batch:(b + 1) * a.batch]
            samples = [train[k] for k in chosen]
            samples = augment_batch(samples, a.seed, epoch, b, a.shift, distortion)
            learner.optimizer.learning_rate = schedule.at(batch_count)
            step = learner.train_step(InputBatch.from_samples(samples, a.n_steps, n_input), train_labels[chosen])
            loss, correct, batch_count = loss + step.loss * len(chosen), correct + step.n_correct, batch_count + 1
        seconds = time.perf_counter() - tick
        history.append({"epoch": epoch + 1, "train_loss": loss / len(train), "train_accuracy": correct / len(train),
                        "validation_accuracy": accuracy(validation, validation_labels),
                        "samples_per_second": len(train) / seconds})
        print(json.dumps(history[-1]), flush=True)
        result = output / f"{a.tag}.json"
        tmp = result.with_suffix(".tmp")
        tmp.write_text(json.dumps({"arguments": vars(a), "history": history}, indent=1))
        tmp.replace(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
