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
 * index: the window position of the first maximum in PyTorch's row-major scan order (0 top
 * left, 1 top right, 2 bottom left, 3 bottom right), laid out like y. A NaN wins as in
 * PyTorch's kernel (val > max || isnan(val)). Windows of NHWC input are pooled four channels
 * at a time (GCC/clang vector types: branch-free selects, 3x faster than the scalar loop):
 * pool2x2_nhwc_* keep NHWC; pool_row / pool2x2_backward turn rows into NCHW and back (the
 * fused event convolution's pooling); pool2x2_nchw_* pool NCHW input. Those with a thread
 * buffer return -1 where it could not be allocated, else 0. */

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

/* One row of windows: top, bottom are two NHWC input rows [w, c]; the row's maxima go to the
 * NCHW rows yr, ir (channel k at k * stride); best, at: a buffer of wo * c floats and bytes. */
static void pool_row(const float *top, const float *bottom, float *yr, uint8_t *ir, i64 c,
                     i64 wo, i64 stride, float *best, uint8_t *at) {
    for (i64 ox = 0; ox < wo; ox++) {
        const float *p0 = top + 2 * ox * c, *p2 = bottom + 2 * ox * c;
        pool_windows(p0, p0 + c, p2, p2 + c, best + ox * c, at + ox * c, c);
    }
    for (i64 k = 0; k < c; k++)
        for (i64 ox = 0; ox < wo; ox++) {
            yr[k * stride + ox] = best[ox * c + k];
            ir[k * stride + ox] = at[ox * c + k];
        }
}

/* The gradient of one row of windows (NCHW rows gr, ir as in pool_row) into the two NHWC rows
 * top, bottom [w, c], written everywhere (zeros in the last column for an odd w). */
static void unpool_row(const float *gr, const uint8_t *ir, float *top, float *bottom, i64 c,
                       i64 w, i64 stride, float *g, uint8_t *at) {
    const i64 wo = w / 2;
    for (i64 k = 0; k < c; k++)
        for (i64 ox = 0; ox < wo; ox++) {
            g[ox * c + k] = gr[k * stride + ox];
            at[ox * c + k] = ir[k * stride + ox];
        }
    for (i64 ox = 0; ox < wo; ox++) {
        float *p0 = top + 2 * ox * c, *p2 = bottom + 2 * ox * c;
        unpool_windows(g + ox * c, at + ox * c, p0, p0 + c, p2, p2 + c, c);
    }
    if (w % 2) {
        memset(top + (w - 1) * c, 0, c * sizeof(float));
        memset(bottom + (w - 1) * c, 0, c * sizeof(float));
    }
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
            const i64 b = r / ho, oy = r % ho, at_y = b * plane + oy * wo;
            float *top = gx + (b * h + 2 * oy) * w * c;
            unpool_row(gy + at_y, index + at_y, top, top + w * c, c, w, ho * wo, g, at);
        }
        free(g);
    }
    if (h % 2) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (i64 b = 0; b < n; b++) memset(gx + (b * h + h - 1) * w * c, 0, w * c * sizeof(float));
    }
    return failed ? -1 : 0;
}

/* The same pooling with NHWC output: x, y, index all NHWC (y, index [n, h/2, w/2, c]); the
 * maxima of a window row go straight to their place, no buffer. */
int pool2x2_nhwc_forward(const float *x, float *y, uint8_t *index, i64 n, i64 c, i64 h, i64 w,
                         int threads) {
    const i64 ho = h / 2, wo = w / 2, rows = n * ho;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (i64 r = 0; r < rows; r++) {
        const i64 b = r / ho, oy = r % ho;
        const float *top = x + (b * h + 2 * oy) * w * c, *bottom = top + w * c;
        for (i64 ox = 0; ox < wo; ox++) {
            const float *p0 = top + 2 * ox * c, *p2 = bottom + 2 * ox * c;
            const i64 at = (r * wo + ox) * c;
            pool_windows(p0, p0 + c, p2, p2 + c, y + at, index + at, c);
        }
    }
    return 0;
}

/* gy, index: NHWC [n, h/2, w/2, c]; gx: NHWC [n, h, w, c], written everywhere. */
int pool2x2_nhwc_backward(const float *gy, const uint8_t *index, float *gx, i64 n, i64 c, i64 h,
                          i64 w, int threads) {
    const i64 ho = h / 2, wo = w / 2, rows = n * ho;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (i64 r = 0; r < rows; r++) {
        const i64 b = r / ho, oy = r % ho;
        float *top = gx + (b * h + 2 * oy) * w * c, *bottom = top + w * c;
        for (i64 ox = 0; ox < wo; ox++) {
            float *p0 = top + 2 * ox * c, *p2 = bottom + 2 * ox * c;
            const i64 at = (r * wo + ox) * c;
            unpool_windows(gy + at, index + at, p0, p0 + c, p2, p2 + c, c);
        }
        if (w % 2) {
            memset(top + (w - 1) * c, 0, c * sizeof(float));
            memset(bottom + (w - 1) * c, 0, c * sizeof(float));
        }
    }
    if (h % 2) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (i64 b = 0; b < n; b++) memset(gx + (b * h + h - 1) * w * c, 0, w * c * sizeof(float));
    }
    return 0;
}

