"""benchmarks/throughput.py: turn-taking, medians and worst cases, the Markdown table, and each peer."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"


def _load():
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(framework, rates, peak=500.0, before=300.0, hidden=0.02, backend="x 1.0"):
    return {"framework": framework, "samples_per_second": rates, "rss_before_mib": before,
            "training_peak_mib": peak, "hidden_spikes_per_neuron_step": hidden, "backend": backend}


def test_frameworks_take_turns_round_after_round():
    """Every round runs every framework once, in the same order."""
    throughput = _load()
    assert throughput.turns(["a", "b", "c"], 2) == ["a", "b", "c", "a", "b", "c"]
    with pytest.raises(ValueError, match="--rounds"):
        throughput.turns(["a"], 0)


def test_summary_pools_the_repeats_of_every_round():
    """Median, slowest and fastest repeat over all rounds; memory is the highest round's."""
    throughput = _load()
    row = throughput.summarise([{**_result("p", [10.0, 30.0], peak=600.0), "others_cores": 0.5},
                                {**_result("p", [20.0, 50.0], peak=550.0, before=320.0), "others_cores": 0.2}])
    assert (row["median"], row["min"], row["max"], row["repeats"]) == (25.0, 10.0, 50.0, 4)
    assert (row["peak"], row["rss_before"], row["extra"], row["others"]) == (600.0, 320.0, 300.0, 0.5)


def test_worst_case_ratio_is_our_slowest_over_their_fastest():
    throughput = _load()
    ratio = throughput.compare({"median": 300.0, "min": 200.0, "max": 400.0, "peak": 500.0},
                               {"median": 100.0, "min": 50.0, "max": 125.0, "peak": 1000.0})
    assert ratio == {"median": 3.0, "worst": 1.6, "peak": 0.5}


def test_verdict_names_the_fastest_peer_and_the_shortfall():
    """The target is judged against the fastest peer, and a miss says by what factor."""
    throughput = _load()
    row = {"min": 1.0, "max": 1.0, "peak": 1.0}
    rows = {(30, "sdsnn_bio"): {**row, "median": 200.0}, (30, "snntorch"): {**row, "median": 50.0},
            (30, "spyx"): {**row, "median": 100.0},
            (300, "sdsnn_bio"): {**row, "median": 120.0}, (300, "norse"): {**row, "median": 10.0}}
    assert throughput.fastest_peer(rows, 30) == "spyx"
    verdict = throughput.target_verdict(rows, 30, targets={30: 3.0})
    assert "fastest peer is spyx" in verdict and "2.00x" in verdict and "missed by a factor of 1.50" in verdict
    assert "target >= 10x met" in throughput.target_verdict(rows, 300, targets={300: 10.0})
    assert "cannot be judged" in throughput.target_verdict({(30, "sdsnn_bio"): rows[(30, "sdsnn_bio")]}, 30)


def test_main_writes_the_markdown_table_from_the_workers_results(tmp_path, capsys):
    """A full run with stand-in workers: rows in framework order, ratios to sdsnn_bio, a missing
    peer reported as not measured, the verdict, and the Markdown file."""
    throughput = _load()
    speeds = {"sdsnn_bio": [300.0, 330.0], "snntorch": [100.0, 110.0], "spyx": [150.0, 160.0]}
    commands = []

    def fake_run(command, environment):
        framework = command[command.index("--worker") + 1]
        commands.append(framework)
        if framework == "norse":
            return subprocess.CompletedProcess(command, 1, "", "ModuleNotFoundError: No module named 'norse'"), 0.0
        return subprocess.CompletedProcess(command, 0, json.dumps(_result(framework, speeds[framework])), ""), 0.1

    table = tmp_path / "table.md"
    assert throughput.main(["--steps", "30", "--rounds", "2", "--frameworks", "sdsnn_bio", "snntorch", "norse",
                            "spyx", "--markdown", str(table)], run=fake_run) == 0
    # two rounds of turns; a framework that failed is not started again
    assert commands == ["sdsnn_bio", "snntorch", "norse", "spyx", "sdsnn_bio", "snntorch", "spyx"]
    text = table.read_text()
    assert "| 30 | snntorch | x 1.0 | 105.0 | 100.0-110.0 | 3.00× | 2.73× |" in text
    assert "| 30 | spyx | x 1.0 | 155.0 | 150.0-160.0 | 2.03× | 1.88× |" in text
    assert "| 30 | norse | | not measured: ModuleNotFoundError: No module named 'norse' |" in text
    assert "fastest peer is spyx" in text and "missed by a factor of 1.48" in text
    assert "sdsnn_bio / snntorch throughput = 3.00x" in capsys.readouterr().out


