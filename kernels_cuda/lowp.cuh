// 16-bit floating point without cuda_fp16.h / cuda_bf16.h (the NVRTC of the nvidia-cuda-nvrtc wheels ships
// neither header): float16 and bfloat16 values travel as their bit patterns (unsigned short) and are
// converted here with integer code, bit exact. float <- 16 bits is exact; 16 bits <- float rounds to
// nearest even, as __float2half_rn / __float2bfloat16_rn (IEEE 754 roundTiesToEven; NaN stays a quiet
// NaN, overflow goes to Inf, float16 subnormals are produced).
#pragma once

__device__ __forceinline__ unsigned short gpucnn_float_to_half_bits(float f) {
  const unsigned u = __float_as_uint(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return (unsigned short)(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));  // NaN, Inf
  if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // >= 65520 rounds to Inf
  unsigned q, rem, half;
  if (a >= 0x38800000u) {  // a normal half: rebias the exponent (127 -> 15), drop 13 mantissa bits
    const unsigned b = a - 0x38000000u;
    q = b >> 13; rem = b & 0x1fffu; half = 0x1000u;
  } else {  // a subnormal half (units of 2^-24), or zero
    const unsigned e = a >> 23;
    if (e < 102) return (unsigned short)sign;  // below 2^-25: rounds to (signed) zero
    const unsigned m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e;  // 14 <= shift <= 24
    q = m >> shift; rem = m & ((1u << shift) - 1); half = 1u << (shift - 1);
  }
  if (rem > half || (rem == half && (q & 1u))) ++q;  // a carry into the exponent is the right encoding
  return (unsigned short)(sign | q);
}

__device__ __forceinline__ float gpucnn_half_bits_to_float(unsigned h) {
  const unsigned sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {  // zero or subnormal: m * 2^-24, exact in float
    const float v = (float)m * __uint_as_float(0x33800000u);
    return sign ? -v : v;
  }
  if (e == 31) return __uint_as_float(sign | 0x7f800000u | (m << 13));
  return __uint_as_float(sign | ((e + 112) << 23) | (m << 13));
}

__device__ __forceinline__ unsigned short gpucnn_float_to_bf16_bits(float f) {
  const unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // NaN stays quiet NaN
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float gpucnn_bf16_bits_to_float(unsigned b) { return __uint_as_float(b << 16); }
