/* Fault injection for faults::a_failing_fsync_*: loaded into the server with LD_PRELOAD,
 * it makes fsync and fdatasync fail with EIO while the file named by
 * LRS_TEST_FSYNC_FAIL exists, as a failing disk would, and passes them on otherwise.
 * Built by the test with the system C compiler; never part of the server. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int sync_or_fail(const char *name, int fd) {
    const char *flag = getenv("LRS_TEST_FSYNC_FAIL");
    if (flag != NULL && access(flag, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    return real == NULL ? -1 : real(fd);
}

int fsync(int fd) { return sync_or_fail("fsync", fd); }

int fdatasync(int fd) { return sync_or_fail("fdatasync", fd); }
