// Batch normalization kernels: training statistics (+ running-statistics update), normalisation,
// backward reductions and the input gradient.
//
// Layout: x, y, gy, gx are C-contiguous (N, C, L) arrays, L = the product of the spatial sizes (1 for an
// (N, C) input): element (n, c, l) is at (n * C + c) * L + l, so channel c is N runs of L contiguous
// values. Per-channel vectors (mean, var, invstd, weight, bias, running statistics, sums) have C values.
// Launched by gpucnn/functions/batch_norm.py, which holds the NumPy path of the same algorithm (the
// statistics and the running-statistics update match it to a float32 rounding; the elementwise kernels
// apply invstd and weight one after the other where the NumPy path folds them into one factor, a
// rounding apart; tests/functions/test_batch_norm.py bounds both); indexing is 32-bit
// (the launcher checks N * C * L <= 2^31 - 1). Reductions have a fixed order (per-thread strided sums,
// then gpucnn_block_sum's trees) and there are no atomics: results are deterministic.
#include "common.cuh"

// Threads per block of the per-channel reductions (one block per channel; any multiple of 32 up to this).
#ifndef BN_THREADS
#define BN_THREADS 256
#endif
// Threads per block of the elementwise kernels.
#ifndef BN_APPLY_THREADS
#define BN_APPLY_THREADS 256
#endif
// The accumulator type of the channel reductions. double, also for float data: the NumPy path
// accumulates its mean and variance in float64 and casts them back, so its float32 mean is right to
// within rounding even when |mean| >> std (e.g. 1e4 + N(0, 1)). A float accumulator over N*H*W values
// (1e5..1e6 per channel) drifts by several ulp of |mean|, and every x_hat moves by that error / std
// (1e-3 at 1e4 + N(0, 1), where one float32 ulp of the mean is already 1e-3). With double partial sums
// the kernel's mean is the NumPy path's to within one float32 rounding. The cost is small: these
// reductions are memory-bound, and per loaded float they add one conversion and one or two FP64
// operations (FP64 runs at half the FP32 rate on data-centre GPUs; on 1/64-rate consumer parts it stays
// near the load rate). -DBN_ACC=float trades that accuracy for FP32 arithmetic.
#ifndef BN_ACC
#define BN_ACC double
#endif
typedef BN_ACC acc_t;

// Walks the N * L elements of one channel of an (N, C, L) array, `step` elements at a time from element
// `start` (element m = n * L + l), without a division per element: the (n, l) position advances by
// (step / L, step % L) with a carry.
struct ChannelCursor {
  int n, l, n_step, l_step, L;
  __device__ __forceinline__ ChannelCursor(int start, int step, int L_)
      : n(start / L_), l(start % L_), n_step(step / L_), l_step(step % L_), L(L_) {}
  __device__ __forceinline__ bool before(int N) const { return n < N; }
  __device__ __forceinline__ int offset(int C, int c) const { return (n * C + c) * L + l; }
  __device__ __forceinline__ void advance() {
    n += n_step;
    l += l_step;
    if (l >= L) {
      l -= L;
      ++n;
    }
  }
};

// ---------------------------------------------------------------------------------------------------
// batch_norm_forward_stats (training): one block per channel c = blockIdx.x (grid (C,), block
// (BN_THREADS,)); thread t reduces elements t, t + blockDim.x, ... of channel c of x (N, C, L).
// Two passes over the channel, as the NumPy path: mean = sum(x) / count, then the biased variance
// var = sum((x - mean)^2) / count with (x - mean) and its square formed in T (NumPy's float32 `xc` and
// `np.square(xc)`), both sums in acc_t and cast to T like NumPy's float64 means. Writes mean[c], var[c]
// and invstd[c] = 1 / sqrt(var + eps). With update != 0 also updates running_mean[c] and running_var[c]
// in place exactly as the NumPy path (no FMA contraction):
//   running_mean = (1 - m) * running_mean + m * mean
//   running_var  = (1 - m) * running_var  + m * (var * unbias),   unbias = count / (count - 1)
// with one_minus_momentum = (1 - m), momentum = m and unbias rounded to T by the launcher, as NumPy
// rounds those Python floats. With update == 0 the running pointers are not touched (any array).
extern "C" __global__ void __launch_bounds__(BN_THREADS)
batch_norm_forward_stats(const T* __restrict__ x, int N, int C, int L, T eps, int update, T momentum,
                         T one_minus_momentum, T unbias, T* __restrict__ mean, T* __restrict__ var,
                         T* __restrict__ invstd, T* running_mean, T* running_var) {
  __shared__ acc_t scratch[32];
  const int c = blockIdx.x;
  const int count = N * L;

  acc_t sum = acc_t(0);
  for (ChannelCursor it(threadIdx.x, blockDim.x, L); it.before(N); it.advance()) sum += acc_t(x[it.offset(C, c)]);
  const T mu = T(gpucnn_block_sum(sum, scratch) / acc_t(count));

  acc_t sq = acc_t(0);
  for (ChannelCursor it(threadIdx.x, blockDim.x, L); it.before(N); it.advance()) {
    const T d = x[it.offset(C, c)] - mu;
    sq += acc_t(d * d);
  }
  const T v = T(gpucnn_block_sum(sq, scratch) / acc_t(count));

  if (threadIdx.x == 0) {
    mean[c] = mu;
    var[c] = v;
    invstd[c] = T(1) / sqrt(v + eps);
    if (update) {
      running_mean[c] = gpucnn_add_rn(gpucnn_mul_rn(one_minus_momentum, running_mean[c]), gpucnn_mul_rn(momentum, mu));
      running_var[c] = gpucnn_add_rn(gpucnn_mul_rn(one_minus_momentum, running_var[c]),
                                     gpucnn_mul_rn(momentum, gpucnn_mul_rn(v, unbias)));
    }
  }
}

