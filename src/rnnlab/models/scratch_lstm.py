"""The lab sheet's LSTM written out in PyTorch, with its backward pass written by hand.

Each layer holds the sheet's parameters (CS231n assignment 3 layout):

    Wx (D, 4H), Wh (H, 4H), b (4H,)          gate order i, f, o, g

    a_t = x_t Wx + h_{t-1} Wh + b            (N, 4H), split as i, f, o, g
    i = σ(a_i)  f = σ(a_f)  o = σ(a_o)  g = tanh(a_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

`ScratchLSTM` is a drop-in for `nn.LSTM(..., batch_first=True)`: it returns `(output, (h_n, c_n))`
and accepts an optional `(h0, c0)`. One `torch.autograd.Function` per layer runs the time loop in
place in preallocated buffers and computes the gradient from the equations above:

* the input projection `x_t Wx + b` of all T steps is one matrix product before the loop;
* the loop does only the recurrent product `h_{t-1} Wh` (in place into the gate buffer) and the
  element-wise cell update, and keeps the activated gates for the backward pass;
* the backward loop carries only (dh, dc) and writes the gate gradients dA (T, N, 4H);
  everything that does not depend on the recurrence is computed for all steps at once;
* dWx, dWh and db together are ONE product over all T steps after the loop
  ([x_t | h_{t-1} | 1]ᵀ da_t), and dx is one product too.

Speed (CPU, float32): products go to oneDNN (`torch.ops.mkldnn._linear_pointwise`), the GEMM
nn.LSTM itself uses on CPU (torch.mm's MKL sgemm runs at half its speed on e.g. AMD EPYC); tanh is
evaluated as 2σ(2z) - 1 (ATen's CPU tanh is ~7x slower than its sigmoid); big buffers come from a
small workspace pool, reused only once nothing references them (no page faults every step).
float64, bfloat16 (autocast) and CUDA tensors take plain torch.mm/addmm.

`from_torch_lstm`/`to_torch_lstm` convert to and from `nn.LSTM` (gate order i, f, g, o, weights
transposed, two biases whose sum is `b`).
"""

from __future__ import annotations

import math
import threading

import torch
from torch import nn
from torch.nn import functional as F

# nn.LSTM row blocks are (i, f, g, o); the sheet's column blocks are (i, f, o, g).
_TORCH_TO_SHEET = (0, 1, 3, 2)  # sheet block k comes from torch block _TORCH_TO_SHEET[k]
_SHEET_TO_TORCH = (0, 1, 3, 2)  # the permutation is its own inverse


def _reorder_blocks(t: torch.Tensor, order: tuple[int, ...], dim: int) -> torch.Tensor:
    chunks = t.chunk(4, dim=dim)
    return torch.cat([chunks[k] for k in order], dim=dim)


_HAS_ONEDNN_LINEAR = (
    torch.backends.mkldnn.is_available()
    and hasattr(torch.ops, "mkldnn")
    and hasattr(torch.ops.mkldnn, "_linear_pointwise")
)


def _onednn_ok(t: torch.Tensor) -> bool:
    """Whether products on `t` go to oneDNN's GEMM (CPU float32), the GEMM nn.LSTM uses on CPU.

    On some CPUs (e.g. AMD EPYC) MKL's sgemm, which `torch.mm` calls, runs at half oneDNN's speed.
    Everything else (float64, bfloat16, CUDA) uses the ordinary torch products.
    """
    return _HAS_ONEDNN_LINEAR and t.device.type == "cpu" and t.dtype == torch.float32


def _weight(w: torch.Tensor, onednn: bool) -> torch.Tensor:
    """`w` (out, K) prepared once for repeated products: a oneDNN tensor, or `w` itself."""
    return w.contiguous().to_mkldnn() if onednn else w


def _linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, onednn: bool) -> torch.Tensor:
    """x (M, K) @ w.T + bias, with w given as (out, K) (any strides)."""
    if onednn:
        return torch.ops.mkldnn._linear_pointwise(x, w, bias, "none", [], "")
    return torch.addmm(bias, x, w.t()) if bias is not None else torch.mm(x, w.t())


