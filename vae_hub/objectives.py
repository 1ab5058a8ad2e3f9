"""The evidence lower bound and its two regularizers, in nats per image.

For an image x with encoder q(z|x) = N(μ, diag σ²), prior p(z) = N(0, I) and Bernoulli decoder p(x|z):

    ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))          (Kingma & Welling 2014, eq. 3)
    loss    = −ELBO = reconstruction + regularizer          ("nELBO", minimised)

Both expectations are estimated with one reparameterized sample z = μ + σ·ε, ε ~ N(0, I), so gradients flow
through z (the reparameterization trick). The two regularizers differ only in how the KL is estimated:

* ``sgvb``     (estimator A): the Monte Carlo value log q(z|x) − log p(z) at that same z.
* ``kl_wo_e``  (estimator B, "KL without expectation"): the closed form, no sampling.

Note: SGVB is a *pathwise* (reparameterization) gradient estimator, not a score-function (REINFORCE)
estimator, whatever the original text said. ``score_function_surrogate`` below is a real score-function
estimator, kept as a clearly labelled teaching baseline.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)
# Factors sigmoid(|l|) ∈ [½, 1) multiplied together before one log: at most 2^6, so a product is ≥ 2^-64 and never
# underflows (float32's smallest normal is 2^-126).
_FOLDS = 6


def reconstruction(logits: Tensor, x: Tensor) -> Tensor:
    """−log p(x|z) = Σ_pixels [softplus(l) − x·l], the Bernoulli NLL (BCE with logits l), per image. Shape (N,)."""
    return _BernoulliNLL.apply(logits, x.reshape_as(logits))


class _BernoulliNLL(torch.autograd.Function):
    """BCE with logits summed over pixels, the same values up to float rounding as
    ``F.binary_cross_entropy_with_logits`` and about 4× faster on the CPU (forward and backward of a 256×784 batch
    on one thread: 0.43 ms against 1.6–2.1 ms).

    Why: on this CPU PyTorch's ``exp``, ``log`` and ``log1p`` cost 1.4–3 ns per element, its ``sigmoid`` 0.4 ns.
    So the forward computes p = sigmoid(l) once and uses softplus(l) = max(l, 0) − log sigmoid(|l|) with
    sigmoid(|l|) = max(p, 1 − p), summing the logs as logs of products (:func:`_sum_log`, one log per 64 pixels).
    The backward, ∂/∂l = p − x, reuses p (the data x gets no gradient).
    """

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor) -> Tensor:
        nll, p = bernoulli_nll_and_probs(logits, x)
        ctx.save_for_backward(p, x)
        return nll

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        p, x = ctx.saved_tensors
        return (p - x).mul_(grad.unsqueeze(-1)), None


def bernoulli_nll_and_probs(logits: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """The Bernoulli NLL per row (see :class:`_BernoulliNLL`) and p = sigmoid(logits), whose p − x is its
    gradient. Plain tensor ops, no autograd."""
    p = torch.sigmoid(logits)
    buf = logits.clamp(min=0).addcmul_(x, logits, value=-1)
    nll = buf.sum(-1)  # Σ max(l, 0) − x·l
    # sigmoid(|l|) = max(p, 1 − p) = |p − ½| + ½, into the same buffer: one large temporary, not three (on a
    # (1000, 784) batch, fresh allocations cost more in page faults than the arithmetic)
    nll -= _sum_log(torch.sub(p, 0.5, out=buf).abs_().add_(0.5))
    return nll, p


def _sum_log(p: Tensor) -> Tensor:
    """Σ log p over the last dim, for p ∈ [½, 1]: multiply halves together in place (up to 2^_FOLDS factors per
    product), then take far fewer logs. Overwrites ``p``."""
    width = p.shape[-1]
    for _ in range(_FOLDS):
        if width < 2:
            break
        half = width // 2
        p[..., :half] *= p[..., width - half : width]  # for an odd width the middle column stays as it is
        width -= half
    if p.shape[-1] > 1000:
        return p[..., :width].log().sum(-1)
    # The last few products multiplied in float64 (≥ 2^-1000, still a normal number), then one log per row:
    # logs of a few strided columns cost far more per element than the folds.
    return p[..., :width].double().prod(-1).log().to(p.dtype)


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; μ, diag σ²) = −½ Σ_j [log 2π + log σ²_j + (z_j − μ_j)² / σ²_j], per row."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I) = −½ Σ_j [log 2π + z_j²], per row."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def sgvb(mu: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
    """Estimator A: KL ≈ log q(z|x) − log p(z) at the reparameterized sample z. Unbiased, noisy. Shape (N,)."""
    return log_normal(z, mu, logvar) - log_standard_normal(z)


def kl_wo_e(mu: Tensor, logvar: Tensor, z: Tensor | None = None) -> Tensor:
    """Estimator B: KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), exact. Shape (N,).

    ``z`` is accepted (and ignored) so that both regularizers share one signature.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


