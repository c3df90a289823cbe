"""
Convergence of the solvers
==========================

How fast does each solver reach its solution? Every fitted model records
``loss_curve_``, its training objective after each CG iteration (Nyström-PCG), epoch
(EigenPro) or Newton step (kernel logistic regression). Here the iterative solvers fit the
same binary task, scikit-learn's breast cancer data (400 training rows, 30 standardised
features), and the exact solvers give the optimum each one is heading for:
``solver="direct"`` for kernel ridge on all rows, ``solver="nystrom-direct"`` for the
Nyström model on the same 100 centres as Nyström-PCG.
"""

# %%
# Fit each solver with a generous iteration budget
# -------------------------------------------------
# ``tol`` is set tiny so that the solvers run to ``max_iter`` and the whole curve is
# drawn (a real fit stops earlier, at the default ``tol``). The Nyström models get their
# centres explicitly (``centers=``: 100 row indices), so the PCG iterates and the one-pass
# exact solve are of the same problem.

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from gramfree import KernelClassifier

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
X_train, y_train, X_test, y_test = X[:400], y[:400], X[400:], y[400:]
params = {"kernel": "rbf", "gamma": 0.03, "alpha": 1e-2, "random_state": 0}
centers = np.arange(0, 400, 4)  # 100 training rows as the Nyström centres

exact = KernelClassifier(solver="direct", **params).fit(X_train, y_train)
nystrom_exact = KernelClassifier(solver="nystrom-direct", centers=centers, **params).fit(
    X_train, y_train
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # reaching max_iter is the point
    t0 = time.perf_counter()
    pcg = KernelClassifier(
        solver="nystrom-pcg", centers=centers, max_iter=25, tol=1e-14, **params
    ).fit(X_train, y_train)
    t1 = time.perf_counter()
    eigenpro = KernelClassifier(solver="eigenpro", max_iter=20, tol=1e-14, **params).fit(
        X_train, y_train
    )
    t2 = time.perf_counter()

for name, model in [
    ("direct (exact, all rows)", exact),
    ("nystrom-direct (exact, 100 centres)", nystrom_exact),
    (f"nystrom-pcg, 100 centres ({t1 - t0:.2f} s)", pcg),
    (f"eigenpro, all rows ({t2 - t1:.2f} s)", eigenpro),
]:
    print(
        f"{name:40s} iterations {model.n_iter_:3d}  objective {model.loss_curve_[-1]:.5f}"
        f"  test accuracy {model.score(X_test, y_test):.3f}"
    )

# %%
# Kernel logistic regression has its own objective (log-loss plus ``alpha / 2 ||f||²``);
# its optimum is the last Newton step's objective.

logistic = KernelClassifier(loss="logistic", gamma=0.03, alpha=0.1, tol=1e-14, max_iter=30).fit(
    X_train, y_train
)
print(
    f"logistic: {logistic.n_iter_} Newton steps ({logistic.solver_}), "
    f"test accuracy {logistic.score(X_test, y_test):.3f}"
)

# %%
# Draw the curves
# ---------------
# Left: the objective itself, with the two optima as dashed lines. Right: each solver's
# distance to *its own* optimum, relative, on a log scale (1e-3: 0.1% above it).

opt_exact, opt_nys = exact.loss_curve_[-1], nystrom_exact.loss_curve_[-1]
curve_pcg, curve_ep = np.asarray(pcg.loss_curve_), np.asarray(eigenpro.loss_curve_)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
ax1.plot(
    np.arange(1, len(curve_pcg) + 1),
    curve_pcg,
    "o-",
    ms=4,
    color="C0",
    label="Nyström-PCG, 100 centres",
)
ax1.plot(
    np.arange(1, len(curve_ep) + 1),
    curve_ep,
    "^-",
    ms=4,
    color="C1",
    label="EigenPro, all 400 rows",
)
ax1.axhline(opt_nys, ls="--", color="C0", lw=1, label="optimum with 100 centres")
ax1.axhline(opt_exact, ls="--", color="C1", lw=1, label="exact optimum (direct)")
ax1.set_yscale("log")
ax1.set_xlabel("iteration (CG step, or EigenPro epoch)")
ax1.set_ylabel("training objective (square loss + ridge)")
ax1.set_title("Kernel ridge objective")
ax1.legend(fontsize=9)

ax2.semilogy(
    np.arange(1, len(curve_pcg) + 1),
    np.maximum((curve_pcg - opt_nys) / opt_nys, 1e-16),
    "o-",
    ms=4,
    color="C0",
    label="Nyström-PCG vs nystrom-direct",
)
ax2.semilogy(
    np.arange(1, len(curve_ep) + 1),
    np.maximum((curve_ep - opt_exact) / opt_exact, 1e-16),
    "^-",
    ms=4,
    color="C1",
    label="EigenPro vs direct",
)
ax2.set_xlabel("iteration (CG step, or EigenPro epoch)")
ax2.set_ylabel("(objective − optimum) / optimum")
ax2.set_title("Distance to each solver's own optimum")
ax2.legend(fontsize=9)
ax2.grid(True, alpha=0.3)
fig.suptitle("Training objective per iteration (loss_curve_), breast cancer, n = 400")
plt.show()

# %%
# Newton's method on the logistic loss, against its final objective (the last step is the
# reference and is left out).

curve_log = np.asarray(logistic.loss_curve_)
gap = np.maximum((curve_log[:-1] - curve_log[-1]) / curve_log[-1], 1e-16)
fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
ax.semilogy(np.arange(1, len(gap) + 1), gap, "D-", color="C3", ms=5)
ax.set_xlabel("Newton step")
ax.set_ylabel("(objective − final objective) / final")
ax.set_title("Kernel logistic regression (Newton-PCG), breast cancer")
ax.grid(True, alpha=0.3)
plt.show()

# %%
# What the picture says
# ---------------------
# Falkon's preconditioner makes Nyström-PCG's progress nearly independent of the kernel's
# conditioning: it closes most of the gap to its optimum in about 15 iterations. That
# optimum is the 100-centre model's, well above the exact one: the number of centres, not
# the iterations, limits the training objective (both reach the same test accuracy here).
# EigenPro's epochs approach the exact optimum steadily but slowly on this small, smooth
# problem, which is why ``solver="auto"`` picks it only for narrow kernels with enough
# ``alpha``. Newton's method converges quadratically near the optimum: a handful of steps.
