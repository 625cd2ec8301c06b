/*
 * The multi-index's compiled kernel: bucket sorting at build time, and candidate
 * generation plus the exact check at query time (node/multiindex.py).
 *
 * numpy answers the same questions with a few array calls per batch, but each call
 * writes a temporary as large as the candidates (tens of thousands per query at
 * 10M hashes) and the gathers that follow wait on one cache miss at a time. Here a
 * query's probes, bucket ranges and candidates are walked in three short passes, each
 * prefetching PREFETCH_AHEAD items ahead, so that the misses into the bucket bounds,
 * the row numbers and the hashes overlap instead of queueing.
 *
 * The answer is the numpy path's, bit for bit: a candidate found through several
 * slots is reported once, through the first slot in which it is within the radius.
 *
 * Portable C99: __builtin_popcountll and __builtin_prefetch (GCC, Clang). Loaded with
 * ctypes as a plain shared library, so no Python headers are needed to build it.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bumped whenever a signature below changes; node/multiindex_kernel.py checks it. */
#define MI_ABI 1
/* How far ahead each pass prefetches. Measured at 10M hashes: 8 to 32 alike, 48 and
 * more markedly slower (lines arrive too early and are evicted before use). The
 * prefetches go to all cache levels: a non-temporal hint was 4x slower on Intel. */
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 24
#endif
#define MAX_WORDS 8

int mi_abi(void) { return MI_ABI; }

static inline uint32_t slot_of(const uint64_t *row, int32_t word, int32_t shift, int32_t width) {
    return (uint32_t)((row[word] >> shift) & ((UINT64_C(1) << width) - 1));
}

/*
 * One slot's counting sort: ``order`` (n entries) receives the row numbers sorted by
 * slot value, stably, and ``bounds`` (2**width + 1 entries) the position of each bucket
 * in the whole order array (``base`` is this slot's first position), then the end.
 * ``bounds64``: bounds are int64, else uint32. The bounds array is its own counter and
 * cursor, so no scratch as large as it is needed. Returns 0.
 */
#define BUILD_SLOT(T)                                                                   \
    do {                                                                                \
        T *b = bounds;                                                                  \
        memset(b, 0, ((size_t)buckets + 1) * sizeof(T));                                \
        for (int64_t i = 0; i < n; i++)                                                 \
            b[slot_of(rows + i * words, word, shift, width) + 1]++;                     \
        b[0] = (T)base;                                                                 \
        for (int64_t v = 0; v < buckets; v++) b[v + 1] += b[v];                         \
        /* b[v] is now where bucket v starts; fill it, moving b[v] to its end ... */     \
        for (int64_t i = 0; i < n; i++) {                                               \
            uint32_t v = slot_of(rows + i * words, word, shift, width);                 \
            order[b[v]++ - base] = (uint32_t)i;                                         \
        }                                                                               \
        /* ... which is where bucket v + 1 starts: shift back by one. */                \
        memmove(b + 1, b, (size_t)buckets * sizeof(T));                                 \
        b[0] = (T)base;                                                                 \
    } while (0)

int mi_build_slot(const uint64_t *rows, int64_t n, int32_t words, int32_t word, int32_t shift,
                  int32_t width, uint32_t *order, void *bounds, int32_t bounds64, int64_t base) {
    int64_t buckets = (int64_t)1 << width;
    if (bounds64)
        BUILD_SLOT(int64_t);
    else
        BUILD_SLOT(uint32_t);
    return 0;
}

/* Growable scratch reused by every query of one call. */
typedef struct {
    int64_t *at;     /* per probe: index into bounds */
    int32_t *slot;   /* per probe: its slot */
    int64_t *lo, *hi;
    int64_t probes;
    uint32_t *cand;  /* per candidate: row number */
    uint8_t *cslot;  /* per candidate: the slot it came through */
    int64_t cap;
} scratch_t;

static int grow_candidates(scratch_t *s, int64_t need) {
    if (need <= s->cap) return 0;
    int64_t cap = s->cap ? s->cap : 4096;
    while (cap < need) cap *= 2;
    uint32_t *cand = realloc(s->cand, (size_t)cap * sizeof(uint32_t));
    if (cand == NULL) return -1;
    s->cand = cand;
    uint8_t *cslot = realloc(s->cslot, (size_t)cap);
    if (cslot == NULL) return -1;
    s->cslot = cslot;
    s->cap = cap;
    return 0;
}

static inline int64_t bound_at(const void *bounds, int32_t bounds64, int64_t i) {
    return bounds64 ? ((const int64_t *)bounds)[i] : (int64_t)((const uint32_t *)bounds)[i];
}

static inline const void *bound_ptr(const void *bounds, int32_t bounds64, int64_t i) {
    return bounds64 ? (const void *)((const int64_t *)bounds + i)
                    : (const void *)((const uint32_t *)bounds + i);
}

