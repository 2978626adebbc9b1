/* Promise: ld.so's own allocations go through the allocator without recursion or corruption:
 * dlopen/dlclose of a library with dynamic TLS (ld.so mallocs each thread's TLS block on first
 * access through __tls_get_addr, and frees it at thread exit), used from 32 threads at once,
 * for several dlopen/dlclose rounds, while the threads also malloc and free. */
#include "hk_test.h" /* first: defines _GNU_SOURCE */

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>

#define NT 32
#define ROUNDS 6

typedef int (*tls_fn)(uint64_t);
static tls_fn touch, verify;

static void *body(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    void *before = malloc(1000);
    int rc = touch(id); /* first access: ld.so allocates this thread's TLS block */
    CHECK(rc == 0, "thread %llu: fresh dynamic TLS wrong (code %d)", (unsigned long long)id, rc);
    void *ps[100];
    for (int i = 0; i < 100; i++) {
        ps[i] = malloc((size_t)(i * 37 % 5000) + 1);
        REQUIRE(ps[i] != NULL, "malloc failed");
        memset(ps[i], (int)id, (size_t)(i * 37 % 5000) + 1);
    }
    rc = verify(id);
    CHECK(rc == 0, "thread %llu: dynamic TLS damaged by mallocs (code %d)", (unsigned long long)id, rc);
    for (int i = 0; i < 100; i++) free(ps[i]);
    free(before);
    return NULL;
}

int main(void) {
    char exe[PATH_MAX], lib[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    REQUIRE(n > 0, "readlink(/proc/self/exe) failed");
    exe[n] = 0;
    snprintf(lib, sizeof lib, "%s/libhk_tls.so", dirname(exe));
    for (int round = 0; round < ROUNDS; round++) {
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        REQUIRE(h != NULL, "dlopen(%s) failed: %s", lib, dlerror());
        touch = (tls_fn)dlsym(h, "hk_tls_touch");
        verify = (tls_fn)dlsym(h, "hk_tls_verify");
        REQUIRE(touch && verify, "dlsym failed");
        /* main thread too */
        CHECK(touch(1000 + (uint64_t)round) == 0, "main thread: dynamic TLS wrong");
        CHECK(verify(1000 + (uint64_t)round) == 0, "main thread: dynamic TLS damaged");
        pthread_t th[NT];
        for (int i = 0; i < NT; i++)
            REQUIRE(pthread_create(&th[i], NULL, body, (void *)(uintptr_t)(round * NT + i + 1)) == 0,
                    "pthread_create failed");
        for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
        /* a couple of other libraries too: more link maps, more DTV slots */
        void *m = dlopen("libm.so.6", RTLD_NOW);
        CHECK(m != NULL, "dlopen(libm.so.6) failed: %s", dlerror());
        if (m) dlclose(m);
        CHECK(dlclose(h) == 0, "dlclose failed: %s", dlerror());
    }
    return hk_done("dlopen_tls_threads");
}
