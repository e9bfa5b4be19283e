// The window copies of convolution and pooling.
//
// replaces tinydeep/ops/conv.py:im2col   (kernel im2col)
// replaces tinydeep/ops/conv.py:col2im   (kernel col2im)
//
// Shapes (NHWC, as in tinydeep/ops/conv.py): x, dx (N, H, W, C); cols (N, OH, OW, KH, KW, C);
// dcols offset-major (KH, KW, N, OH, OW, C). Every array is C-contiguous (the Python side
// makes sure). Window (r, q) starts at padded-input pixel (r*SH, q*SW); the padding is `top`
// rows above and `left` columns to the left of the real pixels, so window offset (i, j) of
// window (r, q) reads real pixel (r*SH + i - top, q*SW + j - left), or the padding when that
// falls outside [0, H) x [0, W).
//
// Flat indices are 64-bit (a batch's cols easily pass 2^31 elements); coordinates are int.

// One thread per (b, r, q, k): window (r, q) of image b, channel k. It copies that channel's
// KH*KW values of the window into row (b, r, q) of cols. The first version, one thread per
// element of cols, spent six 64-bit divisions on every value it copied; with col2im's, its
// launches took the largest share of a ResNet-20 training step at batch 512 on an H200 (46 of
// 178 ms over three steps, a profile with blocking launches, 2026-12-01). Here four divisions
// serve KH*KW copies. Neighbouring threads are neighbouring channels, so each of the KH*KW
// writes of a warp is to consecutive addresses, as are its reads.
template <typename T>
__global__ void im2col(const T* x, T* cols, const T pad_value,
                       const int n, const int h, const int w, const int c,
                       const int oh, const int ow, const int kh, const int kw,
                       const int sh, const int sw, const int top, const int left,
                       const long long total) {
  const long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (index >= total) return;  // total = N*OH*OW*C
  // index -> (b, r, q, k), row-major.
  long long rest = index;
  const int k = rest % c; rest /= c;
  const int q = rest % ow; rest /= ow;
  const int r = rest % oh; rest /= oh;
  const int b = (int)rest;
  // Row (b, r, q) of cols starts at ((b*OH + r)*OW + q) * KH*KW*C = (index - k) * KH*KW.
  T* row = cols + (index - k) * kh * kw + k;
  const T* image = x + (long long)b * h * w * c + k;
  for (int i = 0; i < kh; ++i) {
    const int y = r * sh + i - top;  // the input row under window row i, maybe in the padding
    for (int j = 0; j < kw; ++j) {
      const int u = q * sw + j - left;  // the input column under window column j
      const bool inside = 0 <= y && y < h && 0 <= u && u < w;
      row[(i * kw + j) * c] = inside ? image[((long long)y * w + u) * c] : pad_value;
    }
  }
}

// The gradient of im2col as a gather: each thread owns one real pixel of dx and sums the
// gradients of the windows that copied it. No two threads write one element (no atomics),
// and the sum runs in the reference's order, kernel offset (i, j) row-major starting from 0,
// so the result is deterministic and equal to the reference's.
template <typename T>
__global__ void col2im(const T* dcols, T* dx,
                       const int n, const int h, const int w, const int c,
                       const int oh, const int ow, const int kh, const int kw,
                       const int sh, const int sw, const int top, const int left,
                       const long long total) {
  const long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (index >= total) return;
  // index -> (b, y, u, k) of dx, row-major.
  long long rest = index;
  const int k = rest % c; rest /= c;
  const int u = rest % w; rest /= w;
  const int y = rest % h; rest /= h;
  const int b = (int)rest;
  T sum = 0;
  for (int i = 0; i < kh; ++i) {
    // Window row r took this pixel at offset i when r*SH + i = y + top.
    const int t = y + top - i;
    if (t < 0 || t % sh != 0 || t / sh >= oh) continue;
    const int r = t / sh;
    for (int j = 0; j < kw; ++j) {
      const int s = u + left - j;
      if (s < 0 || s % sw != 0 || s / sw >= ow) continue;
      const int q = s / sw;
      sum += dcols[((((long long)(i * kw + j) * n + b) * oh + r) * ow + q) * c + k];
    }
  }
  dx[index] = sum;
}
