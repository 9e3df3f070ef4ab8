/* shim.h: force-included (g++ -include) before every .cu file the emulator compiles as C++.
 *
 * It provides what a kernel written for NVRTC uses: the CUDA keywords, the built-in index variables,
 * barriers and warp operations (implemented by the emulator runtime), atomics, vector types and the CUDA
 * math and intrinsic functions. It deliberately includes no host header, so (as under NVRTC) INFINITY,
 * <cmath> and std:: are not available to kernels.
 *
 * Threads of a block run one at a time as cooperative fibers: a thread only gives up the CPU inside a
 * barrier or a warp operation, so atomics are plain read-modify-write sequences. */
#ifndef GPUCNN_EMU_SHIM_H
#define GPUCNN_EMU_SHIM_H

#include "emu_abi.h"

/* ---------------------------------------------------------------- keywords and qualifiers */
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __grid_constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __maxnreg__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __cudart_builtin__
/* Static shared memory: a static in a dedicated section, poisoned with 0xFF bytes before each block.
 * The emulator's source pass rewrites __shared__ inside kernel bodies to __EMU_SHARED("emu_sh_<kernel>")
 * so that each kernel's static shared size is known; `extern __shared__ T s[];` is rewritten too. */
#define __EMU_SHARED(sec) static __attribute__((__section__(sec), __used__))
#define __shared__ __EMU_SHARED("emu_shared_common")

typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ptrdiff_t;
typedef __INT8_TYPE__ int8_t;
typedef __INT16_TYPE__ int16_t;
typedef __INT32_TYPE__ int32_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
typedef __INTPTR_TYPE__ intptr_t;
typedef __UINTPTR_TYPE__ uintptr_t;
#ifndef NULL
#define NULL __null
#endif

/* ---------------------------------------------------------------- vector types */
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

#define __EMU_VEC2(name, T, al)                                                                             \
  struct __attribute__((aligned(al))) name {                                                               \
    T x, y;                                                                                                \
  };                                                                                                       \
  static inline name make_##name(T x, T y) { return name{x, y}; }
#define __EMU_VEC3(name, T)                                                                                 \
  struct name {                                                                                            \
    T x, y, z;                                                                                             \
  };                                                                                                       \
  static inline name make_##name(T x, T y, T z) { return name{x, y, z}; }
#define __EMU_VEC4(name, T, al)                                                                             \
  struct __attribute__((aligned(al))) name {                                                               \
    T x, y, z, w;                                                                                          \
  };                                                                                                       \
  static inline name make_##name(T x, T y, T z, T w) { return name{x, y, z, w}; }
__EMU_VEC2(float2, float, 8)
__EMU_VEC3(float3, float)
__EMU_VEC4(float4, float, 16)
__EMU_VEC2(double2, double, 16)
__EMU_VEC3(double3, double)
__EMU_VEC4(double4, double, 16)
__EMU_VEC2(int2, int, 8)
__EMU_VEC3(int3, int)
__EMU_VEC4(int4, int, 16)
__EMU_VEC2(uint2, unsigned int, 8)
__EMU_VEC4(uint4, unsigned int, 16)
__EMU_VEC2(longlong2, long long, 16)
__EMU_VEC2(ulonglong2, unsigned long long, 16)
__EMU_VEC2(short2, short, 4)
__EMU_VEC4(short4, short, 8)
__EMU_VEC2(ushort2, unsigned short, 4)
__EMU_VEC4(char4, signed char, 4)
__EMU_VEC4(uchar4, unsigned char, 4)
#undef __EMU_VEC2
#undef __EMU_VEC3
#undef __EMU_VEC4
static inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return uint3{x, y, z}; }

/* ---------------------------------------------------------------- built-in variables */
/* Read through a const reference so kernels cannot assign them, and so the compiler reloads them after
 * every call into the runtime (the scheduler updates them when it switches threads). */
#define threadIdx (reinterpret_cast<const uint3 &>(__emu_threadIdx))
#define blockIdx (reinterpret_cast<const uint3 &>(__emu_blockIdx))
#define blockDim (reinterpret_cast<const dim3 &>(__emu_blockDim))
#define gridDim (reinterpret_cast<const dim3 &>(__emu_gridDim))
constexpr int warpSize = 32;

/* ---------------------------------------------------------------- barriers, warp ops, traps */
namespace __emu {
template <class T> struct same_size_bits {
  static_assert(sizeof(T) <= 8, "warp shuffles take values of at most 8 bytes");
};

/* The source location of a barrier or warp op, for deadlock and mismatch reports. */
struct Site {
  const char *__f;
  int __l;
  void __syncthreads() const { __emu_syncthreads(__f, __l); }
  int __syncthreads_count(int p) const { return __emu_syncthreads_op(EMU_B_COUNT, p, __f, __l); }
  int __syncthreads_and(int p) const { return __emu_syncthreads_op(EMU_B_AND, p, __f, __l); }
  int __syncthreads_or(int p) const { return __emu_syncthreads_op(EMU_B_OR, p, __f, __l); }
  void __syncwarp(unsigned int mask = 0xffffffffu) const { __emu_warp_op(EMU_W_SYNCWARP, mask, 0, 0, 32, 0, __f, __l); }

