/*
 * Optional C accelerator for the injection detector (gateway.guardrails.injection).
 *
 * The Python code is the reference and the fallback: setup.py builds this as an optional extension, and
 * without it the package runs the Python path unchanged. Every function here must give exactly what its
 * Python counterpart gives; tests/unit/test_injection_fast.py compares them.
 *
 * Model.scan(text) does in one pass over ASCII text what features.marked_tokens, features.segment_spans and
 * InjectionDetector._model_score do with Python lists: tokenise, cut segments, add up each window's weights
 * (words, word pairs and features.structure_features, each in the order Python adds them).
 * It also reports which of the rules' trigger words occur, which is all rules.rule_score needs from the
 * tokens, so no Python object is made per token. WordStarts finds where the rules' anchor words start, so
 * a rule's regex is tried at those few positions only. has_long_word and has_leet_hint are the cheap gates
 * in front of normalize.py's base64 and leetspeak steps.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- ASCII character classes -------------------------------------------------------------------------- */

/* features.SEGMENT_SPLIT on ASCII text: "\n" always ends a segment; ".!?;" only when followed by whitespace
 * or the end of the text. The regex also consumes that whitespace, but whitespace is never part of a token
 * and a second segment end in a row only makes an empty segment, which segment_spans drops, so treating
 * each character on its own gives the same spans. */
enum { CLS_SEPARATOR = 0, CLS_TOKEN, CLS_COLON, CLS_NEWLINE, CLS_SENTENCE_END };

static unsigned char char_class[128];
/* Python's `\s` and str.isspace() on ASCII: filled from Py_UNICODE_ISSPACE so it includes \x1c-\x1f. */
static unsigned char is_space[128];

static void
init_tables(void)
{
    for (int c = 0; c < 128; c++) {
        /* features._ASCII_TABLE keeps str.isalnum() characters and ':' (its own token); all else splits. */
        char_class[c] = Py_UNICODE_ISALNUM((Py_UCS4)c) ? CLS_TOKEN : CLS_SEPARATOR;
        is_space[c] = Py_UNICODE_ISSPACE((Py_UCS4)c) ? 1 : 0;
    }
    char_class[':'] = CLS_COLON;
    char_class['\n'] = CLS_NEWLINE;
    char_class['.'] = char_class['!'] = char_class['?'] = char_class[';'] = CLS_SENTENCE_END;
}

/* ---- Hashing -------------------------------------------------------------------------------------------- */

/* FNV-1a, so the scanner can hash a token while it reads it; the table index takes the mixed hash because
 * FNV's low bits alone cluster for short keys. */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static inline uint64_t
fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

static uint64_t
fnv_bytes(const char *s, Py_ssize_t len)
{
    uint64_t h = FNV_OFFSET;
    for (Py_ssize_t i = 0; i < len; i++) {
        h = fnv_step(h, (unsigned char)s[i]);
    }
    return h;
}

/* splitmix64's finaliser: spreads every input bit over the low bits the table masks with. */
static inline uint64_t
mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Smallest power of two that keeps the table at most half full, so probes stay short and an empty slot
 * always ends a search. */
static size_t
table_capacity(Py_ssize_t entries)
{
    size_t cap = 8;
    while (cap < (size_t)entries * 2) {
        cap <<= 1;
    }
    return cap;
}

/* ---- sum() as CPython computes it ------------------------------------------------------------------------ */

/* Window sums must be bit-identical to Python's `sum(floats)`. sum() starts from the int 0, so the first
 * term becomes 0.0 + x; from 3.12 on it uses Neumaier's compensated summation (bltinmodule.c,
 * builtin_sum_impl), before that plain left-to-right addition. The extension is compiled for one Python
 * version, so the choice is made at compile time. */
typedef struct {
    double hi;
    double lo;          /* compensation (3.12+) */
    Py_ssize_t terms;
} PySum;

static inline void
pysum_add(PySum *s, double x)
{
    if (s->terms++ == 0) {
        s->hi = 0.0 + x;
        s->lo = 0.0;
        return;
    }
#if PY_VERSION_HEX >= 0x030C0000
    double t = s->hi + x;
    if (fabs(s->hi) >= fabs(x)) {
        s->lo += (s->hi - t) + x;
    }
    else {
        s->lo += (x - t) + s->hi;
    }
    s->hi = t;
#else
    s->hi += x;
#endif
}

/* An empty sum() is the int 0, which a float addition turns into 0.0. */
static inline double
pysum_value(const PySum *s)
{
    if (s->terms == 0) {
        return 0.0;
    }
#if PY_VERSION_HEX >= 0x030C0000
    if (s->lo != 0.0 && isfinite(s->lo)) {
        return s->hi + s->lo;
    }
#endif
    return s->hi;
}

/* ---- Model ---------------------------------------------------------------------------------------------- */

