// Shared by every kernel family. NVRTC has no host headers: nothing here (or in a family) may include
// <cmath>, <cstdio>, use std:: or INFINITY.
#pragma once

// The storage type. Each family is compiled once per dtype with -DT=float or -DT=double; the families
// that also take 16-bit tensors (pooling, batch norm) with -DT=gpucnn_u16 and -DGPUCNN_F16 (float16) or
// -DGPUCNN_BF16 (bfloat16): the arrays hold the bit patterns.
#ifndef T
#define T float
#endif
typedef unsigned short gpucnn_u16;

// ACC: the arithmetic type (float for the 16-bit types, else T). Kernels load with gpucnn_load (T -> ACC,
// exact), compute in ACC and store with gpucnn_store (ACC -> T, rounding once to nearest even), so a
// 16-bit kernel computes what its float32 twin computes on the same values, then rounds.
#if defined(GPUCNN_F16) || defined(GPUCNN_BF16)
#include "lowp.cuh"
typedef float ACC;
#if defined(GPUCNN_F16)
__device__ __forceinline__ float gpucnn_load(gpucnn_u16 v) { return gpucnn_half_bits_to_float(v); }
__device__ __forceinline__ gpucnn_u16 gpucnn_store(float v) { return gpucnn_float_to_half_bits(v); }
#else
__device__ __forceinline__ float gpucnn_load(gpucnn_u16 v) { return gpucnn_bf16_bits_to_float(v); }
__device__ __forceinline__ gpucnn_u16 gpucnn_store(float v) { return gpucnn_float_to_bf16_bits(v); }
#endif
#else
typedef T ACC;
__device__ __forceinline__ T gpucnn_load(T v) { return v; }
__device__ __forceinline__ T gpucnn_store(T v) { return v; }
#endif

#define GPUCNN_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

// +/- infinity without <cmath>: bit patterns, valid for float and double.
__device__ __forceinline__ float gpucnn_neg_inf(float) { return __int_as_float(0xff800000); }
__device__ __forceinline__ double gpucnn_neg_inf(double) { return __longlong_as_double(0xfff0000000000000LL); }

// Round-to-nearest multiply/add that the compiler may not contract into an FMA: for small host-side
// formulas a kernel must reproduce bit for bit (e.g. NumPy's `(1 - m) * a + m * b`).
__device__ __forceinline__ float gpucnn_mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double gpucnn_mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float gpucnn_add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double gpucnn_add_rn(double a, double b) { return __dadd_rn(a, b); }

// Sum of v over the 32 lanes of a warp, returned to every lane. All 32 lanes must call it (full mask).
// A butterfly (xor) tree: the pairing is fixed and IEEE addition is commutative, so every lane gets the
// same bits, independent of scheduling: deterministic.
template <typename A>
__device__ __forceinline__ A gpucnn_warp_sum(A v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of v over a 1-D block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
// `scratch` is shared memory for 32 values of A. Every thread of the block must call it (it holds two
// __syncthreads()); it can be called again right away with the same scratch. Fixed reduction order
// (warp trees, then a tree over the warps' sums in warp order): deterministic.
template <typename A>
__device__ __forceinline__ A gpucnn_block_sum(A v, A* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = gpucnn_warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = gpucnn_warp_sum(lane < warps ? scratch[lane] : A(0));  // every warp reduces the same partials
  __syncthreads();                                           // scratch is free again
  return v;
}
