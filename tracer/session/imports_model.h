/* SPDX-License-Identifier: MIT */
/* imports_model.h - one process's imports, whichever backend saw them.
 *
 * The shim records each import with the finder and loader that produced
 * it (<pid>.imports, common/imports_format.h); the eBPF probes see module
 * loads with their times, threads and nesting (<pid>.bpf).  Both end up
 * in the same validated view of the imports format, so report/ and top/
 * read one shape; `chains` says whether finders and loaders were seen.
 */
#ifndef AT_IMPORTS_MODEL_H
#define AT_IMPORTS_MODEL_H
#include <sys/types.h>

#include "imports_format.h"

typedef struct at_imports_model {
    const char *source;     /* "preload" or "ebpf"                          */
    int chains;             /* finders, loaders, origins were observed      */
    void *buf;              /* the image the view points into               */
    at_imp_view_t v;        /* records in start order                       */
} at_imports_model_t;

/* The imports of process `key` in session dir: <key>.imports when the
 * shim wrote one, else the import view of <key>.bpf.  0; -ENOENT when
 * neither has them (nothing printed); another -errno after one line on
 * stderr. */
int at_imports_model_load(const char *dir, pid_t key, at_imports_model_t *m);
void at_imports_model_free(at_imports_model_t *m);

#endif
