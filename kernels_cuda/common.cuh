// Shared by every kernel family. NVRTC has no host headers: nothing here (or in a family) may include
// <cmath>, <cstdio>, use std:: or INFINITY.
#pragma once

// The scalar type. Each family is compiled once per dtype with -DT=float or -DT=double.
#ifndef T
#define T float
#endif

#define GPUCNN_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

// +/- infinity without <cmath>: bit patterns, valid for float and double.
__device__ __forceinline__ float gpucnn_neg_inf(float) { return __int_as_float(0xff800000); }
__device__ __forceinline__ double gpucnn_neg_inf(double) { return __longlong_as_double(0xfff0000000000000LL); }
