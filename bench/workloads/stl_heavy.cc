// stl_heavy.cc - a compile-time workload for bench/run.py: `clang++ -O1 -c` of this file takes
// about 2 s and allocates heavily inside the compiler (C++14; no C++17 needed).  One regex type
// is instantiated (most of the time goes there: about 2 s for regex_match alone at -O1), plus
// map, unordered_map, function, sstream, set, shared_ptr and algorithms over one record type.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace bench {

template <int N> struct Record {
    std::string name;
    long value = 0;
    std::vector<double> samples;
    bool operator<(const Record &o) const { return std::tie(name, value) < std::tie(o.name, o.value); }
};

template <int N> struct Unit {
    using Rec = Record<N>;
    std::map<std::string, std::vector<Rec>> by_name;
    std::unordered_map<long, std::function<long(const Rec &)>> scorers;
    std::set<Rec> ordered;
    std::multimap<long, std::shared_ptr<Rec>> by_value;

    void load(const std::string &text, const std::regex &line_re)
    {
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line)) {
            std::smatch m;
            if (!std::regex_match(line, m, line_re))
                continue;
            Rec r;
            r.name = m[1].str();
            r.value = std::stol(m[2].str()) + N;
            std::istringstream nums(m[3].str());
            std::string tok;
            while (std::getline(nums, tok, ','))
                if (!tok.empty())
                    r.samples.push_back(std::stod(tok));
            by_value.emplace(r.value, std::make_shared<Rec>(r));
            ordered.insert(r);
            by_name[r.name].push_back(std::move(r));
        }
        scorers[0] = [](const Rec &r) { return r.value; };
        scorers[1] = [](const Rec &r) { return static_cast<long>(r.samples.size()); };
        scorers[2] = [](const Rec &r) {
            return static_cast<long>(std::accumulate(r.samples.begin(), r.samples.end(), 0.0));
        };
    }

    std::string report() const
    {
        std::ostringstream out;
        std::unordered_map<std::string, long> seen;
        for (const auto &entry : by_name) {
            std::vector<long> scores;
            for (const auto &r : entry.second)
                for (const auto &s : scorers)
                    scores.push_back(s.second(r) * (s.first + 1));
            std::sort(scores.begin(), scores.end(), std::greater<long>());
            auto last = std::unique(scores.begin(), scores.end());
            out << entry.first << ':' << std::distance(scores.begin(), last) << '\n';
            ++seen[entry.first.substr(0, 1)];
        }
        out << seen.size() << ' ' << ordered.size() << ' ' << by_value.size();
        return out.str();
    }
};

}  // namespace bench

std::string stl_heavy_entry(const std::string &text)
{
    static const std::regex line_re(
        R"(^\s*([A-Za-z_]\w*)\s*=\s*(-?\d+)(?:\s*;\s*([\d.,\s]+))?\s*$)");
    bench::Unit<0> unit;
    unit.load(text, line_re);
    return unit.report();
}
