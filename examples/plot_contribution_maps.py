"""
Contribution maps of a trained network
======================================

A network trained by gradient descent is an exact kernel machine: its output at any x is
its output at initialisation, plus one contribution per training example, plus weight
decay's share (Domingos' path kernel, made exact for discrete steps).
``PathKernelClassifier`` trains a small multilayer perceptron on the digits and
``decompose`` returns those contributions; this example maps them:

1. over the training set, drawn in two dimensions: which examples push a prediction up,
   which push it down;
2. as images: the training images weighted by their contributions, summed;
3. per training label: how much each class's examples add to the prediction;
4. each training example's contribution to its *own* prediction (self-influence).
"""

# %%
# Train the network, decompose its predictions
# ---------------------------------------------
# One hidden layer of 32 tanh units, full-batch gradient descent (no momentum: that would
# carry earlier gradients into later steps and break the per-step split).

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from gramfree import PathKernelClassifier

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, y_train, X_test, y_test = X[:400], y[:400], X[1500:], y[1500:]

net = PathKernelClassifier((32,), "tanh", learning_rate=0.5, n_steps=200, random_state=0)
net.fit(X_train, y_train)
print(f"test accuracy {net.score(X_test, y_test):.3f}")

queries = X_test[[2, 5]]
dec = net.decompose(queries)  # contributions: (queries, training examples, classes)
print("contributions", dec.contributions.shape)
print(
    f"initial + contributions + reg reproduces the logits to "
    f"{dec.reconstruction_error:.1e} (relative); worst per-step residual "
    f"{net.decomposition_error_:.1e}"
)

pred = dec.output.argmax(axis=1)
# C[q, i]: training example i's contribution to query q's predicted-class logit.
C = dec.contributions[np.arange(len(queries)), :, pred]

# %%
# 1. A map of the training set
# ----------------------------
# Each dot is a training image, placed by the first two principal components of the
# pixels and coloured by its contribution to the query's predicted-class logit (red: for,
# blue: against; the colour scale is symmetric). The star is the query.

pca = PCA(n_components=2, random_state=0).fit(X_train)
P, Q = pca.transform(X_train), pca.transform(queries)

fig, axes = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
for q, ax in enumerate(axes):
    lim = np.abs(C[q]).max()
    order = np.argsort(np.abs(C[q]))  # the largest on top
    sc = ax.scatter(
        P[order, 0],
        P[order, 1],
        c=C[q, order],
        cmap="RdBu_r",
        vmin=-lim,
        vmax=lim,
        s=18,
        edgecolors="none",
    )
    for label in range(10):
        centre = P[y_train == label].mean(axis=0)
        ax.text(
            *centre, str(label), fontsize=14, weight="bold", alpha=0.35, ha="center", va="center"
        )
    ax.scatter(*Q[q], marker="*", s=350, color="gold", edgecolors="black", zorder=5)
    ax.set_title(
        f"query {q}: predicted {net.classes_[pred[q]]}, logit "
        f"{dec.output[q, pred[q]]:+.2f}\n(initial {dec.initial[q, pred[q]]:+.2f}"
        f", training examples {C[q].sum():+.2f})",
        fontsize=10,
    )
    ax.set_xlabel("first principal component of the pixels")
    ax.set_ylabel("second principal component")
    fig.colorbar(sc, ax=ax, label="contribution to the predicted-class logit")
fig.suptitle(
    "Each training image's contribution to one prediction (grey digits: where each class lies)"
)
plt.show()

# %%
# 2. Contribution-weighted images
# -------------------------------
# ``sum_i C[q, i] * x_i`` over the examples for (positive ``C``) and against (negative
# ``C``): what the training images that carry the prediction look like together.

fig, axes = plt.subplots(len(queries), 3, figsize=(8, 2.9 * len(queries)), constrained_layout=True)
for q in range(len(queries)):
    pos, neg = np.clip(C[q], 0, None), np.clip(-C[q], 0, None)
    panels = [
        (queries[q], "query", "gray_r"),
        (pos @ X_train, f"for: sum of {pos.sum():.1f}", "Reds"),
        (neg @ X_train, f"against: sum of {neg.sum():.1f}", "Blues"),
    ]
    for ax, (image, title, cmap) in zip(axes[q], panels):
        im = ax.imshow(image.reshape(8, 8), cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[q, 1:], shrink=0.8, label="contribution x pixel value")
fig.suptitle("Training images weighted by their contributions, summed")
plt.show()

# %%
# 3. Contributions by training label
# ----------------------------------
# Summing the contributions of each class's training examples: the query's own class
# pushes its logit up, look-alike classes push it down, and the rest nearly cancel.

fig, axes = plt.subplots(1, len(queries), figsize=(11, 3.6), constrained_layout=True)
for q, ax in enumerate(axes):
    per_label = np.array([C[q, y_train == label].sum() for label in range(10)])
    ax.bar(range(10), per_label, color=np.where(per_label > 0, "tab:red", "tab:blue"))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(10))
    ax.set_xlabel("training label")
    ax.set_ylabel("sum of contributions")
    ax.set_title(f"query {q} (predicted {net.classes_[pred[q]]})", fontsize=10)
fig.suptitle("Contributions to the predicted-class logit, by the training examples' label")
plt.show()

# %%
# 4. Self-influence: what the network memorised
# ---------------------------------------------
# ``self_influence()`` is each training example's contribution to its own label's logit
# (one replay of the training). The examples with the largest values are the ones the
# network fitted by themselves rather than through their neighbours: atypical writing,
# and mislabelled images when there are any.

s = net.self_influence()
top = np.argsort(s)[::-1][:8]
fig = plt.figure(figsize=(12, 4.2), constrained_layout=True)
grid = fig.add_gridspec(2, 8, height_ratios=[1.4, 1])
ax = fig.add_subplot(grid[0, :])
ax.hist(s, bins=50, color="tab:gray")
ax.set_xlabel("self-influence (contribution to its own label's logit)")
ax.set_ylabel("training examples")
ax.set_title("Self-influence of the 400 training images; below, the 8 largest")
for j, i in enumerate(top):
    a = fig.add_subplot(grid[1, j])
    a.imshow(X_train[i].reshape(8, 8), cmap="gray_r", interpolation="nearest")
    a.set_title(f"#{i}, label {y_train[i]}\n{s[i]:.1f}", fontsize=8)
    a.set_xticks([])
    a.set_yticks([])
plt.show()