  template <class T> T __wop(int kind, unsigned int mask, T v, int b, int width) const {
    (void)same_size_bits<T>();
    unsigned long long bits = 0;
    __builtin_memcpy(&bits, &v, sizeof(T));
    bits = __emu_warp_op(kind, mask, bits, b, width, (int)sizeof(T), __f, __l);
    T r;
    __builtin_memcpy(&r, &bits, sizeof(T));
    return r;
  }
  template <class T> T __shfl(unsigned int mask, T v, int src, int width = 32) const {
    return __wop<T>(EMU_W_SHFL_IDX, mask, v, src, width);
  }
  template <class T> T __shfl_up(unsigned int mask, T v, unsigned int delta, int width = 32) const {
    return __wop<T>(EMU_W_SHFL_UP, mask, v, (int)delta, width);
  }
  template <class T> T __shfl_down(unsigned int mask, T v, unsigned int delta, int width = 32) const {
    return __wop<T>(EMU_W_SHFL_DOWN, mask, v, (int)delta, width);
  }
  template <class T> T __shfl_xor(unsigned int mask, T v, int lane_mask, int width = 32) const {
    return __wop<T>(EMU_W_SHFL_XOR, mask, v, lane_mask, width);
  }
  unsigned int __ballot(unsigned int mask, int pred) const {
    return (unsigned int)__emu_warp_op(EMU_W_BALLOT, mask, pred != 0, 0, 32, 4, __f, __l);
  }
  int __any(unsigned int mask, int pred) const {
    return (int)__emu_warp_op(EMU_W_ANY, mask, pred != 0, 0, 32, 4, __f, __l);
  }
  int __all(unsigned int mask, int pred) const {
    return (int)__emu_warp_op(EMU_W_ALL, mask, pred != 0, 0, 32, 4, __f, __l);
  }
  template <class T> unsigned int __match_any(unsigned int mask, T v) const {
    (void)same_size_bits<T>();
    unsigned long long bits = 0;
    __builtin_memcpy(&bits, &v, sizeof(T));
    return (unsigned int)__emu_warp_op(EMU_W_MATCH_ANY, mask, bits, 0, 32, (int)sizeof(T), __f, __l);
  }
  unsigned int __red(int kind, unsigned int mask, unsigned int v) const {
    return (unsigned int)__emu_warp_op(kind, mask, v, 0, 32, 4, __f, __l);
  }
  unsigned int __reduce_add(unsigned int mask, unsigned int v) const { return __red(EMU_W_REDUCE_ADD, mask, v); }
  int __reduce_add(unsigned int mask, int v) const { return (int)__red(EMU_W_REDUCE_ADD, mask, (unsigned int)v); }
  unsigned int __reduce_min(unsigned int mask, unsigned int v) const { return __red(EMU_W_REDUCE_MIN_U, mask, v); }
  int __reduce_min(unsigned int mask, int v) const { return (int)__red(EMU_W_REDUCE_MIN_I, mask, (unsigned int)v); }
  unsigned int __reduce_max(unsigned int mask, unsigned int v) const { return __red(EMU_W_REDUCE_MAX_U, mask, v); }
  int __reduce_max(unsigned int mask, int v) const { return (int)__red(EMU_W_REDUCE_MAX_I, mask, (unsigned int)v); }
  unsigned int __reduce_and(unsigned int mask, unsigned int v) const { return __red(EMU_W_REDUCE_AND, mask, v); }
  unsigned int __reduce_or(unsigned int mask, unsigned int v) const { return __red(EMU_W_REDUCE_OR, mask, v); }
  unsigned int __reduce_xor(unsigned int mask, unsigned int v) const { return __red(EMU_W_REDUCE_XOR, mask, v); }
  unsigned int __activemask() const { return __emu_activemask(__f, __l); }
  size_t __cvta_generic_to_shared(const void *p) const { return __emu_cvta_to_shared(p, __f, __l); }
  void *__cvta_shared_to_generic(size_t a) const { return __emu_cvta_to_generic(a, __f, __l); }
  [[noreturn]] void __trap() const { __emu_trap(__f, __l); }
};
} // namespace __emu

