/* SPDX-License-Identifier: MIT */
/* push.c - a profile POSTed to a Pyroscope-compatible ingest endpoint (see push.h). */
#include "agent/push.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/curl_api.h"

#define PUSH_TIMEOUT_S 10L        /* a stuck backend must not stall the agent long */
#define APP_NAME       "archtrace.python"

/* A label value as Pyroscope's name grammar takes it: no braces, commas,
 * equals signs or quotes (they would end the value). */
static void label_value(char *out, size_t n, const char *v)
{
    size_t k = 0;
    for (; *v && k + 1 < n; v++)
        out[k++] = strchr("{}=,\"\\ ", *v) ? '_' : *v;
    out[k] = '\0';
}

/* <url>/ingest?... with the name and labels URL-escaped. */
static int ingest_url(const at_curl_t *api, CURL *c, char *out, size_t n, const char *url, pid_t pid, const char *comm,
                      const char *version, uint64_t from_s, uint64_t until_s)
{
    char name[256], vcomm[64], vversion[32];
    label_value(vcomm, sizeof vcomm, comm);
    label_value(vversion, sizeof vversion, version);
    snprintf(name, sizeof name, APP_NAME "{pid=%d,comm=%s,python=%s}", (int)pid, vcomm, vversion);
    char *esc = api->easy_escape(c, name, 0);
    if (!esc)
        return -1;
    size_t len = strlen(url);
    int slash = len && url[len - 1] == '/';
    int rc = snprintf(out, n, "%s%singest?name=%s&from=%" PRIu64 "&until=%" PRIu64 "&format=pprof&spyName=archtrace",
                      url, slash ? "" : "/", esc, from_s, until_s);
    api->free(esc);
    return rc > 0 && (size_t)rc < n ? 0 : -1;
}

int at_push_profile(const char *url, const void *pprof, size_t len, pid_t pid, const char *comm,
                    const char *version, uint64_t from_s, uint64_t until_s, char *err, size_t errlen)
{
    const at_curl_t *api = at_curl(err, errlen);
    if (!api)
        return -1;
    CURL *c = api->easy_init();
    if (!c) {
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    char full[2048];
    curl_mime *form = NULL;
    int rc = -1;
    if (ingest_url(api, c, full, sizeof full, url, pid, comm, version, from_s, until_s) < 0) {
        snprintf(err, errlen, "URL too long");
        goto out;
    }
    form = api->mime_init(c);
    curl_mimepart *part = api->mime_addpart(form);
    api->mime_name(part, "profile");
    api->mime_filename(part, "profile.pprof");
    api->mime_data(part, pprof, len);
    api->easy_setopt(c, CURLOPT_URL, full);
    api->easy_setopt(c, CURLOPT_MIMEPOST, form);
    api->easy_setopt(c, CURLOPT_TIMEOUT, PUSH_TIMEOUT_S);
    api->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    api->easy_setopt(c, CURLOPT_USERAGENT, "archtrace-agent");
    CURLcode res = api->easy_perform(c);
    long status = 0;
    api->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (res != CURLE_OK)
        snprintf(err, errlen, "%s", api->easy_strerror(res));
    else if (status < 200 || status >= 300)
        snprintf(err, errlen, "HTTP status %ld", status);
    else
        rc = 0;
out:
    api->mime_free(form);
    api->easy_cleanup(c);
    return rc;
}
