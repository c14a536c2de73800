/* libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 turns an absolute CLOCK_MONOTONIC
   clock_nanosleep (Python's time.sleep) into EINVAL; with monotonic faked, sem_clockwait
   (Python's lock timeouts) waits a year. Keep monotonic real and send monotonic sleeps
   straight to the kernel. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
    if (clock != CLOCK_REALTIME) {
        return syscall(SYS_clock_nanosleep, clock, flags, req, rem) == 0 ? 0 : errno;
    }
    int (*next)(clockid_t, int, const struct timespec *, struct timespec *) =
        dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(clock, flags, req, rem);
}
