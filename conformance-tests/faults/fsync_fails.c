/* Fault injection for faults::a_failed_fsync_*: loaded into the server with LD_PRELOAD,
 * it makes fsync and fdatasync fail with EIO while the file named by
 * LRS_TEST_FSYNC_FAIL exists, as a failing disk would, and passes them on otherwise.
 * Built by the test with the system C compiler; never part of the server. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
    const char *flag = getenv("LRS_TEST_FSYNC_FAIL");
    return flag != NULL && access(flag, F_OK) == 0;
}

int fsync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
