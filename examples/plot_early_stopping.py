"""
Early stopping: validation scores per epoch
===========================================

With a tiny ridge ``alpha``, kernel ridge interpolates its training data; EigenPro's
epochs approach that solution one by one, so *stopping early* regularises. With
``early_stopping=True`` the estimator holds out ``validation_fraction`` of the rows,
scores R² on them after every epoch (``validation_scores_``), stops after
``n_iter_no_change`` epochs without a gain above ``tol``, and returns the best iterate
(``best_validation_score_``).

The data: scikit-learn's diabetes set (442 patients, 10 standardised features),
330 rows for training and 112 for testing.
"""

# %%
# The whole validation curve, and where early stopping stops
# ----------------------------------------------------------
# A first fit lets every one of 60 epochs run (``n_iter_no_change=60``) to draw the whole
# curve; a second fit stops after 5 epochs without improvement, as one would use it. A
# third runs 60 epochs without early stopping, on all training rows.

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from gramfree import KernelRegressor

X, y = load_diabetes(return_X_y=True)
X = StandardScaler().fit_transform(X)
y = (y - y.mean()) / y.std()
order = np.random.default_rng(0).permutation(len(X))
X, y = X[order], y[order]
X_train, y_train, X_test, y_test = X[:330], y[:330], X[330:], y[330:]

params = {"solver": "eigenpro", "gamma": 0.1, "alpha": 1e-6, "max_iter": 60, "random_state": 0}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 60 epochs do not converge
    curve = KernelRegressor(
        early_stopping=True, n_iter_no_change=60, validation_fraction=0.2, **params
    ).fit(X_train, y_train)
    stopped = KernelRegressor(
        early_stopping=True, n_iter_no_change=5, validation_fraction=0.2, **params
    ).fit(X_train, y_train)
    full = KernelRegressor(**params).fit(X_train, y_train)

for name, model in [
    ("early stopping (n_iter_no_change=5)", stopped),
    ("60 epochs, no early stopping", full),
]:
    print(f"{name:38s} epochs {model.n_iter_:3d}  test R² {model.score(X_test, y_test):.3f}")
print(f"best validation R² {stopped.best_validation_score_:.3f}")

# %%
# Draw it
# -------
# Left: R² on the held-out validation rows after each epoch (blue) and the training
# objective (orange, right axis): the objective keeps falling while the validation score
# peaks early and then declines. Right: test R² of the two models.

epochs = np.arange(1, len(curve.validation_scores_) + 1)
fig, (ax1, ax3) = plt.subplots(
    1, 2, figsize=(12, 4.4), width_ratios=[2, 1], constrained_layout=True
)
ax1.plot(epochs, curve.validation_scores_, "o-", ms=3, color="C0")
ax1.axvline(stopped.n_iter_, color="C0", ls="--", lw=1)
ax1.annotate(
    f"early stopping ends here\n(epoch {stopped.n_iter_}, n_iter_no_change=5)",
    (stopped.n_iter_, curve.validation_scores_[0]),
    xytext=(12, -10),
    textcoords="offset points",
    fontsize=9,
    va="top",
)
ax1.set_xlabel("EigenPro epoch")
ax1.set_ylabel("validation R² (validation_scores_)", color="C0")
ax2 = ax1.twinx()
ax2.semilogy(np.arange(1, len(curve.loss_curve_) + 1), curve.loss_curve_, color="C1")
ax2.set_ylabel("training objective (loss_curve_)", color="C1")
ax1.set_title("Diabetes, rbf gamma=0.1, alpha=1e-6: validation score per epoch")

scores = [stopped.score(X_test, y_test), full.score(X_test, y_test)]
bars = ax3.bar(["early stopping", "60 epochs"], scores, color=["C0", "C7"])
ax3.bar_label(bars, fmt="%.3f")
ax3.axhline(0, color="black", lw=0.8)
ax3.set_ylabel("test R² (112 held-out patients)")
ax3.set_title("Test score")
plt.show()

# %%
# Early stopping regularises here because EigenPro's early epochs fit the kernel's large
# eigendirections first. Nyström-PCG's iterates do not behave this way (Falkon's
# preconditioner levels the spectrum): with it, early stopping only saves iterations and
# ``alpha`` stays the regulariser. ``solver="auto"`` with ``early_stopping=True`` fits by
# Nyström-PCG; the exact solvers refuse it.
