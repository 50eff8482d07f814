"""An emulated event camera: grayscale images turned into N-MNIST-style saccade recordings.

N-MNIST (Orchard, Jayawant, Cohen & Thakor 2015, *Front. Neurosci.* 9:437) was recorded by an ATIS
event camera on a pan-tilt unit that made three ~100 ms saccades in front of a monitor showing an
MNIST digit. This module reproduces that recording with a dynamic-vision-sensor pixel model
(Lichtsteiner, Posch & Delbruck 2008, *IEEE JSSC* 43(2); the simulation scheme of v2e, Hu, Liu &
Delbruck 2021) so that any grayscale image, e.g. the 8x8 scikit-learn digits, becomes a recording in
the N-MNIST format.

Scene
    The image is scaled to ``[0, 1]``, resized (bilinear, aspect ratio kept) so that its longer side
    is ``image_size`` pixels, and centred in an ``image_size`` x ``image_size`` box whose top-left
    corner sits at ``start_position + d(t)`` on the sensor. The relative luminance seen by sensor
    pixel ``(x, y)`` is ``L(x, y, t) = L_b + (L_s - L_b) * I(x - x_0 - d_x(t), y - y_0 - d_y(t))``
    with ``I`` sampled bilinearly (zero outside the image). By default the strokes are dark
    (``L_s = L_dark``) on a bright background (``L_b = 1``): in the real N-MNIST recording the ON
    events trail the moving strokes (see ``EmulatorParameters.dark_strokes``).
Saccades
    The displacement ``d(t)`` follows the N-MNIST triangle ``(3.5, 7) -> (3.5, -7) -> (-7, 0)``
    pixels (the motion removed by tonic's ``stabilize``, ported from Orchard's code), one saccade
    per ``saccade_duration``, with a bell-shaped speed profile: during saccade ``i`` the fraction
    travelled is ``s(tau) = tau - sin(2 pi tau) / (2 pi)``, ``tau = (t - i T_s) / T_s``.
Pixels
    Each pixel compares its log luminance ``l = ln L`` with a reference ``r`` (initially ``l(0)``):
    it emits an ON event when ``l - r >= theta_on`` and an OFF event when ``l - r <= -theta_off``,
    then resets ``r`` to the log luminance at the event time. Between simulation steps ``l`` is
    interpolated linearly, so an event is stamped at the threshold crossing; after an event the pixel
    is blind for ``refractory`` (an event pending at the end of it fires then, and ``r`` is reset to
    the level at that time). Each pixel has its own thresholds,
    ``theta_pixel = theta * exp(sigma * epsilon)`` with ``epsilon ~ N(0, 1)`` (mismatch).
    Background activity adds Poisson events at ``noise_rate`` per pixel, uniformly in time, ON with
    probability ``noise_on_fraction``; noise events do not reset the reference.

Timestamps are integer microseconds, like the N-MNIST files. The emulator is NumPy-only (no Brian2),
so its parameters are plain numbers with their unit in their name.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .format import EVENT_DTYPE

__all__ = [
    "EMULATOR_VERSION",
    "EmulatorParameters",
    "prepare_image",
    "saccade_displacement",
    "emulate_saccades",
    "emulate_batch",
]

#: Bumped whenever the emulator's output for given parameters changes (invalidates caches).
EMULATOR_VERSION = 1

#: Largest timestamp of the N-MNIST format without overflow markers: 23 bits, in microseconds.
_MAX_TIMESTAMP_US = 2**23 - 1


def _finite_number(name: str, value, *, low=-math.inf, high=math.inf, low_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"EmulatorParameters.{name}: expected a number, got {value!r}")
    value = float(value)
    below = value <= low if low_open else value < low
    if not math.isfinite(value) or below or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(
            f"EmulatorParameters.{name}: expected a finite value in {bracket}{low}, {high}], got {value!r}"
        )
    return value


def _pair(name: str, value) -> tuple[float, float]:
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"EmulatorParameters.{name}: expected a pair of numbers, got {value!r}") from None
    if len(items) != 2:
        raise ValueError(f"EmulatorParameters.{name}: expected a pair of numbers, got {value!r}")
    return tuple(_finite_number(f"{name}[{k}]", v) for k, v in enumerate(items))  # type: ignore[return-value]


@dataclass(frozen=True)
class EmulatorParameters:
    """Parameters of the emulated event camera (see the module docstring for the model).

    Parameters
    ----------
    sensor_size : tuple of int
        Sensor width and height in pixels, ``(34, 34)`` for N-MNIST.
    image_size : int
        Longer side of the resized image, in sensor pixels (MNIST digits sit in a 20-pixel box).
    start_position : tuple of float
        ``(x, y)`` of the image box's top-left corner at ``t = 0``, in pixels.
    saccades : tuple of (float, float)
        Displacement ``(dx, dy)`` of the image during each saccade, in pixels.
    saccade_duration_ms : float
        Duration of one saccade, in ms (the recording lasts ``len(saccades)`` times this).
    time_step_ms : float
        Simulation step, in ms; luminance is interpolated linearly between steps. Must not exceed
        ``refractory_ms`` (then a pixel emits at most one event per step).
    dark_luminance : float
        Luminance of the background relative to the brightest stroke, in (0, 1); the largest
        contrast in the scene is ``-ln(dark_luminance)`` log units.
    dark_strokes : bool
        If true (default) the strokes have luminance ``dark_luminance`` on a background of 1, as the
        real N-MNIST recordings appear to the camera (ON events trail the moving strokes: measured on
        the real sample, whose ON events lie behind the event centroid's motion in all three
        saccades); if false, bright strokes on a dark background.
    threshold_on, threshold_off : float
        Contrast thresholds, in log-luminance units (natural log).
    threshold_mismatch : float
        Standard deviation ``sigma`` of the per-pixel log threshold (``theta * exp(sigma * N(0, 1))``).
    refractory_ms : float
        Time after an event during which a pixel cannot emit, in ms.
    noise_rate_hz : float
        Background-activity rate per pixel, in Hz. The real sample has 57 events in the 466 pixels
        the digit never reaches during its 311 ms: 0.39 Hz.
    noise_on_fraction : float
        Probability that a background event is ON (53 of those 57 real events are ON: 0.93).
    """

    sensor_size: tuple = (34, 34)
    image_size: int = 20
    start_position: tuple = (3.5, 4.5)
    saccades: tuple = ((3.5, 7.0), (3.5, -7.0), (-7.0, 0.0))
    saccade_duration_ms: float = 100.0
    time_step_ms: float = 1.0
    dark_luminance: float = 0.1
    dark_strokes: bool = True
    threshold_on: float = 0.26
    threshold_off: float = 0.25
    threshold_mismatch: float = 0.1
    refractory_ms: float = 1.5
    noise_rate_hz: float = 0.4
    noise_on_fraction: float = 0.9

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            size = tuple(self.sensor_size)
        except TypeError:
            size = ()
        if len(size) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 < v <= 255 for v in size
        ):
            raise ValueError(
                "EmulatorParameters.sensor_size: expected (width, height), two integers in [1, 255], "
                f"got {self.sensor_size!r}"
            )
        set_(self, "sensor_size", tuple(int(v) for v in size))
        if (
            isinstance(self.image_size, bool)
            or not isinstance(self.image_size, (int, np.integer))
            or self.image_size < 1
        ):
            raise ValueError(
                f"EmulatorParameters.image_size: expected an integer >= 1 (pixels), got {self.image_size!r}"
            )
        set_(self, "image_size", int(self.image_size))
        set_(self, "start_position", _pair("start_position", self.start_position))
        try:
            saccades = tuple(self.saccades)
        except TypeError:
            saccades = ()
        if not saccades:
            raise ValueError(
                f"EmulatorParameters.saccades: expected at least one (dx, dy) pair, got {self.saccades!r}"
            )
        set_(self, "saccades", tuple(_pair(f"saccades[{k}]", s) for k, s in enumerate(saccades)))
        for name in ("saccade_duration_ms", "time_step_ms", "refractory_ms"):
            set_(self, name, _finite_number(name, getattr(self, name), low=0.0, low_open=True))
        set_(self, "dark_luminance", _finite_number("dark_luminance", self.dark_luminance,
                                                    low=0.0, high=1.0, low_open=True))
        if self.dark_luminance >= 1.0:
            raise ValueError(
                f"EmulatorParameters.dark_luminance: expected a value in (0, 1), got {self.dark_luminance!r}"
            )
        for name in ("threshold_on", "threshold_off"):
            set_(self, name, _finite_number(name, getattr(self, name), low=0.0, low_open=True))
        set_(self, "threshold_mismatch", _finite_number("threshold_mismatch", self.threshold_mismatch,
                                                        low=0.0, high=2.0))
        set_(self, "noise_rate_hz", _finite_number("noise_rate_hz", self.noise_rate_hz, low=0.0))
        set_(self, "noise_on_fraction", _finite_number("noise_on_fraction", self.noise_on_fraction,
                                                       low=0.0, high=1.0))
        if not isinstance(self.dark_strokes, (bool, np.bool_)):
            raise ValueError(f"EmulatorParameters.dark_strokes: expected True or False, got {self.dark_strokes!r}")
        set_(self, "dark_strokes", bool(self.dark_strokes))
        if self.time_step_ms > self.refractory_ms:
            raise ValueError(
                "EmulatorParameters.time_step_ms: expected a step <= refractory_ms "
                f"({self.refractory_ms} ms), got {self.time_step_ms} ms"
            )
        if self.duration_us > _MAX_TIMESTAMP_US:
            raise ValueError(
                "EmulatorParameters.saccade_duration_ms: the recording (len(saccades) * "
                f"saccade_duration_ms) must fit N-MNIST's 23-bit timestamps (<= {_MAX_TIMESTAMP_US} us), "
                f"got {self.duration_us:.0f} us"
            )

    @property
    def duration_ms(self) -> float:
        """Length of the recording, in ms."""
        return len(self.saccades) * self.saccade_duration_ms

    @property
    def duration_us(self) -> float:
        """Length of the recording, in microseconds."""
        return self.duration_ms * 1e3

    @property
    def n_steps(self) -> int:
        """Number of simulation steps covering the recording."""
        return int(math.ceil(self.duration_ms / self.time_step_ms - 1e-9))

    def to_dict(self) -> dict:
        """JSON-friendly dictionary (tuples become lists); inverse of :meth:`from_dict`."""
        out = asdict(self)
        out["sensor_size"] = list(self.sensor_size)
        out["start_position"] = list(self.start_position)
        out["saccades"] = [list(s) for s in self.saccades]
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "EmulatorParameters":
        """Parameters from the mapping written by :meth:`to_dict`."""
        return cls(**values)


def saccade_displacement(params: EmulatorParameters, t_ms) -> tuple[np.ndarray, np.ndarray]:
    """Displacement ``(d_x, d_y)`` of the image at times ``t_ms`` (pixels).

    Parameters
    ----------
    params : EmulatorParameters
    t_ms : array_like
        Times in ms from the start of the recording.

    Returns
    -------
    dx, dy : ndarray of float64
        Cumulative displacement; saccade ``i`` contributes ``v_i * s(tau_i)`` with
        ``s(tau) = tau - sin(2 pi tau)/(2 pi)`` and ``tau_i`` clipped to ``[0, 1]``.
    """
    t_ms = np.asarray(t_ms, dtype=np.float64)
    dx = np.zeros_like(t_ms)
    dy = np.zeros_like(t_ms)
    for i, (vx, vy) in enumerate(params.saccades):
        tau = np.clip((t_ms - i * params.saccade_duration_ms) / params.saccade_duration_ms, 0.0, 1.0)
        s = tau - np.sin(2.0 * np.pi * tau) / (2.0 * np.pi)
        dx += vx * s
        dy += vy * s
    return dx, dy


def prepare_image(image, params: EmulatorParameters | None = None, *, value_range=None) -> np.ndarray:
    """Scale a grayscale image to ``[0, 1]`` and resize it into the ``image_size`` box.

    Parameters
    ----------
    image : array_like, shape (height, width)
        Any grayscale image (e.g. an 8x8 scikit-learn digit with values 0-16, or a 28x28 MNIST
        digit with values 0-255). Bright pixels are the stroke.
    params : EmulatorParameters, optional
    value_range : (float, float), optional
        Intensities mapped to 0 and 1 (values outside are clipped); default: the image's own
        minimum and maximum (a constant image becomes all zeros).

    Returns
    -------
    ndarray of float64, shape (image_size, image_size)
        The resized image (bilinear, aspect ratio kept), centred in the box.
    """
    from scipy import ndimage

    params = EmulatorParameters() if params is None else params
    array = np.asarray(image)
    if array.ndim != 2 or min(array.shape) < 1:
        raise ValueError(f"image: expected a 2-D grayscale array (height, width), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"image: expected real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("image: expected finite values, got NaN or infinity")
    if value_range is None:
        low, high = float(array.min()), float(array.max())
    else:
        low, high = (float(v) for v in value_range)
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(f"value_range: expected (low, high) with low < high, got {value_range!r}")
    if high > low:
        array = np.clip((array - low) / (high - low), 0.0, 1.0)
    else:
        array = np.zeros_like(array)
    height, width = array.shape
    box = params.image_size
    scale = box / max(height, width)
    out_h = max(1, int(round(height * scale)))
    out_w = max(1, int(round(width * scale)))
    if (out_h, out_w) != (height, width):
        array = ndimage.zoom(array, (out_h / height, out_w / width), order=1, grid_mode=True,
                             mode="nearest")
        array = np.clip(array[:out_h, :out_w], 0.0, 1.0)
    canvas = np.zeros((box, box))
    top, left = (box - array.shape[0]) // 2, (box - array.shape[1]) // 2
    canvas[top:top + array.shape[0], left:left + array.shape[1]] = array
    return canvas


def _as_generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng: expected a numpy.random.Generator or a seed (int >= 0), got {rng!r}")


def emulate_saccades(image, rng, params: EmulatorParameters | None = None, *,
                     value_range=None) -> np.ndarray:
    """Record one image with the emulated event camera during the N-MNIST saccades.

    Parameters
    ----------
    image : array_like, shape (height, width)
        Grayscale image, any size (resized to fit, see :func:`prepare_image`).
    rng : numpy.random.Generator or int
        Source of the threshold mismatch and of the background noise (a seed makes a generator).
    params : EmulatorParameters, optional
        Camera and motion parameters (defaults calibrated against a real N-MNIST recording).
    value_range : (float, float), optional
        Intensities mapped to dark and bright (default: the image's minimum and maximum).

    Returns
    -------
    ndarray of :data:`~sdsnn_bio.data.format.EVENT_DTYPE`
        Events ``(x, y, t, p)`` sorted by time: ``t`` in microseconds, ``p = 1`` ON and ``0`` OFF.
    """
    return emulate_batch([image], [rng], params, value_range=value_range)[0]


def emulate_batch(images, rngs, params: EmulatorParameters | None = None, *,
                  value_range=None) -> list[np.ndarray]:
    """Record several images at once (vectorised over images and pixels).

    The result for each image is identical to :func:`emulate_saccades` with the same generator
    state: every image draws its mismatch and noise from its own generator.

    Parameters
    ----------
    images : sequence of array_like
        Grayscale images (any sizes).
    rngs : sequence of numpy.random.Generator or int
        One generator (or seed) per image.
    params : EmulatorParameters, optional
    value_range : (float, float), optional
        As in :func:`prepare_image`, for every image.

    Returns
    -------
    list of ndarray of EVENT_DTYPE
    """
    params = EmulatorParameters() if params is None else params
    if not isinstance(params, EmulatorParameters):
        raise ValueError(f"params: expected EmulatorParameters, got {type(params).__name__}")
    images = list(images)
    rngs = [_as_generator(r) for r in rngs]
    if len(rngs) != len(images):
        raise ValueError(f"rngs: expected one generator per image ({len(images)}), got {len(rngs)}")
    if not images:
        return []
    canvases = np.stack([prepare_image(im, params, value_range=value_range) for im in images])
    width, height = params.sensor_size
    n_pixels = width * height
    n_images = len(images)

    # Per-pixel thresholds (mismatch), drawn image by image from each image's generator.
    threshold_on = np.empty((n_images, n_pixels))
    threshold_off = np.empty((n_images, n_pixels))
    for b, generator in enumerate(rngs):
        threshold_on[b] = params.threshold_on * np.exp(
            params.threshold_mismatch * generator.standard_normal(n_pixels))
        threshold_off[b] = params.threshold_off * np.exp(
            params.threshold_mismatch * generator.standard_normal(n_pixels))

    # Image position (top-left of the box) at every simulation step.
    step_ms = params.time_step_ms
    n_steps = params.n_steps
    times_ms = np.minimum(np.arange(n_steps + 1) * step_ms, params.duration_ms)
    dx, dy = saccade_displacement(params, times_ms)
    shift_x = params.start_position[0] + dx
    shift_y = params.start_position[1] + dy
    # Sensor column X samples image column u = X - shift_x = X + a + f, a = floor(-shift_x).
    col_int = np.floor(-shift_x).astype(np.int64)
    col_frac = -shift_x - col_int
    row_int = np.floor(-shift_y).astype(np.int64)
    row_frac = -shift_y - row_int
    # Luminance canvases (outside the image: background) covering every image column/row any step can sample.
    # Bilinear interpolation commutes with the affine map I -> L, so the canvas holds L directly.
    col_lo, col_hi = int(col_int.min()), int(col_int.max())
    row_lo, row_hi = int(row_int.min()), int(row_int.max())
    background, stroke = (1.0, params.dark_luminance) if params.dark_strokes else (params.dark_luminance, 1.0)
    luminance = np.full((n_images, row_hi - row_lo + height + 1, col_hi - col_lo + width + 1), background,
                        dtype=np.float32)
    box = params.image_size
    # Image column c sits at canvas column c - col_lo (when inside the canvas).
    c0, c1 = max(0, col_lo), min(box, col_hi + width + 1)
    r0, r1 = max(0, row_lo), min(box, row_hi + height + 1)
    if c1 > c0 and r1 > r0:
        luminance[:, r0 - row_lo:r1 - row_lo, c0 - col_lo:c1 - col_lo] = (
            background + (stroke - background) * canvases[:, r0:r1, c0:c1])
    rows_buffer = np.empty((n_images, height + 1, width), dtype=np.float32)

    def log_luminance(k: int, out: np.ndarray) -> np.ndarray:
        """Ln L seen by every pixel at step k (bilinear: horizontal pass, then vertical)."""
        r, c = row_int[k] - row_lo, col_int[k] - col_lo
        window = luminance[:, r:r + height + 1, c:c + width + 1]
        np.subtract(window[:, :, 1:], window[:, :, :-1], out=rows_buffer)
        np.multiply(rows_buffer, np.float32(col_frac[k]), out=rows_buffer)
        np.add(rows_buffer, window[:, :, :-1], out=rows_buffer)
        grid = out.reshape(n_images, height, width)
        np.subtract(rows_buffer[:, 1:], rows_buffer[:, :-1], out=grid)
        grid *= np.float32(row_frac[k])
        grid += rows_buffer[:, :-1]
        np.log(out, out=out)
        return out

    threshold_on = threshold_on.astype(np.float32)
    minus_threshold_off = (-threshold_off).astype(np.float32)
    previous = log_luminance(0, np.empty((n_images, n_pixels), dtype=np.float32))
    current = np.empty_like(previous)
    reference = previous.copy()
    change = np.empty_like(previous)
    on = np.empty(previous.shape, dtype=bool)
    off = np.empty(previous.shape, dtype=bool)
    last_event = np.full(n_images * n_pixels, -np.inf)
    flat_reference = reference.reshape(-1)
    flat_on_threshold = threshold_on.reshape(-1)
    flat_off_threshold = minus_threshold_off.reshape(-1)
    refractory = params.refractory_ms
    found_image, found_pixel, found_time, found_polarity = [], [], [], []
    for k in range(1, n_steps + 1):
        log_luminance(k, current)
        np.subtract(current, reference, out=change)
        np.greater_equal(change, threshold_on, out=on)
        np.less_equal(change, minus_threshold_off, out=off)
        candidates = np.flatnonzero(on | off)
        if candidates.size:
            start, end = times_ms[k - 1], times_ms[k]
            level0 = previous.reshape(-1)[candidates].astype(np.float64)
            level1 = current.reshape(-1)[candidates].astype(np.float64)
            polarity = on.reshape(-1)[candidates]
            target = flat_reference[candidates] + np.where(
                polarity, flat_on_threshold[candidates], flat_off_threshold[candidates])
            slope = level1 - level0
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction = np.where(slope != 0.0, (target - level0) / slope, 0.0)
            fraction = np.clip(fraction, 0.0, 1.0)
            span = end - start
            event_time = np.maximum(start + fraction * span, last_event[candidates] + refractory)
            fire = event_time <= end
            if np.any(fire):
                index = candidates[fire]
                when = event_time[fire]
                weight = (when - start) / span
                flat_reference[index] = level0[fire] + weight * slope[fire]
                last_event[index] = when
                found_image.append(index // n_pixels)
                found_pixel.append(index % n_pixels)
                found_time.append(when)
                found_polarity.append(polarity[fire])
        previous, current = current, previous

    if found_image:
        image_of = np.concatenate(found_image)
        pixel_of = np.concatenate(found_pixel)
        time_of = np.rint(np.concatenate(found_time) * 1e3).astype(np.int64)
        polarity_of = np.concatenate(found_polarity).astype(np.int64)
    else:
        image_of = pixel_of = time_of = polarity_of = np.zeros(0, np.int64)
    order = np.argsort(image_of, kind="stable")
    bounds = np.searchsorted(image_of[order], np.arange(n_images + 1))

    duration_us = int(round(params.duration_us))
    recordings = []
    for b, generator in enumerate(rngs):
        sel = order[bounds[b]:bounds[b + 1]]
        pixel, when, polarity = pixel_of[sel], time_of[sel], polarity_of[sel]
        n_noise = int(generator.poisson(params.noise_rate_hz * n_pixels * duration_us * 1e-6))
        if n_noise:
            pixel = np.concatenate([pixel, generator.integers(0, n_pixels, n_noise)])
            when = np.concatenate([when, generator.integers(0, duration_us, n_noise)])
            polarity = np.concatenate(
                [polarity, (generator.random(n_noise) < params.noise_on_fraction).astype(np.int64)])
        sort = np.lexsort((polarity, pixel, when))
        events = np.empty(sort.size, dtype=EVENT_DTYPE)
        events["x"] = pixel[sort] % width
        events["y"] = pixel[sort] // width
        events["t"] = when[sort]
        events["p"] = polarity[sort]
        recordings.append(events)
    return recordings
