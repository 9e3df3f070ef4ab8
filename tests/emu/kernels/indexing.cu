// out[z][y][x] = x + 1000*y + 1000000*z over a 3-D grid of 3-D blocks (global coordinates).
extern "C" __global__ void index_3d(int* __restrict__ out, int nx, int ny, int nz) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  const int z = blockIdx.z * blockDim.z + threadIdx.z;
  if (x < nx && y < ny && z < nz) out[((size_t)z * ny + y) * nx + x] = x + 1000 * y + 1000000 * z;
}

// dims[0..5] = gridDim.xyz, blockDim.xyz as seen by the kernel.
extern "C" __global__ void launch_dims(unsigned int* dims) {
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0 && blockIdx.x == 0 && blockIdx.y == 0 &&
      blockIdx.z == 0) {
    dims[0] = gridDim.x;
    dims[1] = gridDim.y;
    dims[2] = gridDim.z;
    dims[3] = blockDim.x;
    dims[4] = blockDim.y;
    dims[5] = blockDim.z;
  }
}
