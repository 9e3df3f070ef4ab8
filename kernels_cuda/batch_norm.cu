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
//
// Element types (see common.cuh): x, y, gy, gx are T, also the 16-bit float types as bit patterns; the
// per-channel vectors and scalars are ACC (float for 16-bit T: the launcher hands float32 statistics,
// weight and bias), elements are loaded into ACC and stored rounded once. So a float16 / bfloat16 run
// computes what float32 computes on the same values (statistics in double, as above), then rounds y.
#include "common.cuh"

// Threads per block of the per-channel reductions (any multiple of 32 up to this).
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
  // Before element m = end_n * L + end_l (compared as (n, l): no n * L product that could overflow).
  __device__ __forceinline__ bool before(int end_n, int end_l) const { return n < end_n || (n == end_n && l < end_l); }
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
// The per-channel reductions are split over `splits` blocks per channel so that a layer with few channels
// still fills the GPU (64 channels are 64 blocks: a tenth of what an H100 keeps in flight): block
// (c, s) = (blockIdx.x, blockIdx.y) reduces the elements m = s * per .. min((s + 1) * per, N * L) - 1 of
// channel c (element m = n * L + l), thread t the elements t, t + blockDim.x, ... of that range, and writes
// the block's sum to part[c * splits + s]; a finishing kernel adds the splits' sums in split order. Fixed
// orders, no atomics: deterministic for given shapes (the launcher derives splits and per from them).
// Sums are in acc_t: part is an acc_t array (the launcher allocates float64, BN_ACC's default).

// batch_norm_stats_partial (training): grid (C, splits), block (BN_THREADS,), the split mapping above.
// center == 0: part = sum(x) over the block's range; center != 0: part = sum((x - mean[c])^2), with
// (x - mean) and its square formed in T (as the NumPy path's float32 d and np.square(d)).
extern "C" __global__ void __launch_bounds__(BN_THREADS)
batch_norm_stats_partial(const T* __restrict__ x, int N, int C, int L, int per, int center,
                         const ACC* __restrict__ mean, acc_t* __restrict__ part) {
  __shared__ acc_t scratch[32];
  const int c = blockIdx.x, s = blockIdx.y;
  const int end = s + 1 < (int)gridDim.y ? (s + 1) * per : N * L;  // (the last split: up to N * L)
  const ACC mu = center ? mean[c] : ACC(0);
  acc_t sum = acc_t(0);
  for (ChannelCursor it(s * per + threadIdx.x, blockDim.x, L); it.before(end / L, end % L); it.advance()) {
    const ACC v = gpucnn_load(x[it.offset(C, c)]);
    if (center) {
      const ACC d = v - mu;
      sum += acc_t(d * d);
    } else {
      sum += acc_t(v);
    }
  }
  sum = gpucnn_block_sum(sum, scratch);
  if (threadIdx.x == 0) part[c * gridDim.y + s] = sum;
}

// batch_norm_stats_finish (training): one thread per channel c (grid-x covers C), after
// batch_norm_stats_partial. stage 0: mean[c] = T(sum of part[c, :] / count). stage 1: var[c] = T(sum /
// count) (biased), invstd[c] = 1 / sqrt(var + eps), and with update != 0 the running statistics, in place
// and exactly as the NumPy path (no FMA contraction):
//   running_mean = (1 - m) * running_mean + m * mean
//   running_var  = (1 - m) * running_var  + m * (var * unbias),   unbias = count / (count - 1)
// with one_minus_momentum = (1 - m), momentum = m and unbias rounded to T by the launcher, as NumPy
// rounds those Python floats. With update == 0 the running pointers are not touched (any array).
extern "C" __global__ void __launch_bounds__(BN_APPLY_THREADS)
batch_norm_stats_finish(const acc_t* __restrict__ part, int splits, int C, int count, int stage, ACC eps,
                        int update, ACC momentum, ACC one_minus_momentum, ACC unbias, ACC* __restrict__ mean,
                        ACC* __restrict__ var, ACC* __restrict__ invstd, ACC* running_mean, ACC* running_var) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  acc_t sum = part[c * splits];
  for (int s = 1; s < splits; ++s) sum += part[c * splits + s];
  const ACC stat = ACC(sum / acc_t(count));
  if (stage == 0) {
    mean[c] = stat;
    return;
  }
  var[c] = stat;
  invstd[c] = ACC(1) / sqrt(stat + eps);
  if (update) {
    running_mean[c] = gpucnn_add_rn(gpucnn_mul_rn(one_minus_momentum, running_mean[c]), gpucnn_mul_rn(momentum, mean[c]));
    running_var[c] = gpucnn_add_rn(gpucnn_mul_rn(one_minus_momentum, running_var[c]),
                                   gpucnn_mul_rn(momentum, gpucnn_mul_rn(stat, unbias)));
  }
}