// batch_norm_invstd (eval): one thread per channel (grid-x covers C): invstd[c] = 1 / sqrt(var[c] + eps)
// for the running variance (already cast to T).
extern "C" __global__ void __launch_bounds__(BN_APPLY_THREADS)
batch_norm_invstd(const T* __restrict__ var, int C, T eps, T* __restrict__ invstd) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) invstd[c] = T(1) / sqrt(var[c] + eps);
}

// batch_norm_forward_apply: grid (C, chunks), block (BN_APPLY_THREADS,): blockIdx.x is the channel c,
// and the threads of the chunks blockIdx.y = 0 .. gridDim.y - 1 stride over the channel's N * L
// elements (gridDim.y * blockDim.x apart), one output element per visit:
//   y = ((x - mean[c]) * invstd[c]) * weight[c] + bias[c]
// (the NumPy path computes (x - mean) * (invstd * weight) + bias, a rounding apart; has_weight /
// has_bias == 0: that step is skipped, and the pointer is not read: pass any array).
extern "C" __global__ void __launch_bounds__(BN_APPLY_THREADS)
batch_norm_forward_apply(const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ invstd,
                         const T* __restrict__ weight, int has_weight, const T* __restrict__ bias,
                         int has_bias, int N, int C, int L, T* __restrict__ y) {
  const int c = blockIdx.x;
  const T mu = mean[c], s = invstd[c];
  const T w = has_weight ? weight[c] : T(1), b = has_bias ? bias[c] : T(0);
  for (ChannelCursor it(blockIdx.y * blockDim.x + threadIdx.x, gridDim.y * blockDim.x, L); it.before(N);
       it.advance()) {
    const int o = it.offset(C, c);
    T v = (x[o] - mu) * s;
    if (has_weight) v *= w;
    if (has_bias) v += b;
    y[o] = v;
  }
}

// ---------------------------------------------------------------------------------------------------
// batch_norm_backward_reduce: one block per channel c = blockIdx.x (grid (C,), block (BN_THREADS,));
// thread t visits elements t, t + blockDim.x, ... of channel c of x and gy (N, C, L) and accumulates in
// acc_t: sum_gy[c] = sum(gy) and sum_gy_xhat[c] = sum(gy * x_hat), x_hat = (x - mean[c]) * invstd[c]
// and the product formed in T (the NumPy path sums gy * (x - mean) and scales the sum by invstd[c]: a
// rounding apart per element). These are dbeta and dgamma, and feed the
// training-mode input gradient.
extern "C" __global__ void __launch_bounds__(BN_THREADS)
batch_norm_backward_reduce(const T* __restrict__ x, const T* __restrict__ gy, const T* __restrict__ mean,
                           const T* __restrict__ invstd, int N, int C, int L, T* __restrict__ sum_gy,
                           T* __restrict__ sum_gy_xhat) {
  __shared__ acc_t scratch[32];
  const int c = blockIdx.x;
  const T mu = mean[c], s = invstd[c];
  acc_t a = acc_t(0), b = acc_t(0);
  for (ChannelCursor it(threadIdx.x, blockDim.x, L); it.before(N); it.advance()) {
    const int o = it.offset(C, c);
    const T g = gy[o];
    const T xhat = (x[o] - mu) * s;
    a += acc_t(g);
    b += acc_t(g * xhat);
  }
  a = gpucnn_block_sum(a, scratch);
  b = gpucnn_block_sum(b, scratch);
  if (threadIdx.x == 0) {
    sum_gy[c] = T(a);
    sum_gy_xhat[c] = T(b);
  }
}

// batch_norm_backward_dx: grid (C, chunks), block (BN_APPLY_THREADS,), the mapping of
// batch_norm_forward_apply: one input-gradient element per visit. With scale = weight[c] * invstd[c]
// (invstd[c] without weight):
//   training: gx = scale * ((gy - sum_gy[c] / count) - x_hat * (sum_gy_xhat[c] / count))
//   eval:     gx = gy * scale                       (sum_gy, sum_gy_xhat, x, mean not read)
// x_hat = (x - mean[c]) * invstd[c]; `count` = N * L rounded to T (as NumPy rounds the Python int).
extern "C" __global__ void __launch_bounds__(BN_APPLY_THREADS)
batch_norm_backward_dx(const T* __restrict__ x, const T* __restrict__ gy, const T* __restrict__ mean,
                       const T* __restrict__ invstd, const T* __restrict__ weight, int has_weight,
                       const T* __restrict__ sum_gy, const T* __restrict__ sum_gy_xhat, int training,
                       T count, int N, int C, int L, T* __restrict__ gx) {
  const int c = blockIdx.x;
  const T s = invstd[c];
  const T scale = has_weight ? weight[c] * s : s;
  const int start = blockIdx.y * blockDim.x + threadIdx.x, step = gridDim.y * blockDim.x;
  if (training) {
    const T mu = mean[c];
    const T mean_gy = sum_gy[c] / count, mean_gy_xhat = sum_gy_xhat[c] / count;
    for (ChannelCursor it(start, step, L); it.before(N); it.advance()) {
      const int o = it.offset(C, c);
      const T xhat = (x[o] - mu) * s;
      gx[o] = scale * ((gy[o] - mean_gy) - xhat * mean_gy_xhat);
    }
  } else {
    for (ChannelCursor it(start, step, L); it.before(N); it.advance()) {
      const int o = it.offset(C, c);
      gx[o] = gy[o] * scale;
    }
  }
}
