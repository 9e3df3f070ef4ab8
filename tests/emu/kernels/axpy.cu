// y = alpha * x + y, specialised by -DT=float / -DT=double (and -DNEGATE to compute y - alpha * x).
#ifndef T
#define T float
#endif
#ifdef NEGATE
#define SIGN (-1)
#else
#define SIGN 1
#endif

extern "C" __global__ void axpy(int n, T alpha, const T* __restrict__ x, T* __restrict__ y) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
    y[i] = SIGN * alpha * x[i] + y[i];
}

// y = exp(x) * sqrt(|x|) + tanh(x): CUDA's overloaded math on T.
extern "C" __global__ void math_mix(int n, const T* __restrict__ x, T* __restrict__ y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = exp(x[i]) * sqrt(fabs(x[i])) + tanh(x[i]) + max(x[i], T(0));
}