def _linear_add(x: torch.Tensor, other: torch.Tensor, w: torch.Tensor, onednn: bool) -> torch.Tensor:
    """other + x @ w.T (a new tensor), with w given as (out, K)."""
    if onednn:
        return torch.ops.mkldnn._linear_pointwise.binary(x, other, w, None, "add")
    return torch.addmm(other, x, w.t())


def _storage_uses(t: torch.Tensor) -> int:
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


class _Workspace:
    """Reusable buffers, so that a training step does not fault in fresh pages for every big tensor.

    `get` hands out a view of a pooled tensor that nothing else references any more (counted on
    its storage: saved-for-backward tensors, outputs and their views all hold it), else allocates.
    At most `MAX_PER_KEY` buffers per (shape, dtype, device) and `MAX_BYTES` in all are kept.
    """

    MAX_PER_KEY = 6
    MAX_BYTES = 256 * 2**20

    def __init__(self):
        self.pool: dict[tuple, list[tuple[torch.Tensor, int]]] = {}
        self.bytes = 0
        self.lock = threading.Lock()
        self.enabled = hasattr(torch._C, "_storage_Use_Count")

    def get(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return like.new_empty(shape)
        key = (shape, like.dtype, like.device)
        with self.lock:
            entries = self.pool.setdefault(key, [])
            for buf, idle in entries:
                if _storage_uses(buf) == idle:
                    return buf.view(shape)
            buf = like.new_empty(shape)
            nbytes = buf.numel() * buf.element_size()
            if len(entries) < self.MAX_PER_KEY and self.bytes + nbytes <= self.MAX_BYTES:
                entries.append((buf, _storage_uses(buf)))
                self.bytes += nbytes
            return buf.view(shape)

    def clear(self) -> None:
        with self.lock:
            self.pool.clear()
            self.bytes = 0


_WORKSPACE = _Workspace()


class _LSTMLayerFunction(torch.autograd.Function):
    """One LSTM layer over a whole time-major sequence.

    forward(x (T, N, D), h0 (N, H), c0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,))
        -> output (T, N, H) (h_1..h_T), h_T (N, H), c_T (N, H)

    Saved for backward: the activated gates (T, N, 4H) in order i, f, o, g, the cell states
    c_0..c_T (T+1, N, H), tanh(c_1..c_T) (T, N, H) and h_0..h_T (T+1, N, H).
    tanh is computed as 2σ(2z) - 1 (PyTorch's CPU tanh is several times slower than its sigmoid):
    the g columns of the weights are doubled so that one sigmoid covers all four gates.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, Wx, Wh, b):
        T, N, D = x.shape
        H = Wh.shape[0]
        H2, H3, H4 = 2 * H, 3 * H, 4 * H
        onednn = _onednn_ok(x)
        scale = x.new_ones(H4)
        scale[H3:] = 2.0
        WxT2 = (Wx * scale).t()  # (4H, D), g columns doubled
        WhT2 = _weight((Wh * scale).t(), onednn)  # (4H, H)
        b2 = b * scale
        # Input projection of all steps, one product: (T, N, 4H).
        gx = _linear(x.reshape(T * N, D), WxT2, b2, onednn).view(T, N, H4)
        ws = _WORKSPACE
        gates = ws.get((T, N, H4), x)
        hbuf = ws.get((T + 1, N, H), x)  # hbuf[0] = h0, hbuf[t + 1] = h_t
        cbuf = ws.get((T + 1, N, H), x)  # cbuf[0] = c0, cbuf[t + 1] = c_t
        tanh_c = ws.get((T, N, H), x)
        hbuf[0].copy_(h0)
        cbuf[0].copy_(c0)
        hs, cs, tcs, gxs, gs = hbuf.unbind(0), cbuf.unbind(0), tanh_c.unbind(0), gx.unbind(0), gates.unbind(0)
        gis, gfs = gates[..., :H].unbind(0), gates[..., H:H2].unbind(0)
        gos, ggs = gates[..., H2:H3].unbind(0), gates[..., H3:].unbind(0)
        for t in range(T):
            a = _linear_add(hs[t], gxs[t], WhT2, onednn)  # x_t Wx + b + h_{t-1} Wh   (N, 4H)
            torch.sigmoid(a, out=gs[t])  # i, f, o = σ(a); last block σ(2 a_g)
            g = ggs[t]
            g.mul_(2).sub_(1)  # g = tanh(a_g)
            c = cs[t + 1]
            torch.mul(gfs[t], cs[t], out=c)  # f ⊙ c_{t-1}
            c.addcmul_(gis[t], g)  # + i ⊙ g
            tc = tcs[t]
            torch.mul(c, 2, out=tc)
            tc.sigmoid_().mul_(2).sub_(1)  # tanh(c_t)
            torch.mul(gos[t], tc, out=hs[t + 1])  # h_t = o ⊙ tanh(c_t)
        ctx.save_for_backward(x, Wx, Wh, gates, hbuf, cbuf, tanh_c)
        return hbuf[1:], hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, dout, dh_n, dc_n):
        x, Wx, Wh, gates, hbuf, cbuf, tanh_c = ctx.saved_tensors
        T, N, D = x.shape
        H = Wh.shape[0]
        H2, H3, H4 = 2 * H, 3 * H, 4 * H
        onednn = _onednn_ok(x)
        ws = _WORKSPACE
        i, o, g = gates[..., :H], gates[..., H2:H3], gates[..., H3:]

        # Step-independent factors, for all steps at once:
        #   dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ K_t,        K = o ⊙ (1 - tanh(c)^2)
        #   da_i = dc ⊙ g ⊙ i(1-i),  da_f = dc ⊙ c_{t-1} ⊙ f(1-f),
        #   da_o = dh ⊙ tanh(c) ⊙ o(1-o),  da_g = dc ⊙ i ⊙ (1 - g^2)
        # i.e. da = [dc, dc, dh, dc] ⊙ Q.
        one = x.new_ones(())
        K = ws.get((T, N, H), x)
        torch.addcmul(one, tanh_c, tanh_c, value=-1, out=K).mul_(o)
        Q = ws.get((T, N, H4), x)
        sig = gates[..., :H3]
        torch.addcmul(sig, sig, sig, value=-1, out=Q[..., :H3])  # σ(1-σ) for i, f, o
        Q[..., :H].mul_(g)
        Q[..., H:H2].mul_(cbuf[:T])
        Q[..., H2:H3].mul_(tanh_c)
        torch.addcmul(one, g, g, value=-1, out=Q[..., H3:]).mul_(i)

        dA = ws.get((T, N, H4), x)
        Q4s, dA4s = Q.view(T, N, 4, H).unbind(0), dA.view(T, N, 4, H).unbind(0)
        Qos, dAos = Q[..., H2:H3].unbind(0), dA[..., H2:H3].unbind(0)
        Ks, fs, dAs = K.unbind(0), gates[..., H:H2].unbind(0), dA.unbind(0)
        douts = dout.unbind(0)
        Whw = _weight(Wh, onednn)  # (H, 4H) read as (out, K): da Whᵀ
        dh = douts[T - 1] + dh_n  # dL/dh_t, total
        dc = dc_n.clone()
        dc1 = dc.unsqueeze(1)
        for t in range(T - 1, -1, -1):
            dc.addcmul_(dh, Ks[t])  # dL/dc_t, total
            torch.mul(dc1, Q4s[t], out=dA4s[t])
            torch.mul(dh, Qos[t], out=dAos[t])  # the o gate reads dh, not dc
            dc.mul_(fs[t])  # the c_{t-1} part of dL/dc_{t-1}
            if t > 0:
                dh = _linear_add(dAs[t], douts[t - 1], Whw, onednn)  # dout_{t-1} + da_t Whᵀ
            else:
                dh = _linear(dAs[0], Whw, None, onednn)  # dL/dh0 = da_0 Whᵀ

        dA_flat = dA.view(T * N, H4)
        need = ctx.needs_input_grad
        dx = _linear(dA_flat, Wx, None, onednn).view(T, N, D) if need[0] else None
        dWx = dWh = db = None
        if need[3] or need[4] or need[5]:
            # dWx, dWh and db as ONE product over all T steps: [x_t | h_{t-1} | 1]ᵀ da_t summed over t.
            xh1 = ws.get((D + H + 1, T * N), x)
            xh1[:D].copy_(x.reshape(T * N, D).t())
            xh1[D : D + H].copy_(hbuf[:T].reshape(T * N, H).t())
            xh1[D + H].fill_(1.0)
            dW = _linear(xh1, dA_flat.t(), None, onednn)  # (D + H + 1, 4H)
            dWx, dWh, db = dW[:D], dW[D : D + H], dW[D + H]
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

    Wx = W_ih[i,f,o,g]ᵀ, Wh = W_hh[i,f,o,g]ᵀ, b = (b_ih + b_hh)[i,f,o,g]. Needs a unidirectional
    nn.LSTM without projections (proj_size=0).
    """
    if lstm.bidirectional or getattr(lstm, "proj_size", 0):
        raise ValueError("only unidirectional nn.LSTM without proj_size can be converted")
    ref = lstm.weight_ih_l0
    scratch = ScratchLSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.batch_first, lstm.dropout)
    scratch.to(device=ref.device, dtype=ref.dtype)
    for k, layer in enumerate(scratch.layers):
        w_ih = getattr(lstm, f"weight_ih_l{k}")
        w_hh = getattr(lstm, f"weight_hh_l{k}")
        layer.Wx.copy_(_reorder_blocks(w_ih, _TORCH_TO_SHEET, 0).t())
        layer.Wh.copy_(_reorder_blocks(w_hh, _TORCH_TO_SHEET, 0).t())
        if lstm.bias:
            bias = getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")
            layer.b.copy_(_reorder_blocks(bias, _TORCH_TO_SHEET, 0))
        else:
            layer.b.zero_()
    return scratch