// batch_norm_invstd (eval): one thread per channel (grid-x covers C): invstd[c] = 1 / sqrt(var[c] + eps)
// for the running variance (already cast to T).
extern "C" __global__ void __launch_bounds__(BN_APPLY_THREADS)
batch_norm_invstd(const ACC* __restrict__ var, int C, ACC eps, ACC* __restrict__ invstd) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) invstd[c] = ACC(1) / sqrt(var[c] + eps);
}

// batch_norm_forward_apply: grid (C, chunks), block (BN_APPLY_THREADS,): blockIdx.x is the channel c,
// and the threads of the chunks blockIdx.y = 0 .. gridDim.y - 1 stride over the channel's N * L
// elements (gridDim.y * blockDim.x apart), one output element per visit:
//   y = ((x - mean[c]) * invstd[c]) * weight[c] + bias[c]
// (the NumPy path computes (x - mean) * (invstd * weight) + bias, a rounding apart; has_weight /
// has_bias == 0: that step is skipped, and the pointer is not read: pass any array).
extern "C" __global__ void __launch_bounds__(BN_APPLY_THREADS)
batch_norm_forward_apply(const T* __restrict__ x, const ACC* __restrict__ mean, const ACC* __restrict__ invstd,
                         const ACC* __restrict__ weight, int has_weight, const ACC* __restrict__ bias,
                         int has_bias, int N, int C, int L, T* __restrict__ y) {
  const int c = blockIdx.x;
  const ACC mu = mean[c], s = invstd[c];
  const ACC w = has_weight ? weight[c] : ACC(1), b = has_bias ? bias[c] : ACC(0);
  for (ChannelCursor it(blockIdx.y * blockDim.x + threadIdx.x, gridDim.y * blockDim.x, L); it.before(N);
       it.advance()) {
    const int o = it.offset(C, c);
    ACC v = (gpucnn_load(x[o]) - mu) * s;
    if (has_weight) v *= w;
    if (has_bias) v += b;
    y[o] = gpucnn_store(v);
  }
}

// ---------------------------------------------------------------------------------------------------
// batch_norm_backward_partial: grid (C, splits), block (BN_THREADS,), the split mapping of the statistics
// above; per block the sums, in acc_t, of gy and of gy * x_hat over its range of channel c, x_hat =
// (x - mean[c]) * invstd[c] and the product formed in T (the NumPy path sums gy * (x - mean) and scales
// the sum by invstd[c]: a rounding apart per element), to part_gy[c, s] and part_gy_xhat[c, s].
extern "C" __global__ void __launch_bounds__(BN_THREADS)
batch_norm_backward_partial(const T* __restrict__ x, const T* __restrict__ gy, const ACC* __restrict__ mean,
                            const ACC* __restrict__ invstd, int N, int C, int L, int per,
                            acc_t* __restrict__ part_gy, acc_t* __restrict__ part_gy_xhat) {
  __shared__ acc_t scratch[32];
  const int c = blockIdx.x, s = blockIdx.y;
  const int end = s + 1 < (int)gridDim.y ? (s + 1) * per : N * L;  // (the last split: up to N * L)
  const ACC mu = mean[c], is = invstd[c];
  acc_t a = acc_t(0), b = acc_t(0);
  for (ChannelCursor it(s * per + threadIdx.x, blockDim.x, L); it.before(end / L, end % L); it.advance()) {
    const int o = it.offset(C, c);
    const ACC g = gpucnn_load(gy[o]);
    const ACC xhat = (gpucnn_load(x[o]) - mu) * is;
    a += acc_t(g);
    b += acc_t(g * xhat);
  }
  a = gpucnn_block_sum(a, scratch);
  b = gpucnn_block_sum(b, scratch);
  if (threadIdx.x == 0) {
    part_gy[c * gridDim.y + s] = a;
    part_gy_xhat[c * gridDim.y + s] = b;
  }
}

