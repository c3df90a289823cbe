"""Path-kernel decompositions, explanations and influence over a dask array of queries.

Each row chunk of the queries is decomposed on a worker by the in-process machinery
(``_replay_decompose``: one deterministic replay of the recorded training per chunk); the
fitted model is shipped to the workers once per call (scattered to every worker, or one
delayed literal with dask's local scheduler). The client gathers only what is small:
the per-chunk self-check figures, the replay's gap to the fitted weights (checked, and
warned about, on the client), and for ``explain`` and ``influence`` their per-query
(q x top_k) pieces or (n,) sums; ``decompose``'s (q, n[, k]) contributions stay on the
workers.

Agreement with the in-process call. Every per-query quantity of the replay is computed
row by row, except the self-check's refinement: a query's segment is halved when its
residual exceeds ``tol`` times the largest ``|f|`` *over the queries decomposed
together*. A chunk's largest ``|f|`` is at most that of all queries, so a chunk refines
every segment the in-process call refines, and possibly more (by induction over the
halving levels: a query refined alike in both has the same residual, compared with a
smaller or equal scale). Hence:

* ``initial``, ``output``, ``path_norm`` and ``relu_pieces`` are bit-identical;
* equal ``refined_segments`` (in particular 0, the common case for smooth activations
  at the default quadrature) means equal refined sets at every step and level, hence
  the same quadrature rows for every query, and ``contributions`` and ``reg`` are
  bit-identical too (the native products treat rows independently: observed bit for bit
  across chunkings in tests/test_dask_pathkernel.py);
* otherwise the queries refined only here get a finer quadrature of the same step
  integral: per query and step the sum over the training examples (and ``reg``) moves by
  at most ``2 * tol * max |f|`` (both pass the self-check, or stop after the same number
  of halvings); single contributions move by the coarser rule's own quadrature error,
  which the self-check does not bound (observed: up to 3e-13 relative to max |C|);
* ``step_residual`` is relative to each chunk's own scale: the maximum over chunks is at
  least the in-process figure when nothing is refined, and ``refined_segments`` at least
  the in-process count.

The step ranges a checkpointed replay runs side by side are the client's (as in-process),
so sums over the ranges are added in the same order whatever the workers' thread counts.
dask is imported only here, when a dask collection is handed in.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .._dask import _scheduler_client, _share, check_X
from .explain import Explanation, PathDecomposition

_PER_QUERY = ("initial", "contributions", "reg", "output")


def _queries(estimator, X):
    """X as a float64 dask array chunked by rows (as ``_query_array`` converts in memory),
    after the checks that need no data: fitted, path recorded, features."""
    estimator._replay_inputs()  # fitted, with a recorded path (else ValueError)
    X = check_X(X, n_features=estimator.n_features_in_)
    return X.astype(np.float64) if X.dtype != np.float64 else X


def _block_decomposition(Xb, estimator, quadrature, n_ranges) -> tuple[dict, dict | None]:
    """One chunk's raw decomposition (outputs squeezed as decompose does) and its summary
    (None for an empty chunk)."""
    Xb = np.ascontiguousarray(Xb, dtype=np.float64)
    k = estimator.n_outputs_
    squeeze = estimator._squeeze_outputs()
    n = estimator._path["X"].shape[0]
    if Xb.shape[0] == 0:  # the native replay needs at least one query
        tail = () if squeeze else (k,)
        empty = {
            "initial": np.zeros((0, *tail)),
            "reg": np.zeros((0, *tail)),
            "output": np.zeros((0, *tail)),
            "contributions": np.zeros((0, n, *tail)),
        }
        return empty, None
    if not np.isfinite(Xb).all():
        raise ValueError("X: contains NaN or infinity")
    r = estimator._replay_decompose(Xb, quadrature, n_ranges=n_ranges)
    pick = (lambda a: a[..., 0]) if squeeze else (lambda a: a)
    arrays = {
        "initial": pick(r["initial"]),
        "contributions": pick(r["contributions"]),
        "reg": pick(r["reg"]),
        "output": pick(r["final"]),
    }
    summary = {
        "path_norm": r["path_norm"],
        "step_residual": float(r["worst_step_residual"]),
        "refined_segments": int(r["refined_segments"]),
        "relu_pieces": int(r["relu_pieces"]),
        "replay_gap": max(estimator._replay_gap(r["final_params"]), r.get("chain_gap", 0.0)),
    }
    return arrays, summary


def _as_decomposition(arrays: dict, summary: dict) -> PathDecomposition:
    return PathDecomposition(
        **{key: arrays[key] for key in _PER_QUERY},
        path_norm=summary["path_norm"],
        step_residual=summary["step_residual"],
        refined_segments=summary["refined_segments"],
        relu_pieces=summary["relu_pieces"],
    )


def _decompose_block(Xb, estimator, quadrature, n_ranges):
    arrays, summary = _block_decomposition(Xb, estimator, quadrature, n_ranges)
    return {**arrays, "summary": summary}


def _summary_of(part):
    return part["summary"]


def _explain_block(Xb, estimator, quadrature, n_ranges, top_k, target, normalize):
    arrays, summary = _block_decomposition(Xb, estimator, quadrature, n_ranges)
    if summary is None:
        return None, None
    dec = _as_decomposition(arrays, summary)
    parts = estimator._explanation_parts(dec, top_k, target, normalize)
    summary = dict(summary, path_norm=None)  # the client needs the scalars only
    return parts, summary


def _influence_block(Xb, estimator, quadrature, n_ranges, target):
    arrays, summary = _block_decomposition(Xb, estimator, quadrature, n_ranges)
    n = estimator._path["X"].shape[0]
    if summary is None:
        return np.zeros((1, n)), None
    dec = _as_decomposition(arrays, summary)
    C = estimator._explained(dec, target)[0]
    return C.sum(axis=0)[None], dict(summary, path_norm=None)


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _finish(estimator, summaries: list) -> dict:
    """The query-independent figures of the chunks' summaries, set on the client's
    estimator (``decomposition_error_``, ``replay_gap_``) with the replay check's warning."""
    found = [s for s in summaries if s is not None]
    if not found:  # every chunk empty (a mask that kept no query)
        raise ValueError("X: no rows to explain (every chunk of X is empty)")
    out = {
        "path_norm": found[0]["path_norm"],  # the training side: the same in every chunk
        "step_residual": max(s["step_residual"] for s in found),
        "refined_segments": sum(s["refined_segments"] for s in found),
        "relu_pieces": sum(s["relu_pieces"] for s in found),
    }
    estimator.decomposition_error_ = out["step_residual"]
    estimator.replay_gap_ = max(s["replay_gap"] for s in found)
    # Counted from _warn_replay_gap: _finish, this module's function, the estimator's
    # method, its caller.
    estimator._warn_replay_gap(estimator.replay_gap_, stacklevel=5)
    return out