/* The same pooling on NCHW x [n, c, h, w] (a neuron's spikes before a pooling): y, index as
 * above; one (sample, channel) plane per task, each window the same maths with one channel. */
int pool2x2_nchw_forward(const float *x, float *y, uint8_t *index, i64 n, i64 c, i64 h, i64 w,
                         int threads) {
    const i64 ho = h / 2, wo = w / 2, planes = n * c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (i64 p = 0; p < planes; p++) {
        for (i64 oy = 0; oy < ho; oy++) {
            const float *top = x + (p * h + 2 * oy) * w, *bottom = top + w;
            float *yr = y + (p * ho + oy) * wo;
            uint8_t *ir = index + (p * ho + oy) * wo;
            for (i64 ox = 0; ox < wo; ox++) {
                const float *p0 = top + 2 * ox, *p2 = bottom + 2 * ox;
                pool_windows(p0, p0 + 1, p2, p2 + 1, yr + ox, ir + ox, 1);
            }
        }
    }
    return 0;
}

/* gy, index: NCHW [n, c, h/2, w/2]; gx: NCHW [n, c, h, w], written everywhere (zeros where no
 * maximum was, including the last row / column that floor mode drops for odd h / w). */
int pool2x2_nchw_backward(const float *gy, const uint8_t *index, float *gx, i64 n, i64 c, i64 h,
                          i64 w, int threads) {
    const i64 ho = h / 2, wo = w / 2, planes = n * c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (i64 p = 0; p < planes; p++) {
        for (i64 oy = 0; oy < ho; oy++) {
            float *top = gx + (p * h + 2 * oy) * w, *bottom = top + w;
            const float *gr = gy + (p * ho + oy) * wo;
            const uint8_t *ir = index + (p * ho + oy) * wo;
            for (i64 ox = 0; ox < wo; ox++) {
                float *p0 = top + 2 * ox, *p2 = bottom + 2 * ox;
                unpool_windows(gr + ox, ir + ox, p0, p0 + 1, p2, p2 + 1, 1);
            }
            if (w % 2) top[w - 1] = bottom[w - 1] = 0.0f;
        }
        if (h % 2) memset(gx + (p * h + h - 1) * w, 0, w * sizeof(float));
    }
    return 0;
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

/* The spikes of one sample, x [ci, h, w] as floats (xf) or bytes (xb, where xf is NULL), as
 * flat positions (c h + iy) w + ix in increasing order into at; returns their number. */
static i64 find_events(const float *xf, const uint8_t *xb, i64 size, int32_t *at) {
    i64 count = 0;
    if (xf) {
        for (i64 i = 0; i < size; i++)
            if (xf[i] != 0.0f) at[count++] = (int32_t)i;
    } else {
        for (i64 i = 0; i < size; i++)
            if (xb[i]) at[count++] = (int32_t)i;
    }
    return count;
}

/* One sample: yb NHWC [ho, wo, co] = bias (or 0) + the slices wt[c, ky, kx, :] of its spikes
 * (at[0:count], from find_events), added in the order of the spikes and then of (ky, kx). */
static void scatter_events(const int32_t *at, i64 count, const float *wt, const float *bias,
                           float *yb, const ConvShape *s) {
    const i64 co = s->co, kh = s->kh, kw = s->kw;
    if (bias) {
        for (i64 p = 0; p < s->ho * s->wo; p++) memcpy(yb + p * co, bias, co * sizeof(float));
    } else {
        memset(yb, 0, s->ho * s->wo * co * sizeof(float));
    }
    for (i64 e = 0; e < count; e++) {
        const i64 c = at[e] / (s->h * s->w), iy = at[e] / s->w % s->h, ix = at[e] % s->w;
        i64 y0, y1, x0, x1;
        reach(iy, s->ph, kh, s->ho, &y0, &y1);
        reach(ix, s->pw, kw, s->wo, &x0, &x1);
        for (i64 ky = y0; ky < y1; ky++) {
            const i64 oy = iy + s->ph - ky;
            for (i64 kx = x0; kx < x1; kx++) {
                const i64 ox = ix + s->pw - kx;
                float *dst = yb + (oy * s->wo + ox) * co;
                const float *src = wt + ((c * kh + ky) * kw + kx) * co;
                for (i64 o = 0; o < co; o++) dst[o] += src[o];
            }
        }
    }
}

/* One sample's share of the weight / bias gradients: gw [ci, kh, kw, co] += gyb at the outputs
 * each spike reaches (in scatter_events' order); gb [co] (or NULL) += all of gyb, NHWC
 * [ho, wo, co]. */
static void gather_events(const int32_t *at, i64 count, const float *gyb, float *gw, float *gb,
                          const ConvShape *s) {
    const i64 co = s->co, kh = s->kh, kw = s->kw;
    if (gb)
        for (i64 p = 0; p < s->ho * s->wo; p++)
            for (i64 o = 0; o < co; o++) gb[o] += gyb[p * co + o];
    for (i64 e = 0; e < count; e++) {
        const i64 c = at[e] / (s->h * s->w), iy = at[e] / s->w % s->h, ix = at[e] % s->w;
        i64 y0, y1, x0, x1;
        reach(iy, s->ph, kh, s->ho, &y0, &y1);
        reach(ix, s->pw, kw, s->wo, &x0, &x1);
        for (i64 ky = y0; ky < y1; ky++) {
            const i64 oy = iy + s->ph - ky;
            for (i64 kx = x0; kx < x1; kx++) {
                const i64 ox = ix + s->pw - kx;
                const float *src = gyb + (oy * s->wo + ox) * co;
                float *dst = gw + ((c * kh + ky) * kw + kx) * co;
                for (i64 o = 0; o < co; o++) dst[o] += src[o];
            }
        }
    }
}

/* The thread-private sums scratch[t] (size + co floats each) added in thread order. */
static void sum_partials(const float *scratch, float *gwt, float *gbias, i64 size, i64 co,
                         int threads) {
    memcpy(gwt, scratch, size * sizeof(float));
    if (gbias) memcpy(gbias, scratch + size, co * sizeof(float));
    for (int t = 1; t < threads; t++) {
        const float *part = scratch + t * (size + co);
        for (i64 i = 0; i < size; i++) gwt[i] += part[i];
        if (gbias)
            for (i64 o = 0; o < co; o++) gbias[o] += part[size + o];
    }
}

static float *thread_part(float *scratch, i64 size) {
#ifdef _OPENMP
    return scratch + omp_get_thread_num() * size;
#else
    return scratch;
#endif
}

/* y: NHWC [n, ho, wo, co] = bias + the sum over input spikes of wt[c, ky, kx, :], where
 * wt is the weight as [ci, kh, kw, co] (contiguous) and bias [co] or NULL. Returns -1 where a
 * thread's buffer could not be allocated, else 0. */
int event_conv_forward(const float *x, const float *wt, const float *bias, float *y, i64 n,
                       i64 ci, i64 h, i64 w, i64 co, i64 kh, i64 kw, i64 ph, i64 pw,
                       int threads) {
    const ConvShape s = conv_shape(ci, h, w, co, kh, kw, ph, pw);
    const i64 size = ci * h * w;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        int32_t *at = malloc(size * sizeof(int32_t));
        failed = at == NULL;
#pragma omp for schedule(dynamic, 4)
        for (i64 b = 0; b < n; b++) {
            if (failed) continue;
            const i64 count = find_events(x + b * size, NULL, size, at);
            scatter_events(at, count, wt, bias, y + b * s.ho * s.wo * co, &s);
        }
        free(at);
    }
    return failed ? -1 : 0;
}

