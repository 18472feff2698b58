/* torchspike's native CPU kernels: float32, layouts checked by the Python callers
 * (torchspike/kernels/native.py builds this file; conv_pool.py and event_conv.py call it).
 *
 * NHWC below is a channels-last [N, C, H, W] tensor's memory order; NCHW a contiguous one.
 * Each function takes the number of OpenMP threads to use (torch.get_num_threads()).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef int64_t i64;

/* ---- 2x2 / stride 2 max pooling (floor mode) ------------------------------------------------
 * x: NHWC [n, h, w, c]; y: NCHW [n, c, h/2, w/2]; index: the window position of the first
 * maximum in PyTorch's row-major scan order (0 top left, 1 top right, 2 bottom left, 3 bottom
 * right), laid out like y. A NaN wins as in PyTorch's kernel (val > max || isnan(val)).
 * Each output row is made in NHWC order in a buffer of the thread, four channels at a time
 * (GCC/clang vector types: branch-free selects, 3x faster than the scalar loop), then
 * transposed into NCHW; the backward pass transposes first. Both return -1 where a thread's
 * buffer could not be allocated, else 0. */

typedef float f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));

static inline f4 load4(const float *p) {
    f4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline i4 pick(i4 mask, i4 a, i4 b) { return (a & mask) | (b & ~mask); }

/* The maxima of the windows with corners p0..p3 (c channels each) and where they lie. */
static void pool_windows(const float *p0, const float *p1, const float *p2, const float *p3,
                         float *best, uint8_t *at, i64 c) {
    i64 k = 0;
    for (; k + 4 <= c; k += 4) {
        const f4 v0 = load4(p0 + k), v1 = load4(p1 + k), v2 = load4(p2 + k), v3 = load4(p3 + k);
        const i4 right = (v1 > v0) | (v1 != v1), lower = (v3 > v2) | (v3 != v3);
        const i4 top = pick(right, (i4)v1, (i4)v0), bottom = pick(lower, (i4)v3, (i4)v2);
        const i4 down = ((f4)bottom > (f4)top) | ((f4)bottom != (f4)bottom);
        const i4 m = pick(down, bottom, top), where = pick(down, 2 - lower, -right);
        memcpy(best + k, &m, sizeof m);
        for (int j = 0; j < 4; j++) at[k + j] = (uint8_t)where[j];
    }
    for (; k < c; k++) {
        const float v0 = p0[k], v1 = p1[k], v2 = p2[k], v3 = p3[k];
        const int right = v1 > v0 || v1 != v1, lower = v3 > v2 || v3 != v3;
        const float top = right ? v1 : v0, bottom = lower ? v3 : v2;
        const int down = bottom > top || bottom != bottom;
        best[k] = down ? bottom : top;
        at[k] = (uint8_t)(down ? 2 + lower : right);
    }
}

/* The gradients of the four corners of the windows: g where the maximum was, else 0. */
static void unpool_windows(const float *g, const uint8_t *at, float *p0, float *p1, float *p2,
                           float *p3, i64 c) {
    i64 k = 0;
    for (; k + 4 <= c; k += 4) {
        const i4 v = (i4)load4(g + k), where = {at[k], at[k + 1], at[k + 2], at[k + 3]};
        const i4 g0 = v & (where == 0), g1 = v & (where == 1), g2 = v & (where == 2),
                 g3 = v & (where == 3);
        memcpy(p0 + k, &g0, sizeof g0);
        memcpy(p1 + k, &g1, sizeof g1);
        memcpy(p2 + k, &g2, sizeof g2);
        memcpy(p3 + k, &g3, sizeof g3);
    }
    for (; k < c; k++) {
        p0[k] = at[k] == 0 ? g[k] : 0.0f;
        p1[k] = at[k] == 1 ? g[k] : 0.0f;
        p2[k] = at[k] == 2 ? g[k] : 0.0f;
        p3[k] = at[k] == 3 ? g[k] : 0.0f;
    }
}

int pool2x2_forward(const float *x, float *y, uint8_t *index, i64 n, i64 c, i64 h, i64 w,
                    int threads) {
    const i64 ho = h / 2, wo = w / 2, rows = n * ho, plane = c * ho * wo;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *best = malloc(wo * c * (sizeof(float) + 1));
        uint8_t *at = (uint8_t *)(best + wo * c);
        failed = best == NULL;
#pragma omp for schedule(static)
        for (i64 r = 0; r < rows; r++) {
            if (failed) continue;
            const i64 b = r / ho, oy = r % ho;
            const float *top = x + (b * h + 2 * oy) * w * c, *bottom = top + w * c;
            for (i64 ox = 0; ox < wo; ox++) {
                const float *p0 = top + 2 * ox * c, *p2 = bottom + 2 * ox * c;
                pool_windows(p0, p0 + c, p2, p2 + c, best + ox * c, at + ox * c, c);
            }
            float *yr = y + b * plane + oy * wo;
            uint8_t *ir = index + b * plane + oy * wo;
            for (i64 k = 0; k < c; k++)
                for (i64 ox = 0; ox < wo; ox++) {
                    yr[k * ho * wo + ox] = best[ox * c + k];
                    ir[k * ho * wo + ox] = at[ox * c + k];
                }
        }
        free(best);
    }
    return failed ? -1 : 0;
}