def _setup(estimator, X, quadrature):
    import dask

    X = _queries(estimator, X)
    nodes = estimator._quadrature_nodes(quadrature)
    n_ranges = estimator._n_ranges()  # the client's, as in-process
    client = _scheduler_client()
    model = _share(estimator, client)
    blocks = list(X.to_delayed().ravel())
    return dask, X, nodes, n_ranges, client, model, blocks


def decompose(estimator, X, quadrature=None) -> PathDecomposition:
    """``estimator.decompose(X)`` for a dask array X; see the estimator's docstring."""
    import dask.array as da

    dask, X, nodes, n_ranges, client, model, blocks = _setup(estimator, X, quadrature)
    parts = [dask.delayed(_decompose_block)(b, model, nodes, n_ranges) for b in blocks]
    if client is None:  # local scheduler: computed, then wrapped with the rows' chunks
        computed = dask.compute(*parts)
        summary = _finish(estimator, [p["summary"] for p in computed])
        rows = tuple(len(p["output"]) for p in computed)
        arrays = {}
        for key in _PER_QUERY:
            full = np.concatenate([p[key] for p in computed])
            arrays[key] = da.from_array(full, chunks=(rows,) + tuple((s,) for s in full.shape[1:]))
        return _as_decomposition(arrays, summary)
    parts = client.persist(parts)  # one replay per chunk, kept on the workers
    n, k = estimator._path["X"].shape[0], estimator.n_outputs_
    tail = () if estimator._squeeze_outputs() else (k,)
    shapes = {"initial": tail, "reg": tail, "output": tail, "contributions": (n, *tail)}
    lazy: dict[str, Any] = {}
    for key in _PER_QUERY:
        pieces = [
            da.from_delayed(
                dask.delayed(operator.getitem)(p, key),
                shape=(rows, *shapes[key]),
                dtype=np.float64,
                meta=np.empty((0,) * (1 + len(shapes[key]))),
            )
            for p, rows in zip(parts, X.chunks[0])
        ]
        lazy[key] = da.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    persisted = client.persist([lazy[key] for key in _PER_QUERY])
    (summaries,) = dask.compute([dask.delayed(_summary_of)(p) for p in parts])
    summary = _finish(estimator, summaries)
    return _as_decomposition(dict(zip(_PER_QUERY, persisted)), summary)


def explain(estimator, X, top_k: int, target, normalize: bool, decomposition) -> Explanation:
    """``estimator.explain(X, ...)`` for a dask array X: per chunk on the workers, the
    decomposition and the same selection as in memory; only the (q x top_k) pieces and
    per-query totals come back, concatenated here."""
    if decomposition is not None:
        raise ValueError(
            "decomposition: not accepted with a dask X; explain decomposes each chunk of X "
            "on the workers (pass X in memory to reuse a decomposition)"
        )
    dask, X, nodes, n_ranges, client, model, blocks = _setup(estimator, X, None)
    parts = [
        dask.delayed(_explain_block)(b, model, nodes, n_ranges, top_k, target, normalize)
        for b in blocks
    ]
    (results,) = dask.compute(parts)
    summary = _finish(estimator, [s for _, s in results])
    found = [p for p, _ in results if p is not None]
    merged = {key: np.concatenate([p[key] for p in found]) for key in found[0]}
    return estimator._explanation(merged, normalize, summary["step_residual"], estimator.quadrature)


def influence(estimator, X, target) -> np.ndarray:
    """``estimator.influence(X)`` for a dask array X: each chunk's (n,) sum over its
    queries on the workers, the chunks' sums added by dask's tree reduction."""
    import dask.array as da

    dask, X, nodes, n_ranges, client, model, blocks = _setup(estimator, X, None)
    n = estimator._path["X"].shape[0]
    parts = [dask.delayed(_influence_block)(b, model, nodes, n_ranges, target) for b in blocks]
    sums = da.concatenate(
        [da.from_delayed(dask.delayed(_first)(p), shape=(1, n), dtype=np.float64) for p in parts]
    )
    summaries = [dask.delayed(_second)(p) for p in parts]
    total, summaries = dask.compute(sums.sum(axis=0), summaries)
    _finish(estimator, summaries)
    return np.asarray(total, dtype=np.float64)
