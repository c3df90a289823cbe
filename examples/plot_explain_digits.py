"""
The training images behind a prediction
========================================

A fitted kernel machine predicts ``sum_j k(x, x_j) * dual_coef_[j]`` over its centres, and
every centre is a training image: each term is one training image's *contribution* to the
prediction. ``model.explain(X, top_k)`` ranks them; this example draws, for a few test
digits, the training images that push the predicted class's score up (for) and down
(against), with their labels and contributions.
"""

# %%
# Fit and explain
# ---------------
# The model of the README's tour: rbf kernel on the 8 x 8 digits, pixels in [0, 1],
# 1500 training images, every one a centre (``solver="auto"`` solves exactly at this
# size).

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from gramfree import KernelClassifier

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, y_train, X_test, y_test = X[:1500], y[:1500], X[1500:], y[1500:]

clf = KernelClassifier(gamma=0.02, alpha=1e-3).fit(X_train, y_train)
pred = clf.predict(X_test)
print(f"test accuracy {np.mean(pred == y_test):.3f}, solver {clf.solver_}")

# Two correctly classified test digits and the first mistake.
wrong = np.flatnonzero(pred != y_test)
queries = np.array([0, 1, wrong[0]])
top_k = 4
ex = clf.explain(X_test[queries], top_k=top_k)
print(ex)

# %%
# Draw the query and its top training images for and against
# -----------------------------------------------------------
# Each row: the test image (true label, prediction), then the training images with the
# largest positive contributions to the predicted class's score (green), then those with
# the most negative ones (red). Above each training image: its training label and its
# contribution.


def show(ax, image, title, color="black"):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", interpolation="nearest")
    ax.set_title(title, fontsize=8, color=color)
    ax.set_xticks([])
    ax.set_yticks([])


fig, axes = plt.subplots(
    len(queries), 2 * top_k + 1, figsize=(12, 1.6 * len(queries) + 0.7), constrained_layout=True
)
for row, q in enumerate(queries):
    ok = pred[q] == y_test[q]
    show(
        axes[row, 0],
        X_test[q],
        f"test #{q}\ntrue {y_test[q]}, pred {pred[q]}",
        "black" if ok else "red",
    )
    axes[row, 0].patch.set_edgecolor("black")
    for j in range(top_k):
        i, c = ex.supporting[row, j], ex.supporting_contributions[row, j]
        show(
            axes[row, 1 + j],
            X_train[i],
            f"for: label {ex.supporting_labels[row, j]}\n{c:+.0f}",
            "tab:green",
        )
        i, c = ex.opposing[row, j], ex.opposing_contributions[row, j]
        show(
            axes[row, 1 + top_k + j],
            X_train[i],
            f"against: label {ex.opposing_labels[row, j]}\n{c:+.0f}",
            "tab:red",
        )
fig.suptitle(
    "Test digits (left) and the training images that contribute most to the "
    "predicted class's score: for (green) and against (red)",
    fontsize=11,
)
plt.show()

# %%
# Reading the numbers
# -------------------
# The images *for* a prediction are close look-alikes of the query with its label. The
# images *against* are mostly similar-looking digits of other classes — and sometimes
# of the same class: with a smooth kernel and a small ``alpha`` the kernel matrix is nearly
# singular and the coefficients alternate in sign between similar training images. The
# contributions are then large and cancel: the totals below are over ten thousand times the
# score they add up to, and ``explain`` says so in its printout.

for row, q in enumerate(queries):
    print(
        f"test #{q}: score {ex.value[row]:+.3f} = {ex.positive_total[row]:+.4g} "
        f"(all positive terms) {ex.negative_total[row]:+.4g} (all negative terms)"
    )

# %%
# A larger ``alpha`` shrinks the coefficients and so the cancellation, at some cost in
# accuracy here. The chart compares, for the same queries, the sum of the sizes of all
# contributions with the score they explain.

alphas = [1e-3, 1e-2, 1e-1, 1.0]
ratio, acc = [], []
for alpha in alphas:
    model = KernelClassifier(gamma=0.02, alpha=alpha).fit(X_train, y_train)
    e = model.explain(X_test[queries], top_k=1)
    ratio.append(np.median((e.positive_total - e.negative_total) / np.abs(e.value)))
    acc.append(model.score(X_test, y_test))

fig, ax = plt.subplots(figsize=(6.5, 3.6), constrained_layout=True)
ax.loglog(alphas, ratio, "o-")
for a, r, s in zip(alphas, ratio, acc):
    ax.annotate(f"test acc. {s:.3f}", (a, r), textcoords="offset points", xytext=(6, 6), fontsize=8)
ax.set_xlabel("alpha (ridge penalty)")
ax.set_ylabel("sum of |contributions| / |score|")
ax.set_title("How much the contributions cancel (median over the 3 queries)")
ax.grid(True, which="both", alpha=0.3)
plt.show()
