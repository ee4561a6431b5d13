/* export.h — a trained model leaves recur in formats other tools read: safetensors and .npz (every param
 * and batch-norm running statistic under its recur name, docs/EXPORT.md) and ONNX (the unrolled
 * inference graph with one output per readout). recur's own checkpoint stays the resume format.
 *
 * Input convention of every exported model (ONNX, python/recur_torch.py): x = pixel / 255 as float32,
 * (N, C, H, W); the model normalises it itself with the training split's statistics:
 * (x - mean[c]) / std[c]. */
#ifndef RC_EXPORT_H
#define RC_EXPORT_H

#include "models/model.h"

typedef struct {
    const char *config_text; /* the effective config (stored in the file's metadata) */
    const char *data_spec;   /* the dataset the model was trained on */
    int channels;
    float mean[3], std[3]; /* input normalisation: (pixel / 255 - mean) / std per channel */
} rc_export_info;

/* Each writes path atomically (path.tmp, then rename): on failure path is untouched. */
rc_status rc_export_safetensors(const rc_graph *g, const rc_export_info *info, const char *path);
rc_status rc_export_npz(const rc_graph *g, const rc_export_info *info, const char *path);
/* m built with batch 1 (any batch works: the exported batch dimension is dynamic) and its params loaded. */
rc_status rc_export_onnx(const rc_model *m, const rc_export_info *info, const char *path);

#endif
