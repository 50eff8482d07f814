"""Numba kernels of :mod:`.fused` (imported by :func:`.fused.kernels` on first use only).

Module-level functions, so that Numba's on-disk cache (``cache=True``) keeps their machine code
across processes. See :mod:`.fused` for the equations. Inner loops run over contiguous rows (one
sample's neurons, one weight row) so that LLVM vectorises them; no reduction is reordered (no
``fastmath``), which keeps every sum in the order of the NumPy path. The exceptions, the
transposed convolution (:func:`_transposed_row`, :func:`_column_of`) and the shared weight gradient
(:func:`_add_spike_gradient`), only contract ``a * b + c`` to a fused multiply-add (as the BLAS
product that the first replaces does); nothing is reassociated.

Every kernel runs in the floating-point type of its arrays (float64 or float32, the learner's
``dtype``): work arrays are allocated in that type, scalar arguments come in it, and constants are
made in it (``x.dtype.type(1.0)``), because a float literal would be float64 and promote every
operation it enters.
"""

from __future__ import annotations

import math

import numba
import numpy as np

jit = numba.njit(nogil=True, cache=True)
#: The transposed convolution's products: ``a * b + c`` contracted to one fused multiply-add (what
#: a BLAS product computes), nothing reassociated.
jit_fma = numba.njit(nogil=True, cache=True, fastmath={"contract"})

HALF_PI = math.pi / 2.0


@jit
def surrogate_times(potential, threshold, code, k, factor, out):
    """Surrogate derivative times a factor, elementwise.

    ``out = sigma'(potential - threshold) * factor`` elementwise (1-D arrays), operation for
    operation as :meth:`.surrogate.Surrogate.derivative` followed by the product.
    """
    n = out.shape[0]
    real = out.dtype.type
    one, two, half_pi = real(1.0), real(2.0), real(HALF_PI)
    if code == 0:  # fast sigmoid
        for i in range(n):
            y = one + k * abs(potential[i] - threshold)
            out[i] = (one / (y * y)) * factor[i]
    elif code == 1:  # sigmoid
        for i in range(n):
            s = one / (one + math.exp(-k * (potential[i] - threshold)))
            out[i] = (k * s * (one - s)) * factor[i]
    elif code == 2:  # arctan
        for i in range(n):
            y = half_pi * k * (potential[i] - threshold)
            out[i] = ((k / two) / (one + y * y)) * factor[i]
    else:  # rectangular
        zero = real(0.0)
        for i in range(n):
            inside = one if abs(potential[i] - threshold) < k / two else zero
            out[i] = (inside / k) * factor[i]


@numba.njit(inline="always")
def _lif_step(t, b, v, last, count, current, decay, threshold, reset, refractory_steps, alive,
              given, use_given, potential, spikes, not_refractory):
    """One step ``t`` of sample ``b``'s row of LIF neurons, given its input currents.

    The update of :mod:`.fused` (``u_t``, ``s_t``, ``v_t``) over the contiguous row: reads and
    writes the state ``v`` (potential after the step) and ``last`` (step of the last spike, read
    only with ``refractory_steps > 0``), adds the spikes to ``count`` and writes ``potential[t,
    b]``, ``spikes[t, b]`` (or reads ``given[t, b]`` with ``use_given``) and, with a refractory
    period, ``not_refractory[t, b]``. Inlined into its callers (Numba IR), so that the branch-free
    loop (no refractory period, spikes computed) stays one loop LLVM vectorises.
    """
    u_out = potential[t, b]
    s_out = given[t, b] if use_given else spikes[t, b]
    n_neurons = v.shape[0]
    if refractory_steps > 0:
        r_out = not_refractory[t, b]
        for n in range(n_neurons):
            r = (t - last[n]) >= refractory_steps
            r_out[n] = r
            u = v[n] * decay if r else v[n]
            u_out[n] = u
            if use_given:
                s = s_out[n]
            else:
                s = (u > threshold) & r & alive[n]
                s_out[n] = s
            if s:
                v[n] = reset
                last[n] = t
                count[n] += 1
            elif r:
                v[n] = u + current[n]
            else:
                v[n] = u
    elif use_given:
        for n in range(n_neurons):
            u = v[n] * decay
            u_out[n] = u
            s = s_out[n]
            v[n] = reset if s else u + current[n]
            count[n] += s
    else:  # branch-free: LLVM vectorises it
        for n in range(n_neurons):
            u = v[n] * decay
            u_out[n] = u
            s = (u > threshold) & alive[n]
            s_out[n] = s
            v[n] = reset if s else u + current[n]
            count[n] += s


