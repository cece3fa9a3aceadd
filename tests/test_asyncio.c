/* SPDX-License-Identifier: MIT */
/* test_asyncio.c - `dump --asyncio` against real CPython processes, one test per
 * interpreter (3.11 static and shared, 3.12, 3.13).
 *
 * tests/fixtures/asyncio_tasks.py holds tasks in known states on two
 * loops (one in debug mode) and writes what the dump must find: each
 * task's id, the line each coroutine waits on, the line that created
 * the debug loop's task, and the C Task's field offsets as found on
 * its own live tasks (which the layout table must match: no installed
 * header has TaskObj).  lab06 is caught mid-run through a pause hook
 * (tests/fixtures/lab06_paused.py).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "fixtures/testutil.h"
#include "pylayout.h"
#include "testlib.h"

typedef struct fixture {
    pid_t pid;
    char dir[256];
    char ready[512];
    char *truth;              /* the ready file's key=value lines */
} fixture_t;

/* The fixture of the test running, killed by the suite's .fini too: a
 * failed assertion ends the test before its own stop(). */
static pid_t fixture_pid;

static void kill_fixture(void)
{
    if (fixture_pid > 0)
        tu_kill(fixture_pid);
}

TestSuite(asyncio, .fini = kill_fixture);

static void start_script(fixture_t *f, const char *shape, const char *script, const char *extra)
{
    char path[1024], py[512], more[1024], *rest[6] = { NULL };
    snprintf(py, sizeof py, "%s", at_test_python_or_skip(shape));
    cr_assert(tu_tmpdir(f->dir, sizeof f->dir), "mkdtemp failed: %s", strerror(errno));
    snprintf(f->ready, sizeof f->ready, "%s/ready", f->dir);
    snprintf(more, sizeof more, "%s", extra ? extra : "");
    /* extra: space-separated arguments after READY_FILE (at most 6) */
    char *save = NULL, *word = extra ? strtok_r(more, " ", &save) : NULL;
    for (int i = 0; word && i < 6; i++, word = strtok_r(NULL, " ", &save))
        rest[i] = word;
    char *argv[] = { py, (char *)tu_fixture(script, path, sizeof path), f->ready, rest[0], rest[1], rest[2], rest[3],
                     rest[4], rest[5], NULL };
    f->pid = fixture_pid = tu_spawn(argv);
    cr_assert(f->pid > 0, "%s: cannot start %s", shape, py);
    cr_assert(tu_wait_file(f->ready, 30) == 0, "%s: %s did not get ready", shape, script);
    char *text = tu_slurp(f->ready);
    cr_assert(text, "%s: cannot read %s", shape, f->ready);
    /* a newline first: every key is then found as "\nkey=" */
    f->truth = malloc(strlen(text) + 2);
    cr_assert(f->truth);
    sprintf(f->truth, "\n%s", text);
    free(text);
}

static void stop(fixture_t *f)
{
    tu_kill(f->pid);
    tu_rmtree(f->dir);
    free(f->truth);
}

/* The value of `key=` in the ready file (a number, decimal or 0x). */
static long long truth(const fixture_t *f, const char *key)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\n%s=", key);
    const char *at = strstr(f->truth, pat);
    cr_assert(at, "no %s in the ready file:\n%s", key, f->truth);
    return strtoll(at + strlen(pat), NULL, 0);
}

/* `archtrace -p PID dump ARGS` of the fixture (testlib). */
static char *dump(const fixture_t *f, const char *shape, const char *args)
{
    return at_test_dump(f->pid, shape, args);
}

static const at_pylayout_t *layout_of(const char *shape)
{
    int minor = !strcmp(shape, "3.12") ? 12 : !strcmp(shape, "3.13") ? 13 : 11;
    const at_pylayout_t *L = at_pylayout_find(3, minor);
    cr_assert(L, "no layout for 3.%d", minor);
    return L;
}