#define __EMU_SITE (::__emu::Site{__FILE__, __LINE__})
#define __syncthreads __EMU_SITE.__syncthreads
#define __syncthreads_count __EMU_SITE.__syncthreads_count
#define __syncthreads_and __EMU_SITE.__syncthreads_and
#define __syncthreads_or __EMU_SITE.__syncthreads_or
#define __syncwarp __EMU_SITE.__syncwarp
#define __shfl_sync __EMU_SITE.__shfl
#define __shfl_up_sync __EMU_SITE.__shfl_up
#define __shfl_down_sync __EMU_SITE.__shfl_down
#define __shfl_xor_sync __EMU_SITE.__shfl_xor
#define __ballot_sync __EMU_SITE.__ballot
#define __any_sync __EMU_SITE.__any
#define __all_sync __EMU_SITE.__all
#define __match_any_sync __EMU_SITE.__match_any
#define __reduce_add_sync __EMU_SITE.__reduce_add
#define __reduce_min_sync __EMU_SITE.__reduce_min
#define __reduce_max_sync __EMU_SITE.__reduce_max
#define __reduce_and_sync __EMU_SITE.__reduce_and
#define __reduce_or_sync __EMU_SITE.__reduce_or
#define __reduce_xor_sync __EMU_SITE.__reduce_xor
#define __trap __EMU_SITE.__trap
#define __brkpt __EMU_SITE.__trap
#define __activemask __EMU_SITE.__activemask
#define __cvta_generic_to_shared __EMU_SITE.__cvta_generic_to_shared
#define __cvta_shared_to_generic __EMU_SITE.__cvta_shared_to_generic
static inline long long clock64() { return __emu_clock64(); }
static inline void __nanosleep(unsigned int) {}
/* Threads never run concurrently, so fences only need to stop the compiler from reordering. */
static inline void __threadfence() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_system() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

/* assert() raises KernelTrap in Python (a kernel including <assert.h> gets glibc's macro, whose
 * __assert_fail is renamed to __emu_assert_fail on the g++ command line). */
#ifdef NDEBUG
#define assert(e) ((void)0)
#else
#define assert(e) (static_cast<bool>(e) ? (void)0 : __emu_assert_fail(#e, __FILE__, __LINE__, __func__))
#endif

extern "C" int printf(const char *__restrict, ...);
extern "C" void *memcpy(void *__restrict, const void *__restrict, size_t) noexcept;
extern "C" void *memset(void *, int, size_t) noexcept;
extern "C" void *malloc(size_t) noexcept;
extern "C" void free(void *) noexcept;

/* ---------------------------------------------------------------- atomics */
/* Plain read-modify-write: no other thread runs until this one reaches a barrier or warp op. */
#define __EMU_RMW(name, T, expr)                                                                           \
  static inline T name(T *a, T v) {                                                                        \
    T old = *a;                                                                                            \
    *a = (expr);                                                                                           \
    return old;                                                                                            \
  }
__EMU_RMW(atomicAdd, int, (int)((unsigned int)old + (unsigned int)v))
__EMU_RMW(atomicAdd, unsigned int, old + v)
__EMU_RMW(atomicAdd, unsigned long long, old + v)
__EMU_RMW(atomicAdd, float, old + v)
__EMU_RMW(atomicAdd, double, old + v)
__EMU_RMW(atomicSub, int, (int)((unsigned int)old - (unsigned int)v))
__EMU_RMW(atomicSub, unsigned int, old - v)
__EMU_RMW(atomicExch, int, v)
__EMU_RMW(atomicExch, unsigned int, v)
__EMU_RMW(atomicExch, unsigned long long, v)
__EMU_RMW(atomicExch, float, v)
__EMU_RMW(atomicMax, int, old > v ? old : v)
__EMU_RMW(atomicMax, unsigned int, old > v ? old : v)
__EMU_RMW(atomicMax, long long, old > v ? old : v)
__EMU_RMW(atomicMax, unsigned long long, old > v ? old : v)
__EMU_RMW(atomicMin, int, old < v ? old : v)
__EMU_RMW(atomicMin, unsigned int, old < v ? old : v)
__EMU_RMW(atomicMin, long long, old < v ? old : v)
__EMU_RMW(atomicMin, unsigned long long, old < v ? old : v)
__EMU_RMW(atomicAnd, int, old & v)
__EMU_RMW(atomicAnd, unsigned int, old & v)
__EMU_RMW(atomicAnd, unsigned long long, old & v)
__EMU_RMW(atomicOr, int, old | v)
__EMU_RMW(atomicOr, unsigned int, old | v)
__EMU_RMW(atomicOr, unsigned long long, old | v)
__EMU_RMW(atomicXor, int, old ^ v)
__EMU_RMW(atomicXor, unsigned int, old ^ v)
__EMU_RMW(atomicXor, unsigned long long, old ^ v)
__EMU_RMW(atomicInc, unsigned int, old >= v ? 0u : old + 1u)
__EMU_RMW(atomicDec, unsigned int, (old == 0u || old > v) ? v : old - 1u)
#undef __EMU_RMW
#define __EMU_CAS(T)                                                                                       \
  static inline T atomicCAS(T *a, T compare, T val) {                                                      \
    T old = *a;                                                                                            \
    if (old == compare) *a = val;                                                                          \
    return old;                                                                                            \
  }
