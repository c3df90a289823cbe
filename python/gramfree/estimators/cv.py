"""KernelRegressorCV and KernelClassifierCV: kernel ridge regression and classification
with alpha chosen along the whole path, for the price of one Nystrom fit (generalised
cross-validation) or of one fit and one more pass (exact leave-one-out, the default);
and gamma by GCV, from candidates (one such fit each) and/or by a search along its
gradient in log(gamma), alpha then by the criterion at the gamma chosen."""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
import warnings
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    process_routing,
)

from .._log import caller_stacklevel, say, verbose_output
from .._threads import blas_threads
from ..device import resolve_device
from ..kernels import Kernel
from ..solvers._common import Problem, center_rows, weight_exponent, weight_span
from ..solvers.alpha_path import (
    AlphaPath,
    GcvPoint,
    chosen_point,
    coef_at,
    gcv_log_gamma_slope,
    path_warnings,
    refine_alpha,
    refined_model,
    solve_alpha_path,
    solve_alpha_paths_per_target,
)
from ..solvers.loo import loo_errors
from ..solvers.nystrom_direct import GRADED_SPAN, record_refinement, solve_nystrom_direct
from ._base import (
    KernelMachineMixin,
    _warn_cancellation,
    check_kernel_range,
    check_target_range,
)
from ._logistic_cv import fit_logistic_cv
from .classifier import ClassProbabilities, ClassScores, class_targets
from .explain import ExplainMixin

if TYPE_CHECKING:  # typing.Self is Python 3.11+
    from typing_extensions import Self

# What a fit with candidate gammas (or the gamma search) adds, and a later fit removes.
_GAMMA_ATTRIBUTES = ("gamma_", "gcv_grid_", "dof_grid_")

# Centres when n_centers is None: every point up to this many (then the model is exact
# kernel ridge), a random subset of this size beyond.
DEFAULT_CENTERS = 2000

# gamma_search="gradient": at most this many GCV paths (each a pass over the data, an M^3
# eigendecomposition and the slope's pass), within this factor of the starting gamma, and
# done once the bracket around the minimum is within 1% in gamma.
GAMMA_SEARCH_EVALUATIONS = 16
GAMMA_SEARCH_RANGE = 1e4
GAMMA_SEARCH_TOL = math.log(1.01)
# ... or once the GCV the bracket could still gain is below this share of it.
GAMMA_SEARCH_GAIN = 1e-4
# Largest step of the downhill phase in log(gamma) (a factor 4): longer ones stepped over
# the minimum into another (diabetes from gamma = 5: to gamma -> 0, a nearly polynomial fit).
GAMMA_SEARCH_STEP = math.log(4.0)


def _check_candidates(values, name: str) -> np.ndarray:
    """``alphas`` or ``gammas``: a non-empty 1-d array of positive finite numbers."""
    try:  # ["a"] or [[1], [2, 3]]: numpy's own message would not name the parameter
        a = np.asarray(values, dtype=np.float64) if not isinstance(values, str) else None
    except (TypeError, ValueError):
        a = None
    if a is None or a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name}: must be a non-empty 1-d sequence of numbers, got {values!r}")
    # numpy reads True as 1.0 ([True, 0.1] became the candidates 1 and 0.1 in silence),
    # and "0.1" as 0.1 (RidgeCV refuses strings; a review).
    given = values if isinstance(values, (list, tuple)) else np.asarray(values)
    if any(isinstance(v, (bool, np.bool_)) for v in given):  # a boolean array's items too
        raise ValueError(f"{name}: booleans are not {name}, got {values!r}")
    if any(isinstance(v, (str, bytes, np.str_, np.bytes_)) for v in given):
        raise ValueError(f"{name}: strings are not {name}, got {values!r}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name}: every value must be positive and finite, got {values!r}")
    return a


def _check_alphas(alphas) -> np.ndarray:
    return _check_candidates(alphas, "alphas")


def _loo_choice(errors: np.ndarray, alphas: np.ndarray) -> tuple[int, list[str]]:
    """The candidate of lowest leave-one-out error (the first of ties), and what to say,
    as GCV's choice says it (solvers/alpha_path.py): where no candidate has an estimate,
    or every estimate is zero (targets all zero), the largest alpha (the fewest degrees
    of freedom); where the choice is the smallest alpha with an estimate and smaller
    ones have none, that its minimum may lie below."""
    finite = np.isfinite(errors)
    largest = int(np.argmax(alphas))
    if finite.any() and np.all(errors[finite] == 0.0):
        return largest, [
            "y: the targets are all zero where the weights are not: every alpha fits them "
            "exactly, and leave-one-out has nothing to choose by; chose the largest "
            f"({alphas[largest]:g})"
        ]
    if not finite.any():
        return largest, [
            "alphas: no candidate has a leave-one-out estimate: each is below the rounding "
            "of the whitened Gram or interpolates a training row (its leverage within 1e-10 "
            f"of 1); chose the largest ({alphas[largest]:g}). Use larger alphas."
        ]
    index = int(np.argmin(errors))
    below = int(np.sum(~finite & (alphas < alphas[index])))
    if below and alphas[index] == np.min(alphas[finite]):
        return index, [
            f"alphas: the chosen alpha {alphas[index]:g} is the smallest with a leave-one-out "
            f"estimate, and {below} smaller candidate(s) have none (below the rounding of "
            "the whitened Gram, or a training row's leverage within 1e-10 of 1, as a row "
            "far heavier than the others makes it): its minimum may lie below the alpha "
            "chosen"
        ]
    return index, []


def _weight_span_said(messages: list[str], path: AlphaPath, sample_weight) -> list[str]:
    """``messages``, each followed by the weights' span where it is wide (beyond
    ``GRADED_SPAN``, where nystrom-direct leaves the Gram for QR) and some
    candidate was below the whitened Gram's rounding: that rounding is eps M times its
    largest eigenvalue, of the order of the heaviest rows' weight, and the lightest rows'
    directions below it are left out of the path's estimates (their data unresolved). One
    row at 1e50 among rows at 1 left every alpha up to 100 without an estimate, and the
    warning advised larger alphas alone (a review). The model itself is refitted exactly
    there (:func:`_exact_beyond_span`)."""
    span = weight_span(sample_weight)
    if not messages or span <= GRADED_SPAN or not path.info.get("unresolved_alphas"):
        return messages
    note = (
        f" The positive sample weights span {span:.2g} (largest over smallest): the "
        "whitened Gram's rounding scales with the heaviest rows, and the lightest rows' "
        "part below it is left out of the path's estimates, which chose alpha. The model "
        "at the chosen alpha is refitted exactly (nystrom-direct's QR of the rows in order "
        "of their norms, solver_info_['refit'])."
    )
    return [message + ("" if message.endswith(".") else ".") + note for message in messages]


def _exact_beyond_span(
    problem: Problem, centers: np.ndarray, alpha: float, coef: np.ndarray
) -> tuple[np.ndarray, bool]:
    """``(coef, refit)``: the path's coefficients at the chosen ``alpha``, or, where the
    weights span beyond ``GRADED_SPAN``, nystrom-direct's at that alpha (QR of the rows in
    order of their norms): the path's whitened Gram resolves the lightest rows' part only
    to about the span times eps (five diabetes rows at 1e9: the chosen model 5.5e-6 off
    the exact predictions, silently; 7.7e-5 to 2.1e-3 at 1e12 to 1e30; a review). The
    choice of alpha stays the path's; the model is exact."""
    if weight_span(problem.sample_weight) <= GRADED_SPAN:
        return coef, False
    result = solve_nystrom_direct(dataclasses.replace(problem, alpha=float(alpha)), centers)
    return np.asarray(result.coef, dtype=np.float64).reshape(coef.shape), True