/* The fixture found each TaskObj field by the object it holds. */
AT_TEST_EACH_SHAPE(asyncio, task_offsets_match_live_tasks, .timeout = 60)
{
    fixture_t f;
    start_script(&f, shape, "asyncio_tasks.py", NULL);
    const at_pylayout_t *L = layout_of(shape);
    const struct { const char *key; int32_t want; } rows[] = {
        { "off_loop", L->task_loop },         { "off_coro", L->task_coro },
        { "off_fut_waiter", L->task_fut_waiter }, { "off_name", L->task_name },
        { "off_source_tb", L->task_source_tb }, { "off_state", L->task_state },
        { "off_size", L->task_read },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        cr_expect_eq(truth(&f, rows[i].key), rows[i].want, "%s: %s is %lld in the process, %d in the table",
                     shape, rows[i].key, truth(&f, rows[i].key), rows[i].want);
    stop(&f);
}

/* The lines after `  Task "NAME" (STATE)\n` must be want[] (%s: the fixture's path, %d: a line). */
static void expect_task(const char *shape, const char *out, const char *head, const char *const *want,
                        const int *lines, size_t n)
{
    char line[1024], path[1024];
    const char *at = strstr(out, head);
    cr_assert(at, "%s: no %s in:\n%s", shape, head, out);
    at += strlen(head);
    tu_fixture("asyncio_tasks.py", path, sizeof path);
    for (size_t i = 0; i < n; i++) {
        if (strstr(want[i], "%s"))
            snprintf(line, sizeof line, want[i], path, lines[i]);
        else
            snprintf(line, sizeof line, "%s", want[i]);
        cr_assert(!strncmp(at, line, strlen(line)), "%s: line %zu under %swant: %sgot:\n%s", shape, i, head, line,
                  at);
        at += strlen(line);
    }
}

AT_TEST_EACH_SHAPE(asyncio, text_shows_tasks_states_awaits_and_stacks, .timeout = 60)
{
    fixture_t f;
    start_script(&f, shape, "asyncio_tasks.py", NULL);
    char *out = dump(&f, shape, "--asyncio");
    static const char *const parent[] = {
        "    awaiting Task \"child\"\n",
        "    File \"%s\", line %d, in parent\n",
        "    File \"%s\", line %d, in middle\n",
        "    created: not known (the loop is not in debug mode)\n",
    };
    int parent_lines[] = { 0, (int)truth(&f, "line_parent"), (int)truth(&f, "line_middle"), 0 };
    static const char *const child[] = {
        "    awaited by Task \"parent\"\n",
        "    File \"%s\", line %d, in child\n",
        "    File \"%s\", line %d, in branch\n",
        "    File \"%s\", line %d, in leaf\n",
        "    created: not known",
    };
    int child_lines[] = { 0, (int)truth(&f, "line_child"), (int)truth(&f, "line_branch"),
                          (int)truth(&f, "line_leaf"), 0 };
    static const char *const sleeper[] = { "    File \"%s\", line %d, in sleeper\n", "    File \"" };
    int sleeper_lines[] = { (int)truth(&f, "line_sleeper"), 0 };
    static const char *const main_task[] = { "    File \"%s\", line %d, in main\n" };
    int main_lines[] = { (int)truth(&f, "line_main") };
    static const char *const done[] = { "    created: not known" };
    static const char *const debugged[] = { "    awaited by Task \"" };
    expect_task(shape, out, "  Task \"parent\" (pending)\n", parent, parent_lines, 4);
    expect_task(shape, out, "  Task \"child\" (pending)\n", child, child_lines, 5);
    expect_task(shape, out, "  Task \"sleeper\" (pending)\n", sleeper, sleeper_lines, 2);
    expect_task(shape, out, "  Task \"Task-1\" (pending)\n", main_task, main_lines, 1);
    expect_task(shape, out, "  Task \"done\" (done)\n", done, NULL, 1);
    expect_task(shape, out, "  Task \"cancelled\" (cancelled)\n", done, NULL, 1);
    expect_task(shape, out, "  Task \"debugged\" (pending)\n", debugged, NULL, 1);
    /* the sleeper's innermost frame is asyncio.sleep itself */
    const char *sl = strstr(out, ", in sleeper\n"), *nl = sl ? strchr(sl + strlen(", in sleeper\n"), '\n') : NULL;
    cr_expect(nl && strstr(sl, "/asyncio/tasks.py\", line ") < nl && !strncmp(nl - 10, ", in sleep", 10),
              "%s: the sleeper's innermost frame is not asyncio.sleep:\n%s", shape, out);
    /* two loops, the debug one's task created on the fixture's line */
    char created[256];
    snprintf(created, sizeof created, "asyncio_tasks.py\", line %lld, in dbg_main\n", truth(&f, "line_create"));
    const char *dbg = strstr(out, "  Task \"debugged\" (pending)\n");
    const char *cr = dbg ? strstr(dbg, "    created at:\n") : NULL;
    cr_expect(cr && strstr(cr, created) && (!strstr(cr, "  Task ") || strstr(cr, created) < strstr(cr, "  Task ")),
              "%s: debugged's creation site is not line %lld of dbg_main:\n%s", shape, truth(&f, "line_create"),
              dbg);
    const char *l1 = strstr(out, "\nEvent loop 0x"), *l2 = l1 ? strstr(l1 + 1, "\nEvent loop 0x") : NULL;
    cr_expect(l1 && l2 && !strstr(l2 + 1, "\nEvent loop 0x"), "%s: not two event loops:\n%s", shape, out);
    stop(&f);
    free(out);
}

/* One python3 run evaluates every check against the fixture's truth
 * (T) and lists the names of those that fail: "[]" when all hold. */
static const char json_checks[] =
    "(lambda p, T: (lambda loops, tasks: [n for n, ok in ["
    "('two loops', sorted(loops) == sorted([T['id_main_loop'], T['id_debug_loop']])),"
    "('main loop', {t['name'] for t in loops[T['id_main_loop']]} == "
    " {'parent', 'child', 'sleeper', 'done', 'cancelled', 'Task-1'}),"
    "('debug loop', 'debugged' in {t['name'] for t in loops[T['id_debug_loop']]}),"
    "('ids', all(tasks[n]['id'] == T['id_' + n] for n in "
    " ['parent', 'child', 'sleeper', 'done', 'cancelled', 'debugged'])),"
    "('main id', tasks['Task-1']['id'] == T['id_main']),"
    "('states', [tasks[n]['state'] for n in ['parent', 'child', 'sleeper', 'done', 'cancelled']]"
    " == ['pending', 'pending', 'pending', 'done', 'cancelled']),"
    "('awaits', tasks['parent']['awaits'] == T['id_child'] and tasks['child']['awaits'] is None),"
    "('awaited_by', tasks['child']['awaited_by'] == [T['id_parent']] and tasks['parent']['awaited_by'] == []),"
    "('parent stack', [(f['function'], f['line']) for f in tasks['parent']['stack']] =="
    " [('parent', T['line_parent']), ('middle', T['line_middle'])]),"
    "('child stack', [(f['function'], f['line']) for f in tasks['child']['stack']] =="
    " [('child', T['line_child']), ('branch', T['line_branch']), ('leaf', T['line_leaf'])]),"
    "('files', all(f['file'].endswith('asyncio_tasks.py') for f in tasks['child']['stack'])),"
    "('sleeper stack', [f['function'] for f in tasks['sleeper']['stack']] == ['sleeper', 'sleep']"
    " and tasks['sleeper']['stack'][1]['file'].endswith('asyncio/tasks.py')),"
    "('done stack', tasks['done']['stack'] == [] and tasks['cancelled']['stack'] == []),"
    "('created null', all(tasks[n]['created'] is None for n in ['parent', 'child', 'sleeper', 'done'])),"
    "('created', (tasks['debugged']['created'][-1]['function'], tasks['debugged']['created'][-1]['line'])"
    " == ('dbg_main', T['line_create'])),"
    "('not cut', not any(t['stack_truncated'] for t in tasks.values())),"
    "('imported', p['asyncio_imported'] is True and p['asyncio_py_tasks'] == 0),"
    "('none running', not any(t['running'] or t['thread'] for t in tasks.values())),"
    "] if not ok])("
    " {l['loop']: l['tasks'] for l in p['asyncio']},"
    " {t['name']: t for l in p['asyncio'] for t in l['tasks']}))"
    "(d['processes'][0], {k: int(v, 0) for k, v in"
    " (l.split('=') for l in open('%s').read().split() if '=' in l)})";

AT_TEST_EACH_SHAPE(asyncio, json_has_every_task, .timeout = 60)
{
    fixture_t f;
    char path[600], args[700], checks[sizeof json_checks + 600];
    start_script(&f, shape, "asyncio_tasks.py", NULL);
    snprintf(path, sizeof path, "%s/dump.json", f.dir);
    snprintf(args, sizeof args, "--asyncio --json '%s'", path);
    free(dump(&f, shape, args));
    snprintf(checks, sizeof checks, json_checks, f.ready);
    char *failed = at_test_json(path, checks);
    char *text = at_test_json(path, "d['processes'][0]['threads'] != []");
    stop(&f);
    cr_expect_str_eq(failed, "[]", "%s: failed JSON checks: %s", shape, failed);
    cr_expect_str_eq(text, "True", "%s: the threads are gone from the JSON", shape);
    free(failed);
    free(text);
}

AT_TEST_EACH_SHAPE(asyncio, without_asyncio_says_so, .timeout = 60)
{
    fixture_t f;
    char path[600], args[700];
    start_script(&f, shape, "locals.py", NULL);
    char *out = dump(&f, shape, "--asyncio");
    snprintf(path, sizeof path, "%s/dump.json", f.dir);
    snprintf(args, sizeof args, "--asyncio --json '%s'", path);
    free(dump(&f, shape, args));
    char *json = at_test_json(path, "(d['processes'][0]['asyncio'], d['processes'][0]['asyncio_imported'])");
    stop(&f);
    cr_expect(strstr(out, "\nno asyncio event loop (asyncio is not imported)\n"), "%s: got:\n%s", shape, out);
    cr_expect(strstr(out, "\nThread "), "%s: no threads after it:\n%s", shape, out);
    cr_expect_str_eq(json, "([], False)", "%s: JSON says %s", shape, json);
    free(out);
    free(json);
}

/* The tasks of labs/lab06.py's contextvars section, seen from outside:
 * the lab runs unchanged, but its first 2 ms sleep (in load_profile)
 * blocks the loop and signals, so the dump sees the three request
 * tasks and context_demo's: two asleep in handle_request, one running
 * (marked so from _current_tasks; its coroutine's frame, then what it
 * runs now, taken from its thread's stack).
 * lab06 targets 3.11 and refuses others. */
AT_TEST_EACH_SHAPE(asyncio, lab06_tasks_from_outside, .timeout = 90)
{
    fixture_t f;
    char lab[1024];
    if (strcmp(shape, "static") && strcmp(shape, "shared"))
        cr_skip_test("lab06 targets CPython 3.11 only (it refuses %s)", shape);
    cr_assert(realpath("labs/lab06.py", lab), "no labs/lab06.py: %s", strerror(errno));
    start_script(&f, shape, "lab06_paused.py", lab);
    char *out = dump(&f, shape, "--asyncio");
    stop(&f);
    char *threads = strstr(out, "\nThread ");
    if (threads)
        *threads = '\0';   /* count in the tasks only, not in the thread stacks */
    int pending = 0, running = 0, requests = 0;
    for (const char *p = out; (p = strstr(p, "\" (pending)\n")); p++)
        pending++;
    for (const char *p = out; (p = strstr(p, "\" (pending, running)\n")); p++)
        running++;
    for (const char *p = out; (p = strstr(p, ", in handle_request\n")); p++)
        requests++;
    cr_expect(strstr(out, "\nEvent loop 0x"), "%s: no event loop:\n%s", shape, out);
    cr_expect_eq(pending + running, 4, "%s: %d pending tasks, want the 3 requests and context_demo:\n%s", shape,
                 pending + running, out);
    cr_expect_eq(running, 1, "%s: %d running tasks, want the one in load_profile:\n%s", shape, running, out);
    cr_expect_eq(requests, 3, "%s: %d tasks in handle_request:\n%s", shape, requests, out);
    cr_expect(strstr(out, ", in context_demo\n"), "%s: no task in context_demo:\n%s", shape, out);
    /* the running one joined with its thread: down to load_profile */
    const char *run = strstr(out, "\" (pending, running)\n    on thread ");
    const char *next = run ? strstr(run, "\n  Task \"") : NULL;
    const char *lp = run ? strstr(run, ", in handle_request\n    File \"") : NULL;
    cr_expect(lp && strstr(lp, ", in load_profile\n") && (!next || strstr(lp, ", in load_profile\n") < next),
              "%s: the running task does not go on into load_profile:\n%s", shape, out);
    free(out);
}

/* Await chains a reader must cut: 100 coroutines deep (64 shown), and a
 * coroutine made to await the one awaiting it (each shown once).  Both
 * say [truncated]; the dump still ends with exit status 0.  A task name
 * with a right-to-left override and a newline reads escaped in the text
 * (as repr() escapes it), whole in the JSON.  A task whose coroutine
 * pointer leads nowhere shows no frame and [truncated]; one whose name
 * does is named "?". */
AT_TEST_EACH_SHAPE(asyncio, deep_and_cyclic_chains_are_cut, .timeout = 60)
{
    fixture_t f;
    char offsets[96], path[600], args[700];
    const at_pylayout_t *L = layout_of(shape);
    snprintf(offsets, sizeof offsets, "%d %d %d %d %d", L->gen_iframe, L->iframe_stacktop, L->iframe_localsplus,
             L->task_coro, L->task_name);
    start_script(&f, shape, "asyncio_hostile.py", offsets);
    snprintf(path, sizeof path, "%s/dump.json", f.dir);
    snprintf(args, sizeof args, "--asyncio --json '%s'", path);
    char *out = dump(&f, shape, "--asyncio");
    free(dump(&f, shape, args));
    char *json = at_test_json(path, "sorted((t['name'], len(t['stack']), t['stack_truncated'])"
                                    " for l in d['processes'][0]['asyncio'] for t in l['tasks'])");
    stop(&f);
    const char *cyc = strstr(out, "  Task \"cycle\" (pending)\n");
    cr_assert(cyc, "%s: no cycle task:\n%s", shape, out);
    cr_expect(strstr(cyc, ", in ring\n") && strstr(cyc, ", in link\n    [truncated]\n"),
              "%s: the cycle is not shown once and cut:\n%s", shape, cyc);
    cr_expect_str_eq(json,
                     "[('?', 1, False), ('Task-1', 2, False), ('bad-coro', 0, True), ('cycle', 2, True), ('deep', 64, True), "
                     "('odd name \\u202e\\n end', 1, False)]",
                     "%s: %s", shape, json);
    cr_expect(strstr(out, "\n  Task \"odd name \\u202e\\n end\" (pending)\n    File \""),
              "%s: the odd name is not escaped as repr() does:\n%s", shape, out);
    free(out);
    free(json);
}

/* A loop that switches tasks all the time (50 spinning, short ones
 * coming and going): five dumps in a row each see the 50 spinners whole,
 * suspended in spin() -> asyncio.sleep, and the process runs on after. */
AT_TEST_EACH_SHAPE(asyncio, a_busy_loop_reads_whole, .timeout = 90)
{
    fixture_t f;
    char state[512];
    start_script(&f, shape, "asyncio_busy.py", NULL);
    for (int round = 0; round < 5; round++) {
        char *out = dump(&f, shape, "--asyncio");
        int spinners = 0, whole = 0;
        for (const char *p = out; (p = strstr(p, "  Task \"spin-")); p++) {
            spinners++;
            const char *next = strstr(p + 1, "  Task \""), *thr = strstr(p, "\nThread ");
            const char *end = next && (!thr || next < thr) ? next : thr;
            const char *fr = strstr(p, ", in spin\n"), *cut = strstr(p, "[truncated]");
            whole += fr && (!end || fr < end) && (!cut || (end && cut > end));
        }
        cr_expect_eq(spinners, 50, "%s: round %d: %d spinners:\n%s", shape, round, spinners, out);
        cr_expect_eq(whole, 50, "%s: round %d: %d of 50 spinners read whole:\n%s", shape, round, whole, out);
        free(out);
    }
    snprintf(state, sizeof state, "/proc/%d/stat", (int)f.pid);
    char *stat = tu_slurp(state);
    const char *st = stat ? strrchr(stat, ')') : NULL;
    cr_expect(st && (st[2] == 'R' || st[2] == 'S'), "%s: the process is not running on: %s", shape, stat);
    free(stat);
    stop(&f);
}

/* 3.12+: a task in its eager first step (asyncio.eager_task_factory) is
 * only in asyncio.tasks._eager_tasks; it is found there, running, in
 * blocker() (its name is set only after that step: "Task-2"). */
AT_TEST_EACH_SHAPE(asyncio, an_eager_task_in_its_first_step, .timeout = 60)
{
    fixture_t f;
    if (!strcmp(shape, "static") || !strcmp(shape, "shared"))
        cr_skip_test("3.11 has no eager tasks (%s)", shape);
    start_script(&f, shape, "asyncio_eager.py", NULL);
    char *out = dump(&f, shape, "--asyncio");
    stop(&f);
    const char *t = strstr(out, " (pending, running)\n");
    const char *fr = t ? strstr(t, "\n    File \"") : NULL;
    const char *nl = fr ? strchr(fr + 1, '\n') : NULL;
    cr_expect(nl && !strncmp(nl - strlen(", in blocker"), ", in blocker", strlen(", in blocker")),
              "%s: no running task in blocker():\n%s", shape, out);
    free(out);
}

/* ---- record / run --asyncio: samples under the task they ran in ------------ */

/* Every stack under "task heavy" runs crunch() and never lightly(), and
 * the other way round; task frames are only ever a stack's root; heavy,
 * which burns 16 times as long per step, has several times light's
 * samples; most samples ran inside a task.  A task missing from the
 * samples fails 'tasks named' (not a KeyError: "failed checks: (null)"
 * said nothing), and a sample with no frames at all is outside every
 * task (3.12 gives one now and then: a running thread's cframe read
 * after it returned, its current frame 0; 9 in ~80 loaded 4 s records
 * made k['frames'][0] raise). */
static const char task_checks[] =
    "[c for c, ok in ["
    " ('tasks named', sorted(T) == ['heavy', 'light']),"
    " ('heavy > 4 x light', T.get('heavy', 0) > 4 * T.get('light', 0)),"
    " ('most in tasks', s.get('samples_outside_tasks', s['thread_samples']) < 0.3 * s['thread_samples']),"
    " ('heavy runs crunch only', all(any(f.startswith('crunch (') for f in k['frames']) and"
    "   not any(f.startswith('lightly (') for f in k['frames']) for k in S if k['frames'][:1] == ['task heavy'])),"
    " ('light runs lightly only', all(any(f.startswith('lightly (') for f in k['frames']) and"
    "   not any(f.startswith('crunch (') for f in k['frames']) for k in S if k['frames'][:1] == ['task light'])),"
    " ('tasks only at the root', not any(f.startswith('task ') for k in S for f in k['frames'][1:])),"
    " ('crunch always under heavy', all(k['frames'][0] == 'task heavy' for k in S"
    "   if any(f.startswith('crunch (') for f in k['frames']) and k['frames'][0].startswith('task ')))"
    "] if not ok]";

static char *task_failures(const char *json)
{
    char expr[sizeof task_checks + 256];
    snprintf(expr, sizeof expr,
             "(lambda s: (lambda S, T: %s)(s['stacks'], {t['task']: t['samples'] for t in s.get('tasks', [])}))"
             "(d['processes'][0]['samples'])", task_checks);
    return at_test_json(json, expr);
}

/* CPU seconds pid has used (utime + stime of /proc/PID/stat), or -1. */
static double cpu_seconds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *text = tu_slurp(path);
    const char *at = text ? strrchr(text, ')') : NULL;   /* comm may hold spaces */
    unsigned long long utime = 0, stime = 0;
    int ok = at && sscanf(at + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) == 2;
    free(text);
    return ok ? (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK) : -1;
}

