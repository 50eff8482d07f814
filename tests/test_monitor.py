"""Development monitors: what they select, what they record, their memory, files and figures."""

from __future__ import annotations

import numpy as np
import pytest

from sdsnn_bio.development import DevelopmentParameters, Schedule, StructuralScheduler
from sdsnn_bio.development.conditions import ConditionError
from sdsnn_bio.development.monitor import (
    DevelopmentMonitor,
    load_monitors,
    save_monitors,
)
from sdsnn_bio.model import NetworkParameters, SpikingNetwork, initial_structure

PARAMS = NetworkParameters(n_input=20, hidden_sizes=(12,), n_output=4, n_steps=10, weight_init_gain=8.0)
NOW = dict(steps_per_epoch=1, constraint_warmup_steps=0, pruning_warmup_steps=0)


def develop(monitors, steps: int = 4, seed: int = 3, pruning_rate: float = 0.25):
    """A small network developed ``steps`` times with random weight changes between steps.

    Returns the scheduler and, per step, a copy of the structure after it (the reference).
    """
    rng = np.random.default_rng(seed)
    structure = initial_structure(PARAMS, rng)
    network = SpikingNetwork(structure, PARAMS)
    scheduler = StructuralScheduler(network, structure, Schedule(**NOW),
                                    DevelopmentParameters(initial_pruning_rate=pruning_rate,
                                                          consecutive_steps=2),
                                    sync="lazy", monitors=monitors)
    snapshots = []
    for _ in range(steps):
        for projection in structure.projections:  # stands in for the learner
            projection.weight += rng.normal(0.0, 0.3, projection.shape)
        scheduler.step()
        snapshots.append((structure.copy(), dict(scheduler.state.pruning_rates)))
    return scheduler, snapshots


def test_the_condition_selects_the_synapses_once_and_values_equal_the_structure():
    monitor = DevelopmentMonitor("input_to_hidden_1", ["w", "spine_range_upper", "lower", "exists",
                                                       "upper_streak", "spine_width", "alive_post"],
                                 "i < 3 and j >= 10")
    scheduler, snapshots = develop([monitor])
    assert sorted(zip(monitor.i.tolist(), monitor.j.tolist())) == [(i, j) for i in range(3) for j in (10, 11)]
    assert monitor.steps.tolist() == [1, 2, 3, 4], "one recording per development step, numbered like the log"
    assert monitor.w.shape == (6, 4), "(recorded synapses, steps), like a Brian2 StateMonitor"
    for k, (structure, _) in enumerate(snapshots):
        projection = structure.projection("input_to_hidden_1")
        pairs = (monitor.i, monitor.j)
        assert np.array_equal(monitor.w[:, k], projection.weight[pairs]), "w is the (latent) weight, exactly"
        assert np.array_equal(monitor.spine_range_upper[:, k], projection.spine.upper[pairs])
        assert np.array_equal(monitor.values("spine_range_lower")[:, k], projection.spine.lower[pairs])
        assert np.array_equal(monitor.exists[:, k], projection.exists[pairs])
        assert np.array_equal(monitor.upper_streak[:, k], projection.spine.upper_streak[pairs])
        assert np.array_equal(monitor.spine_width[:, k], projection.spine.width[pairs])
        assert np.array_equal(monitor.alive_post[:, k], structure.population("hidden_1").alive[monitor.j])
    assert monitor.upper_streak.dtype == np.int32 and monitor.exists.dtype == bool


def test_a_condition_on_the_variables_is_evaluated_when_the_monitor_is_attached():
    rng = np.random.default_rng(0)
    structure = initial_structure(PARAMS, rng)
    monitor = DevelopmentMonitor("hidden_1_to_output", "w", "w > 0.5")
    monitor.attach(structure)
    weight = structure.projection("hidden_1_to_output").weight
    expected = np.argwhere(weight > 0.5)
    assert monitor.n_recorded == len(expected) > 0
    assert np.array_equal(np.stack([monitor.i, monitor.j], axis=1), expected)
    assert monitor.labels[0] == f"hidden_1[{expected[0][0]}] → output[{expected[0][1]}]"


def test_neuron_variables_of_a_population():
    monitor = DevelopmentMonitor("hidden_1", ["alive", "importance", "pruning_rate"], "i % 2 == 0")
    _, snapshots = develop([monitor], pruning_rate=0.4)
    from sdsnn_bio.development.rules import neuron_importance

    assert monitor.i.tolist() == list(range(0, 12, 2)) and monitor.j is None
    for k, (structure, rates) in enumerate(snapshots):
        incoming = structure.projection("input_to_hidden_1")
        assert np.array_equal(monitor.alive[:, k], structure.population("hidden_1").alive[monitor.i])
        assert np.array_equal(monitor.importance[:, k],
                              neuron_importance(incoming.spine, incoming.exists)[monitor.i])
        assert np.all(monitor.pruning_rate[:, k] == rates["hidden_1"])
    assert not monitor.alive.all(), "pruning happened and the monitor saw it"


