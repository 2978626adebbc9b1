/* Promise: glibc's introspection API reports the allocator's real figures: mallinfo2 (and
 * mallinfo) count 10 MB of live blocks as in use and stop counting them once freed;
 * malloc_info writes a well-formed <malloc> document; malloc_stats prints "in use bytes";
 * mallopt accepts glibc's parameters. Under hakmem (found with dlsym) an unknown mallopt
 * parameter is refused with 0; glibc returns 1 for it. */
#include "hk_test.h"
#include <dlfcn.h>

enum { SMALL = 5000, BIG = 5 };
static void *small[SMALL], *big[BIG];

static size_t in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

int main(void) {
    int hakmem = dlsym(RTLD_DEFAULT, "hakmem_version") != NULL;
    size_t before = in_use();
    for (int i = 0; i < SMALL; i++) {
        small[i] = malloc(1000);
        REQUIRE(small[i] != NULL, "malloc");
        memset(small[i], 1, 1000);
    }
    for (int i = 0; i < BIG; i++) {
        big[i] = malloc(1 << 20);
        REQUIRE(big[i] != NULL, "malloc");
        memset(big[i], 2, 1 << 20);
    }
    size_t live = in_use();
    CHECK(live >= before + 10000000, "mallinfo2: %zu bytes in use with 10 MB live (%zu before)", live, before);
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m1 = mallinfo();
    CHECK((size_t)m1.uordblks == m2.uordblks && (size_t)m1.hblkhd == m2.hblkhd,
          "mallinfo (%d, %d) disagrees with mallinfo2 (%zu, %zu)", m1.uordblks, m1.hblkhd, m2.uordblks, m2.hblkhd);
    CHECK(m2.arena > 0, "mallinfo2: arena is 0");

    FILE *f = tmpfile();
    REQUIRE(f != NULL, "tmpfile");
    CHECK(malloc_info(0, f) == 0, "malloc_info(0) failed");
    CHECK(malloc_info(1, f) == EINVAL, "malloc_info(1) must return EINVAL");
    static char xml[65536];
    rewind(f);
    size_t n = fread(xml, 1, sizeof xml - 1, f);
    fclose(f);
    CHECK(strncmp(xml, "<malloc version=\"1\">", 20) == 0, "malloc_info starts with: %.40s", xml);
    CHECK(n > 0 && strstr(xml, "</malloc>\n") == xml + n - 10, "malloc_info does not end with </malloc>");

    fflush(stderr);
    int saved = dup(2);
    FILE *out = tmpfile();
    REQUIRE(out != NULL && saved >= 0, "tmpfile/dup");
    dup2(fileno(out), 2);
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    static char text[4096];
    rewind(out);
    text[fread(text, 1, sizeof text - 1, out)] = 0;
    fclose(out);
    CHECK(strstr(text, "in use bytes") != NULL, "malloc_stats printed: %.200s", text);

    CHECK(mallopt(M_ARENA_MAX, 2) == 1 && mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1 &&
              mallopt(M_TRIM_THRESHOLD, 1 << 20) == 1 && mallopt(M_TOP_PAD, 0) == 1 &&
              mallopt(M_PERTURB, 0) == 1 && mallopt(M_ARENA_TEST, 8) == 1,
          "mallopt refused a parameter glibc knows");
    if (hakmem)
        CHECK(mallopt(12345, 1) == 0, "hakmem's mallopt accepted an unknown parameter");

    for (int i = 0; i < SMALL; i++) free(small[i]);
    for (int i = 0; i < BIG; i++) free(big[i]);
    size_t after = in_use();
    CHECK(after + 9000000 <= live, "mallinfo2: %zu bytes in use after freeing 10 MB (%zu before)", after, live);
    return hk_done("introspection_reports_usage");
}