/* A vocabulary entry: every token that has a unigram weight, is half of a weighted bigram or is a trigger
 * word. Token ids index `tokens`; bigrams are keyed by the pair of ids, so a pair lookup hashes two ints
 * instead of re-reading both tokens' bytes. */
typedef struct {
    Py_ssize_t offset;      /* into Model.pool */
    Py_ssize_t len;
    uint64_t hash;          /* fnv_bytes of the token */
    double weight;          /* unigram weight; 0.0 when it has none, which adds the same as a missing one */
    Py_ssize_t trigger;     /* index into Model.triggers, or -1 */
    int kind;               /* features.TOKEN_KINDS index, or -1 */
} Token;

/* features.structure_features: at most MAX_KINDS kinds, kind 0 being the piece start. */
#define MAX_KINDS 16
#define FIRED_WORDS (MAX_KINDS * MAX_KINDS * 2 / 64)

#define NO_PAIR UINT64_MAX  /* ids are < 2**31, so no real pair key has all bits set */
#define MAX_TOKENS INT32_MAX

typedef struct {
    PyObject_HEAD
    Py_ssize_t max_segment_tokens;
    Token *tokens;
    Py_ssize_t ntokens;
    Py_ssize_t tokens_cap;
    int32_t *token_slots;   /* open addressing over token ids; -1 is empty */
    size_t token_mask;
    char *pool;             /* every token's bytes, back to back */
    Py_ssize_t pool_len;
    Py_ssize_t pool_cap;
    uint64_t *pair_keys;    /* open addressing over (first id << 32 | second id); NO_PAIR is empty */
    double *pair_weights;
    size_t pair_mask;
    PyObject *triggers;     /* tuple of the trigger words (str) that ASCII text can contain */
    int nkinds;
    Py_ssize_t near;
    Py_ssize_t far;
    double *structure;      /* weight of feature (a * nkinds + b) * 2 + far */
} Model;

static inline Py_ssize_t
model_find(const Model *m, const char *s, Py_ssize_t len, uint64_t hash)
{
    size_t i = (size_t)mix64(hash) & m->token_mask;
    for (;;) {
        int32_t id = m->token_slots[i];
        if (id < 0) {
            return -1;
        }
        const Token *t = &m->tokens[id];
        if (t->hash == hash && t->len == len && memcmp(m->pool + t->offset, s, (size_t)len) == 0) {
            return id;
        }
        i = (i + 1) & m->token_mask;
    }
}