/* Samples are only as many independent looks as the target's runs: a
 * target starved of CPU (the suite runs tests in parallel on 2 cores)
 * stands still between its time slices, and every sample taken then
 * sees the same frame.  light's steps hold ~1/20 of the samples, so a
 * record in which the target ran 0.1-0.3 s (a few dozen slices) missed
 * light entirely in ~2% of such records (5 of 248 under 4-8 busy loops:
 * "failed checks: (null)", T['light'] raising) and gave it a quarter of
 * the samples in 2 of them ('heavy > 4 x light').  So a record counts
 * only when the target ran RUN_NEEDED_S of CPU during it: then it made
 * ~400 looks (samples while running, or 3-4 ms slices when sharing a
 * core), and light goes unseen with P ~ 0.955^400 ~ 1e-8.  A starved
 * record is taken again, twice as long, up to RECORD_MAX_S; the last
 * one is judged whatever it got. */
#define RECORD_FIRST_S 2.0
#define RUN_NEEDED_S   1.5
#define RECORD_MAX_S   8.0

/* Records the fixture into f->dir/rec (and rec.json) until the target
 * ran enough during one; *ran and *secs: that record's CPU and length. */
static int record_tasks(const fixture_t *f, char **err, double *ran, double *secs)
{
    int rc;
    for (*secs = RECORD_FIRST_S;; *secs *= 2) {
        free(*err), *err = NULL;
        at_test_shf(NULL, NULL, "rm -rf '%s/rec' '%s/rec.json'", f->dir, f->dir);
        double before = cpu_seconds(f->pid);
        rc = at_test_shf(NULL, err, "'%s' -q -p %d record -d %.1f --rate 200 --asyncio -o '%s/rec' "
                         "--format json --out '%s/rec.json'", at_test_archtrace(), (int)f->pid, *secs, f->dir,
                         f->dir);
        *ran = cpu_seconds(f->pid) - before;
        if (rc != 0 || before < 0 || *ran >= RUN_NEEDED_S || *secs * 2 > RECORD_MAX_S)
            return rc;
        at_test_note("asyncio: the target ran %.2f s of CPU in a %.1f s record: recording again", *ran, *secs);
    }
}

