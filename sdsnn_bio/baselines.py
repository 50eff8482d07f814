"""Non-spiking baselines on per-saccade ON/OFF count images: the bar a spiking network must clear.

Features
    Every recording becomes ``3 saccades x 2 polarities x 34 x 34 = 6936`` event counts: event
    ``(x, y, t, p)`` adds one to feature ``((s * 2 + p) * 34 + y) * 34 + x`` with saccade
    ``s = min(t // 100 000 us, 2)`` (N-MNIST's three ~100 ms saccades; late events count in the
    third). The models see ``log(1 + count)``, standardised with the training split's mean and
    standard deviation (per feature).
Models (scikit-learn, already a dependency of the package)
    * multinomial logistic regression (``LogisticRegression``, L-BFGS), inverse regularisation
      ``C`` from a grid;
    * a multilayer perceptron with one hidden layer of 800 ReLU units (the SNN's 2312-800-10 width;
      ``MLPClassifier``, Adam, batches of 128, learning rate 1e-3), L2 penalty ``alpha`` from a grid
      and the number of epochs chosen together: after every epoch the validation accuracy is
      measured and the best (alpha, epoch) is kept.
Protocol
    Every choice is made on the validation split only: the folder's own ``Validation/`` split, or,
    if it has none, a stratified ``--validation-fraction`` of ``Train/`` fixed by ``--seed``
    (:func:`sdsnn_bio.data.validation_split`). The chosen model of each kind is evaluated on the
    test split once, at the end.

    python -m sdsnn_bio.baselines DIR [--output baseline.json] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

__all__ = [
    "N_SACCADES",
    "SACCADE_US",
    "saccade_count_features",
    "dataset_features",
    "standardise",
    "select_logistic",
    "select_mlp",
    "run_baselines",
    "main",
]

logger = logging.getLogger(__name__)

#: Saccades of an N-MNIST recording, and the length of each in microseconds.
N_SACCADES = 3
SACCADE_US = 100_000
#: Defaults of the selection grids.
LOGISTIC_C = (0.001, 0.01, 0.1, 0.3, 1.0, 3.0)
MLP_ALPHA = (1e-4, 1e-3, 1e-2)
MLP_EPOCHS = 20
MLP_HIDDEN = 800


def saccade_count_features(events, sensor_size=(34, 34, 2)) -> np.ndarray:
    """Per-saccade ON/OFF event counts of one recording.

    Parameters
    ----------
    events : structured array with fields x, y, t, p
        ``t`` in microseconds.
    sensor_size : (int, int, int)
        ``(W, H, P)``.

    Returns
    -------
    ndarray of float32, shape (N_SACCADES * P * H * W,)
        Feature ``((s * P + p) * H + y) * W + x`` counts the events of saccade ``s``.
    """
    width, height, polarities = (int(v) for v in sensor_size)
    saccade = np.minimum(np.asarray(events["t"], dtype=np.int64) // SACCADE_US, N_SACCADES - 1)
    index = ((saccade * polarities + np.asarray(events["p"], dtype=np.int64)) * height
             + np.asarray(events["y"], dtype=np.int64)) * width + np.asarray(events["x"], dtype=np.int64)
    n_features = N_SACCADES * polarities * height * width
    return np.bincount(index, minlength=n_features).astype(np.float32)


def dataset_features(dataset, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every recording of a dataset (``dataset[i] -> (events, label)``)."""
    from .progress import progress_bar

    sensor_size = getattr(dataset, "sensor_size", (34, 34, 2))
    n_features = N_SACCADES * int(np.prod(sensor_size))
    features = np.empty((len(dataset), n_features), dtype=np.float32)
    labels = np.empty(len(dataset), dtype=np.int64)
    with progress_bar(len(dataset), f"features {getattr(dataset, 'split', '')}", enabled=progress) as bar:
        for index in range(len(dataset)):
            events, label = dataset[index]
            features[index] = saccade_count_features(events, sensor_size)
            labels[index] = int(label)
            bar.update(1)
    return features, labels


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """``log1p`` then per-feature standardisation with the training split's statistics.

    Features constant on the training split get a scale of 1 (they stay constant).
    """
    train = np.log1p(train)
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale[scale == 0] = 1.0
    return [((x - mean) / scale).astype(np.float32) for x in (train, *(np.log1p(o) for o in others))]


def _accuracy(model, features, labels) -> float:
    return float(np.mean(model.predict(features) == labels))


