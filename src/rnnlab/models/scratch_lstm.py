"""The lab sheet's LSTM written out in PyTorch, with its backward pass written by hand.

Each layer holds the sheet's parameters (CS231n assignment 3 layout):

    Wx (D, 4H), Wh (H, 4H), b (4H,)          gate order i, f, o, g

    a_t = x_t Wx + h_{t-1} Wh + b            (N, 4H), split as i, f, o, g
    i = σ(a_i)  f = σ(a_f)  o = σ(a_o)  g = tanh(a_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

`ScratchLSTM` is a drop-in for `nn.LSTM(..., batch_first=True)`: `(output, (h_n, c_n))`, optional
`(h0, c0)`. One `torch.autograd.Function` per layer runs the loop and the gradient of the equations:

* each step is ONE product, `a_t = [x_t, h_{t-1}] [Wx; Wh] + b`, read from a buffer whose row t holds
  x_t beside h_{t-1} (the loop writes h_t next to x_{t+1}), then the element-wise cell update; the
  activated gates are kept for the backward pass;
* the backward loop carries only (dh, dc) and writes the gate gradients dA (T, N, 4H);
  everything that does not depend on the recurrence is computed for all steps at once;
* dWx and dWh together are ONE product over all T steps after the loop (Σ_t [x_t, h_{t-1}]ᵀ da_t),
  db a sum, and dx is one product too.

Which library runs the products (MKL or oneDNN, by CPU) is decided in `rnnlab.models._fast`; this file
reads as the equations. `from_torch_lstm`/`to_torch_lstm` convert to and from `nn.LSTM` (gate order i, f, g, o,
weights transposed, two biases whose sum is `b`); `sheet_to_torch_weights` is the one place that maps
the layouts.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.models import _fast

# nn.LSTM's row blocks are (i, f, g, o); the sheet's column blocks are (i, f, o, g). Swapping the last two
# blocks maps either layout to the other (the permutation is its own inverse).
SWAP_G_O = (0, 1, 3, 2)


def _swap_g_o(t: torch.Tensor, dim: int) -> torch.Tensor:
    chunks = t.chunk(4, dim=dim)
    return torch.cat([chunks[k] for k in SWAP_G_O], dim=dim)


def sheet_to_torch_weights(Wx: torch.Tensor, Wh: torch.Tensor, b: torch.Tensor):
    """Sheet layout (Wx (D,4H), Wh (H,4H), b (4H,), i,f,o,g) → nn.LSTM's (W_ih (4H,D), W_hh (4H,H), b (4H,)), i,f,g,o."""
    return _swap_g_o(Wx.t(), 0), _swap_g_o(Wh.t(), 0), _swap_g_o(b, 0)


def torch_to_sheet_weights(w_ih: torch.Tensor, w_hh: torch.Tensor, bias: torch.Tensor):
    """nn.LSTM's (W_ih (4H,D), W_hh (4H,H), b_ih + b_hh (4H,)), i,f,g,o → the sheet's (Wx, Wh, b), i,f,o,g."""
    return _swap_g_o(w_ih, 0).t(), _swap_g_o(w_hh, 0).t(), _swap_g_o(bias, 0)


