/*
 * powercut.c — what a power cut would take from `acidizer serve`'s data directory, kept aside so that it can be
 * taken. Loaded with LD_PRELOAD into a server (the power-loss test compiles it at run time), it intercepts the
 * calls that change a file under $POWERCUT_DIR and, before each one runs, appends an undo record to FILE.powercut-undo:
 * the file's size and the bytes of the range about to change. An fsync() or fdatasync() of the file makes those
 * changes durable, so it empties the file's undo log. After a `kill -9`, applying each log's records newest first
 * (tests/src/powercut.rs) leaves every file as it was at its last fsync: what a disk that kept only synced data
 * would hold when the power came back.
 *
 * A file or directory created under the directory exists after a power cut only once the directory that holds it
 * has been fsynced since: the shim appends "+PATH" to the log $POWERCUT_CREATED for each one it sees created (by
 * open() with O_CREAT, or mkdir()), and "-DIR" for each fsync() or fdatasync() of a directory DIR, which makes the
 * entries made in it durable; a power cut deletes what was created and not made durable (tests/src/powercut.rs).
 * Deleting and renaming files are not modelled: a file deleted stays deleted.
 *
 * Files ending in -shm (SQLite's shared memory, which a power cut loses whole: the test deletes it) and the undo
 * logs themselves are left alone.
 *
 * If $POWERCUT_STATS names a file, it holds the number of intercepted calls on data files, one little-endian u64
 * per entry of `CALLS` below (in that order), mapped shared so a `kill -9` loses none.
 *
 * Build: cc -shared -fPIC -O2 -o powercut.so powercut.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* The calls counted, in the order of the stats file. */
enum call {
    CALL_WRITE,
    CALL_PWRITE,
    CALL_PWRITE64,
    CALL_WRITEV,
    CALL_PWRITEV,
    CALL_PWRITEV64,
    CALL_FTRUNCATE,
    CALL_FTRUNCATE64,
    CALL_POSIX_FALLOCATE,
    CALL_POSIX_FALLOCATE64,
    CALL_FSYNC,
    CALL_FDATASYNC,
    CALL_UNDO_RECORDS,
    CALL_CREATES,
    CALL_DIRECTORY_SYNCS,
    CALLS
};

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off64_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_posix_fallocate64)(int, off64_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_mkdirat)(int, const char *, mode_t);

static char dir[PATH_MAX];
static size_t dir_len;
static uint64_t local_stats[CALLS];
static uint64_t *stats = local_stats;
/* The log of entries created under the directory, and of its directories synced. */
static int created = -1;

/* One lock around every change of a data file with its undo record, and every sync with the emptying of its log:
 * the records are in the order of the changes, and a sync empties only the records of changes it covered. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The open undo log of each data file seen, by path. */
struct log {
    char path[PATH_MAX];
    int fd;
};
static struct log logs[64];
static size_t log_count;

static void die(const char *what) {
    fprintf(stderr, "powercut: %s: %s\n", what, strerror(errno));
    abort();
}

static void *next(const char *name) {
    void *symbol = dlsym(RTLD_NEXT, name);
    if (!symbol) {
        fprintf(stderr, "powercut: no %s to wrap\n", name);
        abort();
    }
    return symbol;
}

