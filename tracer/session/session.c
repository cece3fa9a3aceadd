/* SPDX-License-Identifier: MIT */
/* session.c - create, open and remove session directories and their files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "segment_format.h"
#include "session/session.h"

/* A directory we own, not a symlink, mode 0700: the only kind a session
 * may live in (the shim of every traced process writes there). */
static int check_private_dir(const char *path, struct stat *st)
{
    if (lstat(path, st) < 0)
        return -errno;
    if (S_ISLNK(st->st_mode))
        return -ELOOP;
    if (!S_ISDIR(st->st_mode) || st->st_uid != geteuid())
        return -EEXIST;
    return 0;
}

static int make_private_dir(const char *path, struct stat *st)
{
    if (mkdir(path, 0700) == 0)     /* 0700 whatever the umask */
        return chmod(path, 0700) < 0 ? -errno : check_private_dir(path, st);
    if (errno != EEXIST)
        return -errno;
    /* An existing directory is accepted only if it is a real directory
     * of ours (not a symlink) and empty, so nothing is overwritten. */
    int rc = check_private_dir(path, st);
    if (rc < 0)
        return rc;
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            entries++;
    closedir(d);
    if (entries)
        return -ENOTEMPTY;
    return chmod(path, 0700) < 0 ? -errno : 0;
}

/* The directory checked above must be the one realpath() names: a swap
 * for a symlink in between would send every file elsewhere. */
static int same_dir(const char *resolved, const struct stat *want)
{
    struct stat st;
    int rc = check_private_dir(resolved, &st);
    if (rc < 0)
        return rc;
    return st.st_dev == want->st_dev && st.st_ino == want->st_ino ? 0 : -ELOOP;
}

int at_session_create(const char *requested, char *out, size_t out_size)
{
    char tmpl[PATH_MAX];
    if (requested) {
        struct stat st;
        int rc = make_private_dir(requested, &st);
        if (rc < 0)
            return rc;
        if (!realpath(requested, tmpl))
            return -errno;
        rc = same_dir(tmpl, &st);
        if (rc < 0)
            return rc;
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(tmpl, sizeof(tmpl), "%s/archtrace.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(tmpl) || chmod(tmpl, 0700) < 0)
            return -errno;
    }
    if (strlen(tmpl) >= out_size)
        return -ENAMETOOLONG;
    strcpy(out, tmpl);
    return 0;
}

const char *at_key_name(pid_t key, char *buf, size_t n)
{
    if (at_key_image(key))
        snprintf(buf, n, "%d-%d", (int)at_key_pid(key), at_key_image(key));
    else
        snprintf(buf, n, "%d", (int)key);
    return buf;
}

const char *at_key_label(pid_t key, char *buf, size_t n)
{
    if (at_key_image(key))
        snprintf(buf, n, "%d before exec %d", (int)at_key_pid(key), at_key_image(key));
    else
        snprintf(buf, n, "%d", (int)key);
    return buf;
}

/* Decimal digits, no sign or leading zero: the only spelling the shim
 * and the tracer write. */
static long parse_decimal(const char *s, const char **end)
{
    long v = 0;
    const char *p = s;
    if (*p < '1' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9' && v <= INT_MAX / 10; p++)
        v = v * 10 + (*p - '0');
    *end = p;
    return *p >= '0' && *p <= '9' ? -1 : v;
}

pid_t at_session_parse_name(const char *name, const char **rest)
{
    const char *end;
    long pid = parse_decimal(name, &end), image = 0;
    if (pid <= 0 || pid > AT_KEY_PID_MASK)
        return 0;
    if (*end == '-') {
        image = parse_decimal(end + 1, &end);
        if (image <= 0 || image > AT_SEG_IMAGE_MAX)
            return 0;
    }
    if (*end != '.')
        return 0;
    *rest = end + 1;
    return at_key_make((pid_t)pid, (int)image);
}

ino_t at_session_seg_inode(const char *dir, pid_t key)
{
    char path[PATH_MAX], stem[32];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s.seg", dir, at_key_name(key, stem, sizeof stem));
    return lstat(path, &st) == 0 ? st.st_ino : 0;
}

pid_t at_session_renamed_key(const char *dir, pid_t pid, ino_t ino)
{
    for (int image = 1; image <= AT_SEG_IMAGE_MAX; image++) {
        ino_t got = at_session_seg_inode(dir, at_key_make(pid, image));
        if (!got)
            return 0;
        if (got == ino)
            return at_key_make(pid, image);
    }
    return 0;
}

static int file_path(char *buf, size_t n, const char *dir, pid_t pid, const char *suffix)
{
    char stem[32];
    int len = pid > 0 ? snprintf(buf, n, "%s/%s.%s", dir, at_key_name(pid, stem, sizeof stem), suffix)
                      : snprintf(buf, n, "%s/%s", dir, suffix);
    return (len < 0 || (size_t)len >= n) ? -ENAMETOOLONG : 0;
}

FILE *at_session_open_file(const char *dir, pid_t pid, const char *suffix)
{
    char path[PATH_MAX];
    int rc = file_path(path, sizeof(path), dir, pid, suffix);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    /* O_NONBLOCK: a FIFO in a session must not block the report */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "r");
    if (!f)
        close(fd);
    return f;
}

FILE *at_session_create_file(const char *dir, pid_t pid, const char *suffix)
{
    char path[PATH_MAX];
    int rc = file_path(path, sizeof(path), dir, pid, suffix);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f)
        close(fd);
    return f;
}

int at_session_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int dfd = dirfd(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dfd, e->d_name, 0);
    closedir(d);
    return rmdir(dir) < 0 ? -errno : 0;
}

/* The removal in a detached grandchild, so the caller can exit now.
 * Unlinking the shim's tables is the slowest step of a short run's end:
 * freeing their reserved blocks costs 2-4 ms a file on a filesystem
 * mounted with `discard` (this machine's ext4: 15-20 ms in all under
 * load), all of it after the program is done.  The grandchild holds
 * none of the caller's descriptors (a reader of our stdout must see EOF
 * when we exit) and leaves the terminal's session (Ctrl-C is not for
 * it).  Synchronous when it cannot fork. */
void at_session_remove_later(const char *dir)
{
    pid_t mid = fork();
    if (mid < 0) {
        at_session_remove(dir);
        return;
    }
    if (mid == 0) {
        if (fork() == 0) {
            int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
            for (int fd = 0; fd < 3; fd++)
                dup2(null_fd, fd);
            closefrom(3);
            setsid();
            at_session_remove(dir);
        }
        _exit(0);
    }
    while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
        ;
}
