// C[M,N] = A[M,K] @ B[K,N], row-major, T = float or double (-DT=...).
// A block of (BN/TN, BM/TM) = (8, 8) threads computes a BM x BN tile of C from BK-wide shared-memory
// tiles of A and B; each thread accumulates a TM x TN sub-tile in registers (register blocking).
#ifndef T
#define T float
#endif
#define BM 32
#define BN 32
#define BK 8
#define TM 4
#define TN 4
#define NTHREADS ((BM / TM) * (BN / TN))

extern "C" __global__ void __launch_bounds__(NTHREADS)
matmul_tiled(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C, int M, int N, int K) {
  __shared__ T As[BK][BM];  // A tile, transposed: As[k][m]
  __shared__ T Bs[BK][BN];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * blockDim.x + tx;
  const int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;
  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  for (int k0 = 0; k0 < K; k0 += BK) {
    for (int e = tid; e < BM * BK; e += NTHREADS) {
      const int m = e / BK, k = e % BK;
      const int r = row0 + m, kk = k0 + k;
      As[k][m] = (r < M && kk < K) ? A[(size_t)r * K + kk] : T(0);
    }
    for (int e = tid; e < BK * BN; e += NTHREADS) {
      const int k = e / BN, n = e % BN;
      const int kk = k0 + k, c = col0 + n;
      Bs[k][n] = (kk < K && c < N) ? B[(size_t)kk * N + c] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      T a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[k][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[k][tx * TN + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();  // the next iteration overwrites the tiles
  }
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int r = row0 + ty * TM + i, c = col0 + tx * TN + j;
      if (r < M && c < N) C[(size_t)r * N + c] = acc[i][j];
    }
}
