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
#include <unistd.h>
#include "session.h"

static int make_private_dir(const char *path)
{
    if (mkdir(path, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    /* An existing directory is accepted only if it is a real directory
     * of ours (not a symlink) and empty, so nothing is overwritten. */
    struct stat st;
    if (lstat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return -EEXIST;
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

int at_session_create(const char *requested, char *out, size_t out_size)
{
    char tmpl[PATH_MAX];
    if (requested) {
        int rc = make_private_dir(requested);
        if (rc < 0)
            return rc;
        if (!realpath(requested, tmpl))
            return -errno;
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(tmpl, sizeof(tmpl), "%s/archtrace.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(tmpl))
            return -errno;
    }
    if (strlen(tmpl) >= out_size)
        return -ENAMETOOLONG;
    strcpy(out, tmpl);
    return 0;
}

static int file_path(char *buf, size_t n, const char *dir, pid_t pid, const char *suffix)
{
    int len = pid > 0 ? snprintf(buf, n, "%s/%d.%s", dir, (int)pid, suffix)
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
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
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