// batch_norm_backward_finish: one thread per channel c (grid-x covers C): sum_gy[c] and sum_gy_xhat[c],
// the splits' sums added in split order and cast to T. These are dbeta and dgamma, and feed the
// training-mode input gradient.
extern "C" __global__ void __launch_bounds__(BN_APPLY_THREADS)
batch_norm_backward_finish(const acc_t* __restrict__ part_gy, const acc_t* __restrict__ part_gy_xhat, int splits,
                           int C, ACC* __restrict__ sum_gy, ACC* __restrict__ sum_gy_xhat) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  acc_t a = part_gy[c * splits], b = part_gy_xhat[c * splits];
  for (int s = 1; s < splits; ++s) {
    a += part_gy[c * splits + s];
    b += part_gy_xhat[c * splits + s];
  }
  sum_gy[c] = ACC(a);
  sum_gy_xhat[c] = ACC(b);
}

// batch_norm_backward_dx: grid (C, chunks), block (BN_APPLY_THREADS,), the mapping of
// batch_norm_forward_apply: one input-gradient element per visit. With scale = weight[c] * invstd[c]
// (invstd[c] without weight):
//   training: gx = scale * ((gy - sum_gy[c] / count) - x_hat * (sum_gy_xhat[c] / count))
//   eval:     gx = gy * scale                       (sum_gy, sum_gy_xhat, x, mean not read)
// x_hat = (x - mean[c]) * invstd[c]; `count` = N * L rounded to T (as NumPy rounds the Python int).
extern "C" __global__ void __launch_bounds__(BN_APPLY_THREADS)
batch_norm_backward_dx(const T* __restrict__ x, const T* __restrict__ gy, const ACC* __restrict__ mean,
                       const ACC* __restrict__ invstd, const ACC* __restrict__ weight, int has_weight,
                       const ACC* __restrict__ sum_gy, const ACC* __restrict__ sum_gy_xhat, int training,
                       ACC count, int N, int C, int L, T* __restrict__ gx) {
  const int c = blockIdx.x;
  const ACC s = invstd[c];
  const ACC scale = has_weight ? weight[c] * s : s;
  const int start = blockIdx.y * blockDim.x + threadIdx.x, step = gridDim.y * blockDim.x;
  if (training) {
    const ACC mu = mean[c];
    const ACC mean_gy = sum_gy[c] / count, mean_gy_xhat = sum_gy_xhat[c] / count;
    for (ChannelCursor it(start, step, L); it.before(N); it.advance()) {
      const int o = it.offset(C, c);
      const ACC xhat = (gpucnn_load(x[o]) - mu) * s;
      gx[o] = gpucnn_store(scale * ((gpucnn_load(gy[o]) - mean_gy) - xhat * mean_gy_xhat));
    }
  } else {
    for (ChannelCursor it(start, step, L); it.before(N); it.advance()) {
      const int o = it.offset(C, c);
      gx[o] = gpucnn_store(gpucnn_load(gy[o]) * scale);
    }
  }
}