__EMU_CAS(int)
__EMU_CAS(unsigned int)
__EMU_CAS(unsigned long long)
__EMU_CAS(unsigned short)
#undef __EMU_CAS
#define atomicAdd_block atomicAdd
#define atomicAdd_system atomicAdd
#define atomicSub_block atomicSub
#define atomicExch_block atomicExch
#define atomicMax_block atomicMax
#define atomicMin_block atomicMin
#define atomicCAS_block atomicCAS
#define atomicAnd_block atomicAnd
#define atomicOr_block atomicOr
#define atomicXor_block atomicXor

/* ---------------------------------------------------------------- loads and stores with cache hints */
template <class T> static inline T __ldg(const T *p) { return *p; }
template <class T> static inline T __ldcg(const T *p) { return *p; }
template <class T> static inline T __ldca(const T *p) { return *p; }
template <class T> static inline T __ldcs(const T *p) { return *p; }
template <class T> static inline T __ldlu(const T *p) { return *p; }
template <class T> static inline T __ldcv(const T *p) { return *p; }
template <class T> static inline void __stcg(T *p, T v) { *p = v; }
template <class T> static inline void __stcs(T *p, T v) { *p = v; }
template <class T> static inline void __stwb(T *p, T v) { *p = v; }
template <class T> static inline void __stwt(T *p, T v) { *p = v; }

