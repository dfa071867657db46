#include "loss.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "mathfn.h"  // bl_expf
#include "quant.h"   // bl_log2d

namespace bitlens::train {

namespace {

constexpr double kLn2 = 0.69314718055994530942;

// Softmax of one row of z/T: a = z/T (float division, as the caller's forward would scale), m = max a,
// p_c = bl_expf(a_c − m) / S with S = Σ_c bl_expf(a_c − m) summed in double in index order, and
// ln S. log p_c = (a_c − m) − ln S. A NaN anywhere (or ±inf − ±inf) makes p and ln S NaN.
struct RowSoftmax {
    std::vector<float> a;
    std::vector<double> p;
    float m = 0;
    double ln_s = 0;

    void compute(const float* z, size_t C, float T) {
        a.resize(C), p.resize(C);
        for (size_t c = 0; c < C; ++c) a[c] = z[c] / T;
        m = a[0];
        for (size_t c = 1; c < C; ++c)
            if (a[c] > m) m = a[c];
        double s = 0;
        for (size_t c = 0; c < C; ++c) {
            const float e = bl_expf(a[c] - m);
            p[c] = e, s += e;
        }
        for (size_t c = 0; c < C; ++c) p[c] /= s;
        ln_s = bl_log2d(s) * kLn2;
    }
};

void check_shape(const char* what, size_t rows, size_t C) {
    if (rows == 0) throw std::runtime_error(std::string(what) + ": no rows");
    if (C == 0) throw std::runtime_error(std::string(what) + ": no classes (C = 0)");
}

}  // namespace

double cross_entropy(const float* logits, const int* labels, size_t rows, size_t C, float smoothing, float* dlogits,
                     float scale) {
    check_shape("cross_entropy", rows, C);
    if (!(smoothing >= 0.0f && smoothing <= 1.0f))
        throw std::runtime_error("cross_entropy: label smoothing " + std::to_string(smoothing) + " is outside [0, 1]");
    for (size_t r = 0; r < rows; ++r)  // all labels before any output is written
        if (labels[r] < 0 || size_t(labels[r]) >= C)
            throw std::runtime_error("cross_entropy: label " + std::to_string(labels[r]) + " of row " + std::to_string(r) +
                                     " is outside [0, " + std::to_string(C) + ")");
    const double eps = smoothing, on = 1.0 - eps, off = eps / double(C), g = double(scale) / double(rows);
    RowSoftmax sm;
    double total = 0;
    for (size_t r = 0; r < rows; ++r) {
        const float* z = logits + r * C;
        const size_t y = size_t(labels[r]);
        sm.compute(z, C, 1.0f);
        // −Σ_c t_c log p_c = ln S + Σ_c t_c (m − a_c), as Σ t_c = 1; the eps/C terms only when eps > 0
        // (so a −inf logit of another class costs nothing without smoothing, as the formula says).
        double loss = sm.ln_s + on * (double(sm.m) - double(sm.a[y]));
        if (eps > 0) {
            double s = 0;
            for (size_t c = 0; c < C; ++c) s += double(sm.m) - double(sm.a[c]);
            loss += off * s;
        }
        total += loss;
        float* d = dlogits + r * C;
        for (size_t c = 0; c < C; ++c) {
            const double t = (c == y ? on : 0.0) + off;
            d[c] = float((sm.p[c] - t) * g);
        }
    }
    return total / double(rows);
}

double kl_distill(const float* student, const float* teacher, size_t rows, size_t C, float T, float* dstudent,
                  float scale) {
    check_shape("kl_distill", rows, C);
    if (!(T > 0.0f) || T > 3.4e38f)
        throw std::runtime_error("kl_distill: temperature " + std::to_string(T) + " is not a positive finite number");
    const double g = double(T) * double(scale) / double(rows);
    RowSoftmax ss, st;
    double total = 0;
    for (size_t r = 0; r < rows; ++r) {
        ss.compute(student + r * C, C, T);
        st.compute(teacher + r * C, C, T);
        // KL(pt || ps) = Σ_c pt_c (log pt_c − log ps_c)
        //             = Σ_c pt_c ((b_c − m_b) − (a_c − m_a)) + (ln S_a − ln S_b)   (Σ pt = 1),
        // a = s/T, b = t/T; terms with pt_c = 0 are 0 (even when a_c = −inf).
        double kl = 0;
        for (size_t c = 0; c < C; ++c)
            if (st.p[c] != 0)
                kl += st.p[c] * ((double(st.a[c]) - double(st.m)) - (double(ss.a[c]) - double(ss.m)));
        kl += ss.ln_s - st.ln_s;
        total += kl;
        float* d = dstudent + r * C;
        for (size_t c = 0; c < C; ++c) d[c] = float((ss.p[c] - st.p[c]) * g);
    }
    return double(T) * double(T) * total / double(rows);
}

double mse(const float* x, const float* y, size_t n, float* dx, float scale) {
    if (n == 0) throw std::runtime_error("mse: no values");
    const double g = 2.0 * double(scale) / double(n);
    double s = 0;
    for (size_t i = 0; i < n; ++i) {
        const double d = double(x[i]) - double(y[i]);
        s += d * d;
        dx[i] = float(d * g);
    }
    return s / double(n);
}

}  // namespace bitlens::train