@jit
def forward_block(indptr, indices, pre_spikes, use_dense, weight, n_samples, b0, b1,
                  decay, threshold, reset, refractory_steps, alive, given, use_given,
                  potential, spikes, not_refractory, counts):
    """Integrate samples ``b0:b1`` of a layer over all steps (output arrays (T, B, N)).

    Presynaptic spikes: a CSR matrix ``(indptr, indices)`` with rows ``t*B + b`` (input layer)
    or, if ``use_dense``, a bool array ``pre_spikes`` of shape (T, B, N_pre). With ``use_given``,
    ``given`` holds the spikes (reconstruction) and ``spikes`` is not written.
    """
    n_steps = potential.shape[0]
    n_pre, n_neurons = weight.shape
    v_all = np.zeros((b1 - b0, n_neurons), potential.dtype)
    last_all = np.full((b1 - b0, n_neurons), -(10**9), dtype=np.int64)
    current = np.empty(n_neurons, potential.dtype)
    active = np.empty(n_pre + 1, dtype=np.int64)
    for t in range(n_steps):
        for b in range(b0, b1):
            current[:] = 0.0
            if use_dense:
                pre = pre_spikes[t, b]
                n_active = 0
                for c in range(n_pre):  # branch-free compaction of the spiking indices
                    active[n_active] = c
                    n_active += pre[c]
                for p in range(n_active):
                    w_row = weight[active[p]]
                    for n in range(n_neurons):
                        current[n] += w_row[n]
            else:
                row = t * n_samples + b
                for p in range(indptr[row], indptr[row + 1]):
                    w_row = weight[indices[p]]
                    for n in range(n_neurons):
                        current[n] += w_row[n]
            _lif_step(t, b, v_all[b - b0], last_all[b - b0], counts[b], current, decay, threshold, reset,
                      refractory_steps, alive, given, use_given, potential, spikes, not_refractory)


@jit
def backward_block(potential, spikes, not_refractory, has_refractory, decay, threshold,
                   surrogate_code, surrogate_scale,
                   grad_spikes, has_grad_spikes, grad_potential, has_grad_potential,
                   grad_above, weight_above_t, grad_weight_above, has_above,
                   indptr, indices, grad_weight_input, has_input,
                   grad_currents, store_grad_currents, n0, n1):
    """BPTT of neurons ``n0:n1`` of a layer (see :mod:`.fused`), arrays (T, B, N).

    ``grad_above`` (T, B, N_above) is dL/dI of the layer above and ``weight_above_t`` (N_above, N)
    the transposed weights it is reached through; ``grad_weight_above`` (N, N_above) receives the
    gradient of that projection (rows ``n0:n1``), ``grad_weight_input`` (n_input, N) that of the
    input projection (columns ``n0:n1``) from the CSR input ``(indptr, indices)``.
    """
    n_steps, n_samples, _ = potential.shape
    width = n1 - n0
    n_above = grad_above.shape[2]
    real = potential.dtype.type
    zero, one = real(0.0), real(1.0)
    grad_v_all = np.zeros((n_samples, width), potential.dtype)
    g_spike = np.empty(width, potential.dtype)
    direct = np.empty(width, potential.dtype)
    block = np.empty(width, potential.dtype)
    for t in range(n_steps - 1, -1, -1):
        for b in range(n_samples):
            u_row = potential[t, b, n0:n1]
            s_row = spikes[t, b, n0:n1]
            grad_v = grad_v_all[b]
            if has_above or has_grad_spikes:
                if has_above:  # dL/ds = W_above dL/dI_above, summed in increasing j
                    g_spike[:] = 0.0
                    for j in range(n_above):
                        g = grad_above[t, b, j]
                        w_row = weight_above_t[j, n0:n1]
                        for k in range(width):
                            g_spike[k] += w_row[k] * g
                else:
                    gs_row = grad_spikes[t, b, n0:n1]
                    for k in range(width):
                        g_spike[k] = gs_row[k]
                surrogate_times(u_row, threshold, surrogate_code, surrogate_scale, g_spike, direct)
                if has_refractory:
                    r_row = not_refractory[t, b, n0:n1]
                    for k in range(width):
                        direct[k] = direct[k] * (one if r_row[k] else zero)
            else:
                direct[:] = 0.0
            if has_grad_potential:
                gp_row = grad_potential[t, b, n0:n1]
                for k in range(width):
                    direct[k] = direct[k] + gp_row[k]
            if has_refractory:
                r_row = not_refractory[t, b, n0:n1]
                for k in range(width):
                    g_potential = grad_v[k] * (zero if s_row[k] else one)
                    block[k] = g_potential * (one if r_row[k] else zero)
                    grad_v[k] = (g_potential + direct[k]) * (decay if r_row[k] else one)
            else:
                for k in range(width):
                    g_potential = grad_v[k] * (zero if s_row[k] else one)
                    block[k] = g_potential
                    grad_v[k] = (g_potential + direct[k]) * decay
            if has_above:  # dW_above[n] += dL/dI_above for every spike of neuron n
                ga_row = grad_above[t, b]
                for k in range(width):
                    if s_row[k]:
                        gw_row = grad_weight_above[n0 + k]
                        for j in range(n_above):
                            gw_row[j] += ga_row[j]
            if store_grad_currents:
                gc_row = grad_currents[t, b, n0:n1]
                for k in range(width):
                    gc_row[k] = block[k]
            if has_input:  # dW_input[c] += dL/dI for every input event on channel c
                row = t * n_samples + b
                for p in range(indptr[row], indptr[row + 1]):
                    gw_row = grad_weight_input[indices[p], n0:n1]
                    for k in range(width):
                        gw_row[k] += block[k]


