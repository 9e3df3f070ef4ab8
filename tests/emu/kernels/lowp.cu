// __half and __nv_bfloat16 (cuda_fp16.h / cuda_bf16.h): conversions over bit patterns, arithmetic and
// comparisons in kernels, and low-precision kernel parameters.
#include <cuda_fp16.h>
#include <cuda_bf16.h>

// to_float[i] = the float value of bit pattern bits[i]; from_float[i] = the bits of x[i] rounded.
#define LOWP_CONVERSIONS(NAME, FROM_BITS, TO_FLOAT, FROM_FLOAT, TO_BITS)                                     \
  extern "C" __global__ void NAME(const unsigned short* __restrict__ bits, float* __restrict__ to_float,     \
                                  const float* __restrict__ x, unsigned short* __restrict__ from_float, int n, \
                                  int m) {                                                                  \
    const int i = blockIdx.x * blockDim.x + threadIdx.x;                                                    \
    if (i < n) to_float[i] = TO_FLOAT(FROM_BITS(bits[i]));                                                  \
    if (i < m) from_float[i] = TO_BITS(FROM_FLOAT(x[i]));                                                   \
  }
LOWP_CONVERSIONS(half_conversions, __ushort_as_half, __half2float, __float2half_rn, __half_as_ushort)
LOWP_CONVERSIONS(bfloat16_conversions, __ushort_as_bfloat16, __bfloat162float, __float2bfloat16_rn,
                 __bfloat16_as_ushort)

// y[i] = x[i] * s + x[i] - s (each step rounded to the type), flags[i] = (x < s) | (x == s) << 1 | (x >= s) << 2,
// pair[i] = the halves of (x[i], s) * (s, x[i]) + (x[i], x[i]) unpacked with __low2float/__high2float.
#define LOWP_ARITH(NAME, T, T2, PAIR)                                                                       \
  extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ y, int* __restrict__ flags,       \
                                  float* __restrict__ pair, T s, int n) {                                   \
    const int i = blockIdx.x * blockDim.x + threadIdx.x;                                                    \
    if (i >= n) return;                                                                                     \
    const T v = x[i];                                                                                       \
    T r = v * s;                                                                                            \
    r += v;                                                                                                 \
    y[i] = __hsub(r, s);                                                                                    \
    flags[i] = (v < s) | (__heq(v, s) << 1) | ((v >= s) << 2);                                             \
    const T2 p = PAIR(v, s) * PAIR(s, v) + PAIR(v, v);                                                      \
    pair[2 * i] = __low2float(p);                                                                           \
    pair[2 * i + 1] = __high2float(p);                                                                      \
  }
LOWP_ARITH(half_arith, __half, __half2, __halves2half2)
LOWP_ARITH(bfloat16_arith, __nv_bfloat16, __nv_bfloat162, __halves2bfloat162)

// out[i] = __floats2half2_rn(a[i], b[i]) as stored in a __half2 array (x low, y high).
extern "C" __global__ void pack_half2(const float* __restrict__ a, const float* __restrict__ b,
                                      __half2* __restrict__ out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __floats2half2_rn(a[i], b[i]);
}
