"""Smoothed vertex updates (Nicolet, Jacobson and Jakob 2021, "Large Steps in Inverse
Rendering of Geometry"): the optimiser works on u = (I + lambda L) x, and the vertices are
x = (I + lambda L)^-1 u, with L the mesh's graph Laplacian. An optimiser's step in u
becomes a smooth step in x: the noise of the guidance (one bumpy direction per vertex)
is damped by the solve, while a motion of a whole face region (moving a base that sits
too low) passes nearly unchanged, so the learning rate can be large without roughening.

Two twins: `SparseSmoother` (a sparse LU factor, made once per mesh, solves in
milliseconds) and `dense_smooth`, the plain reference (a dense solve) the tests compare
it with, values and gradients. (I + lambda L) is symmetric positive definite, so the
backward of a solve is the same solve."""
from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from torch import Tensor


def system_matrix(edge_src: Tensor, edge_dst: Tensor, n_vertices: int, lam: float
                  ) -> scipy.sparse.csc_matrix:
    """(V, V) I + lam L, L = D - A the graph Laplacian of the directed edges src -> dst
    (every undirected edge listed both ways)."""
    src, dst = edge_src.cpu().numpy(), edge_dst.cpu().numpy()
    adjacency = scipy.sparse.coo_matrix((np.ones(len(src)), (src, dst)),
                                        shape=(n_vertices, n_vertices)).tocsr()
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    laplacian = scipy.sparse.diags(degree) - adjacency
    return (scipy.sparse.identity(n_vertices) + lam * laplacian).tocsc()


class SparseSmoother:
    """x = (I + lam L)^-1 u for (V, C) tensors on any device, by a factor made once."""

    def __init__(self, edge_src: Tensor, edge_dst: Tensor, n_vertices: int, lam: float):
        self.solve_np = scipy.sparse.linalg.factorized(
            system_matrix(edge_src, edge_dst, n_vertices, lam))

    def solve(self, u: Tensor) -> Tensor:
        x = self.solve_np(u.detach().double().cpu().numpy())
        return torch.from_numpy(np.ascontiguousarray(x)).to(u.device, u.dtype)

    def __call__(self, u: Tensor) -> Tensor:
        return _Solve.apply(u, self)


class _Solve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: Tensor, smoother: SparseSmoother) -> Tensor:
        ctx.smoother = smoother
        return smoother.solve(u)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return ctx.smoother.solve(grad), None  # the matrix is symmetric


def dense_smooth(u: Tensor, edge_src: Tensor, edge_dst: Tensor, lam: float) -> Tensor:
    """The reference twin of SparseSmoother: a dense solve, differentiable by autograd."""
    matrix = torch.tensor(system_matrix(edge_src, edge_dst, len(u), lam).toarray(),
                          dtype=u.dtype, device=u.device)
    return torch.linalg.solve(matrix, u)