@jit
def adam_block(param, grad, m, v, beta1, beta2, epsilon, step_size, a, b):
    """Adam on rows ``a:b`` of 2-D arrays, as :meth:`.optim.Adam._update_block` computes it.

    ``beta1``, ``beta2``, ``epsilon`` and ``step_size`` come in the arrays' type.
    """
    one = param.dtype.type(1.0)
    one_minus_beta1 = one - beta1
    one_minus_beta2 = one - beta2
    n_columns = param.shape[1]
    for i in range(a, b):
        p_row, g_row, m_row, v_row = param[i], grad[i], m[i], v[i]
        for j in range(n_columns):
            g = g_row[j]
            m_new = m_row[j] * beta1 + g * one_minus_beta1
            v_new = v_row[j] * beta2 + (g * g) * one_minus_beta2
            m_row[j] = m_new
            v_row[j] = v_new
            p_row[j] -= (m_new / (math.sqrt(v_new) + epsilon)) * step_size


@jit
def adam_block_restarted(param, grad, m, v, birth, beta1, beta2, epsilon, steps, t, a, b):
    """Adam update of restarted entries (per-entry step counts).

    :func:`adam_block` with per-entry step counts ``k = t - birth`` (capped at the table's last
    entry), step size ``steps[k]``, as :meth:`.optim.Adam._restarted_block` computes it (scalars
    and ``steps`` in the arrays' type).
    """
    one = param.dtype.type(1.0)
    one_minus_beta1 = one - beta1
    one_minus_beta2 = one - beta2
    last = steps.shape[0] - 1
    n_columns = param.shape[1]
    for i in range(a, b):
        p_row, g_row, m_row, v_row, b_row = param[i], grad[i], m[i], v[i], birth[i]
        for j in range(n_columns):
            g = g_row[j]
            m_new = m_row[j] * beta1 + g * one_minus_beta1
            v_new = v_row[j] * beta2 + (g * g) * one_minus_beta2
            m_row[j] = m_new
            v_row[j] = v_new
            k = min(t - b_row[j], last)
            p_row[j] -= (m_new / (math.sqrt(v_new) + epsilon)) * steps[k]


# ---------------------------------------------------------------------------------------- shared
# Kernels of projections with a geometry (convolution, or dense fed by pooled channels): see
# :mod:`.fused` ("shared projections") and :meth:`sdsnn_bio.geometry.Geometry.pooled_table`. A
# target layer's currents are kept position-major, ``(positions, channels)``, so that one spike
# adds contiguous parameter rows; neuron ``n = channel * positions + position`` (channel-major, the
# layout of the layer's spikes and potentials).