/* ---------------------------------------------------------------- math (libm, with CUDA's overloads) */
/* Each C function plus CUDA's C++ float overload of the double name (exp(float) returns float). */
#define __EMU_M1(fn)                                                                                       \
  extern "C" float fn##f(float) noexcept;                                                                  \
  extern "C" double fn(double) noexcept;                                                                   \
  static inline float fn(float x) noexcept { return fn##f(x); }
#define __EMU_M2(fn)                                                                                       \
  extern "C" float fn##f(float, float) noexcept;                                                           \
  extern "C" double fn(double, double) noexcept;                                                           \
  static inline float fn(float x, float y) noexcept { return fn##f(x, y); }
__EMU_M1(acos) __EMU_M1(acosh) __EMU_M1(asin) __EMU_M1(asinh) __EMU_M1(atan) __EMU_M1(atanh)
__EMU_M1(cbrt) __EMU_M1(ceil) __EMU_M1(cos) __EMU_M1(cosh) __EMU_M1(erf) __EMU_M1(erfc) __EMU_M1(exp)
__EMU_M1(exp2) __EMU_M1(exp10) __EMU_M1(expm1) __EMU_M1(fabs) __EMU_M1(floor) __EMU_M1(lgamma)
__EMU_M1(log) __EMU_M1(log10) __EMU_M1(log1p) __EMU_M1(log2) __EMU_M1(logb) __EMU_M1(nearbyint)
__EMU_M1(rint) __EMU_M1(round) __EMU_M1(sin) __EMU_M1(sinh) __EMU_M1(sqrt) __EMU_M1(tan)
__EMU_M1(tanh) __EMU_M1(tgamma) __EMU_M1(trunc)
__EMU_M2(atan2) __EMU_M2(copysign) __EMU_M2(fdim) __EMU_M2(fmax) __EMU_M2(fmin) __EMU_M2(fmod)
__EMU_M2(hypot) __EMU_M2(nextafter) __EMU_M2(pow) __EMU_M2(remainder)
#undef __EMU_M1
#undef __EMU_M2
extern "C" float fmaf(float, float, float) noexcept;
extern "C" double fma(double, double, double) noexcept;
static inline float fma(float x, float y, float z) noexcept { return fmaf(x, y, z); }
extern "C" float frexpf(float, int *) noexcept;
extern "C" double frexp(double, int *) noexcept;
static inline float frexp(float x, int *e) noexcept { return frexpf(x, e); }
extern "C" float ldexpf(float, int) noexcept;
extern "C" double ldexp(double, int) noexcept;
static inline float ldexp(float x, int e) noexcept { return ldexpf(x, e); }
extern "C" float scalbnf(float, int) noexcept;
extern "C" double scalbn(double, int) noexcept;
static inline float scalbn(float x, int e) noexcept { return scalbnf(x, e); }
extern "C" float modff(float, float *) noexcept;
extern "C" double modf(double, double *) noexcept;
static inline float modf(float x, float *i) noexcept { return modff(x, i); }
extern "C" int ilogbf(float) noexcept;
extern "C" int ilogb(double) noexcept;
static inline int ilogb(float x) noexcept { return ilogbf(x); }
extern "C" long lrintf(float) noexcept;
extern "C" long lrint(double) noexcept;
extern "C" long long llrintf(float) noexcept;
extern "C" long long llrint(double) noexcept;
extern "C" long lroundf(float) noexcept;
extern "C" long lround(double) noexcept;
extern "C" long long llroundf(float) noexcept;
extern "C" long long llround(double) noexcept;
extern "C" void sincosf(float, float *, float *) noexcept;
extern "C" void sincos(double, double *, double *) noexcept;
static inline void sincos(float x, float *s, float *c) noexcept { sincosf(x, s, c); }
extern "C" int abs(int) noexcept;
extern "C" long labs(long) noexcept;
extern "C" long long llabs(long long) noexcept;
static inline long abs(long x) noexcept { return labs(x); }
static inline long long abs(long long x) noexcept { return llabs(x); }
static inline float abs(float x) noexcept { return fabsf(x); }
static inline double abs(double x) noexcept { return fabs(x); }
static inline bool isnan(float x) noexcept { return __builtin_isnan(x); }
static inline bool isnan(double x) noexcept { return __builtin_isnan(x); }
static inline bool isinf(float x) noexcept { return __builtin_isinf(x); }
static inline bool isinf(double x) noexcept { return __builtin_isinf(x); }
static inline bool isfinite(float x) noexcept { return __builtin_isfinite(x); }
static inline bool isfinite(double x) noexcept { return __builtin_isfinite(x); }
static inline bool signbit(float x) noexcept { return __builtin_signbit(x); }
static inline bool signbit(double x) noexcept { return __builtin_signbit(x); }
/* CUDA functions without a libm counterpart (correctly rounded here, approximate on the GPU). */
static inline float rsqrtf(float x) noexcept { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) noexcept { return 1.0 / sqrt(x); }
static inline float rcbrtf(float x) noexcept { return 1.0f / cbrtf(x); }
static inline double rcbrt(double x) noexcept { return 1.0 / cbrt(x); }
static inline float rhypotf(float x, float y) noexcept { return 1.0f / hypotf(x, y); }
static inline float sinpif(float x) noexcept { return (float)sin(3.141592653589793 * (double)x); }
static inline float cospif(float x) noexcept { return (float)cos(3.141592653589793 * (double)x); }
static inline double sinpi(double x) noexcept { return sin(3.141592653589793 * x); }
static inline double cospi(double x) noexcept { return cos(3.141592653589793 * x); }
static inline float normcdff(float x) noexcept { return 0.5f * erfcf(-x * 0.70710678118654752f); }
static inline double normcdf(double x) noexcept { return 0.5 * erfc(-x * 0.70710678118654752); }
static inline float fdividef(float a, float b) noexcept { return a / b; }

/* CUDA's integer and floating min/max overloads. */
#define __EMU_MINMAX(A, B, R)                                                                              \
  static inline R min(A a, B b) noexcept { return (R)a < (R)b ? (R)a : (R)b; }                              \
  static inline R max(A a, B b) noexcept { return (R)a > (R)b ? (R)a : (R)b; }
__EMU_MINMAX(int, int, int)
__EMU_MINMAX(unsigned int, unsigned int, unsigned int)
__EMU_MINMAX(int, unsigned int, unsigned int)
__EMU_MINMAX(unsigned int, int, unsigned int)
__EMU_MINMAX(long, long, long)
__EMU_MINMAX(unsigned long, unsigned long, unsigned long)
__EMU_MINMAX(long long, long long, long long)
__EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
__EMU_MINMAX(long long, unsigned long long, unsigned long long)
__EMU_MINMAX(unsigned long long, long long, unsigned long long)
#undef __EMU_MINMAX
static inline float min(float a, float b) noexcept { return fminf(a, b); }
static inline float max(float a, float b) noexcept { return fmaxf(a, b); }
static inline double min(double a, double b) noexcept { return fmin(a, b); }
static inline double max(double a, double b) noexcept { return fmax(a, b); }
static inline double min(float a, double b) noexcept { return fmin((double)a, b); }
static inline double max(float a, double b) noexcept { return fmax((double)a, b); }
static inline double min(double a, float b) noexcept { return fmin(a, (double)b); }
static inline double max(double a, float b) noexcept { return fmax(a, (double)b); }
static inline unsigned int umin(unsigned int a, unsigned int b) noexcept { return a < b ? a : b; }
static inline unsigned int umax(unsigned int a, unsigned int b) noexcept { return a > b ? a : b; }
static inline long long llmin(long long a, long long b) noexcept { return a < b ? a : b; }
static inline long long llmax(long long a, long long b) noexcept { return a > b ? a : b; }
static inline unsigned long long ullmin(unsigned long long a, unsigned long long b) noexcept { return a < b ? a : b; }
static inline unsigned long long ullmax(unsigned long long a, unsigned long long b) noexcept { return a > b ? a : b; }

/* ---------------------------------------------------------------- floating-point intrinsics */
/* Fast-math intrinsics are exact here: results can differ from the GPU's approximations. */
static inline float __expf(float x) { return expf(x); }
static inline float __exp10f(float x) { return exp10f(x); }
static inline float __logf(float x) { return logf(x); }
static inline float __log2f(float x) { return log2f(x); }
static inline float __log10f(float x) { return log10f(x); }
static inline float __powf(float x, float y) { return powf(x, y); }
static inline float __sinf(float x) { return sinf(x); }
static inline float __cosf(float x) { return cosf(x); }
static inline float __tanf(float x) { return tanf(x); }
static inline void __sincosf(float x, float *s, float *c) { sincosf(x, s, c); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); } // NaN -> 0
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __drcp_rn(double x) { return 1.0 / x; }
static inline double __dsqrt_rn(double x) { return sqrt(x); }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }

/* Bit casts. */
static inline int __float_as_int(float x) { int r; __builtin_memcpy(&r, &x, 4); return r; }
static inline unsigned int __float_as_uint(float x) { unsigned int r; __builtin_memcpy(&r, &x, 4); return r; }
static inline float __int_as_float(int x) { float r; __builtin_memcpy(&r, &x, 4); return r; }
static inline float __uint_as_float(unsigned int x) { float r; __builtin_memcpy(&r, &x, 4); return r; }
static inline long long __double_as_longlong(double x) { long long r; __builtin_memcpy(&r, &x, 8); return r; }
static inline double __longlong_as_double(long long x) { double r; __builtin_memcpy(&r, &x, 8); return r; }
static inline int __double2hiint(double x) { return (int)(__double_as_longlong(x) >> 32); }
static inline int __double2loint(double x) { return (int)__double_as_longlong(x); }
static inline double __hiloint2double(int hi, int lo) {
  return __longlong_as_double((long long)(((unsigned long long)(unsigned int)hi << 32) | (unsigned int)lo));
}

/* Conversions saturate like the GPU's cvt instructions (NaN converts to 0). */
namespace __emu {
static inline long long sat(double r, double lo, double hi) {
  return r != r ? 0 : (r <= lo ? (long long)lo : (r >= hi ? (long long)hi : (long long)r));
}
static inline unsigned long long satu64(double r) {
  return r != r || r <= 0.0 ? 0ull : (r >= 18446744073709551615.0 ? ~0ull : (unsigned long long)r);
}
static inline long long sat64(double r) {
  return r != r ? (long long)(1ull << 63)
                : (r <= -9223372036854775808.0 ? (long long)(1ull << 63)
                                               : (r >= 9223372036854775807.0 ? 0x7fffffffffffffffll : (long long)r));
}
} // namespace __emu
#define __EMU_CVT(suffix, rf, rd)                                                                          \
  static inline int __float2int_##suffix(float x) { return (int)__emu::sat(rf(x), -2147483648.0, 2147483647.0); } \
  static inline unsigned int __float2uint_##suffix(float x) {                                             \
    return (unsigned int)__emu::sat(rf(x), 0.0, 4294967295.0);                                            \
  }                                                                                                        \
  static inline long long __float2ll_##suffix(float x) { return __emu::sat64(rf(x)); }                    \
  static inline unsigned long long __float2ull_##suffix(float x) { return __emu::satu64(rf(x)); }         \
  static inline int __double2int_##suffix(double x) { return (int)__emu::sat(rd(x), -2147483648.0, 2147483647.0); } \
  static inline unsigned int __double2uint_##suffix(double x) {                                           \
    return (unsigned int)__emu::sat(rd(x), 0.0, 4294967295.0);                                            \
  }                                                                                                        \
  static inline long long __double2ll_##suffix(double x) { return __emu::sat64(rd(x)); }                  \
  static inline unsigned long long __double2ull_##suffix(double x) { return __emu::satu64(rd(x)); }
__EMU_CVT(rn, nearbyintf, nearbyint)
__EMU_CVT(rz, truncf, trunc)
__EMU_CVT(rd, floorf, floor)
__EMU_CVT(ru, ceilf, ceil)
#undef __EMU_CVT
static inline float __int2float_rn(int x) { return (float)x; }
static inline float __uint2float_rn(unsigned int x) { return (float)x; }
static inline float __ll2float_rn(long long x) { return (float)x; }
static inline float __ull2float_rn(unsigned long long x) { return (float)x; }
static inline double __int2double_rn(int x) { return (double)x; }
static inline double __uint2double_rn(unsigned int x) { return (double)x; }
static inline double __ll2double_rn(long long x) { return (double)x; }
static inline double __ull2double_rn(unsigned long long x) { return (double)x; }
static inline float __double2float_rn(double x) { return (float)x; }