/* gy, index: NCHW [n, c, h/2, w/2]; gx: NHWC [n, h, w, c], written everywhere (zeros where no
 * maximum was, including the last row / column that floor mode drops for odd h / w). */
int pool2x2_backward(const float *gy, const uint8_t *index, float *gx, i64 n, i64 c, i64 h,
                     i64 w, int threads) {
    const i64 ho = h / 2, wo = w / 2, rows = n * ho, plane = c * ho * wo;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *g = malloc(wo * c * (sizeof(float) + 1));
        uint8_t *at = (uint8_t *)(g + wo * c);
        failed = g == NULL;
#pragma omp for schedule(static)
        for (i64 r = 0; r < rows; r++) {
            if (failed) continue;
            const i64 b = r / ho, oy = r % ho;
            const float *gr = gy + b * plane + oy * wo;
            const uint8_t *ir = index + b * plane + oy * wo;
            for (i64 k = 0; k < c; k++)
                for (i64 ox = 0; ox < wo; ox++) {
                    g[ox * c + k] = gr[k * ho * wo + ox];
                    at[ox * c + k] = ir[k * ho * wo + ox];
                }
            float *top = gx + (b * h + 2 * oy) * w * c, *bottom = top + w * c;
            for (i64 ox = 0; ox < wo; ox++) {
                float *p0 = top + 2 * ox * c, *p2 = bottom + 2 * ox * c;
                unpool_windows(g + ox * c, at + ox * c, p0, p0 + c, p2, p2 + c, c);
            }
            if (w % 2) {
                memset(top + (w - 1) * c, 0, c * sizeof(float));
                memset(bottom + (w - 1) * c, 0, c * sizeof(float));
            }
        }
        free(g);
    }
    if (h % 2) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (i64 b = 0; b < n; b++) memset(gx + (b * h + h - 1) * w * c, 0, w * c * sizeof(float));
    }
    return failed ? -1 : 0;
}

/* ---- convolution of binary spikes (stride 1, dilation 1, groups 1, zero padding) ------------
 * x: NCHW [n, ci, h, w] of 0s and 1s; the output [n, co, ho, wo] with ho = h + 2 ph - kh + 1.
 * An input spike at (c, iy, ix) reaches the outputs (iy + ph - ky, ix + pw - kx). */

/* The number of nonzeros in x[0:size], or -1 if some value is neither 0 nor 1. */
i64 count_spikes(const float *x, i64 size, int threads) {
    i64 count = 0, bad = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : count, bad) schedule(static)
    for (i64 i = 0; i < size; i++) {
        const float v = x[i];
        count += v != 0.0f;
        bad += v != 0.0f && v != 1.0f;
    }
    return bad ? -1 : count;
}

typedef struct {
    i64 ci, h, w, co, kh, kw, ph, pw, ho, wo;
} ConvShape;

static ConvShape conv_shape(i64 ci, i64 h, i64 w, i64 co, i64 kh, i64 kw, i64 ph, i64 pw) {
    ConvShape s = {ci, h, w, co, kh, kw, ph, pw, h + 2 * ph - kh + 1, w + 2 * pw - kw + 1};
    return s;
}

/* The output rows ky may reach from input row iy: ky in [*lo, *hi). */
static void reach(i64 iy, i64 pad, i64 k, i64 out, i64 *lo, i64 *hi) {
    const i64 top = iy + pad;          /* oy = top - ky must lie in [0, out) */
    *lo = top - out + 1 > 0 ? top - out + 1 : 0;
    *hi = top + 1 < k ? top + 1 : k;
}

/* y: NHWC [n, ho, wo, co] = bias + the sum over input spikes of wt[c, ky, kx, :], where
 * wt is the weight as [ci, kh, kw, co] (contiguous) and bias [co] or NULL. */