def chooses_by_loo(criterion: str) -> bool:
    """Whether the square loss's alpha is chosen by leave-one-out: ``criterion`` "loo" or
    "auto". Where ``gammas`` or ``gamma_search`` choose gamma, gamma is GCV's choice
    either way (leave-one-out would add a pass over the data to every candidate) and
    leave-one-out chooses alpha at that gamma (``benchmarks/bench_alpha_path.py``, part 3's
    gammas rows)."""
    return criterion in ("auto", "loo")


def _check_gammas(gammas) -> np.ndarray:
    return _check_candidates(gammas, "gammas")


class _AlphaPathMixin(KernelMachineMixin):
    """The parameters and the fit shared by the CV estimators (see KernelRegressorCV)."""

    # One per target with KernelRegressorCV's alpha_per_target and several targets.
    alpha_: float | np.ndarray
    best_score_: float | np.ndarray

    _parameter_constraints: dict = {
        **{
            k: v
            for k, v in KernelMachineMixin._parameter_constraints.items()
            if k
            not in (
                "alpha",
                "solver",
                "centers",
                "max_iter",
                "tol",
                "kernel_precision",
                "early_stopping",
                "validation_fraction",
                "n_iter_no_change",
                "warm_start",
            )
        },
        "alphas": ["array-like"],
        "gammas": ["array-like", None],
        "gamma_search": [StrOptions({"gradient"}), None],
        "criterion": [StrOptions({"auto", "gcv", "loo"})],
        "n_centers": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Real, 0, 1, closed="right"),
            None,
        ],
    }

    def __init__(
        self,
        kernel="rbf",
        *,
        alphas=(1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0),
        gamma=None,
        gammas=None,
        gamma_search=None,
        degree=3,
        coef0=1.0,
        length_scale=1.0,
        nu=1.5,
        n_centers=None,
        random_state=None,
        n_jobs=None,
        device="cpu",
        verbose=False,
        criterion="auto",
    ):
        self.kernel = kernel
        self.alphas = alphas
        self.gamma = gamma
        self.gammas = gammas
        self.gamma_search = gamma_search
        self.degree = degree
        self.coef0 = coef0
        self.length_scale = length_scale
        self.nu = nu
        self.n_centers = n_centers
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device
        self.verbose = verbose
        self.criterion = criterion

    def _candidate_kernels(self) -> list[tuple[float | None, Kernel]]:
        """``(gamma, kernel)``: the kernel (gamma None), or one per candidate of ``gammas``
        (refused where the kernel has no gamma, or where gamma is set as well)."""
        kernel = self._make_kernel()
        if self.gamma_search is not None and "gamma" not in {
            f.name for f in dataclasses.fields(kernel)
        }:
            raise ValueError(
                f"gamma_search: the {type(kernel).__name__} kernel has no gamma to search "
                "(rbf, laplacian and poly have one)"
            )
        if self.gammas is None:
            return [(None, kernel)]
        gammas = _check_gammas(self.gammas)
        if self.gamma is not None and not isinstance(self.kernel, Kernel):
            raise ValueError(
                f"gammas: the candidates for gamma replace it; got gamma={self.gamma!r} as "
                "well (leave gamma=None)"
            )
        if "gamma" not in {f.name for f in dataclasses.fields(kernel)}:
            raise ValueError(
                f"gammas: the {type(kernel).__name__} kernel has no gamma to choose "
                "(rbf, laplacian and poly have one)"
            )
        return [(float(g), dataclasses.replace(kernel, **{"gamma": float(g)})) for g in gammas]

    def _uses_loo(self) -> bool:
        """Whether this fit chooses alpha by leave-one-out (:func:`chooses_by_loo`); the
        logistic loss chooses by folds, neither."""
        if getattr(self, "loss", "squared") == "logistic":
            return False
        return chooses_by_loo(self.criterion)

    def _check_kernel_ranges(self, X: np.ndarray) -> None:
        for i, (gamma, kernel) in enumerate(self._candidate_kernels()):
            try:
                check_kernel_range(X, kernel, self._kernel_dtype(X), self.n_jobs)
            except ValueError as exc:
                if gamma is None:
                    raise
                raise ValueError(f"{exc} (the candidate gammas[{i}]={gamma:g})") from None

    def _fit_path(self, X: np.ndarray, Y: np.ndarray, sample_weight) -> None:
        """Centres, the GCV path over alphas (for each candidate gamma, then along the
        search), leave-one-out's pass where it chooses (:meth:`_uses_loo`), and the fitted
        attributes at the chosen alpha."""
        alphas = _check_alphas(self.alphas)
        kernels = self._candidate_kernels()
        n = X.shape[0]
        m = self._resolve_n_centers(n) or min(n, DEFAULT_CENTERS)
        rng = self._rng()
        # Weights and alphas divided by one power of four where the weights are extreme
        # (the same models; weight_exponent): weights of 1e307 failed as "B: contains NaN
        # or infinity", and a gamma search at weights (and alphas) times 2^+-1000 stopped
        # at its start on overflowed slopes. Alphas are the caller's from here on again.
        exponent = weight_exponent(sample_weight, alphas)
        if exponent:
            sample_weight = np.ldexp(sample_weight, -exponent)
        path_alphas = np.ldexp(alphas, -exponent)
        idx = center_rows(rng, n, m, sample_weight)
        centers = np.ascontiguousarray(X[idx])
        start = time.perf_counter()
        per_target = getattr(self, "alpha_per_target", False)
        if per_target and (self.gammas is not None or self.gamma_search is not None):
            raise ValueError(
                "alpha_per_target=True chooses an alpha for each target on one kernel; "
                "gammas and gamma_search choose one gamma for all targets: choose gamma "
                "first (gamma_ of a fit without alpha_per_target), then fit with that gamma"
            )
        use_loo = self._uses_loo()
        if per_target and Y.shape[1] > 1:
            self._fit_per_target(
                X, Y, sample_weight, kernels[0][1], centers, idx, exponent, alphas, start, use_loo
            )
            return

        def path_at(kernel: Kernel) -> tuple[AlphaPath, Problem, list]:
            # The path is solved in float64 whatever the data (its eigendecomposition
            # needs it); every candidate on the same centres.
            problem = Problem(
                X,
                Y,
                kernel,
                float(path_alphas[0]),
                sample_weight,
                self.n_jobs,
                resolve_device(self.device),
                np.dtype(np.float64),
            )
            # A candidate's warning (no GCV estimate at any alpha) concerns the model only
            # if it wins: it is said for the winner alone. Not by catching warnings, which
            # swaps the warnings module's global state: fits in threads put back another
            # thread's recorder, and every later warning of the process was lost (a review).
            with blas_threads(self.n_jobs):
                path = solve_alpha_path(
                    problem, centers, path_alphas, alpha_exponent=exponent, warn=False
                )
            return path, problem, path_warnings(path)

        best = None  # (path, gamma, kernel, warnings, problem)
        grid, dofs = [], []
        for candidate_gamma, candidate in kernels:
            this, problem, messages = path_at(candidate)
            grid.append(this.gcv)
            dofs.append(this.dof)
            if self.verbose and self.gammas is not None:
                with verbose_output(True):
                    say(
                        f"[{type(self).__name__}] gamma={candidate_gamma:g}: best GCV "
                        f"{this.gcv[this.best]:.6g} at alpha={alphas[this.best]:g}"
                    )
            # The lowest GCV wins; a tie (or no estimate anywhere: inf) keeps the first.
            if best is None or this.gcv[this.best] < best[0].gcv[best[0].best]:
                best = (this, candidate_gamma, candidate, messages, problem)
        assert best is not None
        trace, at, stop = None, None, None
        if self.gamma_search is not None:
            best, at, trace, stop = self._search_gamma(X, centers, best, path_at, exponent)
        path, gamma, kernel, said, _ = best
        if at is None:  # the grid's choice
            at = chosen_point(path)
        chosen_alpha, score = at.alpha, at.gcv
        # Leave-one-out: one more pass, each row's leverage (solvers/loo.py), on the path
        # at the gamma GCV chose (gammas, gamma_search); alpha among the candidates.
        if use_loo:
            with blas_threads(self.n_jobs):
                loo = loo_errors(best[4], centers, [path]).sum(axis=1)
            index, loo_said = _loo_choice(loo, alphas)
            chosen_alpha, score = float(path_alphas[index]), float(loo[index])
            # GCV's own warnings concern alpha no longer, but where GCV chose gamma they
            # say that its choice had nothing (or too little) to go by (a review: a grid
            # without any GCV estimate kept gammas[0] in silence).
            chose_gamma = self.gammas is not None or self.gamma_search is not None
            said = [f"gamma (chosen by GCV): {m}" for m in said if chose_gamma] + loo_said
        coef = path.coef if chosen_alpha == path_alphas[path.best] else coef_at(path, chosen_alpha)
        with blas_threads(self.n_jobs):
            coef, refit = _exact_beyond_span(best[4], centers, chosen_alpha, coef)
            if not refit and X.dtype == np.float64:  # a float32 model cannot hold it
                coef, steps, unfinished = refined_model(
                    best[4], centers, path, [chosen_alpha] * coef.shape[1], coef
                )
                record_refinement(path.info, steps, unfinished)
        path.spectrum = None  # M x M arrays the model does not need
        for message in _weight_span_said(said, path, sample_weight):
            warnings.warn(message, UserWarning, stacklevel=caller_stacklevel())
        self.fit_time_ = time.perf_counter() - start
        for name in _GAMMA_ATTRIBUTES:
            if hasattr(self, name):
                delattr(self, name)
        if gamma is not None:
            self.gamma_ = gamma
        if self.gammas is not None:
            self.gcv_grid_ = np.array(grid)
            self.dof_grid_ = np.array(dofs)
        self.kernel_ = kernel
        self.solver_ = "nystrom-direct"
        self.centers_ = centers
        self.center_indices_ = idx
        self.dual_coef_ = coef.astype(X.dtype)
        # As the plain estimators: coefficients that cancel in the predictions (float32
        # data: digits, gamma 0.003 / d, alpha_ 1e-6: 1269 of 1797 training labels other
        # than the float64 model's, without a word, found by a review).
        self.alpha_ = math.ldexp(chosen_alpha, exponent)
        _warn_cancellation(
            best[4], SimpleNamespace(coef=self.dual_coef_, centers=centers), alpha=self.alpha_
        )
        self.n_iter_ = 1
        self.loss_curve_ = []
        self.gcv_values_ = path.gcv
        self.dof_ = path.dof
        self.best_score_ = -score
        if use_loo:
            self.loo_values_ = loo
        elif hasattr(self, "loo_values_"):
            del self.loo_values_
        self.solver_info_ = dict(path.info, alphas=alphas.tolist())
        if refit:
            self.solver_info_["refit"] = "nystrom-direct, graded QR"
        if self.gammas is not None:
            self.solver_info_["gammas"] = [g for g, _ in kernels]
        if trace is not None:
            self.solver_info_["gamma_search"] = trace
            self.solver_info_["gamma_search_stop"] = stop
        if self.verbose:
            with verbose_output(True):
                chosen = "" if gamma is None else f", gamma_={gamma:g}"
                if self.gammas is not None:
                    chosen += f" ({len(kernels)} candidates"
                    chosen += ", then the search)" if trace is not None else ")"
                elif trace is not None:
                    chosen += f" (searched, {len(trace)} paths)"
                say(
                    f"[{type(self).__name__}] {m} centres, alpha_={self.alpha_:g} of "
                    f"{len(alphas)}{chosen}, {self.fit_time_:.2f} s"
                )

    def _fit_per_target(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        sample_weight,
        kernel: Kernel,
        centers: np.ndarray,
        idx: np.ndarray,
        exponent: int,
        alphas: np.ndarray,
        start: float,
        use_loo: bool,
    ) -> None:
        """``alpha_per_target=True`` with several targets: each target's alpha by its own
        GCV or leave-one-out error (``use_loo``;
        :func:`~gramfree.solvers.alpha_path.solve_alpha_paths_per_target`, one pass and one
        eigendecomposition for all, and leave-one-out's pass), its coefficients there."""
        problem = Problem(
            X,
            Y,
            kernel,
            float(np.ldexp(alphas[0], -exponent)),
            sample_weight,
            self.n_jobs,
            resolve_device(self.device),
            np.dtype(np.float64),
        )
        with blas_threads(self.n_jobs):
            paths = solve_alpha_paths_per_target(
                problem, centers, np.ldexp(alphas, -exponent), alpha_exponent=exponent
            )
            loo = loo_errors(problem, centers, paths) if use_loo else None
        # Each target's choice: its lowest GCV (the path's), or its lowest leave-one-out.
        picks, said = [], []
        for t, path in enumerate(paths):
            index, messages = (
                (path.best, path_warnings(path)) if loo is None else _loo_choice(loo[:, t], alphas)
            )
            picks.append(index)
            messages = _weight_span_said(messages, path, sample_weight)
            said += [f"target {t}: {message}" for message in messages]
            if index != path.best:
                path.coef = coef_at(path, float(path.alphas[index]))
            target = dataclasses.replace(problem, Y=np.ascontiguousarray(Y[:, t : t + 1]))
            with blas_threads(self.n_jobs):
                path.coef, refit = _exact_beyond_span(
                    target, centers, float(path.alphas[index]), path.coef
                )
            if refit:
                path.info["refit"] = "nystrom-direct, graded QR"
        refinable = X.dtype == np.float64 and not any("refit" in path.info for path in paths)
        if refinable:  # one pass for every target
            with blas_threads(self.n_jobs):
                coef, steps, unfinished = refined_model(
                    problem,
                    centers,
                    paths[0],
                    [path.alphas[i] for path, i in zip(paths, picks, strict=True)],
                    np.hstack([path.coef for path in paths]),
                )
            for t, path in enumerate(paths):
                path.coef = coef[:, t : t + 1]
                record_refinement(path.info, steps, unfinished)
        for message in said:
            warnings.warn(message, UserWarning, stacklevel=caller_stacklevel())
        self.fit_time_ = time.perf_counter() - start
        for name in _GAMMA_ATTRIBUTES:
            if hasattr(self, name):
                delattr(self, name)
        self.kernel_ = kernel
        self.solver_ = "nystrom-direct"
        self.centers_ = centers
        self.center_indices_ = idx
        self.dual_coef_ = np.hstack([path.coef for path in paths]).astype(X.dtype)
        chosen = np.array(
            [math.ldexp(path.alphas[i], exponent) for path, i in zip(paths, picks, strict=True)]
        )
        self.alpha_ = chosen
        for t, alpha in enumerate(chosen):  # each target against its own scale (a review)
            _warn_cancellation(
                dataclasses.replace(problem, Y=Y[:, t : t + 1]),
                SimpleNamespace(coef=self.dual_coef_[:, t : t + 1], centers=centers),
                alpha=float(alpha),
            )
        self.n_iter_ = 1
        self.loss_curve_ = []
        self.gcv_values_ = np.column_stack([path.gcv for path in paths])
        self.dof_ = paths[0].dof  # the hat matrix's trace: the same for every target
        values = self.gcv_values_ if loo is None else loo
        self.best_score_ = -values[picks, np.arange(len(paths))]
        if loo is not None:
            self.loo_values_ = loo
        elif hasattr(self, "loo_values_"):
            del self.loo_values_
        # The pass and the centres' facts are shared; what each path measured (its RSS
        # rechecks, objective checks, warnings) is under "targets".
        self.solver_info_ = dict(
            paths[0].info, alphas=alphas.tolist(), targets=[path.info for path in paths]
        )
        if self.verbose:
            with verbose_output(True):
                say(
                    f"[{type(self).__name__}] {centers.shape[0]} centres, alpha_ per target "
                    f"{', '.join(f'{a:g}' for a in chosen)} of {len(alphas)}, "
                    f"{self.fit_time_:.2f} s"
                )

    def _search_gamma(
        self, X: np.ndarray, centers: np.ndarray, best: tuple, path_at, exponent: int = 0
    ) -> tuple[tuple, GcvPoint | None, list[dict], str]:
        """gamma_search="gradient": from the best gamma so far (the grid's winner, or the
        kernel's gamma), follow the slope of the best GCV in log(gamma)
        (:func:`~gramfree.solvers.alpha_path.gcv_log_gamma_slope`): steps downhill that
        double (up to a factor 4 in gamma) until the slope turns or GCV rises (a bracket),
        then the bracket narrowed at the minimum of the cubic through GCV and its slope at
        both ends until it is within 1% in gamma or can gain less than 1e-4 of GCV; at
        most ``GAMMA_SEARCH_EVALUATIONS`` paths, within ``GAMMA_SEARCH_RANGE`` of the start
        either way. Returns the best point seen (lowest GCV; the start wins ties), its GCV
        minimised over a continuous alpha between the candidates
        (:func:`~gramfree.solvers.alpha_path.refine_alpha`: the grid's best GCV has a local
        minimum in gamma for every alpha it switches between), the trace, one record per
        path, and why it stopped. The paths' alphas are the caller's times 2^-exponent
        (``_fit_path``); the trace names the caller's."""
        path, gamma, kernel, messages, problem = best
        if gamma is None:
            gamma = kernel.gamma if kernel.gamma is not None else 1.0 / X.shape[1]
            kernel = dataclasses.replace(kernel, gamma=float(gamma))
            problem = dataclasses.replace(problem, kernel=kernel)
            best = (path, float(gamma), kernel, messages, problem)
        t0 = math.log(gamma)
        lo, hi = t0 - math.log(GAMMA_SEARCH_RANGE), t0 + math.log(GAMMA_SEARCH_RANGE)
        trace: list[dict] = []
        best_at: GcvPoint | None = None

        def evaluate(t: float, known: tuple | None = None) -> tuple[float, float]:
            nonlocal best, best_at
            g = math.exp(t)
            if known is None:
                candidate = dataclasses.replace(kernel, gamma=g)
                try:  # kernel values beyond the data's dtype: not a candidate
                    check_kernel_range(X, candidate, self._kernel_dtype(X), self.n_jobs)
                except ValueError:
                    trace.append({"gamma": g, "gcv": math.inf, "slope": 0.0, "alpha": None})
                    return math.inf, 0.0
                this, prob, warned = path_at(candidate)
                known = (this, g, candidate, warned, prob)
            this, prob = known[0], known[4]
            at = refine_alpha(prob, this)
            value, alpha = at.gcv, math.ldexp(at.alpha, exponent)
            slope = gcv_log_gamma_slope(prob, centers, this, at) if math.isfinite(value) else 0.0
            trace.append({"gamma": g, "gcv": value, "slope": slope, "alpha": alpha})
            if best_at is None or value < best_at.gcv:
                best, best_at = known, at
            if self.verbose:
                with verbose_output(True):
                    say(
                        f"[{type(self).__name__}] gamma search: gamma={g:.6g} GCV={value:.6g} "
                        f"(alpha={alpha:g}), dGCV/dlog(gamma)={slope:.3g}"
                    )
            return value, slope

        value_a, slope_a = evaluate(t0, best)
        if not math.isfinite(value_a):
            return best, best_at, trace, "no GCV estimate at the start"
        if slope_a == 0.0:
            return best, best_at, trace, "flat at the start"
        # Downhill until the slope turns or GCV rises: [a, b] then brackets a minimum.
        a, step, direction = t0, math.log(2.0), -1.0 if slope_a > 0 else 1.0
        b: float | None = None
        value_b = slope_b = 0.0
        while b is None:
            if len(trace) >= GAMMA_SEARCH_EVALUATIONS:
                return best, best_at, trace, "budget"
            t = min(hi, max(lo, a + direction * step))
            if t == a:
                return best, best_at, trace, "range"  # at its end, still downhill
            value, slope = evaluate(t)
            if math.isfinite(value) and value <= value_a and slope * slope_a > 0:
                a, value_a, slope_a, step = t, value, slope, min(2.0 * step, GAMMA_SEARCH_STEP)
            else:
                b, value_b, slope_b = t, value, slope
        # Narrow [a, b] (a on the downhill slope's side, b on the other) at the minimum
        # of the cubic that matches GCV and its slope at both ends (Nocedal and Wright's
        # line-search interpolation; kept 5% of the bracket from its ends), or at the
        # midpoint where the slopes do not straddle zero (GCV rose at b with the slope
        # unturned, or b has no estimate) or the same end was kept twice in a row (a
        # secant of the slopes crept for ten paths from the near end when the far one was
        # steep); until the bracket is within GAMMA_SEARCH_TOL or the GCV it could still
        # gain, |slope| x width at its lower end, is below GAMMA_SEARCH_GAIN of GCV.
        kept: list[str] = []
        while True:
            width = abs(b - a)
            if width <= GAMMA_SEARCH_TOL:
                return best, best_at, trace, "tolerance"
            # The slope at the lower end: for a convex GCV, f(lower) - min <= |f'(lower)|
            # x width. (The smaller of the two ends' slopes stopped a narrow well's search
            # at 86% above its minimum when the far end landed on a flat stretch.)
            lower = math.isfinite(value_b) and value_b < value_a
            if abs(slope_b if lower else slope_a) * width <= GAMMA_SEARCH_GAIN * min(
                value_a, value_b
            ):
                return best, best_at, trace, "gain"
            if len(trace) >= GAMMA_SEARCH_EVALUATIONS:
                return best, best_at, trace, "budget"
            share = 0.5
            if (
                math.isfinite(value_b)
                and slope_a * slope_b < 0
                and kept[-2:]
                not in (
                    ["a", "a"],
                    ["b", "b"],
                )
            ):
                d1 = slope_a + slope_b - 3.0 * (value_a - value_b) / (a - b)
                d2 = math.copysign(math.sqrt(d1 * d1 - slope_a * slope_b), b - a)
                t = b - (b - a) * (slope_b + d2 - d1) / (slope_b - slope_a + 2.0 * d2)
                share = min(0.95, max(0.05, (t - a) / (b - a)))
            t = a + share * (b - a)
            value, slope = evaluate(t)
            if math.isfinite(value) and value <= value_a and slope * slope_a > 0:
                a, value_a, slope_a = t, value, slope
                kept.append("b")
            else:
                b, value_b, slope_b = t, value, slope
                kept.append("a")

    def compress(
        self,
        n_centers: int,
        X: ArrayLike | None = None,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> tuple[Self, float]:
        """Not available: refit the plain estimator with ``alpha=model.alpha_`` and
        compress that (its solver and alpha are parameters this estimator chooses).

        Parameters
        ----------
        n_centers : int
            Centres of the smaller model.
        X, y, sample_weight : array-like, default=None
            Data to refit on, as in the plain estimators' ``compress``.

        Raises
        ------
        TypeError
            Always.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import KernelRegressor, KernelRegressorCV
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:150], y[:150]
        >>> model = KernelRegressorCV(gamma=0.5, alphas=[1e-2, 0.1, 1.0]).fit(X, y)
        >>> model.compress(50)
        Traceback (most recent call last):
            ...
        TypeError: compress: fit the plain estimator with alpha=alpha_ ...
        >>> plain = KernelRegressor(alpha=model.alpha_, gamma=0.5).fit(X, y)
        >>> plain.alpha == model.alpha_
        True
        """
        raise TypeError(
            "compress: fit the plain estimator with alpha=alpha_ and the same "
            "kernel (gamma=gamma_ where gammas chose it), and compress that model"
        )


class KernelRegressorCV(ExplainMixin, RegressorMixin, _AlphaPathMixin):
    """Kernel ridge regression with ``alpha`` chosen by leave-one-out or generalised
    cross-validation.

    ``alpha`` is chosen from ``alphas`` by the exact leave-one-out error that
    scikit-learn's RidgeCV minimises (the default, ``criterion="auto"``: one more pass
    over the data), or by generalised cross-validation (GCV), its rotation-invariant
    form, free beside the path (``criterion="gcv"``). gamma, where ``gammas`` or
    ``gamma_search`` choose it, is GCV's choice either way.

    One pass over the data reduces it to M x M quantities (the one-pass Nystrom solver's
    whitened Gram of the centres' features), one eigendecomposition of size M gives every
    alpha's solution, residual and effective degrees of freedom
    (:mod:`gramfree.solvers.alpha_path`): 20 alphas by GCV cost about as much as one
    fit.
    GCV(alpha) = (RSS / sum w) / (1 - df / n)^2 is the rotation-invariant form of
    leave-one-out: RSS is the weighted residual sum of squares ``sum_i w_i (y_i -
    f(x_i))^2`` (n without weights; with several targets, summed over them in their own
    units: they share one ``alpha_``, and one ``gamma_``, as RidgeCV's targets share one
    alpha by default, so a target in large units decides for the others;
    ``alpha_per_target=True`` chooses each target's alpha by its own criterion, from the
    same passes and eigendecomposition), df the trace of the weighted ridge's hat matrix. It
    is computed on the data with repeated rows merged (each distinct row of positive
    weight once, with its rows' total weight and weighted mean target: n is then the
    number of distinct rows, the most a fit can interpolate). So rows of weight zero
    change nothing, an integer weight k equals k repeated rows (on the same centres),
    scaling every weight by c is alpha divided by c, and repeated rows cannot make a fit
    that interpolates look perfect (before, diabetes plus one repeated row chose alpha
    1e-8: GCV fell to zero as the fit interpolated).
    Candidates whose df reach n_d, and alphas below the rounding of the whitened Gram's
    eigenvalues (a nearly interpolating fit; ``solver_info_["unresolved_alphas"]``), get
    GCV ``inf``. With ``n_centers=None`` every
    point is a centre up to 2000 samples (exact kernel ridge), 2000 random ones beyond.

    Parameters
    ----------
    kernel : str or gramfree.kernels.Kernel, default="rbf"
        "rbf", "laplacian", "matern", "poly", "linear", "arccos", or a kernel object (then
        gamma, degree, coef0, length_scale and nu are ignored).
    alphas : sequence of positive floats, default=(1e-3, 1e-2, 0.1, 1, 10, 100)
        Candidates for the objective ``sum_i w_i (f(x_i) - y_i)^2 + alpha ||f||^2``.
    gamma : float or "scale", default=None
        RBF/Laplacian/polynomial scale; None means 1 / n_features (KernelRidge's and
        Nystroem's default). ``"scale"`` is SVC's default, ``1 / (n_features * X.var())``
        over every value of the X given to fit (1.0 for constant X), with rows counted by
        their weight (sample_weight, times class_weight for a classifier: a weight of k is
        the row repeated k times); resolved once, kept in ``kernel_`` for prediction.
    gammas : sequence of positive floats, default=None
        Candidates for ``gamma`` (rbf, laplacian, poly, or a kernel object with a gamma;
        ``gamma`` must then be None). Each costs one pass over the data and one
        eigendecomposition, all on the same centres; the gamma of the pair (gamma, alpha)
        of lowest GCV wins (``gamma_``, ``gcv_grid_``), and alpha is ``criterion``'s
        choice at it (by default leave-one-out's: one more pass).
    gamma_search : {None, "gradient"}, default=None
        "gradient": from ``gamma`` (or the best of ``gammas``), follow the slope of GCV in
        log(gamma) to a minimum (the slope analytic through the eigendecomposition, as
        falkon.hopt follows its criterion's gradient; the kernel's derivative a central
        difference of its values), with alpha refined between the candidates at each
        step: with ``criterion="gcv"``, ``alpha_`` is then anywhere within the range of
        ``alphas``; by default leave-one-out then chooses alpha among the candidates at
        the gamma reached. A local search
        (at most 16 paths, each a pass, an eigendecomposition and a second pass for the
        slope, within a factor 1e4 of the start, ending within 1% in gamma or where less
        than 1e-4 of GCV is left to gain): a start far from the optimum can end in another
        local minimum (such as gamma -> 0, a nearly polynomial fit), so a coarse
        ``gammas`` grid first is the safe use.
        ``solver_info_["gamma_search"]`` lists the paths (gamma, GCV, slope, alpha) and
        ``solver_info_["gamma_search_stop"]`` says why it stopped ("tolerance", "gain",
        "budget", "range", or no estimate / a flat slope at the start).
    degree : int, default=3
        Degree of the polynomial kernel.
    coef0 : float, default=1.0
        Constant term of the polynomial kernel, at least 0 (a negative one makes it indefinite;
        fit refuses it).
    length_scale : float, default=1.0
        Length scale of the Matern kernel.
    nu : {0.5, 1.5, 2.5, inf, "inf"}, default=1.5
        Smoothness of the Matern kernel; ``numpy.inf`` or ``"inf"`` is its Gaussian limit.
    n_centers : int or float, default=None
        Centres, drawn at random from the training rows (an integer, or a fraction of
        n_samples in (0, 1]); None: every point up to 2000 samples, 2000 beyond.
    random_state : int, RandomState instance or None, default=None
        Centre selection.
    n_jobs : int, default=None
        Threads of the native operators and of BLAS/LAPACK during the fit, as in
        :class:`~gramfree.KernelRegressor`; -1 means all cores, None leaves the defaults.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Where the kernel products run (:mod:`gramfree.device`).
    verbose : bool or int, default=False
        Print the centres, the chosen alpha and the time to stderr.
    criterion : {"auto", "gcv", "loo"}, default="auto"
        How alpha is chosen. ``"loo"``: the exact leave-one-out error (scikit-learn
        RidgeCV's criterion), which needs each row's own leverage: one more pass over the
        data (:mod:`gramfree.solvers.loo`; repeated rows are merged and left out together,
        as GCV merges them); ``loo_values_`` then holds each candidate's error and
        ``best_score_`` minus the chosen one's. ``"gcv"``: generalised cross-validation,
        free beside the path, which replaces the leverages by their mean. ``"auto"``:
        leave-one-out. Where ``gammas`` or ``gamma_search`` choose gamma, gamma is GCV's
        choice under every criterion (leave-one-out would add a pass to every candidate),
        and alpha the criterion's choice among the candidates at that gamma. Leave-one-out
        is the default because GCV's misses are large and its wins small
        (``benchmarks/bench_alpha_path.py``, README): where every row is a centre (42 cases:
        scikit-learn's iris, wine, breast cancer and diabetes and 1000 rows of each suite
        set but Fashion-MNIST, three gammas each, 17 alphas from 1e-6 to 100), GCV's choice
        had more than 1.1x the best candidate's held-out error in 10 cases (26x on iris at
        gamma 1/d, 44x on shuttle, 7.7x on randhie), leave-one-out's in one (1.35x); on
        whole training splits at the default centres GCV's error was 1.9x leave-one-out's on
        diamonds and 2.0x on shuttle, and within 4% on the eight other sets; with ``gammas``
        (the tuned gamma times 1/3, 1 and 3, 1000 rows of each suite set but Fashion-MNIST),
        GCV's alpha at its gamma had 1.8x to 7.5x the held-out error of leave-one-out's at
        the same gamma on letter, diamonds, shuttle and randhie, the same on the six others.
        Where GCV chose better (diamonds and CPS1988, M = 1000, alphas from 1e-8 n), by
        0.0015 and 0.0003 in test R^2. Leave-one-out's fit took 1.04x to 1.51x GCV's on the
        ten whole training splits, and 2.3x the GCV path (2.6x one fit) at n = 100000, M =
        1000, 20 alphas: ``criterion="gcv"`` where that cost matters more than the choice.
    alpha_per_target : bool, default=False
        As RidgeCV's: choose an alpha for each target (column of a 2-d ``y``) by its own
        criterion (leave-one-out by default, or GCV), as if it were fitted alone (its
        residuals, its pure error), so that a target in large units no longer decides for
        the others; each target's magnitude is checked as a fit of its own would check it.
        The pass over the data and the eigendecomposition (and leave-one-out's pass) are
        shared, and so is the pass of the targets' objective checks (three targets, n =
        100000, M = 1000, GCV: 1.02x to 1.13x the shared path in three runs;
        ``benchmarks/bench_alpha_path.py --targets 3``, README). Not with
        ``gammas`` or ``gamma_search`` (they choose one gamma for all targets), whatever the
        targets. With one target it chooses as without it (``alpha_`` stays a float, as
        RidgeCV's).

    Attributes
    ----------
    alpha_ : float, the chosen alpha (with ``gamma_search`` and ``criterion="gcv"``,
        refined between the candidates); with ``alpha_per_target`` and several targets,
        ndarray (n_targets,)
    gcv_values_ : ndarray (n_alphas,), GCV of each candidate (lower is better; at
        ``gamma_``); with ``alpha_per_target`` and several targets, (n_alphas, n_targets),
        each target's own
    dof_ : ndarray (n_alphas,), effective degrees of freedom of each candidate (the same
        for every target)
    best_score_ : float, minus the chosen alpha's leave-one-out error or GCV, whichever
        chose it (higher is better, as RidgeCV's); with ``alpha_per_target`` and
        several targets, ndarray (n_targets,)
    loo_values_ : ndarray (n_alphas,), each candidate's leave-one-out error per unit of
        weight, the targets' summed (where leave-one-out chose: ``criterion="loo"``, or
        ``"auto"``; (n_alphas, n_targets) with ``alpha_per_target``)
    gamma_ : float, the chosen gamma (``gammas`` or ``gamma_search`` only)
    gcv_grid_ : ndarray (n_gammas, n_alphas), GCV of every pair (``gammas`` only)
    dof_grid_ : ndarray (n_gammas, n_alphas), their degrees of freedom (``gammas`` only)
    centers_, dual_coef_, kernel_, solver_info_, fit_time_ : as KernelRegressor.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from gramfree import KernelRegressorCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = KernelRegressorCV(gamma=0.5, alphas=[1e-3, 1e-2, 0.1, 1.0]).fit(X[:350], y[:350])
    >>> model.alpha_ in (1e-3, 1e-2, 0.1, 1.0)
    True
    >>> model.gcv_values_.shape
    (4,)

    gamma too, from candidates (one pass each):

    >>> model = KernelRegressorCV(gammas=[0.1, 1.0, 10.0], alphas=[1e-3, 1e-2, 0.1, 1.0])
    >>> model = model.fit(X[:350], y[:350])
    >>> model.gcv_grid_.shape  # (gammas, alphas)
    (3, 4)
    >>> bool(model.gcv_grid_.min() == model.gcv_values_.min())  # gamma: GCV's
    True
    >>> bool(-model.best_score_ == model.loo_values_.min())  # alpha: leave-one-out's
    True
    >>> model.kernel_.gamma == model.gamma_
    True

    and refined from the grid's best along GCV's slope in log(gamma):

    >>> searched = KernelRegressorCV(
    ...     gammas=[0.1, 1.0, 10.0], gamma_search="gradient", alphas=[1e-3, 1e-2, 0.1, 1.0]
    ... ).fit(X[:350], y[:350])
    >>> searched.alpha_ in (1e-3, 1e-2, 0.1, 1.0)  # leave-one-out's at the gamma reached
    True
    """

    _parameter_constraints: dict = {
        **_AlphaPathMixin._parameter_constraints,
        "alpha_per_target": ["boolean"],
    }

    def __init__(
        self,
        kernel="rbf",
        *,
        alphas=(1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0),
        gamma=None,
        gammas=None,
        gamma_search=None,
        degree=3,
        coef0=1.0,
        length_scale=1.0,
        nu=1.5,
        n_centers=None,
        random_state=None,
        n_jobs=None,
        device="cpu",
        verbose=False,
        criterion="auto",
        alpha_per_target=False,
    ):
        super().__init__(
            kernel,
            alphas=alphas,
            gamma=gamma,
            gammas=gammas,
            gamma_search=gamma_search,
            degree=degree,
            coef0=coef0,
            length_scale=length_scale,
            nu=nu,
            n_centers=n_centers,
            random_state=random_state,
            n_jobs=n_jobs,
            device=device,
            verbose=verbose,
            criterion=criterion,
        )
        self.alpha_per_target = alpha_per_target

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit on X and y, choosing ``alpha_`` from ``alphas``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights ``w_i`` of the samples; None weighs each 1.

        Returns
        -------
        self : KernelRegressorCV
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import KernelRegressorCV
        >>> X, y = load_diabetes(return_X_y=True)
        >>> alphas = [1e-3, 1e-2, 0.1, 1.0]
        >>> model = KernelRegressorCV(gamma=0.5, alphas=alphas).fit(X, y)
        >>> model.solver_, model.n_centers_  # 442 samples: every one a centre
        ('nystrom-direct', 442)
        >>> model.alpha_ == alphas[model.loo_values_.argmin()]  # the lowest LOO error wins
        True
        """
        self._validate_params()
        X, y, sample_weight = self._validate_X_y(X, y, sample_weight, y_numeric=True)
        y = np.asarray(y)
        if self.alpha_per_target and y.ndim == 2 and y.shape[1] > 1:
            # Each target is a fit of its own: its magnitude checked as one would be (the
            # check above sees the largest of all; a target in units of 1e-165 beside
            # others chose alpha by an underflowed GCV, in silence: a review).
            for t in range(y.shape[1]):
                try:
                    check_target_range(y[:, t], X.dtype)
                except ValueError as exc:
                    raise ValueError(str(exc).replace("y: ", f"y[:, {t}]: ", 1)) from None
        self._fit_path(
            X, np.ascontiguousarray(y.reshape(X.shape[0], -1), dtype=X.dtype), sample_weight
        )
        self._y_1d = y.ndim == 1
        self._record_center_targets(y)
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict targets for X with the chosen ``alpha_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to predict at.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions, with the shape of the ``y`` the model was fitted on.

        Examples
        --------
        With every sample a centre the model is exact kernel ridge at ``alpha_``:

        >>> import numpy as np
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.kernel_ridge import KernelRidge
        >>> from gramfree import KernelRegressorCV
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = KernelRegressorCV(gamma=0.5, alphas=[1e-3, 1e-2, 0.1, 1.0]).fit(X, y)
        >>> y_pred = model.predict(X[:5])
        >>> y_pred.shape
        (5,)
        >>> ridge = KernelRidge(alpha=model.alpha_, kernel="rbf", gamma=0.5).fit(X, y)
        >>> bool(np.allclose(y_pred, ridge.predict(X[:5])))
        True
        """
        out = self._decision(X)
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class KernelClassifierCV(
    ExplainMixin, ClassScores, ClassProbabilities, ClassifierMixin, _AlphaPathMixin
):
    """Kernel classification with ``alpha`` chosen for the user: by leave-one-out or
    generalised cross-validation (square loss), or by k-fold held-out log-loss
    (``loss="logistic"``).

    Square loss on +-1 or one-hot targets, as :class:`~gramfree.KernelClassifier`, with
    ``alpha`` chosen from ``alphas`` on the targets by the exact leave-one-out error that
    scikit-learn's RidgeClassifierCV minimises (the default, ``criterion="auto"``) or by
    GCV (``criterion="gcv"``; gamma, where ``gammas`` or ``gamma_search`` choose it, by GCV
    either way): the targets' residuals add up, one alpha for all classes. The path and
    both criteria with sample weights (times ``class_weight``) are as in
    :class:`KernelRegressorCV`.

    With ``loss="logistic"``: kernel logistic regression, as
    :class:`~gramfree.KernelClassifier` with that loss, with ``alpha`` chosen as
    scikit-learn's ``LogisticRegressionCV(scoring="neg_log_loss")`` chooses ``C``: for
    each of ``cv`` stratified folds the Newton-PCG fits run along ``alphas`` from the
    largest down, each warm-started from the previous one, and the alpha with the lowest
    mean held-out log-loss (weighted as the objective; the folds' mean weighted by their
    held-out weight) is refitted on all rows (:mod:`gramfree.estimators._logistic_cv`). The
    model then has ``predict_proba`` and ``predict_log_proba``. About ``cv`` times one
    path of fits plus one fit; ``gammas`` and ``gamma_search`` are the square loss's.

    Parameters
    ----------
    kernel : str or gramfree.kernels.Kernel, default="rbf"
        "rbf", "laplacian", "matern", "poly", "linear", "arccos", or a kernel object (then
        gamma, degree, coef0, length_scale and nu are ignored).
    alphas : sequence of positive floats, default=(1e-3, 1e-2, 0.1, 1, 10, 100)
        Candidates for the objective ``sum_i w_i (f(x_i) - y_i)^2 + alpha ||f||^2``.
    gamma : float or "scale", default=None
        RBF/Laplacian/polynomial scale; None means 1 / n_features (KernelRidge's and
        Nystroem's default). ``"scale"`` is SVC's default, ``1 / (n_features * X.var())``
        over every value of the X given to fit (1.0 for constant X), with rows counted by
        their weight (sample_weight, times class_weight for a classifier: a weight of k is
        the row repeated k times); resolved once, kept in ``kernel_`` for prediction.
    gammas : sequence of positive floats, default=None
        Candidates for ``gamma``, as in :class:`KernelRegressorCV`.
    gamma_search : {None, "gradient"}, default=None
        A search for ``gamma`` along GCV's slope in log(gamma), as in
        :class:`KernelRegressorCV`.
    degree : int, default=3
        Degree of the polynomial kernel.
    coef0 : float, default=1.0
        Constant term of the polynomial kernel, at least 0 (a negative one makes it indefinite;
        fit refuses it).
    length_scale : float, default=1.0
        Length scale of the Matern kernel.
    nu : {0.5, 1.5, 2.5, inf, "inf"}, default=1.5
        Smoothness of the Matern kernel; ``numpy.inf`` or ``"inf"`` is its Gaussian limit.
    n_centers : int or float, default=None
        Centres, drawn at random from the training rows (an integer, or a fraction of
        n_samples in (0, 1]); None: every point up to 2000 samples, 2000 beyond.
    random_state : int, RandomState instance or None, default=None
        Centre selection.
    n_jobs : int, default=None
        Threads of the native operators and of BLAS/LAPACK during the fit, as in
        :class:`~gramfree.KernelRegressor`; -1 means all cores, None leaves the defaults.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Where the kernel products run (:mod:`gramfree.device`).
    verbose : bool or int, default=False
        Print the centres, the chosen alpha and the time to stderr.
    criterion : {"auto", "gcv", "loo"}, default="auto"
        How alpha is chosen, as in :class:`KernelRegressorCV` (whose entry gives the
        measurements behind the default): ``"auto"`` and ``"loo"`` the exact leave-one-out
        error on the class targets (one more pass over the data; ``loo_values_``), ``"gcv"``
        generalised cross-validation (free beside the path); gamma, where ``gammas`` or
        ``gamma_search`` choose it, by GCV under every criterion, and alpha then by the
        criterion at that gamma. With ``loss="logistic"``, ``"auto"`` means the folds'
        held-out log-loss; ``"loo"`` is refused there, and ``"gcv"`` (the former default)
        accepted and ignored.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, as in :class:`~gramfree.KernelClassifier`: each sample's
        weight in the loss is ``sample_weight * class_weight[its class]``.
    loss : {"squared", "logistic"}, default="squared"
        The loss, as in :class:`~gramfree.KernelClassifier` (``alpha`` is then ``1 / C``
        of the log-likelihood ``sum_i w_i log-loss_i + alpha / 2 ||h||^2``).
    cv : int, cross-validation splitter or iterable of splits, default=5
        The folds of the held-out log-loss (``loss="logistic"`` only), as scikit-learn's
        ``check_cv`` reads it: an integer is ``StratifiedKFold(cv)`` (unshuffled; each
        class needs at least ``cv`` samples), a splitter such as
        ``StratifiedKFold(5, shuffle=True, random_state=0)`` is used as given, and so are
        splits given as (train, test) pairs of row indices or boolean masks.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    alpha_ : float
        The chosen alpha (with ``gamma_search`` and ``criterion="gcv"``, refined between
        the candidates).
    gcv_values_ : ndarray of shape (n_alphas,)
        GCV of each candidate (lower is better; square loss).
    dof_ : ndarray of shape (n_alphas,)
        Effective degrees of freedom of each candidate (square loss).
    cv_log_loss_ : ndarray of shape (n_alphas,)
        ``loss="logistic"``: each candidate's held-out log-loss, the folds' mean weighted
        by their held-out weight (lower is better). The exact log-loss of the model's
        probabilities: scikit-learn's ``log_loss`` (and its ``neg_log_loss`` scorer)
        clips them at machine epsilon, so the two differ where held-out probabilities of
        the true class fall below about 1e-16 (an overfitting alpha: 2.71 against 1.24
        on an iris fold).
    cv_log_loss_folds_ : ndarray of shape (n_folds, n_alphas)
        ``loss="logistic"``: the same per fold.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        ``loss="logistic"``: the unpenalised intercepts, as
        :class:`~gramfree.KernelClassifier`'s.
    best_score_ : float
        Minus the chosen alpha's leave-one-out error or GCV, whichever chose it, or
        minus its ``cv_log_loss_`` (higher is better, as RidgeCV's).
    loo_values_ : ndarray of shape (n_alphas,)
        Where leave-one-out chose (``criterion`` "loo", or "auto" with the square loss):
        each candidate's leave-one-out error on the class targets.
    gamma_ : float
        The chosen gamma (``gammas`` or ``gamma_search`` only).
    gcv_grid_, dof_grid_ : ndarray of shape (n_gammas, n_alphas)
        GCV and degrees of freedom of every pair (``gammas`` only).
    centers_, dual_coef_, kernel_, solver_info_, fit_time_ :
        As :class:`~gramfree.KernelClassifier`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gramfree import KernelClassifierCV
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = KernelClassifierCV(gamma=1e-3, alphas=[1e-3, 1e-2, 0.1]).fit(X[:1000], y[:1000])
    >>> clf.score(X[1000:], y[1000:]) > 0.95
    True
    >>> clf.alpha_ in (1e-3, 1e-2, 0.1)
    True

    Kernel logistic regression, alpha chosen on held-out log-loss:

    >>> from sklearn.metrics import log_loss
    >>> lr = KernelClassifierCV(loss="logistic", gamma=1e-3, alphas=[1e-3, 1e-2, 0.1], cv=3)
    >>> lr = lr.fit(X[:1000], y[:1000])
    >>> bool(lr.cv_log_loss_.argmin() == [1e-3, 1e-2, 0.1].index(lr.alpha_))
    True
    >>> bool(log_loss(y[1000:], lr.predict_proba(X[1000:])) < 0.2)
    True
    """

    _parameter_constraints: dict = {
        **_AlphaPathMixin._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "loss": [StrOptions({"squared", "logistic"})],
        "cv": ["cv_object"],
    }

    def __init__(
        self,
        kernel="rbf",
        *,
        alphas=(1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0),
        gamma=None,
        gammas=None,
        gamma_search=None,
        degree=3,
        coef0=1.0,
        length_scale=1.0,
        nu=1.5,
        n_centers=None,
        random_state=None,
        n_jobs=None,
        device="cpu",
        verbose=False,
        criterion="auto",
        class_weight=None,
        loss="squared",
        cv=5,
    ):
        super().__init__(
            kernel,
            alphas=alphas,
            gamma=gamma,
            gammas=gammas,
            gamma_search=gamma_search,
            degree=degree,
            coef0=coef0,
            length_scale=length_scale,
            nu=nu,
            n_centers=n_centers,
            random_state=random_state,
            n_jobs=n_jobs,
            device=device,
            verbose=verbose,
            criterion=criterion,
        )
        self.class_weight = class_weight
        self.loss = loss
        self.cv = cv

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None, **params: Any
    ) -> Self:
        """Fit on X and class labels y, choosing ``alpha_`` from ``alphas``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points.
        y : array-like of shape (n_samples,)
            Class labels: at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples, times their class's ``class_weight``.
        **params : dict
            Parameters of the ``cv`` splitter's ``split``, such as ``groups`` for
            ``GroupKFold``, routed by scikit-learn's metadata routing
            (``sklearn.set_config(enable_metadata_routing=True)``, and the splitter's
            ``set_split_request``), as ``LogisticRegressionCV`` routes them;
            ``loss="logistic"`` only (the square loss chooses alpha by GCV or leave-one-out,
            without folds).

        Returns
        -------
        self : KernelClassifierCV
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from gramfree import KernelClassifierCV
        >>> X, y = load_iris(return_X_y=True)
        >>> alphas = [1e-2, 0.1, 1.0]
        >>> clf = KernelClassifierCV(gamma=0.5, alphas=alphas).fit(X, y)
        >>> clf.classes_
        array([0, 1, 2])
        >>> clf.alpha_ == alphas[clf.loo_values_.argmin()]
        True
        >>> clf.score(X, y) > 0.95
        True
        """
        self._validate_params()
        _raise_for_params(params, self, "fit")
        split_params = (
            dict(process_routing(self, "fit", sample_weight=sample_weight, **params).splitter.split)
            if _routing_enabled()
            else {}
        )
        if split_params and self.loss != "logistic":
            raise ValueError(
                f"{', '.join(sorted(split_params))}: routed to cv's splitter, which only "
                "loss='logistic' uses (the square loss chooses alpha by GCV or leave-one-out, "
                "without folds)"
            )
        if self.loss == "logistic":
            for name in ("gammas", "gamma_search"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name}: chosen by GCV, the square loss's criterion; with "
                        f"loss='logistic' leave {name}=None (and set gamma)"
                    )
            if self.criterion == "loo":
                raise ValueError(
                    f"criterion={self.criterion!r}: the square loss's; loss='logistic' "
                    "chooses alpha by the held-out log-loss of cv folds"
                )
        alphas = _check_alphas(self.alphas)
        X, y, sample_weight = self._validate_X_y(X, y, sample_weight, y_numeric=False)
        if self.loss == "logistic":
            classes = fit_logistic_cv(self, X, y, sample_weight, alphas, split_params)
            stale: tuple[str, ...] = ("gcv_values_", "dof_", "loo_values_", *_GAMMA_ATTRIBUTES)
        else:
            classes, Y, sample_weight = class_targets(self, X, y, sample_weight)
            self._fit_path(X, Y, sample_weight)
            stale = ("cv_log_loss_", "cv_log_loss_folds_", "intercept_")
        # The other loss's attributes, once the fit has succeeded (a failed refit keeps
        # the previous model whole).
        for name in stale:
            if hasattr(self, name):
                delattr(self, name)
        self.classes_ = classes
        self._fitted_loss = self.loss
        self._record_center_targets(y)
        return self

    def get_metadata_routing(self) -> MetadataRouter:
        """The metadata routing of this estimator: its own requests (``sample_weight``)
        and its ``cv`` splitter's ``split`` parameters (``groups``), as
        ``LogisticRegressionCV`` routes them (scikit-learn's metadata routing guide).

        Returns
        -------
        routing : MetadataRouter
            The routing information.

        Examples
        --------
        >>> import numpy as np, sklearn
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.model_selection import GroupKFold
        >>> from gramfree import KernelClassifierCV
        >>> X, y = load_iris(return_X_y=True)
        >>> groups = np.arange(len(y)) % 5
        >>> with sklearn.config_context(enable_metadata_routing=True):
        ...     clf = KernelClassifierCV(loss="logistic", gamma=0.5, cv=GroupKFold(3))
        ...     clf = clf.fit(X, y, groups=groups)
        >>> clf.get_metadata_routing().consumes("fit", ["groups"])
        {'groups'}
        """
        return (
            MetadataRouter(owner=type(self).__name__)
            .add_self_request(self)
            .add(
                splitter=self.cv,
                method_mapping=MethodMapping().add(caller="fit", callee="split"),
            )
        )