__attribute__((constructor)) static void init(void) {
    real_write = next("write");
    real_pwrite = next("pwrite");
    real_pwrite64 = next("pwrite64");
    real_writev = next("writev");
    real_pwritev = next("pwritev");
    real_pwritev64 = next("pwritev64");
    real_ftruncate = next("ftruncate");
    real_ftruncate64 = next("ftruncate64");
    real_posix_fallocate = next("posix_fallocate");
    real_posix_fallocate64 = next("posix_fallocate64");
    real_fsync = next("fsync");
    real_fdatasync = next("fdatasync");
    real_open = next("open");
    real_open64 = next("open64");
    real_openat = next("openat");
    real_openat64 = next("openat64");
    real_mkdirat = next("mkdirat");

    const char *wanted = getenv("POWERCUT_DIR");
    if (!wanted || !realpath(wanted, dir)) die("POWERCUT_DIR must name an existing directory");
    dir_len = strlen(dir);

    const char *created_path = getenv("POWERCUT_CREATED");
    if (!created_path) die("POWERCUT_CREATED must name the log of entries created");
    created = real_open(created_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (created < 0) die("cannot open POWERCUT_CREATED");

    const char *stats_path = getenv("POWERCUT_STATS");
    if (stats_path) {
        int fd = real_open(stats_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || real_ftruncate(fd, sizeof local_stats) != 0) die("cannot open POWERCUT_STATS");
        void *mapped = mmap(NULL, sizeof local_stats, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (mapped == MAP_FAILED) die("cannot map POWERCUT_STATS");
        stats = mapped;
        close(fd);
    }
}

static void count(enum call call) {
    __atomic_fetch_add(&stats[call], 1, __ATOMIC_RELAXED);
}

static int ends_with(const char *s, size_t len, const char *suffix) {
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Whether `fd` is a data file (a file under the directory, neither shared memory nor an undo log); its path into
 * `path`. The path is looked up on every call, not cached: a closed descriptor's number is soon another file's. */
static int data_file(int fd, char path[PATH_MAX]) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, PATH_MAX - 1);
    if (len <= 0) return 0;
    path[len] = '\0';
    if ((size_t)len <= dir_len + 1 || memcmp(path, dir, dir_len) != 0 || path[dir_len] != '/') return 0;
    return !ends_with(path, len, "-shm") && !ends_with(path, len, ".powercut-undo") &&
           !ends_with(path, len, " (deleted)");
}

/* The undo log of the data file at `path`, opened once. Under `lock`. */
static int log_of(const char *path) {
    for (size_t i = 0; i < log_count; i++) {
        if (strcmp(logs[i].path, path) == 0) return logs[i].fd;
    }
    if (log_count == sizeof logs / sizeof logs[0]) die("too many data files");
    char name[PATH_MAX + 32];
    snprintf(name, sizeof name, "%s.powercut-undo", path);
    int fd = real_open(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) die("cannot open an undo log");
    snprintf(logs[log_count].path, PATH_MAX, "%s", path);
    logs[log_count].fd = fd;
    log_count++;
    return fd;
}

static void append(int fd, const void *data, size_t len) {
    const char *at = data;
    while (len > 0) {
        ssize_t n = real_write(fd, at, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("cannot write an undo record");
        at += n;
        len -= (size_t)n;
    }
}

/* Under `lock`, before `len` bytes of the data file `fd` change at `offset` (or its size changes there): appends
 * the record {size before, offset, n, the n bytes of the file from offset that lie below its size}. */
static void remember(int fd, const char *path, int64_t offset, int64_t len) {
    struct stat st;
    if (fstat(fd, &st) != 0) die("cannot stat a data file");
    int64_t size = st.st_size;
    int64_t end = offset + len < size ? offset + len : size;
    int64_t saved = end > offset ? end - offset : 0;
    char *old = malloc(saved > 0 ? (size_t)saved : 1);
    if (!old) die("out of memory");
    int64_t got = 0;
    int reader = fd;
    while (got < saved) {
        ssize_t n = pread(reader, old + got, (size_t)(saved - got), offset + got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EBADF && reader == fd) {
            /* A descriptor opened write-only: read through one of our own. */
            reader = real_open(path, O_RDONLY | O_CLOEXEC);
            if (reader < 0) die("cannot read a data file");
            continue;
        }
        if (n <= 0) die("cannot read the bytes about to change");
        got += n;
    }
    if (reader != fd) close(reader);
    int64_t header[3] = {size, offset, saved};
    int log = log_of(path);
    append(log, header, sizeof header);
    append(log, old, (size_t)saved);
    free(old);
    count(CALL_UNDO_RECORDS);
}

/* Where a write() or writev() on `fd` lands: at the end when opened with O_APPEND, else at the current offset. */
static int64_t current_offset(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_APPEND)) {
        struct stat st;
        if (fstat(fd, &st) != 0) die("cannot stat a data file");
        return st.st_size;
    }
    off_t at = lseek(fd, 0, SEEK_CUR);
    if (at < 0) die("cannot tell where a write lands");
    return at;
}