AT_TEST_EACH_SHAPE(asyncio, record_puts_samples_under_their_tasks, .timeout = 90)
{
    fixture_t f;
    char *err = NULL;
    double ran, secs;
    start_script(&f, shape, "asyncio_split.py", NULL);
    int rc = record_tasks(&f, &err, &ran, &secs);
    char json[600];
    snprintf(json, sizeof json, "%s/rec.json", f.dir);
    char *failed = rc == 0 ? task_failures(json) : NULL;
    char *text = NULL;
    at_test_shf(&text, NULL, "'%s' report '%s/rec' 2>&1", at_test_archtrace(), f.dir);
    stop(&f);
    cr_assert_eq(rc, 0, "%s: record --asyncio exited %d: %s", shape, rc, err);
    cr_expect_str_eq(failed, "[]", "%s: failed checks: %s (the target ran %.2f s of CPU in the %.1f s record)",
                     shape, failed, ran, secs);
    cr_expect(text && strstr(text, "  by asyncio task (2 tasks ran while sampled):\n"), "%s: report:\n%s", shape, text);
    cr_expect(text && strstr(text, "  heavy\n") && strstr(text, "  light\n"), "%s: report:\n%s", shape, text);
    free(err), free(failed), free(text);
}

/* `run --asyncio`: the folded stacks put the task between the thread
 * and the program's frames, pprof carries a task label, and the
 * program's own exit status comes back. */
