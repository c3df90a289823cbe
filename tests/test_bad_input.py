"""Bad input gets a ValueError/TypeError naming the argument, never a crash.

Every case is a short snippet, run twice: in this process under ``pytest.raises`` (the
exception type and that the message names the argument), and in a process of its own
(a fresh interpreter started with sys.executable imports gramfree once and forks one
child per case, so a segfault or abort in one case shows as that case's negative exit
status; a hang is ended by an alarm). The child exits 0 only if it caught the expected
exception.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import gramfree
from gramfree import KernelOperator, _core, get_kernel, kernel_gradient, kernel_matrix

SETUP = """
import numpy as np
import gramfree
from gramfree import KernelOperator, kernel_matrix, kernel_gradient, get_kernel, _core
rng = np.random.default_rng(0)
X = rng.normal(size=(5, 3))
Z = rng.normal(size=(4, 3))
V = rng.normal(size=(4, 2))
U = rng.normal(size=(5, 2))
K = KernelOperator(X, Z, "rbf")
def spoil(A, value, where=(0, 0)):
    A = np.array(A, dtype=np.float64)
    A[where] = value
    return A
BIG = np.broadcast_to(np.float64(0.5), (10**6, 1))   # 8 MB once made contiguous
F64 = dict(kind="gaussian", gamma=0.5)
"""

# (id, snippet, exception type(s), regex the message must match: the argument's name)
CASES = [
    # NaN and infinity, in every argument
    ("X_nan", "kernel_matrix(spoil(X, np.nan))", ValueError, r"\bX\b.*NaN"),
    ("X_inf", "kernel_matrix(spoil(X, np.inf))", ValueError, r"\bX\b.*inf"),
    ("X_neginf", "KernelOperator(spoil(X, -np.inf, (4, 2)))", ValueError, r"\bX\b"),
    ("X_nan_float32", "kernel_matrix(spoil(X, np.nan).astype(np.float32))", ValueError, r"\bX\b"),
    ("Z_nan", "kernel_matrix(X, spoil(Z, np.nan, (3, 1)))", ValueError, r"\bZ\b.*NaN"),
    ("Z_inf", "KernelOperator(X, spoil(Z, np.inf))", ValueError, r"\bZ\b"),
    ("V_nan", "K @ spoil(V, np.nan)", ValueError, r"\bV\b.*NaN"),
    ("v_inf_1d", "K @ spoil(V, np.inf)[:, 0]", ValueError, r"\bV\b"),
    ("U_nan", "K.T @ spoil(U, np.nan)", ValueError, r"\bU\b.*NaN"),
    ("U_inf_rmatvec", "K.rmatvec(spoil(U, np.inf)[:, 0])", ValueError, r"\bU\b"),
    ("V_nan_normal", "K.normal_matvec(spoil(V, np.nan))", ValueError, r"\bV\b"),
    ("V_nan_gradient", "kernel_gradient(X, Z, spoil(V, np.nan))", ValueError, r"\bV\b"),
    (
        "sample_weight_nan",
        "K.normal_matvec(V, sample_weight=spoil(np.ones(5), np.nan, 0))",
        ValueError,
        r"sample_weight",
    ),
    # shapes
    ("features_differ", "kernel_matrix(X, Z[:, :2])", ValueError, r"\bX\b.*\bZ\b.*features"),
    ("features_differ_operator", "KernelOperator(X, np.ones((4, 7)))", ValueError, r"\bX\b.*\bZ\b"),
    ("features_differ_gradient", "kernel_gradient(X, Z[:, :2], V)", ValueError, r"\bX\b.*\bZ\b"),
    ("X_1d", "kernel_matrix(X[0])", ValueError, r"\bX\b.*2-d"),
    ("X_3d", "kernel_matrix(X[None])", ValueError, r"\bX\b.*2-d"),
    ("X_0d", "kernel_matrix(np.float64(1.0))", ValueError, r"\bX\b"),
    ("Z_1d", "kernel_matrix(X, Z[0])", ValueError, r"\bZ\b"),
    ("Z_3d", "KernelOperator(X, Z[None])", ValueError, r"\bZ\b"),
    ("X_ragged", "kernel_matrix([[1.0, 2.0], [3.0]])", (ValueError, TypeError), r"\bX\b"),
    ("V_3d_normal", "K.normal_matvec(V[None])", ValueError, r"\bV\b"),
    ("V_3d_gradient", "K.gradient(V[None])", ValueError, r"\bV\b"),
    ("V_rows_normal", "K.normal_matvec(np.ones((5, 2)))", ValueError, r"\bV\b.*rows"),
    ("V_rows_gradient", "kernel_gradient(X, Z, np.ones(7))", ValueError, r"\bV\b.*rows"),
    (
        "sample_weight_length",
        "K.normal_matvec(V, sample_weight=np.ones(4))",
        ValueError,
        r"sample_weight",
    ),
    (
        "sample_weight_2d",
        "K.normal_matvec(V, sample_weight=np.ones((5, 1)))",
        ValueError,
        r"sample_weight",
    ),
    # empty
    ("X_no_rows", "kernel_matrix(np.empty((0, 3)))", ValueError, r"\bX\b.*empty"),
    ("X_no_columns", "kernel_matrix(np.empty((5, 0)))", ValueError, r"\bX\b.*empty"),
    ("Z_no_rows", "kernel_matrix(X, np.empty((0, 3)))", ValueError, r"\bZ\b.*empty"),
    ("Z_no_columns", "KernelOperator(np.empty((5, 0)), np.empty((4, 0)))", ValueError, r"\bX\b"),
    ("X_empty_list", "kernel_matrix([])", ValueError, r"\bX\b"),
    # (V with no columns is an empty product: test_operators.py's zero-columns test)
    # dtypes
    ("X_complex", "kernel_matrix(X + 1j)", TypeError, r"\bX\b.*complex"),
    ("X_complex_real_values", "kernel_matrix(X.astype(np.complex64))", TypeError, r"\bX\b"),
    (
        "X_sparse",
        "kernel_matrix(__import__('scipy.sparse').sparse.csr_matrix(X))",
        TypeError,
        r"^X: sparse matrices are not supported .*X\.toarray\(\)",
    ),
    (
        "Z_sparse",
        "KernelOperator(X, __import__('scipy.sparse').sparse.csr_matrix(Z))",
        TypeError,
        r"^Z: sparse",
    ),
    ("Z_complex", "kernel_matrix(X, Z.astype(complex))", TypeError, r"\bZ\b.*complex"),
    ("V_complex", "K @ (V + 0j)", TypeError, r"\bV\b.*complex"),
    ("U_complex", "K.T @ (U + 1j)", TypeError, r"\bU\b.*complex"),
    ("V_complex_gradient", "K.gradient(V + 1j)", TypeError, r"\bV\b"),
    ("X_object", "kernel_matrix(X.astype(object))", TypeError, r"\bX\b.*dtype"),
    ("X_str", "kernel_matrix(np.array([['a', 'b'], ['c', 'd']]))", TypeError, r"\bX\b.*dtype"),
    ("X_bytes", "kernel_matrix(np.array([[b'1', b'2']]))", TypeError, r"\bX\b"),
    ("X_datetime", "kernel_matrix(np.zeros((2, 2), dtype='datetime64[s]'))", TypeError, r"\bX\b"),
    ("X_none", "kernel_matrix(None)", (TypeError, ValueError), r"\bX\b"),
    ("Z_str", "KernelOperator(X, [['1', '2', '3']])", TypeError, r"\bZ\b"),
    ("V_object", "K @ V.astype(object)", TypeError, r"\bV\b"),
    ("V_str", "K.normal_matvec(np.array([['x']] * 4))", TypeError, r"\bV\b"),
    # kernel parameters
    ("gamma_negative", "kernel_matrix(X, gamma=-1.0)", ValueError, r"gamma"),
    ("gamma_zero", "KernelOperator(X, kernel='laplacian', gamma=0)", ValueError, r"gamma"),
    ("gamma_nan", "kernel_matrix(X, kernel='poly', gamma=float('nan'))", ValueError, r"gamma"),
    ("gamma_str", "kernel_matrix(X, gamma='0.5')", TypeError, r"gamma"),
    ("gamma_bool", "kernel_matrix(X, gamma=True)", TypeError, r"gamma"),
    ("gamma_array", "kernel_matrix(X, gamma=np.ones(3))", TypeError, r"gamma"),
    ("degree_zero", "kernel_matrix(X, kernel='poly', degree=0)", ValueError, r"degree"),
    ("degree_fraction", "kernel_matrix(X, kernel='poly', degree=2.5)", ValueError, r"degree"),
    ("degree_bool", "kernel_matrix(X, kernel='poly', degree=True)", TypeError, r"degree"),
    ("nu_unsupported", "kernel_matrix(X, kernel='matern', nu=1.0)", ValueError, r"\bnu\b"),
    (
        "length_scale_negative",
        "kernel_matrix(X, kernel='matern', length_scale=-2.0)",
        ValueError,
        r"length_scale",
    ),
    ("norm_unknown", "kernel_matrix(X, kernel='laplacian', norm='l3')", ValueError, r"norm"),
    ("kernel_unknown", "kernel_matrix(X, kernel='sigmoid')", ValueError, r"kernel 'sigmoid'"),
    ("kernel_unknown_operator", "KernelOperator(X, kernel='bogus')", ValueError, r"kernel 'bogus'"),
    ("kernel_not_a_name", "kernel_matrix(X, kernel=3)", TypeError, r"kernel"),
    (
        "kernel_param_not_taken",
        "kernel_matrix(X, kernel='linear', gamma=1.0)",
        ValueError,
        r"gamma",
    ),
    (
        "kernel_object_with_params",
        "kernel_matrix(X, kernel=get_kernel('rbf'), gamma=1.0)",
        ValueError,
        r"kernel",
    ),
    ("arccos_gradient", "kernel_gradient(X, Z, V, 'arccos')", ValueError, r"arccos"),
    # threads
    # the kernel given where Z goes said "Z: dtype must be numeric, got <U6" (a review)
    ("kernel_as_z", "KernelOperator(X, 'linear')", TypeError, r"Z: .*'linear'.*kernel="),
    ("kernel_as_z_matrix", "kernel_matrix(X, 'rbf')", TypeError, r"Z: .*'rbf'.*kernel="),
    # threads: 0 is refused; the message no longer hides the negative counts it takes
    ("n_jobs_zero", "kernel_matrix(X, n_jobs=0)", ValueError, r"n_jobs.*-2 all but one"),
    ("n_jobs_zero_operator", "KernelOperator(X, n_jobs=0)", ValueError, r"n_jobs"),
    ("n_jobs_zero_gradient", "kernel_gradient(X, Z, V, n_jobs=0)", ValueError, r"n_jobs"),
    ("n_jobs_fraction", "kernel_matrix(X, n_jobs=1.5)", (ValueError, TypeError), r"n_jobs"),
    ("n_jobs_bool", "kernel_matrix(X, n_jobs=True)", (ValueError, TypeError), r"n_jobs"),
    ("n_jobs_str", "KernelOperator(X, n_jobs='2')", (ValueError, TypeError), r"n_jobs"),
    # results that cannot fit in memory: refused before allocating (a MemoryError would
    # mean the allocation was attempted)
    ("too_big_kernel_matrix", "kernel_matrix(BIG, BIG)", ValueError, r"result.*memory"),
    (
        "too_big_kernel_matrix_f32",
        "kernel_matrix(BIG.astype(np.float32), BIG[:10**5])",
        ValueError,
        r"result.*memory",
    ),
    ("too_big_to_dense", "KernelOperator(BIG).to_dense()", ValueError, r"result.*memory"),
    (
        "too_big_matmat",
        "KernelOperator(BIG, np.ones((1, 1))) @ np.ones((1, 10**6))",
        ValueError,
        r"result.*memory",
    ),
    (
        "too_big_gradient",
        "kernel_gradient(BIG, np.ones((1, 1)), np.ones((1, 10**6)))",
        ValueError,
        r"result.*memory",
    ),
    (
        "too_big_direct",
        "_core.kernel_block(np.ascontiguousarray(BIG), np.ascontiguousarray(BIG), **F64)",
        ValueError,
        r"result.*memory",
    ),
    # the native module called directly: it checks again
    (
        "core_int_dtype",
        "_core.kernel_block(np.ones((3, 2), dtype=np.int64), np.ones((3, 2)), **F64)",
        TypeError,
        r"\bX\b.*dtype",
    ),
    (
        "core_float16",
        "_core.kernel_block(np.ones((3, 2), dtype=np.float16), np.ones((3, 2)), **F64)",
        TypeError,
        r"\bX\b",
    ),
    (
        "core_object",
        "_core.kernel_block(np.ones((3, 2), dtype=object), np.ones((3, 2)), **F64)",
        TypeError,
        r"\bX\b",
    ),
    ("core_complex", "_core.kernel_matvec(X + 1j, Z, V, **F64)", TypeError, r"\bX\b"),
    (
        "core_Z_dtype_differs",
        "_core.kernel_block(X, Z.astype(np.float32), **F64)",
        TypeError,
        r"\bZ\b",
    ),
    (
        "core_V_dtype_differs",
        "_core.kernel_matvec(X, Z, V.astype(np.float32), **F64)",
        TypeError,
        r"\bV\b",
    ),
    (
        "core_U_dtype_differs",
        "_core.kernel_rmatvec(X, Z, U.astype(np.int32), **F64)",
        TypeError,
        r"\bU\b",
    ),
    (
        "core_byteswapped",
        "_core.kernel_block(X.astype('>f8'), Z.astype('>f8'), **F64)",
        TypeError,
        r"\bX\b",
    ),
    (
        "core_X_strided",
        "_core.kernel_block(np.ones((5, 6))[:, ::2], Z, **F64)",
        ValueError,
        r"\bX\b.*contiguous",
    ),
    (
        "core_Z_fortran",
        "_core.kernel_block(X, np.asfortranarray(Z), **F64)",
        ValueError,
        r"\bZ\b.*contiguous",
    ),
    (
        "core_V_fortran",
        "_core.kernel_matvec(X, Z, np.asfortranarray(V), **F64)",
        ValueError,
        r"\bV\b.*contiguous",
    ),
    ("core_X_1d", "_core.kernel_block(X[0], Z, **F64)", ValueError, r"\bX\b.*2-d"),
    ("core_Z_3d", "_core.kernel_block(X, Z[None], **F64)", ValueError, r"\bZ\b.*2-d"),
    ("core_V_1d", "_core.kernel_matvec(X, Z, V[:, 0], **F64)", ValueError, r"\bV\b.*2-d"),
    ("core_U_1d", "_core.kernel_rmatvec(X, Z, U[:, 0], **F64)", ValueError, r"\bU\b.*2-d"),
    (
        "core_X_no_rows",
        "_core.kernel_block(np.empty((0, 3)), Z, **F64)",
        ValueError,
        r"\bX\b.*empty",
    ),
    (
        "core_Z_no_columns",
        "_core.kernel_matvec(np.empty((5, 0)), np.empty((4, 0)), V, **F64)",
        ValueError,
        r"\bX\b.*empty",
    ),
    (
        "core_V_no_columns",
        "_core.kernel_matvec(X, Z, np.empty((4, 0)), **F64)",
        ValueError,
        r"\bV\b.*empty",
    ),
    (
        "core_features_differ",
        "_core.kernel_block(X, Z[:, :2].copy(), **F64)",
        ValueError,
        r"\bX\b.*\bZ\b",
    ),
    ("core_V_rows", "_core.kernel_matvec(X, Z, np.ones((5, 2)), **F64)", ValueError, r"\bV\b"),
    ("core_U_rows", "_core.kernel_rmatvec(X, Z, np.ones((4, 2)), **F64)", ValueError, r"\bU\b"),
    (
        "core_normal_V_rows",
        "_core.kernel_normal_matvec(X, Z, np.ones((5, 2)), **F64)",
        ValueError,
        r"\bV\b",
    ),
    (
        "core_gradient_V_rows",
        "_core.kernel_grad_matvec(X, Z, np.ones((5, 2)), **F64)",
        ValueError,
        r"\bV\b",
    ),
    (
        "core_sample_weight_length",
        "_core.kernel_normal_matvec(X, Z, V, sample_weight=np.ones(3), **F64)",
        ValueError,
        r"sample_weight",
    ),
    (
        "core_sample_weight_dtype",
        "_core.kernel_normal_matvec(X, Z, V, sample_weight=np.ones(5, dtype=np.float32), **F64)",
        TypeError,
        r"sample_weight",
    ),
    ("core_X_nan", "_core.kernel_block(spoil(X, np.nan), Z, **F64)", ValueError, r"\bX\b.*NaN"),
    ("core_Z_inf", "_core.kernel_matvec(X, spoil(Z, np.inf), V, **F64)", ValueError, r"\bZ\b"),
    (
        "core_V_nan",
        "_core.kernel_normal_matvec(X, Z, spoil(V, np.nan), **F64)",
        ValueError,
        r"\bV\b",
    ),
    ("core_U_inf", "_core.kernel_rmatvec(X, Z, spoil(U, -np.inf), **F64)", ValueError, r"\bU\b"),
    (
        "core_gradient_X_nan_float32",
        "_core.kernel_grad_matvec(spoil(X, np.nan).astype(np.float32), Z.astype(np.float32),"
        " V.astype(np.float32), kind='laplacian_l1')",
        ValueError,
        r"\bX\b",
    ),
    ("core_unknown_kind", "_core.kernel_block(X, Z, kind='sigmoid')", ValueError, r"kind|kernel"),
    (
        "core_gamma_negative",
        "_core.kernel_block(X, Z, kind='gaussian', gamma=-1.0)",
        ValueError,
        r"gamma",
    ),
    (
        "core_gamma_nan",
        "_core.kernel_matvec(X, Z, V, kind='laplacian_l2', gamma=float('nan'))",
        ValueError,
        r"gamma",
    ),
    (
        "core_length_scale_zero",
        "_core.kernel_block(X, Z, kind='matern32', length_scale=0.0)",
        ValueError,
        r"length_scale",
    ),
    (
        "core_degree_zero",
        "_core.kernel_block(X, Z, kind='polynomial', degree=0)",
        ValueError,
        r"degree",
    ),
    (
        "core_degree_huge",
        "_core.kernel_block(X, Z, kind='polynomial', degree=1000)",
        ValueError,
        r"degree",
    ),
    (
        "core_coef0_inf",
        "_core.kernel_block(X, Z, kind='polynomial', coef0=float('inf'))",
        ValueError,
        r"coef0",
    ),
    (
        "core_threads_negative",
        "_core.kernel_block(X, Z, n_threads=-1, **F64)",
        ValueError,
        r"n_threads",
    ),
    (
        "core_arccos_gradient",
        "_core.kernel_grad_matvec(X, Z, V, kind='arccos1')",
        ValueError,
        r"arccos",
    ),
    ("core_simd_unknown", "_core.set_simd_level('sse9')", ValueError, r"simd"),
]
CASE_IDS = [c[0] for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS)


def _namespace():
    ns: dict = {}
    exec(SETUP, ns)
    return ns


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bad_input_raises_and_names_the_argument(case):
    _, code, exc, pattern = case
    ns = _namespace()
    with pytest.raises(exc) as info:
        exec(code, ns)
    # Exactly the exception family promised, not e.g. RuntimeError or MemoryError
    # subclassing nothing useful, and the message says which argument.
    assert isinstance(info.value, (ValueError, TypeError))
    assert re.search(pattern, str(info.value)), f"message {str(info.value)!r} lacks {pattern!r}"


# One interpreter imports gramfree (and never runs OpenMP, so forking it is safe), then
# forks a child per case; the child runs the snippet, exits 0 when the expected exception
# with the expected message came, 1 when nothing was raised, 2 on another exception.
FORK_SERVER = r"""
import json, os, re, signal, sys, traceback
cases = json.loads(sys.stdin.read())
setup = cases.pop(0)["setup"]
import numpy, gramfree  # imported once, before forking
results = {}
for case in cases:
    pid = os.fork()
    if pid == 0:
        signal.alarm(120)  # a hang becomes SIGALRM: a negative status
        try:
            ns = {}
            exec(setup, ns)
            expected = tuple(getattr(__builtins__, name) for name in case["exc"])
            try:
                exec(case["code"], ns)
            except expected as e:
                if re.search(case["match"], str(e)):
                    os._exit(0)
                os.write(2, f"{case['id']}: message {str(e)!r}\n".encode())
                os._exit(3)
            os.write(2, f"{case['id']}: nothing raised\n".encode())
            os._exit(1)
        except BaseException:
            os.write(2, (case["id"] + ": " + traceback.format_exc()).encode())
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    results[case["id"]] = os.waitstatus_to_exitcode(status)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def isolated_results():
    payload = [{"setup": SETUP}] + [
        {
            "id": cid,
            "code": code,
            "exc": [e.__name__ for e in (exc if isinstance(exc, tuple) else (exc,))],
            "match": pattern,
        }
        for cid, code, exc, pattern in CASES
    ]
    proc = subprocess.run(
        [sys.executable, "-c", FORK_SERVER],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_input_never_crashes_a_process(isolated_results, case_id):
    results, stderr = isolated_results
    code = results[case_id]
    detail = "\n".join(line for line in stderr.splitlines() if line.startswith(case_id))
    assert code >= 0, f"{case_id}: killed by signal {-code} (crash or hang)"
    assert code == 0, f"{case_id}: exit status {code}: {detail}"


def test_isolated_cases_run_in_a_fresh_interpreter():
    """The plain form of the check, without the fork server: one interpreter per case for
    a few representative cases."""
    for cid in ("X_nan", "too_big_kernel_matrix", "core_Z_fortran", "core_byteswapped"):
        _, code, exc, pattern = CASES[CASE_IDS.index(cid)]
        names = [e.__name__ for e in (exc if isinstance(exc, tuple) else (exc,))]
        script = SETUP + textwrap.dedent(f"""
            import re, sys
            try:
                {code}
            except ({", ".join(names)},) as e:
                sys.exit(0 if re.search({pattern!r}, str(e)) else 3)
            sys.exit(1)
            """)
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"{cid}: {proc.returncode} {proc.stderr[-2000:]}"


def test_too_big_result_is_refused_quickly():
    """The size check comes before any work: no allocation, no kernel evaluations."""
    import time

    big = np.broadcast_to(np.float64(0.25), (10**6, 1))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="memory"):
        kernel_matrix(big, big)
    assert time.perf_counter() - start < 5.0