void event_conv_forward(const float *x, const float *wt, const float *bias, float *y, i64 n,
                        i64 ci, i64 h, i64 w, i64 co, i64 kh, i64 kw, i64 ph, i64 pw,
                        int threads) {
    const ConvShape s = conv_shape(ci, h, w, co, kh, kw, ph, pw);
    const i64 plane = s.ho * s.wo * co;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4)
    for (i64 b = 0; b < n; b++) {
        float *yb = y + b * plane;
        const float *xb = x + b * ci * h * w;
        if (bias) {
            for (i64 p = 0; p < s.ho * s.wo; p++) memcpy(yb + p * co, bias, co * sizeof(float));
        } else {
            memset(yb, 0, plane * sizeof(float));
        }
        for (i64 c = 0; c < ci; c++)
            for (i64 iy = 0; iy < h; iy++) {
                const float *xr = xb + (c * h + iy) * w;
                i64 y0, y1;
                reach(iy, ph, kh, s.ho, &y0, &y1);
                for (i64 ix = 0; ix < w; ix++) {
                    if (xr[ix] == 0.0f) continue;
                    i64 x0, x1;
                    reach(ix, pw, kw, s.wo, &x0, &x1);
                    for (i64 ky = y0; ky < y1; ky++) {
                        const i64 oy = iy + ph - ky;
                        for (i64 kx = x0; kx < x1; kx++) {
                            const i64 ox = ix + pw - kx;
                            float *dst = yb + (oy * s.wo + ox) * co;
                            const float *src = wt + ((c * kh + ky) * kw + kx) * co;
                            for (i64 o = 0; o < co; o++) dst[o] += src[o];
                        }
                    }
                }
            }
    }
}

/* gwt [ci, kh, kw, co] = the sum over input spikes of gy at the outputs each reaches; gbias
 * [co] (or NULL) = the sum of gy over all outputs. gy: NHWC [n, ho, wo, co]. Thread t sums its
 * samples (a static split: the same sums on every run) into scratch[t] of ci kh kw co + co
 * floats; those are added in thread order at the end. */
void event_conv_weight_grad(const float *x, const float *gy, float *gwt, float *gbias,
                            float *scratch, i64 n, i64 ci, i64 h, i64 w, i64 co, i64 kh, i64 kw,
                            i64 ph, i64 pw, int threads) {
    const ConvShape s = conv_shape(ci, h, w, co, kh, kw, ph, pw);
    const i64 plane = s.ho * s.wo * co, size = ci * kh * kw * co;
    memset(scratch, 0, threads * (size + co) * sizeof(float));
#pragma omp parallel num_threads(threads)
    {
        float *gw = scratch, *gb;
#ifdef _OPENMP
        gw += omp_get_thread_num() * (size + co);
#endif
        gb = gw + size;
#pragma omp for schedule(static)
        for (i64 b = 0; b < n; b++) {
            const float *gyb = gy + b * plane;
            const float *xb = x + b * ci * h * w;
            if (gbias)
                for (i64 p = 0; p < s.ho * s.wo; p++)
                    for (i64 o = 0; o < co; o++) gb[o] += gyb[p * co + o];
            for (i64 c = 0; c < ci; c++)
                for (i64 iy = 0; iy < h; iy++) {
                    const float *xr = xb + (c * h + iy) * w;
                    i64 y0, y1;
                    reach(iy, ph, kh, s.ho, &y0, &y1);
                    for (i64 ix = 0; ix < w; ix++) {
                        if (xr[ix] == 0.0f) continue;
                        i64 x0, x1;
                        reach(ix, pw, kw, s.wo, &x0, &x1);
                        for (i64 ky = y0; ky < y1; ky++) {
                            const i64 oy = iy + ph - ky;
                            for (i64 kx = x0; kx < x1; kx++) {
                                const i64 ox = ix + pw - kx;
                                const float *src = gyb + (oy * s.wo + ox) * co;
                                float *dst = gw + ((c * kh + ky) * kw + kx) * co;
                                for (i64 o = 0; o < co; o++) dst[o] += src[o];
                            }
                        }
                    }
                }
        }
    }
    memcpy(gwt, scratch, size * sizeof(float));
    if (gbias) memcpy(gbias, scratch + size, co * sizeof(float));
    for (int t = 1; t < threads; t++) {
        const float *part = scratch + t * (size + co);
        for (i64 i = 0; i < size; i++) gwt[i] += part[i];
        if (gbias)
            for (i64 o = 0; o < co; o++) gbias[o] += part[size + o];
    }
}