def test_memory_per_synapse_and_step_is_the_sum_of_the_itemsizes():
    monitor = DevelopmentMonitor("input_to_hidden_1", ["w", "exists", "upper_streak"], "j == 0")
    develop([monitor], steps=3)
    assert monitor.n_recorded == 20
    assert monitor.bytes_per_step == 20 * (8 + 1 + 4) + 8
    assert monitor.nbytes == 3 * monitor.bytes_per_step
    stored = sum(monitor.values(v).nbytes for v in monitor.variables) + monitor.steps.nbytes
    assert monitor.nbytes == stored, "the stated memory is what the recordings hold"


def test_saved_monitors_read_back_equal_and_keep_recording(tmp_path):
    synapses = DevelopmentMonitor("input_to_hidden_1", ["w", "upper"], "i == j", name="diagonal")
    neurons = DevelopmentMonitor("output", "alive")
    develop([synapses, neurons], steps=2)
    path = save_monitors(tmp_path / "monitors.npz", [synapses, neurons])
    loaded = load_monitors(path)
    assert set(loaded) == {"diagonal", "output_monitor"}
    again = loaded["diagonal"]
    assert again.source == "input_to_hidden_1" and again.condition == "i == j"
    assert np.array_equal(again.i, synapses.i) and np.array_equal(again.j, synapses.j)
    assert np.array_equal(again.steps, synapses.steps)
    for variable in ("w", "spine_range_upper"):
        assert np.array_equal(again.values(variable), synapses.values(variable))
    assert np.array_equal(loaded["output_monitor"].alive, neurons.alive)
    structure = initial_structure(PARAMS, np.random.default_rng(1))
    again.record(3, structure)  # a resumed run appends to what was loaded
    assert again.w.shape == (again.n_recorded, 3)


def test_bad_definitions_fail_with_a_message_naming_what_was_expected():
    with pytest.raises(ValueError, match=r"unknown variables \['spine_upper'\]; synaptic variables:"):
        DevelopmentMonitor("input_to_hidden_1", ["spine_upper"])
    structure = initial_structure(PARAMS, np.random.default_rng(0))
    with pytest.raises(KeyError, match="no projection or population named 'hidden_9'"):
        DevelopmentMonitor("hidden_9", "alive").attach(structure)
    with pytest.raises(ValueError, match=r"\['w'\] cannot be recorded on the population 'hidden_1'"):
        DevelopmentMonitor("hidden_1", "w").attach(structure)
    with pytest.raises(ConditionError, match="DevelopmentMonitor 'm'.*unknown variable 'weight'"):
        DevelopmentMonitor("input_to_hidden_1", "w", "weight > 0", name="m").attach(structure)
    with pytest.raises(ConditionError, match="Attribute .* is not allowed"):
        DevelopmentMonitor("input_to_hidden_1", "w", "w.__class__ == 0").attach(structure)
    with pytest.raises(ConditionError, match="Call|only the functions"):
        DevelopmentMonitor("input_to_hidden_1", "w", "__import__('os').system('true') == 0").attach(structure)
    with pytest.raises(ValueError, match=r"names must be unique, \['twice'\]"):
        develop([DevelopmentMonitor("hidden_1", "alive", name="twice"),
                 DevelopmentMonitor("output", "alive", name="twice")], steps=1)
    with pytest.raises(KeyError, match="does not record 'importance'"):
        DevelopmentMonitor("hidden_1", "alive").values("importance")
    with pytest.raises(FileNotFoundError, match="monitors file .* does not exist"):
        load_monitors("/nonexistent/monitors.npz")


# ----------------------------------------------------------------------------- in a run, from a config
def _run_config(tmp_path, **run):
    from sdsnn_bio.config import ExperimentConfig

    return ExperimentConfig.from_dict({
        "network": {"hidden_sizes": [12], "n_steps": 20, "dt": "5 ms", "weight_init_gain": 6.0},
        "learning": {"batch_size": 6, "epochs": 2, "learning_rate": 0.01, "threads": 1},
        "development": {"enabled": True, "steps_per_epoch": 3, "consecutive_steps": 2},
        "simulation": {"codegen_target": "numpy", "evaluation_batch": 6},
        "run": {"seed": 3, "output_dir": str(tmp_path / "out"), "baseline": False, **run},
        "monitor": [
            {"source": "input_to_hidden_1", "variables": ["w", "spine_range_lower", "spine_range_upper",
                                                          "exists"], "condition": "i < 2 and j < 3",
             "name": "corner"},
            {"source": "hidden_1", "variables": ["alive", "importance", "pruning_rate"]},
        ],
    }, source="test")