class _LSTMLayerFunction(torch.autograd.Function):
    """One LSTM layer over a whole time-major sequence.

    forward(x (T, N, D), h0 (N, H), c0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,))
        -> output (T, N, H) (h_1..h_T), h_T (N, H), c_T (N, H)

    Saved for backward: the rows [x_t, h_{t-1}] (T+1, N, D+H) (the last holds h_T), the activated gates (T, N, 4H) in
    order i, f, o, g, the cell states c_0..c_T (T+1, N, H) and tanh(c_1..c_T) (T, N, H).

    Everything is written into buffers made once per call, and the per-step views of them are taken
    before the loops (`unbind`): each step then costs one product and a few element-wise operations on
    (N, H) tensors, which keeps the Python loop level with nn.LSTM's fused kernels (docs/benchmarks.md).
    """

    @staticmethod
    def forward(ctx, x, h0, c0, Wx, Wh, b):
        T, N, D = x.shape
        H = Wh.shape[0]
        H3, H4 = 3 * H, 4 * H
        # a_t = x_t Wx + h_{t-1} Wh + b = [x_t, h_{t-1}] W + b, with W = [Wx; Wh] (D + H, 4H): one product a step.
        # Row t of xh holds [x_t, h_{t-1}]; the loop writes h_t into the right part of row t + 1.
        W = _fast.prepare_weight(torch.cat([Wx, Wh]))
        xh = x.new_empty((T + 1, N, D + H))
        xh[:T, :, :D] = x
        xh[0, :, D:] = h0
        h = xh[:, :, D:]  # h[0] = h0, h[t + 1] = h_t
        gates = x.new_empty((T, N, H4))  # i, f, o, g of every step
        c = x.new_empty((T + 1, N, H))  # c[0] = c0, c[t + 1] = c_t
        tanh_c = x.new_empty((T, N, H))
        c[0] = c0
        xh_, a_, ifo_, g_ = xh.unbind(0), gates.unbind(0), gates[..., :H3].unbind(0), gates[..., H3:].unbind(0)
        i_, f_, o_ = gates[..., :H].unbind(0), gates[..., H : 2 * H].unbind(0), gates[..., 2 * H : H3].unbind(0)
        h_, c_, tanh_c_ = h.unbind(0), c.unbind(0), tanh_c.unbind(0)
        for t in range(T):
            _fast.addmm(b, xh_[t], W, out=a_[t])  # a = [x_t, h_{t-1}] W + b   (N, 4H)
            ifo_[t].sigmoid_()  # i, f, o = σ(a_i), σ(a_f), σ(a_o)
            g_[t].tanh_()  # g = tanh(a_g)
            torch.mul(f_[t], c_[t], out=c_[t + 1]).addcmul_(i_[t], g_[t])  # c_t = f ⊙ c_{t-1} + i ⊙ g
            torch.tanh(c_[t + 1], out=tanh_c_[t])
            torch.mul(o_[t], tanh_c_[t], out=h_[t + 1])  # h_t = o ⊙ tanh(c_t)
        ctx.save_for_backward(xh, Wx, Wh, gates, c, tanh_c)
        ctx.set_materialize_grads(False)  # an output nothing reads gets None in backward, not a tensor of zeros
        return h[1:], h[T].clone(), c[T].clone()

    @staticmethod
    def backward(ctx, dout, dh_n, dc_n):
        xh, Wx, Wh, gates, c, tanh_c = ctx.saved_tensors
        T, N, _ = gates.shape
        D, H = Wx.shape[0], Wh.shape[0]
        x = xh[:, :, :D]
        H2, H3, H4 = 2 * H, 3 * H, 4 * H

        # Factors that do not depend on the recurrence:
        #   dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ K_t,        K = o ⊙ (1 - tanh(c)^2)
        #   da_i = dc ⊙ g ⊙ i(1-i),  da_f = dc ⊙ c_{t-1} ⊙ f(1-f),
        #   da_o = dh ⊙ tanh(c) ⊙ o(1-o),  da_g = dc ⊙ i ⊙ (1 - g^2)
        # i.e. da = [dc, dc, dh, dc] ⊙ Q.
        one, K, Q = x.new_ones(()), x.new_empty((T, N, H)), x.new_empty((T, N, H4))

        def factors(s: slice) -> None:
            """K and Q of the steps in `s`. Speed only: the loop asks for 4 steps at a time, just before it needs
            them, so that it finds them in the CPU's cache (all T at once would not fit); nothing else changes."""
            gs, tcs, q = gates[s], tanh_c[s], Q[s]
            torch.addcmul(one, tcs, tcs, value=-1, out=K[s]).mul_(gs[..., H2:H3])
            sig = gs[..., :H3]
            torch.addcmul(sig, sig, sig, value=-1, out=q[..., :H3])  # σ(1-σ) for i, f, o
            q[..., :H].mul_(gs[..., H3:])
            q[..., H:H2].mul_(c[s])  # c_{t-1} for step t is c[t]
            q[..., H2:H3].mul_(tcs)
            torch.addcmul(one, gs[..., H3:], gs[..., H3:], value=-1, out=q[..., H3:]).mul_(gs[..., :H])

        dA = Q  # the loop turns Q into the gate gradients da_t, in place
        Qif_, Qo_, Qg_ = Q.view(T, N, 4, H)[:, :, :2].unbind(0), Q[..., H2:H3].unbind(0), Q[..., H3:].unbind(0)
        K_, f_, dA_ = K.unbind(0), gates[..., H:H2].unbind(0), dA.unbind(0)
        dout_ = dout.unbind(0) if dout is not None else None  # None: the outputs h_1..h_T are not used
        WhT_ = _fast.prepare_weight(Wh.t())  # (4H, H): da Whᵀ
        dh = dh_n.clone() if dh_n is not None else x.new_zeros((N, H))  # dL/dh_t, total
        if dout is not None:
            dh += dout_[T - 1]
        dc = dc_n.clone() if dc_n is not None else x.new_zeros((N, H))
        dc1 = dc.unsqueeze(1)  # dc as (N, 1, H), to multiply the i and f blocks at once
        factors_from = T  # K and Q are ready for steps factors_from..T-1
        for t in range(T - 1, -1, -1):
            if t < factors_from:
                factors_from = max(0, t + 1 - 4)
                factors(slice(factors_from, t + 1))
            dc.addcmul_(dh, K_[t])  # dL/dc_t, total
            Qif_[t].mul_(dc1)  # da_i, da_f = dc ⊙ Q_i, dc ⊙ Q_f
            Qg_[t].mul_(dc)  # da_g = dc ⊙ Q_g
            Qo_[t].mul_(dh)  # da_o = dh ⊙ Q_o: the o gate reads dh, not dc
            dc.mul_(f_[t])  # the c_{t-1} part of dL/dc_{t-1}
            if t > 0 and dout is not None:  # dL/dh_{t-1}: what the output h_{t-1} receives + da_t Whᵀ
                dh = _fast.addmm(dout_[t - 1], dA_[t], WhT_)
            else:
                dh = _fast.mm(dA_[t], WhT_)

        # The weight gradients and dx do not depend on the recurrence: one product each over all T steps.
        dA_flat = dA.view(T * N, H4)
        need = ctx.needs_input_grad
        dx = _fast.mm(dA_flat, Wx.t()).view(T, N, D) if need[0] else None
        dWx = dWh = None
        if need[3] or need[4]:  # [dWx; dWh] = Σ_t [x_t, h_{t-1}]ᵀ da_t, one product
            dW = _fast.mm(xh[:T].reshape(T * N, D + H).t(), dA_flat)
            dWx, dWh = dW[:D], dW[D:]
        db = dA_flat.sum(0) if need[5] else None  # Σ_t da_t
        return dx, (dh if need[1] else None), (dc if need[2] else None), dWx, dWh, db


