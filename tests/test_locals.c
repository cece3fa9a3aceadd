/* SPDX-License-Identifier: MIT */
/* test_locals.c - `dump --locals` and `dump --json` against real CPython processes,
 * one test per interpreter (3.11 static and shared, 3.12, 3.13).
 *
 * tests/fixtures/locals.py stops in waiter(), called by target(), whose
 * frames hold variables of every kind with values fixed by the program
 * (the one address, of a Point, it reports itself).  The text is
 * compared line for line with what Python's repr would say, within the
 * reader's bounds; the JSON value by value, with python3 reading it.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "fixtures/testutil.h"
#include "testlib.h"

typedef struct fixture {
    pid_t pid;
    char dir[256];
    char ready[512];
    char point[32];           /* "0x7f..." of the Point instance */
} fixture_t;

static void start_script(fixture_t *f, const char *shape, const char *script)
{
    char path[1024], py[512];
    snprintf(py, sizeof py, "%s", at_test_python_or_skip(shape));
    cr_assert(tu_tmpdir(f->dir, sizeof f->dir), "mkdtemp failed: %s", strerror(errno));
    snprintf(f->ready, sizeof f->ready, "%s/ready", f->dir);
    char *argv[] = { py, (char *)tu_fixture(script, path, sizeof path), f->ready, NULL };
    f->pid = tu_spawn(argv);
    cr_assert(f->pid > 0, "%s: cannot start %s", shape, py);
    cr_assert(tu_wait_file(f->ready, 15) == 0, "%s: %s did not get ready", shape, script);
}

static void start(fixture_t *f, const char *shape)
{
    start_script(f, shape, "locals.py");
    char *truth = tu_slurp(f->ready);
    cr_assert(truth && sscanf(truth, "point=%31s", f->point) == 1, "%s: no point= in %s", shape, truth);
    free(truth);
}

static void stop(fixture_t *f)
{
    tu_kill(f->pid);
    tu_rmtree(f->dir);
}

/* `archtrace -p PID dump ARGS` of the fixture (testlib). */
static char *dump(const fixture_t *f, const char *shape, const char *args)
{
    return at_test_dump(f->pid, shape, args);
}

/* The lines after the frame line ending in `in FUNC\n` must start with
 * want[] (be exactly want[] when whole). */
static void expect_block(const char *shape, const char *out, const char *func, const char *const *want, size_t n,
                         const char *point, int whole)
{
    char tail[128], line[512];
    snprintf(tail, sizeof tail, ", in %s\n", func);
    const char *at = strstr(out, tail);
    cr_assert(at, "%s: no frame of %s in:\n%s", shape, func, out);
    at += strlen(tail);
    for (size_t i = 0; i < n; i++) {
        snprintf(line, sizeof line, want[i], point);
        cr_assert(!strncmp(at, line, strlen(line)), "%s: %s's variable %zu\nwant: %sgot:\n%s", shape, func, i,
                  line, at);
        at += strlen(line);
    }
    cr_assert(!whole || !strncmp(at, "  File ", 7) || !strncmp(at, "\n", 1) || !*at,
              "%s: %s has more variables than expected:\n%s", shape, func, at);
}

/* What Python's repr says, cut where the reader cuts: 60 characters of
 * a str, 6 items of a container, 2 levels of nesting, 10 digits of an
 * int.  %s is the Point's address. */
static const char *const target_vars[] = {
    "    arg    text = 'hello'\n",
    "    arg    n = 3\n",
    "    arg    flag = True\n",
    "    arg    args = (1, 'two')\n",
    "    arg    kwargs = {'extra': None}\n",
    "    local  cyr = 'Привет, мир'\n",
    "    local  emoji = 'snake \xf0\x9f\x90\x8d'\n",
    "    local  long_s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\xe2\x80\xa6\n",
    "    local  data = b\"\\x00bin\\xffary'\"\n",
    "    local  small = 7\n",
    "    local  neg = -42\n",
    "    local  big = 1267650600228229401496703205376\n",
    "    local  negbig = -1180591620717411303424\n",
    "    local  huge = <int of about 1350 bits>\n",
    "    local  ratio = 1.5\n",
    "    local  tiny = 1e-07\n",
    "    local  yes = True\n",
    "    local  nothing = None\n",
    "    local  nested = [1, [2, [...]], {'k': (...)}]\n",
    "    local  many = [0, 1, 2, 3, 4, 5, ...]\n",
    "    local  tup1 = (1,)\n",
    "    local  mapping = {'a': 1, 'b': [1, 2]}\n",
    "    local  numbers = {1, 2, 3}\n",
    "    local  frozen = frozenset({4})\n",
    "    local  empty_set = set()\n",
};