def _tiny_data():
    from sdsnn_bio.experiment import PreparedData

    rng = np.random.default_rng(7)

    def samples(labels):
        out = []
        for label in labels:
            channels = np.concatenate([rng.choice(np.arange(label * 500, label * 500 + 400), 30),
                                       rng.choice(2312, 10)])
            out.append((channels.astype(np.int64), rng.integers(0, 20, channels.size)))
        return out

    train, test = np.tile(np.arange(4), 4), np.tile(np.arange(4), 2)
    return PreparedData(samples(train), train, samples(test), test, {"source": "test: random spikes"})


def test_configured_monitors_are_saved_with_the_run_resumed_and_plotted(tmp_path):
    from sdsnn_bio.development import MONITORS_FILE
    from sdsnn_bio.experiment import run_experiment, train_model
    from sdsnn_bio.plotting import MONITOR_FIGURE, plot_results

    config = _run_config(tmp_path)
    data = _tiny_data()
    results = run_experiment(config, data=data, progress=False)
    result = results["models"]["sdsnn"]
    log = result["development_log"]
    saved = load_monitors(tmp_path / "out" / "sdsnn" / MONITORS_FILE)
    assert set(saved) == {"corner", "hidden_1_monitor"}
    corner = saved["corner"]
    assert corner.steps.tolist() == [entry["development_step"] for entry in log], "one recording per step"
    assert corner.n_recorded == 6 and corner.w.shape == (6, len(log))
    assert result["monitors"]["corner"] == corner.summary(), "result.json describes the saved monitor"
    assert result["config"]["monitor"][0]["condition"] == "i < 2 and j < 3", "the config echo keeps them"

    # Interrupted after 5 batches and resumed: the same recordings as the uninterrupted run.
    train_model(config, data, tmp_path / "parts", development=True, progress=False, stop_after_batches=5)
    train_model(config, data, tmp_path / "parts", development=True, progress=False, resume=True)
    resumed = load_monitors(tmp_path / "parts" / MONITORS_FILE)
    for name, monitor in saved.items():
        assert np.array_equal(resumed[name].steps, monitor.steps), f"{name}: same steps after resume"
        for variable in monitor.variables:
            assert np.array_equal(resumed[name].values(variable), monitor.values(variable)), (
                f"{name}.{variable}: same values after resume")

    written = {path.name for path in plot_results(tmp_path / "out", tmp_path / "figures")}
    for name in saved:
        assert MONITOR_FIGURE.format(name=name) in written, f"plot_results drew monitor {name}"


def test_the_figure_functions_accept_a_monitor():
    from matplotlib.figure import Figure

    from sdsnn_bio.plotting import plot_monitor, plot_spine_dynamics

    synapses = DevelopmentMonitor("input_to_hidden_1", ["w", "lower", "upper", "exists"], "i < 2 and j < 2")
    neurons = DevelopmentMonitor("hidden_1", ["alive", "importance"])
    develop([synapses, neurons], steps=3, pruning_rate=0.4)
    fig = plot_spine_dynamics(synapses)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == synapses.labels, "one panel per monitored synapse, titled source[i] → target[j]"
    panel = fig.axes[0]
    assert np.array_equal(panel.lines[0].get_ydata(), synapses.w[0]), "the drawn weight is the recorded one"
    fig = plot_monitor(neurons)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["alive", "importance"]
    assert np.allclose(fig.axes[1].lines[-1].get_ydata(), neurons.importance.mean(axis=0)), "mean over neurons"
    with pytest.raises(ValueError, match="must record .*'w', 'spine_range_lower', 'spine_range_upper'"):
        plot_spine_dynamics(neurons)