Regularizer = Callable[[Tensor, Tensor, Tensor], Tensor]
REGULARIZERS: dict[str, Regularizer] = {"sgvb": sgvb, "kl_wo_e": kl_wo_e}


def get_regularizer(name: str) -> Regularizer:
    try:
        return REGULARIZERS[name]
    except KeyError:
        raise ValueError(f"unknown regularizer {name!r}; choose one of {sorted(REGULARIZERS)}") from None


class Terms(NamedTuple):
    """Per-image values in nats, shape (N,): loss = rec + kl = −ELBO."""

    loss: Tensor
    rec: Tensor
    kl: Tensor


def elbo_terms(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor, z: Tensor, regularizer: str) -> Terms:
    """Reconstruction and the chosen KL estimate, side by side: nELBO = rec + kl."""
    rec = reconstruction(logits, x)
    kl = get_regularizer(regularizer)(mu, logvar, z)
    return Terms(rec + kl, rec, kl)


def training_objective(terms: Terms, kl_weight: float = 1.0) -> Tensor:
    """The scalar a training step minimises: mean_i [rec_i + β·kl_i], with β < 1 during a KL warm-up."""
    return terms.loss.mean() if kl_weight == 1.0 else (terms.rec + kl_weight * terms.kl).mean()


def score_function_surrogate(mu: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
    """Teaching baseline: the KL's gradient by the score-function (REINFORCE) estimator.

    ∇_φ E_q[f(z)] = E_q[f(z) ∇_φ log q(z|x)] with z *detached*, f = log q − log p. Its value equals the SGVB
    estimate; only its gradient differs (typically with far higher variance). Not used for training.
    """
    z = z.detach()
    f = (log_normal(z, mu, logvar) - log_standard_normal(z)).detach()
    logq = log_normal(z, mu, logvar)
    # Gradient of the surrogate: (f + 1) ∇log q. The "+1" is E_q[∇_φ f] = E_q[∇ log q] (zero in expectation),
    # from f's own dependence on φ; keeping it leaves the estimator exactly unbiased.
    return f + (f + 1.0) * (logq - logq.detach())


# Rows of (sample, image) pairs whose 784 logits are made, used and dropped at a time: 1024 rows are 3 MiB in
# float32, small enough to stay in cache between the steps below, large enough that Python's per-op cost is small.
IWAE_BLOCK_ROWS = 1024


def _draws(mu: Tensor, logvar: Tensor, k: int, chunk: int, generator: torch.Generator | None):
    """z_k = μ + σ·ε for K samples, ``chunk`` at a time, each (c, N, D). Both IWAE paths draw the same noise."""
    std = torch.exp(0.5 * logvar)
    for start in range(0, k, chunk):
        c = min(chunk, k - start)
        eps = torch.randn((c, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        yield mu + std * eps


def _log_mean_exp(log_w_parts: list[Tensor]) -> Tensor:
    log_w = torch.cat(log_w_parts)  # (K, N)
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


@torch.no_grad()
def iwae_bound_reference(
    model: torch.nn.Module,
    x: Tensor,
    k: int = 1000,
    chunk: int = 100,
    generator: torch.Generator | None = None,
    nll: Callable[[Tensor, Tensor], Tensor] = reconstruction,
) -> Tensor:
    """:func:`iwae_bound` computed the plain way: decode every z_k to 784 logits, then the Bernoulli NLL ``nll``
    (logits, x) → per-row values.

    Kept as the readable definition, and as the baseline that the fast path is tested and benchmarked against.
    """
    mu, logvar = model.encode(x)
    x = x.reshape(mu.shape[0], -1).to(mu.dtype)
    log_w_parts = []
    for z in _draws(mu, logvar, k, chunk, generator):
        logits = model.decode_logits(z.reshape(-1, mu.shape[-1])).reshape(z.shape[0], x.shape[0], -1)
        log_px_z = -nll(logits, x.expand_as(logits))
        log_w_parts.append(log_px_z + log_standard_normal(z) - log_normal(z, mu, logvar))
    return _log_mean_exp(log_w_parts)


@torch.no_grad()
def iwae_bound(
    model: torch.nn.Module, x: Tensor, k: int = 1000, chunk: int = 100, generator: torch.Generator | None = None
) -> Tensor:
    """Importance-weighted bound (Burda et al. 2016), per image, in nats (a log-likelihood, ≤ 0):

        log p(x) ≥ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

    computed with logsumexp over K samples, drawn ``chunk`` at a time to bound memory. K=1 gives the ELBO.
    With the same ``generator`` state it draws the same z_k as :func:`iwae_bound_reference` and returns the same
    values up to float rounding, about 2.2× faster than it, and about 4× faster than the same bound written with
    ``binary_cross_entropy_with_logits`` (see ``benchmarks/bench_iwae.py`` and the Speed section of
    docs/training.md).

    How: with l = W h + b the decoder's last Linear applied to its hidden layer h,

        log p(x|z) = Σ_p x_p l_p − softplus(l_p) = (x − ½)·l − Σ_p log(2 cosh(l_p / 2))
                   = h·Wᵀ(x − ½) + b·(x − ½) − ½ Σ_p |l_p| + Σ_p log sigmoid(|l_p|).

    The first two terms are linear in h: one 128-vector per image instead of 784 products per sample. The rest
    depends on z only; it is summed over cache-sized blocks of logits, so no (K, N, 784) tensor is ever built,
    and the log is taken once per product of up to 64 sigmoids (the CPU ``log`` is several times slower than
    ``sigmoid`` here). That leaves the W h matmul as most of the cost. The blocks are shared out to
    ``torch.get_num_threads()`` threads that run one op at a time each (see :class:`_Workers`).
    """
    decoder = getattr(model, "decoder", None)
    if not (isinstance(decoder, torch.nn.Sequential) and isinstance(decoder[-1], torch.nn.Linear)):
        return iwae_bound_reference(model, x, k, chunk, generator)
    mu, logvar = model.encode(x)
    threads = torch.get_num_threads() if mu.device.type == "cpu" else 1
    log_w_parts = []
    with _Workers(threads) as run:
        log_px = _BernoulliBlocks(decoder, x.reshape(mu.shape[0], -1).to(mu.dtype), threads)
        for z in _draws(mu, logvar, k, chunk, generator):
            rows = z.reshape(-1, mu.shape[-1])  # row r is sample r // N of image r % N
            log_px_z = torch.empty(len(rows), device=mu.device, dtype=mu.dtype)
            run(partial(log_px.block, rows, log_px_z), range(0, len(rows), IWAE_BLOCK_ROWS))
            log_w_parts.append(log_px_z.view(z.shape[:2]) + log_standard_normal(z) - log_normal(z, mu, logvar))
    return _log_mean_exp(log_w_parts)


class _BernoulliBlocks:
    """log p(x|z) for the rows of a (sample, image) grid, a block of rows at a time (see :func:`iwae_bound`)."""

    def __init__(self, decoder: torch.nn.Sequential, x: Tensor, threads: int) -> None:
        self.hidden, self.out = decoder[:-1], decoder[-1]
        x_half = x - 0.5
        # Rows r, r+1, … of the grid are images r % N, (r+1) % N, …: a contiguous slice of the per-image
        # terms Wᵀ(x − ½) and b·(x − ½) repeated, so no gather is needed.
        self.n = len(x)
        reps = -(-IWAE_BLOCK_ROWS // self.n) + 1
        self.u = (x_half @ self.out.weight).repeat(reps, 1)
        self.beta = (x_half @ self.out.bias).repeat(reps)
        # One logits buffer per thread, reused: a fresh 3 MiB tensor per block costs page faults.
        self.buffers = [x.new_empty(IWAE_BLOCK_ROWS, self.out.out_features) for _ in range(threads)]

    def block(self, rows: Tensor, result: Tensor, r: int, worker: int) -> None:
        """result[r : r + B] = log p(x|z) for rows[r : r + B], in this worker's buffer."""
        h = self.hidden(rows[r : r + IWAE_BLOCK_ROWS])
        m, o = len(h), r % self.n
        logits = torch.addmm(self.out.bias, h, self.out.weight.t(), out=self.buffers[worker][:m])
        value = torch.linalg.vecdot(h, self.u[o : o + m]).add_(self.beta[o : o + m])
        value -= logits.abs_().sum(-1).mul_(0.5)
        value += _sum_log(logits.sigmoid_())
        result[r : r + m] = value


class _Workers:
    """``with _Workers(t) as run: run(fn, items)`` calls ``fn(item, worker)`` for every item on t threads.

    Why not PyTorch's own intra-op threads: they split every op and meet at a barrier after each, dozens of
    times per block; when another job takes one of the cores, every barrier waits for that thread's next time
    slice. On the 2-core development machine the fast bound for 200 images took 0.35 s on two intra-op threads
    with both cores free, but 23.7 s in the next run, when they were not (0.62 s on one thread). Here each
    thread takes whole blocks from a shared queue and runs its ops single-threaded, so a thread that loses its
    core delays only its own block (0.37–0.52 s in the same runs). PyTorch's thread count is set to 1 meanwhile
    (a process-wide setting, restored on exit).
    """

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)

    def __enter__(self) -> _Workers:
        if self.threads > 1:
            self.pool = ThreadPoolExecutor(self.threads)
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.threads > 1:
            self.pool.shutdown()
            torch.set_num_threads(self.threads)

    def __call__(self, fn: Callable[[int, int], None], items: Iterable[int]) -> None:
        if self.threads == 1:
            for item in items:
                fn(item, 0)
            return
        queue = iter(items)
        lock = threading.Lock()
        grad = torch.is_grad_enabled()  # a thread-local setting: the workers take the caller's

        def work(worker: int) -> None:
            with torch.set_grad_enabled(grad):
                while True:
                    with lock:
                        item = next(queue, None)
                    if item is None:
                        return
                    fn(item, worker)

        for future in [self.pool.submit(work, w) for w in range(self.threads)]:
            future.result()