static const char *const target_tail[] = {
    "    local  later = <unbound>\n",
    "    cell   counter = 0\n",
    "    cell   point = <Point at %s>\n",
    "    cell   uni = 'héllo wörld'\n",
};

static const char *const waiter_vars[] = {
    "    local  total = 11\n",
    "    free   counter = 0\n",
    "    free   point = <Point at %s>\n",
    "    free   uni = 'héllo wörld'\n",
};

/* bump and waiter (two functions) sit between the values and the tail:
 * their addresses are unknown, their form is checked. */
static void expect_target(const char *shape, const char *out, const char *point)
{
    expect_block(shape, out, "target", target_vars, sizeof target_vars / sizeof *target_vars, point, 0);
    const char *fn = strstr(out, "    local  empty_set = set()\n");
    cr_assert(fn, "%s: no empty_set", shape);
    fn = strchr(fn, '\n') + 1;
    for (int i = 0; i < 2; i++) {
        const char *want = i ? "    local  waiter = <function at 0x" : "    local  bump = <function at 0x";
        cr_assert(!strncmp(fn, want, strlen(want)), "%s: want %s...\ngot:\n%s", shape, want, fn);
        fn = strchr(fn, '\n') + 1;
    }
    char line[256];
    for (size_t i = 0; i < sizeof target_tail / sizeof *target_tail; i++) {
        snprintf(line, sizeof line, target_tail[i], point);
        cr_assert(!strncmp(fn, line, strlen(line)), "%s: want %sgot:\n%s", shape, line, fn);
        fn += strlen(line);
    }
}

AT_TEST_EACH_SHAPE(locals, text_shows_every_kind, .timeout = 60)
{
    fixture_t f;
    start(&f, shape);
    char *out = dump(&f, shape, "--locals");
    stop(&f);
    expect_target(shape, out, f.point);
    expect_block(shape, out, "target.<locals>.waiter", waiter_vars, sizeof waiter_vars / sizeof *waiter_vars,
                 f.point, 1);
    /* the module and main() have none: no line under them */
    cr_assert(strstr(out, ", in main\n  File "), "%s: main() shows variables:\n%s", shape, out);
    free(out);
}

AT_TEST_EACH_SHAPE(locals, without_the_flag_no_variables, .timeout = 60)
{
    fixture_t f;
    start(&f, shape);
    char *out = dump(&f, shape, "");
    stop(&f);
    cr_assert(strstr(out, ", in target\n  File "), "%s: variables without --locals:\n%s", shape, out);
    cr_assert(!strstr(out, "    arg "), "%s: an argument without --locals:\n%s", shape, out);
    free(out);
}

/* One python3 run evaluates every check and lists the names of those
 * that fail: "[]" when all hold.  L: target's variables by name, W:
 * waiter's. */
