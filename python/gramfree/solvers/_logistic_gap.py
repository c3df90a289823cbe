"""The duality gap of penalised kernel logistic regression: an upper bound of a point's
distance to the optimal objective that no model of the objective enters.

Newton's decrement estimates that distance only where the objective is near its
quadratic model, and the log-loss is not self-concordant: near separation, with a small
alpha and a narrow kernel, fits ended with decrements a quarter of their threshold and
objectives 1.7e-3 to 3.7e-3 above the optimum at tol 1e-4 (breast cancer, 12 to 80
centres: tests/test_logistic_end.py), every end test passed. The gap bounds it.

With ``L L^T = K_MM`` (jittered as the solver's penalty), ``Z = K_nM L^-T`` and
``theta = L^T a``, the objective is ``J = sum_i w_i loss_i(Z theta + b) +
alpha/2 ||theta||^2``. The multinomial loss (two classes: its two-logit form) is
``logsumexp(f) - y.f = max over the simplex q of (q - y).f + entropy(q)``, so for any
probabilities ``q_i`` whose weighted residuals sum to zero over the rows (the unpenalised
intercepts' condition) ``J* >= D(q) = sum_i w_i entropy(q_i) - ||Z^T W (q - y)||^2 /
(2 alpha)``. At the solver's probabilities P this needs the intercepts' gradient
``h = sum_i w_i (p_i - y_i)`` to vanish, which it does only at the optimum; their Newton
step's first-order change of the probabilities, ``q_i = p_i + S_i z / w_i`` with ``z =
-B^+ h`` (S_i the curvature, B its sum: the intercepts' block), cancels it. Then (the
Fenchel-Young equality at P, and ``Z^T W (q - y) + alpha theta`` the right-hand side the
solver forms anyway, whitened)::

    J - D(q) = sum_i w_i KL(q_i || p_i) + ||L^-1 rhs||^2 / (2 alpha)

where ``rhs = K_nM^T W (q - y) + alpha K_MM a``, minus the Newton system's right-hand
side (the gradient with the intercepts eliminated). The KL term is second order in h,
the second the gradient's norm in K_MM^-1 over the penalty: loose where the loss's
curvature dominates alpha. In Newton's quadratic basin each step squares it; before
that, near separation, it exceeded the distance to the optimum 14 to 8e4 times and
grew from one step to the next (wine, 40 centres, rows at 1e6: 4e-4 to 0.61 of the
objective; a review), so it may refuse ends that were right and cost steps.
Without a penalty there is no such bound (D is minus infinity off the kernel's range);
nor where a class has no weight (its intercept goes to minus infinity, and the
correction's q leaves the simplex: inf until its probabilities round to zero).
"""

from __future__ import annotations

import math

import numpy as np


def duality_gap(
    rhs: np.ndarray,
    norm_bound,
    P: np.ndarray,
    w: np.ndarray,
    curvature_inverse: np.ndarray,
    g_b: np.ndarray,
) -> float:
    """``J - D(q) >= J - J*`` at the solver's current point (module docstring), or inf
    where the intercepts' correction leaves the simplex (far from the optimum).

    ``rhs``: the Newton system's right-hand side (M x k); ``norm_bound``: ``r ->
    r^T K_MM^-1 r / alpha`` (the solver's ``_rest_bound``); ``P``: the probabilities (n x 1
    of class 1 for two classes, n x k); ``w`` the sample weights; ``curvature_inverse``:
    the intercepts' block's (pseudo-)inverse B^+; ``g_b``: the intercepts' gradient h."""
    z = -(curvature_inverse @ g_b)
    if P.shape[1] == 1:  # two classes: q = p + p (1 - p) z, the Bernoulli's KL
        p = P[:, 0]
        up, down = (1.0 - p) * z[0], -p * z[0]  # q / p - 1 and (1 - q) / (1 - p) - 1
        if not (up.min(initial=0.0) > -1.0 and down.min(initial=0.0) > -1.0):
            return math.inf
        q = p * (1.0 + up)
        kl = q * np.log1p(up) + (1.0 - p) * (1.0 + down) * np.log1p(down)
    else:  # q_c = p_c (1 + z_c - p.z)
        ratio = z[None, :] - (P @ z)[:, None]  # q / p - 1
        if not ratio.min(initial=0.0) > -1.0:
            return math.inf
        kl = np.sum(P * (1.0 + ratio) * np.log1p(ratio), axis=1)
    # Each row's KL is non-negative; rounding can leave a term at -1e-17.
    return float(np.sum(w * np.maximum(kl, 0.0))) + 0.5 * norm_bound(rhs)