/* ---------------------------------------------------------------- integer intrinsics */
static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned int)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned int __brev(unsigned int x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
static inline unsigned long long __brevll(unsigned long long x) {
  return ((unsigned long long)__brev((unsigned int)x) << 32) | __brev((unsigned int)(x >> 32));
}
static inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
static inline unsigned int __umulhi(unsigned int a, unsigned int b) {
  return (unsigned int)(((unsigned long long)a * b) >> 32);
}
static inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
static inline int __mul24(int a, int b) {
  return ((int)((unsigned int)a << 8) >> 8) * ((int)((unsigned int)b << 8) >> 8); // low 24 bits, signed
}
static inline unsigned int __umul24(unsigned int a, unsigned int b) { return (a & 0xffffffu) * (b & 0xffffffu); }
static inline int __hadd(int a, int b) { return (int)(((long long)a + b) >> 1); }
static inline int __rhadd(int a, int b) { return (int)(((long long)a + b + 1) >> 1); }
static inline unsigned int __uhadd(unsigned int a, unsigned int b) {
  return (unsigned int)(((unsigned long long)a + b) >> 1);
}
static inline unsigned int __urhadd(unsigned int a, unsigned int b) {
  return (unsigned int)(((unsigned long long)a + b + 1) >> 1);
}
static inline unsigned int __sad(int x, int y, unsigned int z) {
  return (x > y ? (unsigned int)x - (unsigned int)y : (unsigned int)y - (unsigned int)x) + z;
}
static inline unsigned int __usad(unsigned int x, unsigned int y, unsigned int z) { return (x > y ? x - y : y - x) + z; }
static inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
  unsigned long long v = ((unsigned long long)y << 32) | x;
  unsigned int r = 0;
  for (int i = 0; i < 4; ++i) r |= (unsigned int)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
}
static inline unsigned int __funnelshift_l(unsigned int lo, unsigned int hi, unsigned int shift) {
  shift &= 31;
  return shift ? (hi << shift) | (lo >> (32 - shift)) : hi;
}
static inline unsigned int __funnelshift_r(unsigned int lo, unsigned int hi, unsigned int shift) {
  shift &= 31;
  return shift ? (lo >> shift) | (hi << (32 - shift)) : lo;
}

/* ---------------------------------------------------------------- inline PTX (used by generated code) */
/* ptx_rewrite.py turns each asm statement into a block that copies every operand into a local "register"
 * (its bit pattern: 32 bits for "r"/"f", 64 for "l", the value for "n"), runs the instructions on the
 * registers, then stores the outputs back. These helpers do the conversions an operand constraint implies. */
namespace __emu {
namespace ptx {
template <class T> struct int_reg { static constexpr bool ok = false; };
#define __EMU_INT_REG(T) template <> struct int_reg<T> { static constexpr bool ok = true; };
__EMU_INT_REG(bool) __EMU_INT_REG(char) __EMU_INT_REG(signed char) __EMU_INT_REG(unsigned char)
__EMU_INT_REG(short) __EMU_INT_REG(unsigned short) __EMU_INT_REG(int) __EMU_INT_REG(unsigned int)
__EMU_INT_REG(long) __EMU_INT_REG(unsigned long) __EMU_INT_REG(long long) __EMU_INT_REG(unsigned long long)
#undef __EMU_INT_REG
template <class T> static inline unsigned int r32(T v) {
  static_assert(int_reg<T>::ok, "an asm \"r\" operand must have an integer type (nvcc rejects others)");
  return (unsigned int)v;
}
static inline unsigned int f32(float v) {
  unsigned int u;
  __builtin_memcpy(&u, &v, 4);
  return u;
}
template <class T> static inline unsigned long long l64(T v) {
  static_assert(int_reg<T>::ok, "an asm \"l\" operand must have an integer or pointer type");
  return (unsigned long long)v;
}
template <class T> static inline unsigned long long l64(T *v) { return (unsigned long long)(uintptr_t)v; }
template <int N, class T> static inline void store(T &dst, unsigned long long bits) {
  static_assert(sizeof(T) == N, "an asm \"=r\"/\"=f\" output must be a 32-bit lvalue, \"=l\" a 64-bit one");
  __builtin_memcpy(&dst, &bits, sizeof(T)); // little-endian: the low bytes
}
/* cvt.rna{.satfinite}.tf32.f32 (PTX ISA 9.7.9.21): round to nearest, ties away from zero, to 10 mantissa
 * bits; the low 13 bits of the result are zero. Inf stays Inf (with .satfinite: the largest finite TF32),
 * NaN becomes the canonical NaN 0x7fffffff. */
static inline unsigned int cvt_rna_tf32(unsigned int u, bool satfinite) {
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffffffu;
  unsigned int r = (u & 0x7fffffffu) == 0x7f800000u ? u : (u + 0x1000u) & 0xffffe000u;
  if (satfinite && (r & 0x7fffffffu) == 0x7f800000u) r = (r & 0x80000000u) | 0x7f7fe000u;
  return r;
}
} // namespace ptx
} // namespace __emu

