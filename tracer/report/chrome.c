/* SPDX-License-Identifier: MIT */
/* chrome.c - shared Chrome trace event pieces (see chrome.h). */
#include "report/chrome.h"

void at_chrome_track_name(at_json_t *j, pid_t pid, int64_t tid, const char *name)
{
    at_json_obj_begin(j);
    at_json_kv_str(j, "name", tid < 0 ? "process_name" : "thread_name");
    at_json_kv_str(j, "ph", "M");
    at_json_kv_int(j, "pid", pid);
    if (tid >= 0)
        at_json_kv_uint(j, "tid", (uint64_t)tid);
    at_json_key(j, "args");
    at_json_obj_begin(j);
    at_json_kv_str(j, "name", name);
    at_json_obj_end(j);
    at_json_obj_end(j);
}
