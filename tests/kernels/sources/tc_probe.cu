// Test kernels of the SASS inspection (tests/kernels/test_sass.py), not part of gpucnn: one that uses the
// three sm_80 instructions of a 16-bit tensor-core GEMM (cp.async, ldmatrix, mma.sync f16), one the bf16
// mma.sync only, one the TF32 mma.sync only, and one that uses none of them.

// Lane `lane`'s four fp32 accumulators of an m16n8 tile, as d[lane * 4 + i].
__device__ __forceinline__ void store_accumulators(float* d, int lane, float c0, float c1, float c2, float c3) {
    d[lane * 4 + 0] = c0;
    d[lane * 4 + 1] = c1;
    d[lane * 4 + 2] = c2;
    d[lane * 4 + 3] = c3;
}

// One warp computes D (16x8, f32) = A (16x16, f16, row-major) * B (16x8, f16, stored n-major: B^T row-major):
// both operands are staged in shared memory by cp.async (16 B per copy: PTX ISA 9.7.9.25.3, cp.async),
// loaded as fragments by ldmatrix (9.7.14.5.15: x4 for A, lane l giving the address of row l % 16, columns
// (l / 16) * 8..+8; x2 for B, lane l < 16 giving row l % 8, columns (l / 8) * 8..+8) and multiplied by
// mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 (9.7.14.5.8). d: lane t holds rows t/4 and t/4 + 8,
// columns 2*(t%4)..+1 (the m16n8 accumulator layout); written as d[lane * 4 + i]. Launch: 1 block of 32.
extern "C" __global__ void __launch_bounds__(32)
tc_probe_f16(const unsigned short* __restrict__ a, const unsigned short* __restrict__ b, float* __restrict__ d) {
    __shared__ __align__(16) unsigned short as[16 * 16];
    __shared__ __align__(16) unsigned short bs[8 * 16];
    const int lane = threadIdx.x;
    const unsigned sa = (unsigned)__cvta_generic_to_shared(as + lane * 8);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(a + lane * 8));
    if (lane < 16) {
        const unsigned sb = (unsigned)__cvta_generic_to_shared(bs + lane * 8);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sb), "l"(b + lane * 8));
    }
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_group 0;\n" ::);
    __syncthreads();
    unsigned a0, a1, a2, a3, b0, b1;
    const unsigned pa = (unsigned)__cvta_generic_to_shared(as + (lane % 16) * 16 + (lane / 16) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(a0), "=r"(a1), "=r"(a2), "=r"(a3) : "r"(pa));
    const unsigned pb = (unsigned)__cvta_generic_to_shared(bs + (lane % 8) * 16 + ((lane / 8) % 2) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(b0), "=r"(b1) : "r"(pb));
    float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    store_accumulators(d, lane, c0, c1, c2, c3);
}

// The bf16 mma.sync (m16n8k16.row.col.f32.bf16.bf16.f32, PTX ISA 9.7.14.5.8) on fragments read straight
// from global memory as packed pairs (lane l: a[l*4..+4], b[l*2..+2]; no layout meant). Launch: 1 block of 32.
extern "C" __global__ void __launch_bounds__(32)
tc_probe_bf16(const unsigned* __restrict__ a, const unsigned* __restrict__ b, float* __restrict__ d) {
    const int l = threadIdx.x;
    float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
                 : "r"(a[l * 4]), "r"(a[l * 4 + 1]), "r"(a[l * 4 + 2]), "r"(a[l * 4 + 3]), "r"(b[l * 2]), "r"(b[l * 2 + 1]));
    store_accumulators(d, l, c0, c1, c2, c3);
}

// One warp computes D (16x8, f32) = A (16x8, row-major) * B (8x8, stored n-major), both float rounded to
// TF32 by cvt.rna.tf32.f32 (PTX ISA 9.7.9.21), by mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
// (9.7.14.5.8; fragments loaded straight from global memory: a0..a3 = A[g][t], A[g+8][t], A[g][t+4],
// A[g+8][t+4] and b0, b1 = B[t][g], B[t+4][g], with g = lane / 4, t = lane % 4). Launch: 1 block of 32.
extern "C" __global__ void __launch_bounds__(32)
tc_probe_tf32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ d) {
    const int g = threadIdx.x / 4, t = threadIdx.x % 4;
    const float av[4] = {a[g * 8 + t], a[(g + 8) * 8 + t], a[g * 8 + t + 4], a[(g + 8) * 8 + t + 4]};
    const float bv[2] = {b[g * 8 + t], b[g * 8 + t + 4]};
    unsigned ar[4], br[2];
#pragma unroll
    for (int i = 0; i < 4; ++i) asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(ar[i]) : "f"(av[i]));
#pragma unroll
    for (int i = 0; i < 2; ++i) asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(br[i]) : "f"(bv[i]));
    float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
                 : "r"(ar[0]), "r"(ar[1]), "r"(ar[2]), "r"(ar[3]), "r"(br[0]), "r"(br[1]));
    store_accumulators(d, threadIdx.x, c0, c1, c2, c3);
}

// The same product with plain FP32 FMAs and ordinary global loads (no tensor core, no ldmatrix, no
// cp.async): thread t of one block of 128 computes d[t] = sum_k a[m, k] * b[n, k], m = t / 8, n = t % 8.
extern "C" __global__ void __launch_bounds__(128)
tc_probe_fma(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ d) {
    const int m = threadIdx.x / 8, n = threadIdx.x % 8;
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < 16; ++k) s = fmaf(a[m * 16 + k], b[n * 16 + k], s);
    d[threadIdx.x] = s;
}