static const char json_checks[] =
    "(lambda fr: (lambda L, W: [n for n, ok in ["
    "('text', L['text']['value'] == 'hello' and L['text']['kind'] == 'arg' and L['text']['type'] == 'str'),"
    "('n', L['n']['value'] == 3 and L['n']['kind'] == 'arg'),"
    "('flag', L['flag']['value'] is True and L['flag']['type'] == 'bool'),"
    "('args', L['args']['value'] == {'type': 'tuple', 'len': 2, 'items': [1, 'two'], 'truncated': False}),"
    "('kwargs', L['kwargs']['value']['items'] == [['extra', None]] and L['kwargs']['kind'] == 'arg'),"
    "('order', [v['name'] for v in fr('target')][:5] == ['text', 'n', 'flag', 'args', 'kwargs']),"
    "('uni', L['uni']['value'] == 'héllo wörld' and L['uni']['kind'] == 'cell'),"
    "('cyr', L['cyr']['value'] == 'Привет, мир'),"
    "('emoji', L['emoji']['value'] == 'snake \\U0001F40D'),"
    "('long_s', L['long_s']['truncated'] and L['long_s']['value']['len'] == 100"
    " and L['long_s']['value']['type'] == 'str'),"
    "('data', L['data']['value']['type'] == 'bytes' and L['data']['value']['len'] == 9),"
    "('small', L['small']['value'] == 7), ('neg', L['neg']['value'] == -42),"
    "('big', L['big']['value'] == 2 ** 100), ('negbig', L['negbig']['value'] == -(2 ** 70)),"
    "('huge', L['huge']['value']['truncated'] and L['huge']['type'] == 'int'),"
    "('ratio', L['ratio']['value'] == 1.5), ('tiny', L['tiny']['value'] == 1e-07),"
    "('yes', L['yes']['value'] is True), ('nothing', 'value' in L['nothing']"
    " and L['nothing']['value'] is None and L['nothing']['type'] == 'NoneType'),"
    "('nested', L['nested']['value']['items'][1]['items'][1] == {'type': 'list', 'repr': '[...]', 'truncated': True}),"
    "('many', L['many']['value']['items'] == [0, 1, 2, 3, 4, 5] and L['many']['value']['truncated']"
    " and L['many']['value']['len'] == 10),"
    "('mapping', L['mapping']['value']['items'][1][1]['items'] == [1, 2]),"
    "('numbers', L['numbers']['value']['items'] == [1, 2, 3] and L['numbers']['type'] == 'set'),"
    "('frozen', L['frozen']['value']['items'] == [4] and L['frozen']['type'] == 'frozenset'),"
    "('point', L['point']['type'] == 'Point' and L['point']['kind'] == 'cell'"
    " and L['point']['repr'].startswith('<Point at 0x')),"
    "('later', L['later'].get('unbound') is True and 'value' not in L['later']),"
    "('counter', L['counter']['value'] == 0 and L['counter']['kind'] == 'cell'),"
    "('waiter', [(v['name'], v['kind']) for v in fr('target.<locals>.waiter')] =="
    " [('total', 'local'), ('counter', 'free'), ('point', 'free'), ('uni', 'free')]),"
    "('total', W['total']['value'] == 11),"
    "('main', fr('main') == [])"
    "] if not ok])({v['name']: v for v in fr('target')}, {v['name']: v for v in fr('target.<locals>.waiter')}))"
    "(lambda fn: [f for f in d['processes'][0]['threads'][0]['frames'] if f['function'] == fn][0]['locals'])";

AT_TEST_EACH_SHAPE(locals, json_values, .timeout = 60)
{
    fixture_t f;
    char path[600], args[700];
    start(&f, shape);
    snprintf(path, sizeof path, "%s/dump.json", f.dir);
    snprintf(args, sizeof args, "--locals --json '%s'", path);
    free(dump(&f, shape, args));
    char *failed = at_test_json(path, json_checks);
    char *schema = at_test_json(path, "d['schema'] + ' ' + d['command'] + ' ' + str(d['processes'][0]['locals'])");
    stop(&f);
    cr_assert(failed, "%s: the JSON does not parse, or a check raised", shape);
    cr_expect_str_eq(failed, "[]", "%s: JSON checks failed: %s", shape, failed);
    cr_expect_str_eq(schema, "archtrace/1 dump True", "%s: schema/command/locals: %s", shape, schema);
    free(failed);
    free(schema);
}

AT_TEST_EACH_SHAPE(locals, json_to_stdout_without_text, .timeout = 60)
{
    fixture_t f;
    start(&f, shape);
    char *out = dump(&f, shape, "--json -");
    stop(&f);
    cr_assert(out && out[0] == '{', "%s: --json - did not write JSON first:\n%s", shape, out);
    cr_assert(!strstr(out, "Process "), "%s: --json - also wrote the text:\n%s", shape, out);
    cr_assert(strstr(out, "\"function\": \"target\""), "%s: no target frame in:\n%s", shape, out);
    cr_assert(!strstr(out, "\"locals\": ["), "%s: variables without --locals:\n%s", shape, out);
    free(out);
}

