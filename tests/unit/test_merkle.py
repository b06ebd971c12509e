"""The Merkle tree of api/integrity/merkle.py, and the standalone verifier's copy of the proof checks, against
RFC 6962's reference tree (the test vectors of the Certificate Transparency implementations) and
against every proof of every small tree."""

from __future__ import annotations

from hashlib import sha256

import pytest

from api.integrity import merkle
from tests.builders.verifier import standalone_verifier

standalone = standalone_verifier()

# RFC 6962 reference inputs and the roots of the trees of their first n leaves (n = 0..8).
INPUTS = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
LEAVES = [sha256(b"\x00" + data).digest() for data in INPUTS]
ROOTS = ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
# (leaf index, tree size, audit path) and (old size, new size, proof) from the same reference tree.
INCLUSION = [(0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
             (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
             (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
             (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"])]
CONSISTENCY = [(1, 1, []),
               (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                       "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                       "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
               (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                       "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                       "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
               (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                       "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"])]

VERIFIERS = [pytest.param((merkle.verify_inclusion, merkle.verify_consistency), id="api.integrity.merkle"),
             pytest.param((lambda leaf, i, n, path, root: standalone.verify_inclusion(leaf, i, n, list(path), root),
                           lambda m, n, a, b, path: standalone.verify_consistency(m, n, a, b, list(path))),
                          id="scripts/verify_proof.py")]


def test_the_roots_of_the_reference_tree() -> None:
    tree = merkle.Tree()
    assert tree.root().hex() == ROOTS[0] == merkle.root([]).hex()
    for n, leaf in enumerate(LEAVES, start=1):
        tree.append(leaf)
        assert tree.root().hex() == ROOTS[n]
        assert merkle.root(LEAVES[:n]).hex() == ROOTS[n]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_the_reference_audit_paths(index: int, size: int, path: list[str]) -> None:
    assert [h.hex() for h in merkle.inclusion_path(LEAVES, index, size)] == path


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_the_reference_consistency_proofs(old: int, new: int, proof: list[str]) -> None:
    assert [h.hex() for h in merkle.consistency_path(LEAVES, old, new)] == proof


def _leaves(n: int) -> list[bytes]:
    return [sha256(b"\x00" + bytes([i, n])).digest() for i in range(n)]


def _flip(digest: bytes) -> bytes:
    return bytes([digest[0] ^ 1]) + digest[1:]


@pytest.mark.parametrize("verifiers", VERIFIERS)
@pytest.mark.parametrize("size", range(1, 10))
def test_every_inclusion_proof_of_trees_of_1_to_9_verifies_and_a_changed_leaf_fails(size: int, verifiers: tuple) -> None:
    verify_inclusion, _ = verifiers
    leaves = _leaves(size)
    root = merkle.root(leaves)
    for index in range(size):
        path = merkle.inclusion_path(leaves, index, size)
        assert verify_inclusion(leaves[index], index, size, path, root)
        assert not verify_inclusion(_flip(leaves[index]), index, size, path, root)
        assert not verify_inclusion(leaves[index], index, size, path, _flip(root))
        if size > 1:
            assert not verify_inclusion(leaves[index], (index + 1) % size, size, path, root)
            assert not verify_inclusion(leaves[index], index, size, [*path, root], root)


@pytest.mark.parametrize("verifiers", VERIFIERS)
@pytest.mark.parametrize("size", range(1, 10))
def test_every_consistency_proof_of_trees_of_1_to_9_verifies_and_a_changed_leaf_fails(size: int, verifiers: tuple) -> None:
    _, verify_consistency = verifiers
    leaves = _leaves(size)
    for old in range(1, size + 1):
        old_root, new_root = merkle.root(leaves[:old]), merkle.root(leaves)
        proof = merkle.consistency_path(leaves, old, size)
        assert verify_consistency(old, size, old_root, new_root, proof)
        # the old tree with one leaf changed is not a prefix of the new one
        for changed in range(old):
            altered = list(leaves[:old])
            altered[changed] = _flip(altered[changed])
            assert not verify_consistency(old, size, merkle.root(altered), new_root, proof)
        if old < size:
            assert not verify_consistency(old, size, old_root, _flip(new_root), proof)
            assert not verify_consistency(old + 1, size, old_root, new_root, proof)


def test_the_streaming_tree_agrees_with_the_recursive_root_at_every_size() -> None:
    leaves = _leaves(70)
    tree = merkle.Tree()
    for n, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        assert tree.root() == merkle.root(leaves[:n])


def test_a_proof_outside_the_tree_is_refused() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_path(_leaves(3), 3, 3)
    with pytest.raises(ValueError):
        merkle.consistency_path(_leaves(3), 0, 3)
    assert not merkle.verify_inclusion(LEAVES[0], 1, 1, [], LEAVES[0])
    assert not merkle.verify_consistency(3, 2, LEAVES[0], LEAVES[0], [])
