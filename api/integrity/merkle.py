"""Merkle tree hashes and proofs over the log's leaf hashes, as RFC 6962 §2.1 / RFC 9162 §2.1.

Leaves are the event leaf hashes of api/store/chain.py (`SHA-256(0x00 || canonical bytes)`); an inner
node is `SHA-256(0x01 || left || right)`; a tree of n leaves splits at the largest power of two
below n. `Tree` computes the root of a growing log in O(log n) memory (the verifier streams the
log through it); `root`, `inclusion_path` and `consistency_path` work on a list of leaves;
`verify_inclusion` and `verify_consistency` are the RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms
(scripts/verify_proof.py carries its own copy of them, so that an inspector need not trust this
package).
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

EMPTY_ROOT = sha256(b"").digest()


def node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class Tree:
    """The root of a tree that grows one leaf at a time: a stack of perfect subtrees' roots."""

    __slots__ = ("size", "_stack")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        stack = self._stack
        stack.append(leaf)
        self.size += 1
        n = self.size
        while not n & 1:
            right = stack.pop()
            stack[-1] = sha256(b"\x01" + stack[-1] + right).digest()
            n >>= 1

    def root(self) -> bytes:
        return fold(self._stack)

    def stack(self) -> list[bytes]:
        """The roots of its perfect subtrees, largest first (what `fold` takes)."""
        return list(self._stack)


def fold(stack: Sequence[bytes]) -> bytes:
    """The root of a tree from the roots of its perfect subtrees, largest first (`Tree`'s stack:
    the bits of the tree's size, from the highest)."""
    if not stack:
        return EMPTY_ROOT
    digest = stack[-1]
    for left in reversed(stack[:-1]):
        digest = node(left, digest)
    return digest


def root(leaves: Sequence[bytes], start: int = 0, end: int | None = None) -> bytes:
    """MTH(D[start:end])."""
    end = len(leaves) if end is None else end
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[start]
    k = _split(n)
    return node(root(leaves, start, start + k), root(leaves, start + k, end))


def inclusion_path(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"no leaf {index} in a tree of {size} (log of {len(leaves)})")
    return _path(leaves, index, 0, size)


def _path(leaves: Sequence[bytes], m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(leaves, m, start, start + k), root(leaves, start + k, end)]
    return [*_path(leaves, m - k, start + k, end), root(leaves, start, start + k)]


def consistency_path(leaves: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1); empty when the sizes are equal."""
    if not 0 < old_size <= new_size <= len(leaves):
        raise ValueError(f"no consistency proof from {old_size} to {new_size} (log of {len(leaves)})")
    if old_size == new_size:
        return []
    return _subproof(leaves, old_size, 0, new_size, True)


def _subproof(leaves: Sequence[bytes], m: int, start: int, end: int, complete: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [root(leaves, start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves, m, start, start + k, complete), root(leaves, start + k, end)]
    return [*_subproof(leaves, m - k, start + k, end, False), root(leaves, start, start + k)]


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size or index < 0:
        return False
    fn, sn, digest = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node(p, digest)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            digest = node(digest, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and digest == expected_root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       path: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2."""
    if old_size <= 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    path = list(path)
    if old_size & (old_size - 1) == 0:  # a power of two: the old tree is a node of the new one
        path = [old_root, *path]
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
