// cxx.cc - the C++ operators and allocation-site trimming on a live C++ program: requested sizes
// (new char[0] is 0 bytes), aligned and nothrow new, standard containers attributed to the user's
// line, and exceptions thrown through allocating frames.
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "live.h"

static size_t traced(void)
{
    size_t c, p;
    hs_get_traced_memory(&c, &p);
    return c;
}

static void site(const void *p, int line)
{
    hs_traceback *tb = hs_get_object_traceback(p);
    if (tb == NULL) {
        fprintf(stderr, "cxx.cc: no traceback for the block of line %d\n", line);
        exit(1);
    }
    if (tb->nframes < 1 || strcmp(live_base(tb->frames[0].filename), "cxx.cc") != 0 ||
        tb->frames[0].lineno != (unsigned)line) {
        fprintf(stderr, "cxx.cc: block of line %d attributed to %s:%u (%s)\n", line,
                tb->frames[0].filename, tb->frames[0].lineno, tb->frames[0].function);
        exit(1);
    }
    hs_traceback_free(tb);
}

struct alignas(64) Wide {
    char bytes[100];
};

// Sums, over a snapshot, the blocks whose allocation site is cxx.cc:line.
static size_t bytes_at(hs_snapshot *s, int line, size_t *count)
{
    size_t total = 0;
    *count = 0;
    for (size_t i = 0; i < hs_snapshot_count(s); i++) {
        unsigned dom;
        size_t size;
        const hs_traceback *tb;
        hs_snapshot_get(s, i, &dom, &size, &tb);
        if (tb->nframes && strcmp(live_base(tb->frames[0].filename), "cxx.cc") == 0 &&
            tb->frames[0].lineno == (unsigned)line) {
            total += size;
            ++*count;
        }
    }
    return total;
}

__attribute__((noinline)) static void thrower(int depth)
{
    std::string *s = new std::string(100, 'y');   // freed below before the throw
    delete s;
    if (depth == 0)
        throw std::runtime_error("deep enough, with a long message to allocate");
    std::vector<int> v(100);
    thrower(depth - 1);
}

int main()
{
    CHECK_EQ(hs_start(4), 0);
    size_t base = traced();

    int l0 = __LINE__; char *zero = new char[0];
    CHECK_EQ(traced() - base, 0);
    site(zero, l0);
    int l1 = __LINE__; int *ints = new int[10];
    CHECK_EQ(traced() - base, 40);
    site(ints, l1);
    int l2 = __LINE__; Wide *w = new Wide;
    CHECK_EQ(traced() - base, 40 + sizeof(Wide));
    CHECK_EQ((uintptr_t)w % 64, 0);
    site(w, l2);
    int l3 = __LINE__; double *d = new (std::nothrow) double;
    CHECK_EQ(traced() - base, 40 + sizeof(Wide) + sizeof(double));
    site(d, l3);
    delete d;
    delete w;
    delete[] ints;
    delete[] zero;
    CHECK_EQ(traced() - base, 0);

    // Aligned new of sizes around 8 MiB (the tracer's packed entries hold sizes below it):
    // libstdc++ rounds the size up for aligned_alloc, the size asked for is the one recorded,
    // and the delete leaves nothing behind.
    const size_t big[] = { (8u << 20) - 1, 8u << 20, (8u << 20) + 1, (16u << 20) - 1 };
    for (size_t b : big) {
        void *p = ::operator new(b, std::align_val_t(64));
        CHECK_EQ(traced() - base, b);
        ::operator delete(p, std::align_val_t(64));
        CHECK_EQ(traced() - base, 0);
    }

    // Standard containers: the site is the user's line, not libstdc++ or the headers.
    std::map<int, std::string> m;
    int lmap = __LINE__ + 2;
    for (int i = 0; i < 50; i++)
        m[i] = std::string(200, 'x');
    std::vector<std::string> vec;
    int lvec = __LINE__ + 2;
    for (int i = 0; i < 20; i++)
        vec.push_back("a string long enough to be on the heap, not in the SSO buffer");
    hs_snapshot *s = hs_take_snapshot();
    CHECK(s != NULL);
    size_t n;
    size_t bytes = bytes_at(s, lmap, &n);
    // Each m[i] = std::string(200, 'x') allocates the string (201 bytes) and, via operator[],
    // a map node: both must land on that line.
    CHECK(n >= 100);
    CHECK(bytes >= 50 * 201);
    bytes = bytes_at(s, lvec, &n);
    CHECK(n >= 20);
    hs_snapshot_free(s);

    // Exceptions through allocating frames: tracing goes on, nothing is left behind.
    size_t before = traced();
    for (int k = 0; k < 20; k++) {
        try {
            thrower(5);
        } catch (const std::exception &e) {
            CHECK(strstr(e.what(), "deep enough") != NULL);
        }
    }
    CHECK_EQ(traced(), before);

    // std::thread: a thread's allocations are traced and freed on another thread.
    std::string *shared = nullptr;
    int lthr = __LINE__ + 1;
    std::thread t([&] { shared = new std::string(300, 'z'); });
    t.join();
    site(shared, lthr);
    delete shared;

    m.clear();
    vec.clear();
    vec.shrink_to_fit();
    hs_stop();
    printf("cxx: ok\n");
    return 0;
}
