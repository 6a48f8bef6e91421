/* exitlist_main.c - links libexitlist.so; keeps two blocks to the end and exits normally. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int exitlist_calls(void);

static char *kept[2];

int main(void)
{
    kept[0] = malloc(100);
    kept[1] = strdup("kept to the end");
    if (kept[0] == NULL || kept[1] == NULL)
        return 1;
    printf("registered before main; %d run so far\n", exitlist_calls());
    return 0;
}
