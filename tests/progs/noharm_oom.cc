// noharm_oom.cc - C++ allocation failure, run under `ulimit -v`: operator new throws
// std::bad_alloc, new (std::nothrow) gives nullptr, a vector grows until it cannot, and the
// new-handler is called as the standard says (once per failed attempt, before bad_alloc): one
// that frees a reserve lets the allocation succeed, one that throws is called once.  Then the
// program frees everything and goes on.
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

namespace {

volatile size_t huge = size_t(1) << 40;      // 1 TiB: more than any limit here
char *reserve;
char *volatile kept;                          // so that the compiler keeps the last block
int handler_calls;

void release_reserve()
{
    handler_calls++;
    delete[] reserve;
    reserve = nullptr;
    std::set_new_handler(nullptr);
}

void throwing_handler()
{
    handler_calls++;
    throw std::bad_alloc();
}

}  // namespace

int main()
{
    try {
        char *p = new char[huge];
        std::printf("new char[1 TiB]: %p?\n", static_cast<void *>(p));
    } catch (const std::bad_alloc &) {
        std::printf("new char[1 TiB]: std::bad_alloc\n");
    }
    char *q = new (std::nothrow) char[huge];
    std::printf("new (nothrow) char[1 TiB]: %s\n", q == nullptr ? "nullptr" : "a block");

    std::vector<std::vector<char> *> hoard;
    hoard.reserve(100000);
    try {
        for (;;)
            hoard.push_back(new std::vector<char>(1 << 20));   // SITE:hoard
    } catch (const std::bad_alloc &) {
        std::printf("hoarding: std::bad_alloc after some MiB\n");
    }

    // Near the limit: a handler that frees a reserve makes the allocation succeed.
    for (auto *v : hoard)
        delete v;
    hoard.clear();
    reserve = new char[64 << 20];                               // SITE:reserve
    std::vector<char *> filler;
    filler.reserve(100000);
    try {
        for (;;)
            filler.push_back(new char[1 << 20]);
    } catch (const std::bad_alloc &) {
    }
    handler_calls = 0;
    std::set_new_handler(release_reserve);
    char *rescued = nullptr;
    try {
        rescued = new char[32 << 20];                           // SITE:rescued
    } catch (const std::bad_alloc &) {
    }
    std::printf("with a releasing new-handler: %s, handler called %d time(s)\n",
                rescued != nullptr ? "a block" : "std::bad_alloc", handler_calls);

    handler_calls = 0;
    std::set_new_handler(throwing_handler);
    try {
        char *r = new char[huge];
        std::printf("with a throwing new-handler: %p?\n", static_cast<void *>(r));
    } catch (const std::bad_alloc &) {
        std::printf("with a throwing new-handler: std::bad_alloc, handler called %d time(s)\n",
                    handler_calls);
    }
    std::set_new_handler(nullptr);

    for (char *f : filler)
        delete[] f;
    delete[] rescued;
    kept = new char[4000];                                      // SITE:after
    std::printf("after freeing: new works\n");
    return 0;
}
