"""The ``sdsnn-bio`` command line: figures from several results folders, and bad input."""

from __future__ import annotations

import pytest
from test_plotting import write_fake_results

from sdsnn_bio.cli import main


def test_plot_of_several_results_folders_draws_accuracy_over_all_seeds(tmp_path, capsys):
    folders = []
    for seed in range(3):
        folder = tmp_path / f"seed{seed}"
        write_fake_results(folder, seed=seed)
        folders.append(str(folder))
    figures = tmp_path / "figures"
    assert main(["plot", *folders, "--figures", str(figures)]) == 0
    printed = capsys.readouterr().out.split()
    assert str(figures / "accuracy_vs_compression.png") in printed
    assert str(figures / "spine_dynamics.png") in printed, "the first folder's run figures too"
    assert all((figures / name).is_file() for name in map(lambda p: p.rsplit("/", 1)[-1], printed))


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "{tmp}/missing.toml"], "missing.toml does not exist"),
        (["run", "--set", "network.tau_membrane=20"], "network.tau_membrane: expected a time"),
        (["run", "--set", "learning.surrogate=bogus"], "learning.surrogate: expected one of"),
        (["run", "--set", "development.initial_pruning_rate=2"], "development.initial_pruning_rate"),
        (["run", "--data", "{tmp}/no_nmnist_here"], "no_nmnist_here"),
        (["plot", "{tmp}/no_results"], "results.json"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(tmp_path, capsys, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sdsnn-bio: error:"), err
    assert needle.replace("{tmp}", str(tmp_path)) in err, err


def test_plot_without_figures_writes_into_the_run_folder(tmp_path, capsys, monkeypatch):
    from test_plotting import quick_save

    from sdsnn_bio import plotting

    monkeypatch.setattr(plotting, "save_figure", quick_save)
    monkeypatch.chdir(tmp_path)  # a stray "figures/" would appear here
    write_fake_results(tmp_path / "run")
    assert main(["plot", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed and all(path.startswith(str(tmp_path / "run" / "figures")) for path in printed)
    assert not (tmp_path / "figures").exists(), "nothing is written outside the run folder"


@pytest.mark.parametrize("name", ['with"quote', "with\\backslash", 'both\\"'])
def test_data_path_with_quotes_or_backslashes_is_taken_literally(tmp_path, capsys, name):
    folder = tmp_path / name
    assert main(["run", "--data", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{folder}: N-MNIST folder does not exist" in err, err


def test_log_lines_are_printed_through_the_progress_bars(monkeypatch):
    import logging

    from tqdm.auto import tqdm

    from sdsnn_bio.progress import ProgressAwareHandler

    written = []
    monkeypatch.setattr(tqdm, "write", lambda text, file=None: written.append(text))
    handler = ProgressAwareHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.emit(logging.LogRecord("sdsnn_bio", logging.INFO, __file__, 1, "epoch %d", (3,), None))
    assert written == ["INFO: epoch 3"], "tqdm.write clears and redraws the bars around the line"


def test_info_prints_the_full_configuration_in_force_with_defaults(tmp_path, capsys, monkeypatch):
    import json
    from pathlib import Path

    from sdsnn_bio import experiment

    class NoData:  # the dataset summary is not under test here
        description = {"source": "not loaded"}

    monkeypatch.setattr(experiment, "prepare_data", lambda config: NoData())
    config = Path(__file__).resolve().parents[1] / "examples" / "configs" / "embedded.toml"
    assert main(["info", str(config)]) == 0
    out = capsys.readouterr().out
    start = out.index("{")
    shown, _ = json.JSONDecoder().raw_decode(out[start:])
    development = shown["development"]
    assert development["consecutive_steps"] == 9, "the file's K"
    assert development["pruning_warmup_steps"] == 18 and development["constraint_warmup_steps"] == 9, (
        "warm-ups the file does not set are shown, derived from its K")
    assert shown["learning"]["surrogate"] == "fast_sigmoid" and shown["figures"]["spine_projection"] == "", (
        "defaults the file does not set are shown")
    assert shown["learning"]["augment_max_shift"] == 2, "the file's own setting"
    assert "derived from development.consecutive_steps (K): development.constraint_warmup_steps" in out