/* gwt [ci, kh, kw, co] = the sum over input spikes of gy at the outputs each reaches; gbias
 * [co] (or NULL) = the sum of gy over all outputs. gy: NHWC [n, ho, wo, co]. Thread t sums its
 * samples (a static split: the same sums on every run) into scratch[t] of ci kh kw co + co
 * floats; those are added in thread order at the end. Returns -1 where a thread's buffer could
 * not be allocated, else 0. */
int event_conv_weight_grad(const float *x, const float *gy, float *gwt, float *gbias,
                           float *scratch, i64 n, i64 ci, i64 h, i64 w, i64 co, i64 kh, i64 kw,
                           i64 ph, i64 pw, int threads) {
    const ConvShape s = conv_shape(ci, h, w, co, kh, kw, ph, pw);
    const i64 size = ci * kh * kw * co, in = ci * h * w;
    int failed = 0;
    memset(scratch, 0, threads * (size + co) * sizeof(float));
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *gw = thread_part(scratch, size + co);
        int32_t *at = malloc(in * sizeof(int32_t));
        failed = at == NULL;
#pragma omp for schedule(static)
        for (i64 b = 0; b < n; b++) {
            if (failed) continue;
            const i64 count = find_events(x + b * in, NULL, in, at);
            const float *gyb = gy + b * s.ho * s.wo * co;
            gather_events(at, count, gyb, gw, gbias ? gw + size : NULL, &s);
        }
        free(at);
    }
    if (failed) return -1;
    sum_partials(scratch, gwt, gbias, size, co, threads);
    return 0;
}

