/* jsonfile.c — loading JSON files with errors that name them. */
#include "jsonfile.h"

#include <sys/stat.h>

int bn_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int bn_json_load(const char *path, cJSON **out, bn_err *e)
{
    bn_map m;
    if (bn_map_file(path, &m, e))
        return -1;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts((const char *)m.data, m.size, &end, 0);
    if (!j) {
        size_t at = end ? (size_t)(end - (const char *)m.data) : 0;
        bn_unmap(&m);
        return bn_fail(e, "%s: invalid JSON near byte %zu", path, at);
    }
    bn_unmap(&m);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return bn_fail(e, "%s: expected a JSON object", path);
    }
    *out = j;
    return 0;
}