@jit
def shared_forward_block(indptr, indices, pre_spikes, use_dense, n_samples, source_pooled,
                         table_indptr, table_rows, table_positions, weight_scaled, b0, b1,
                         decay, threshold, reset, refractory_steps, alive, given, use_given,
                         potential, spikes, not_refractory, counts):
    """Integrate samples ``b0:b1`` of a layer fed by a shared projection (output arrays (T, B, N)).

    Event-driven currents: every presynaptic spike of ``(t, b)`` on unit ``i`` (CSR rows ``t*B + b``
    of ``(indptr, indices)``, or the bool ``pre_spikes`` (T, B, N_pre) if ``use_dense``) adds, for
    each entry ``e`` of its pooled position ``q = source_pooled[i]`` (skipped if -1), the row
    ``weight_scaled[table_rows[e]]`` (parameters times the pooling factor) to the currents of
    position ``table_positions[e]``. Then the LIF update of :func:`forward_block`
    (:func:`_lif_step`), over the currents copied channel-major (the neurons' order).
    """
    n_steps, _, n_neurons = potential.shape
    n_channels = weight_scaled.shape[1]
    n_positions = n_neurons // n_channels
    real = potential.dtype.type
    current = np.empty((n_positions, n_channels), potential.dtype)
    by_neuron = np.empty(n_neurons, potential.dtype)
    v = np.empty(n_neurons, potential.dtype)
    last = np.empty(n_neurons, dtype=np.int64)
    n_pre = pre_spikes.shape[2] if use_dense else 0
    active = np.empty(n_pre + 1, dtype=np.int64)
    for b in range(b0, b1):
        v[:] = real(0.0)
        last[:] = -(10**9)
        count = counts[b]
        for t in range(n_steps):
            current[:] = real(0.0)
            if use_dense:
                pre = pre_spikes[t, b]
                n_active = 0
                for c in range(n_pre):  # branch-free compaction of the spiking indices
                    active[n_active] = c
                    n_active += pre[c]
                first, stop = 0, n_active
            else:
                row = t * n_samples + b
                first, stop = indptr[row], indptr[row + 1]
            for p in range(first, stop):
                q = source_pooled[active[p] if use_dense else indices[p]]
                if q < 0:
                    continue
                for e in range(table_indptr[q], table_indptr[q + 1]):
                    w_row = weight_scaled[table_rows[e]]
                    c_row = current[table_positions[e]]
                    for j in range(n_channels):
                        c_row[j] += w_row[j]
            for j in range(n_channels):  # channel-major, as the neurons: contiguous loops below
                c_row = by_neuron[j * n_positions:(j + 1) * n_positions]
                for position in range(n_positions):
                    c_row[position] = current[position, j]
            _lif_step(t, b, v, last, count, by_neuron, decay, threshold, reset, refractory_steps, alive,
                      given, use_given, potential, spikes, not_refractory)