/* ---- the event convolution and the 2x2 max pooling after it, one sample at a time ----------
 * Each sample's convolution output [ho, wo, co] is made in a buffer of the thread (small enough
 * to stay in cache) and pooled from there: y, index NCHW [n, co, ho/2, wo/2] as in
 * pool2x2_forward, and nothing of full size is written; xbytes (or NULL) receives x as bytes.
 * The backward pass makes each sample's output gradient in that buffer from the pooled one and
 * sums the weight / bias gradients from it, reading x as floats (x) or bytes (xbytes, where x
 * is NULL): the same sums, in the same order, as the two kernels one after the other. Both
 * return -1 where a thread's buffer could not be allocated, else 0. */
int event_conv_pool_forward(const float *x, const float *wt, const float *bias, float *y,
                            uint8_t *index, uint8_t *xbytes, i64 n, i64 ci, i64 h, i64 w, i64 co,
                            i64 kh, i64 kw, i64 ph, i64 pw, int threads) {
    const ConvShape s = conv_shape(ci, h, w, co, kh, kw, ph, pw);
    const i64 ho = s.ho / 2, wo = s.wo / 2, plane = co * ho * wo, row = s.wo * co, in = ci * h * w;
    const size_t buffer = (s.ho * row + wo * co) * sizeof(float) + in * sizeof(int32_t) + wo * co;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *tile = malloc(buffer);
        float *best = tile + s.ho * row;
        int32_t *at = (int32_t *)(best + wo * co);
        uint8_t *where = (uint8_t *)(at + in);
        failed = tile == NULL;
#pragma omp for schedule(dynamic, 4)
        for (i64 b = 0; b < n; b++) {
            if (failed) continue;
            const i64 count = find_events(x + b * in, NULL, in, at);
            scatter_events(at, count, wt, bias, tile, &s);
            for (i64 oy = 0; oy < ho; oy++) {
                const float *top = tile + 2 * oy * row;
                const i64 at_y = b * plane + oy * wo;
                pool_row(top, top + row, y + at_y, index + at_y, co, wo, ho * wo, best, where);
            }
            if (xbytes) {
                memset(xbytes + b * in, 0, in);
                for (i64 e = 0; e < count; e++) xbytes[b * in + at[e]] = 1;
            }
        }
        free(tile);
    }
    return failed ? -1 : 0;
}

/* gy, index: the pooled gradient and index, NCHW [n, co, ho/2, wo/2]; gwt, gbias, scratch as in
 * event_conv_weight_grad. */
int event_conv_pool_weight_grad(const float *x, const uint8_t *xbytes, const float *gy,
                                const uint8_t *index, float *gwt, float *gbias, float *scratch,
                                i64 n, i64 ci, i64 h, i64 w, i64 co, i64 kh, i64 kw, i64 ph,
                                i64 pw, int threads) {
    const ConvShape s = conv_shape(ci, h, w, co, kh, kw, ph, pw);
    const i64 ho = s.ho / 2, wo = s.wo / 2, plane = co * ho * wo, row = s.wo * co, in = ci * h * w;
    const size_t buffer = (s.ho * row + wo * co) * sizeof(float) + in * sizeof(int32_t) + wo * co;
    const i64 size = ci * kh * kw * co;
    int failed = 0;
    memset(scratch, 0, threads * (size + co) * sizeof(float));
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *gw = thread_part(scratch, size + co);
        float *tile = malloc(buffer);
        float *g = tile + s.ho * row;
        int32_t *at = (int32_t *)(g + wo * co);
        uint8_t *where = (uint8_t *)(at + in);
        failed = tile == NULL;
        if (tile && s.ho % 2) memset(tile + (s.ho - 1) * row, 0, row * sizeof(float));
#pragma omp for schedule(static)
        for (i64 b = 0; b < n; b++) {
            if (failed) continue;
            for (i64 oy = 0; oy < ho; oy++) {
                float *top = tile + 2 * oy * row;
                const i64 at_y = b * plane + oy * wo;
                unpool_row(gy + at_y, index + at_y, top, top + row, co, s.wo, ho * wo, g, where);
            }
            const i64 count = x ? find_events(x + b * in, NULL, in, at)
                                : find_events(NULL, xbytes + b * in, in, at);
            gather_events(at, count, tile, gw, gbias ? gw + size : NULL, &s);
        }
        free(tile);
    }
    if (failed) return -1;
    sum_partials(scratch, gwt, gbias, size, co, threads);
    return 0;
}
