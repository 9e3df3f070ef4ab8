/* The contract between emulated kernel modules (shim.h + generated trampolines), the emulator runtime
 * (runtime .so) and the Python launcher (gpucnn/emu/native.py mirrors the structs with ctypes).
 * Bump GPUCNN_EMU_ABI when a struct or a signature here changes. */
#ifndef GPUCNN_EMU_ABI_H
#define GPUCNN_EMU_ABI_H

#define GPUCNN_EMU_ABI 2

#ifdef __cplusplus
#define EMU_NOEXCEPT noexcept
extern "C" {
#else
#define EMU_NOEXCEPT
#endif

/* CUDA's built-in index type; dim3 (with constructors) lives in shim.h and has the same layout. */
struct uint3 {
  unsigned int x, y, z;
};

/* Parameter type codes, reported per kernel parameter by the trampolines (see __emu::describe). */
enum {
  EMU_TY_OTHER = 0, /* a struct or type the launcher has no numpy mapping for */
  EMU_TY_VOID,
  EMU_TY_BOOL,
  EMU_TY_CHAR, /* plain char: int8 or uint8 accepted */
  EMU_TY_I8,
  EMU_TY_U8,
  EMU_TY_I16,
  EMU_TY_U16,
  EMU_TY_I32,
  EMU_TY_U32,
  EMU_TY_I64,
  EMU_TY_U64,
  EMU_TY_F32,
  EMU_TY_F64,
  EMU_TY_FLOAT2,
  EMU_TY_FLOAT4,
  EMU_TY_DOUBLE2,
  EMU_TY_INT2,
  EMU_TY_INT4,
  EMU_TY_UINT2,
  EMU_TY_UINT4,
  EMU_TY_POINTER, /* pointee is itself a pointer (float**): cannot be passed from NumPy */
  EMU_TY_F16,     /* __half (cuda_fp16.h): numpy float16 */
  EMU_TY_BF16,    /* __nv_bfloat16 (cuda_bf16.h): ml_dtypes.bfloat16 */
  EMU_TY_HALF2,   /* __half2: pairs of float16 */
  EMU_TY_BF162    /* __nv_bfloat162: pairs of bfloat16 */
};

typedef struct EmuParam {
  int code;     /* EMU_TY_* of the parameter, or of the pointee when is_ptr */
  int is_ptr;   /* 1 for T*, 0 for a by-value scalar */
  int is_const; /* pointee is const (const T*): the launcher skips the copy-back */
  int size;     /* sizeof the scalar or of the pointee (0 for void) */
} EmuParam;

typedef struct EmuKernelInfo {
  void (*tramp)(void **args); /* calls the kernel with *(P_i*)args[i] */
  int nparams;
  const EmuParam *params;
  char *smem_begin; /* this kernel's static __shared__ section, or NULL */
  char *smem_end;
} EmuKernelInfo;

typedef struct EmuModuleInfo {
  int abi;
  char *common_smem_begin; /* __shared__ declared outside any recognised kernel body */
  char *common_smem_end;
} EmuModuleInfo;

/* Warp-level operation kinds (__shfl_sync & co). */
enum {
  EMU_W_SHFL_IDX = 1,
  EMU_W_SHFL_UP,
  EMU_W_SHFL_DOWN,
  EMU_W_SHFL_XOR,
  EMU_W_BALLOT,
  EMU_W_ANY,
  EMU_W_ALL,
  EMU_W_SYNCWARP,
  EMU_W_MATCH_ANY,
  EMU_W_REDUCE_ADD,
  EMU_W_REDUCE_MIN_U,
  EMU_W_REDUCE_MAX_U,
  EMU_W_REDUCE_MIN_I,
  EMU_W_REDUCE_MAX_I,
  EMU_W_REDUCE_AND,
  EMU_W_REDUCE_OR,
  EMU_W_REDUCE_XOR,
  EMU_W_ACTIVEMASK, /* not a synchronising op in CUDA: see __emu_activemask */
  /* Warp-collective inline-PTX instructions (.sync.aligned: all 32 lanes, the same instruction). */
  EMU_W_MMA_TF32, /* mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 */
  EMU_W_MMA_F16,  /* mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 */
  EMU_W_MMA_BF16, /* mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 */
  EMU_W_LDMATRIX  /* ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.b16 */
};

/* Block barrier flavours (__syncthreads, __syncthreads_count/and/or). */
enum { EMU_B_SYNC = 1, EMU_B_COUNT, EMU_B_AND, EMU_B_OR };

/* What a launch can end with (EmuError.kind). */
enum {
  EMU_OK = 0,
  EMU_ERR_TRAP,
  EMU_ERR_ASSERT,
  EMU_ERR_FAULT,
  EMU_ERR_DEADLOCK,
  EMU_ERR_WARP,
  EMU_ERR_INTERNAL,
  EMU_ERR_ADDRESS /* an inline-PTX operand address outside its state space or misaligned (message says which) */
};

/* Where a faulting address lies, when the runtime can tell (EmuError.region). */
enum { EMU_REGION_UNKNOWN = 0, EMU_REGION_DYN_SMEM, EMU_REGION_STACK };

enum { EMU_ORDER_FORWARD = 0, EMU_ORDER_REVERSE, EMU_ORDER_SHUFFLED };

typedef struct EmuLaunch {
  void (*tramp)(void **args);
  void **args;
  unsigned int grid[3];
  unsigned int block[3];
  unsigned long long dyn_smem;    /* bytes of dynamic shared memory (shared_mem=) */
  char *smem[4];                  /* [begin, end) of two static shared sections to poison per block */
  int order;                      /* EMU_ORDER_* */
  unsigned long long seed;        /* for EMU_ORDER_SHUFFLED */
  unsigned long long stack_bytes; /* usable stack per emulated thread */
} EmuLaunch;

typedef struct EmuError {
  int kind; /* EMU_OK or EMU_ERR_* */
  unsigned int block[3];
  unsigned int thread[3];
  int signo;
  int region; /* EMU_REGION_* for faults */
  int access; /* for faults: 0 unknown, 1 read, 2 write */
  unsigned long long addr;
  unsigned long long region_offset; /* fault offset relative to the region's usable start */
  const char *file;
  int line;
  char message[8192];
} EmuError;

/* Runtime entry points used by kernels through shim.h. */
extern struct uint3 __emu_threadIdx, __emu_blockIdx, __emu_blockDim, __emu_gridDim;
extern char *__emu_dyn_smem;
void __emu_syncthreads(const char *file, int line);
int __emu_syncthreads_op(int op, int pred, const char *file, int line);
unsigned long long __emu_warp_op(int kind, unsigned int mask, unsigned long long value, int b, int width,
                                 int size, const char *file, int line);
unsigned int __emu_activemask(const char *file, int line);
long long __emu_clock64(void);
/* Inline PTX (generated from asm statements, see ptx_rewrite.py and ptx_shim.h). Shared-memory addresses
 * are 32-bit shared-window addresses as __cvta_generic_to_shared returns them. */
unsigned int __emu_cvta_to_shared(const void *p, const char *file, int line);
void *__emu_cvta_to_generic(unsigned long long addr, const char *file, int line);
/* in: a[4], b[2], c[4] as bit patterns; out: d[4] (f32 bits). kind: EMU_W_MMA_*. */
void __emu_mma(int kind, const unsigned int *in, unsigned int *out, const char *file, int line);
/* num: 1, 2 or 4 matrices; generic: addr is a generic (host) pointer rather than a shared-window address. */
void __emu_ldmatrix(int num, int trans, int generic, unsigned long long addr, unsigned int *out, const char *file,
                    int line);
/* cache_global: .cg (cp-size must be 16) rather than .ca (4, 8 or 16). */
void __emu_cp_async(unsigned long long dst, const void *src, int cp_size, long long src_size, int cache_global,
                    const char *file, int line);
void __emu_cp_async_commit(void);
void __emu_cp_async_wait(long long n, const char *file, int line); /* n < 0: wait_all */
void __emu_trap(const char *file, int line) __attribute__((noreturn));
/* glibc's assert() calls this: kernels are compiled with -D__assert_fail=__emu_assert_fail. */
void __emu_assert_fail(const char *expr, const char *file, unsigned int line, const char *func)
    EMU_NOEXCEPT __attribute__((noreturn));

/* Runtime entry points used by the Python launcher. */
int emu_abi_version(void);
int emu_launch(const EmuLaunch *launch, EmuError *err);
void *emu_guarded_alloc(unsigned long long nbytes, void **map_base, unsigned long long *map_len);
void emu_guarded_free(void *map_base, unsigned long long map_len);
double emu_bench_switch(long iterations);

#ifdef __cplusplus
}
#endif

#endif