AT_TEST_EACH_END_SHAPE(asyncio, run_puts_samples_under_their_tasks, .timeout = 60)
{
    char *dir = at_test_tmpdir(), path[1024], *err = NULL;
    int rc = at_test_shf(NULL, &err, "'%s' -q --asyncio -o '%s/s' --format collapsed --out '%s/c.txt' '%s' '%s' "
                         "'%s/ready' 1.2", at_test_archtrace(), dir, dir, at_test_python_or_skip(shape),
                         tu_fixture("asyncio_split.py", path, sizeof path), dir);
    char *folded = NULL, *tags = NULL;
    at_test_shf(&folded, NULL, "grep -c ';thread [0-9]* \"MainThread\";task heavy;<module> (' '%s/c.txt'", dir);
    int prc = at_test_shf(NULL, NULL, "'%s' report --format pprof --out '%s/p.pb.gz' '%s/s'", at_test_archtrace(),
                          dir, dir);
    at_test_shf(&tags, NULL, "go tool pprof -tags '%s/p.pb.gz' 2>/dev/null | grep -A3 ' task:'", dir);
    tu_rmtree(dir);
    cr_expect_eq(rc, 0, "%s: run --asyncio exited %d: %s", shape, rc, err);
    cr_expect(folded && atoi(folded) > 0, "%s: no folded stack under task heavy (%s)", shape, folded);
    cr_expect_eq(prc, 0, "%s: report --format pprof failed", shape);
    cr_expect(tags && strstr(tags, ": heavy\n") && strstr(tags, ": light\n"), "%s: pprof tags: %s", shape, tags);
    free(dir), free(err), free(folded), free(tags);
}

/* `top -p` of a busy loop (50 spinning tasks, short ones coming and
 * going): its log lines count the loop's tasks, read each refresh. */
AT_TEST_EACH_END_SHAPE(asyncio, top_counts_tasks_per_loop, .timeout = 60)
{
    fixture_t f;
    char *out = NULL, *err = NULL;
    start_script(&f, shape, "asyncio_busy.py", NULL);
    int rc = at_test_shf(&out, &err, "timeout --preserve-status -s INT 3.5 '%s' top -p %d", at_test_archtrace(),
                         (int)f.pid);
    stop(&f);
    cr_expect(rc == 0 || rc == 130, "%s: top exited %d: %s", shape, rc, err);
    const char *at = out ? strstr(out, " | tasks by loop 0x") : NULL;
    int tasks = at ? atoi(strchr(at + 19, ' ') + 1) : 0;
    cr_expect(tasks >= 51 && tasks <= 120, "%s: %d tasks counted (50 spinners, main, a few short ones):\n%s", shape,
              tasks, out);
    free(out), free(err);
}