@pytest.mark.parametrize("users_value, expected", [(None, "4"), ("28", "28")])
def test_every_worker_gets_the_same_openblas_thread_timeout_and_the_report_names_it(
        tmp_path, capsys, monkeypatch, users_value, expected):
    """OpenBLAS's short thread timeout (sdsnn_bio.blas) unless the caller set one, for sdsnn_bio and
    its peers alike, and written into the report's header."""
    throughput = _load()
    if users_value is None:
        monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", users_value)
    environments = {}

    def fake_run(command, environment):
        framework = command[command.index("--worker") + 1]
        environments[framework] = environment
        return subprocess.CompletedProcess(command, 0, json.dumps(_result(framework, [100.0, 110.0])), ""), 0.0

    table = tmp_path / "table.md"
    assert throughput.main(["--steps", "30", "--rounds", "1", "--frameworks", "sdsnn_bio", "snntorch",
                            "--markdown", str(table)], run=fake_run) == 0
    assert environments["sdsnn_bio"] == environments["snntorch"], "the peers run in the same environment"
    assert environments["sdsnn_bio"]["OPENBLAS_THREAD_TIMEOUT"] == expected
    assert f"OPENBLAS_THREAD_TIMEOUT={expected}" in capsys.readouterr().out
    assert f"OPENBLAS_THREAD_TIMEOUT={expected}" in table.read_text()