/* Id of `s`, added to the vocabulary when new; -1 with an exception set on failure. */
static Py_ssize_t
model_intern(Model *m, const char *s, Py_ssize_t len)
{
    uint64_t hash = fnv_bytes(s, len);
    Py_ssize_t id = model_find(m, s, len, hash);
    if (id >= 0) {
        return id;
    }
    /* The tables were sized from an upper bound on the entries, so they never fill up. */
    if (m->ntokens >= m->tokens_cap) {
        PyErr_SetString(PyExc_SystemError, "injection model vocabulary overflow");
        return -1;
    }
    if (len > PY_SSIZE_T_MAX - m->pool_len) {
        PyErr_NoMemory();
        return -1;
    }
    if (m->pool_len + len > m->pool_cap) {
        Py_ssize_t cap = m->pool_cap ? m->pool_cap : 4096;
        while (cap < m->pool_len + len) {
            if (cap > PY_SSIZE_T_MAX / 2) {
                cap = m->pool_len + len;
                break;
            }
            cap *= 2;
        }
        char *pool = PyMem_Realloc(m->pool, (size_t)cap);
        if (pool == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        m->pool = pool;
        m->pool_cap = cap;
    }
    memcpy(m->pool + m->pool_len, s, (size_t)len);
    id = m->ntokens++;
    m->tokens[id] = (Token){.offset = m->pool_len, .len = len, .hash = hash, .weight = 0.0, .trigger = -1, .kind = -1};
    m->pool_len += len;

    size_t i = (size_t)mix64(hash) & m->token_mask;
    while (m->token_slots[i] >= 0) {
        i = (i + 1) & m->token_mask;
    }
    m->token_slots[i] = (int32_t)id;
    return id;
}

static inline uint64_t
pair_key(Py_ssize_t first, Py_ssize_t second)
{
    return ((uint64_t)first << 32) | (uint64_t)second;
}

static inline double
model_pair_weight(const Model *m, Py_ssize_t first, Py_ssize_t second)
{
    uint64_t key = pair_key(first, second);
    size_t i = (size_t)mix64(key) & m->pair_mask;
    for (;;) {
        uint64_t k = m->pair_keys[i];
        if (k == key) {
            return m->pair_weights[i];
        }
        if (k == NO_PAIR) {
            return 0.0;
        }
        i = (i + 1) & m->pair_mask;
    }
}

/* The weights must be exact floats: sum() adds ints on its exact integer path and float subclasses through
 * their __add__, and only exact floats take the float path mirrored by PySum. */
static int
weight_of(PyObject *value, double *out)
{
    if (!PyFloat_CheckExact(value)) {
        PyErr_Format(PyExc_TypeError, "injection model weights must be floats, got %.100s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    *out = PyFloat_AS_DOUBLE(value);
    return 0;
}

/* UTF-8 bytes of an ASCII str key, or NULL for any other key: scan() only sees ASCII tokens, so a
 * non-ASCII key can never match and is left out. */
static const char *
ascii_key(PyObject *key, Py_ssize_t *len)
{
    if (!PyUnicode_Check(key) || !PyUnicode_IS_ASCII(key)) {
        return NULL;
    }
    *len = PyUnicode_GET_LENGTH(key);
    /* No token is empty, so an empty key can never match either and is left out too. Interning one was
     * undefined behaviour: with nothing else interned yet the pool is still NULL, and model_intern's memcpy
     * and model_find's memcmp got that NULL (memcpy/memcmp arguments must be valid even for length 0). */
    if (*len == 0) {
        return NULL;
    }
    return (const char *)PyUnicode_1BYTE_DATA(key);
}

#define SKIP_KEY (-2)

/* Id of `key` interned, SKIP_KEY for a key no ASCII token can equal (see ascii_key), or -1 with an exception
 * set. */
static Py_ssize_t
model_intern_key(Model *m, PyObject *key)
{
    Py_ssize_t len;
    const char *s = ascii_key(key, &len);
    return s == NULL ? SKIP_KEY : model_intern(m, s, len);
}

static int
model_load_unigrams(Model *m, PyObject *unigrams)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(unigrams, &pos, &key, &value)) {
        double weight;
        if (weight_of(value, &weight) < 0) {
            return -1;
        }
        Py_ssize_t id = model_intern_key(m, key);
        if (id == SKIP_KEY) {
            continue;
        }
        if (id < 0) {
            return -1;
        }
        m->tokens[id].weight = weight;
    }
    return 0;
}

static int
model_load_bigrams(Model *m, PyObject *bigrams)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(bigrams, &pos, &key, &value)) {
        double weight;
        if (weight_of(value, &weight) < 0) {
            return -1;
        }
        /* Only (str, str) keys can equal a pair of adjacent tokens. */
        if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 2) {
            continue;
        }
        Py_ssize_t len0, len1;
        const char *s0 = ascii_key(PyTuple_GET_ITEM(key, 0), &len0);
        const char *s1 = ascii_key(PyTuple_GET_ITEM(key, 1), &len1);
        if (s0 == NULL || s1 == NULL) {
            continue;
        }
        Py_ssize_t first = model_intern(m, s0, len0);
        if (first < 0) {
            return -1;
        }
        Py_ssize_t second = model_intern(m, s1, len1);
        if (second < 0) {
            return -1;
        }
        uint64_t k = pair_key(first, second);
        size_t i = (size_t)mix64(k) & m->pair_mask;
        while (m->pair_keys[i] != NO_PAIR && m->pair_keys[i] != k) {
            i = (i + 1) & m->pair_mask;
        }
        m->pair_keys[i] = k;
        m->pair_weights[i] = weight;
    }
    return 0;
}

static int
model_load_triggers(Model *m, PyObject *words)
{
    PyObject *kept = PyList_New(0);
    if (kept == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(words);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PySequence_Fast_GET_ITEM(words, i);
        Py_ssize_t id = model_intern_key(m, word);
        if (id == SKIP_KEY) {
            continue;
        }
        if (id < 0) {
            goto error;
        }
        if (m->tokens[id].trigger >= 0) {
            continue;   /* a repeated word */
        }
        m->tokens[id].trigger = PyList_GET_SIZE(kept);
        if (PyList_Append(kept, word) < 0) {
            goto error;
        }
    }
    m->triggers = PyList_AsTuple(kept);
    Py_DECREF(kept);
    return m->triggers == NULL ? -1 : 0;
error:
    Py_DECREF(kept);
    return -1;
}