def select_logistic(train, train_labels, validation, validation_labels, grid=LOGISTIC_C, seed: int = 0):
    """Fit a logistic regression for every ``C`` in ``grid``; return the best on validation.

    Returns
    -------
    model : sklearn.linear_model.LogisticRegression
        The model with the highest validation accuracy (the smaller ``C`` on a tie).
    record : dict
        ``validation_accuracy`` per ``C``, the chosen ``C``, whether it lies at an end of the grid
        (then the grid should be widened), and the fitting seconds.
    """
    from sklearn.linear_model import LogisticRegression

    best, scores, started = None, {}, time.perf_counter()
    for c in sorted(grid):
        model = LogisticRegression(C=c, max_iter=500, tol=1e-4, random_state=seed)
        model.fit(train, train_labels)
        scores[str(c)] = _accuracy(model, validation, validation_labels)
        logger.info("logistic regression C=%g: validation accuracy %.4f", c, scores[str(c)])
        if best is None or scores[str(c)] > scores[str(best[0])]:
            best = (c, model)
    return best[1], {"validation_accuracy": scores, "chosen_C": best[0],
                     "chosen_at_grid_edge": len(grid) > 1 and best[0] in (min(grid), max(grid)),
                     "seconds": round(time.perf_counter() - started, 1)}


