"""The experiment configuration: defaults, TOML files, overrides and errors that name the field."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from brian2 import ms, us

from sdsnn_bio.config import ConfigError, ExperimentConfig, load_config, parse_time


def test_importing_the_config_imports_neither_the_model_nor_the_learner_nor_development():
    """config.py names its choices as plain data; the subpackages are imported when a config is validated."""
    code = ("import sys, sdsnn_bio.config as c; subpackages = ('sdsnn_bio.model', 'sdsnn_bio.learning', "
            "'sdsnn_bio.development'); print(sorted(m for m in subpackages if m in sys.modules)); "
            "c.load_config(None); print(sorted(m for m in subpackages if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    after_import, after_validation = completed.stdout.strip().splitlines()
    assert after_import == "[]", f"import sdsnn_bio.config imported {after_import}"
    assert after_validation == "['sdsnn_bio.development', 'sdsnn_bio.learning', 'sdsnn_bio.model']", (
        "validation builds the parameter objects (so the check above can see these imports)")


def test_defaults_are_valid_and_echo_as_json():
    config = load_config(None)
    echo = json.loads(config.to_json())
    assert echo["network"]["hidden_sizes"] == [800], "N-MNIST default: one hidden layer of 800"
    assert echo["development"] == {}, "development is off unless configured"
    assert ExperimentConfig.from_dict(echo).to_dict() == echo, "the echo reads back to the same config"


def test_toml_file_is_read_and_validated(tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text(
        '[network]\nhidden_sizes = [64, 32]\ntau_membrane = "10 ms"\n'
        '[learning]\nsurrogate = "arctan"\nepochs = 3\n'
    )
    config = load_config(path)
    params = config.network_parameters()
    assert params.hidden_sizes == (64, 32)
    assert params.hidden.tau_membrane == 10 * ms, "the time string became a Brian2 quantity"
    assert config.learning_parameters().surrogate == "arctan"


@pytest.mark.parametrize(
    "text, expected",
    [("20 ms", 20 * ms), ("0.5ms", 0.5 * ms), ("500 us", 500 * us), ("0.02 s", 20 * ms), ("1e-3 s", 1 * ms)],
)
def test_parse_time_accepts_times_with_units(text, expected):
    assert parse_time("x", text) == expected


@pytest.mark.parametrize(
    "raw, field, received",
    [
        ({"network": {"tau_membrane": "-5 ms"}}, "network.tau_membrane", "-5"),
        ({"network": {"output_tau_membrane": "0 ms"}}, "network.output_tau_membrane", "0."),
        ({"network": {"v_reset": 2.0}}, "network.v_reset", "2.0"),
        ({"development": {"initial_pruning_rate": 1.5}}, "development.initial_pruning_rate", "1.5"),
        ({"development": {"max_pruning_rate": -0.1}}, "development.max_pruning_rate", "-0.1"),
        ({"development": {"steps_per_epoch": 0}}, "development.steps_per_epoch", "0"),
        ({"development": {"steps_per_epoch": -4.5}}, "development.steps_per_epoch", "-4.5"),
        ({"development": {"consecutive_steps": "18"}}, "development.consecutive_steps", "'18'"),
        ({"network": {"tau_membrane": "20"}}, "network.tau_membrane", "'20'"),
        ({"network": {"tau_membrane": 20}}, "network.tau_membrane", "20"),
        ({"network": {"dt": "1 mV"}}, "network.dt", "'1 mV'"),
        ({"network": {"n_steps": 0}}, "network.n_steps", "0"),
        ({"network": {"hidden_sizes": "800"}}, "network.hidden_sizes", "'800'"),
        ({"learning": {"surrogate": "bogus"}}, "learning.surrogate", "'bogus'"),
        ({"learning": {"loss": "mse"}}, "learning.loss", "'mse'"),
        ({"learning": {"learning_rate": -1.0}}, "learning.learning_rate", "-1.0"),
        ({"learning": {"batch_size": 0}}, "learning.batch_size", "0"),
        ({"learning": {"epochs": 1.5}}, "learning.epochs", "1.5"),
        ({"learning": {"lr_schedule": "linear"}}, "learning.lr_schedule", "'linear'"),
        ({"learning": {"lr_decay_epochs": 0}}, "learning.lr_decay_epochs", "0"),
        ({"development": {"development_end_steps": 10}}, "development.development_end_steps", "10"),
        ({"learning": {"min_learning_rate": 0.01}}, "learning.min_learning_rate", "0.01"),
        ({"learning": {"min_learning_rate": "low"}}, "learning.min_learning_rate", "'low'"),
        ({"simulation": {"codegen_target": "cuda"}}, "simulation.codegen_target", "'cuda'"),
        ({"data": {"train_subset": -3}}, "data.train_subset", "-3"),
        ({"run": {"seed": "zero"}}, "run.seed", "'zero'"),
    ],
)
def test_invalid_values_name_the_field_and_the_value(raw, field, received):
    with pytest.raises(ConfigError) as caught:
        ExperimentConfig.from_dict(raw)
    message = str(caught.value)
    assert field in message, f"the error names the field: {message}"
    assert received in message, f"the error shows the value received: {message}"
    assert "expected" in message, f"the error says what was expected: {message}"


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"network": {"tau": "20 ms"}}, "network: unknown key(s) ['tau']"),
        ({"learning": {"lr": 0.1}}, "learning: unknown key(s) ['lr']"),
        ({"development": {"speed": 2}}, "development: unknown key(s) ['speed']"),
        ({"model": {}}, "unknown section(s) ['model']"),
    ],
)
def test_unknown_keys_and_sections_are_named(raw, needle):
    with pytest.raises(ConfigError) as caught:
        ExperimentConfig.from_dict(raw)
    assert needle in str(caught.value)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[network\nhidden_sizes = [")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_config(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[network]\nrefractory = "2"\n')
    with pytest.raises(ConfigError, match=r"wrong.toml: network.refractory"):
        load_config(wrong)


def test_overrides_are_parsed_as_toml_values():
    config = load_config(None).with_overrides(
        ["network.hidden_sizes=[100]", "learning.learning_rate=5e-4", 'network.dt="2 ms"',
         "development.enabled=true"]
    )
    assert config.network.hidden_sizes == (100,)
    assert config.learning.learning_rate == 5e-4
    assert config.network_parameters().dt == 2 * ms
    assert config.development_enabled
    with pytest.raises(ConfigError, match="expected section.key=value"):
        config.with_overrides(["learning_rate=1"])


def test_shipped_configurations_are_valid():
    from pathlib import Path

    shipped = sorted((Path(__file__).resolve().parents[1] / "examples" / "configs").glob("*.toml"))
    assert shipped, "the main job's configuration ships with the examples"
    for path in shipped:
        config = load_config(path)
        network = config.to_dict()["network"]
        assert network.get("hidden_sizes") or network.get("layers"), f"{path.name} builds a network"
        echo = config.to_dict()
        assert json.loads(json.dumps(echo)) == echo, (
            f"{path.name}: the echo equals its own JSON reading (no tuples), so resuming compares equal")
    main_job = load_config(shipped[0].parent / "embedded.toml")
    assert main_job.development_enabled and main_job.run.baseline, (
        "the main job runs SD-SNN beside its dense baseline")


@pytest.mark.parametrize("override, size", [("network.hidden_sizes=[10000000]", "hidden_sizes=[10000000]"),
                                            ("network.n_steps=100000000", "n_steps=100000000")])
def test_a_run_too_large_for_the_machine_is_refused_with_an_estimate(override, size):
    from sdsnn_bio.config import ExperimentConfig

    with pytest.raises(ConfigError, match=rf"{re.escape(size)}.*would need about [\d.e+]+ GiB of memory"):
        ExperimentConfig.from_dict({}).with_overrides([override])


def test_the_memory_estimate_counts_the_standalone_batch_when_the_evaluation_runs_standalone():
    """Under the C++ standalone device a batch of ``simulation.standalone_batch`` samples is recorded
    at once (the kernel's check still runs in pieces of ``evaluation_batch``); on the runtime device
    the standalone batch is never used and not counted."""
    from sdsnn_bio.config import MEMORY_BYTES_PER_STANDALONE_UNIT_SECOND, ExperimentConfig

    standalone = ExperimentConfig.from_dict({"network": {"n_steps": 30, "dt": "10 ms"},
                                             "simulation": {"codegen_target": "cython"}})
    assert standalone.simulation.device_in_force() == "cpp_standalone"
    small = standalone.with_overrides(["simulation.standalone_batch=1000"]).memory_estimate()
    large = standalone.with_overrides(["simulation.standalone_batch=2000"]).memory_estimate()
    unit_steps = 30 * (2312 + 800 + 10)
    unit_seconds = 0.3 * (2312 + 800 + 10)  # spikes, hence memory, follow the simulated time
    assert small["standalone"] == int(MEMORY_BYTES_PER_STANDALONE_UNIT_SECOND * 1000 * unit_seconds) > 0
    assert large["standalone"] == int(MEMORY_BYTES_PER_STANDALONE_UNIT_SECOND * 2000 * unit_seconds)
    finer = standalone.with_overrides(["simulation.standalone_batch=1000", "network.n_steps=300", 'network.dt="1 ms"'])
    assert finer.memory_estimate()["standalone"] == small["standalone"], "the same 300 ms in finer steps"
    assert large["evaluation"] == small["evaluation"] == 8 * 100 * unit_steps, "evaluation_batch pieces"
    runtime = standalone.with_overrides(["simulation.evaluation_device=runtime", "simulation.standalone_batch=2000"])
    assert "standalone" not in runtime.memory_estimate()
    with pytest.raises(ConfigError, match=r"simulation.standalone_batch=100000000\): the run would need about "
                                          r"[\d.e+]+ GiB .* smaller simulation.standalone_batch"):
        standalone.with_overrides(["simulation.standalone_batch=100000000"])
    runtime.with_overrides(["simulation.standalone_batch=100000000"])  # not used, not counted: accepted
    capped = standalone.with_overrides(["simulation.standalone_batch=2000", "data.test_subset=500"])
    assert capped.memory_estimate()["standalone"] == int(MEMORY_BYTES_PER_STANDALONE_UNIT_SECOND * 500 * unit_seconds), \
        "no run holds more recordings than the test split"


def test_the_main_job_fits_in_memory_estimate():
    from pathlib import Path

    from sdsnn_bio.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "examples" / "configs" / "embedded.toml")
    estimate = sum(config.memory_estimate().values())
    # 4.0 GiB, of which 3.6 the standalone evaluation's batch of 5000 recordings held at once (measured).
    assert 2**26 < estimate < 5 * 2**30, "the main job's estimate is real (not 0) and fits a laptop"
    longer = config.with_overrides(["network.n_steps=300", 'network.dt="1 ms"'])
    per_step = ("training", "evaluation")  # the standalone batch follows the simulated time: 300 ms either way
    assert sum(longer.memory_estimate()[k] for k in per_step) > 2 * sum(config.memory_estimate()[k] for k in per_step), \
        "300 steps need more than 30"
    assert longer.memory_estimate()["standalone"] == config.memory_estimate()["standalone"]


def test_an_sdsnn_run_whose_pruning_would_never_start_is_refused_before_training():
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[1] / "examples" / "configs" / "embedded.toml")
    with pytest.raises(ConfigError, match=r"neuron pruning would start at development step 18 \(2K with "
                                          r"development.consecutive_steps = 9\), but 4 epochs x 4.5 steps "
                                          r"per epoch give only 18 steps.*at least 5 epochs"):
        config.with_overrides(["learning.epochs=4"])
    assert config.with_overrides(["learning.epochs=5"]).learning.epochs == 5, "5 epochs reach step 18"
    assert config.with_overrides(["learning.epochs=4", "development.pruning=false"]), "off on purpose"
    assert config.with_overrides(["learning.epochs=4", "development.enabled=false"]), "dense: no check"
    with pytest.raises(ConfigError, match=r"step 36 .*consecutive_steps = 18.*at least 9 epochs"):
        config.with_overrides(["development.consecutive_steps=18", "learning.epochs=8"])


def test_figures_section_is_validated_and_not_part_of_a_runs_identity():
    from sdsnn_bio.experiment import configuration_changes

    with pytest.raises(ConfigError, match=r"figures.spine_synapses: expected positions"):
        ExperimentConfig.from_dict({"figures": {"spine_synapses": [-1]}})
    with pytest.raises(ConfigError, match=r"figures.spine_monitor: expected the name of a \[\[monitor\]\]"):
        ExperimentConfig.from_dict({"figures": {"spine_monitor": "nope"}})
    named = ExperimentConfig.from_dict({"monitor": [{"source": "input_to_hidden_1", "variables": ["w"]}],
                                        "figures": {"spine_monitor": "input_to_hidden_1_monitor"}})
    assert named.figures.spine_monitor == "input_to_hidden_1_monitor"
    plain = ExperimentConfig.from_dict({})
    other = plain.with_overrides(["figures.spine_projection=hidden_1_to_output", "figures.spine_synapses=[1]"])
    assert configuration_changes(plain.to_dict(), other.to_dict()) == [], "a figure choice never blocks --resume"
    assert json.loads(json.dumps(other.to_dict())) == other.to_dict(), "the echo survives JSON"


def test_network_layers_build_a_convolutional_network_from_the_dataset_shape():
    # Evaluated on the runtime device: 300 steps of this network in standalone batches of 5000 would
    # need about 360 GiB (memory_estimate), and the configuration would be refused.
    config = ExperimentConfig.from_dict({"network": {"layers": ["15C3", "AP2", "40C3", "AP2", "300FC"]},
                                         "simulation": {"evaluation_device": "runtime"}})
    params = config.network_parameters()
    assert params.input_shape == (2, 34, 34) and params.n_input == 2312
    assert params.hidden_sizes == (15 * 34 * 34, 40 * 17 * 17, 300)
    echo = config.to_dict()["network"]
    assert echo["layers"] == ["15C3", "AP2", "40C3", "AP2", "300FC"] and "hidden_sizes" not in echo
    assert ExperimentConfig.from_dict(config.to_dict()) == config, "the echo reads back"
    assert "layers" not in ExperimentConfig.from_dict({}).to_dict()["network"], "unchanged echo"
    mnist = ExperimentConfig.from_dict({"data": {"dataset": "mnist"}, "network": {"layers": ["4C5P0", "10FC"]}})
    assert mnist.network_parameters().input_shape == (1, 28, 28)
    assert mnist.network_parameters().hidden_sizes == (4 * 24 * 24, 10)


@pytest.mark.parametrize("network, message", [
    ({"layers": ["15C3"], "hidden_sizes": [800]}, "network: write either layers"),
    ({"layers": ["15Q3"]}, "network.layers[0] = '15Q3': expected"),
    ({"layers": ["300FC", "AP2"]}, "pooling needs channels"),
    ({"layers": ["AP64", "3C3"]}, "(input 34x34x2 of data.dataset = 'nmnist')"),
    ({"layers": "15C3"}, "network.layers: expected a list"),
])
def test_network_layers_errors_name_the_entry(network, message):
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict({"network": network})
    assert message in str(info.value)


def test_configuration_changes_compare_values_as_json():
    from sdsnn_bio.experiment import configuration_changes

    live = {"development": {"undeveloped_layers": ("hidden_1",)}, "learning": {"epochs": 8}}
    read_back = json.loads(json.dumps(live))
    assert configuration_changes(read_back, live) == [], "a tuple and its JSON list are the same setting"
    changed = {"development": {"undeveloped_layers": ("hidden_2",)}, "learning": {"epochs": 8}}
    assert configuration_changes(read_back, changed) == ["development.undeveloped_layers"]
