/* <cuda_fp16.h> under the emulator: __half, __half2 and the conversions and arithmetic kernels use
 * (see emu_lowp.h for the rounding rules). */
#ifndef GPUCNN_EMU_CUDA_FP16_H
#define GPUCNN_EMU_CUDA_FP16_H
#include "emu_lowp.h"

typedef ::__emu::lowp<0> __half;
typedef ::__emu::lowp2<0> __half2;
typedef ::__emu::lowp_raw<0> __half_raw;
typedef __half half;
typedef __half2 half2;
__EMU_LOWP_COMMON(__half, __half2)
__EMU_LOWP_NAMED(__half, __half2, __float2half, __half2float, __floats2half2_rn, __halves2half2, __half_as_ushort,
                 __ushort_as_half, __half_as_short, __short_as_half, __float22half2_rn, __half22float2, __low2half,
                 __high2half)
static inline __half2 make_half2(const __half x, const __half y) { return __half2(x, y); }

#endif
