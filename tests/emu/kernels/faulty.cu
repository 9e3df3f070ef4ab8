// Kernels with deliberate bugs, each of which the emulator must report.
#include <assert.h>

// Threads >= 16 return early: the barrier can never be reached by the whole block.
extern "C" __global__ void barrier_in_branch(float* x) {
  if (threadIdx.x < 16) {
    x[threadIdx.x] += 1.0f;
    __syncthreads();
  }
}

// Two halves of the block wait at two different barriers.
extern "C" __global__ void divergent_barriers(float* x) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  x[threadIdx.x] = 1.0f;
}

// Writes n + extra elements of `dst` (the first `extra` are past its end).
extern "C" __global__ void write_past_end(float* __restrict__ dst, int n, int extra) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n + extra) dst[i] = 1.0f;
}

// Reads src[i + shift]: past the end of `src` (the second argument) for the last `shift` threads.
extern "C" __global__ void read_shifted(const float* __restrict__ ok, const float* __restrict__ src,
                                        float* __restrict__ out, int n, int shift) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = ok[i] + src[i + shift];
}

// Reads before the start of x.
extern "C" __global__ void read_before_start(const double* __restrict__ x, double* __restrict__ y) {
  y[threadIdx.x] = x[(int)threadIdx.x - 4096];
}

// Traps when it meets a negative value.
extern "C" __global__ void trap_on_negative(const float* __restrict__ x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n && x[i] < 0.0f) __trap();
}

// Fails an assert() when it meets a negative value.
extern "C" __global__ void assert_non_negative(const float* __restrict__ x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) assert(x[i] >= 0.0f);
}

// Dynamic shared memory indexed one element past what the launch provides.
extern "C" __global__ void dyn_shared_overflow(float* out) {
  extern __shared__ float s[];
  s[threadIdx.x + 1] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}

// 256 KiB of local array: more than an emulated thread's stack.
extern "C" __global__ void huge_local_array(float* out, int i) {
  volatile float big[65536];
  big[i] = 1.0f;
  out[0] = big[i];
}

// Lanes 0-15 shuffle while lanes 16-31 vote, both naming the whole warp.
extern "C" __global__ void warp_op_mismatch(float* x) {
  float v = x[threadIdx.x];
  if (threadIdx.x < 16) v = __shfl_down_sync(0xffffffffu, v, 1);
  else v = (float)__ballot_sync(0xffffffffu, v > 0.0f);
  x[threadIdx.x] = v;
}
