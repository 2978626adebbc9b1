// Promise: malloc/free work at every stage of a process's life, even before main and after
// the allocator's own teardown may have started: in __attribute__((constructor)) and
// ((destructor)) functions, atexit handlers, static C++ object constructors/destructors,
// C++ thread_local destructors (registered through __cxa_thread_atexit_impl, which callocs), and
// pthread key destructors (with more than 32 keys, so that pthread_setspecific callocs).
// Each stage writes a marker line on stdout; the runner checks them against ctor_dtor_atexit.expect.
#include <pthread.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "hk_test.h"

static void mark(const char *s) {
    if (write(1, s, strlen(s)) < 0) _exit(9);
    if (write(1, "\n", 1) < 0) _exit(9);
}
static void die(const char *stage, const char *what) {
    char buf[256];
    snprintf(buf, sizeof buf, "FAIL in %s: %s\n", stage, what);
    if (write(2, buf, strlen(buf)) < 0) _exit(9);
    _exit(1);
}

// Allocate, write, verify and free a spread of sizes; also keep one block alive across stages.
static void churn(const char *stage, int rounds) {
    void *ps[64];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 64; i++) {
            size_t s = (size_t)1 << (i % 21);  // 1 B .. 1 MiB
            ps[i] = (i % 3 == 0) ? calloc(1, s) : malloc(s);
            if (!ps[i]) die(stage, "allocation returned NULL");
            if (!HK_ALIGNED(ps[i], 16)) die(stage, "misaligned block");
            hk_fill(ps[i], s, (uint64_t)i);
        }
        for (int i = 0; i < 64; i++) {
            size_t s = (size_t)1 << (i % 21);
            if (hk_check(ps[i], s, (uint64_t)i) != SIZE_MAX) die(stage, "block corrupted");
            ps[i] = realloc(ps[i], s * 2 + 1);
            if (!ps[i]) die(stage, "realloc returned NULL");
            if (hk_check(ps[i], s, (uint64_t)i) != SIZE_MAX) die(stage, "realloc lost contents");
            free(ps[i]);
        }
    }
}

static void *g_block;  // made in the constructor, freed in the destructor
static const size_t G_SIZE = 100000;
static void *g_thread_block;  // made by a thread that exits, freed in an atexit handler
static const size_t T_SIZE = 777;

__attribute__((constructor)) static void early_ctor() {
    churn("constructor", 2);
    g_block = malloc(G_SIZE);
    if (!g_block) die("constructor", "malloc returned NULL");
    hk_fill(g_block, G_SIZE, 42);
    mark("ctor: ok");
}

__attribute__((destructor)) static void late_dtor() {
    churn("destructor", 2);
    if (hk_check(g_block, G_SIZE, 42) != SIZE_MAX) die("destructor", "block from the constructor corrupted");
    free(g_block);
    void *p = malloc(12345);  // allocation this late must still work
    if (!p) die("destructor", "malloc returned NULL");
    memset(p, 1, 12345);
    free(p);
    mark("dtor: ok");
}

static void at_exit_handler() {
    churn("atexit", 2);
    if (hk_check(g_block, G_SIZE, 42) != SIZE_MAX) die("atexit", "block from the constructor corrupted");
    if (!g_thread_block || hk_check(g_thread_block, T_SIZE, 7) != SIZE_MAX)
        die("atexit", "block left by a dead thread corrupted");
    free(g_thread_block);
    g_thread_block = nullptr;
    mark("atexit: ok");
}

struct StaticObj {
    std::vector<std::string> v;
    StaticObj() {
        for (int i = 0; i < 200; i++) v.push_back(std::string(i % 50 + 20, (char)('a' + i % 26)));
        mark("static-ctor: ok");
    }
    ~StaticObj() {
        size_t total = 0;
        for (auto &s : v) total += s.size();
        if (total != 200 * 20 + 4 * (49 * 50 / 2)) die("static destructor", "vector of strings corrupted");
        std::vector<std::string>().swap(v);
        std::string tmp;
        for (int i = 0; i < 1000; i++) tmp += "xyz";
        if (tmp.size() != 3000) die("static destructor", "string building failed");
        churn("static destructor", 1);
        mark("static-dtor: ok");
    }
};
static StaticObj g_static;

struct TlsObj {
    std::string name;
    void *block;
    explicit TlsObj(const char *n) : name(n) {
        block = malloc(4096);
        if (!block) die("thread_local constructor", "malloc returned NULL");
        hk_fill(block, 4096, 99);
    }
    ~TlsObj() {
        if (hk_check(block, 4096, 99) != SIZE_MAX) die("thread_local destructor", "block corrupted");
        free(block);
        churn("thread_local destructor", 1);
        std::string msg = "tls-dtor(" + name + "): ok";
        mark(msg.c_str());
    }
};

static pthread_key_t keys[40];
static int key_dtor_runs;
static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;

static void key_dtor(void *v) {
    if (hk_check(v, 333, 5) != SIZE_MAX) die("pthread key destructor", "value block corrupted");
    free(v);
    void *p = malloc(2000);
    if (!p) die("pthread key destructor", "malloc returned NULL");
    memset(p, 3, 2000);
    free(p);
    pthread_mutex_lock(&key_lock);
    key_dtor_runs++;
    pthread_mutex_unlock(&key_lock);
}

static void *thread_body(void *) {
    static thread_local TlsObj tobj("thread");
    (void)tobj.name.size();
    for (int k = 0; k < 40; k++) {
        void *v = malloc(333);
        if (!v) die("thread", "malloc returned NULL");
        hk_fill(v, 333, 5);
        if (pthread_setspecific(keys[k], v) != 0) die("thread", "pthread_setspecific failed");
    }
    g_thread_block = malloc(T_SIZE);
    if (!g_thread_block) die("thread", "malloc returned NULL");
    hk_fill(g_thread_block, T_SIZE, 7);
    // the block from main's constructor can be freed from here too
    return nullptr;
}

int main() {
    static thread_local TlsObj main_tobj("main");
    (void)main_tobj.name.size();
    if (atexit(at_exit_handler) != 0) die("main", "atexit failed");
    for (int k = 0; k < 40; k++)
        if (pthread_key_create(&keys[k], key_dtor) != 0) die("main", "pthread_key_create failed");
    pthread_t t;
    if (pthread_create(&t, nullptr, thread_body, nullptr) != 0) die("main", "pthread_create failed");
    pthread_join(t, nullptr);
    if (key_dtor_runs != 40) die("main", "pthread key destructors did not all run");
    mark("key-dtor: ok");
    // std::thread with its own thread_local (runs through the same path)
    std::thread st([] {
        static thread_local TlsObj o("std::thread");
        (void)o.name.size();
    });
    st.join();
    churn("main", 3);
    mark("main: ok");
    return 0;
}
