"""Numba kernels of :mod:`.fused` (imported by :func:`.fused.kernels` on first use only).

Module-level functions, so that Numba's on-disk cache (``cache=True``) keeps their machine code
across processes. See :mod:`.fused` for the equations. Inner loops run over contiguous rows (one
sample's neurons, one weight row) so that LLVM vectorises them; no reduction is reordered (no
``fastmath``), which keeps every sum in the order of the NumPy path.

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
            v = v_all[b - b0]
            u_out = potential[t, b]
            s_out = given[t, b] if use_given else spikes[t, b]
            count = counts[b]
            if refractory_steps > 0:
                last = last_all[b - b0]
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
            else:
                for n in range(n_neurons):
                    u = v[n] * decay
                    u_out[n] = u
                    s = (u > threshold) & alive[n]
                    s_out[n] = s
                    v[n] = reset if s else u + current[n]
                    count[n] += s


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
    position ``table_positions[e]``. Then the LIF update of :func:`forward_block`.
    """
    n_steps, _, n_neurons = potential.shape
    n_channels = weight_scaled.shape[1]
    n_positions = n_neurons // n_channels
    real = potential.dtype.type
    current = np.empty((n_positions, n_channels), potential.dtype)
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
            u_out = potential[t, b]
            s_out = given[t, b] if use_given else spikes[t, b]
            for j in range(n_channels):
                for position in range(n_positions):
                    n = j * n_positions + position
                    if refractory_steps > 0:
                        r = (t - last[n]) >= refractory_steps
                        not_refractory[t, b, n] = r
                        u = v[n] * decay if r else v[n]
                    else:
                        r = True
                        u = v[n] * decay
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
                        v[n] = u + current[position, j]
                    else:
                        v[n] = u


@jit
def surrogate_scalar(x, code, k):
    """``sigma'(x)`` of one value, operation for operation as :func:`surrogate_times` (``x``'s type)."""
    real = type(x)
    one, two = real(1.0), real(2.0)
    if code == 0:  # fast sigmoid
        y = one + k * abs(x)
        return one / (y * y)
    if code == 1:  # sigmoid
        s = one / (one + math.exp(-k * x))
        return k * s * (one - s)
    if code == 2:  # arctan
        y = real(HALF_PI) * k * x
        return (k / two) / (one + y * y)
    inside = one if abs(x) < k / two else real(0.0)  # rectangular
    return inside / k


@jit
def shared_backward_block(potential, spikes, not_refractory, has_refractory, decay, threshold,
                          surrogate_code, surrogate_scale, grad_spikes, has_grad_spikes,
                          grad_pooled, has_grad_pooled, source_pooled, pool_factor,
                          grad_potential, has_grad_potential, grad_currents, b0, b1):
    """BPTT of samples ``b0:b1`` of a layer (arrays (T, B, N)) into position-major ``dL/dI``.

    The equations of :func:`backward_block`, with ``dL/ds_t`` either given (``grad_spikes``,
    (T, B, N)) or un-pooled on the fly from the error of the pooled positions that the shared
    projection above reads (``grad_pooled`` (T, B, Q): ``dL/ds[n] = pool_factor *
    grad_pooled[source_pooled[n]]``, 0 where ``source_pooled`` is -1), in one pass per step:
    un-pooling, surrogate, refractory mask, direct term and the recursion. ``grad_currents`` has
    shape (T, B, positions, channels).
    """
    n_steps, _, n_neurons = potential.shape
    n_positions, n_channels = grad_currents.shape[2], grad_currents.shape[3]
    real = potential.dtype.type
    zero, one = real(0.0), real(1.0)
    has_error = has_grad_spikes or has_grad_pooled
    grad_v = np.empty(n_neurons, potential.dtype)
    for b in range(b0, b1):
        grad_v[:] = zero
        for t in range(n_steps - 1, -1, -1):
            u_row = potential[t, b]
            s_row = spikes[t, b]
            r_row = not_refractory[t, b] if has_refractory else s_row
            gp_row = grad_pooled[t, b] if has_grad_pooled else u_row
            gs_row = grad_spikes[t, b] if has_grad_spikes else u_row
            gu_row = grad_potential[t, b] if has_grad_potential else u_row
            out = grad_currents[t, b]
            for j in range(n_channels):
                for position in range(n_positions):
                    n = j * n_positions + position
                    direct = zero
                    if has_error:
                        if has_grad_pooled:
                            q = source_pooled[n]
                            g_spike = gp_row[q] * pool_factor if q >= 0 else zero
                        else:
                            g_spike = gs_row[n]
                        direct = surrogate_scalar(u_row[n] - threshold, surrogate_code, surrogate_scale) * g_spike
                        if has_refractory:
                            direct = direct * (one if r_row[n] else zero)
                    if has_grad_potential:
                        direct = direct + gu_row[n]
                    g_potential = grad_v[n] * (zero if s_row[n] else one)
                    if has_refractory:
                        out[position, j] = g_potential * (one if r_row[n] else zero)
                        grad_v[n] = (g_potential + direct) * (decay if r_row[n] else one)
                    else:
                        out[position, j] = g_potential
                        grad_v[n] = (g_potential + direct) * decay


