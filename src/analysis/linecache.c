/*
 * linecache.c - source lines for traceback listings (SPEC section 2), read once per file, like
 * Python's linecache.
 *
 * Entries are keyed by the filename as the frame gives it (relative names resolve against the
 * current directory).  A file that cannot be used is remembered as having no lines, so a
 * snapshot from another machine costs one failed open() per missing file, not one per frame.
 * Not used: names like "<unknown>" (as linecache skips "<...>"), anything that is not a regular
 * file (a FIFO or device would block or never end; opened O_NONBLOCK so even open() cannot
 * hang), files over HS_LC_MAX_FILE or whose line index would cost more than half the budget, and
 * binary files (a NUL byte).  Running out of memory is not remembered.  Lines end at \n, \r\n or
 * \r (Python's universal newlines).  Files are not re-read when they change: hs_linecache_clear().
 *
 * Memory: at most HS_LC_MAX_ENTRIES files and HS_LC_MAX_BYTES of contents; the least recently
 * used entries go first.  Locking: lc_lock guards every static below; the _unlocked function
 * expects it held, because the line it returns lives in the cache; fork handlers keep it usable
 * in a child.
 */
#include "analysis.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define HS_LC_MAX_ENTRIES 256
#define HS_LC_MAX_FILE    (32u << 20)
#define HS_LC_MAX_BYTES   (64u << 20)

typedef struct lc_entry {
    char *name;
    uint64_t hash;
    uint64_t last_use;
    char *data;          /* NULL: no lines */
    uint32_t *start;     /* nlines + 1 offsets: line k (1-based) is data[start[k-1], start[k]) */
    size_t nlines;
    size_t bytes;        /* what the entry costs */
} lc_entry;

static pthread_mutex_t lc_lock = PTHREAD_MUTEX_INITIALIZER;
static lc_entry lc_entries[HS_LC_MAX_ENTRIES];   /* guarded by lc_lock */
static size_t lc_n;                              /* guarded by lc_lock */
static size_t lc_bytes;                          /* guarded by lc_lock */
static uint64_t lc_clock;                        /* guarded by lc_lock */

/* Fork: the lock is taken around fork() so a child never inherits it held by a thread that does
 * not exist there (its first listing would deadlock). */
static void lc_prefork(void) { pthread_mutex_lock(&lc_lock); }
static void lc_postfork(void) { pthread_mutex_unlock(&lc_lock); }
static void lc_init(void) { pthread_atfork(lc_prefork, lc_postfork, lc_postfork); }

void hs_linecache_lock(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lc_init);
    pthread_mutex_lock(&lc_lock);
}

void hs_linecache_unlock(void) { pthread_mutex_unlock(&lc_lock); }

static void entry_free(lc_entry *e)
{
    hs_free(e->name);
    hs_free(e->data);
    hs_free(e->start);
    memset(e, 0, sizeof(*e));
}

static void evict_one_unlocked(void)
{
    size_t victim = 0;
    for (size_t i = 1; i < lc_n; i++)
        if (lc_entries[i].last_use < lc_entries[victim].last_use)
            victim = i;
    lc_bytes -= lc_entries[victim].bytes;
    entry_free(&lc_entries[victim]);
    lc_entries[victim] = lc_entries[--lc_n];
    memset(&lc_entries[lc_n], 0, sizeof(lc_entries[lc_n]));
}

/* The whole of a regular file of at most HS_LC_MAX_FILE bytes in *data (NUL-terminated): 0, or
 * 1 when the file cannot be used (remembered as having no lines), or -ENOMEM (not remembered). */
