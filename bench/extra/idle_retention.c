/* idle_retention: what an allocator keeps resident once threads have freed everything and gone idle
 * (bench/README.md, "Hot lists for every size" and "Memory back from idle programs"). T threads each
 * allocate, fill and free 64 blocks of SIZE bytes four times, then wait while the main thread reads
 * /proc/self/statm; then they exit, and it reads it again at once and a second later.
 * build: gcc -O2 -pthread -o /tmp/idle_retention bench/extra/idle_retention.c
 * run:   LD_PRELOAD=LIB /tmp/idle_retention [T=8] [SIZE=65536] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static long rss_kib(void){FILE*f=fopen("/proc/self/statm","r");long a,b;fscanf(f,"%ld %ld",&a,&b);fclose(f);return b*4;}
static pthread_barrier_t bar;
static void *worker(void *arg){
  size_t sz = (size_t)arg; void *p[64];
  for (int r = 0; r < 4; r++) {           /* some churn first, so hot lists open */
    for (int i = 0; i < 64; i++) { p[i] = malloc(sz); memset(p[i], 1, sz); }
    for (int i = 0; i < 64; i++) free(p[i]);
  }
  pthread_barrier_wait(&bar);  /* freed everything */
  pthread_barrier_wait(&bar);  /* idle until main has measured */
  return 0;
}
int main(int argc, char **argv){
  int T = argc > 1 ? atoi(argv[1]) : 8; size_t sz = argc > 2 ? strtoul(argv[2],0,0) : 65536;
  pthread_t t[64]; pthread_barrier_init(&bar, 0, T + 1);
  for (int i = 0; i < T; i++) pthread_create(&t[i], 0, worker, (void*)sz);
  pthread_barrier_wait(&bar);
  long r0 = rss_kib(); sleep(3); long r1 = rss_kib();
  /* activity on the main thread only */
  for (int k = 0; k < 100000; k++) { void *q = malloc(sz); ((char*)q)[0] = 1; free(q); }
  long r2 = rss_kib();
  pthread_barrier_wait(&bar);
  for (int i = 0; i < T; i++) pthread_join(t[i], 0);
  long r3 = rss_kib();
  sleep(1);
  printf("threads=%d size=%zu rss after frees %ld KiB, after 3 s idle %ld, after main's churn %ld, after exit %ld, 1 s later %ld\n", T, sz, r0, r1, r2, r3, rss_kib());
  return 0;
}
