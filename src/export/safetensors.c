/* safetensors.c — rc_export_safetensors (export.h). */
#include "export.h"

rc_status rc_export_safetensors(const rc_graph *g, const rc_export_info *info, const char *path) {
    (void)g, (void)info;
    return rc_fail("%s: safetensors export is not implemented yet", path);
}