@jit
def shared_backward_block(potential, spikes, not_refractory, has_refractory, decay, threshold,
                          surrogate_code, surrogate_scale, grad_spikes, has_grad_spikes,
                          grad_pooled, has_grad_pooled, source_pooled, pool_factor,
                          grad_potential, has_grad_potential, grad_currents, store_grad_currents,
                          indptr, indices, pre_spikes, use_dense, n_samples, input_pooled,
                          table_indptr, table_rows, table_positions, grad_weight, has_input,
                          weight_t, kernel_size, padding, pooled_height, pooled_width, out_width,
                          grad_below, has_below, b0, b1):
    """BPTT of samples ``b0:b1`` of a layer (arrays (T, B, N)) into position-major ``dL/dI``.

    The equations of :func:`backward_block`, with ``dL/ds_t`` either given (``grad_spikes``,
    (T, B, N)) or un-pooled on the fly from the error of the pooled positions that the shared
    projection above reads (``grad_pooled`` (T, B, Q): ``dL/ds[n] = pool_factor *
    grad_pooled[source_pooled[n]]``, 0 where ``source_pooled`` is -1), in one pass per step:
    un-pooling, surrogate, refractory mask, direct term and the recursion, each a loop over the
    step's contiguous row of neurons (the element-wise operations of :func:`backward_block`, which
    LLVM vectorises), then the row transposed into ``grad_currents`` (T, B, positions, channels;
    with ``store_grad_currents`` False, an array of shape (0, 0, positions, channels) and the row
    is kept only while its step is processed).

    With ``has_input``, the gradient of the projection into this layer is added to
    ``grad_weight`` (parameter shape) in the same pass, from the presynaptic spikes of each step
    (CSR ``(indptr, indices)`` rows ``t*B + b`` or bool ``pre_spikes`` if ``use_dense``, their
    pooled positions ``input_pooled`` and the geometry's ``table_*``), as
    :func:`shared_weight_gradient_block` computes it (samples in this order, steps from the last).
    With ``has_below`` (a convolution), the error of the pooled input, ``grad_below`` (T, B, Hp *
    Wp * C_in), is computed in the same pass from each step's row, as
    :func:`shared_pooled_gradient_block` computes it (``weight_t`` and the geometry's sizes).
    """
    n_steps, _, n_neurons = potential.shape
    n_positions, n_channels = grad_currents.shape[2], grad_currents.shape[3]
    dtype = potential.dtype
    real = dtype.type
    zero, one = real(0.0), real(1.0)
    grad_v = np.empty(n_neurons, dtype)
    g_spike = np.empty(n_neurons, dtype)
    direct = np.empty(n_neurons, dtype)
    block = np.empty(n_neurons, dtype)
    row_buffer = np.empty((n_positions, n_channels), dtype)
    n_pre = pre_spikes.shape[2] if use_dense else 0
    active = np.empty(n_pre + 1, dtype=np.int64)
    n_pooled = table_indptr.shape[0] - 1 if has_input else 0
    spikes_at = np.zeros(n_pooled, dtype=np.int64)
    visited = np.empty(n_pooled, dtype=np.int64)
    column = np.empty(weight_t.shape[1], dtype)
    active_channels = np.empty(n_channels, dtype=np.int64)
    for b in range(b0, b1):
        grad_v[:] = zero
        for t in range(n_steps - 1, -1, -1):
            u_row = potential[t, b]
            s_row = spikes[t, b]
            r_row = not_refractory[t, b] if has_refractory else s_row
            if has_grad_pooled:  # un-pooled: dL/ds[n] = pool_factor * grad_pooled[source_pooled[n]]
                gp_row = grad_pooled[t, b]
                for n in range(n_neurons):
                    q = source_pooled[n]
                    g_spike[n] = gp_row[q] * pool_factor if q >= 0 else zero
                surrogate_times(u_row, threshold, surrogate_code, surrogate_scale, g_spike, direct)
            elif has_grad_spikes:
                surrogate_times(u_row, threshold, surrogate_code, surrogate_scale, grad_spikes[t, b], direct)
            else:
                direct[:] = zero
            if has_refractory and (has_grad_pooled or has_grad_spikes):
                for n in range(n_neurons):
                    direct[n] = direct[n] * (one if r_row[n] else zero)
            if has_grad_potential:
                gu_row = grad_potential[t, b]
                for n in range(n_neurons):
                    direct[n] = direct[n] + gu_row[n]
            if has_refractory:
                for n in range(n_neurons):
                    g_potential = grad_v[n] * (zero if s_row[n] else one)
                    block[n] = g_potential * (one if r_row[n] else zero)
                    grad_v[n] = (g_potential + direct[n]) * (decay if r_row[n] else one)
            else:  # branch-free: LLVM vectorises it
                for n in range(n_neurons):
                    g_potential = grad_v[n] * (zero if s_row[n] else one)
                    block[n] = g_potential
                    grad_v[n] = (g_potential + direct[n]) * decay
            out = grad_currents[t, b] if store_grad_currents else row_buffer
            for j in range(n_channels):  # channel-major -> position-major
                b_row = block[j * n_positions:(j + 1) * n_positions]
                for position in range(n_positions):
                    out[position, j] = b_row[position]
            if has_input:
                if use_dense:
                    n_active = _spiking_units(pre_spikes[t, b], active)
                    _add_spike_gradient(active, 0, n_active, input_pooled, table_indptr, table_rows,
                                        table_positions, out, grad_weight, spikes_at, visited)
                else:
                    row = t * n_samples + b
                    _add_spike_gradient(indices, indptr[row], indptr[row + 1], input_pooled, table_indptr,
                                        table_rows, table_positions, out, grad_weight, spikes_at, visited)
            if has_below:
                _transposed_row(out, weight_t, kernel_size, padding, pooled_height, pooled_width, out_width,
                                grad_below[t, b], column, active_channels)


