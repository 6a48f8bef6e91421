// noharm_exc.cc - C++ exceptions thrown through frames that allocate: containers and strings
// freed by the unwinder, blocks that survive the throw, a constructor that throws inside a new
// expression (the operator delete that follows), an exception carried to another thread through
// std::exception_ptr, and the same from several threads at once.  One process, one final snapshot:
// the kept blocks are on the line marked survivor.
//
//   noharm_exc [ROUNDS]     (default 200 per thread)
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

std::mutex survivors_lock;
std::vector<char *> survivors;
size_t survivor_bytes;

struct Throws {
    std::string name;
    explicit Throws(int i) : name(200, 'n')
    {
        if (i >= 0)
            throw std::invalid_argument("Throws(" + std::to_string(i) + ")");
    }
};

[[gnu::noinline]] void level3(int i)
{
    std::vector<std::string> scratch(5, std::string(100, 's'));
    std::map<int, std::string> m;
    m[i] = std::string(64, 'm');
    char *keep = new char[300 + i % 7];                      // SITE:survivor
    {
        std::lock_guard<std::mutex> g(survivors_lock);
        survivors.push_back(keep);
        survivor_bytes += 300 + i % 7;
    }
    if (i % 3 == 0)
        throw std::runtime_error(std::string(100, 'e') + std::to_string(i));
    if (i % 3 == 1)
        throw i;
    Throws *t = new Throws(i);                               // throws: operator delete follows
    delete t;
}

[[gnu::noinline]] void level2(int i)
{
    std::unique_ptr<std::string> owned(new std::string(500, 'u'));
    level3(i);
}

int rounds(int tid, int n)
{
    int caught = 0;
    for (int i = 0; i < n; i++) {
        try {
            level2(tid * 100000 + i);
        } catch (const std::runtime_error &e) {
            caught += e.what()[0] == 'e';
        } catch (int) {
            caught++;
        } catch (const std::invalid_argument &) {
            caught++;
        }
    }
    return caught;
}

}  // namespace

int main(int argc, char **argv)
{
    int n = argc > 1 ? std::atoi(argv[1]) : 200;
    int caught = rounds(0, n);
    std::vector<std::thread> threads;
    std::vector<int> counts(4);
    for (int t = 1; t <= 4; t++)
        threads.emplace_back([t, n, &counts] { counts[t - 1] = rounds(t, n); });
    for (auto &th : threads)
        th.join();
    for (int c : counts)
        caught += c;

    std::exception_ptr carried;
    std::thread([&carried] {
        try {
            level2(2);
        } catch (...) {
            carried = std::current_exception();
        }
    }).join();
    try {
        std::rethrow_exception(carried);
    } catch (const std::invalid_argument &e) {
        caught++;
    }
    std::printf("caught %d exceptions; kept %zu blocks, %zu bytes\n", caught, survivors.size(),
                survivor_bytes);
    return 0;
}
