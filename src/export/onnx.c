/* onnx.c — rc_export_onnx (export.h). */
#include "export.h"

rc_status rc_export_onnx(const rc_model *m, const rc_export_info *info, const char *path) {
    (void)m, (void)info;
    return rc_fail("%s: ONNX export is not implemented yet", path);
}
