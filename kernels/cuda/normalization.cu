// Per-channel sums over the rows of a row-major (M, C) array: the reductions of batch norm.
//
// part of tinydeep/ops/normalization.py:batch_moments and :batch_norm_backward (the channel
// sums; kernels/cuda/normalization.py launches it)
//
// Why a kernel of its own: CuPy's reduction over axis 0 of an (M, C) array gives each block
// a group of outputs, and with C = 16 channels all 16 land in one block: a single block of
// threads walks the whole array (8M elements at batch 512), milliseconds per sum. Here the
// rows are split across a grid of blocks as well as the channels.
//
// Block (bx, by) of blockDim (32, 8): thread (tx, ty) owns channel c = 32*bx + tx, so a warp
// reads 32 neighbouring channels of one row (coalesced), and sums the rows
// r = 8*by + ty, then every 8*gridDim.y rows further. The 8 row-threads of each channel then
// add up in shared memory, in a fixed order, and write partial[by, c]. A second launch with
// gridDim.y = 1 sums the (gridDim.y, C) partials into (1, C). The order of the additions
// depends only on the shapes, so the result is deterministic.
//
// mode 0: sum of x            (the mean, dbeta)
// mode 1: sum of (x - a[c])^2 (the variance's squared deviations; a is the mean, (C,))
// mode 2: sum of x * a        (dgamma = sum of dy * x_hat; a is (M, C) like x)

template <typename T>
__global__ void channel_sums(const T* x, const T* a, T* partial, const long long m,
                             const int c, const int mode) {
  __shared__ T rows[8][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int channel = blockIdx.x * 32 + tx;
  T sum = 0;
  if (channel < c) {
    const long long step = 8LL * gridDim.y;
    for (long long r = 8LL * blockIdx.y + ty; r < m; r += step) {
      const long long at = r * c + channel;
      T v = x[at];
      if (mode == 1) {
        v -= a[channel];
        v *= v;
      } else if (mode == 2) {
        v *= a[at];
      }
      sum += v;
    }
  }
  rows[ty][tx] = sum;
  __syncthreads();
  if (ty == 0 && channel < c) {
    for (int k = 1; k < 8; ++k) sum += rows[k][tx];
    partial[(long long)blockIdx.y * c + channel] = sum;
  }
}