@jit
def shared_weight_gradient_block(indptr, indices, pre_spikes, use_dense, n_samples, source_pooled,
                                 table_indptr, table_rows, table_positions, grad_currents, b0, b1,
                                 grad_weight):
    """``grad_weight[row] += dL/dI[t, b, position]`` for every presynaptic spike of samples ``b0:b1``.

    The gradient of the shared parameters from the spikes only (times the pooling factor
    afterwards): each spike of ``(t, b)`` on unit ``i`` adds, for each entry ``e`` of
    ``q = source_pooled[i]``, the error of position ``table_positions[e]`` (all channels,
    ``grad_currents`` (T, B, positions, channels)) to the parameter row ``table_rows[e]``.
    """
    n_steps = grad_currents.shape[0]
    n_channels = grad_currents.shape[3]
    n_pre = pre_spikes.shape[2] if use_dense else 0
    active = np.empty(n_pre + 1, dtype=np.int64)
    for t in range(n_steps):
        for b in range(b0, b1):
            if use_dense:
                pre = pre_spikes[t, b]
                n_active = 0
                for c in range(n_pre):
                    active[n_active] = c
                    n_active += pre[c]
                first, stop = 0, n_active
            else:
                row = t * n_samples + b
                first, stop = indptr[row], indptr[row + 1]
            g_sample = grad_currents[t, b]
            for p in range(first, stop):
                q = source_pooled[active[p] if use_dense else indices[p]]
                if q < 0:
                    continue
                for e in range(table_indptr[q], table_indptr[q + 1]):
                    gw_row = grad_weight[table_rows[e]]
                    g_row = g_sample[table_positions[e]]
                    for j in range(n_channels):
                        gw_row[j] += g_row[j]


@jit
def shared_pooled_gradient_block(columns, kernel_size, padding, pooled_height, pooled_width,
                                 out_height, out_width, grad_pooled, s0, s1):
    """Col2im of a convolution: the error of each pooled input position, for rows ``s0:s1``.

    ``columns`` (rows * positions, k * k * C_in) holds ``dL/dI W^T`` per target position (row
    ``s * positions + oy * out_width + ox``), its columns ordered ``(dy, dx, c_in)``;
    ``grad_pooled`` (rows, Hp * Wp * C_in) is position-major: ``grad_pooled[s, (py * Wp + px) *
    C_in + c]`` receives, for every kernel offset, ``columns[..., (dy * k + dx) * C_in + c]`` of
    the target position ``(py - dy + p, px - dx + p)``: contiguous runs of ``C_in``.
    """
    n_channels = grad_pooled.shape[1] // (pooled_height * pooled_width)
    n_positions = out_height * out_width
    real = grad_pooled.dtype.type
    for s in range(s0, s1):
        out = grad_pooled[s]
        out[:] = real(0.0)
        for oy in range(out_height):
            for ox in range(out_width):
                column = columns[s * n_positions + oy * out_width + ox]
                for dy in range(kernel_size):
                    py = oy + dy - padding
                    if py < 0 or py >= pooled_height:
                        continue
                    for dx in range(kernel_size):
                        px = ox + dx - padding
                        if px < 0 or px >= pooled_width:
                            continue
                        target = (py * pooled_width + px) * n_channels
                        source = (dy * kernel_size + dx) * n_channels
                        for c in range(n_channels):
                            out[target + c] += column[source + c]