static int64_t total(const struct iovec *iov, int iovcnt) {
    int64_t sum = 0;
    for (int i = 0; i < iovcnt; i++) sum += (int64_t)iov[i].iov_len;
    return sum;
}

/* A change of a data file, made after its undo record under the lock; any other file's, made as it is. */
#define CHANGE(call, offset_expr, len_expr, real_call)                                                           \
    do {                                                                                                         \
        char path[PATH_MAX];                                                                                     \
        if (!data_file(fd, path)) return real_call;                                                              \
        pthread_mutex_lock(&lock);                                                                               \
        count(call);                                                                                             \
        remember(fd, path, (offset_expr), (len_expr));                                                           \
        __typeof__(real_call) result = real_call;                                                                \
        int saved_errno = errno;                                                                                 \
        pthread_mutex_unlock(&lock);                                                                             \
        errno = saved_errno;                                                                                     \
        return result;                                                                                           \
    } while (0)

ssize_t write(int fd, const void *buf, size_t count_) {
    CHANGE(CALL_WRITE, current_offset(fd), (int64_t)count_, real_write(fd, buf, count_));
}

ssize_t pwrite(int fd, const void *buf, size_t count_, off_t offset) {
    CHANGE(CALL_PWRITE, offset, (int64_t)count_, real_pwrite(fd, buf, count_, offset));
}

ssize_t pwrite64(int fd, const void *buf, size_t count_, off64_t offset) {
    CHANGE(CALL_PWRITE64, offset, (int64_t)count_, real_pwrite64(fd, buf, count_, offset));
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    CHANGE(CALL_WRITEV, current_offset(fd), total(iov, iovcnt), real_writev(fd, iov, iovcnt));
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    CHANGE(CALL_PWRITEV, offset, total(iov, iovcnt), real_pwritev(fd, iov, iovcnt, offset));
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t offset) {
    CHANGE(CALL_PWRITEV64, offset, total(iov, iovcnt), real_pwritev64(fd, iov, iovcnt, offset));
}

/* A size change records the bytes a shrink cuts off; a growth, only the size before. */
static int64_t cut_off(int fd, int64_t length) {
    struct stat st;
    if (fstat(fd, &st) != 0) die("cannot stat a data file");
    return st.st_size > length ? st.st_size - length : 0;
}

int ftruncate(int fd, off_t length) {
    CHANGE(CALL_FTRUNCATE, length, cut_off(fd, length), real_ftruncate(fd, length));
}

int ftruncate64(int fd, off64_t length) {
    CHANGE(CALL_FTRUNCATE64, length, cut_off(fd, length), real_ftruncate64(fd, length));
}

int posix_fallocate(int fd, off_t offset, off_t len) {
    CHANGE(CALL_POSIX_FALLOCATE, offset, 0, real_posix_fallocate(fd, offset, len));
}

int posix_fallocate64(int fd, off64_t offset, off64_t len) {
    CHANGE(CALL_POSIX_FALLOCATE64, offset, 0, real_posix_fallocate64(fd, offset, len));
}

/* Whether `fd` is the directory or a directory under it; its path into `path`, its length into `len`. */
static int watched_directory(int fd, char path[PATH_MAX], size_t *len) {
    char link[64];
    struct stat st;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX - 1);
    if (n <= 0 || fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    path[n] = '\0';
    *len = (size_t)n;
    return (size_t)n >= dir_len && memcmp(path, dir, dir_len) == 0 && (path[dir_len] == '\0' || path[dir_len] == '/');
}

/* Appends a line to the log of entries created: '+' or '-', then a path. Under `lock`. */
static void log_entry(char sign, char *path, size_t len) {
    char line[PATH_MAX + 2];
    line[0] = sign;
    memcpy(line + 1, path, len);
    line[len + 1] = '\n';
    append(created, line, len + 2);
}

/* A sync of a data file that succeeds makes every change before it durable: its undo log is emptied. A sync of a
 * directory makes the entries created in it durable: it is logged. */
