// Warp-level primitives. Blocks are multiples of 32 threads; lane = threadIdx.x % 32.

// sums[w] = sum over warp w of x, by a __shfl_down_sync tree (only lane 0 holds the total).
extern "C" __global__ void warp_sum_down(const float* __restrict__ x, float* __restrict__ sums) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = x[i];
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  if ((threadIdx.x & 31) == 0) sums[i / 32] = v;
}

// every lane gets its warp's sum through a __shfl_xor_sync butterfly; all[i] = that sum.
extern "C" __global__ void warp_sum_xor(const double* __restrict__ x, double* __restrict__ all) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  double v = x[i];
  for (int mask = 16; mask > 0; mask >>= 1) v += __shfl_xor_sync(0xffffffffu, v, mask);
  all[i] = v;
}

// inclusive prefix sum within each warp (__shfl_up_sync), and a broadcast of lane 5 (__shfl_sync).
extern "C" __global__ void warp_scan(const int* __restrict__ x, int* __restrict__ scan, int* __restrict__ bcast) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x & 31;
  int v = x[i];
  for (int d = 1; d < 32; d <<= 1) {
    int up = __shfl_up_sync(0xffffffffu, v, d);
    if (lane >= d) v += up;
  }
  scan[i] = v;
  bcast[i] = __shfl_sync(0xffffffffu, x[i], 5);
}

// ballots[w] = bit mask of the lanes of warp w with x > 0; any/all of the same predicate.
extern "C" __global__ void warp_vote(const float* __restrict__ x, unsigned int* __restrict__ ballots,
                                     int* __restrict__ any_all) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int pred = x[i] > 0.0f;
  const unsigned int b = __ballot_sync(0xffffffffu, pred);
  const int any = __any_sync(0xffffffffu, pred);
  const int all = __all_sync(0xffffffffu, pred);
  __syncwarp();
  if ((threadIdx.x & 31) == 0) {
    ballots[i / 32] = b;
    any_all[2 * (i / 32)] = any;
    any_all[2 * (i / 32) + 1] = all;
  }
}

// Half the warp calls a shuffle with a mask naming the whole warp, the other half exits: deadlock.
extern "C" __global__ void warp_partial_shuffle(float* x) {
  if ((threadIdx.x & 31) < 16) x[threadIdx.x] = __shfl_down_sync(0xffffffffu, x[threadIdx.x], 1);
}

// Sub-warp shuffles (width 8), __reduce_add_sync, __match_any_sync and __activemask.
extern "C" __global__ void warp_extras(const int* __restrict__ x, int* __restrict__ down8, int* __restrict__ idx8,
                                       int* __restrict__ red, unsigned int* __restrict__ match,
                                       unsigned int* __restrict__ active) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int v = x[i];
  down8[i] = __shfl_down_sync(0xffffffffu, v, 3, 8);
  idx8[i] = __shfl_sync(0xffffffffu, v, 2, 8);
  red[i] = __reduce_add_sync(0xffffffffu, v);
  match[i] = __match_any_sync(0xffffffffu, v & 3);
  active[i] = __activemask();
}