# scipy's LinearOperator checks the shape of a right-hand side before the operator sees it,
# with a message of its own.
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda K: K @ np.ones(7), "V"),
        (lambda K: K.T @ np.ones(3), "U"),
    ],
    ids=["matvec", "rmatvec"],
)
def test_operator_product_shape_error_names_the_argument(call, name):
    rng = np.random.default_rng(0)
    K = KernelOperator(rng.normal(size=(5, 3)), rng.normal(size=(4, 3)))
    with pytest.raises(ValueError) as info:
        call(K)
    assert re.search(rf"\b{name}\b", str(info.value)), (
        f"message {str(info.value)!r} does not name {name}"
    )


def test_unusual_but_valid_inputs_work():
    """Not every odd input is bad: byte-swapped, unpickled and memory-mapped arrays, numpy
    scalars as parameters, matrices of one element."""
    import pickle
    import tempfile

    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 2))
    expected = kernel_matrix(X, kernel="rbf", gamma=0.5)
    np.testing.assert_array_equal(kernel_matrix(X.astype(">f8"), kernel="rbf", gamma=0.5), expected)
    unpickled = pickle.loads(pickle.dumps(X))
    np.testing.assert_array_equal(kernel_matrix(unpickled, kernel="rbf", gamma=0.5), expected)
    np.testing.assert_array_equal(
        _core.kernel_block(unpickled, unpickled, kind="gaussian", gamma=0.5), expected
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/x.npy"
        np.save(path, X)
        mapped = np.load(path, mmap_mode="r")
        np.testing.assert_array_equal(kernel_matrix(mapped, kernel="rbf", gamma=0.5), expected)
        np.testing.assert_array_equal(
            _core.kernel_block(mapped, mapped, kind="gaussian", gamma=0.5), expected
        )
        del mapped
    np.testing.assert_array_equal(kernel_matrix(X, kernel="rbf", gamma=np.float32(0.5)), expected)
    assert kernel_matrix([[2.0]], [[2.0]]).shape == (1, 1)
    assert gramfree.kernel_matrix([[2.0]], [[2.0]])[0, 0] == 1.0
    assert get_kernel("rbf") is not None
    assert kernel_gradient([[1.0]], [[0.0]], [1.0], "linear").shape == (1, 1)


@pytest.mark.parametrize(
    "make, name, message",
    [
        (lambda: gramfree.KernelRegressor(alpha=10**400), "alpha", "must be finite"),
        (lambda: gramfree.KernelRegressor(tol=10**400), "tol", "must be finite"),
        (lambda: gramfree.KernelRegressor(max_iter=2**70), "max_iter", "beyond 64 bits"),
        (lambda: gramfree.KernelClassifierCV(cv=3, n_centers=2**64), "n_centers", "beyond 64"),
        (lambda: gramfree.PathKernelRegressor((3,), learning_rate=10**400), "learning_rate", ""),
        (lambda: gramfree.PathKernelRegressor((3,), alpha=10**400), "alpha", ""),
        (lambda: gramfree.PathKernelRegressor((3,), n_steps=10**30), "n_steps", "beyond 64"),
        (
            lambda: gramfree.PathKernelRegressor((3,), checkpoint_every=2**70),
            "checkpoint_every",
            "",
        ),
    ],
)
def test_integer_parameters_beyond_float64_or_int64_are_refused_naming_them(make, name, message):
    """scikit-learn's Interval(Real) takes an int of any size and Interval(Integral) one
    beyond 64 bits: alpha=10**400 failed inside the fit as OverflowError, n_steps=10**30
    as pybind11's "Unable to cast Python instance", checkpoint_every=2**70 as a TypeError
    listing mlp_train's overloads (a review)."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ValueError, match=rf"^{name}\b.*{message}"):
        make().fit(X, y)


@pytest.mark.parametrize(
    "estimator, name",
    [
        ("KernelRegressor", "alpha"),
        ("KernelRegressor", "n_jobs"),
        ("KernelClassifier", "max_iter"),
        ("KernelRegressorCV", "n_centers"),
        ("KernelClassifierCV", "n_jobs"),
        ("PathKernelRegressor", "learning_rate"),
        ("PathKernelClassifier", "n_steps"),
        ("PathKernelRegressor", "quadrature"),
        ("KernelRegressor", "random_state"),
        ("PathKernelClassifier", "random_state"),
    ],
)
@pytest.mark.parametrize("flag", [True, False])
def test_true_or_false_for_a_number_is_refused_naming_it(estimator, name, flag):
    """scikit-learn's constraints take a bool for an integer (bool subclasses int):
    alpha=True fitted with alpha 1 and learning_rate=True trained at step 1, in silence,
    where a model file refused the same value (a review)."""
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    model = getattr(gramfree, estimator)().set_params(**{name: flag})
    # (False is refused by scikit-learn's own intervals where 0 is out of range.)
    with pytest.raises(ValueError, match=rf"'{name}' parameter .*(a number, not|Got) {flag}"):
        model.fit(X, y)
    with pytest.raises(TypeError):  # scikit-learn's InvalidParameterError is both
        model.fit(X, y)
    # Flags stay flags.
    flag_name = {"KernelRegressor": "warm_start", "KernelClassifier": "warm_start"}.get(
        estimator, "shuffle" if estimator.startswith("Path") else None
    )
    if flag_name is not None:
        getattr(gramfree, estimator)().set_params(**{flag_name: flag}).fit(X, y)


@pytest.mark.parametrize("method", ["predict", "explain"])
@pytest.mark.parametrize("name", ["KernelRegressor", "KernelClassifier"])
def test_float32_model_names_queries_its_dtype_cannot_hold(name, method):
    """A float32 model cast finite queries of 1e39 to inf before checking them, and said
    "X: contains NaN or infinity" of finite data (a review): the overflow is named."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = getattr(gramfree, name)(gamma=0.5, alpha=1e-2).fit(X, y)
    query = np.array([[1e39, 0.0, 0.0]])
    assert np.isfinite(query).all()
    with pytest.raises(ValueError, match=r"^X: finite values up to 1e\+39 overflow float32"):
        getattr(model, method)(query)
    getattr(model, method)(X[:1])  # a query it can hold


def test_float32_model_names_dask_queries_its_dtype_cannot_hold():
    """The same for dask queries: each chunk was checked before its cast and the cast's
    inf reported as "NaN or infinity" (with numpy's overflow warning; a review)."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    model = gramfree.KernelRegressor(gamma=0.5, alpha=1e-2).fit(X, X[:, 0])
    query = da.from_array(np.full((4, 3), 1e39), chunks=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match=r"^X: finite values up to 1e\+39 overflow float32"):
            model.predict(query).compute()


@pytest.mark.parametrize("dtype", ["datetime64[D]", "timedelta64[s]"])
@pytest.mark.parametrize("make", [gramfree.KernelRegressor, gramfree.PathKernelRegressor])
def test_time_targets_are_refused_naming_y(make, dtype):
    """scikit-learn's validation passes datetime and timedelta targets through, and the
    regressors fitted their integer encoding (days since 1970 here) in silence (a review);
    KernelRidge refuses them too."""
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = np.arange(30).astype(dtype)
    with pytest.raises(TypeError, match=rf"y: dtype {re.escape(dtype)} is not numeric"):
        make().fit(X, y)
