// partial[b] = sum of x[b*BLOCK : (b+1)*BLOCK]: shared-memory tree reduction, one block of BLOCK threads.
// -DDROP_SYNC removes the barriers (a deliberate race the emulator must expose).
#ifndef BLOCK
#define BLOCK 256
#endif
#ifdef DROP_SYNC
#define SYNC()
#else
#define SYNC() __syncthreads()
#endif

extern "C" __global__ void block_sum(const float* __restrict__ x, float* __restrict__ partial, int n) {
  __shared__ float s[BLOCK];
  const int tid = threadIdx.x;
  const int i = blockIdx.x * BLOCK + tid;
  s[tid] = i < n ? x[i] : 0.0f;
  SYNC();
  for (int stride = BLOCK / 2; stride > 0; stride >>= 1) {
    if (tid < stride) s[tid] += s[tid + stride];
    SYNC();
  }
  if (tid == 0) partial[blockIdx.x] = s[0];
}

// y[b*blockDim + t] = x[b*blockDim + blockDim-1-t] through dynamic shared memory (shared_mem = blockDim*4).
extern "C" __global__ void reverse_blocks(const float* __restrict__ x, float* __restrict__ y) {
  extern __shared__ float buf[];
  const int t = threadIdx.x, base = blockIdx.x * blockDim.x;
  buf[t] = x[base + t];
  __syncthreads();
  y[base + t] = buf[blockDim.x - 1 - t];
}

// out[i] = the static shared value thread i sees without anyone having written it (poisoned: NaN).
extern "C" __global__ void read_uninitialised_shared(float* out) {
  __shared__ float never_written[64];
  out[threadIdx.x] = never_written[threadIdx.x];
}

// Count and-/or-reduction over predicates with the __syncthreads_* variants.
extern "C" __global__ void barrier_votes(const int* __restrict__ flags, int* __restrict__ out) {
  const int f = flags[threadIdx.x];
  const int count = __syncthreads_count(f);
  const int all = __syncthreads_and(f);
  const int any = __syncthreads_or(f);
  if (threadIdx.x == 0) {
    out[0] = count;
    out[1] = all;
    out[2] = any;
  }
}
