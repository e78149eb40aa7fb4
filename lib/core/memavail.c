/* memavail.c — how much memory this process may still take: what decides
 * whether a model is copied into memory or read from its file, and the
 * default KV budget. In a container /proc/meminfo describes the host; the
 * memory cgroup's limit is what the kernel enforces (an out-of-memory kill
 * inside the limit), so the smaller of the two counts. */
#include "cpu.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t meminfo_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* The first number in file dir/name (0 when absent; "max" is no limit). */
static uint64_t read_u64(const char *dir, const char *name, int *ok)
{
    char path[4200];
    unsigned long long v = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    *ok = f && fscanf(f, "%llu", &v) == 1;
    if (f)
        fclose(f);
    return v;
}

/* key's value in dir/memory.stat. */
static uint64_t stat_key(const char *dir, const char *key)
{
    char path[4200], line[256], k[64];
    unsigned long long v = 0, got = 0;
    snprintf(path, sizeof path, "%s/memory.stat", dir);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %llu", k, &v) == 2 && !strcmp(k, key)) {
            got = v;
            break;
        }
    if (f)
        fclose(f);
    return got;
}

/* What the cgroup at dir and its ancestors up to root leave: limit −
 * usage + inactive file pages (reclaimable), the least over the levels
 * that have a limit; UINT64_MAX when none has. v2 names memory.max /
 * memory.current, v1 memory.limit_in_bytes / memory.usage_in_bytes (a
 * v1 group without a limit shows a huge number, which counts as none). */
static uint64_t cgroup_room(const char *root, const char *rel, int v2)
{
    char dir[4096];
    uint64_t room = UINT64_MAX;
    snprintf(dir, sizeof dir, "%s%s", root, rel);
    for (;;) {
        int ok_l, ok_u;
        uint64_t lim = read_u64(dir, v2 ? "memory.max" : "memory.limit_in_bytes", &ok_l);
        uint64_t use = read_u64(dir, v2 ? "memory.current" : "memory.usage_in_bytes", &ok_u);
        if (ok_l && ok_u && lim < ((uint64_t)1 << 62)) {
            uint64_t free_file = stat_key(dir, v2 ? "inactive_file" : "total_inactive_file");
            uint64_t r = lim > use ? lim - use : 0;
            r += free_file < use ? free_file : use;
            r = r > lim ? lim : r;
            room = r < room ? r : room;
        }
        char *slash = strrchr(dir + strlen(root), '/');
        if (!slash)
            break;
        *slash = 0;
    }
    return room;
}

uint64_t bn_mem_available(void)
{
    uint64_t avail = meminfo_available();
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        /* "0::/path" (v2), "N:a,memory,b:/path" (v1) */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctl = c1 + 1, *path = c2 + 1;
        uint64_t room = UINT64_MAX;
        if (!*ctl)
            room = cgroup_room("/sys/fs/cgroup", path, 1);
        else {
            char list[256];
            snprintf(list, sizeof list, ",%s,", ctl);
            if (strstr(list, ",memory,"))
                room = cgroup_room("/sys/fs/cgroup/memory", path, 0);
        }
        if (room != UINT64_MAX && (!avail || room < avail))
            avail = room;
    }
    if (f)
        fclose(f);
    return avail;
}
