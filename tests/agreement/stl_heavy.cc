// stl_heavy.cc - the C++ file that agree.py compiles with `clang++ -O1 -c`: standard containers,
// algorithms and smart pointers, enough templates to make the compiler allocate a lot.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace agreement {

struct Item {
    std::string name;
    std::vector<int> values;
    std::shared_ptr<const std::string> tag;
};

std::map<std::string, std::vector<int>> group(const std::vector<Item> &items)
{
    std::map<std::string, std::vector<int>> out;
    for (const Item &it : items)
        out[it.name].insert(out[it.name].end(), it.values.begin(), it.values.end());
    for (auto &kv : out)
        std::sort(kv.second.begin(), kv.second.end());
    return out;
}

std::unordered_map<int, std::set<std::string>> index_by_sum(const std::vector<Item> &items)
{
    std::unordered_map<int, std::set<std::string>> out;
    for (const Item &it : items)
        out[std::accumulate(it.values.begin(), it.values.end(), 0)].insert(it.name);
    return out;
}

std::vector<Item> make(int n)
{
    std::vector<Item> v;
    auto tag = std::make_shared<const std::string>("tag");
    for (int i = 0; i < n; i++)
        v.push_back(Item{std::to_string(i % 7), {i, i * 2, i * 3}, tag});
    return v;
}

int run(int n, const std::function<bool(int)> &keep)
{
    auto items = make(n);
    auto g = group(items);
    auto idx = index_by_sum(items);
    int total = 0;
    for (const auto &kv : g)
        total += static_cast<int>(std::count_if(kv.second.begin(), kv.second.end(), keep));
    return total + static_cast<int>(idx.size());
}

} // namespace agreement

int agreement_entry(int n)
{
    return agreement::run(n, [](int x) { return x % 2 == 0; });
}