/* A running generator's frame lives in the generator object; a
 * comprehension is a frame of its own in 3.11 and inlined from 3.12,
 * its variable shown in the enclosing frame while it runs. */
static const char *const walk_vars[] = {
    "    arg    path = '%s'\n",
    "    local  state = 'in generator'\n",
};

static const char *const comprehension_vars_311[] = {
    "    arg    path = '%s'\n",    /* an argument that is also a cell: its value */
    "    local  outer = 1\n",
};

static const char *const listcomp_vars_311[] = {
    "    arg    .0 = <tuple_iterator at 0x",
};

static const char *const comprehension_vars_inlined[] = {
    "    arg    path = '%s'\n",
    "    local  outer = 1\n",
    "    local  item = 'only'\n",
};

AT_TEST_EACH_SHAPE(locals, generator_and_comprehension, .timeout = 60)
{
    fixture_t f;
    start_script(&f, shape, "locals_gen.py");
    char *out = dump(&f, shape, "--locals");
    stop(&f);
    expect_block(shape, out, "walk", walk_vars, 2, f.ready, 1);
    if (!strcmp(at_test_shape_version(shape), "3.11.")) {
        expect_block(shape, out, "in_comprehension", comprehension_vars_311, 2, f.ready, 1);
        expect_block(shape, out, "in_comprehension.<locals>.<listcomp>", listcomp_vars_311, 1, f.ready, 0);
        cr_expect(strstr(out, ">\n    local  item = 'only'\n    free   path = '"), "%s: listcomp:\n%s", shape, out);
    } else {
        expect_block(shape, out, "in_comprehension", comprehension_vars_inlined, 3, f.ready, 1);
    }
    free(out);
}

/* Past AT_LOCALS_MAX variables a line says how many more; a name in
 * Cyrillic reads as written; an int subclass is shown by its type's
 * name (no __repr__ runs in the target). */
AT_TEST_EACH_SHAPE(locals, a_wide_frame_is_cut_and_says_so, .timeout = 60)
{
    static const char *const head[] = {
        "    arg    path = '%s'\n",
        "    local  имя = 'значение'\n",
        "    local  mi = <MyInt at 0x",
    };
    fixture_t f;
    start_script(&f, shape, "locals_wide.py");
    char *out = dump(&f, shape, "--locals");
    stop(&f);
    expect_block(shape, out, "wide", head, 3, f.ready, 0);
    cr_expect(strstr(out, "    local  v0 = 0\n    local  v1 = 1\n"), "%s: v0, v1:\n%s", shape, out);
    cr_expect(strstr(out, "    local  v252 = 252\n    (47 more variables not shown)\n"),
              "%s: 256 variables, then the count of the rest:\n%s", shape, out);
    free(out);
}

/* Threads spinning with the GIL: each is stopped while its frames and
 * variables are read, so every one reads (no torn or unreadable value). */
AT_TEST_EACH_SHAPE(locals, running_threads_read_whole, .timeout = 60)
{
    fixture_t f;
    char path[1024], py[512];
    snprintf(py, sizeof py, "%s", at_test_python_or_skip(shape));
    cr_assert(tu_tmpdir(f.dir, sizeof f.dir), "mkdtemp failed: %s", strerror(errno));
    snprintf(f.ready, sizeof f.ready, "%s/ready", f.dir);
    char *argv[] = { py, (char *)tu_fixture("threads4.py", path, sizeof path), f.ready, "busy", NULL };
    f.pid = tu_spawn(argv);
    cr_assert(f.pid > 0 && tu_wait_file(f.ready, 15) == 0, "%s: threads4.py did not get ready", shape);
    for (int round = 0; round < 5; round++) {
        char *out = dump(&f, shape, "--locals");
        int spinning = 0;
        for (const char *p = out; (p = strstr(p, ", in spin_or_sleep\n    local  x = ")); p++) {
            p += strlen(", in spin_or_sleep\n    local  x = ");
            spinning += *p >= '0' && *p <= '9';
        }
        cr_expect_eq(spinning, 3, "%s: round %d: %d of 3 spinning threads show their counter:\n%s", shape, round,
                     spinning, out);
        cr_expect(!strstr(out, "unreadable"), "%s: round %d: something unreadable:\n%s", shape, round, out);
        cr_expect(strstr(out, "    arg    started = <Semaphore at 0x"), "%s: worker argument:\n%s", shape, out);
        free(out);
    }
    stop(&f);
}