/* kinds: {token: kind index in 1 .. nkinds - 1}; structure: nkinds * nkinds * 2 float weights. */
static int
model_load_structure(Model *m, PyObject *kinds, PyObject *structure)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (kinds != NULL && PyDict_Next(kinds, &pos, &key, &value)) {
        long kind = PyLong_Check(value) ? PyLong_AsLong(value) : -1;
        if (kind < 1 || kind >= m->nkinds) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "token kinds must be ints in 1 .. kind_count - 1");
            }
            return -1;
        }
        Py_ssize_t id = model_intern_key(m, key);
        if (id == SKIP_KEY) {
            continue;
        }
        if (id < 0) {
            return -1;
        }
        m->tokens[id].kind = (int)kind;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(structure);
    if (n != (Py_ssize_t)m->nkinds * m->nkinds * 2) {
        PyErr_SetString(PyExc_ValueError, "structure must hold kind_count * kind_count * 2 weights");
        return -1;
    }
    m->structure = PyMem_Malloc((size_t)n * sizeof(double));
    if (m->structure == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (weight_of(PySequence_Fast_GET_ITEM(structure, i), &m->structure[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

static void
Model_dealloc(Model *m)
{
    PyMem_Free(m->tokens);
    PyMem_Free(m->token_slots);
    PyMem_Free(m->pool);
    PyMem_Free(m->pair_keys);
    PyMem_Free(m->pair_weights);
    PyMem_Free(m->structure);
    Py_XDECREF(m->triggers);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static PyObject *
Model_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"unigrams", "bigrams", "trigger_words", "max_segment_tokens", "kinds",
                               "kind_count", "structure", "near", "far", NULL};
    /* Without the structure arguments the model has no structure features (one kind, the piece start). */
    PyObject *unigrams, *bigrams, *trigger_words, *kinds = NULL, *structure_seq = NULL;
    Py_ssize_t max_segment_tokens, near = 0, far = 0;
    int kind_count = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!On|O!iOnn:Model", keywords, &PyDict_Type, &unigrams,
                                     &PyDict_Type, &bigrams, &trigger_words, &max_segment_tokens,
                                     &PyDict_Type, &kinds, &kind_count, &structure_seq, &near, &far)) {
        return NULL;
    }
    if (max_segment_tokens < 1) {
        PyErr_SetString(PyExc_ValueError, "max_segment_tokens must be at least 1");
        return NULL;
    }
    if (kind_count < 1 || kind_count > MAX_KINDS || near < 0 || far < 0) {
        PyErr_SetString(PyExc_ValueError, "kind_count must be in 1 .. 16, near and far at least 0");
        return NULL;
    }
    PyObject *words = PySequence_Fast(trigger_words, "trigger_words must be iterable");
    if (words == NULL) {
        return NULL;
    }
    PyObject *structure = (structure_seq == NULL ? Py_BuildValue("(dd)", 0.0, 0.0)
                           : PySequence_Fast(structure_seq, "structure must be iterable"));
    if (structure == NULL) {
        Py_DECREF(words);
        return NULL;
    }
    Model *m = (Model *)type->tp_alloc(type, 0);   /* zeroed, so dealloc is safe from here on */
    if (m == NULL) {
        Py_DECREF(words);
        Py_DECREF(structure);
        return NULL;
    }
    m->max_segment_tokens = max_segment_tokens;
    m->nkinds = kind_count;
    m->near = near;
    m->far = far;

    /* Upper bounds: each unigram, both halves of each bigram, each trigger word and each kind word may be a new
     * token. */
    Py_ssize_t nuni = PyDict_GET_SIZE(unigrams), nbi = PyDict_GET_SIZE(bigrams);
    Py_ssize_t nwords = PySequence_Fast_GET_SIZE(words), nkind_words = kinds == NULL ? 0 : PyDict_GET_SIZE(kinds);
    if (nuni > MAX_TOKENS / 8 || nbi > MAX_TOKENS / 8 || nwords > MAX_TOKENS / 8 || nkind_words > MAX_TOKENS / 8) {
        PyErr_SetString(PyExc_ValueError, "injection model too large");
        goto error;
    }
    m->tokens_cap = nuni + 2 * nbi + nwords + nkind_words;
    size_t token_cap = table_capacity(m->tokens_cap);
    size_t pair_cap = table_capacity(nbi);
    m->tokens = PyMem_Calloc((size_t)m->tokens_cap + 1, sizeof(Token));
    m->token_slots = PyMem_Malloc(token_cap * sizeof(int32_t));
    m->pair_keys = PyMem_Malloc(pair_cap * sizeof(uint64_t));
    m->pair_weights = PyMem_Calloc(pair_cap, sizeof(double));
    if (m->tokens == NULL || m->token_slots == NULL || m->pair_keys == NULL || m->pair_weights == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    memset(m->token_slots, 0xff, token_cap * sizeof(int32_t));     /* all -1 */
    memset(m->pair_keys, 0xff, pair_cap * sizeof(uint64_t));       /* all NO_PAIR */
    m->token_mask = token_cap - 1;
    m->pair_mask = pair_cap - 1;

    if (model_load_unigrams(m, unigrams) < 0 || model_load_bigrams(m, bigrams) < 0
        || model_load_triggers(m, words) < 0 || model_load_structure(m, kinds, structure) < 0) {
        goto error;
    }
    Py_DECREF(words);
    Py_DECREF(structure);
    return (PyObject *)m;
error:
    Py_DECREF(words);
    Py_DECREF(structure);
    Py_DECREF(m);
    return NULL;
}

/* ---- Model.scan ------------------------------------------------------------------------------------------ */

/* The window state of one scan: the open piece (a segment, or a MAX_SEGMENT_TOKENS cut of a long one), and
 * the best single-piece and neighbour-pair sums so far, compared as Python's max() does (`new > best`). */
typedef struct {
    const Model *m;
    PySum unigram_sum;      /* the open piece's unigram weights */
    PySum bigram_sum;       /* its adjacent pairs' weights */
    PySum structure_sum;    /* its structure features' weights, in the order first seen */
    Py_ssize_t last[MAX_KINDS];         /* piece position of each kind's last word; NO_WORD when none */
    uint64_t fired[FIRED_WORDS];        /* bit per structure feature already counted in this piece */
    Py_ssize_t piece_len;
    Py_ssize_t prev_id;     /* the open piece's last token, -1 when not in the vocabulary */
    Py_ssize_t pieces;
    double prev_sum;
    double best;
    double best_pair;
    Py_ssize_t pairs;
    uint64_t *present;      /* bit per trigger word */
} Scan;

#define NO_WORD PY_SSIZE_T_MIN

/* A piece starts with only the start word (kind 0, at position -1) seen and no feature counted. */
static void
scan_open_piece(Scan *sc)
{
    sc->structure_sum = (PySum){0};
    for (int k = 0; k < MAX_KINDS; k++) {
        sc->last[k] = NO_WORD;
    }
    sc->last[0] = -1;
    memset(sc->fired, 0, sizeof(sc->fired));
}

/* features.structure_features, one word of kind `b` at piece position `j`. */
static inline void
scan_structure(Scan *sc, int b, Py_ssize_t j)
{
    const Model *m = sc->m;
    for (int a = 0; a < m->nkinds; a++) {
        Py_ssize_t at = sc->last[a];
        if (at == NO_WORD || a == b) {
            continue;
        }
        Py_ssize_t d = j - at;
        int base = (a * m->nkinds + b) * 2;
        if (d <= m->near && !(sc->fired[base >> 6] & ((uint64_t)1 << (base & 63)))) {
            sc->fired[base >> 6] |= (uint64_t)1 << (base & 63);
            pysum_add(&sc->structure_sum, m->structure[base]);
        }
        int f = base + 1;
        if (d <= m->far && a != 0 && !(sc->fired[f >> 6] & ((uint64_t)1 << (f & 63)))) {
            sc->fired[f >> 6] |= (uint64_t)1 << (f & 63);
            pysum_add(&sc->structure_sum, m->structure[f]);
        }
    }
    sc->last[b] = j;
}

static void
scan_close_piece(Scan *sc)
{
    if (sc->piece_len == 0) {
        return;     /* empty segments are dropped (segment_spans) */
    }
    /* _model_score: sum(unigrams[start:end]) + sum(bigrams[start:end - 1]). */
    double sum = pysum_value(&sc->unigram_sum) + pysum_value(&sc->bigram_sum);
    sum = sum + pysum_value(&sc->structure_sum);
    if (sc->pieces == 0) {
        sc->best = sum;
    }
    else {
        if (sum > sc->best) {
            sc->best = sum;
        }
        double pair = sc->prev_sum + sum;
        if (sc->pairs == 0 || pair > sc->best_pair) {
            sc->best_pair = pair;
        }
        sc->pairs++;
    }
    sc->prev_sum = sum;
    sc->pieces++;
    sc->piece_len = 0;
    sc->prev_id = -1;
    sc->unigram_sum = (PySum){0};
    sc->bigram_sum = (PySum){0};
    scan_open_piece(sc);
}

static inline void
scan_token(Scan *sc, const char *s, Py_ssize_t len, uint64_t hash)
{
    const Model *m = sc->m;
    Py_ssize_t id = model_find(m, s, len, hash);
    if (sc->piece_len == m->max_segment_tokens) {
        scan_close_piece(sc);   /* a long segment continues in a new piece; no bigram across the cut */
    }
    double weight = 0.0;
    if (id >= 0) {
        const Token *t = &m->tokens[id];
        weight = t->weight;
        if (t->trigger >= 0) {
            sc->present[t->trigger >> 6] |= (uint64_t)1 << (t->trigger & 63);
        }
        if (t->kind >= 0) {
            scan_structure(sc, t->kind, sc->piece_len);
        }
    }
    pysum_add(&sc->unigram_sum, weight);
    if (sc->piece_len > 0) {
        double pair = (id >= 0 && sc->prev_id >= 0) ? model_pair_weight(m, sc->prev_id, id) : 0.0;
        pysum_add(&sc->bigram_sum, pair);
    }
    sc->prev_id = id;
    sc->piece_len++;
}

#define PRESENT_ON_STACK 16     /* words of trigger bits kept on the stack: 1024 trigger words */

PyDoc_STRVAR(Model_scan_doc,
"scan(text, /)\n--\n\n"
"Best window sum (None when the text has no token) and the tuple of trigger words present in ASCII `text`.");

static PyObject *
Model_scan(Model *m, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "scan() argument must be str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return NULL;
    }
#endif
    if (!PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_ValueError, "scan() takes ASCII text only");
        return NULL;
    }
    const unsigned char *p = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);

    Py_ssize_t ntriggers = PyTuple_GET_SIZE(m->triggers);
    size_t present_words = ((size_t)ntriggers + 63) / 64;
    uint64_t present_stack[PRESENT_ON_STACK] = {0};
    uint64_t *present = present_stack;
    if (present_words > PRESENT_ON_STACK) {
        present = PyMem_Calloc(present_words, sizeof(uint64_t));
        if (present == NULL) {
            return PyErr_NoMemory();
        }
    }

    Scan sc = {.m = m, .prev_id = -1, .present = present};
    scan_open_piece(&sc);
    static const char colon = ':';
    uint64_t colon_hash = fnv_step(FNV_OFFSET, ':');
    Py_ssize_t start = -1;      /* start of the token being read, -1 between tokens */
    uint64_t hash = FNV_OFFSET;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        int cls = char_class[c];
        if (cls == CLS_TOKEN) {
            if (start < 0) {
                start = i;
                hash = FNV_OFFSET;
            }
            hash = fnv_step(hash, c);
            continue;
        }
        if (start >= 0) {
            scan_token(&sc, (const char *)p + start, i - start, hash);
            start = -1;
        }
        if (cls == CLS_COLON) {
            scan_token(&sc, &colon, 1, colon_hash);
        }
        else if (cls == CLS_NEWLINE || (cls == CLS_SENTENCE_END && (i + 1 == n || is_space[p[i + 1]]))) {
            scan_close_piece(&sc);
        }
    }
    if (start >= 0) {
        scan_token(&sc, (const char *)p + start, n - start, hash);
    }
    scan_close_piece(&sc);

    PyObject *best = NULL, *words = NULL, *result = NULL;
    if (sc.pieces == 0) {
        best = Py_NewRef(Py_None);
    }
    else {
        /* max(best, max(pair sums)): the pair replaces the single only when it is larger. */
        best = PyFloat_FromDouble(sc.pairs > 0 && sc.best_pair > sc.best ? sc.best_pair : sc.best);
        if (best == NULL) {
            goto done;
        }
    }
    Py_ssize_t count = 0;
    for (size_t w = 0; w < present_words; w++) {
        for (uint64_t bits = present[w]; bits; bits &= bits - 1) {
            count++;
        }
    }
    words = PyTuple_New(count);
    if (words == NULL) {
        goto done;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t t = 0; t < ntriggers && k < count; t++) {
        if (present[t >> 6] & ((uint64_t)1 << (t & 63))) {
            PyTuple_SET_ITEM(words, k++, Py_NewRef(PyTuple_GET_ITEM(m->triggers, t)));
        }
    }
    result = PyTuple_Pack(2, best, words);
