/* recur.h — librecur's public C API, the one header an installed user needs (pkg-config recur): build a
 * model from a config, initialise or load its params, train it, evaluate it, run it on images and export
 * it, all through one opaque handle, rc_net. Declares only what it defines here; the library's internal
 * headers (src/) are not installed and may change between versions.
 *
 *   rc_net *net;
 *   if (rc_net_open("runs/demo", &net)) { fprintf(stderr, "%s\n", rc_error()); return 1; }
 *   float *logits = malloc(sizeof(float) * n * rc_net_readouts(net) * rc_net_classes(net));
 *   rc_net_predict(net, pixels01, n, logits);   // pixels01: n x C x H x W floats, pixel / 255
 *   rc_net_free(net);
 */
#ifndef RECUR_H
#define RECUR_H

#ifdef __cplusplus
extern "C" {
#endif

/* recur's version: `recur --version`, the metadata of every exported model, the shared library's name
 * (librecur.so.MAJOR). rc_version() gives the version of the library actually linked. */
#define RC_VERSION "0.1"
const char *rc_version(void);

/* Every fallible function returns RC_OK or RC_ERR; after RC_ERR, rc_error() holds a message naming the
 * file, line, field or argument at fault (per thread; valid until the next failing call). Nothing in
 * the library exits the process. */
typedef enum { RC_OK = 0, RC_ERR = 1 } rc_status;
const char *rc_error(void);

/* Threads (OpenMP) used by every computation of this process; n >= 1. */
void rc_set_threads(int n);

/* A model: its config, the unrolled graph (built for a batch of images, 64 unless set), its params and
 * the input normalisation. Call the library from one thread at a time (it parallelises inside, OpenMP). */
typedef struct rc_net rc_net;

/* A model from a config file (docs/CONFIG.md), with overrides "section.key=value" applied in order (sets
 * may be NULL when nsets is 0), or from config text (name: the model's name when [model] has none; used
 * in messages). Params are not initialised yet: call rc_net_init, rc_net_load or rc_net_train. */
rc_status rc_net_from_config(const char *path, const char *const *sets, int nsets, rc_net **out);
rc_status rc_net_from_text(const char *config_text, const char *name, rc_net **out);
/* A trained model: a run directory (its model.ckpt) or a checkpoint file, with the config stored in it. */
rc_status rc_net_open(const char *run_or_ckpt, rc_net **out);
/* Frees everything the handle owns; NULL is a no-op. */
void rc_net_free(rc_net *net);

/* Initialise the params from the config's init rules, deterministically from seed (as training does). */
void rc_net_init(rc_net *net, unsigned long long seed);
/* Copy the params of a checkpoint into net; its params must match net's (names, shapes). */
rc_status rc_net_load(rc_net *net, const char *ckpt_path);
/* Train with the config's [train] settings into run_dir (created if missing; it receives config.cfg,
 * model.ckpt and train.csv, as `recur train --out run_dir`). A run_dir that already holds a run of the
 * same config is continued exactly (`recur train --resume`); one of another config is refused.
 * max_steps > 0 stops after that many steps of this call (with a checkpoint); quiet: no progress output.
 * The config's train.threads, when set, applies to the whole process. Afterwards net holds the trained
 * params. */
rc_status rc_net_train(rc_net *net, const char *run_dir, long max_steps, int quiet);

/* What the model is. Strings live as long as net. */
const char *rc_net_name(const rc_net *net);
const char *rc_net_config(const rc_net *net); /* the effective config text (every default written out) */
const char *rc_net_data(const rc_net *net);   /* the dataset spec: the config's train.data unless set */
void rc_net_input_shape(const rc_net *net, int *channels, int *height, int *width);
int rc_net_classes(const rc_net *net);
int rc_net_readouts(const rc_net *net);    /* R: one readout (logits) per iteration of the last area */
long long rc_net_params(const rc_net *net); /* trainable weights (synapses), as `recur info` counts them */

/* Rebuild the graph for another batch size (memory grows with it) or with tied areas unrolled for
 * `iterations` steps (test-time depth, as `recur eval --iterations`; 0: as trained). Params are kept. */
rc_status rc_net_set_batch(rc_net *net, int batch);
rc_status rc_net_set_iterations(rc_net *net, int iterations);
/* The dataset used by rc_net_evaluate and, unless rc_net_set_input_stats was called, for the input
 * normalisation (its training split's per-channel mean and std of pixel / 255): a spec as for
 * `recur train --data` (fashion-mnist, mnist:DIR, idx:DIR, cifar10:DIR, cifar100:DIR). */
rc_status rc_net_set_data(rc_net *net, const char *spec);
/* Give the normalisation directly (mean[c], std[c] > 0 for each input channel c), so that
 * rc_net_predict and rc_net_export never read the dataset. */
rc_status rc_net_set_input_stats(rc_net *net, const float *mean, const float *std);

/* Run the model (batch norm in inference mode) on n images: images holds n x C x H x W floats, each pixel
 * / 255 (0..1), images one after another, channel planes in order; the model normalises them itself
 * with (x - mean[c]) / std[c], exactly like exported models and `recur eval`. logits receives
 * n x R x classes floats: image i, readout t, class k at logits[(i * R + t) * classes + k] — the layout
 * of `recur eval --save-logits`. Any n >= 1: images are run in batches of the graph's batch size. */
rc_status rc_net_predict(rc_net *net, const float *images, int n, float *logits);

/* Evaluate on the test split of the net's dataset (its first `limit` images when limit > 0), as
 * `recur eval`: per readout t (R entries each), top-1 accuracy, coarse accuracy (-1 where the dataset
 * has no class taxonomy) and mean cross-entropy. Any output pointer may be NULL. *images (may be NULL)
 * receives the number of images evaluated. */
rc_status rc_net_evaluate(rc_net *net, long limit, double *accuracy, double *coarse_accuracy, double *loss,
                          long *images);

/* Write the model for other tools (docs/EXPORT.md): format "safetensors", "npz" or "onnx", or NULL to take
 * it from path's extension (.safetensors, .npz, .onnx). Written atomically: on failure path is untouched. */
rc_status rc_net_export(rc_net *net, const char *format, const char *path);

#ifdef __cplusplus
}
#endif

#endif
