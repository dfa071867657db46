// Losses with their gradients, for the training engine. Letters: rows = batch items (B), C = classes;
// logits and their gradients are (rows, C) row-major.
//
// Numerics (identical natively and in WASM): each row's softmax subtracts the row's maximum, takes
// bl_expf of the float differences and sums those floats in DOUBLE, in index order; everything after
// that (log-sum-exp via bl_log2d, the loss, the gradient) is double, and a gradient element is rounded
// to float once when it is written. The returned losses are accurate to bl_expf's ~2e-7 relative error.
// Logits that are NaN or ±inf give a NaN loss and gradients (no exception: the trainer checks the loss).
// Gradients are written with = (not +=); `scale` multiplies them (e.g. a loss weight, or 1/accumulation
// steps). Outputs may alias the inputs they are computed from (dlogits = logits, dstudent = student,
// dx = x): each row is read completely before it is written.
#pragma once
#include <cstddef>

namespace bitlens::train {

// Mean over rows of cross-entropy with label smoothing eps (0 = none): target t = (1−eps)·onehot + eps/C.
// Returns the mean loss; writes dlogits[r][c] = (softmax(z_r)_c − t_c) / rows · scale.
// Throws for a label outside [0, C) (naming the row and the label), rows or C = 0, eps outside [0, 1].
double cross_entropy(const float* logits, const int* labels, size_t rows, size_t C, float smoothing, float* dlogits,
                     float scale = 1.0f);

// Distillation (Hinton): T² · mean over rows of KL(softmax(teacher/T) || softmax(student/T)); the T²
// keeps the gradient's scale independent of T. Returns the loss; writes
// dstudent = T·(softmax(s/T) − softmax(t/T)) / rows · scale. Throws for T ≤ 0 (or not finite), rows or C = 0.
// Equal student and teacher rows give exactly 0 and a zero gradient.
double kl_distill(const float* student, const float* teacher, size_t rows, size_t C, float T, float* dstudent,
                  float scale = 1.0f);

// Mean squared error over n values (sum in double, index order); writes dx = 2(x − y)/n · scale.
// Throws for n = 0.
double mse(const float* x, const float* y, size_t n, float* dx, float scale = 1.0f);

}  // namespace bitlens::train