done:
    Py_XDECREF(best);
    Py_XDECREF(words);
    if (present != present_stack) {
        PyMem_Free(present);
    }
    return result;
}

static PyMethodDef Model_methods[] = {
    {"scan", (PyCFunction)Model_scan, METH_O, Model_scan_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Model_doc,
"Model(unigrams, bigrams, trigger_words, max_segment_tokens, kinds, kind_count, structure, near, far)\n--\n\n"
"The injection model's weights in C tables: unigrams {token: weight}, bigrams {(token, token): weight},\n"
"the rules' trigger words, features.MAX_SEGMENT_TOKENS, and the structure features: features.TOKEN_KINDS,\n"
"len(KIND_NAMES), their weights by feature index, NEAR and FAR. Immutable once built.");

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.guardrails.injection._fast.Model",
    .tp_basicsize = sizeof(Model),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Model_doc,
    .tp_methods = Model_methods,
    .tp_new = Model_new,
};

/* ---- WordStarts: where the rules' anchor words begin ------------------------------------------------------ */

/* rules.rule_score matches a rule's regex only where one of its anchor words starts (every match of the
 * rule starts there), instead of letting the regex engine try every position of a long document. A word
 * is a maximal run of str.isalnum() characters, as `[^\W_]+` finds it (the reference,
 * rules.word_starts_py); any text, any kind. */
