/* SPDX-License-Identifier: MIT */
/* test_dockerfile.c - the Dockerfile (which cannot be built here: no
 * Docker engine) installs every Debian package `make deps` installs. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

/* word-boundary search: "llvm" must not match inside "libllvm" */
static int names_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        int left = p == text || isspace((unsigned char)p[-1]);
        int right = !p[n] || isspace((unsigned char)p[n]) || p[n] == '\\';
        if (left && right)
            return 1;
    }
    return 0;
}

Test(dockerfile, installs_every_deps_package)
{
    char *docker = read_all("Dockerfile");
    char *list = read_all("tools/debian-packages.txt");
    int checked = 0;
    for (char *save, *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        for (char *s2, *pkg = strtok_r(line, " ", &s2); pkg; pkg = strtok_r(NULL, " ", &s2)) {
            cr_expect(names_word(docker, pkg), "Dockerfile does not install %s", pkg);
            checked++;
        }
    }
    cr_assert_gt(checked, 10, "the package list was read (%d packages)", checked);
    cr_assert(strstr(docker, "FROM python:3.11-slim"), "based on python:3.11-slim");
    cr_assert(strstr(docker, "labs/requirements.txt"), "installs the labs' pinned packages");
    free(docker);
    free(list);
}
