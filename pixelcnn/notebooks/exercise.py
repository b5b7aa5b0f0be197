# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PixelCNN on colored MNIST: the exercise
#
# CS294-158 (Deep Unsupervised Learning, UC Berkeley) asks for a PixelCNN on colored MNIST with the
# architecture of Table 1 of *Pixel Recurrent Neural Networks* (van den Oord et al., 2016), and for five
# deliverables: the training and validation loss curves and the test negative log-likelihood, all in bits
# per dimension; 100 samples; and the receptive field of the conditional at (14, 14, 0) at random weights.
# This notebook walks through the solution in that order. It reads the small parts of the model in full
# and runs the fast ones from the `pixelcnn` package, whose every promise has a test.
#
# **Two ways to run it.** With `MODE = "shipped"` the figures come from the shipped `paper` checkpoint
# (trained to 0.1222 test bits/dim). With `MODE = "train"` the notebook first trains a model here, for
# `STEPS` steps of the `PRESET` size (`tiny` learns visible strokes in a few minutes on a laptop).
# `python -m pixelcnn notebook --out exercise.ipynb --execute` writes and runs it (`--train` for the second
# way).

# %% tags=["parameters"]
MODE = "shipped"  # "shipped": the figures of checkpoints/paper; "train": train a model in this notebook first
PRESET = "tiny"  # with MODE = "train": the model's size (tiny, live, lecture, paper)
STEPS = 300  # with MODE = "train": optimizer steps of 64 images
TEST_LIMIT = None  # test images for the test bits/dim (None: all 10,000)

# %%
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import pixelcnn as px

px.set_interactive_threads()  # the dashboard's settings: one thread, denormals flushed (fast sampling)

# %% [markdown]
# ## 1. The data and its factorization
#
# Colored MNIST: each grey digit gets a random background and foreground colour, and every value is
# quantized to 4 levels, so an image is 28 x 28 pixels x 3 channels, each value in {0, 1, 2, 3}:
# 2,352 dimensions. 55,000 training images, 5,000 for validation (the last of the 60,000), 10,000 test.

# %%
data = px.load_data()
print({split: images.shape for split, images in data.items()})
px.show(data["train"][:20])

# %% [markdown]
# A PixelCNN models the image autoregressively over pixels in raster order (row by row, left to right),
# and, as the exercise asks, the three channels of a pixel independently given the pixels before it:
#
# $$p(x) = \prod_{i=1}^{784} \prod_{c=1}^{3} p(x_i^c \mid x_{<i}).$$
#
# Each factor is a 4-way softmax. Training minimises the negative log-likelihood, which we report in
# **bits per dimension**: the mean cross-entropy in nats over all 2,352 dimensions, divided by ln 2. A
# model that knows nothing (uniform over 4 values) scores exactly log2 4 = 2 bits/dim.

# %% [markdown]
# ## 2. Masks: type A and type B
#
# A convolution sees a square around each pixel; a *masked* convolution zeroes the taps that would see
# the current pixel's future. Type A (the first layer) hides the current pixel too, since it is what the
# layer predicts; type B (every later layer) shows it, because there the "current pixel" holds features
# computed only from earlier pixels. With channels independent given earlier pixels, A and B differ only
# at the centre tap.

# %%
def mask(kernel_size: int, mask_type: str) -> torch.Tensor:
    """The k x k 0/1 mask: rows above the centre, and the centre row left of the centre (and, for type B,
    the centre itself)."""
    m = torch.zeros(kernel_size, kernel_size)
    centre = kernel_size // 2
    m[:centre] = 1
    m[centre, :centre + (mask_type == "B")] = 1
    return m


print("type A, 7x7:\n", mask(7, "A").int().numpy())
print("type B, 3x3:\n", mask(3, "B").int().numpy())

# %% [markdown]
# ## 3. The model of Table 1, written out
#
# A 7x7 type A convolution, 12 residual blocks (Figure 5 of the paper: ReLU, 1x1 from 2h to h, ReLU, 3x3
# type B, ReLU, 1x1 back to 2h, plus the skip connection), then ReLU, 1x1, ReLU, 1x1 to 3 channels x 4
# levels of logits. The inputs are scaled from {0..3} to [-1, 1]. 1x1 convolutions need no mask: they see
# only the current position, whose features already come from earlier pixels.

