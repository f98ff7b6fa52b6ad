/* The strace parser's common line, split and made into a `Call` in C: the optional accelerator.
 *
 * `split_call(line, index, unprefixed_pid, accept_prefixed, absolute_stamps)` reads the line that
 * strace_parser's `_COMPLETE_CALL` regex reads, `[pid] [time] name(args) = result [<duration>]`, and
 * returns the `Call` that `StraceParser._fast_call` would build from it, or None. None never means "not
 * a call": it means "not sure", and the Python path (the regex) reads the line instead. So this code
 * only has to agree with the regex on the lines it accepts, and it declines whatever is rare or would
 * need the parser's state: non-ASCII lines (the regex's \d and \w are Unicode), a newline inside, a pid
 * longer than 10 digits, a line without a pid when `unprefixed_pid` is negative, a prefixed line when
 * `accept_prefixed` is false (a log that mixes both: the parser learns pids from those), -ttt/-r stamps
 * until the parser knows they are absolute, ltrace's `@SYS`/`SYS_` names, numbers Python would range-check,
 * more than 8 candidate `) = ` in one line.
 *
 * The regex's backtracking is deterministic on every part but `(.*)\) += `: the greedy args take the
 * rightmost `) = ` after which the rest of the line matches, which is what the loop below tries first.
 * tests/test_accelerator.py compares this with the pure path on every capture, byte for byte.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

#ifndef DOCKIT_SOURCE_SHA256
#define DOCKIT_SOURCE_SHA256 "unknown"
#endif

#define N_FIELDS 14
static const char *FIELD_NAMES[N_FIELDS] = {
    "index", "pid", "time", "name", "args", "result", "retval", "errno",
    "duration", "ret_decoration", "partial", "library", "is_syscall", "raw",
};
static PyTypeObject *call_type = NULL;
static Py_ssize_t field_offsets[N_FIELDS];

/* A time or duration beyond this is a corrupt log's (strace_parser._LAST_SECOND). */
static const double LAST_SECOND = 126000000000.0;

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_WORD(c) (IS_DIGIT(c) || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') || (c) == '_')

static Py_ssize_t digits(const char *s, Py_ssize_t i, Py_ssize_t n) {
    while (i < n && IS_DIGIT(s[i])) i++;
    return i;
}

/* `\d+\.\d+` from i: its end, or -1. */
static Py_ssize_t decimal(const char *s, Py_ssize_t i, Py_ssize_t n) {
    Py_ssize_t j = digits(s, i, n);
    if (j == i || j >= n || s[j] != '.') return -1;
    Py_ssize_t k = digits(s, j + 1, n);
    return k == j + 1 ? -1 : k;
}

/* float(text), as Python reads it; NULL with an exception set on failure. */
static int to_double(const char *s, Py_ssize_t start, Py_ssize_t end, double *out) {
    char buffer[64];
    Py_ssize_t length = end - start;
    if (length <= 0 || length >= (Py_ssize_t)sizeof buffer) return 0;
    memcpy(buffer, s + start, length);
    buffer[length] = '\0';
    double value = PyOS_string_to_double(buffer, NULL, NULL);
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *out = value;
    return 1;
}

/* Spans of the tail's groups, [start, end), start -1 when the group did not take part. */
typedef struct {
    Py_ssize_t result_end, retval_start, retval_end, deco_start, deco_end, errno_start, errno_end;
    Py_ssize_t duration_start, duration_end;
} Tail;

/* ` <\d+\.\d+>$` from e, or the end: whether the line may end there. */
static int line_ends(const char *s, Py_ssize_t e, Py_ssize_t n, Tail *tail) {
    tail->duration_start = -1;
    if (e == n) return 1;
    if (e + 1 >= n || s[e] != ' ' || s[e + 1] != '<') return 0;
    Py_ssize_t end = decimal(s, e + 2, n);
    if (end < 0 || end != n - 1 || s[end] != '>') return 0;
    tail->duration_start = e + 2;
    tail->duration_end = end;
    return 1;
}

/* The regex after `) += `, from t to the line's end: 1 when it matches (spans in tail), else 0. */
static int match_tail(const char *s, Py_ssize_t t, Py_ssize_t n, Tail *tail) {
    Py_ssize_t r = t;
    tail->retval_start = t;
    if (t >= n) return 0;
    if (s[t] == '0' && t + 1 < n && s[t + 1] == 'x') {
        Py_ssize_t j = t + 2;
        while (j < n && (IS_DIGIT(s[j]) || (s[j] >= 'a' && s[j] <= 'f'))) j++;
        if (j == t + 2) return 0;
        r = j;
    } else if (s[t] == '-' || IS_DIGIT(s[t])) {
        Py_ssize_t j = digits(s, s[t] == '-' ? t + 1 : t, n);
        if (j == (s[t] == '-' ? t + 1 : t)) return 0;
        r = j;
    } else if (s[t] == '?') {
        r = t + 1;
    } else {
        return 0;
    }
    tail->retval_end = r;
    tail->deco_start = -1;
    if (r < n && s[r] == '<') {
        Py_ssize_t m = r + 1;
        while (m < n && s[m] != '<' && s[m] != '>') m++;
        if (m >= n) return 0;
        if (s[m] == '>') {
            tail->deco_start = r + 1;
            tail->deco_end = m;
            r = m + 1;
        } else {
            Py_ssize_t m2 = m + 1;
            while (m2 < n && s[m2] != '<' && s[m2] != '>') m2++;
            if (m2 + 1 >= n || s[m2] != '>' || s[m2 + 1] != '>') return 0;
            tail->deco_start = r + 1;
            tail->deco_end = m2 + 1;
            r = m2 + 2;
        }
        if (n - r >= 9 && memcmp(s + r, "(deleted)", 9) == 0) r += 9;
    }
    tail->errno_start = -1;
    Py_ssize_t e = r;
    if (r + 1 < n && s[r] == ' ' && s[r + 1] == 'E') {
        Py_ssize_t j = r + 2;
        while (j < n && (IS_DIGIT(s[j]) || (s[j] >= 'A' && s[j] <= 'Z'))) j++;
        if (j == r + 2 || j + 1 >= n || s[j] != ' ' || s[j + 1] != '(') return 0;
        Py_ssize_t m = j + 2;
        while (m < n && s[m] != '(' && s[m] != ')') m++;
        if (m >= n || s[m] != ')') return 0;
        tail->errno_start = r + 1;
        tail->errno_end = j;
        e = m + 1;
    } else if (r + 1 < n && s[r] == ' ' && s[r + 1] == '(') {
        const char *lt = memchr(s + r + 2, '<', n - (r + 2));
        if (lt == NULL) {
            if (s[n - 1] != ')' || n - 1 < r + 2) return 0;
            e = n;
        } else {
            Py_ssize_t L = lt - s;
            if (L - 2 < r + 2 || s[L - 1] != ' ' || s[L - 2] != ')') return 0;
            e = L - 1;
        }
    }
    tail->result_end = e;
    return line_ends(s, e, n, tail);
}

static PyObject *substring(PyObject *line, Py_ssize_t start, Py_ssize_t end) {
    return PyUnicode_Substring(line, start, end);
}

static PyObject *seconds_or_none(const char *s, Py_ssize_t start, Py_ssize_t end, int *ok) {
    double value;
    if (!to_double(s, start, end, &value)) {
        *ok = 0;
        return NULL;
    }
    if (value <= LAST_SECOND) return PyFloat_FromDouble(value);
    Py_RETURN_NONE;
}

static PyObject *split_call(PyObject *module, PyObject *const *argv, Py_ssize_t argc) {
    if (argc != 5) {
        PyErr_SetString(PyExc_TypeError, "split_call(line, index, unprefixed_pid, accept_prefixed, absolute_stamps)");
        return NULL;
    }
    PyObject *line = argv[0], *index = argv[1];
    if (call_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_linesplit.init(Call) was not called");
        return NULL;
    }
    if (!PyUnicode_Check(line) || !PyUnicode_IS_ASCII(line)) Py_RETURN_NONE;
    long long unprefixed_pid = PyLong_AsLongLong(argv[2]);
    if (unprefixed_pid == -1 && PyErr_Occurred()) return NULL;
    int accept_prefixed = PyObject_IsTrue(argv[3]);
    int absolute_stamps = PyObject_IsTrue(argv[4]);
    const char *s = (const char *)PyUnicode_DATA(line);
    Py_ssize_t n = PyUnicode_GET_LENGTH(line);
    if (n == 0 || memchr(s, '\n', n) != NULL) Py_RETURN_NONE;

    /* `(?:(\d+) +|\[pid +(\d+)\] )?` */
    Py_ssize_t i = 0, pid_start = -1, pid_end = -1;
    if (IS_DIGIT(s[0])) {
        Py_ssize_t j = digits(s, 0, n);
        if (j < n && s[j] == ' ') {
            pid_start = 0;
            pid_end = j;
            while (j < n && s[j] == ' ') j++;
            i = j;
        }
    } else if (s[0] == '[') {
        if (n < 6 || memcmp(s, "[pid ", 5) != 0) Py_RETURN_NONE;
        Py_ssize_t j = 5;
        while (j < n && s[j] == ' ') j++;
        Py_ssize_t k = digits(s, j, n);
        if (k == j || k + 1 >= n || s[k] != ']' || s[k + 1] != ' ') Py_RETURN_NONE;
        pid_start = j;
        pid_end = k;
        i = k + 2;
    }
    long long pid;
    if (pid_start >= 0) {
        if (!accept_prefixed || pid_end - pid_start > 10) Py_RETURN_NONE;
        pid = 0;
        for (Py_ssize_t k = pid_start; k < pid_end; k++) pid = pid * 10 + (s[k] - '0');
    } else {
        if (unprefixed_pid < 0) Py_RETURN_NONE;
        pid = unprefixed_pid;
    }

    /* `(?:(\d\d?):(\d\d):(\d\d(?:\.\d+)?) |(\d+\.\d+) +)?` */
    int has_time = 0;
    double time_value = 0.0;
    int time_none = 0;
    if (i < n && IS_DIGIT(s[i])) {
        Py_ssize_t h = i + 1;
        if (h < n && IS_DIGIT(s[h])) h++;
        if (h < n && s[h] == ':') {
            /* -t / -tt: HH:MM:SS[.frac] and one space */
            Py_ssize_t m = h + 1;
            if (m + 5 >= n || !IS_DIGIT(s[m]) || !IS_DIGIT(s[m + 1]) || s[m + 2] != ':' ||
                !IS_DIGIT(s[m + 3]) || !IS_DIGIT(s[m + 4]))
                Py_RETURN_NONE;
            Py_ssize_t sec = m + 3, end = m + 5;
            if (end < n && s[end] == '.') {
                Py_ssize_t f = digits(s, end + 1, n);
                if (f > end + 1 && f < n && s[f] == ' ') end = f;
            }
            if (end >= n || s[end] != ' ') Py_RETURN_NONE;
            long hours = 0;
            for (Py_ssize_t k = i; k < h; k++) hours = hours * 10 + (s[k] - '0');
            long minutes = (s[m] - '0') * 10 + (s[m + 1] - '0');
            double seconds;
            if (!to_double(s, sec, end, &seconds)) Py_RETURN_NONE;
            time_value = (double)(hours * 3600 + minutes * 60) + seconds;
            has_time = 1;
            i = end + 1;
        } else {
            /* -ttt / -r: seconds, then spaces */
            Py_ssize_t end = decimal(s, i, n);
            if (end < 0 || end >= n || s[end] != ' ' || !absolute_stamps) Py_RETURN_NONE;
            if (!to_double(s, i, end, &time_value)) Py_RETURN_NONE;
            if (time_value > LAST_SECOND) time_none = 1;
            has_time = 1;
            while (end < n && s[end] == ' ') end++;
            i = end;
        }
    }

    /* `([A-Za-z_][\w@]*)\(` */
    if (i >= n || !(IS_WORD(s[i]) && !IS_DIGIT(s[i]))) Py_RETURN_NONE;
    Py_ssize_t name_start = i;
    while (i < n && (IS_WORD(s[i]) || s[i] == '@')) i++;
    if (i >= n || s[i] != '(') Py_RETURN_NONE;
    Py_ssize_t name_end = i;
    if ((name_end - name_start >= 4 && memcmp(s + name_end - 4, "@SYS", 4) == 0) ||
        (name_end - name_start >= 4 && memcmp(s + name_start, "SYS_", 4) == 0))
        Py_RETURN_NONE;
    Py_ssize_t open = i + 1;

    /* `(.*)\) += ` then the tail: the rightmost `) = ` whose tail matches. */
    Tail tail = {0};
    Py_ssize_t args_end = -1, q = n - 1;
    for (int tries = 0; tries < 8;) {
        while (q > open && !(s[q] == '=' && q + 1 < n && s[q + 1] == ' ' && s[q - 1] == ' ')) q--;
        if (q <= open) break;
        Py_ssize_t p = q - 1;
        while (p >= open && s[p] == ' ') p--;
        if (p >= open && s[p] == ')') {
            tries++;
            if (match_tail(s, q + 2, n, &tail)) {
                args_end = p;
                break;
            }
        }
        q--;
        if (tries == 8) Py_RETURN_NONE;
    }
    if (args_end < 0) Py_RETURN_NONE;
    Py_ssize_t t = q + 2;

    /* The return value: what `int(text, 0)` then the range check give, or decline. */
    PyObject *retval;
    int retval_none = 0, negative = 0;
    if (s[t] == '?') {
        retval = Py_None;
        Py_INCREF(retval);
        retval_none = 1;
    } else if (s[t] == '0' && s[t + 1] == 'x') {
        if (tail.retval_end - (t + 2) > 16) Py_RETURN_NONE;
        unsigned long long value = 0;
        for (Py_ssize_t k = t + 2; k < tail.retval_end; k++) {
            char c = s[k];
            value = value * 16 + (unsigned long long)(IS_DIGIT(c) ? c - '0' : c - 'a' + 10);
        }
        retval = PyLong_FromUnsignedLongLong(value);
    } else {
        Py_ssize_t k = t;
        if (s[k] == '-') {
            negative = 1;
            k++;
        }
        if (tail.retval_end - k > 18) Py_RETURN_NONE;
        long long value = 0;
        for (; k < tail.retval_end; k++) value = value * 10 + (s[k] - '0');
        if (negative) value = -value;
        negative = value < 0;
        retval = PyLong_FromLongLong(value);
    }
    if (retval == NULL) return NULL;

    PyObject *values[N_FIELDS] = {NULL};
    int ok = 1;
    Py_INCREF(index);
    values[0] = index;
    values[1] = PyLong_FromLongLong(pid);
    if (!has_time || time_none) {
        Py_INCREF(Py_None);
        values[2] = Py_None;
    } else {
        values[2] = PyFloat_FromDouble(time_value);
    }
    values[3] = substring(line, name_start, name_end);
    values[4] = substring(line, open, args_end);
    values[5] = substring(line, t, tail.result_end);
    values[6] = retval;
    if (tail.errno_start >= 0 && negative) {
        values[7] = substring(line, tail.errno_start, tail.errno_end);
    } else {
        Py_INCREF(Py_None);
        values[7] = Py_None;
    }
    if (tail.duration_start >= 0) {
        values[8] = seconds_or_none(s, tail.duration_start, tail.duration_end, &ok);
    } else {
        Py_INCREF(Py_None);
        values[8] = Py_None;
    }
    if (tail.deco_start >= 0 && !retval_none) {
        values[9] = substring(line, tail.deco_start, tail.deco_end);
    } else {
        Py_INCREF(Py_None);
        values[9] = Py_None;
    }
    Py_INCREF(Py_False);
    values[10] = Py_False;
    Py_INCREF(Py_None);
    values[11] = Py_None;
    Py_INCREF(Py_True);
    values[12] = Py_True;
    Py_INCREF(line);
    values[13] = line;

    PyObject *call = NULL;
    for (int k = 0; k < N_FIELDS; k++)
        if (values[k] == NULL) ok = 0;
    if (ok) call = call_type->tp_alloc(call_type, 0);
    if (call == NULL) {
        for (int k = 0; k < N_FIELDS; k++) Py_XDECREF(values[k]);
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    for (int k = 0; k < N_FIELDS; k++) *(PyObject **)((char *)call + field_offsets[k]) = values[k];
    return call;
}

/* init(Call): where each of Call's slots lives, so that split_call fills them as Call() would. */
static PyObject *init(PyObject *module, PyObject *type) {
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "init() takes the Call class");
        return NULL;
    }
    for (int k = 0; k < N_FIELDS; k++) {
        PyObject *descriptor = PyObject_GetAttrString(type, FIELD_NAMES[k]);
        if (descriptor == NULL) return NULL;
        if (!Py_IS_TYPE(descriptor, &PyMemberDescr_Type)) {
            Py_DECREF(descriptor);
            PyErr_Format(PyExc_TypeError, "Call.%s is not a slot", FIELD_NAMES[k]);
            return NULL;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
            Py_DECREF(descriptor);
            PyErr_Format(PyExc_TypeError, "Call.%s is not a writable object slot", FIELD_NAMES[k]);
            return NULL;
        }
        field_offsets[k] = member->offset;
        Py_DECREF(descriptor);
    }
    Py_XSETREF(call_type, (PyTypeObject *)Py_NewRef(type));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"split_call", (PyCFunction)(void (*)(void))split_call, METH_FASTCALL,
     "split_call(line, index, unprefixed_pid, accept_prefixed, absolute_stamps) -> Call | None"},
    {"init", init, METH_O, "init(Call): learn where Call's slots are"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_linesplit", "The strace parser's common line in C (optional).", -1, methods,
};

PyMODINIT_FUNC PyInit__linesplit(void) {
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    if (PyModule_AddStringConstant(module, "SOURCE_SHA256", DOCKIT_SOURCE_SHA256) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