@jit
def _spiking_units(pre, active):
    """Indices of the true entries of the bool row ``pre`` into ``active``; returns their number."""
    n_active = 0
    for c in range(pre.shape[0]):  # branch-free compaction
        active[n_active] = c
        n_active += pre[c]
    return n_active


@jit_fma
def _add_spike_gradient(units, first, stop, source_pooled, table_indptr, table_rows, table_positions,
                        g_sample, grad_weight, spikes_at, visited):
    """Add one step's (one ``(t, b)``) parameter gradient from its spikes ``units[first:stop]``.

    The spikes are counted per pooled position ``q = source_pooled[unit]`` (``m`` spikes of one
    pooling window: 1 to ``pool**2``; -1: dropped), and each such position adds, for each entry
    ``e`` of ``q``, ``m`` times the error of position ``table_positions[e]`` (all channels of
    ``g_sample`` (positions, channels)) to the parameter row ``table_rows[e]`` as one fused
    multiply-add: the sum over the spikes with one rounding where ``m > 1`` (``m = 1`` adds the
    error exactly), each pooled position visited once (in the order of its first spike) instead
    of once per spike. ``spikes_at`` (zeros, one per pooled position) is left zero; ``visited``
    is scratch of the same size.
    """
    real = grad_weight.dtype.type
    n_channels = g_sample.shape[1]
    n_visited = 0
    for p in range(first, stop):
        q = source_pooled[units[p]]
        if q < 0:
            continue
        if spikes_at[q] == 0:
            visited[n_visited] = q
            n_visited += 1
        spikes_at[q] += 1
    for v in range(n_visited):
        q = visited[v]
        m = real(spikes_at[q])
        spikes_at[q] = 0
        for e in range(table_indptr[q], table_indptr[q + 1]):
            gw_row = grad_weight[table_rows[e]]
            g_row = g_sample[table_positions[e]]
            for j in range(n_channels):
                gw_row[j] += m * g_row[j]


@jit
def shared_weight_gradient_block(indptr, indices, pre_spikes, use_dense, n_samples, source_pooled,
                                 table_indptr, table_rows, table_positions, grad_currents, b0, b1,
                                 grad_weight):
    """``grad_weight[row] += dL/dI[t, b, position]`` for every presynaptic spike of samples ``b0:b1``.

    The gradient of the shared parameters from the spikes only (times the pooling factor
    afterwards): each spike of ``(t, b)`` on unit ``i`` (CSR rows ``t*B + b`` of ``(indptr,
    indices)``, or the bool ``pre_spikes`` (T, B, N_pre) if ``use_dense``) adds, for each entry
    ``e`` of ``q = source_pooled[i]``, the error of position ``table_positions[e]`` (all channels,
    ``grad_currents`` (T, B, positions, channels)) to the parameter row ``table_rows[e]``; the
    spikes of one pooling window at once (:func:`_add_spike_gradient`).
    """
    n_steps = grad_currents.shape[0]
    n_pre = pre_spikes.shape[2] if use_dense else 0
    active = np.empty(n_pre + 1, dtype=np.int64)
    n_pooled = table_indptr.shape[0] - 1
    spikes_at = np.zeros(n_pooled, dtype=np.int64)
    visited = np.empty(n_pooled, dtype=np.int64)
    for t in range(n_steps):
        for b in range(b0, b1):
            if use_dense:
                n_active = _spiking_units(pre_spikes[t, b], active)
                _add_spike_gradient(active, 0, n_active, source_pooled, table_indptr, table_rows, table_positions,
                                    grad_currents[t, b], grad_weight, spikes_at, visited)
            else:
                row = t * n_samples + b
                _add_spike_gradient(indices, indptr[row], indptr[row + 1], source_pooled, table_indptr,
                                    table_rows, table_positions, grad_currents[t, b], grad_weight, spikes_at,
                                    visited)