typedef struct {
    PyObject_HEAD
    PyObject *words;        /* tuple of the anchor words (str) */
    Py_UCS4 *chars;         /* every word's code points, back to back */
    Py_ssize_t *offsets;    /* word i is chars[offsets[i] .. offsets[i + 1]) */
    uint64_t *hashes;
    int32_t *slots;         /* open addressing over word indexes; -1 is empty */
    size_t mask;
    Py_ssize_t min_len;
    Py_ssize_t max_len;
} WordStarts;

static inline uint64_t
fnv_ucs4(uint64_t h, Py_UCS4 c)
{
    return (h ^ (uint64_t)c) * FNV_PRIME;
}

static Py_ssize_t
ws_find(const WordStarts *w, const void *data, int kind, Py_ssize_t start, Py_ssize_t len, uint64_t hash)
{
    size_t i = (size_t)mix64(hash) & w->mask;
    for (;;) {
        int32_t k = w->slots[i];
        if (k < 0) {
            return -1;
        }
        if (w->hashes[k] == hash && w->offsets[k + 1] - w->offsets[k] == len) {
            const Py_UCS4 *c = w->chars + w->offsets[k];
            Py_ssize_t j = 0;
            while (j < len && c[j] == PyUnicode_READ(kind, data, start + j)) {
                j++;
            }
            if (j == len) {
                return k;
            }
        }
        i = (i + 1) & w->mask;
    }
}