static int read_file(const char *name, char **data, size_t *size)
{
    *data = NULL;
    int fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return 1;
    struct stat st;
    int rc = 1;
    char *d = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (unsigned long long)st.st_size > HS_LC_MAX_FILE)
        goto out;
    size_t want = (size_t)st.st_size, got = 0;
    if ((d = hs_malloc(want + 1)) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    while (got < want) {              /* a file that shrinks meanwhile is read to its end */
        ssize_t r = read(fd, d + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            hs_free(d);
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    d[got] = '\0';
    *data = d;
    *size = got;
    rc = 0;
out:
    close(fd);
    return rc;
}

/* Splits e->data into lines; a file with a NUL byte is binary and gets none.  0 or -ENOMEM. */
static int index_lines(lc_entry *e, size_t size)
{
    if (memchr(e->data, '\0', size) != NULL) {
        hs_free(e->data);
        e->data = NULL;
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < size; i++)
        if (e->data[i] == '\n' || (e->data[i] == '\r' && (i + 1 == size || e->data[i + 1] != '\n')))
            n++;
    if (size > 0 && e->data[size - 1] != '\n' && e->data[size - 1] != '\r')
        n++;                          /* a last line without a terminator */
    if ((e->start = hs_malloc((n + 1) * sizeof(*e->start))) == NULL)
        return -ENOMEM;
    size_t k = 0;
    e->start[k++] = 0;
    for (size_t i = 0; i < size && k <= n; i++)
        if (e->data[i] == '\n' || (e->data[i] == '\r' && (i + 1 == size || e->data[i + 1] != '\n')))
            e->start[k++] = (uint32_t)(i + 1);
    if (k <= n)
        e->start[k] = (uint32_t)size; /* the end of the unterminated last line */
    e->nlines = n;
    e->bytes += size + (n + 1) * sizeof(*e->start);
    if (e->bytes > HS_LC_MAX_BYTES / 2) {    /* mostly line breaks: too costly to keep */
        hs_free(e->data);
        hs_free(e->start);
        e->data = NULL;
        e->start = NULL;
        e->nlines = 0;
        e->bytes = sizeof(*e) + strlen(e->name) + 1;
    }
    return 0;
}

static lc_entry *lookup_unlocked(const char *filename)
{
    size_t len = strlen(filename);
    uint64_t h = hs_hash_bytes(filename, len, 0);
    for (size_t i = 0; i < lc_n; i++)
        if (lc_entries[i].hash == h && strcmp(lc_entries[i].name, filename) == 0)
            return &lc_entries[i];

    lc_entry e = { .hash = h, .bytes = sizeof(lc_entry) + len + 1 };
    if ((e.name = hs_malloc(len + 1)) == NULL)
        return NULL;
    memcpy(e.name, filename, len + 1);
    size_t size = 0;
    int pseudo = len == 0 || (filename[0] == '<' && filename[len - 1] == '>');
    int rc = pseudo ? 1 : read_file(filename, &e.data, &size);
    if (rc < 0 || (rc == 0 && index_lines(&e, size) < 0)) {
        entry_free(&e);
        return NULL;                  /* out of memory: not remembered */
    }
    while (lc_n > 0 && (lc_n == HS_LC_MAX_ENTRIES || lc_bytes + e.bytes > HS_LC_MAX_BYTES))
        evict_one_unlocked();
    lc_entries[lc_n] = e;
    lc_bytes += e.bytes;
    return &lc_entries[lc_n++];
}

static int is_space(unsigned char c)
{
    /* Python's str.strip() whitespace within ASCII: \t\n\v\f\r, \x1c-\x1f, space. */
    return (c >= 9 && c <= 13) || (c >= 28 && c <= 32);
}

const char *hs_linecache_getline_unlocked(const char *filename, unsigned int lineno, size_t *len)
{
    *len = 0;
    lc_entry *e = lookup_unlocked(filename);
    if (e == NULL)
        return NULL;
    e->last_use = ++lc_clock;
    if (e->data == NULL || lineno == 0 || lineno > e->nlines)
        return NULL;
    const char *b = e->data + e->start[lineno - 1], *end = e->data + e->start[lineno];
    while (b < end && is_space((unsigned char)*b))
        b++;
    while (end > b && is_space((unsigned char)end[-1]))
        end--;
    *len = (size_t)(end - b);
    return *len ? b : NULL;
}

void hs_linecache_clear(void)
{
    hs_linecache_lock();
    for (size_t i = 0; i < lc_n; i++)
        entry_free(&lc_entries[i]);
    lc_n = 0;
    lc_bytes = 0;
    hs_linecache_unlock();
}
