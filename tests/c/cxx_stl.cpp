// Promise: ordinary C++ works on top of the allocator: std::vector, std::string, std::map,
// std::unordered_map, std::shared_ptr, exceptions (allocated with malloc by the C++ runtime),
// std::thread, and over-aligned new/delete (alignas(64), alignas(4096), which libstdc++ routes to
// aligned_alloc and free). Results are checked against values computed independently.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "hk_test.h"

struct alignas(64) Line {
    uint64_t v[8];
};
struct alignas(4096) Page {
    unsigned char b[4096];
};
struct alignas(128) Odd {
    char c[200];  // sizeof 256, alignment 128
};

static void vectors() {
    std::vector<uint64_t> v;
    for (uint64_t i = 0; i < 1000000; i++) v.push_back(i * i % 1000003);
    uint64_t sum = std::accumulate(v.begin(), v.end(), (uint64_t)0);
    uint64_t expect = 0;
    for (uint64_t i = 0; i < 1000000; i++) expect += i * i % 1000003;
    CHECK(sum == expect, "vector sum %llu != %llu", (unsigned long long)sum, (unsigned long long)expect);
    std::sort(v.begin(), v.end());
    CHECK(std::is_sorted(v.begin(), v.end()), "sort failed");
    v.resize(10);
    v.shrink_to_fit();
    CHECK(v.size() == 10, "resize failed");
    std::vector<std::vector<int>> vv(1000);
    for (int i = 0; i < 1000; i++) vv[i].assign(i % 100, i);
    long total = 0;
    for (auto &x : vv) total += std::accumulate(x.begin(), x.end(), 0L);
    long expect2 = 0;
    for (int i = 0; i < 1000; i++) expect2 += (long)(i % 100) * i;
    CHECK(total == expect2, "nested vectors %ld != %ld", total, expect2);
}

static void strings() {
    std::string s;
    for (int i = 0; i < 100000; i++) s += std::to_string(i);
    size_t expect = 0;
    for (int i = 0; i < 100000; i++) expect += i < 10 ? 1 : i < 100 ? 2 : i < 1000 ? 3 : i < 10000 ? 4 : 5;
    CHECK(s.size() == expect, "string length %zu != %zu", s.size(), expect);
    std::vector<std::string> parts;
    for (int i = 0; i < 20000; i++) parts.push_back(std::string((size_t)(i % 300), (char)('A' + i % 26)));
    std::sort(parts.begin(), parts.end());
    CHECK(std::is_sorted(parts.begin(), parts.end()), "string sort failed");
    std::string joined;
    for (auto &p : parts) joined += p;
    size_t jl = 0;
    for (int i = 0; i < 20000; i++) jl += (size_t)(i % 300);
    CHECK(joined.size() == jl, "joined length %zu != %zu", joined.size(), jl);
}

static void maps() {
    std::map<std::string, int> m;
    std::unordered_map<uint64_t, std::string> um;
    for (int i = 0; i < 50000; i++) {
        m["key" + std::to_string(i)] = i;
        um[(uint64_t)i * 2654435761u] = std::to_string(i);
    }
    for (int i = 0; i < 50000; i += 2) {
        m.erase("key" + std::to_string(i));
        um.erase((uint64_t)i * 2654435761u);
    }
    CHECK(m.size() == 25000 && um.size() == 25000, "map sizes %zu %zu", m.size(), um.size());
    long s1 = 0, s2 = 0;
    for (auto &kv : m) s1 += kv.second;
    for (auto &kv : um) s2 += std::stol(kv.second);
    long expect = 0;
    for (int i = 1; i < 50000; i += 2) expect += i;
    CHECK(s1 == expect && s2 == expect, "map sums %ld %ld != %ld", s1, s2, expect);
    um.rehash(1 << 18);
    CHECK(um.count(2654435761u) == 1, "lookup after rehash failed");
}

