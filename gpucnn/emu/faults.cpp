/* Memory-error detection: guarded argument buffers, guarded dynamic shared memory, and the
 * SIGSEGV/SIGBUS handler that turns a fault in a kernel thread into an error report. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "emu_internal.h"

namespace emu {

volatile sig_atomic_t g_in_fiber = 0;

static sigjmp_buf g_jump;
static pthread_t g_launch_thread;
static struct sigaction g_old_segv, g_old_bus;
static stack_t g_old_altstack;
static char *g_altstack;
static const size_t kAltStackBytes = 256 * 1024;

sigjmp_buf *fault_jump_buffer() { return &g_jump; }

static void on_fault(int signo, siginfo_t *si, void *uctx) {
  if (!g_in_fiber || !pthread_equal(pthread_self(), g_launch_thread)) {
    // Not a kernel thread's fault (another OS thread, or the emulator itself): hand it back to whoever
    // handled it before (faulthandler, or the default action), which sees it when the access re-executes.
    sigaction(signo, signo == SIGSEGV ? &g_old_segv : &g_old_bus, nullptr);
    return;
  }
  g_in_fiber = 0;
  int access = 0;
#if defined(__x86_64__) && defined(REG_ERR)
  // Bit 1 of the page-fault error code is set for writes.
  access = (((ucontext_t *)uctx)->uc_mcontext.gregs[REG_ERR] & 2) ? 2 : 1;
#else
  (void)uctx;
#endif
  fault_record(signo, (const char *)si->si_addr, access);
  siglongjmp(g_jump, 1); // back to emu_launch; the signal mask saved by sigsetjmp is restored
}

bool faults_arm(EmuError *err) {
  if (!g_altstack) {
    void *p = mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      err->kind = EMU_ERR_INTERNAL;
      strcpy(err->message, "cannot allocate the signal stack");
      return false;
    }
    g_altstack = (char *)p;
  }
  g_launch_thread = pthread_self();
  // A stack overflow faults with no stack left to run the handler on: use an alternate signal stack.
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_sp = g_altstack;
  ss.ss_size = kAltStackBytes;
  sigaltstack(&ss, &g_old_altstack);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_old_segv);
  sigaction(SIGBUS, &sa, &g_old_bus);
  return true;
}

void faults_disarm() {
  sigaction(SIGSEGV, &g_old_segv, nullptr);
  sigaction(SIGBUS, &g_old_bus, nullptr);
  if (g_old_altstack.ss_flags & SS_DISABLE) {
    stack_t off;
    memset(&off, 0, sizeof off);
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
  } else {
    sigaltstack(&g_old_altstack, nullptr);
  }
}

/* ---- dynamic shared memory: one mapping, reused by every launch ---- */

static const size_t kDynSmemMax = 256 * 1024; // above the largest opt-in limit of any GPU we target
static char *g_dyn_map;                      // [guard][kDynSmemMax usable][guard]

static bool dyn_smem_init() {
  if (g_dyn_map) return true;
  size_t ps = page_size();
  size_t len = kDynSmemMax + 2 * ps;
  void *p = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  if (mprotect((char *)p + ps, kDynSmemMax, PROT_READ | PROT_WRITE) != 0) {
    munmap(p, len);
    return false;
  }
  g_dyn_map = (char *)p;
  return true;
}

char *dyn_smem_guard() { return g_dyn_map ? g_dyn_map + page_size() + kDynSmemMax : nullptr; }

char *dyn_smem_base(unsigned long long bytes) {
  if (bytes > kDynSmemMax || !dyn_smem_init()) return nullptr;
  unsigned long long padded = (bytes + 15) & ~15ull;
  return dyn_smem_guard() - padded; // the end abuts the guard page: overruns fault
}

bool in_dyn_smem_guard(const char *addr) {
  char *g = dyn_smem_guard();
  return g && addr >= g && addr < g + page_size();
}

} // namespace emu

/* ---- guarded argument buffers ---- */

/* Guard regions are 64 KiB rather than one page so that an overrun by up to 64 KiB is still attributed
 * to the right argument instead of landing in some unrelated mapping. */
static const size_t kArgGuardBytes = 64 * 1024;

extern "C" void *emu_guarded_alloc(unsigned long long nbytes, void **map_base, unsigned long long *map_len) {
  size_t ps = emu::page_size();
  size_t guard = kArgGuardBytes < ps ? ps : kArgGuardBytes;
  size_t padded = (nbytes + 15) & ~15ull; // keep 16-byte alignment for float4/double2 loads
  size_t data = (padded + ps - 1) / ps * ps;
  size_t len = data + 2 * guard; // guard pages on both sides (address space only: nothing is committed)
  void *p = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  if (data && mprotect((char *)p + guard, data, PROT_READ | PROT_WRITE) != 0) {
    munmap(p, len);
    return nullptr;
  }
  *map_base = p;
  *map_len = len;
  return (char *)p + guard + data - padded; // the end abuts the upper guard region
}

extern "C" void emu_guarded_free(void *map_base, unsigned long long map_len) {
  if (map_base) munmap(map_base, map_len);
}
