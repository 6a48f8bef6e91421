// leak_cxx.cc - a C++ service loop for the `leaks` verdict: a std::map that is never pruned (the
// leak, attributed to the user's line, not to libstdc++), an unordered_map cache that fills and
// plateaus, a vector that grows to a bound, and per-request strings (churn).
//   leak_cxx ITERATIONS DELAY_MS
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

static std::map<int, std::string> history;          // never pruned
static std::unordered_map<int, std::string> cache;  // at most 40 entries
static std::vector<long> window;                     // grows to 2000 elements, then stays

static void handle(int i)
{
    std::string request(300 + i % 200, 'r');         // churn
    history[i] = std::string(256, 'h');              // SITE:leak
    if (cache.size() < 40)
        cache[i % 40] = std::string(1000, 'c');      // SITE:cache
    if (window.size() < 2000)
        window.push_back(i);                         // SITE:window
    if (request.size() == 1)
        std::puts("never");
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? std::atoi(argv[1]) : 300;
    int delay = argc > 2 ? std::atoi(argv[2]) : 10;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 10; k++)
            handle(i * 10 + k);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    }
    std::printf("handled %d\n", n * 10);
    return 0;
}
