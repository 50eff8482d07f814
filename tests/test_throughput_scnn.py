"""benchmarks/throughput_scnn.py: the snnTorch network is the sdsnn_bio SCNN, and the summary's arithmetic.

The comparison tests need torch and snnTorch (skipped cleanly without them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sdsnn_bio.model import NetworkParameters, NeuronParameters, initial_structure

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput_scnn.py"


@pytest.fixture(scope="module")
def bench():
    """The benchmark script as a module."""
    spec = importlib.util.spec_from_file_location("throughput_scnn", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_case(rng):
    """A small SCNN of the preset's kind (every projection type: conv, pooled conv, pooled dense, dense)."""
    from brian2 import ms

    params = NetworkParameters.from_layers(
        ["3C3", "AP2", "4C3", "AP2", "12FC"], (2, 8, 8), 4, n_steps=6, weight_init_gain=6.0,
        hidden=NeuronParameters(tau_membrane=0.621334934 * ms, v_threshold=0.5, v_reset=0.0, refractory=0 * ms),
        output=NeuronParameters(tau_membrane=0.621334934 * ms, v_threshold=0.5, v_reset=0.0, refractory=0 * ms),
        dt=1 * ms,
    )
    return params, initial_structure(params, rng)


def test_preset_network_is_built_equal_in_snntorch(bench):
    """The released N-MNIST SCNN: same layers, parameter shapes and counts, and LIF constants."""
    pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    config, params = bench.preset()
    structure = initial_structure(params, np.random.default_rng(0))
    net = bench.torch_network(structure, params, config.learning.surrogate_scale)
    shapes = [tuple(layer.weight.shape) for layer in net.projections]
    assert shapes == [(15, 2, 3, 3), (40, 15, 3, 3), (300, 2560), (10, 300)]
    counts = [layer.weight.numel() for layer in net.projections]
    assert counts == [p.weight.size for p in structure.projections] == [270, 5400, 768000, 3000]
    assert [pool for pool, _ in net.pools] == [1, 2, 2, None]
    dynamics = params.layer_dynamics()
    for neuron, projection in zip(net.neurons, structure.projections):
        assert float(neuron.beta) == pytest.approx(dynamics[projection.target].decay)
        assert float(neuron.threshold) == pytest.approx(dynamics[projection.target].threshold)
    assert dynamics["hidden_1"].decay == pytest.approx(0.2)