static void aligned_new() {
    std::vector<Line *> lines;
    std::vector<Page *> pages;
    for (int i = 0; i < 2000; i++) {
        Line *l = new Line();
        CHECK(HK_ALIGNED(l, 64), "new alignas(64) = %p misaligned", (void *)l);
        for (int k = 0; k < 8; k++) l->v[k] = (uint64_t)i * 8 + (uint64_t)k;
        lines.push_back(l);
        if (i % 10 == 0) {
            Page *p = new Page();
            CHECK(HK_ALIGNED(p, 4096), "new alignas(4096) = %p misaligned", (void *)p);
            p->b[0] = (unsigned char)i;
            p->b[4095] = (unsigned char)~i;
            pages.push_back(p);
        }
    }
    for (int i = 0; i < 2000; i++)
        for (int k = 0; k < 8; k++)
            CHECK(lines[i]->v[k] == (uint64_t)i * 8 + (uint64_t)k, "alignas(64) object %d corrupted", i);
    for (size_t i = 0; i < pages.size(); i++)
        CHECK(pages[i]->b[0] == (unsigned char)(i * 10) && pages[i]->b[4095] == (unsigned char)~(i * 10),
              "alignas(4096) object %zu corrupted", i);
    for (auto *l : lines) delete l;
    for (auto *p : pages) delete p;
    // arrays and vectors of over-aligned types
    Line *la = new Line[1000];
    CHECK(HK_ALIGNED(la, 64), "new Line[1000] misaligned");
    delete[] la;
    Page *pa = new Page[17];
    CHECK(HK_ALIGNED(pa, 4096), "new Page[17] misaligned");
    delete[] pa;
    std::vector<Odd> ov(333);
    CHECK(HK_ALIGNED(ov.data(), 128), "vector<alignas(128)> misaligned");
    ov.resize(5000);
    CHECK(HK_ALIGNED(ov.data(), 128), "vector<alignas(128)> misaligned after growth");
    auto sp = std::make_shared<Page>();
    CHECK(HK_ALIGNED(sp.get(), 4096), "make_shared<alignas(4096)> misaligned: %p", (void *)sp.get());
    auto up = std::make_unique<Line[]>(100);
    CHECK(HK_ALIGNED(up.get(), 64), "make_unique<Line[]> misaligned");
    // nothrow and sized/aligned operator new directly
    void *raw = ::operator new(1000, std::align_val_t(256));
    CHECK(HK_ALIGNED(raw, 256), "operator new(1000, align 256) misaligned");
    ::operator delete(raw, std::align_val_t(256));
    void *nt = ::operator new(100, std::nothrow);
    CHECK(nt != nullptr, "operator new(nothrow) failed");
    ::operator delete(nt);
}

static void exceptions() {
    int caught = 0;
    for (int i = 0; i < 10000; i++) {
        try {
            if (i % 2) throw std::runtime_error("error number " + std::to_string(i));
            throw std::vector<int>(100, i);
        } catch (const std::runtime_error &e) {
            caught += std::string(e.what()).size() > 10;
        } catch (const std::vector<int> &v) {
            caught += v[99] == i;
        }
    }
    CHECK(caught == 10000, "caught %d of 10000 exceptions", caught);
    bool bad_alloc = false;
    try {
        std::vector<char> huge;
        huge.reserve(SIZE_MAX / 4);
    } catch (const std::bad_alloc &) {
        bad_alloc = true;
    } catch (const std::length_error &) {
        bad_alloc = true;  // libstdc++ may reject it before allocating
    }
    CHECK(bad_alloc, "huge reserve did not throw");
    bad_alloc = false;
    try {
        char *p = new char[hk_opaque_size((size_t)1 << 62)];
        p = (char *)hk_opaque(p);  // keep GCC from eliding the new/delete pair
        p[0] = 1;
        delete[] p;
    } catch (const std::bad_alloc &) {
        bad_alloc = true;
    }
    CHECK(bad_alloc, "new char[2^62] did not throw std::bad_alloc");
}

static void threads() {
    std::vector<std::thread> ts;
    std::vector<long> results(8);
    for (int t = 0; t < 8; t++)
        ts.emplace_back([t, &results] {
            std::map<int, std::string> m;
            for (int i = 0; i < 20000; i++) m[i] = std::to_string(i * t);
            long s = 0;
            for (auto &kv : m) s += (long)kv.second.size();
            results[t] = s;
        });
    for (auto &t : ts) t.join();
    for (int t = 0; t < 8; t++) {
        long expect = 0;
        for (int i = 0; i < 20000; i++) expect += (long)std::to_string(i * t).size();
        CHECK(results[t] == expect, "thread %d: %ld != %ld", t, results[t], expect);
    }
}

int main() {
    vectors();
    strings();
    maps();
    aligned_new();
    exceptions();
    threads();
    return hk_done("cxx_stl");
}