/*
 * Every live row of ``rows`` (n × words, row-major) within ``limit`` bits of each of
 * the ``nq`` queries (nq × words, row-major). Slot s is bits ``shift[s]`` up of word
 * ``word[s]``, ``width[s]`` wide; its buckets start at ``bounds_at[s]`` in ``bounds``
 * and its probe masks are ``masks[mask_at[s] .. mask_at[s + 1])``. ``alive``: one byte
 * per row, 0 for removed rows, or NULL. Hits go to ``hit_query``/``hit_row``/``hit_dist``
 * in query order while fewer than ``capacity``; the return value is the number of hits
 * (more than ``capacity``: call again with room for all), or -1 if out of memory.
 */
int64_t mi_probe(const uint64_t *rows, int64_t n, int32_t words, const uint8_t *alive,
                 const uint64_t *queries, int64_t nq, const uint32_t *order, const void *bounds,
                 int32_t bounds64, const int64_t *bounds_at, int32_t slots, const int32_t *word,
                 const int32_t *shift, const int32_t *width, const uint32_t *masks,
                 const int64_t *mask_at, int32_t radius, int32_t limit, int64_t *hit_query,
                 int64_t *hit_row, int32_t *hit_dist, int64_t capacity) {
    (void)n;
    if (words < 1 || words > MAX_WORDS || slots > 255) return -1;
    scratch_t s = {0};
    int64_t probes = mask_at[slots];
    s.at = malloc((size_t)(probes + 1) * sizeof(int64_t));
    s.slot = malloc((size_t)(probes + 1) * sizeof(int32_t));
    s.lo = malloc((size_t)(probes + 1) * sizeof(int64_t));
    s.hi = malloc((size_t)(probes + 1) * sizeof(int64_t));
    int64_t hits = 0;
    if (s.at == NULL || s.slot == NULL || s.lo == NULL || s.hi == NULL) {
        hits = -1;
        goto done;
    }
    for (int64_t q = 0; q < nq; q++) {
        const uint64_t *query = queries + q * words;
        /* Pass 1: the buckets to probe, and their bounds fetched ahead. */
        int64_t p = 0;
        for (int32_t t = 0; t < slots; t++) {
            uint32_t v = slot_of(query, word[t], shift[t], width[t]);
            for (int64_t k = mask_at[t]; k < mask_at[t + 1]; k++) {
                s.at[p] = bounds_at[t] + (int64_t)(v ^ masks[k]);
                s.slot[p] = t;
                p++;
            }
        }
        int64_t total = 0;
        for (int64_t i = 0; i < probes; i++) {
            if (i + PREFETCH_AHEAD < probes)
                __builtin_prefetch(bound_ptr(bounds, bounds64, s.at[i + PREFETCH_AHEAD]), 0, 3);
            s.lo[i] = bound_at(bounds, bounds64, s.at[i]);
            s.hi[i] = bound_at(bounds, bounds64, s.at[i] + 1);
            total += s.hi[i] - s.lo[i];
        }
        if (grow_candidates(&s, total) != 0) {
            hits = -1;
            goto done;
        }
        /* Pass 2: the row numbers of every probed bucket, the next buckets fetched ahead. */
        int64_t c = 0;
        for (int64_t i = 0; i < probes; i++) {
            if (i + PREFETCH_AHEAD < probes)
                __builtin_prefetch(order + s.lo[i + PREFETCH_AHEAD], 0, 3);
            uint8_t t = (uint8_t)s.slot[i];
            for (int64_t j = s.lo[i]; j < s.hi[i]; j++) {
                s.cand[c] = order[j];
                s.cslot[c] = t;
                c++;
            }
        }
        /* Pass 3: each candidate's exact distance, the next rows fetched ahead. */
        for (int64_t i = 0; i < c; i++) {
            if (i + PREFETCH_AHEAD < c)
                __builtin_prefetch(rows + (int64_t)s.cand[i + PREFETCH_AHEAD] * words, 0, 3);
            const uint64_t *row = rows + (int64_t)s.cand[i] * words;
            uint64_t diff[MAX_WORDS];
            int32_t d = 0;
            for (int32_t w = 0; w < words; w++) {
                diff[w] = row[w] ^ query[w];
                d += __builtin_popcountll(diff[w]);
            }
            if (d > limit) continue;
            uint32_t r = s.cand[i];
            if (alive != NULL && !alive[r]) continue;
            /* Found through an earlier slot already? Then that probe reported it. */
            int32_t first = 1;
            for (int32_t t = 0; t < s.cslot[i]; t++) {
                uint32_t sd = (uint32_t)((diff[word[t]] >> shift[t]) &
                                         ((UINT64_C(1) << width[t]) - 1));
                if (__builtin_popcount(sd) <= radius) {
                    first = 0;
                    break;
                }
            }
            if (!first) continue;
            if (hits < capacity) {
                hit_query[hits] = q;
                hit_row[hits] = r;
                hit_dist[hits] = d;
            }
            hits++;
        }
    }
done:
    free(s.at);
    free(s.slot);
    free(s.lo);
    free(s.hi);
    free(s.cand);
    free(s.cslot);
    return hits;
}
