// Atomic updates from many threads of many blocks.

// hist[bin[i]] += 1 (int atomics) and total += x[i] (float atomics), max_bin = max over bin[i].
extern "C" __global__ void histogram(const int* __restrict__ bin, const float* __restrict__ x, int n,
                                     int* __restrict__ hist, float* __restrict__ total, int* __restrict__ max_bin,
                                     unsigned int* __restrict__ count) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  atomicAdd(&hist[bin[i]], 1);
  atomicAdd(total, x[i]);
  atomicMax(max_bin, bin[i]);
  atomicAdd(count, 1u);
}

// The classic CAS loop: double-precision atomic add built from atomicCAS on 64-bit words.
extern "C" __global__ void cas_add(const double* __restrict__ x, int n, double* __restrict__ total) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned long long* addr = (unsigned long long*)total;
  unsigned long long old = *addr, assumed;
  do {
    assumed = old;
    old = atomicCAS(addr, assumed, __double_as_longlong(__longlong_as_double(assumed) + x[i]));
  } while (assumed != old);
}
