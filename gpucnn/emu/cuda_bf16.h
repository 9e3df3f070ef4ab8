/* <cuda_bf16.h> under the emulator: __nv_bfloat16, __nv_bfloat162 and the conversions and arithmetic
 * kernels use (see emu_lowp.h for the rounding rules). */
#ifndef GPUCNN_EMU_CUDA_BF16_H
#define GPUCNN_EMU_CUDA_BF16_H
#include "emu_lowp.h"

typedef ::__emu::lowp<1> __nv_bfloat16;
typedef ::__emu::lowp2<1> __nv_bfloat162;
typedef ::__emu::lowp_raw<1> __nv_bfloat16_raw;
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;
__EMU_LOWP_COMMON(__nv_bfloat16, __nv_bfloat162)
__EMU_LOWP_NAMED(__nv_bfloat16, __nv_bfloat162, __float2bfloat16, __bfloat162float, __floats2bfloat162_rn,
                 __halves2bfloat162, __bfloat16_as_ushort, __ushort_as_bfloat16, __bfloat16_as_short,
                 __short_as_bfloat16, __float22bfloat162_rn, __bfloat1622float2, __low2bfloat16, __high2bfloat16)
static inline __nv_bfloat162 make_bfloat162(const __nv_bfloat16 x, const __nv_bfloat16 y) {
  return __nv_bfloat162(x, y);
}

#endif
