/* SPDX-License-Identifier: MIT */
/* meta.c - session.meta as "key=value" lines; argv entries hex-encoded so
 * any byte survives a round trip. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "session/meta.h"
#include "session/session.h"

void at_meta_set_argv(at_meta_t *m, int argc, char **argv)
{
    size_t used = 0;
    m->argc = 0;
    for (int i = 0; i < argc && m->argc < AT_META_MAX_ARGS; i++) {
        size_t len = strlen(argv[i]);
        if (used + len + 1 > sizeof(m->args))
            break;
        memcpy(m->args + used, argv[i], len + 1);
        m->argv[m->argc++] = m->args + used;
        used += len + 1;
    }
}

static void write_hex(FILE *f, const char *s)
{
    for (; *s; s++)
        fprintf(f, "%02x", (unsigned char)*s);
}

static int write_meta(FILE *f, const at_meta_t *m)
{
    fprintf(f, "archtrace-session=1\nkind=%s\ncomplete=%d\nexit_status=%d\nroot_pid=%d\n"
               "start_realtime_ns=%" PRIu64 "\nwall_s=%.6f\n",
            m->kind, m->complete, m->exit_status, (int)m->root_pid, m->start_realtime_ns, m->wall_s);
    for (int i = 0; i < m->argc; i++) {
        fputs("arg=", f);
        write_hex(f, m->argv[i]);
        fputc('\n', f);
    }
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Written next to the old one and renamed over it: a full disk or a kill
 * in the middle leaves the previous session.meta whole, never half. */
int at_meta_write(const char *dir, const at_meta_t *m)
{
    char tmp[PATH_MAX], final[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/session.meta.new", dir) >= (int)sizeof(tmp) ||
        snprintf(final, sizeof(final), "%s/session.meta", dir) >= (int)sizeof(final))
        return -ENAMETOOLONG;
    FILE *f = at_session_create_file(dir, 0, "session.meta.new");
    int rc = f ? write_meta(f, m) : -errno;
    if (rc == 0 && rename(tmp, final) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    if (rc != -ENOSPC && rc != -EDQUOT)
        return rc;
    /* A full disk has no room for two copies: replace it in place, which
     * first gives the old one's blocks back. */
    f = at_session_create_file(dir, 0, "session.meta");
    return f ? write_meta(f, m) : -errno;
}

static int decode_hex(const char *hex, char *out, size_t out_size)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 + 1 > out_size)
        return -EINVAL;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || v == 0)
            return -EINVAL;
        out[i] = (char)v;
    }
    out[n / 2] = '\0';
    return (int)(n / 2);
}

static int parse_line(at_meta_t *m, char *line, size_t *used)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return -EINVAL;
    *eq = '\0';
    const char *k = line, *v = eq + 1;
    if (!strcmp(k, "kind"))
        snprintf(m->kind, sizeof(m->kind), "%s", v);
    else if (!strcmp(k, "complete"))
        m->complete = atoi(v);
    else if (!strcmp(k, "exit_status"))
        m->exit_status = atoi(v);
    else if (!strcmp(k, "root_pid"))
        m->root_pid = (pid_t)atoi(v);
    else if (!strcmp(k, "start_realtime_ns"))
        m->start_realtime_ns = strtoull(v, NULL, 10);
    else if (!strcmp(k, "wall_s"))
        m->wall_s = strtod(v, NULL);
    else if (!strcmp(k, "arg") && m->argc < AT_META_MAX_ARGS) {
        int len = decode_hex(v, m->args + *used, sizeof(m->args) - *used);
        if (len < 0)
            return -EINVAL;
        m->argv[m->argc++] = m->args + *used;
        *used += (size_t)len + 1;
    }
    return 0;
}

/* The report goes on without session.meta, but says why the command and
 * its exit status are missing. */
static void warn_unreadable(const char *dir, int rc)
{
    const char *why = rc == -EINVAL ? "corrupt" : rc == -ENOENT ? "missing"
                    : rc == -ELOOP ? "a symbolic link, not followed" : strerror(-rc);
    fprintf(stderr, "archtrace: %s/session.meta: %s, ignored: the command and its exit status "
                    "are unknown\n", dir, why);
}

int at_meta_read(const char *dir, at_meta_t *m)
{
    FILE *f = at_session_open_file(dir, 0, "session.meta");
    int rc = f ? at_meta_parse(f, m) : -errno;
    if (f)
        fclose(f);
    if (rc < 0) {
        warn_unreadable(dir, rc);
        memset(m, 0, sizeof(*m));
    }
    return rc;
}

int at_meta_parse(FILE *f, at_meta_t *m)
{
    memset(m, 0, sizeof(*m));
    m->exit_status = -1;
    m->wall_s = -1;
    char line[8300];
    size_t used = 0;
    int rc = 0, first = 1;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (first && strcmp(line, "archtrace-session=1") != 0)
            rc = -EINVAL;
        first = 0;
        if (rc == 0)
            rc = parse_line(m, line, &used);
    }
    return first ? -EINVAL : rc;
}
