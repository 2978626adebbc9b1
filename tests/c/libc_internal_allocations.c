/* Promise: memory that glibc allocates internally (through the interposed malloc) and hands to
 * the program, or frees itself, works with our free(): strdup/strndup, asprintf, getline,
 * open_memstream, realpath(NULL), getcwd(NULL), scandir, glob, regcomp, qsort, wide printf
 * buffers, fopen/opendir, setlocale/newlocale, iconv_open (dlopen of gconv modules),
 * getpwuid (NSS, dlopen), backtrace_symbols. */
#include "hk_test.h" /* first: defines _GNU_SOURCE */

#include <dirent.h>
#include <execinfo.h>
#include <glob.h>
#include <iconv.h>
#include <locale.h>
#include <pwd.h>
#include <regex.h>
#include <stdarg.h>

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int main(void) {
    /* strdup / strndup */
    for (int i = 0; i < 20000; i++) {
        char buf[300];
        int n = snprintf(buf, sizeof buf, "string number %d %0*d", i, i % 200, i);
        char *d = strdup(buf);
        REQUIRE(d != NULL, "strdup failed");
        CHECK(strcmp(d, buf) == 0 && (int)strlen(d) == n, "strdup copy wrong");
        char *e = strndup(buf, (size_t)(i % 50));
        REQUIRE(e != NULL, "strndup failed");
        CHECK(strlen(e) == (size_t)((i % 50) < n ? (i % 50) : n), "strndup length wrong");
        free(d);
        free(e);
    }
    /* asprintf, including big outputs */
    for (int i = 0; i < 2000; i++) {
        char *s = NULL;
        int n = asprintf(&s, "%d:%*s:%s", i, i * 10, "x", "end");
        REQUIRE(n > 0 && s != NULL, "asprintf failed");
        CHECK((int)strlen(s) == n, "asprintf length mismatch");
        free(s);
    }
    /* printf with a huge width makes vfprintf use a heap work buffer */
    {
        FILE *f = fopen("/dev/null", "w");
        REQUIRE(f != NULL, "fopen(/dev/null) failed");
        for (int i = 0; i < 50; i++) fprintf(f, "%*d %.*f\n", 100000 + i, i, 5000, 1.0 / 3);
        fclose(f);
    }
    /* open_memstream + getline / getdelim */
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *ms = open_memstream(&buf, &len);
        REQUIRE(ms != NULL, "open_memstream failed");
        for (int i = 0; i < 50000; i++) fprintf(ms, "line %d %s\n", i, i % 100 == 0 ? "with a longer tail text" : "");
        fclose(ms);
        CHECK(len > 400000, "open_memstream produced only %zu bytes", len);
        FILE *in = fmemopen(buf, len, "r");
        REQUIRE(in != NULL, "fmemopen failed");
        char *line = NULL;
        size_t cap = 0;
        int lines = 0;
        while (getline(&line, &cap, in) > 0) lines++;
        CHECK(lines == 50000, "getline read %d lines", lines);
        free(line);
        fclose(in);
        free(buf);
    }
    /* realpath / getcwd / get_current_dir_name */
    {
        char *rp = realpath("/tmp/../tmp/.", NULL);
        CHECK(rp && strcmp(rp, "/tmp") == 0, "realpath gave %s", rp ? rp : "(null)");
        free(rp);
        char *cwd = getcwd(NULL, 0);
        CHECK(cwd != NULL, "getcwd(NULL, 0) failed");
        free(cwd);
        char *cd = get_current_dir_name();
        CHECK(cd != NULL, "get_current_dir_name failed");
        free(cd);
    }
    /* scandir (array and entries are malloc'ed by glibc, freed by us), opendir/readdir */
    {
        struct dirent **list = NULL;
        int n = scandir("/proc/self", &list, NULL, alphasort);
        CHECK(n > 5, "scandir(/proc/self) returned %d", n);
        for (int i = 0; i < n; i++) free(list[i]);
        free(list);
        for (int k = 0; k < 50; k++) {
            DIR *d = opendir("/proc/self/fd");
            REQUIRE(d != NULL, "opendir failed");
            int c = 0;
            while (readdir(d)) c++;
            closedir(d);
            CHECK(c >= 3, "readdir saw %d entries", c);
        }
    }
    /* glob */
    {
        glob_t g;
        int rc = glob("/proc/self/*", 0, NULL, &g);
        CHECK(rc == 0 && g.gl_pathc > 5, "glob failed (%d)", rc);
        if (rc == 0) globfree(&g);
    }
    /* regex */
    for (int k = 0; k < 200; k++) {
        regex_t re;
        int rc = regcomp(&re, "^([a-z]+)-([0-9]{2,5})(x|y)*$", REG_EXTENDED);
        REQUIRE(rc == 0, "regcomp failed");
        regmatch_t m[4];
        CHECK(regexec(&re, "abc-1234xyx", 4, m, 0) == 0, "regexec did not match");
        CHECK(regexec(&re, "abc-1", 4, m, 0) == REG_NOMATCH, "regexec matched wrongly");
        regfree(&re);
    }
    /* qsort of a big array (glibc uses a malloc'ed temporary for merge sort) */
    {
        size_t n = 1 << 20;
        int *a = malloc(n * sizeof *a);
        REQUIRE(a != NULL, "malloc failed");
        hk_rng r;
        hk_seed(&r, 9);
        for (size_t i = 0; i < n; i++) a[i] = (int)(hk_next(&r) >> 33);
        qsort(a, n, sizeof *a, cmp_int);
        for (size_t i = 1; i < n; i++)
            if (a[i - 1] > a[i]) {
                CHECK(0, "qsort result unsorted at %zu", i);
                break;
            }
        free(a);
    }
    /* many FILE objects */
    for (int k = 0; k < 500; k++) {
        FILE *f = fopen("/proc/self/stat", "r");
        REQUIRE(f != NULL, "fopen failed");
        char b[64];
        CHECK(fgets(b, sizeof b, f) != NULL, "fgets failed");
        setvbuf(f, NULL, _IOFBF, 100000);
        fclose(f);
    }
    /* locales */
    {
        setlocale(LC_ALL, "C.UTF-8");
        for (int k = 0; k < 100; k++) {
            locale_t l = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
            if (!l) l = newlocale(LC_ALL_MASK, "C", (locale_t)0);
            CHECK(l != (locale_t)0, "newlocale failed");
            if (l) {
                locale_t l2 = duplocale(l);
                if (l2) freelocale(l2);
                freelocale(l);
            }
        }
        setlocale(LC_ALL, "C");
    }
    /* iconv (dlopens gconv modules, which ld.so allocates for) */
    for (int k = 0; k < 20; k++) {
        iconv_t cd = iconv_open("UTF-16LE", "UTF-8");
        if (cd == (iconv_t)-1) {
            printf("note: iconv_open(UTF-16LE) unavailable: skipped\n");
            break;
        }
        char in[] = "h\xc3\xa9llo w\xc3\xb6rld";
        char out[64];
        char *ip = in, *op = out;
        size_t il = strlen(in), ol = sizeof out;
        size_t rc = iconv(cd, &ip, &il, &op, &ol);
        CHECK(rc != (size_t)-1 && sizeof out - ol == 22, "iconv produced %zu bytes", sizeof out - ol);
        iconv_close(cd);
    }
    /* NSS (dlopen of libnss_files) */
    for (int k = 0; k < 20; k++) {
        struct passwd *pw = getpwuid(0);
        CHECK(pw != NULL && strcmp(pw->pw_name, "root") == 0, "getpwuid(0) failed");
    }
    /* backtrace_symbols returns one malloc'ed block */
    {
        void *frames[16];
        int n = backtrace(frames, 16);
        char **syms = backtrace_symbols(frames, n);
        CHECK(n > 0 && syms != NULL, "backtrace_symbols failed");
        free(syms);
    }
    return hk_done("libc_internal_allocations");
}