static int synced(enum call call, int fd, int (*real_sync)(int)) {
    char path[PATH_MAX];
    size_t len;
    if (watched_directory(fd, path, &len)) {
        pthread_mutex_lock(&lock);
        count(CALL_DIRECTORY_SYNCS);
        int result = real_sync(fd);
        int saved_errno = errno;
        if (result == 0) log_entry('-', path, len);
        pthread_mutex_unlock(&lock);
        errno = saved_errno;
        return result;
    }
    if (!data_file(fd, path)) return real_sync(fd);
    pthread_mutex_lock(&lock);
    count(call);
    int result = real_sync(fd);
    int saved_errno = errno;
    if (result == 0 && real_ftruncate(log_of(path), 0) != 0) die("cannot empty an undo log");
    pthread_mutex_unlock(&lock);
    errno = saved_errno;
    return result;
}

int fsync(int fd) {
    return synced(CALL_FSYNC, fd, real_fsync);
}

int fdatasync(int fd) {
    return synced(CALL_FDATASYNC, fd, real_fdatasync);
}

/* The opening functions wrapped: the same call, whichever the program used. */
enum opener { OPEN, OPEN64, OPENAT, OPENAT64 };

static int open_with(enum opener opener, int at, const char *path, int flags, mode_t mode) {
    switch (opener) {
    case OPEN: return real_open(path, flags, mode);
    case OPEN64: return real_open64(path, flags, mode);
    case OPENAT: return real_openat(at, path, flags, mode);
    default: return real_openat64(at, path, flags, mode);
    }
}

/* Whether the new entry at `path` (its length `len`) is one whose creation is modelled: under the directory, and
 * neither shared memory nor an undo log. */
static int modelled(const char *path, size_t len) {
    return len > dir_len + 1 && memcmp(path, dir, dir_len) == 0 && path[dir_len] == '/' &&
           !ends_with(path, len, ".powercut-undo") && !ends_with(path, len, "-shm");
}

/* Under `lock`, after `fd` was opened on a file that did not exist: logs its creation. */
static void note_created(int fd) {
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, PATH_MAX - 1);
    if (len <= 0) return;
    path[len] = '\0';
    if (!modelled(path, (size_t)len)) return;
    count(CALL_CREATES);
    log_entry('+', path, (size_t)len);
}

/* An open that may create a file: whether it did is told by whether the file was there just before, both under the
 * lock (the program's other opens that may create a file, and its changes of data files, wait). */
static int opening(enum opener opener, int at, const char *path, int flags, mode_t mode) {
    if (!(flags & O_CREAT)) return open_with(opener, at, path, flags, mode);
    pthread_mutex_lock(&lock);
    int existed = faccessat(at, path, F_OK, 0) == 0;
    int fd = open_with(opener, at, path, flags, mode);
    int saved_errno = errno;
    if (fd >= 0 && !existed) note_created(fd);
    pthread_mutex_unlock(&lock);
    errno = saved_errno;
    return fd;
}

/* The mode argument, present when the flags create a file. */
#define MODE(flags) \
    mode_t mode = 0; \
    if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) { \
        va_list args; \
        va_start(args, flags); \
        mode = va_arg(args, mode_t); \
        va_end(args); \
    }

int open(const char *path, int flags, ...) {
    MODE(flags);
    return opening(OPEN, AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    MODE(flags);
    return opening(OPEN64, AT_FDCWD, path, flags, mode);
}

int openat(int at, const char *path, int flags, ...) {
    MODE(flags);
    return opening(OPENAT, at, path, flags, mode);
}

int openat64(int at, const char *path, int flags, ...) {
    MODE(flags);
    return opening(OPENAT64, at, path, flags, mode);
}

/* A directory made: logged like a file created. Its path is resolved once it exists (its parent's symbolic links,
 * the relative path's start). */
static int made_directory(int at, const char *path, mode_t mode) {
    pthread_mutex_lock(&lock);
    int result = real_mkdirat(at, path, mode);
    int saved_errno = errno;
    if (result == 0) {
        int fd = real_openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            note_created(fd);
            close(fd);
        }
    }
    pthread_mutex_unlock(&lock);
    errno = saved_errno;
    return result;
}

int mkdir(const char *path, mode_t mode) {
    return made_directory(AT_FDCWD, path, mode);
}

int mkdirat(int at, const char *path, mode_t mode) {
    return made_directory(at, path, mode);
}
