/* __half and __nv_bfloat16 for the emulator: <cuda_fp16.h> and <cuda_bf16.h> (the emulator's own, found
 * through -isystem gpucnn/emu) include this file and name the types. Nothing here is visible to a kernel
 * that includes neither header, as under NVRTC.
 *
 * Storage is the IEEE binary16 / bfloat16 bit pattern. Conversions from float round to nearest even (NaN
 * becomes CUDA's canonical 0x7fff, overflow Inf); to float they are exact. Arithmetic goes through float and
 * rounds once: for +, -, *, / that is the correctly rounded fp16/bf16 result (float has more than 2p+2
 * bits), what the GPU's fp16 units give. The operators are non-template friends, so mixing a __half with a
 * float (h * 2.0f) is ambiguous here exactly as it is under nvcc. */
#ifndef GPUCNN_EMU_LOWP_H
#define GPUCNN_EMU_LOWP_H

namespace __emu {
static inline unsigned int lp_bits(float f) { unsigned int u; __builtin_memcpy(&u, &f, 4); return u; }
static inline float lp_float(unsigned int u) { float f; __builtin_memcpy(&f, &u, 4); return f; }

/* binary16: round the float's 24-bit significand to 11 bits (fewer for subnormal results), nearest even. */
static inline unsigned short f32_to_f16_rn(float f) {
  const unsigned int x = lp_bits(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return 0x7fff;                    // NaN
  if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u); // >= 65520 (halfway past 65504): Inf
  if (ax < 0x38800000u) {                                  // below 2^-14: a subnormal half or zero
    const unsigned int e = ax >> 23;
    const int shift = 126 - (int)e;                        // value * 2^24 = m * 2^-shift
    if (e == 0 || shift > 24) return (unsigned short)sign; // < 2^-25: rounds to zero
    const unsigned int m = (ax & 0x7fffffu) | 0x800000u, q = m >> shift, rem = m & ((1u << shift) - 1);
    const unsigned int half = 1u << (shift - 1);
    return (unsigned short)(sign | (q + (rem > half || (rem == half && (q & 1u)))));
  }
  const unsigned int r = ax - 0x38000000u, q = r >> 13, rem = r & 0x1fffu; // rebias 127 -> 15
  return (unsigned short)(sign | (q + (rem > 0x1000u || (rem == 0x1000u && (q & 1u)))));
}
static inline float f16_to_f32(unsigned short h) {
  unsigned int sign = (unsigned int)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return lp_float(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    if (!m) return lp_float(sign);
    for (e = 1; !(m & 0x400u); --e) m <<= 1; // normalise a subnormal
    m &= 0x3ffu;
  }
  return lp_float(sign | ((e + 112) << 23) | (m << 13));
}
/* bfloat16: the top 16 bits of the float, rounded to nearest even. */
static inline unsigned short f32_to_bf16_rn(float f) {
  const unsigned int x = lp_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fff;
  return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
static inline float bf16_to_f32(unsigned short h) { return lp_float((unsigned int)h << 16); }

template <int F> struct lowp_format; /* 0: binary16, 1: bfloat16 */
template <> struct lowp_format<0> {
  static unsigned short from(float f) { return f32_to_f16_rn(f); }
  static float to(unsigned short h) { return f16_to_f32(h); }
};
template <> struct lowp_format<1> {
  static unsigned short from(float f) { return f32_to_bf16_rn(f); }
  static float to(unsigned short h) { return bf16_to_f32(h); }
};

template <int F> struct lowp_raw { unsigned short x; };

template <int F> struct __attribute__((aligned(2))) lowp {
  unsigned short __x;
  lowp() = default;
  lowp(float f) : __x(lowp_format<F>::from(f)) {}
  lowp(double d) : __x(lowp_format<F>::from((float)d)) {} /* via float: may round twice */
  lowp(int i) : __x(lowp_format<F>::from((float)i)) {}
  lowp(unsigned int i) : __x(lowp_format<F>::from((float)i)) {}
  lowp(const lowp_raw<F> &r) : __x(r.x) {}
  operator float() const { return lowp_format<F>::to(__x); }
  operator lowp_raw<F>() const { return lowp_raw<F>{__x}; }
  friend lowp operator+(const lowp &a, const lowp &b) { return lowp((float)a + (float)b); }
  friend lowp operator-(const lowp &a, const lowp &b) { return lowp((float)a - (float)b); }
  friend lowp operator*(const lowp &a, const lowp &b) { return lowp((float)a * (float)b); }
  friend lowp operator/(const lowp &a, const lowp &b) { return lowp((float)a / (float)b); }
  friend lowp operator-(const lowp &a) { lowp r; r.__x = (unsigned short)(a.__x ^ 0x8000u); return r; }
  friend lowp operator+(const lowp &a) { return a; }
  friend lowp &operator+=(lowp &a, const lowp &b) { return a = a + b; }
  friend lowp &operator-=(lowp &a, const lowp &b) { return a = a - b; }
  friend lowp &operator*=(lowp &a, const lowp &b) { return a = a * b; }
  friend lowp &operator/=(lowp &a, const lowp &b) { return a = a / b; }
  friend bool operator==(const lowp &a, const lowp &b) { return (float)a == (float)b; }
  friend bool operator!=(const lowp &a, const lowp &b) { return (float)a != (float)b; }
  friend bool operator<(const lowp &a, const lowp &b) { return (float)a < (float)b; }
  friend bool operator<=(const lowp &a, const lowp &b) { return (float)a <= (float)b; }
  friend bool operator>(const lowp &a, const lowp &b) { return (float)a > (float)b; }
  friend bool operator>=(const lowp &a, const lowp &b) { return (float)a >= (float)b; }
};

template <int F> struct __attribute__((aligned(4))) lowp2 {
  lowp<F> x, y;
  lowp2() = default;
  lowp2(const lowp<F> &a, const lowp<F> &b) : x(a), y(b) {}
  friend lowp2 operator+(const lowp2 &a, const lowp2 &b) { return lowp2(a.x + b.x, a.y + b.y); }
  friend lowp2 operator-(const lowp2 &a, const lowp2 &b) { return lowp2(a.x - b.x, a.y - b.y); }
  friend lowp2 operator*(const lowp2 &a, const lowp2 &b) { return lowp2(a.x * b.x, a.y * b.y); }
  friend lowp2 operator/(const lowp2 &a, const lowp2 &b) { return lowp2(a.x / b.x, a.y / b.y); }
  friend bool operator==(const lowp2 &a, const lowp2 &b) { return a.x == b.x && a.y == b.y; }
  friend bool operator!=(const lowp2 &a, const lowp2 &b) { return a.x != b.x || a.y != b.y; }
};

/* Kernel parameters of these types are checked against NumPy float16 / ml_dtypes.bfloat16 arrays. */
template <> struct code<lowp<0>> { static constexpr int value = EMU_TY_F16; };
template <> struct code<lowp<1>> { static constexpr int value = EMU_TY_BF16; };
template <> struct code<lowp2<0>> { static constexpr int value = EMU_TY_HALF2; };
template <> struct code<lowp2<1>> { static constexpr int value = EMU_TY_BF162; };
} // namespace __emu

/* The functions cuda_fp16.h and cuda_bf16.h share, for one scalar type H and its pair H2 (plain overloads,
 * as CUDA's, so arguments convert implicitly). */
#define __EMU_LOWP_COMMON(H, H2)                                                                           \
  static inline float __low2float(const H2 a) { return (float)a.x; }                                       \
  static inline float __high2float(const H2 a) { return (float)a.y; }                                      \
  static inline H2 __lowhigh2highlow(const H2 a) { return H2(a.y, a.x); }                                  \
  static inline H __hadd(const H a, const H b) { return a + b; }                                           \
  static inline H __hsub(const H a, const H b) { return a - b; }                                           \
  static inline H __hmul(const H a, const H b) { return a * b; }                                           \
  static inline H __hdiv(const H a, const H b) { return a / b; }                                           \
  static inline H __hneg(const H a) { return -a; }                                                         \
  static inline H __habs(const H a) { H r = a; r.__x &= 0x7fff; return r; }                                \
  static inline H __hmax(const H a, const H b) { return (float)a >= (float)b || (float)b != (float)b ? a : b; } \
  static inline H __hmin(const H a, const H b) { return (float)a <= (float)b || (float)b != (float)b ? a : b; } \
  static inline bool __heq(const H a, const H b) { return a == b; }                                        \
  static inline bool __hne(const H a, const H b) { return a != b && a == a && b == b; }                    \
  static inline bool __hlt(const H a, const H b) { return a < b; }                                         \
  static inline bool __hle(const H a, const H b) { return a <= b; }                                        \
  static inline bool __hgt(const H a, const H b) { return a > b; }                                         \
  static inline bool __hge(const H a, const H b) { return a >= b; }                                        \
  static inline bool __hisnan(const H a) { return (float)a != (float)a; }                                  \
  static inline int __hisinf(const H a) { return __builtin_isinf((float)a) ? ((a.__x & 0x8000) ? -1 : 1) : 0; } \
  static inline H2 __hadd2(const H2 a, const H2 b) { return a + b; }                                       \
  static inline H2 __hsub2(const H2 a, const H2 b) { return a - b; }                                       \
  static inline H2 __hmul2(const H2 a, const H2 b) { return a * b; }                                       \
  static inline H2 __h2div(const H2 a, const H2 b) { return a / b; }

/* The type-specific names (__float2half / __float2bfloat16, ...). */
#define __EMU_LOWP_NAMED(H, H2, from_float, to_float, from_floats, from_halves, as_ushort, from_ushort,       \
                         as_short, from_short, from_float2, to_float2, low, high)                             \
  static inline H from_float(const float f) { return H(f); }                                               \
  static inline H from_float##_rn(const float f) { return H(f); }                                          \
  static inline float to_float(const H a) { return (float)a; }                                             \
  static inline H2 from_floats(const float a, const float b) { return H2(H(a), H(b)); }                     \
  static inline H2 from_float##2_rn(const float a) { return H2(H(a), H(a)); }                              \
  static inline H2 from_halves(const H a, const H b) { return H2(a, b); }                                  \
  static inline H2 from_float2(const float2 a) { return H2(H(a.x), H(a.y)); }                              \
  static inline float2 to_float2(const H2 a) { return make_float2((float)a.x, (float)a.y); }                \
  static inline H low(const H2 a) { return a.x; }                                                          \
  static inline H high(const H2 a) { return a.y; }                                                         \
  static inline unsigned short as_ushort(const H a) { return a.__x; }                                      \
  static inline short as_short(const H a) { return (short)a.__x; }                                         \
  static inline H from_ushort(const unsigned short u) { H r; r.__x = u; return r; }                        \
  static inline H from_short(const short s) { H r; r.__x = (unsigned short)s; return r; }

#endif
