/* SPDX-License-Identifier: MIT */
/* curl_api.h - libcurl, loaded when --push first needs it.
 *
 * Linked into archtrace, libcurl brings 29 more shared libraries (TLS,
 * HTTP/2, SSH, LDAP, Kerberos) that the dynamic loader maps at every
 * start of every command: +6 ms on `archtrace run`'s start-up, which
 * has a 5 ms budget.  Only the agent's --push uses it, so it is opened
 * with dlopen the first time, and its few functions looked up by name.
 */
#ifndef AT_AGENT_CURL_API_H
#define AT_AGENT_CURL_API_H
#include <curl/curl.h>   /* types and constants only: nothing is linked */
#include <stddef.h>

typedef struct at_curl {
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    char *(*easy_escape)(CURL *, const char *, int);
    void (*free)(void *);
    curl_mime *(*mime_init)(CURL *);
    curl_mimepart *(*mime_addpart)(curl_mime *);
    CURLcode (*mime_name)(curl_mimepart *, const char *);
    CURLcode (*mime_filename)(curl_mimepart *, const char *);
    CURLcode (*mime_data)(curl_mimepart *, const char *, size_t);
    void (*mime_free)(curl_mime *);
} at_curl_t;

/* libcurl's functions, loaded and initialised once (thread-safe); NULL
 * with the reason in err when it cannot be loaded. */
const at_curl_t *at_curl(char *err, size_t errlen);

#endif
