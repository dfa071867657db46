#!/usr/bin/env python3
"""Fits the rational approximation of erf(x/sqrt(2)) that wasm_kernels/gelu.cpp uses for GELU.

    erf(x/sqrt(2)) ~= x * P(x^2) / Q(x^2),  P of degree 5, Q of degree 5 with Q(0) = 1,  0 <= x <= 5.5

Loeb's linearisation (x P - f (Q - 1) = f, weighted by 1/Q of the previous pass) with Lawson-style
reweighting toward the largest errors, in double precision; numpy only (Debian's python3-numpy).
Prints the coefficients rounded to float, the error of the float evaluation in the kernel's order, and
where that evaluation first reaches 1. Run: /usr/bin/python3 wasm_kernels/tools/fit_gelu_erf.py
"""
import math

import numpy as np

C = 5.5
NP, NQ = 6, 5

xs = np.unique(np.concatenate([np.linspace(0, C, 20001)[1:], C * (1 - np.cos(np.linspace(0, np.pi / 2, 20001)))[1:]]))
f = np.array([math.erf(x / math.sqrt(2)) for x in xs])
t = xs * xs
w = np.ones_like(xs)
q_prev = np.ones_like(xs)
best = None
for it in range(200):
    A = np.zeros((len(xs), NP + NQ))
    for i in range(NP):
        A[:, i] = xs * t**i
    for j in range(1, NQ + 1):
        A[:, NP + j - 1] = -f * t**j
    ww = w / q_prev
    sol, *_ = np.linalg.lstsq(A * ww[:, None], f * ww, rcond=None)
    a, b = sol[:NP], np.concatenate([[1.0], sol[NP:]])
    P = sum(a[i] * t**i for i in range(NP))
    Q = sum(b[j] * t**j for j in range(NQ + 1))
    err = xs * P / Q - f
    m = np.abs(err).max()
    if best is None or m < best[0]:
        best = (m, a.copy(), b.copy())
    q_prev = Q
    if it > 10:
        w = w * (np.abs(err) / m + 1e-3) ** 0.5
    w /= w.max()

m, a, b = best
a32, b32 = a.astype(np.float32), b.astype(np.float32)
print(f"max |error| in double: {m:.3e}")
print("P:", ", ".join(f"{v:.10e}f" for v in a32))
print("Q:", ", ".join(f"{v:.10e}f" for v in b32))


def kernel_order(x):  # the float32 operations of gelu.cpp, in its order
    x = np.minimum(x, np.float32(C))
    t = x * x
    p = a32[5]
    for i in (4, 3, 2, 1, 0):
        p = p * t + a32[i]
    q = b32[5]
    for j in (4, 3, 2, 1, 0):
        q = q * t + b32[j]
    return np.minimum((x * p) / q, np.float32(1))


x32 = np.linspace(0, 6, 200001).astype(np.float32)
e = kernel_order(x32)
ref = np.array([math.erf(float(v) / math.sqrt(2)) for v in x32])
print(f"max |error| of the float evaluation on [0, 6]: {np.abs(e.astype(np.float64) - ref).max():.3e}")
print(f"first x where it reaches 1: {x32[np.argmax(e >= 1)]}")