@jit
def shared_pooled_gradient_block(grad_currents, weight_t, kernel_size, padding, pooled_height, pooled_width,
                                 out_width, grad_pooled, s0, s1):
    """Transposed convolution: the error of each pooled input position, for rows ``s0:s1``.

    ``grad_currents`` (rows, positions, C_out) is ``dL/dI`` position-major, ``weight_t`` (C_out,
    k * k * C_in) the kernel with its rows ordered ``(dy, dx, c_in)``, ``grad_pooled`` (rows,
    Hp * Wp * C_in) position-major; one row at a time (:func:`_transposed_row`).
    """
    column = np.empty(weight_t.shape[1], grad_pooled.dtype)
    active = np.empty(grad_currents.shape[2], dtype=np.int64)
    for s in range(s0, s1):
        _transposed_row(grad_currents[s], weight_t, kernel_size, padding, pooled_height, pooled_width, out_width,
                        grad_pooled[s], column, active)


@jit_fma
def _transposed_row(g_sample, weight_t, kernel_size, padding, pooled_height, pooled_width, out_width, out,
                    column, active):
    """One row (one step of one sample) of the transposed convolution.

    ``g_sample`` (positions, C_out) is ``dL/dI`` position-major, ``out`` (Hp * Wp * C_in) receives
    the error of the pooled input, position-major; ``column`` (k * k * C_in) and ``active``
    (C_out) are scratch. For every target position ``p = oy * out_width + ox`` whose error is not
    all zero, the column ``dL/dI[p, :] W^T`` (k * k * C_in values) is summed over the non-zero
    ``dL/dI[p, j]`` in increasing ``j``, each term one fused multiply-add (the order and rounding
    of a BLAS product; the zeros it skips add nothing), then added to ``out[(py * Wp + px) * C_in
    + c]`` for every kernel offset, ``(py, px) = (oy + dy - padding, ox + dx - padding)`` (the
    col2im of the product), one contiguous run per kernel row ``dy`` (its offsets ``dx`` inside
    the input, times ``C_in``). Background positions (no error: a neuron whose potential never
    entered the surrogate's window, and every position in the last steps, which no error has
    reached yet) cost one test.
    """
    n_positions, n_channels = g_sample.shape[0], g_sample.shape[1]
    c_in = weight_t.shape[1] // (kernel_size * kernel_size)
    zero = out.dtype.type(0.0)
    out[:] = zero
    for p in range(n_positions):
        g = g_sample[p]
        n_active = 0
        for j in range(n_channels):  # branch-free compaction of the non-zero errors
            active[n_active] = j
            n_active += g[j] != zero
        if n_active == 0:
            continue
        _column_of(g, weight_t, active, n_active, column)
        oy = p // out_width
        ox = p - oy * out_width
        dx0 = max(0, padding - ox)  # the kernel columns that land inside the pooled input
        dx1 = min(kernel_size, pooled_width + padding - ox)
        if dx1 <= dx0:
            continue
        length = (dx1 - dx0) * c_in
        for dy in range(kernel_size):
            py = oy + dy - padding
            if py < 0 or py >= pooled_height:
                continue
            # Offsets (dy, dx0..dx1-1): one contiguous run in the column and in the error.
            target = (py * pooled_width + ox + dx0 - padding) * c_in
            source = (dy * kernel_size + dx0) * c_in
            for i in range(length):
                out[target + i] += column[source + i]


@jit_fma
def _column_of(g, weight_t, active, n_active, column):
    """``column = sum over a of g[active[a]] * weight_t[active[a]]``, sequentially in ``a``, with FMAs.

    Four rows per pass over ``column`` (the chain ``((c + g1 w1) + g2 w2) + ...`` contracts to
    the same fused multiply-adds as one row per pass: fewer loads and stores, same rounding).
    """
    width = column.shape[0]
    j = active[0]
    g0 = g[j]
    w0 = weight_t[j]
    for i in range(width):
        column[i] = g0 * w0[i]
    a = 1
    while a + 4 <= n_active:
        g1, g2, g3, g4 = g[active[a]], g[active[a + 1]], g[active[a + 2]], g[active[a + 3]]
        w1, w2, w3, w4 = weight_t[active[a]], weight_t[active[a + 1]], weight_t[active[a + 2]], weight_t[active[a + 3]]
        for i in range(width):
            column[i] = column[i] + g1 * w1[i] + g2 * w2[i] + g3 * w3[i] + g4 * w4[i]
        a += 4
    while a < n_active:
        j = active[a]
        gj = g[j]
        w = weight_t[j]
        for i in range(width):
            column[i] += gj * w[i]
        a += 1
