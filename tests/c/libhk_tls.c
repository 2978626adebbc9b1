/* Helper shared object for dlopen_tls_threads: dynamic TLS (allocated by ld.so through malloc
 * on first access in each thread, freed at thread exit). */
#include <stdint.h>
#include <string.h>

static __thread unsigned char big_zero[200000];                 /* .tbss */
static __thread uint64_t inited[64] = {1, 2, 3, 4, 5, 6, 7, 8}; /* .tdata */

/* Returns 0 if this thread's TLS looks right, then scribbles on it with the thread's id. */
int hk_tls_touch(uint64_t id) {
    for (int i = 0; i < 8; i++)
        if (inited[i] != (uint64_t)(i + 1) && inited[i] != id) return 1;
    for (size_t i = 0; i < sizeof big_zero; i += 4096)
        if (big_zero[i] != 0 && big_zero[i] != (unsigned char)id) return 2;
    memset(big_zero, (unsigned char)id, sizeof big_zero);
    for (int i = 0; i < 64; i++) inited[i] = id;
    return 0;
}

/* Returns 0 if the TLS still holds what hk_tls_touch(id) wrote in this thread. */
int hk_tls_verify(uint64_t id) {
    for (int i = 0; i < 64; i++)
        if (inited[i] != id) return 3;
    for (size_t i = 0; i < sizeof big_zero; i += 1000)
        if (big_zero[i] != (unsigned char)id) return 4;
    return 0;
}
