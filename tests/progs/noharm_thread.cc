// noharm_thread.cc - std::thread: threads that fill thread_local containers (freed by the C++
// runtime as each thread ends), hand strings to each other through a mutex-guarded queue, and
// leave one block each in a shared vector.  The kept blocks are on the line marked kept.
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

thread_local std::vector<std::string> local_strings;
std::mutex lock;
std::condition_variable cv;
std::deque<std::string *> queue;
std::vector<char *> kept;
int consumed;

void producer(int id, int n)
{
    for (int i = 0; i < n; i++) {
        local_strings.emplace_back(50 + i % 40, 'a' + id);
        std::lock_guard<std::mutex> g(lock);
        queue.push_back(new std::string(80, 'q'));
        cv.notify_one();
    }
    std::lock_guard<std::mutex> g(lock);
    kept.push_back(new char[1000 + id]);                   // SITE:kept
}

void consumer(int total)
{
    for (int i = 0; i < total; i++) {
        std::unique_lock<std::mutex> g(lock);
        cv.wait(g, [] { return !queue.empty(); });
        delete queue.front();
        queue.pop_front();
        consumed++;
    }
}

}  // namespace

int main()
{
    const int producers = 8, n = 300;
    std::thread c(consumer, producers * n);
    std::vector<std::thread> ps;
    for (int i = 0; i < producers; i++)
        ps.emplace_back(producer, i, n);
    for (auto &t : ps)
        t.join();
    c.join();
    size_t bytes = 0;
    for (int i = 0; i < producers; i++)
        bytes += 1000 + i;
    std::printf("consumed %d; kept %zu blocks, %zu bytes\n", consumed, kept.size(), bytes);
    return 0;
}
