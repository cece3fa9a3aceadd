/* SPDX-License-Identifier: MIT */
/* curl_api.c - libcurl, loaded when --push first needs it (see curl_api.h). */
#include "agent/curl_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define LIBCURL "libcurl.so.4"    /* Debian's libcurl4 (the ABI of curl 7 and 8) */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static at_curl_t api;
static const at_curl_t *loaded;
static char why[256];

/* Each name into its slot; 0, or -1 naming the first one missing. */
static int look_up(void *lib)
{
    static const struct { const char *name; size_t off; } syms[] = {
        { "curl_easy_init", offsetof(at_curl_t, easy_init) },
        { "curl_easy_cleanup", offsetof(at_curl_t, easy_cleanup) },
        { "curl_easy_setopt", offsetof(at_curl_t, easy_setopt) },
        { "curl_easy_perform", offsetof(at_curl_t, easy_perform) },
        { "curl_easy_getinfo", offsetof(at_curl_t, easy_getinfo) },
        { "curl_easy_strerror", offsetof(at_curl_t, easy_strerror) },
        { "curl_easy_escape", offsetof(at_curl_t, easy_escape) },
        { "curl_free", offsetof(at_curl_t, free) },
        { "curl_mime_init", offsetof(at_curl_t, mime_init) },
        { "curl_mime_addpart", offsetof(at_curl_t, mime_addpart) },
        { "curl_mime_name", offsetof(at_curl_t, mime_name) },
        { "curl_mime_filename", offsetof(at_curl_t, mime_filename) },
        { "curl_mime_data", offsetof(at_curl_t, mime_data) },
        { "curl_mime_free", offsetof(at_curl_t, mime_free) },
    };
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
        void *fn = dlsym(lib, syms[i].name);
        if (!fn) {
            snprintf(why, sizeof why, "%s has no %s", LIBCURL, syms[i].name);
            return -1;
        }
        /* POSIX guarantees a function's address survives this round trip */
        __builtin_memcpy((char *)&api + syms[i].off, &fn, sizeof fn);
    }
    return 0;
}

static void load(void)
{
    void *lib = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(why, sizeof why, "cannot load %s (Debian's libcurl4): %s", LIBCURL, dlerror());
        return;
    }
    CURLcode (*global_init)(long) = (CURLcode (*)(long))dlsym(lib, "curl_global_init");
    if (!global_init) {
        snprintf(why, sizeof why, "%s has no curl_global_init", LIBCURL);
        return;
    }
    if (look_up(lib) < 0)
        return;
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(why, sizeof why, "%s failed to initialise", LIBCURL);
        return;
    }
    loaded = &api;   /* the library stays loaded for the process's life */
}

const at_curl_t *at_curl(char *err, size_t errlen)
{
    pthread_once(&once, load);
    if (!loaded && err)
        snprintf(err, errlen, "%s", why);
    return loaded;
}
