/* jsonfile.h — small helpers for the JSON files of HF checkpoints. */
#ifndef BN_JSONFILE_H
#define BN_JSONFILE_H

#include "formats.h"
#include <cjson/cJSON.h>

/* Parses a whole JSON file; the error names the file. */
int bn_json_load(const char *path, cJSON **out, bn_err *e);
int bn_file_exists(const char *path);

#endif