/* ---------------------------------------------------------------- trampolines (used by generated code) */
namespace __emu {
template <class T> struct strip_cv { typedef T type; };
template <class T> struct strip_cv<const T> { typedef T type; };
template <class T> struct strip_cv<volatile T> { typedef T type; };
template <class T> struct strip_cv<const volatile T> { typedef T type; };
template <class T> struct is_const { static constexpr int value = 0; };
template <class T> struct is_const<const T> { static constexpr int value = 1; };
template <class T> struct is_const<const volatile T> { static constexpr int value = 1; };
template <class T> struct size_of { static constexpr int value = (int)sizeof(T); };
template <> struct size_of<void> { static constexpr int value = 0; };

template <class T> struct code { static constexpr int value = EMU_TY_OTHER; };
template <class T> struct code<T *> { static constexpr int value = EMU_TY_POINTER; };
#define __EMU_CODE(T, c)                                                                                   \
  template <> struct code<T> { static constexpr int value = c; };
__EMU_CODE(void, EMU_TY_VOID)
__EMU_CODE(bool, EMU_TY_BOOL)
__EMU_CODE(char, EMU_TY_CHAR)
__EMU_CODE(signed char, EMU_TY_I8)
__EMU_CODE(unsigned char, EMU_TY_U8)
__EMU_CODE(short, EMU_TY_I16)
__EMU_CODE(unsigned short, EMU_TY_U16)
__EMU_CODE(int, EMU_TY_I32)
__EMU_CODE(unsigned int, EMU_TY_U32)
__EMU_CODE(long, EMU_TY_I64)
__EMU_CODE(unsigned long, EMU_TY_U64)
__EMU_CODE(long long, EMU_TY_I64)
__EMU_CODE(unsigned long long, EMU_TY_U64)
__EMU_CODE(float, EMU_TY_F32)
__EMU_CODE(double, EMU_TY_F64)
__EMU_CODE(float2, EMU_TY_FLOAT2)
__EMU_CODE(float4, EMU_TY_FLOAT4)
__EMU_CODE(double2, EMU_TY_DOUBLE2)
__EMU_CODE(int2, EMU_TY_INT2)
__EMU_CODE(int4, EMU_TY_INT4)
__EMU_CODE(uint2, EMU_TY_UINT2)
__EMU_CODE(uint4, EMU_TY_UINT4)
#undef __EMU_CODE

template <class P> struct param {
  static constexpr EmuParam value = {code<typename strip_cv<P>::type>::value, 0, 0, size_of<P>::value};
};
template <class T> struct param<T *> {
  static constexpr EmuParam value = {code<typename strip_cv<T>::type>::value, 1, is_const<T>::value,
                                     size_of<typename strip_cv<T>::type>::value};
};

template <class... P> static inline int describe(void (*)(P...), const EmuParam **out) {
  static const EmuParam table[] = {param<P>::value..., {0, 0, 0, 0}};
  *out = table;
  return (int)sizeof...(P);
}

template <unsigned... I> struct seq {};
template <unsigned N, unsigned... I> struct make_seq : make_seq<N - 1, N - 1, I...> {};
template <unsigned... I> struct make_seq<0, I...> { typedef seq<I...> type; };
template <class... P, unsigned... I> static inline void call_with(void (*k)(P...), void **a, seq<I...>) {
  (void)a;
  k(*static_cast<P *>(a[I])...);
}
template <class... P> static inline void call(void (*k)(P...), void **a) {
  call_with(k, a, typename make_seq<sizeof...(P)>::type());
}

/* Called by the generated code, which follows the kernel source and may therefore see the kernel's own
 * macros: it names nothing but these helpers and the kernels. */
template <class... P>
static inline void fill_info(EmuKernelInfo *info, void (*tramp)(void **), void (*k)(P...), char *smem_begin,
                             char *smem_end) {
  info->tramp = tramp;
  info->nparams = describe(k, &info->params);
  info->smem_begin = smem_begin;
  info->smem_end = smem_end;
}
static inline void fill_module(EmuModuleInfo *m, char *common_begin, char *common_end) {
  m->abi = GPUCNN_EMU_ABI;
  m->common_smem_begin = common_begin;
  m->common_smem_end = common_end;
}
} // namespace __emu

#endif
