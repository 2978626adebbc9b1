// STL workload for tests/run_real_programs.sh: compiled with g++ (with and without the
// preloaded allocator: the object files must be identical), then run (with and without: the
// output must be identical). Deterministic output only.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

uint64_t fnv(const std::string &s, uint64_t h = 1469598103934665603ULL) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    return h;
}

struct Lcg {
    uint64_t s;
    explicit Lcg(uint64_t seed) : s(seed) {}
    uint64_t next() { return s = s * 6364136223846793005ULL + 1442695040888963407ULL, s >> 17; }
};

std::string words_section() {
    Lcg r(1);
    std::vector<std::string> words;
    for (int i = 0; i < 200000; i++) {
        std::string w;
        int len = 1 + (int)(r.next() % 12);
        for (int k = 0; k < len; k++) w += (char)('a' + r.next() % 26);
        words.push_back(std::move(w));
    }
    std::map<std::string, int> freq;
    for (auto &w : words) freq[w.substr(0, 3)]++;
    std::vector<std::pair<int, std::string>> top;
    for (auto &kv : freq) top.emplace_back(-kv.second, kv.first);
    std::sort(top.begin(), top.end());
    std::ostringstream os;
    os << "distinct prefixes " << freq.size() << "; top:";
    for (int i = 0; i < 5; i++) os << ' ' << top[i].second << '=' << -top[i].first;
    std::stable_sort(words.begin(), words.end(),
                     [](const std::string &a, const std::string &b) { return a.size() < b.size(); });
    uint64_t h = 0;
    for (auto &w : words) h = fnv(w, h);
    os << "; hash " << std::hex << h;
    return os.str();
}

std::string containers_section() {
    std::unordered_map<int, std::vector<int>> um;
    std::set<int> s;
    std::list<std::string> l;
    Lcg r(2);
    for (int i = 0; i < 300000; i++) {
        int k = (int)(r.next() % 20000);
        um[k].push_back(i);
        if (i % 3 == 0) s.insert(k * 7 % 100003);
        if (i % 100 == 0) l.push_back(std::to_string(i));
        if (i % 5 == 0) um.erase((int)(r.next() % 20000));
    }
    long total = 0;
    std::vector<int> keys;
    for (auto &kv : um) keys.push_back(kv.first);
    std::sort(keys.begin(), keys.end());
    for (int k : keys) total += (long)um[k].size() * k;
    l.sort();
    std::ostringstream os;
    os << "keys " << keys.size() << " total " << total << " set " << s.size() << " first " << *s.begin()
       << " list " << l.size() << ' ' << l.front() << ' ' << l.back();
    return os.str();
}

struct Shape {
    virtual ~Shape() = default;
    virtual double area() const = 0;
};
struct Sq : Shape {
    double a;
    explicit Sq(double x) : a(x) {}
    double area() const override { return a * a; }
};
struct Rect : Shape {
    double a, b;
    Rect(double x, double y) : a(x), b(y) {}
    double area() const override { return a * b; }
};

std::string objects_section() {
    std::vector<std::unique_ptr<Shape>> v;
    for (int i = 0; i < 100000; i++) {
        if (i % 2) v.push_back(std::make_unique<Sq>(i % 100));
        else v.push_back(std::make_unique<Rect>(i % 10, i % 7));
    }
    double sum = 0;
    for (auto &p : v) sum += p->area();
    std::vector<std::shared_ptr<std::string>> shared;
    for (int i = 0; i < 50000; i++) shared.push_back(std::make_shared<std::string>(i % 50, 'x'));
    size_t chars = 0;
    for (auto &p : shared) chars += p->size();
    std::ostringstream os;
    os << std::fixed << std::setprecision(1) << "area " << sum << " chars " << chars;
    return os.str();
}

std::string threads_section() {
    std::vector<std::thread> ts;
    std::vector<uint64_t> out(4);
    for (int t = 0; t < 4; t++)
        ts.emplace_back([t, &out] {
            std::map<int, std::string> m;
            Lcg r(100 + t);
            for (int i = 0; i < 50000; i++) m[(int)(r.next() % 30000)] += std::to_string(i % 97);
            uint64_t h = 0;
            for (auto &kv : m) h = fnv(kv.second, h + (uint64_t)kv.first);
            out[t] = h;
        });
    for (auto &t : ts) t.join();
    std::ostringstream os;
    os << std::hex;
    for (auto h : out) os << h << ' ';
    return os.str();
}

}  // namespace

int main() {
    std::cout << "words: " << words_section() << '\n';
    std::cout << "containers: " << containers_section() << '\n';
    std::cout << "objects: " << objects_section() << '\n';
    std::cout << "threads: " << threads_section() << '\n';
    return 0;
}
