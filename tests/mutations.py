"""The mutation check: plant known bugs in a copy of tinydeep and expect the tests to fail.

    python tests/mutations.py              every mutation below, then a table
    python tests/mutations.py col2im-bound divide-sign   only these
    python tests/mutations.py --list       their names and what each plants

A test suite earns trust by failing when the code is wrong. Each mutation is a small, real
bug (a flipped sign, an off-by-one bound, a gradient off by 0.05%) planted by exact text
replacement in a temporary copy of the repository; the tests that guard that code then run
on the copy, as CI runs them (HYPOTHESIS_PROFILE=ci, the real data in TINYDEEP_DATA, PyTorch
installed), and must fail. A mutation that passes is a hole in the tests: the check exits 1
and names it. Then the unmutated copy runs every test that failed under a mutation, and must
pass them all, so each failure is the bug's, not the copy's.

The first mutations are those of the audit that opened issue 12; each of them once passed
every test. Add one here whenever a test is written against a bug: plant the bug, watch it
fail. Numba's compiled kernels are copied with the sources (their cache is keyed on a file's
size and time), so only a mutated kernel file compiles again.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str  # the bug, in words
    edits: tuple[tuple[str, str, str], ...]  # (file, exact text, replacement): each text once
    tests: tuple[str, ...]  # the test files (or node ids) that must catch it


ONE_CHUNK = "test_conv2d_kernels_match_the_reference_exactly_in_one_chunk"
# The F(4x4) variants alone: the F(2x2) ones before them take half a minute and cannot fail.
F4_KERNELS_TEST = (
    "tests/kernels/test_cpu_winograd.py::test_kernels_match_the_reference[whole-batch-float32-4]"
)

FINITE_LOSS_NAN_GRADIENT = (
    "test_a_finite_loss_with_a_non_finite_gradient_is_stopped_naming_the_first_weight"
)

PIPED_FIT_TEST = "test_verbose_auto_when_piped_prints_one_line_per_epoch_and_no_bar"
WATCHED_FIT_TEST = "test_verbose_auto_where_someone_watches_draws_a_bar_each_step_on_stdout"

MUTATIONS = [
    # ---- the audit's mutations ---------------------------------------------------------------
    Mutation(
        "divide-sign",
        "divide's backward: db = +dy * a / b**2 (the sign flipped)",
        (("tinydeep/ops/elementwise.py", "return da, -da * y", "return da, da * y"),),
        ("tests/ops/test_elementwise.py",),
    ),
    Mutation(
        "conv2d-bias-sign",
        "Conv2D subtracts its bias instead of adding it",
        (
            (
                "tinydeep/layers/conv2d.py",
                "y = y + self.bias  # (N, OH, OW, F) + (F,)",
                "y = y - self.bias  # (N, OH, OW, F) + (F,)",
            ),
        ),
        ("tests/layers/test_conv2d.py",),
    ),
    Mutation(
        "col2im-bound",
        "the Numba col2im takes window column OW, one past the last (>= made >)",
        (("kernels/cpu/conv.py", "s // sw >= ow", "s // sw > ow"),),
        ("tests/kernels/test_cpu_conv.py",),
    ),
    Mutation(
        "col2im-bound-via-conv2d",
        "the same bug, against the conv2d kernels' one-chunk test alone: it compares them "
        "with conv2d's reference, which must not run the col2im kernel inside it",
        (("kernels/cpu/conv.py", "s // sw >= ow", "s // sw > ow"),),
        ("tests/kernels/test_cpu_conv.py::" + ONE_CHUNK,),
    ),
    Mutation(
        "batchnorm-divisor",
        "batch norm's backward divides by M - 1 instead of M",
        (
            (
                "tinydeep/ops/normalization.py",
                "dx = (gamma * inv_std / m) * (m * dy - dbeta - x_hat * dgamma)",
                "dx = (gamma * inv_std / (m - 1)) * (m * dy - dbeta - x_hat * dgamma)",
            ),
        ),
        ("tests/ops/test_normalization.py", "tests/kernels/test_cpu_normalization.py"),
    ),
    Mutation(
        "ftrl-sign",
        "FTRL adds sigma * param to z instead of subtracting it",
        (
            (
                "tinydeep/optim.py",
                "linear += grad - (root_new - root) / lr * param",
                "linear += grad + (root_new - root) / lr * param",
            ),
        ),
        ("tests/test_optim.py",),
    ),
    Mutation(
        "sgd-momentum",
        "SGD's momentum buffer decays by (1 - momentum) instead of momentum, "
        "in the reference and in the kernel",
        (
            ("tinydeep/optim.py", "buf *= momentum\n", "buf *= 1 - momentum\n"),
            (
                "kernels/cpu/optim.py",
                "b = g if first else buf[i] * momentum + damped * g",
                "b = g if first else buf[i] * (1 - momentum) + damped * g",
            ),
        ),
        ("tests/test_optim.py",),
    ),
    Mutation(
        "sgd-dampening",
        "SGD ignores dampening, the same way in the reference and in the kernel",
        (
            (
                "tinydeep/optim.py",
                "buf += grad if dampening == 0 else (1 - dampening) * grad",
                "buf += grad",
            ),
            (
                "kernels/cpu/optim.py",
                "lr, momentum, 1 - dampening, nesterov",
                "lr, momentum, 1, nesterov",
            ),
        ),
        ("tests/test_optim.py",),
    ),
    Mutation(
        "sigmoid-backward-0.05%",
        "sigmoid's backward 0.05% too large",
        (
            (
                "tinydeep/ops/elementwise.py",
                "return (dy * y * (1 - y),)",
                "return (dy * y * (1 - y) * 1.0005,)",
            ),
        ),
        ("tests/ops/test_elementwise.py",),
    ),
    # ---- the other holes the audit named -----------------------------------------------------
    Mutation(
        "activation-softmax-axis",
        "the 'softmax' activation normalizes over the first axis instead of the last",
        (("tinydeep/activations.py", "ops.softmax(x, axis=-1)", "ops.softmax(x, axis=0)"),),
        ("tests/layers/test_simple_layers.py",),
    ),
    Mutation(
        "dense-bias-sign",
        "Dense subtracts its bias instead of adding it",
        (("tinydeep/layers/dense.py", "y = y + self.bias", "y = y - self.bias"),),
        ("tests/layers/test_dense.py",),
    ),
    Mutation(
        "gradcheck-empty-passes",
        "gradcheck passes an empty Jacobian again",
        (("tinydeep/gradcheck.py", "if sum(o.size for o in outs) == 0:", "if False:"),),
        ("tests/test_gradcheck.py",),
    ),
    # ---- the other kernels the audit's hole covered ------------------------------------------
    Mutation(
        "maxpool-ties",
        "the Numba max pooling takes the last of tied maxima, not the first (> made >=)",
        (("kernels/cpu/pool.py", "if p == 0 or v > best or", "if p == 0 or v >= best or"),),
        ("tests/kernels/test_cpu_pool.py",),
    ),
    Mutation(
        "maxpool-backward-bound",
        "the Numba max pooling backward takes window column OW, one past the last",
        (("kernels/cpu/pool.py", "s // sw >= ow", "s // sw > ow"),),
        ("tests/kernels/test_cpu_pool.py",),
    ),
    Mutation(
        "embedding-scatter-overwrites",
        "the Numba scatter-add overwrites repeated rows instead of adding them",
        (
            (
                "kernels/cpu/embedding.py",
                "target[indices[i], d] += values[i, d]",
                "target[indices[i], d] = values[i, d]",
            ),
        ),
        ("tests/kernels/test_cpu_embedding.py",),
    ),
    # ---- issue 15: a failed call or step changes nothing (tinydeep/rollback.py) -------------
    Mutation(
        "rollback-nothing-undone",
        "a block that fails keeps its changes: a bad input deep in a model, or a step out of "
        "memory, leaves the moving statistics the layers before it moved",
        (
            (
                "tinydeep/rollback.py",
                "                if kind is not None:\n                    undo()\n",
                "                pass\n",
            ),
        ),
        (
            "tests/test_rollback.py",
            "tests/test_bad_input.py::test_a_failure_deep_in_a_model_puts_back_what_earlier_layers_updated",
            "tests/test_train.py::test_running_out_of_memory_undoes_the_step_and_names_it",
        ),
    ),
    Mutation(
        "rollback-inner-decides",
        "a nested block (an inner layer's call) decides for itself: what it changed stands "
        "when the outer call fails after it",
        (
            (
                "tinydeep/rollback.py",
                "self.outermost = _record is None  # else an outer block decides for both",
                "self.outermost = True  # else an outer block decides for both",
            ),
        ),
        (
            "tests/test_rollback.py",
            "tests/test_bad_input.py::test_a_failure_deep_in_a_model_puts_back_what_earlier_layers_updated",
        ),
    ),
    Mutation(
        "rejected-step-kept",
        "a step the non-finite guard rejects keeps the moving statistics it moved",
        (("tinydeep/train.py", "            rollback.undo()\n", ""),),
        ("tests/test_train.py::" + FINITE_LOSS_NAN_GRADIENT,),
    ),
    Mutation(
        "step-error-kept",
        "only the model call is all or nothing in a step: a loss that raises after it leaves "
        "the moving statistics moved",
        (
            (
                "tinydeep/train.py",
                "    with naming_out_of_memory(*where, UNDONE), rollback.all_or_nothing():",
                "    with naming_out_of_memory(*where, UNDONE):",
            ),
        ),
        ("tests/test_train.py::test_a_step_that_fails_after_the_forward_pass_changes_nothing",),
    ),
    # ---- issue 13: the speed work ------------------------------------------------------------
    Mutation(
        "winograd-keeps-infinities-wrong",
        "the conv2d kernels keep Winograd's result when the input held an infinity",
        (
            (
                "kernels/cpu/conv.py",
                "        if finite:\n            return y\n",
                "        return y\n",
            ),
        ),
        ("tests/kernels/test_cpu_winograd.py::test_non_finite_values_give_the_reference_s_result",),
    ),
    Mutation(
        "winograd-reference-G",
        "the Winograd reference's filter transform with a sign lost in G's third row",
        (
            (
                "tinydeep/ops/winograd.py",
                "[0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)",
                "[0.5, 0.5, 0.5], [0, 0, 1]], dtype=np.float64)",
            ),
        ),
        ("tests/kernels/test_cpu_winograd.py::test_reference_matches_im2col",),
    ),
    Mutation(
        "winograd-input-sign",
        "the Winograd kernel's input transform adds where B^T subtracts (row 2)",
        (
            (
                "kernels/cpu/winograd.py",
                "t[r2 + k] = d[r2 + k] - d[r1 + k]",
                "t[r2 + k] = d[r2 + k] + d[r1 + k]",
            ),
        ),
        ("tests/kernels/test_cpu_winograd.py::test_kernels_match_the_reference",),
    ),
    Mutation(
        "winograd-output-adjoint-sign",
        "the Winograd kernel's dY -> dM adds where A subtracts",
        (
            (
                "kernels/cpu/winograd.py",
                "r4[uint64(4) * span + gv + k] = g[gv + k] - g[g2 + gv + k]",
                "r4[uint64(4) * span + gv + k] = g[gv + k] + g[g2 + gv + k]",
            ),
        ),
        ("tests/kernels/test_cpu_winograd.py::test_kernels_match_the_reference",),
    ),
    Mutation(
        "winograd4-reference-AT",
        "the F(4x4) reference's output transform with a sign lost in A^T's last row",
        (("tinydeep/ops/winograd.py", "[0, 1, -1, 8, -8, 1]]", "[0, 1, -1, 8, 8, 1]]"),),
        ("tests/kernels/test_cpu_winograd.py::test_reference_matches_im2col",),
    ),
    Mutation(
        "winograd4-kernel-BT",
        "the F(4x4) kernels' B^T with a sign lost in its fifth row",
        (("kernels/cpu/winograd.py", "[0, 2, -1, -2, 1, 0],", "[0, 2, -1, 2, 1, 0],"),),
        (F4_KERNELS_TEST,),
    ),
    Mutation(
        "winograd4-dx-overlap",
        "the F(4x4) kernel's dx keeps one tile's share where neighbouring tiles overlap",
        (("kernels/cpu/winograd.py", "gt[q + k] += (", "gt[q + k] = ("),),
        (F4_KERNELS_TEST,),
    ),
    Mutation(
        "winograd4-choice",
        "the conv2d kernels take F(4x4) when either output side (not both) is 8 or more",
        (("kernels/cpu/conv.py", "min(oh, ow) >= F4_MIN_SIDE", "max(oh, ow) >= F4_MIN_SIDE"),),
        ("tests/kernels/test_cpu_winograd.py::test_conv2d_kernels_take_f4_where_it_is_faster",),
    ),
    Mutation(
        "winograd-dw-drops-a-part",
        "the Winograd kernel's dw leaves out the third part's share",
        (
            (
                "kernels/cpu/winograd.py",
                "for share, _ in results[1:]:",
                "for share, _ in results[2:]:",
            ),
        ),
        # the one case that splits dw into three parts (the file's others run 50 s before it)
        (
            (
                "tests/kernels/test_cpu_winograd.py::test_kernels_match_the_reference"
                "[one-image-chunks-3-parts-float32-2]"
            ),
        ),
    ),
    Mutation(
        "conv-turned-round-padding",
        "dx by the turned-round kernel pads top where the bottom is due (and back)",
        (
            (
                "kernels/cpu/conv.py",
                "pads = ((kh - 1 - top, kh - 1 - bottom),",
                "pads = ((kh - 1 - bottom, kh - 1 - top),",
            ),
        ),
        ("tests/kernels/test_cpu_conv.py::test_conv2d_kernels_in_chunks_of_one_image",),
    ),
    Mutation(
        "threads-split-gap",
        "the batch's parts leave the last item of every part out",
        (
            (
                "kernels/cpu/threads.py",
                "return [(n * t // parts, n * (t + 1) // parts) for t in range(parts)]",
                (
                    "return [(n * t // parts, max(n * t // parts, n * (t + 1) // parts - 1)) "
                    "for t in range(parts)]"
                ),
            ),
        ),
        ("tests/kernels/test_cpu_threads.py",),
    ),
    Mutation(
        "batch-norm-part-drops-a-row",
        "each batch-norm part sums one row fewer than its blocks hold",
        (
            (
                "kernels/cpu/normalization.py",
                "rows = slice(b0 * BLOCK, b1 * BLOCK)",
                "rows = slice(b0 * BLOCK, b1 * BLOCK - 1)",
            ),
        ),
        ("tests/kernels/test_cpu_threads.py",),
    ),
    Mutation(
        "graph-keeps-intermediates",
        "an op's Node keeps its non-leaf inputs themselves, arrays and all, until backward",
        (
            (
                "tinydeep/tensor.py",
                "tensors.append(t if keep else t.graph_handle())",
                "tensors.append(t)",
            ),
        ),
        ("tests/test_tensor.py",),
    ),
    # ---- issue 14: arrays that do not fit their geometry, and mixed dtypes -------------------
    # Each removes one check that runs before dispatch; without it the Numba and CUDA kernels
    # read out of bounds, or a CUDA kernel is handed two dtypes.
    Mutation(
        "col2im-unchecked",
        "col2im runs on a dcols of any shape (its check before dispatch removed)",
        (("tinydeep/ops/conv.py", "@kernelized(check=check_col2im)", "@kernelized"),),
        ("tests/ops/test_conv.py::test_col2im_rejects_dcols_that_do_not_fit_the_geometry",),
    ),
    Mutation(
        "im2col-unchecked",
        "im2col takes a window of another x (the reference's strided view reads past x)",
        (("tinydeep/ops/conv.py", "@kernelized(check=check_im2col)", "@kernelized"),),
        ("tests/ops/test_conv.py::test_a_window_that_does_not_fit_x_shape_is_an_error",),
    ),
    Mutation(
        "conv2d-backward-unchecked",
        "conv2d_backward runs on a dy of any shape",
        (("tinydeep/ops/conv.py", "@kernelized(check=check_conv2d_backward)", "@kernelized"),),
        (
            "tests/ops/test_conv.py::test_conv2d_backward_rejects_a_dy_that_is_not_the_outputs_shape",
        ),
    ),
    Mutation(
        "maxpool-backward-unchecked",
        "max_pool2d_backward runs on dy and argmax of any shape and dtype",
        (("tinydeep/ops/pool.py", "@kernelized(check=check_max_pool2d_backward)", "@kernelized"),),
        ("tests/ops/test_pool.py",),
    ),
    Mutation(
        "embedding-checks-late",
        "embedding's checks of table and ids run inside the reference, where a kernel that "
        "replaces the whole forward (the CUDA one) skips them",
        (
            ("tinydeep/ops/embedding.py", "@kernelized(check=check_embedding)", "@kernelized"),
            (
                "tinydeep/ops/embedding.py",
                'check_ids_in_range("embedding", table, ids)',
                'check_embedding(table, ids)\n    check_ids_in_range("embedding", table, ids)',
            ),
        ),
        (
            "tests/ops/test_embedding.py::test_the_checks_of_shapes_and_dtypes_run_before_any_kernel",
        ),
    ),
    Mutation(
        "batch-norm-unpromoted",
        "batch_norm hands its kernels x, gamma, beta, mean, var of different dtypes (the CUDA "
        "kernels take one)",
        (
            (
                "tinydeep/ops/normalization.py",
                "    x, gamma, beta, mean, var = promoted(x, gamma, beta, mean, var)\n",
                "",
            ),
        ),
        ("tests/ops/test_normalization.py",),
    ),
    Mutation(
        "bn-backward-unchecked",
        "batch_norm_backward runs on a dy of any shape and dtype",
        (
            (
                "tinydeep/ops/normalization.py",
                "@kernelized(check=check_batch_norm_backward)",
                "@kernelized",
            ),
        ),
        (
            "tests/ops/test_normalization.py::test_a_dy_of_another_shape_or_dtype_than_y_is_an_error",
        ),
    ),
    # ---- issue 15: the checks moved to tinydeep/ops/checks.py, still called ---------------------
    Mutation(
        "avgpool-backward-unchecked",
        "avg_pool2d_backward runs on a dy of any shape (its call to the check removed)",
        (("tinydeep/ops/pool.py", "    check_avg_pool2d_backward(dy, cache)\n", ""),),
        ("tests/ops/test_pool.py",),
    ),
    Mutation(
        "batch-norm-forward-unchecked",
        "batch_norm_forward takes gamma, beta, mean, var of any shape",
        (
            (
                "tinydeep/ops/normalization.py",
                "    check_batch_norm(x, gamma, beta, mean=mean, var=var)\n",
                "",
            ),
        ),
        ("tests/ops/test_normalization.py::test_errors_name_the_op_the_argument_and_the_shapes",),
    ),
    Mutation(
        "cuda-channel-sums-typo",
        "normalization.cu's channel sums read a[chanel]: the CUDA source no longer compiles",
        (("kernels/cuda/normalization.cu", "v -= a[channel];", "v -= a[chanel];"),),
        ("tests/kernels/test_cuda_compile.py",),
    ),
    Mutation(
        "cuda-relu-typo",
        "the ReLU ElementwiseKernel's body names an undefined variable (z for x)",
        (
            (
                "kernels/cuda/elementwise.py",
                '"y = (x > (T)0 || x != x) ? x : (T)0"',
                '"y = (z > (T)0 || x != x) ? x : (T)0"',
            ),
        ),
        ("tests/kernels/test_cuda_compile.py",),
    ),
    Mutation(
        "grad-dtype-unchecked",
        "step() lets a gradient of another dtype than its parameter through to the updates",
        (("tinydeep/optim_state.py", "if grad.dtype != p.data.dtype:", "if False:"),),
        ("tests/test_optim.py",),
    ),
    Mutation(
        "optimizer-step-checks-late",
        "step() checks no gradient up front: a bad one is found after others were applied",
        (("tinydeep/optim.py", "        self._check_gradients()\n", ""),),
        ("tests/test_optim.py",),
    ),
    Mutation(
        "sgd-update-unchecked",
        "sgd_update, called directly, runs on a gradient or buffer of another dtype or shape",
        (("tinydeep/optim.py", "@kernelized(check=check_sgd_update)", "@kernelized"),),
        ("tests/test_optim.py",),
    ),
    # ---- issue 15: kernels that decline --------------------------------------------------------
    Mutation(
        "decline-returned-to-caller",
        "the dispatcher hands a kernel's NotImplemented back to the caller instead of running "
        "the reference",
        (("tinydeep/backend.py", "if result is not NotImplemented:", "if True:"),),
        ("tests/test_backend.py", "tests/kernels/test_cpu_declines.py"),
    ),
    Mutation(
        "decline-runs-inner-kernels",
        "after a decline the reference runs with kernels on inside it (not alone)",
        (
            (
                "tinydeep/backend.py",
                "return alone(*args, **kwargs)  # the kernel declined these arguments",
                "return reference(*args, **kwargs)  # the kernel declined these arguments",
            ),
        ),
        ("tests/test_backend.py",),
    ),
    Mutation(
        "conv2d-takes-mixed-dtypes",
        "the conv2d kernel no longer declines x and w of different dtypes (it computes in x's)",
        (
            (
                "kernels/cpu/conv.py",
                "    if not _one_float(x, w):\n        return NotImplemented\n",
                "",
            ),
        ),
        ("tests/kernels/test_cpu_declines.py",),
    ),
    # ---- issue 16: data folders and offline loads ---------------------------------------------
    Mutation(
        "data-dir-itself-ignored",
        "a data_dir that holds the files is not used as it is: only <data_dir>/<name>/ is searched",
        (
            (
                "tinydeep/data/download.py",
                "    for layout in layouts:\n",
                "    for layout in layouts[:1]:\n",
            ),
        ),
        (
            "tests/data/test_download.py",
            "tests/data/test_adult.py",
            "tests/data/test_idx.py",
            "tests/data/test_cifar.py",
            "tests/data/test_california.py",
        ),
    ),
    Mutation(
        "data-dir-itself-wins",
        "data_dir itself wins over its sub-folder when both hold files (today's layouts change)",
        (
            (
                "tinydeep/data/download.py",
                "    for layout in layouts:\n",
                "    for layout in reversed(layouts):\n",
            ),
        ),
        ("tests/data/test_download.py",),
    ),
    Mutation(
        "failed-download-keeps-folders",
        "a failed download leaves behind the empty folders it made",
        (("tinydeep/data/download.py", "                path.rmdir()", "                pass"),),
        (
            "tests/data/test_download.py",
            "tests/data/test_adult.py",
            "tests/data/test_idx.py",
            "tests/data/test_cifar.py",
            "tests/data/test_california.py",
        ),
    ),
    Mutation(
        "failed-download-removes-existing-folders",
        "a failed download removes every empty folder on the way, not only those it made",
        (
            (
                "tinydeep/data/download.py",
                "made = [p for p in (folder, *folder.parents) if not p.exists()]",
                "made = [p for p in (folder, *folder.parents)]",
            ),
        ),
        ("tests/data/test_download.py",),
    ),
    Mutation(
        "message-ignores-the-setting",
        "DownloadError.explain names data_dir= whatever setting it is asked to name",
        (
            (
                "tinydeep/data/download.py",
                'f"  (or point {setting} or TINYDEEP_DATA',
                'f"  (or point data_dir= or TINYDEEP_DATA',
            ),
        ),
        ("tests/data/test_download.py",),
    ),
    Mutation(
        "california-wrong-divisor",
        "California housing's AveBedrms divides the bedrooms by the population, not the households",
        (
            (
                "tinydeep/data/california.py",
                "bedrooms / households,  # AveBedrms",
                "bedrooms / population,  # AveBedrms",
            ),
        ),
        ("tests/data/test_california.py",),
    ),
    Mutation(
        "california-target-in-thousands",
        "California housing's target is counted in 1,000 USD, not 100,000",
        (
            (
                "tinydeep/data/california.py",
                "return x, value / 100_000.0",
                "return x, value / 1_000.0",
            ),
        ),
        ("tests/data/test_california.py",),
    ),
    Mutation(
        "california-checksum-unchecked",
        "the California housing archive is downloaded without its SHA-256 check",
        (
            (
                "tinydeep/data/california.py",
                "fetch(URL, archive, SHA256, holds=",
                "fetch(URL, archive, None, holds=",
            ),
        ),
        ("tests/data/test_california.py",),
    ),
    Mutation(
        "california-hostile-names-accepted",
        "an archive naming paths outside itself (/x, ../x) is read as if it were the real one",
        (
            (
                "tinydeep/data/california.py",
                "    if hostile or data is None:\n",
                "    if data is None:\n",
            ),
        ),
        ("tests/data/test_california.py",),
    ),
    Mutation(
        "california-link-read",
        "a symbolic link named like the archive's table is followed and read",
        (
            (
                "tinydeep/data/california.py",
                "if member and member.isfile() else None",
                "if member else None",
            ),
        ),
        ("tests/data/test_california.py",),
    ),
    # ---- issue 16: the examples' command lines ------------------------------------------------
    Mutation(
        "example-device-unchecked",
        "resnet_cifar.py no longer checks --device cuda before loading data (a late traceback)",
        (
            (
                "examples/resnet_cifar.py",
                'parser.exit(2, f"{parser.prog}: error: {problem}\\n")',
                "pass",
            ),
        ),
        ("tests/test_examples_cli.py",),
    ),
    Mutation(
        "cuda-zero-gpus-usable",
        "device_problem finds nothing wrong when CuPy sees no GPU",
        (("tinydeep/backend.py", "    if count == 0:\n", "    if count < 0:\n"),),
        ("tests/test_backend.py",),
    ),
    Mutation(
        "verbose-auto-bar-in-a-log",
        'fit\'s verbose="auto" draws the progress bar when stdout is piped too',
        (("tinydeep/train.py", "return 1 if watched else 2", "return 1"),),
        (f"tests/test_train.py::{PIPED_FIT_TEST}",),
    ),
    Mutation(
        "progress-bar-on-stderr",
        "fit's progress bar writes to stderr (tqdm's default), apart from the epoch lines",
        (("tinydeep/train.py", "file=sys.stdout,  # where", "file=sys.stderr,  # where"),),
        (f"tests/test_train.py::{WATCHED_FIT_TEST}",),
    ),
    Mutation(
        "help-without-default",
        "mlp_fashion_mnist.py's --epochs help no longer shows its default",
        (
            (
                "examples/mlp_fashion_mnist.py",
                'help="passes over the training images (default: %(default)s)"',
                'help="passes over the training images"',
            ),
        ),
        ("tests/test_examples_cli.py",),
    ),
    Mutation(
        "one-epochs",
        'mlp_fashion_mnist.py says "after 1 epochs" again',
        (
            (
                "examples/mlp_fashion_mnist.py",
                "after {args.epochs} \"\n        f\"epoch{'' if args.epochs == 1 else 's'} on",
                "after {args.epochs} epochs on",
            ),
        ),
        ("tests/test_examples_cli.py",),
    ),
    # ---- issue 17: the functional API ----------------------------------------------------------
    Mutation(
        "functional-disconnected-unchecked",
        "Model(inputs, outputs) accepts outputs that need an Input missing from inputs",
        (
            (
                "tinydeep/layers/functional.py",
                "if isinstance(node.layer, InputLayer) and id(node) not in given:",
                "if False:",
            ),
        ),
        ("tests/layers/test_functional.py",),
    ),
    Mutation(
        "functional-connections-first-call",
        "the summary names every call of a shared layer as its first ([0])",
        (
            (
                "tinydeep/layers/functional.py",
                "calls[id(node)] = counts.get(id(node.layer), 0)",
                "calls[id(node)] = 0",
            ),
        ),
        ("tests/layers/test_functional.py",),
    ),
    Mutation(
        "functional-preorder",
        "the nodes run before the nodes they read (pre-order, not post-order)",
        (
            (
                "tinydeep/layers/functional.py",
                "                stack.append((node, True))\n",
                "                done.add(id(node))\n                order.append(node)\n",
            ),
        ),
        ("tests/layers/test_functional.py",),
    ),
    Mutation(
        "sequential-adds-a-misfit",
        "Sequential.add keeps a layer whose symbolic build failed",
        (
            (
                "tinydeep/layers/model.py",
                "        if self._symbolic is not None:  # build it now",
                "        self._stack.append(layer)\n        if self._symbolic is not None:  # build it now",
            ),
        ),
        ("tests/layers/test_functional.py",),
    ),
    # ---- issue 17: safetensors weights and DLPack -------------------------------------------
    Mutation(
        "safetensors-dotted-names",
        "save_weights names .safetensors tensors block1.conv1.kernel (PyTorch's style), not by "
        "the layer paths",
        (
            (
                "tinydeep/safetensors_weights.py",
                "contiguous = {name: np.ascontiguousarray(a)",
                'contiguous = {name.replace("/", "."): np.ascontiguousarray(a)',
            ),
        ),
        ("tests/test_safetensors_weights.py",),
    ),
    Mutation(
        "load-weights-piecemeal",
        "load_weights copies each weight that fits as it checks it, so a file whose last "
        "tensor does not fit changes all the others",
        (
            (
                "tinydeep/checkpoint.py",
                "        a = arrays[name]\n",
                (
                    "        a = arrays[name]\n"
                    "        if not check_only and a.shape == weight.shape:\n"
                    "            weight.data[...] = backend.to_device(a, weight.device)\n"
                ),
            ),
        ),
        ("tests/test_safetensors_weights.py",),
    ),
    Mutation(
        "safetensors-memory-order",
        "a weight stored column-major goes to the .safetensors file as its memory lies "
        "(transposed), not made C-ordered first",
        (
            (
                "tinydeep/safetensors_weights.py",
                "contiguous = {name: np.ascontiguousarray(a)",
                "contiguous = {name: a",
            ),
        ),
        ("tests/test_safetensors_weights.py",),
    ),
    Mutation(
        "from-dlpack-copies",
        "tinydeep.from_dlpack copies the producer's array instead of sharing its memory",
        (
            (
                "tinydeep/dlpack.py",
                "array = xp.from_dlpack(obj)",
                "array = xp.array(xp.from_dlpack(obj))",
            ),
        ),
        ("tests/test_dlpack.py",),
    ),
    Mutation(
        "dlpack-export-copies-views",
        "Tensor.__dlpack__ hands over a C-ordered copy of a strided tensor (a transpose), "
        "not its memory",
        (
            (
                "tinydeep/tensor.py",
                "return self.data.__dlpack__(**kwargs)",
                "return xp_of(self.data).ascontiguousarray(self.data).__dlpack__(**kwargs)",
            ),
        ),
        ("tests/test_dlpack.py",),
    ),
    # ---- issue 17: plot_model and draw_graph ---------------------------------------------------
    Mutation(
        "plot-edges-by-shape",
        "plot_model joins a layer to the last one that made a tensor of the same shape",
        (
            (
                "tinydeep/plot.py",
                "producer[id(x)] = graph.add_node(",
                "producer[x.shape] = graph.add_node(",
            ),
            ("tinydeep/plot.py", "if id(x) in producer:", "if x.shape in producer:"),
            (
                "tinydeep/plot.py",
                "graph.add_edge(producer[id(x)], node)",
                "graph.add_edge(producer[x.shape], node)",
            ),
            ("tinydeep/plot.py", "producer[id(x)] = node", "producer[x.shape] = node"),
        ),
        ("tests/test_plot.py",),
    ),
    Mutation(
        "plot-shared-layer-twice",
        "plot_model draws a layer called twice (a residual block's ReLU) as two nodes",
        (("tinydeep/plot.py", "if id(layer) not in layer_nodes:", "if True:"),),
        ("tests/test_plot.py",),
    ),
    Mutation(
        "plot-state-not-restored",
        "plot_model leaves the layers' output_shape from its batch of one",
        (("tinydeep/plot.py", "            _put_back_state(kept)", "            pass"),),
        ("tests/test_plot.py",),
    ),
    Mutation(
        "draw-graph-handle-apart",
        "draw_graph tells a big intermediate's graph handle apart from the tensor itself",
        (
            (
                "tinydeep/plot.py",
                'return ("node", id(tensor._node)) if tensor._node is not None else ("leaf", id(tensor))',
                'return ("leaf", id(tensor))',
            ),
        ),
        ("tests/test_plot.py",),
    ),
    Mutation(
        "layout-boxes-overlap",
        "the layout no longer puts a box that feeds a sibling box before it: blocks overlap",
        (("tinydeep/layout.py", "    _separate(rank, dag, groups)\n", "\n"),),
        ("tests/test_layout.py",),
    ),
    # ---- issue 17: ONNX export ------------------------------------------------------------------
    Mutation(
        "onnx-kernel-layout",
        "export stores Conv2D kernels as (F, C, KW, KH): KH and KW swapped",
        (
            (
                "tinydeep/onnx.py",
                "KERNEL_TO_OIHW = (3, 2, 0, 1)",
                "KERNEL_TO_OIHW = (3, 2, 1, 0)",
            ),
        ),
        ("tests/test_onnx.py",),
    ),
    Mutation(
        "onnx-same-padding-before",
        'export puts the odd pixel of "same" padding before (ONNX\'s SAME_LOWER), not after',
        (
            (
                "tinydeep/onnx.py",
                '"pads": [top, left, bottom, right],',
                '"pads": [bottom, right, top, left],',
            ),
        ),
        ("tests/test_onnx.py",),
    ),
    Mutation(
        "onnx-average-counts-padding",
        "export's AveragePool divides by the whole window, padding included",
        (
            (
                "tinydeep/onnx.py",
                '"AveragePool", count_include_pad=0',
                '"AveragePool", count_include_pad=1',
            ),
        ),
        ("tests/test_onnx.py",),
    ),
    Mutation(
        "onnx-batch-baked-in",
        "export writes a reshape's traced shape, the example's batch size included (Flatten)",
        (
            (
                "tinydeep/onnx.py",
                "shape = [n if n == m else -1 for n, m in zip(op.output.shape, twin.output.shape)]",
                "shape = list(op.output.shape)",
            ),
        ),
        ("tests/test_onnx.py",),
    ),
    # ---- issue 18: the MovieLens 100K loader, its splits and negatives ----------------------
    Mutation(
        "movielens-splitlines",
        "the loader splits a file with str.splitlines, which also breaks a line at the Latin-1 "
        "byte 0x85 (U+0085, NEL) inside a title",
        (
            (
                "tinydeep/data/movielens.py",
                'lines = text.replace("\\r\\n", "\\n").split("\\n")',
                "lines = text.splitlines()",
            ),
        ),
        ("tests/data/test_movielens.py",),
    ),
    Mutation(
        "movielens-ties-reversed",
        "the splits order a user's ratings of one time by file order reversed, so of ties the "
        "first in the file is held out, not the last",
        (
            (
                "tinydeep/data/movielens.py",
                "order = np.lexsort((timestamp, user))",
                "order = np.lexsort((-np.arange(len(user)), timestamp, user))",
            ),
        ),
        ("tests/data/test_movielens.py",),
    ),
    Mutation(
        "movielens-floor-of-the-float",
        "temporal_split and random_split floor the floating-point product: 0.29 of 100 ratings "
        "holds out 28 (0.29 * 100 is 28.999999999999996)",
        (
            (
                "tinydeep/data/movielens.py",
                "return np.floor(test_fraction * count + 1e-9).astype(np.int64)",
                "return np.floor(test_fraction * count).astype(np.int64)",
            ),
        ),
        ("tests/data/test_movielens.py",),
    ),
    Mutation(
        "movielens-negatives-rated",
        "sample_negatives no longer keys out the items a user rated: they can come up as negatives",
        (("tinydeep/data/movielens.py", "        keys[rated[rows]] = 2.0\n", ""),),
        ("tests/data/test_movielens.py",),
    ),
    Mutation(
        "movielens-zip-link-read",
        "read_archive reads a member stored as a symbolic link (only a folder is refused)",
        (
            (
                "tinydeep/data/movielens.py",
                "if info.is_dir() or kind not in (0, stat.S_IFREG):",
                "if info.is_dir() or kind == stat.S_IFDIR:",
            ),
        ),
        ("tests/data/test_movielens.py",),
    ),
    # ---- issue 18: MovieLens features, ranking metrics, Wide & Deep's dropout and parts -------
    Mutation(
        "movielens-cross-width",
        'a genre cross multiplies by the 19 genres, forgetting the "no genre" padding id, so '
        "two crosses share ids",
        (
            (
                "tinydeep/data/movielens_features.py",
                "genres, g = self.movie_genres[item], self.num_genres + 1",
                "genres, g = self.movie_genres[item], self.num_genres",
            ),
        ),
        ("tests/data/test_movielens_features.py",),
    ),
    Mutation(
        "movielens-nat-year",
        "a missing release date (NaT) becomes a year like any other (NumPy's -2**63 days)",
        (
            (
                "tinydeep/data/movielens_features.py",
                "np.where(np.isnat(data.release_date), np.nan, year)",
                "year",
            ),
        ),
        ("tests/data/test_movielens_features.py",),
    ),
    Mutation(
        "ranking-ties-for-the-positive",
        "positive_ranks counts only negatives scored strictly above the positive: a model "
        "that scores everything alike hits every time",
        (("tinydeep/metrics.py", "(s[:, 1:] >= positive)", "(s[:, 1:] > positive)"),),
        ("tests/test_metrics.py",),
    ),
    Mutation(
        "wide-deep-dropout-always",
        "Wide & Deep's dropout also drops units at inference",
        (
            (
                "tinydeep/models/wide_deep.py",
                "h = self.dropouts[i](h)  # in training only",
                "h = self.dropouts[i](h, training=True)",
            ),
        ),
        ("tests/models/test_wide_deep.py",),
    ),
    Mutation(
        "wide-deep-parts-swapped",
        "WideAndDeep.parts returns (deep, wide)",
        (
            (
                "tinydeep/models/wide_deep.py",
                "        return wide, deep\n",
                "        return deep, wide\n",
            ),
        ),
        ("tests/models/test_wide_deep.py",),
    ),
    # ---- issue 18: the PyTorch twin ----------------------------------------------------------
    Mutation(
        "twin-ftrl-l2-halved",
        "the twin's FTRL divides by n^q / lr + beta / lr + l2, the paper's lambda2 taken for "
        "TensorFlow's l2 (tinydeep's has 2 * l2)",
        (
            (
                "benchmarks/movielens_torch.py",
                'quadratic = root_new / lr + (group["beta"] / lr + 2 * l2)',
                'quadratic = root_new / lr + (group["beta"] / lr + l2)',
            ),
        ),
        ("tests/benchmarks/test_movielens_torch.py",),
    ),
    Mutation(
        "twin-ftrl-old-accumulator",
        "the twin's FTRL sets the weight from the accumulator before this step's gradient",
        (
            (
                "benchmarks/movielens_torch.py",
                'quadratic = root_new / lr + (group["beta"] / lr + 2 * l2)',
                'quadratic = root / lr + (group["beta"] / lr + 2 * l2)',
            ),
        ),
        ("tests/benchmarks/test_movielens_torch.py",),
    ),
]


# ---- running one mutation ---------------------------------------------------------------------


def copy_repository(destination: Path) -> None:
    """The package, the kernels (as tinydeep_kernels, the name they install under), the tests,
    the examples, the benchmarks (tests/benchmarks imports the PyTorch twin) and
    pyproject.toml, with file times kept so that Numba's cache stays valid."""
    ignore = shutil.ignore_patterns(".hypothesis", ".pytest_cache")
    shutil.copytree(ROOT / "examples", destination / "examples", ignore=ignore)
    shutil.copytree(ROOT / "benchmarks", destination / "benchmarks", ignore=ignore)
    shutil.copytree(ROOT / "tinydeep", destination / "tinydeep", ignore=ignore)
    shutil.copytree(ROOT / "kernels", destination / "tinydeep_kernels", ignore=ignore)
    shutil.copytree(ROOT / "tests", destination / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", destination / "pyproject.toml")


def apply(mutation: Mutation, copy: Path) -> None:
    for file, old, new in mutation.edits:
        path = copy / re.sub(r"^kernels/", "tinydeep_kernels/", file)
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(
                f"mutation {mutation.name}: {file} holds {text.count(old)} copies of {old!r}, "
                "expected exactly one (has the code changed? update tests/mutations.py)"
            )
        path.write_text(text.replace(old, new))


def environment(copy: Path) -> dict[str, str]:
    """CI's settings, with the copy's tinydeep and tinydeep_kernels first on the path (ahead
    of an editable install's finder)."""
    env = dict(os.environ, PYTHONPATH=str(copy), HYPOTHESIS_PROFILE="ci")
    env.setdefault("TINYDEEP_DATA", str(ROOT.parent / "shared" / "data"))
    return env


def run_tests(copy: Path, tests: tuple[str, ...], first_failure: bool) -> tuple[int, str]:
    """pytest on the copy: (exit code, its output). A mutation's run stops at its first
    failure, in one process (-n 0: the mutations themselves run side by side); the unmutated
    run takes every core, as pyproject.toml's addopts say (pytest-xdist)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf"]
    command += ["-x", "-n", "0"] * first_failure + [str(copy / t) for t in tests]
    done = subprocess.run(
        command, cwd=copy, env=environment(copy), capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr


def first_failed(output: str, copy: Path) -> str:
    """The first test pytest reports as FAILED, as a node id relative to the repository."""
    match = re.search(r"^FAILED (.+?)(?: - |$)", output, re.MULTILINE)  # ids may hold spaces
    return match.group(1).replace(str(copy) + "/", "") if match else "?"


def check_imports_from(copy: Path) -> None:
    code = "import tinydeep, tinydeep_kernels; print(tinydeep.__file__, tinydeep_kernels.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=copy,
        env=environment(copy),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if out.count(str(copy)) != 2:
        raise SystemExit(f"the copy's packages are not the ones imported: {out}")


def run_mutation(m: Mutation, scratch: Path) -> tuple[int, str, str, float]:
    """Plant `m` in a copy of its own and run its tests: (pytest's exit code, its output, the
    verdict, seconds). Caught means exit code 1: tests ran and failed (2-5 are errors, an
    empty run, a pass)."""
    copy = scratch / m.name
    copy_repository(copy)
    apply(m, copy)
    start = time.perf_counter()
    code, output = run_tests(copy, m.tests, first_failure=True)
    seconds = time.perf_counter() - start
    verdict = first_failed(output, copy) if code == 1 else f"NOT CAUGHT (pytest exit {code})"
    shutil.rmtree(copy)
    return code, output, verdict, seconds


# ---- the check --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="mutations run at once (default: the number of cores, %(default)s here)",
    )
    args = parser.parse_args()
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:26} {m.what}")
        return 0
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"no mutation named {sorted(unknown)}; --list shows them")
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]

    rows, holes = [], []
    with tempfile.TemporaryDirectory(prefix="tinydeep-mutations-") as scratch:
        clean = Path(scratch) / "clean"
        copy_repository(clean)
        check_imports_from(clean)
        # Each mutation is a pytest process of its own, mostly on one core: run as many at once
        # as there are cores (--jobs), and report them in the list's order.
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = pool.map(lambda m: run_mutation(m, Path(scratch)), chosen)
            for m, (code, output, verdict, seconds) in zip(chosen, results):
                if code != 1:
                    holes.append(m.name)
                    print(output[-3000:])
                rows.append((m.name, m.what, verdict, seconds))
                print(f"{m.name}: {verdict} ({seconds:.0f} s)", flush=True)
        # Every test that failed under a mutation must pass without one: then each failure is
        # the bug's, not the copy's (a broken copy would fail tests for every mutation).
        failed = tuple(dict.fromkeys(v for _, _, v, _ in rows if not v.startswith("NOT")))
        start = time.perf_counter()
        code, output = run_tests(clean, failed, first_failure=False)
        if code != 0:
            print(output[-4000:])
            print("these tests fail on the unmutated copy too: fix those first", file=sys.stderr)
            return 2
        print(f"unmutated: the {len(failed)} tests pass ({time.perf_counter() - start:.0f} s)")

    print("\n| mutation | the planted bug | first test to fail | seconds |")
    print("|---|---|---|---:|")
    for name, what, verdict, seconds in rows:
        print(f"| `{name}` | {what} | `{verdict}` | {seconds:.0f} |")
    if holes:
        print(f"\nnot caught: {', '.join(holes)}", file=sys.stderr)
        return 1
    print(f"\nall {len(rows)} mutations caught")
    return 0


if __name__ == "__main__":
    sys.exit(main())