# %%
class MaskedConv(nn.Conv2d):
    """A k x k convolution whose weights are multiplied by a type A or B mask before every use."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, mask_type: str):
        super().__init__(c_in, c_out, kernel_size, padding=kernel_size // 2)
        self.register_buffer("mask", mask(kernel_size, mask_type))

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class ResidualBlock(nn.Module):
    def __init__(self, h2: int):
        super().__init__()
        self.reduce = nn.Conv2d(h2, h2 // 2, 1)
        self.masked = MaskedConv(h2 // 2, h2 // 2, 3, "B")
        self.expand = nn.Conv2d(h2 // 2, h2, 1)

    def forward(self, x):
        h = self.reduce(F.relu(x))
        h = self.masked(F.relu(h))
        return x + self.expand(F.relu(h))


class SmallPixelCNN(nn.Module):
    """x (B, 3, 28, 28) in 0..3 -> logits (B, 4, 3, 28, 28)."""

    def __init__(self, h2: int = 128, blocks: int = 12):
        super().__init__()
        self.input_conv = MaskedConv(3, h2, 7, "A")
        self.blocks = nn.ModuleList(ResidualBlock(h2) for _ in range(blocks))
        self.output_hidden = nn.Conv2d(h2, h2, 1)
        self.output_logits = nn.Conv2d(h2, 3 * 4, 1)

    def forward(self, x):
        h = self.input_conv(x.float() * (2 / 3) - 1)
        for block in self.blocks:
            h = block(h)
        logits = self.output_logits(F.relu(self.output_hidden(F.relu(h))))
        return logits.view(len(x), 4, 3, 28, 28)

# %% [markdown]
# The package's model is the same network, made fast: its masked kernels store only the rows at and above
# the centre (the rest are zero anyway), and its sampler reuses every activation computed for earlier
# pixels. This cell copies the package model's weights into the small one and checks that both compute
# the same logits: you read the small model and run the fast one.

# %%
if MODE == "train":
    run_dir = f"runs/notebook-{time.strftime('%Y%m%d-%H%M%S')}"
    summary = px.train_model(run_dir, PRESET, steps=STEPS, batch_size=64, lr=1e-2, lr_schedule="cosine",
                             grad_clip=1.0, eval_every=max(STEPS // 6, 1), val_limit=1000)
    model, run = px.load_model(run_dir), run_dir
else:
    model, run = px.load_model("paper"), "paper"
cfg = model.config
print(cfg, "\n", summary["status"] if MODE == "train" else "the shipped paper model")

small = SmallPixelCNN(cfg.hidden, cfg.n_blocks).eval()
with torch.no_grad():
    for name, target in small.named_parameters():
        source = model.get_parameter(name)
        if source.shape == target.shape:
            target.copy_(source)
        else:  # a masked kernel: the package stores its top k // 2 + 1 rows
            target.zero_()
            target[:, :, : source.shape[2]] = source * model.get_submodule(name.rsplit(".", 1)[0]).mask
    x = torch.randint(0, 4, (4, 3, 28, 28))
    difference = (small(x) - model(x)).abs().max().item()
print(f"largest difference between the two models' logits: {difference:.2e}")
assert difference < 1e-4, "the small model and the package's model disagree"

# %% [markdown]
# ## 4. Training and validation curves
#
# Train bits/dim at every step (smoothed) and validation bits/dim at each validation, both in bits per
# dimension. `python -m pixelcnn train` and the dashboard's Train page write the same curves. The shipped
# `paper` continued a run from random weights five times (12.6 epochs at 2e-3, 11 with dropout, then 16.5, 15.8
# and 8.9 with dropout on recolored batches): with `MODE = "shipped"` the first five figures are the earlier runs'
# (their records are kept in `checkpoints/trials/paper-scratch`, `paper-scratch-continued`, `paper-dropout`,
# `paper-recolor` and `paper-recolor2`), the sixth the last continuation's; each starts where the one before ends.

# %%
if MODE == "shipped":
    from IPython.display import display

    display(px.curves_figure("trials/paper-scratch"))
    display(px.curves_figure("trials/paper-scratch-continued"))
    display(px.curves_figure("trials/paper-dropout"))
    display(px.curves_figure("trials/paper-recolor"))
    display(px.curves_figure("trials/paper-recolor2"))
px.curves_figure(run)

# %% [markdown]
# ## 5. The test negative log-likelihood
#
# Mean bits/dim over the test images: what `python -m pixelcnn evaluate --split test` prints for the
# same checkpoint.

# %%
test = data["test"][:TEST_LIMIT]
start = time.perf_counter()
test_bits = px.bits_per_dim(model, test)
print(f"test bits/dim: {test_bits:.4f} on {len(test)} test images ({time.perf_counter() - start:.0f} s)")

# %% [markdown]
# ## 6. 100 samples
#
# Sampling runs the factorization forwards: draw pixel (0, 0)'s three values from their softmaxes, then
# pixel (0, 1) given it, and so on, 784 steps. The cached sampler computes each step from the layers'
# stored activations instead of a whole forward pass (it draws exactly what the naive one draws).

# %%
start = time.perf_counter()
samples = px.sample(model, 100, seed=0)
print(f"100 samples in {time.perf_counter() - start:.1f} s")
px.show(samples)

# %% [markdown]
# ## 7. The receptive field of the conditional at (14, 14, 0), at random weights
#
# Which input pixels can change log p(x[14, 14, 0] | x before it)? The gradient of that log-probability
# with respect to the input answers it: |gradient|, max over the three input channels, a 28x28 image
# (brighter is larger; log scale; the target pixel outlined in red). At random weights every connection
# the masks allow is live. The field is exactly zero at the target and after it (the autoregressive
# property) and also in a wedge up and to the right: the **blind spot**. A 3x3 type B kernel reaches one
# pixel up-right of its centre, but that pixel's own field only reaches further up-right from *its*
# centre row, so stacking them never covers the pixels right of the target in the rows just above. The
# Gated PixelCNN (`gated` in this package) removes it with separate vertical and horizontal stacks.

# %%
random_paper = px.random_model("paper", seed=0)
field = px.receptive_field(random_paper, 14, 14, 0)
print(f"{int((field > 0).sum())} input pixels influence the conditional at (14, 14, 0)")
px.field_picture(field, 14, 14)

# %% [markdown]
# And at the model's trained weights, the same pixels matter, with very different strengths: most of the
# weight sits on the nearest pixels.

# %%
px.field_picture(px.receptive_field(model, 14, 14, 0), 14, 14)

# %% [markdown]
# ## Where to go next
#
# The dashboard (`streamlit run streamlit_app.py`) shows each of these live, and more: where in an image
# the bits go, what the model predicts at a pixel, how a sample is drawn step by step, the same image
# compressed into -log2 p(x) bits, and class-conditional models that draw the digit asked for.