/* More variables than a dump reads (150 frames of 40 nested lists): the
 * innermost frames show theirs, the outermost say the budget is spent. */
AT_TEST_EACH_SHAPE(locals, a_dump_reads_a_bounded_number_of_values, .timeout = 60)
{
    static const char spent[] = "    (variables unreadable: not read: this dump spent its 200000 reads of variables)\n";
    fixture_t f;
    start_script(&f, shape, "locals_deep.py");
    char *out = dump(&f, shape, "--locals");
    stop(&f);
    int frames = 0, unread = 0;
    for (const char *p = out; (p = strstr(p, ", in deep\n")); p++)
        frames++;
    for (const char *p = out; (p = strstr(p, spent)); p++)
        unread++;
    cr_expect_eq(frames, 150, "%s: %d frames of deep()", shape, frames);
    cr_expect(unread > 0 && unread < 150, "%s: %d of 150 frames not read", shape, unread);
    const char *first = strstr(out, ", in deep\n"), *last = first;
    for (const char *p = first; p && (p = strstr(p + 1, ", in deep\n"));)
        last = p;
    cr_assert(first && last, "%s: no deep() frame", shape);
    cr_expect(!strncmp(first + strlen(", in deep\n"), spent, strlen(spent)), "%s: the outermost frame is read",
              shape);
    cr_expect(!strncmp(last + strlen(", in deep\n"), "    arg    n = 0\n    arg    path = '", 35),
              "%s: the innermost frame is not read first:\n%.300s", shape, last);
    free(out);
}

/* Objects damaged in place (locals_hostile.py, with ctypes): each reads
 * as unreadable or nameless in its place, the variables around them as
 * they are, and the JSON says why. */
AT_TEST_EACH_SHAPE(locals, damaged_objects_degrade_in_place, .timeout = 60)
{
    static const char *const want[] = {
        "    arg    path = '%s'\n",
        "    local  before = 'fine before'\n",
        "    local  bad_str = <unreadable 0x",
    };
    fixture_t f;
    char json[600], args[700];
    start_script(&f, shape, "locals_hostile.py");
    snprintf(json, sizeof json, "%s/dump.json", f.dir);
    snprintf(args, sizeof args, "--locals --json '%s'", json);
    char *out = dump(&f, shape, args);
    char *errors = at_test_json(json, "[(v['name'], v.get('error')) for v in "
                                      "d['processes'][0]['threads'][0]['frames'][-1]['locals']]");
    stop(&f);
    expect_block(shape, out, "hostile", want, 3, f.ready, 0);
    const char *rest = strstr(out, "    local  bad_list = <unreadable 0x");
    cr_assert(rest, "%s: bad_list:\n%s", shape, out);
    cr_expect(strstr(rest, ">\n    local  huge_list = <unreadable 0x"), "%s: huge_list:\n%s", shape, out);
    cr_expect(strstr(rest, ">\n    local  odd = <? at 0x"), "%s: odd:\n%s", shape, out);
    cr_expect(strstr(rest, ">\n    local  after = 'fine after'\n"), "%s: after:\n%s", shape, out);
    cr_expect_str_eq(errors,
                     "[('path', None), ('before', None), ('bad_str', 'not what CPython would write there'), "
                     "('bad_list', 'bad address'), ('huge_list', 'not what CPython would write there'), "
                     "('odd', None), ('after', None)]",
                     "%s: errors in the JSON: %s", shape, errors);
    free(out);
    free(errors);
}
