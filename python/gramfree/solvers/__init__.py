"""Solvers for the kernel ridge objective: exact Cholesky, Nystrom-PCG (Falkon), one-pass
Nystrom (direct M x M solve), EigenPro, exact kernel ridge by preconditioned CG.

Each takes a :class:`~gramfree.solvers._common.Problem` and returns a
:class:`~gramfree.solvers._common.SolverResult`; none knows about scikit-learn.
"""

from ._common import Problem, SolverResult, kernel_diagonal
from .direct import objective, solve_direct
from .eigenpro import solve_eigenpro
from .kernel_pcg import solve_kernel_pcg
from .nystrom_direct import solve_nystrom_direct
from .nystrom_pcg import solve_nystrom_pcg

SOLVERS = ("auto", "direct", "eigenpro", "nystrom-pcg", "nystrom-direct", "pcg")

__all__ = [
    "SOLVERS",
    "Problem",
    "SolverResult",
    "kernel_diagonal",
    "objective",
    "solve_direct",
    "solve_eigenpro",
    "solve_kernel_pcg",
    "solve_nystrom_direct",
    "solve_nystrom_pcg",
]