def select_mlp(train, train_labels, validation, validation_labels, grid=MLP_ALPHA, epochs: int = MLP_EPOCHS,
               hidden: int = MLP_HIDDEN, seed: int = 0):
    """Train an MLP per ``alpha`` for ``epochs`` epochs; keep the best (alpha, epoch) on validation.

    Returns
    -------
    model : sklearn.neural_network.MLPClassifier
        Weights of the best epoch of the best alpha (the earlier one on a tie).
    record : dict
        Validation accuracy after every epoch for every alpha, the chosen alpha and epoch, whether
        either lies at the end of its range (widen the grid, or train longer), seconds.
    """
    import copy
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    classes = np.unique(train_labels)
    best, curves, started = None, {}, time.perf_counter()
    for alpha in sorted(grid):
        model = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, batch_size=min(128, len(train_labels)),
                              learning_rate_init=1e-3, max_iter=1, shuffle=True, random_state=seed)
        curve = []
        for epoch in range(1, epochs + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.partial_fit(train, train_labels, classes=classes)
            curve.append(_accuracy(model, validation, validation_labels))
            if best is None or curve[-1] > best[0]:
                best = (curve[-1], alpha, epoch, copy.deepcopy(model))
        curves[str(alpha)] = curve
        logger.info("MLP alpha=%g: validation accuracy by epoch %s", alpha, [round(a, 4) for a in curve])
    return best[3], {"validation_accuracy_by_epoch": curves, "chosen_alpha": best[1], "chosen_epoch": best[2],
                     "chosen_at_grid_edge": len(grid) > 1 and best[1] in (min(grid), max(grid)),
                     "chosen_at_last_epoch": best[2] == epochs,
                     "hidden_units": hidden, "seconds": round(time.perf_counter() - started, 1)}


def _splits(root, validation_fraction: float, seed: int, progress: bool):
    from .data import load_dataset, validation_split
    from .data.format import DataError

    train_x, train_y = dataset_features(load_dataset(root, "train"), progress)
    try:
        validation = load_dataset(root, "validation")
    except DataError:
        validation = None
    if validation is not None:
        validation_x, validation_y = dataset_features(validation, progress)
        how = f"the folder's Validation/ split ({len(validation_y)} recordings)"
    else:
        if not 0 < validation_fraction < 1:
            raise DataError(f"{root}: no Validation/ split; give --validation-fraction in (0, 1) to carve one "
                            "from Train/")
        keep, held = validation_split(train_y, validation_fraction, seed)
        validation_x, validation_y = train_x[held], train_y[held]
        train_x, train_y = train_x[keep], train_y[keep]
        how = f"{validation_fraction:g} of Train/, stratified, seed {seed} ({len(validation_y)} recordings)"
    test_x, test_y = dataset_features(load_dataset(root, "test"), progress)
    return (train_x, train_y), (validation_x, validation_y), (test_x, test_y), how


def run_baselines(root, *, seed: int = 0, validation_fraction: float = 0.0, logistic_grid=LOGISTIC_C,
                  mlp_grid=MLP_ALPHA, mlp_epochs: int = MLP_EPOCHS, mlp_hidden: int = MLP_HIDDEN,
                  models=("logistic", "mlp"), progress: bool = False) -> dict:
    """Features of a folder's splits, model selection on validation, one test evaluation per model.

    Parameters
    ----------
    root : str or os.PathLike
        N-MNIST folder with ``Train/`` and ``Test/`` (and ``Validation/``, else see
        ``validation_fraction``).
    seed : int
        Seed of the models (and of the carved validation split).
    validation_fraction : float
        Used only when the folder has no ``Validation/`` split.
    logistic_grid, mlp_grid : sequence of float
        ``C`` values and ``alpha`` values tried.
    mlp_epochs, mlp_hidden : int
        Epochs per ``alpha`` and hidden units.
    models : sequence of {"logistic", "mlp"}
    progress : bool

    Returns
    -------
    dict
        Split sizes, how validation was made, and per model the validation record, the chosen
        setting and its test accuracy.
    """
    started = time.perf_counter()
    (train_x, train_y), (validation_x, validation_y), (test_x, test_y), how = _splits(
        root, validation_fraction, seed, progress)
    feature_seconds = time.perf_counter() - started
    train_x, validation_x, test_x = standardise(train_x, validation_x, test_x)
    report = {
        "root": str(root),
        "features": f"{N_SACCADES} saccades x 2 polarities x 34 x 34 event counts, log1p, standardised on train",
        "samples": {"train": int(train_y.size), "validation": int(validation_y.size), "test": int(test_y.size)},
        "validation": how,
        "protocol": "every setting chosen on validation accuracy; test evaluated once per model, at the end",
        "feature_seconds": round(feature_seconds, 1),
        "seed": seed,
        "models": {},
    }
    for name in models:
        if name == "logistic":
            model, record = select_logistic(train_x, train_y, validation_x, validation_y, logistic_grid, seed)
            record["validation_accuracy_chosen"] = record["validation_accuracy"][str(record["chosen_C"])]
        elif name == "mlp":
            model, record = select_mlp(train_x, train_y, validation_x, validation_y, mlp_grid, mlp_epochs,
                                       mlp_hidden, seed)
            curve = record["validation_accuracy_by_epoch"][str(record["chosen_alpha"])]
            record["validation_accuracy_chosen"] = curve[record["chosen_epoch"] - 1]
        else:
            raise ValueError(f"models: expected 'logistic' or 'mlp', got {name!r}")
        record["test_accuracy"] = _accuracy(model, test_x, test_y)
        report["models"][name] = record
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    return report


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def main(argv=None) -> int:
    """``python -m sdsnn_bio.baselines DIR``: print (and optionally save) the baseline report."""
    parser = argparse.ArgumentParser(prog="python -m sdsnn_bio.baselines", description=__doc__.splitlines()[0])
    parser.add_argument("root", help="N-MNIST folder (Train/, Test/ and ideally Validation/)")
    parser.add_argument("--output", help="also write the report (JSON) to this file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-fraction", type=float, default=0.0,
                        help="carve validation from Train/ when the folder has no Validation/ split")
    parser.add_argument("--models", default="logistic,mlp", help="comma-separated: logistic, mlp")
    parser.add_argument("--logistic-c", type=_floats, default=LOGISTIC_C, help="C grid, e.g. 0.01,0.1")
    parser.add_argument("--mlp-alpha", type=_floats, default=MLP_ALPHA, help="alpha grid, e.g. 1e-4,1e-3")
    parser.add_argument("--mlp-epochs", type=int, default=MLP_EPOCHS)
    parser.add_argument("--mlp-hidden", type=int, default=MLP_HIDDEN)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    from .data.format import DataError
    from .files import atomic_open

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if not models or any(m not in ("logistic", "mlp") for m in models):
        parser.error(f"--models: expected a comma-separated subset of logistic,mlp, got {args.models!r}")
    if args.mlp_epochs < 1 or args.mlp_hidden < 1:
        parser.error("--mlp-epochs and --mlp-hidden: expected integers >= 1")
    try:
        report = run_baselines(args.root, seed=args.seed, validation_fraction=args.validation_fraction,
                               logistic_grid=args.logistic_c, mlp_grid=args.mlp_alpha, mlp_epochs=args.mlp_epochs,
                               mlp_hidden=args.mlp_hidden, models=models, progress=not args.no_progress)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    words = sys.argv[1:] if argv is None else list(argv)
    report["command"] = "python -m sdsnn_bio.baselines " + shlex.join(words)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        with atomic_open(Path(args.output), "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