static void
WordStarts_dealloc(WordStarts *w)
{
    PyMem_Free(w->chars);
    PyMem_Free(w->offsets);
    PyMem_Free(w->hashes);
    PyMem_Free(w->slots);
    Py_XDECREF(w->words);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *
WordStarts_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"words", NULL};
    PyObject *iterable;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:WordStarts", keywords, &iterable)) {
        return NULL;
    }
    PyObject *seq = PySequence_Tuple(iterable);
    if (seq == NULL) {
        return NULL;
    }
    WordStarts *w = (WordStarts *)type->tp_alloc(type, 0);
    if (w == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    w->words = seq;     /* owned from here */
    Py_ssize_t n = PyTuple_GET_SIZE(seq), total = 0;
    if (n > INT32_MAX / 4) {
        PyErr_SetString(PyExc_ValueError, "too many words");
        goto error;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PyTuple_GET_ITEM(seq, i);
        if (!PyUnicode_Check(word) || PyUnicode_GET_LENGTH(word) == 0) {
            PyErr_SetString(PyExc_TypeError, "WordStarts words must be non-empty str");
            goto error;
        }
        total += PyUnicode_GET_LENGTH(word);
    }
    size_t cap = table_capacity(n);
    w->chars = PyMem_Malloc(((size_t)total + 1) * sizeof(Py_UCS4));
    w->offsets = PyMem_Malloc(((size_t)n + 1) * sizeof(Py_ssize_t));
    w->hashes = PyMem_Malloc(((size_t)n + 1) * sizeof(uint64_t));
    w->slots = PyMem_Malloc(cap * sizeof(int32_t));
    if (w->chars == NULL || w->offsets == NULL || w->hashes == NULL || w->slots == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    memset(w->slots, 0xff, cap * sizeof(int32_t));
    w->mask = cap - 1;
    w->min_len = PY_SSIZE_T_MAX;
    w->max_len = 0;
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PyTuple_GET_ITEM(seq, i);
        int kind = PyUnicode_KIND(word);
        const void *data = PyUnicode_DATA(word);
        Py_ssize_t len = PyUnicode_GET_LENGTH(word);
        w->offsets[i] = at;
        uint64_t h = FNV_OFFSET;
        for (Py_ssize_t j = 0; j < len; j++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, j);
            w->chars[at++] = c;
            h = fnv_ucs4(h, c);
        }
        w->hashes[i] = h;
        w->offsets[i + 1] = at;
        if (ws_find(w, w->chars, PyUnicode_4BYTE_KIND, w->offsets[i], len, h) >= 0) {
            continue;   /* a repeated word: the first one is reported */
        }
        size_t k = (size_t)mix64(h) & w->mask;
        while (w->slots[k] >= 0) {
            k = (k + 1) & w->mask;
        }
        w->slots[k] = (int32_t)i;
        if (len < w->min_len) {
            w->min_len = len;
        }
        if (len > w->max_len) {
            w->max_len = len;
        }
    }
    if (n == 0) {
        w->offsets[0] = 0;
        w->min_len = 1;
    }
    return (PyObject *)w;
error:
    Py_DECREF(w);
    return NULL;
}

PyDoc_STRVAR(WordStarts_find_doc,
"find(text, /)\n--\n\n"
"[(word, start), ...] in text order: each maximal run of str.isalnum() characters of `text` that is one\n"
"of the words, with its start index.");

static PyObject *
WordStarts_find(WordStarts *w, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "find() argument must be str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return NULL;
    }
