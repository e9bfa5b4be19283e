// Max pooling, one CUDA thread per output element, without building the windows in memory.
//
// replaces tinydeep/ops/pool.py:max_pool2d_forward   (kernel max_pool2d_forward)
// replaces tinydeep/ops/pool.py:max_pool2d_backward  (kernel max_pool2d_backward)
//
// Shapes (NHWC): x, dx (N, H, W, C); y, dy, argmax (N, OH, OW, C); every array C-contiguous.
// The window geometry is conv.cu's: window offset (i, j) of window (r, q) is real pixel
// (r*SH + i - top, q*SW + j - left), or the padding outside [0, H) x [0, W).
// argmax is the offset i*KW + j in [0, KH*KW) of each window's maximum, as the reference's
// argmax over the (KH*KW) axis of im2col's windows.

// The reference pads with `lowest` (-inf, or the integer minimum) and takes numpy's argmax:
// the first maximum in row-major window order, and the first NaN if there is one (NaN
// beats every number, as in numpy). A padded offset can win only when every value of the
// window equals `lowest`, exactly as in the reference.
template <typename T>
__global__ void max_pool2d_forward(const T* x, T* y, long long* argmax, const T lowest,
                                   const int n, const int h, const int w, const int c,
                                   const int oh, const int ow, const int kh, const int kw,
                                   const int sh, const int sw, const int top, const int left,
                                   const long long total) {
  const long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (index >= total) return;
  // index -> (b, r, q, k) of y, row-major.
  long long rest = index;
  const int k = rest % c; rest /= c;
  const int q = rest % ow; rest /= ow;
  const int r = rest % oh; rest /= oh;
  const int b = (int)rest;
  T best = lowest;
  long long best_offset = -1;  // no value seen yet
  for (int i = 0; i < kh; ++i) {
    const int row = r * sh + i - top;
    for (int j = 0; j < kw; ++j) {
      const int col = q * sw + j - left;
      const bool inside = 0 <= row && row < h && 0 <= col && col < w;
      const T v = inside ? x[(((long long)b * h + row) * w + col) * c + k] : lowest;
      // v != v is true only for NaN (and never for integers).
      if (best_offset < 0 || v > best || (v != v && best == best)) {
        best = v;
        best_offset = i * kw + j;
      }
    }
  }
  y[index] = best;
  argmax[index] = best_offset;
}

// dx as a gather over the windows that contain each pixel (windows overlap when SH < KH or
// SW < KW): no atomics, deterministic. The reference builds dcols = (argmax == offset) * dy
// and hands it to col2im, which adds offsets (i, j) in row-major order from 0; this kernel
// adds the same products in the same order, so it matches the reference bit for bit (the
// product, not a branch, also carries a NaN or inf of dy the way the reference does).
template <typename T>
__global__ void max_pool2d_backward(const T* dy, const long long* argmax, T* dx,
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
    const int t = y + top - i;  // window row r holds this pixel at offset i when r*SH + i = t
    if (t < 0 || t % sh != 0 || t / sh >= oh) continue;
    const int r = t / sh;
    for (int j = 0; j < kw; ++j) {
      const int s = u + left - j;
      if (s < 0 || s % sw != 0 || s / sw >= ow) continue;
      const int q = s / sw;
      const long long o = (((long long)b * oh + r) * ow + q) * c + k;
      sum += (T)(argmax[o] == i * kw + j) * dy[o];
    }
  }
  dx[index] = sum;
}