@pytest.mark.parametrize("peer", ["snntorch", "spikingjelly", "norse", "spyx"])
def test_each_peer_trains_on_the_benchmark_batches(peer):
    """Each peer (when installed) trains the 2312-512-10 network in a worker process: positive
    rates, a training peak above the memory before, and a hidden layer that fires but is not
    saturated."""
    pytest.importorskip(peer)
    done = subprocess.run([sys.executable, str(SCRIPT), "--worker", peer, "--steps", "30", "--batches", "3",
                           "--repeats", "1", "--batch-size", "4"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["framework"] == peer and len(result["samples_per_second"]) == 1
    assert result["samples_per_second"][0] > 0
    assert result["training_peak_mib"] is None or result["training_peak_mib"] > result["rss_before_mib"]
    assert 0.0 < result["hidden_spikes_per_neuron_step"] < 0.5
    assert peer in result["backend"]


def test_process_spread_finds_two_modes_of_fresh_processes():
    """Issue 15's observation (T=30: 2223-2332 vs 1453-1502 samples/s) is called two modes, with
    its groups; processes that differ by their repeats' noise are one mode."""
    throughput = _load()
    fast = [[2223.0, 2230.0], [2290.0, 2300.0], [2332.0, 2320.0]]
    slow = [[1453.0, 1460.0], [1502.0, 1490.0], [1470.0, 1480.0]]
    spread = throughput.process_spread(fast + slow)
    assert spread["bimodal"] is True
    assert spread["low"] == [1456.5, 1475.0, 1496.0] and spread["high"] == [2226.5, 2295.0, 2326.0]
    assert "TWO MODES: 3 processes at 1456.5-1496.0, 3 at 2226.5-2326.0" in spread["note"]
    steady = [[790.0, 770.0], [780.0, 800.0], [785.0, 775.0], [771.0, 795.0], [797.0, 781.0]]
    spread = throughput.process_spread(steady)
    assert spread["bimodal"] is False and "one mode" in spread["note"]
    assert (spread["min"], spread["max"], spread["median"]) == (780.0, 790.0, 783.0)


def test_process_spread_says_when_the_modes_are_two_blocks_in_time():
    """Two modes whose groups each ran in one block of consecutive processes are reported as
    such (a change of the machine's speed over time explains them as well); groups that
    alternate in time are counted in runs. Rates: the T=300 block of 3 Dec 2026, 06:19 UTC
    (docs/benchmarks.md), in the order the processes ran, and the same processes interleaved."""
    throughput = _load()
    ran = [[452.4, 455.9, 401.9], [424.1, 434.9, 424.8], [423.7, 456.2, 447.5],
           [373.8, 369.1, 366.0], [360.6, 350.5, 358.1], [364.1, 362.5, 372.6]]
    spread = throughput.process_spread(ran)
    assert spread["bimodal"] is True and spread["runs"] == 2
    assert "TWO MODES: 3 processes at 358.1-369.1, 3 at 424.8-452.4" in spread["note"]
    assert "all the fast processes ran first, then all the others" in spread["note"]
    slow_first = throughput.process_spread(ran[3:] + ran[:3])
    assert slow_first["runs"] == 2 and "all the slow processes ran first" in slow_first["note"]
    interleaved = throughput.process_spread([ran[0], ran[3], ran[1], ran[4], ran[2], ran[5]])
    assert interleaved["bimodal"] is True and interleaved["runs"] == 6
    assert "the two groups alternate in time (6 runs)" in interleaved["note"]
    assert "ran first" not in interleaved["note"]
    assert throughput.process_spread([[780.0], [790.0], [785.0], [781.0]])["bimodal"] is False


@pytest.mark.parametrize("rates, reason", [
    ([[100.0], [200.0], [100.0]], "too few processes"),          # 3 processes: not judged
    ([[100.0], [101.0], [102.0], [200.0]], "one mode"),            # a lone outlier is not a mode
    ([[100.0, 160.0], [110.0, 170.0], [150.0, 210.0], [155.0, 215.0]], "one mode"),  # gap within the noise
])
def test_process_spread_needs_enough_processes_and_a_gap_above_the_noise(rates, reason):
    throughput = _load()
    spread = throughput.process_spread(rates)
    assert spread["bimodal"] is not True and reason in spread["note"]
    with pytest.raises(ValueError, match="at least one timed repeat"):
        throughput.process_spread([[1.0], []])


def test_main_reports_the_spread_across_fresh_processes(tmp_path, capsys):
    """--processes N starts N fresh workers per framework and T, in turns, and reports each
    framework's process medians, their range and whether they form two modes (text and Markdown)."""
    throughput = _load()
    started = []
    speeds = iter([[1500.0, 1490.0], [2300.0, 2310.0], [1480.0, 1470.0], [2250.0, 2260.0]])

    def fake_run(command, environment):
        framework = command[command.index("--worker") + 1]
        started.append(framework)
        rates = next(speeds) if framework == "sdsnn_bio" else [100.0, 101.0]
        return subprocess.CompletedProcess(command, 0, json.dumps(_result(framework, rates)), ""), 0.0

    table = tmp_path / "table.md"
    assert throughput.main(["--steps", "30", "--processes", "4", "--frameworks", "sdsnn_bio", "snntorch",
                            "--markdown", str(table)], run=fake_run) == 0
    assert started == ["sdsnn_bio", "snntorch"] * 4
    out = capsys.readouterr().out
    assert "T=30 sdsnn_bio: 4 process(es): median 1875.0 samples/s, 1475.0-2305.0" in out
    assert "TWO MODES: 2 processes at 1475.0-1495.0, 2 at 2255.0-2305.0" in out
    assert "T=30 snntorch: 4 process(es)" in out and "one mode" in out
    text = table.read_text()
    assert ("| 30 | sdsnn_bio | 4 | 1875.0 | 1475.0-2305.0 | 44 % "
            "| **two**: 2 at 1475.0-1495.0, 2 at 2255.0-2305.0 (alternating in time, 4 runs) |") in text
    assert "the two groups alternate in time (4 runs)" in out
    assert "| 30 | snntorch | 4 | 100.5 | 100.5-100.5 | 0 % | one (largest gap 0.0) |" in text


def _process_time_rates(process, time, noise=None):
    """Rates (processes x rounds) = 400 samples/s x exp(process effect + time effect + noise)."""
    logs = np.asarray(process, dtype=float)[:, None] + np.asarray(time, dtype=float)[None, :]
    if noise is not None:
        logs = logs + noise
    return 400.0 * np.exp(logs)


def test_decomposition_finds_a_pure_process_effect():
    """Processes at fixed speeds, the same at every round: all of it is process, none time."""
    throughput = _load()
    result = throughput.process_time_decomposition(_process_time_rates([-0.1, 0.0, 0.1, 0.0], [0.0] * 5))
    assert result["process_sd"] == pytest.approx(0.0707107, abs=1e-6)  # sd of (-0.1, 0, 0.1, 0)
    assert result["time_sd"] == pytest.approx(0.0, abs=1e-12)
    assert result["residual_sd"] == pytest.approx(0.0, abs=1e-12)
    assert "follow the process, not time" in result["verdict"]
    assert result["process_medians"][2] == pytest.approx(400.0 * 2.718281828 ** 0.1)


def test_decomposition_finds_a_pure_time_effect():
    """Every process drifts together over the rounds: all of it is time, none process."""
    throughput = _load()
    result = throughput.process_time_decomposition(_process_time_rates([0.0] * 6, [0.1, -0.1, 0.2, -0.2]))
    assert result["time_sd"] == pytest.approx(0.1581139, abs=1e-6)  # sd of (0.1, -0.1, 0.2, -0.2)
    assert result["process_sd"] == pytest.approx(0.0, abs=1e-12)
    assert result["residual_sd"] == pytest.approx(0.0, abs=1e-12)
    assert result["verdict"].startswith("process effect 0.0 % vs time 15.8 %: speed differences follow time, "
                                        "not the process")
    assert list(result["round_medians"]) == pytest.approx(list(400.0 * np.exp([0.1, -0.1, 0.2, -0.2])))


def test_decomposition_separates_both_effects_and_the_residual():
    """Process and time effects added to each other (and to a centred residual) are recovered
    exactly; comparable sizes give 'both'; a process effect below the noise of its mean is said so."""
    throughput = _load()
    process, time = np.array([-0.03, 0.03, 0.0]), np.array([0.05, -0.05, 0.0, 0.0])
    residual = np.array([[0.02, -0.02, 0.0, 0.0], [-0.02, 0.02, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    result = throughput.process_time_decomposition(_process_time_rates(process, time, residual))
    assert result["process"] == pytest.approx(process, abs=1e-12)
    assert result["time"] == pytest.approx(time, abs=1e-12)
    assert result["residual_sd"] == pytest.approx(np.std(residual), abs=1e-12)
    assert result["process_noise"] == pytest.approx(np.std(residual) / 2.0, abs=1e-12)
    assert "follow both the process and time" in result["verdict"]
    assert "within twice that noise" not in result["verdict"]  # 2.4 % against 2 x 0.6 %
    noisy = throughput.process_time_decomposition(
        _process_time_rates([0.005, -0.005], [0.1, -0.1], np.array([[0.1, -0.1], [-0.1, 0.1]])))
    assert "follow time, not the process" in noisy["verdict"] and "within twice that noise" in noisy["verdict"]


@pytest.mark.parametrize("rates, message", [
    ([[400.0, 410.0]], "processes >= 2, rounds >= 2"),
    ([[400.0], [410.0]], "processes >= 2, rounds >= 2"),
    ([[400.0, 0.0], [410.0, 420.0]], "finite and positive"),
    ([[400.0, float("nan")], [410.0, 420.0]], "finite and positive"),
])
def test_decomposition_rejects_rates_it_cannot_split(rates, message):
    throughput = _load()
    with pytest.raises(ValueError, match=message):
        throughput.process_time_decomposition(rates)


class _FakeLive:
    """A live worker whose speed is its own factor times the machine's speed at the visit."""

    def __init__(self, factor, clock, visits):
        self.factor, self.clock, self.visits, self.closed = factor, clock, visits, False

    def visit(self):
        self.visits.append(self)
        return 400.0 * self.factor * self.clock()

    def close(self):
        self.closed = True


def test_round_robin_rotates_the_start_and_main_reports_the_decomposition(capsys):
    """--live-processes 3 --visits 4: the workers are started once and visited in turn with the
    starting process rotating; the machine halves its speed after 6 visits, which the report
    assigns to time, not to the processes, and every worker is closed."""
    throughput = _load()
    order, started = [], []

    def clock():
        return 1.0 if len(order) <= 6 else 0.5

    def start(command, environment):
        assert "--live-worker" in command and command[command.index("--steps") + 1] == "300"
        assert environment["OMP_NUM_THREADS"] == "2"
        started.append(_FakeLive(1.0, clock, order))
        return started[-1]

    assert throughput.main(["--live-processes", "3", "--visits", "4", "--steps", "300", "--batches", "3"],
                           start_live=start) == 0
    assert len(started) == 3 and all(worker.closed for worker in started)
    assert [started.index(worker) for worker in order] == [0, 1, 2, 1, 2, 0, 2, 0, 1, 0, 1, 2]
    out = capsys.readouterr().out
    assert "  process 0:  400.0  400.0  200.0  200.0   median  300.0" in out
    assert "process effect 0.0 % vs time 34.7 %: speed differences follow time, not the process" in out


@pytest.mark.parametrize("argv, message", [
    (["--live-processes", "4"], "--live-processes and --visits go together"),
    (["--visits", "4"], "--live-processes and --visits go together"),
    (["--live-processes", "1", "--visits", "4"], "--live-processes must be at least 2"),
    (["--live-processes", "4", "--visits", "1"], "--visits must be at least 2"),
    (["--live-processes", "4", "--visits", "4", "--batches", "0"], "--batches, --batch-size and --threads"),
    (["--live-processes", "4", "--visits", "4", "--steps", "30", "300"], "give one --steps value"),
    (["--live-processes", "4", "--visits", "4", "--steps", "30", "--frameworks", "snntorch"], "sdsnn_bio only"),
    (["--live-processes", "4", "--visits", "4", "--steps", "30", "--markdown", "/no/such/folder/t.md"],
     "does not exist"),
])
def test_live_arguments_are_checked_before_any_process_starts(argv, message, capsys):
    throughput = _load()

    def start(command, environment):
        raise AssertionError("no worker may start on bad arguments")

    with pytest.raises(SystemExit):
        throughput.main(argv, start_live=start)
    assert message in capsys.readouterr().err


def test_live_worker_answers_visits_until_quit(monkeypatch):
    """The worker warms up, then answers each 'visit' with one rate and stops at 'quit'; an
    unknown command is an error naming it."""
    import io

    throughput = _load()
    trained = []
    monkeypatch.setattr(throughput, "load_batches", lambda n_steps, n_batches, batch_size: [([], [0] * 4)] * 2)
    monkeypatch.setattr(throughput, "sdsnn_training_step",
                        lambda n_steps, threads: (lambda samples, labels: trained.append(1), None))
    out = io.StringIO()
    throughput.live_worker(30, 2, 4, 1, commands=io.StringIO("visit\nvisit\nquit\nvisit\n"), out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert "ready" in lines[0] and len(lines) == 3 and all(line["samples_per_second"] > 0 for line in lines[1:])
    assert len(trained) == throughput.WARMUP + 2 * (1 + 2)
    with pytest.raises(ValueError, match="unknown command 'go'"):
        throughput.live_worker(30, 2, 4, 1, commands=io.StringIO("go\n"), out=io.StringIO())