#endif
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int ascii = PyUnicode_IS_ASCII(text);
    Py_ssize_t i = 0;
    while (i < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        int alnum = ascii ? char_class[c] == CLS_TOKEN : Py_UNICODE_ISALNUM(c);
        if (!alnum) {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        uint64_t h = FNV_OFFSET;
        for (;;) {
            h = fnv_ucs4(h, c);
            if (++i >= n) {
                break;
            }
            c = PyUnicode_READ(kind, data, i);
            if (!(ascii ? char_class[c] == CLS_TOKEN : Py_UNICODE_ISALNUM(c))) {
                break;
            }
        }
        Py_ssize_t len = i - start;
        if (len < w->min_len || len > w->max_len) {
            continue;
        }
        Py_ssize_t k = ws_find(w, data, kind, start, len, h);
        if (k < 0) {
            continue;
        }
        PyObject *pos = PyLong_FromSsize_t(start);
        if (pos == NULL) {
            goto error;
        }
        PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(w->words, k), pos);
        Py_DECREF(pos);
        if (pair == NULL || PyList_Append(out, pair) < 0) {
            Py_XDECREF(pair);
            goto error;
        }
        Py_DECREF(pair);
    }
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef WordStarts_methods[] = {
    {"find", (PyCFunction)WordStarts_find, METH_O, WordStarts_find_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(WordStarts_doc,
"WordStarts(words)\n--\n\n"
"Finds where any of `words` (non-empty str) occurs as a whole alphanumeric run of a text. Immutable.");

static PyTypeObject WordStartsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.guardrails.injection._fast.WordStarts",
    .tp_basicsize = sizeof(WordStarts),
    .tp_dealloc = (destructor)WordStarts_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = WordStarts_doc,
    .tp_methods = WordStarts_methods,
    .tp_new = WordStarts_new,
};

/* ---- normalize.py gates ----------------------------------------------------------------------------------- */

PyDoc_STRVAR(has_long_word_doc,
"has_long_word(text, min_len, /)\n--\n\n"
"Whether a whitespace-separated word of `text` (as str.split() cuts it) has at least `min_len` characters.");

static PyObject *
has_long_word(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "has_long_word(text: str, min_len: int)");
        return NULL;
    }
    PyObject *text = args[0];
    Py_ssize_t min_len = PyLong_AsSsize_t(args[1]);
    if (min_len == -1 && PyErr_Occurred()) {
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return NULL;
    }
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (min_len <= 0) {
        /* max(map(len, text.split())) >= min_len holds for any word; an empty split has none. */
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(text, i))) {
                Py_RETURN_TRUE;
            }
        }
        Py_RETURN_FALSE;
    }
    /* str.split() with no separator splits on Py_UNICODE_ISSPACE; lengths count code points. */
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t run = 0;
    if (PyUnicode_IS_ASCII(text)) {
        const unsigned char *p = data;
        for (Py_ssize_t i = 0; i < n; i++) {
            run = is_space[p[i]] ? 0 : run + 1;
            if (run >= min_len) {
                Py_RETURN_TRUE;
            }
        }
        Py_RETURN_FALSE;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        run = Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)) ? 0 : run + 1;
        if (run >= min_len) {
            Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(has_leet_hint_doc,
"has_leet_hint(text, /)\n--\n\n"
"Whether normalize._LEET_HINT matches: one of the digits 013457 next to an a-z letter.");

static inline int
is_leet_digit(Py_UCS4 c)
{
    return c == '0' || c == '1' || c == '3' || c == '4' || c == '5' || c == '7';
}

static inline int
is_lower_ascii(Py_UCS4 c)
{
    return c >= 'a' && c <= 'z';
}

static PyObject *
has_leet_hint(PyObject *module, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "has_leet_hint() argument must be str, not %.100s",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return NULL;
    }
#endif
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (kind == PyUnicode_1BYTE_KIND) {
        /* The common case, without PyUnicode_READ's per-character switch on the kind. */
        const unsigned char *p = data;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (is_leet_digit(p[i])
                && ((i > 0 && is_lower_ascii(p[i - 1])) || (i + 1 < n && is_lower_ascii(p[i + 1])))) {
                Py_RETURN_TRUE;
            }
        }
        Py_RETURN_FALSE;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!is_leet_digit(PyUnicode_READ(kind, data, i))) {
            continue;
        }
        if ((i > 0 && is_lower_ascii(PyUnicode_READ(kind, data, i - 1)))
            || (i + 1 < n && is_lower_ascii(PyUnicode_READ(kind, data, i + 1)))) {
            Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

/* ---- Module ----------------------------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"has_long_word", (PyCFunction)(void (*)(void))has_long_word, METH_FASTCALL, has_long_word_doc},
    {"has_leet_hint", (PyCFunction)has_leet_hint, METH_O, has_leet_hint_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gateway.guardrails.injection._fast",
    .m_doc = "Optional C accelerator for the injection detector; the Python code is the reference.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__fast(void)
{
    init_tables();
    if (PyType_Ready(&ModelType) < 0 || PyType_Ready(&WordStartsType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Model", (PyObject *)&ModelType) < 0
        || PyModule_AddObjectRef(module, "WordStarts", (PyObject *)&WordStartsType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