@torch.no_grad()
def to_torch_lstm(scratch: ScratchLSTM) -> nn.LSTM:
    """An `nn.LSTM` computing exactly what `scratch` computes: all of `b` in bias_ih, zeros in bias_hh."""
    ref = scratch.layers[0].Wx
    lstm = nn.LSTM(scratch.input_size, scratch.hidden_size, scratch.num_layers, batch_first=scratch.batch_first,
                   dropout=scratch.dropout)
    lstm.to(device=ref.device, dtype=ref.dtype)
    for k, layer in enumerate(scratch.layers):
        getattr(lstm, f"weight_ih_l{k}").copy_(_reorder_blocks(layer.Wx.t(), _SHEET_TO_TORCH, 0))
        getattr(lstm, f"weight_hh_l{k}").copy_(_reorder_blocks(layer.Wh.t(), _SHEET_TO_TORCH, 0))
        getattr(lstm, f"bias_ih_l{k}").copy_(_reorder_blocks(layer.b, _SHEET_TO_TORCH, 0))
        getattr(lstm, f"bias_hh_l{k}").zero_()
    return lstm


def sheet_to_torch_weights(Wx: torch.Tensor, Wh: torch.Tensor, b: torch.Tensor):
    """Sheet layout (Wx (D,4H), Wh (H,4H), b (4H,), i,f,o,g) → nn.LSTM's (W_ih (4H,D), W_hh (4H,H), b_ih (4H,)), i,f,g,o."""
    return (_reorder_blocks(Wx.t(), _SHEET_TO_TORCH, 0), _reorder_blocks(Wh.t(), _SHEET_TO_TORCH, 0),
            _reorder_blocks(b, _SHEET_TO_TORCH, 0))
