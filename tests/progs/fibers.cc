// fibers.cc - boost.context fibers that allocate on their own stacks, the way boost.asio's
// stackful coroutines, boost.fiber and folly's fibers run their tasks.  A fiber's first function
// returns into make_fcontext's `finish`, for which Debian's boost 1.74 has no unwind information.
// Each fiber allocates at several depths, keeps some blocks and switches back to main.
//     usage: fibers FIBERS
#include <boost/context/continuation.hpp>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace ctx = boost::context;

__attribute__((noinline)) static void *work(int depth, size_t n)
{
    if (depth == 0)
        return std::malloc(n);
    void *p = work(depth - 1, n);
    __asm__ volatile("" ::: "memory");       // no tail call
    return p;
}

int main(int argc, char **argv)
{
    int fibers = argc > 1 ? std::atoi(argv[1]) : 100;
    std::vector<void *> kept;
    long switches = 0;
    for (int f = 0; f < fibers; f++) {
        ctx::continuation c = ctx::callcc([&](ctx::continuation &&main_ctx) {
            for (int i = 0; i < 20; i++) {
                void *p = work(i % 8, 16 + (size_t)i);
                if (i % 5 == 0)
                    kept.push_back(p);
                else
                    std::free(p);
                main_ctx = main_ctx.resume();
            }
            return std::move(main_ctx);
        });
        for (; c; c = c.resume())
            switches++;
    }
    for (void *p : kept)
        std::free(p);
    std::printf("%ld switches, %zu blocks kept\n", switches, kept.size());
    return 0;
}
