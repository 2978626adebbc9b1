/* A program that closes stderr before it exits (as xz and sort do): its exit statistics can
 * only reach HAKMEM_STATS_FILE. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *volatile blocks[1000];

int main(void) {
    for (int i = 0; i < 1000; i++) {
        blocks[i] = malloc(64 + i);
        memset(blocks[i], 1, 64 + i);
    }
    for (int i = 0; i < 1000; i++) free(blocks[i]);
    close(2);
    return 0;
}