def test_monitor_tables_in_the_config_are_checked():
    from sdsnn_bio.config import ConfigError, ExperimentConfig

    config = ExperimentConfig.from_dict({"monitor": [{"source": "hidden_1", "variables": "alive"}]})
    assert config.monitors == ({"source": "hidden_1", "variables": ["alive"]},)
    assert ExperimentConfig.from_dict(config.to_dict()).monitors == config.monitors, "the echo reads back"
    assert "monitor" not in ExperimentConfig.from_dict({}).to_dict(), "no monitors: the echo is unchanged"
    with pytest.raises(ConfigError, match=r"monitor\[0\]: missing key\(s\) \['variables'\]"):
        ExperimentConfig.from_dict({"monitor": [{"source": "hidden_1"}]})
    with pytest.raises(ConfigError, match=r"as a \[\[monitor\]\] table"):
        ExperimentConfig.from_dict({"monitor": {"source": "hidden_1", "variables": ["alive"]}})
    with pytest.raises(ConfigError, match=r"monitor\[0\]: unknown key\(s\) \['record'\]"):
        ExperimentConfig.from_dict({"monitor": [{"source": "hidden_1", "variables": ["alive"], "record": 1}]})
    with pytest.raises(ConfigError, match=r"monitor\[0\].variables: expected a list of variable names"):
        ExperimentConfig.from_dict({"monitor": [{"source": "hidden_1", "variables": [1]}]})
    with pytest.raises(ConfigError, match=r"\[\[monitor\]\] tables cannot be set from the command line"):
        config.with_overrides(["monitor.source=output"])
    assert config.with_overrides(["run.seed=4"]).monitors == config.monitors, "--set keeps the monitors"


def test_a_changed_monitor_table_is_a_configuration_change():
    from sdsnn_bio.experiment import configuration_changes

    before = {"run": {"seed": 0}, "monitor": [{"source": "hidden_1", "variables": ["alive"]}]}
    assert configuration_changes(before, before) == []
    after = {"run": {"seed": 0}, "monitor": [{"source": "hidden_1", "variables": ["importance"]}]}
    assert configuration_changes(before, after) == ["monitor"]
    assert configuration_changes({"run": {"seed": 0}}, after) == ["monitor"], "monitors added"


def test_pruning_and_regeneration_figures_accept_monitors():
    from sdsnn_bio.plotting import plot_pruning, plot_regeneration

    # The structure is changed by hand between recordings (standing in for the rules), so that
    # neurons die and synapses are removed *and* regrown at known steps.
    structure = initial_structure(PARAMS, np.random.default_rng(0))
    synapses = DevelopmentMonitor("input_to_hidden_1", "exists", "i < 10")
    neurons = DevelopmentMonitor("hidden_1", ["alive", "pruning_rate"], "i < 8")
    projection, hidden = structure.projection("input_to_hidden_1"), structure.population("hidden_1")
    rng = np.random.default_rng(1)
    rates = [0.1, 0.2, 0.3, 0.3]
    for step, rate in enumerate(rates, start=1):
        for monitor in (synapses, neurons):
            monitor.record(step, structure, {"hidden_1": rate})
        hidden.alive[step] = False                                  # one more recorded neuron dies
        projection.exists[rng.integers(0, 20, 15), rng.integers(0, 12, 15)] ^= True  # removals and regrowth
    exists = synapses.exists
    assert (exists[:, 1:] & ~exists[:, :-1]).any() and (exists[:, :-1] & ~exists[:, 1:]).any(), \
        "the fixture both removes and regrows recorded synapses"

    fig = plot_pruning(neurons)
    rate_ax, alive_ax = fig.axes
    assert alive_ax.lines[0].get_ydata().tolist() == [8, 7, 6, 5], "recorded neurons alive per step"
    assert np.allclose(rate_ax.lines[0].get_ydata(), rates)
    assert list(alive_ax.lines[1].get_ydata()) == [8, 8], "the layer size is the number recorded"
    assert np.allclose(alive_ax.lines[2].get_ydata(), (1 - np.array(rates)) * 8), "target (1 - p_l) x recorded"

    fig = plot_regeneration([synapses])
    _, change_ax, count_ax = fig.axes
    assert np.array_equal(count_ax.lines[0].get_ydata(), exists.sum(axis=0))
    added = [bar.get_height() for bar in change_ax.containers[0]]
    removed = [-bar.get_height() for bar in change_ax.containers[1]]
    assert added == [0] + (exists[:, 1:] & ~exists[:, :-1]).sum(axis=0).tolist()
    assert removed == [0] + (exists[:, :-1] & ~exists[:, 1:]).sum(axis=0).tolist()
    assert np.diff(exists.sum(axis=0)).tolist() == [a - r for a, r in zip(added[1:], removed[1:])]

    with pytest.raises(ValueError, match="must record 'alive' of a population"):
        plot_pruning(synapses)
    with pytest.raises(ValueError, match="must record 'exists' of a projection"):
        plot_regeneration(neurons)
    with pytest.raises(TypeError, match="not a mix"):
        plot_pruning([neurons, {"pruning_rates": {}}])