def test_snntorch_layers_compute_the_sdsnn_currents(bench, rng):
    """With the copied weights, every torch projection (pooling included) gives the currents of
    sdsnn_bio's geometry (or weight matrix) for the same presynaptic spikes, neuron for neuron."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    params, structure = small_case(rng)
    net = bench.torch_network(structure, params, dtype=torch.float64)
    source_shape = (2, 8, 8)
    for layer, (pool, flatten), projection in zip(net.projections, net.pools, structure.projections):
        n_source = structure.population(projection.source).size
        spikes = rng.random((5, n_source)) < 0.3
        if projection.geometry is None:
            expected = spikes @ projection.weight
            x = torch.as_tensor(spikes, dtype=torch.float64)
        else:
            expected = projection.geometry.forward(spikes, projection.weight)
            source_shape = projection.geometry.source_shape
            x = torch.as_tensor(spikes.reshape(5, *source_shape), dtype=torch.float64)
            if pool and pool > 1:
                x = torch.nn.functional.avg_pool2d(x, pool)
            if flatten:
                x = x.flatten(1)
        with torch.no_grad():
            got = layer(x).reshape(5, -1).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_snntorch_training_step_runs_on_the_benchmark_batches(bench, rng):
    """One timed repeat of each framework on two small batches: positive rates, spike counts per
    layer (the worker's output), on the same batches."""
    pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    config, _ = bench.preset()
    params, _ = small_case(rng)
    samples = [(np.array([0, 5, 70]), np.array([0, 1, 3])), (np.array([9, 64]), np.array([2, 2]))]
    batches = [(samples, np.array([1, 3]))] * 2
    for run in (bench.run_sdsnn, bench.run_snntorch):
        rates, info = run(config, params, batches, repeats=1)
        assert len(rates) == 1 and rates[0] > 0
        assert set(info["spikes_per_sample"]) == {"hidden_1", "hidden_2", "hidden_3", "output"}


def test_summary_takes_medians_worst_cases_and_memory(bench):
    """Median and spread over every repeat of every round; memory: the highest peak and growth."""
    runs = {
        "sdsnn_bio": [
            {"samples_per_second": [4.0, 6.0], "rss_before_mib": 300.0, "training_peak_mib": 900.0,
             "others_cores": 0.5, "spikes_per_sample": {"output": 3.0}},
            {"samples_per_second": [5.0], "rss_before_mib": 310.0, "training_peak_mib": 950.0,
             "others_cores": 1.5, "spikes_per_sample": {"output": 3.0}},
        ],
        "snntorch": [],
    }
    rows = bench.summarise(runs)
    assert set(rows) == {"sdsnn_bio"}
    row = rows["sdsnn_bio"]
    assert (row["median"], row["min"], row["max"]) == (5.0, 4.0, 6.0)
    assert (row["rss_before"], row["peak"], row["extra"], row["others"]) == (310.0, 950.0, 640.0, 1.5)


def test_timeout_turns_alternate_their_order_every_other_round(bench):
    assert bench.turns(["a", "b"], 2, ["28", "4"]) == [
        ("a", "28"), ("a", "4"), ("b", "28"), ("b", "4"), ("a", "4"), ("a", "28"), ("b", "4"), ("b", "28")]
    assert bench.turns(["a", "b"], 2) == [("a", None), ("b", None), ("a", None), ("b", None)]
    with pytest.raises(ValueError, match="--rounds"):
        bench.turns(["a"], 0)


def _worker_result(framework, rates):
    import json

    return json.dumps({"framework": framework, "samples_per_second": rates, "rss_before_mib": 300.0,
                       "training_peak_mib": 900.0, "spikes_per_sample": {"output": 3.0}, "backend": "x"})


def test_main_compares_openblas_thread_timeouts_in_the_same_environment_otherwise(bench, capsys, monkeypatch):
    """Each worker gets the value of its turn and nothing else differs; rows per value and the ratio."""
    import subprocess

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    speeds = {("sdsnn_bio", "28"): [100.0, 110.0], ("sdsnn_bio", "4"): [120.0, 130.0],
              ("snntorch", "28"): [80.0, 80.0], ("snntorch", "4"): [80.0, 80.0]}
    seen = []

    def fake_run(command, environment):
        framework = command[command.index("--worker") + 1]
        value = environment["OPENBLAS_THREAD_TIMEOUT"]
        seen.append((framework, value, {k: v for k, v in environment.items() if k != "OPENBLAS_THREAD_TIMEOUT"}))
        return subprocess.CompletedProcess(command, 0, _worker_result(framework, speeds[(framework, value)]), ""), 0.0

    bench.main(["--frameworks", "sdsnn_bio", "snntorch", "--rounds", "2", "--openblas-thread-timeouts", "28", "4"],
               run=fake_run)
    assert [(f, v) for f, v, _ in seen] == bench.turns(["sdsnn_bio", "snntorch"], 2, ["28", "4"])
    assert all(rest == seen[0][2] for _, _, rest in seen), "only OPENBLAS_THREAD_TIMEOUT differs between turns"
    out = capsys.readouterr().out
    assert "OPENBLAS_THREAD_TIMEOUT 28 and 4 in alternating order" in out
    assert "sdsnn_bio timeout=4   125.00 (120.00-130.00)" in out
    assert "sdsnn_bio: OPENBLAS_THREAD_TIMEOUT=4 / =28 throughput = 1.19x" in out
    assert "snntorch: OPENBLAS_THREAD_TIMEOUT=4 / =28 throughput = 1.00x" in out
    assert "sdsnn_bio timeout=4 / snntorch timeout=4 throughput = 1.56x" in out


@pytest.mark.parametrize("users_value, expected", [(None, "4"), ("28", "28")])
def test_main_gives_every_worker_the_short_timeout_unless_the_caller_set_one(
        bench, capsys, monkeypatch, users_value, expected):
    import subprocess

    if users_value is None:
        monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", users_value)
    seen = []

    def fake_run(command, environment):
        framework = command[command.index("--worker") + 1]
        seen.append(environment["OPENBLAS_THREAD_TIMEOUT"])
        return subprocess.CompletedProcess(command, 0, _worker_result(framework, [10.0]), ""), 0.0

    bench.main(["--frameworks", "sdsnn_bio", "snntorch", "--rounds", "1"], run=fake_run)
    assert seen == [expected, expected]
    assert f"OPENBLAS_THREAD_TIMEOUT={expected}; load average" in capsys.readouterr().out


def test_timeout_values_outside_openblas_range_are_refused(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--openblas-thread-timeouts", "28", "31"], run=None)
    assert "expected an OPENBLAS_THREAD_TIMEOUT from 0 to 30, got '31'" in capsys.readouterr().err