class ScratchLSTMLayer(nn.Module):
    """One layer's parameters in the sheet's layout: Wx (D, 4H), Wh (H, 4H), b (4H,), gates i, f, o, g."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.Wx = nn.Parameter(torch.empty(input_size, 4 * hidden_size))
        self.Wh = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size))
        self.b = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # as nn.LSTM
        for p in (self.Wx, self.Wh, self.b):
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, dtype: torch.dtype | None = None):
        """x (T, N, D) time-major, h0/c0 (N, H) → output (T, N, H), h_T (N, H), c_T (N, H)."""
        Wx, Wh, b = self.Wx, self.Wh, self.b
        if dtype is not None and Wx.dtype != dtype:
            Wx, Wh, b = Wx.to(dtype), Wh.to(dtype), b.to(dtype)
        return _LSTMLayerFunction.apply(x, h0, c0, Wx, Wh, b)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class ScratchLSTM(nn.Module):
    """Multi-layer LSTM with the sheet's equations and a hand-written backward; nn.LSTM's interface.

    forward(input (N, T, D) if batch_first else (T, N, D) [or unbatched (T, D)],
            hx=None or (h0, c0) each (num_layers, N, H))
        -> output (N, T, H) (top layer's h_t for every t), (h_n, c_n) each (num_layers, N, H)

    Parameters: `layers[k].Wx` (D_k, 4H), `layers[k].Wh` (H, 4H), `layers[k].b` (4H,), gate order
    i, f, o, g. Dropout (training mode only) is applied to the outputs of every layer but the last,
    as nn.LSTM does. Under `torch.autocast` the layer runs in the autocast dtype (as nn.LSTM does
    on CPU); gradients flow back to the float32 parameters.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        if num_layers < 1:
            raise ValueError("num_layers must be at least 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.layers = nn.ModuleList(
            ScratchLSTMLayer(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers)
        )

    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        unbatched = input.dim() == 2
        if unbatched:
            input = input.unsqueeze(0 if self.batch_first else 1)
            if hx is not None:
                hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        if input.dim() != 3:
            raise ValueError(f"ScratchLSTM expects a 2-D or 3-D input, got shape {tuple(input.shape)}")
        x = input.transpose(0, 1) if self.batch_first else input  # (T, N, D)
        T, N, _ = x.shape
        L, H = self.num_layers, self.hidden_size

        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            dtype = torch.get_autocast_dtype(device_type)  # as nn.LSTM under autocast
        else:
            dtype = self.layers[0].Wx.dtype
        if hx is None:
            h0 = c0 = x.new_zeros(L, N, H, dtype=dtype)
        else:
            h0, c0 = hx
            if h0.shape != (L, N, H) or c0.shape != (L, N, H):
                raise ValueError(f"hx must be two tensors of shape {(L, N, H)}, got {tuple(h0.shape)}, {tuple(c0.shape)}")
            h0, c0 = h0.to(dtype), c0.to(dtype)
        x = x.to(dtype).contiguous()

        h_n, c_n = [], []
        with torch.autocast(device_type, enabled=False):
            for k, layer in enumerate(self.layers):
                x, h, c = layer(x, h0[k], c0[k], dtype)
                h_n.append(h)
                c_n.append(c)
                if self.dropout > 0 and self.training and k < L - 1:
                    x = F.dropout(x, self.dropout, training=True)
        output = x.transpose(0, 1) if self.batch_first else x
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if unbatched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return output, (h_n, c_n)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, dropout={self.dropout}")


@torch.no_grad()
def from_torch_lstm(lstm: nn.LSTM) -> ScratchLSTM:
    """A `ScratchLSTM` computing exactly what `lstm` computes (same dtype and device).

    Needs a unidirectional nn.LSTM without projections (proj_size=0).
    """
    if lstm.bidirectional or getattr(lstm, "proj_size", 0):
        raise ValueError("only unidirectional nn.LSTM without proj_size can be converted")
    ref = lstm.weight_ih_l0
    scratch = ScratchLSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.batch_first, lstm.dropout)
    scratch.to(device=ref.device, dtype=ref.dtype)
    for k, layer in enumerate(scratch.layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")
        bias = (getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")) if lstm.bias else w_ih.new_zeros(len(w_ih))
        for param, value in zip((layer.Wx, layer.Wh, layer.b), torch_to_sheet_weights(w_ih, w_hh, bias)):
            param.copy_(value)
    return scratch


@torch.no_grad()
def to_torch_lstm(scratch: ScratchLSTM) -> nn.LSTM:
    """An `nn.LSTM` computing exactly what `scratch` computes: all of `b` in bias_ih, zeros in bias_hh."""
    ref = scratch.layers[0].Wx
    lstm = nn.LSTM(scratch.input_size, scratch.hidden_size, scratch.num_layers, batch_first=scratch.batch_first,
                   dropout=scratch.dropout)
    lstm.to(device=ref.device, dtype=ref.dtype)
    for k, layer in enumerate(scratch.layers):
        for name, value in zip(("weight_ih", "weight_hh", "bias_ih"), sheet_to_torch_weights(layer.Wx, layer.Wh, layer.b)):
            getattr(lstm, f"{name}_l{k}").copy_(value)
        getattr(lstm, f"bias_hh_l{k}").zero_()
    return lstm
