/* npz.c — rc_export_npz (export.h). */
#include "export.h"

rc_status rc_export_npz(const rc_graph *g, const rc_export_info *info, const char *path) {
    (void)g, (void)info;
    return rc_fail("%s: npz export is not implemented yet", path);
}
