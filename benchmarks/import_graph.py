"""The import graph between segrt's top-level folders, for a reader (tests/test_layers.py is the
check): every folder-to-folder arrow with its count, the pairs that import each other, and the
longest import chains, module by module, with the folders they pass through.

    python3 benchmarks/import_graph.py [--repo DIR] [--chains 3]

Run it on an old checkout (git worktree add /tmp/old REV) to compare: it finds the packages the
way setup.py maps them (segrt/ is ``segrt``; every other top-level folder with an __init__.py is
``segrt.<folder>``), so it reads trees from before and after a move alike.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_layers import imports, modules  # noqa: E402  (the check's own reader of the graph)


def folders_of(repo: Path) -> list[str]:
    """segrt/ and every other top-level folder with an __init__.py (configs/ is data)."""
    found = {p.parent.name for p in repo.glob("*/__init__.py")} - {"segrt", "configs"}
    return ["segrt", *sorted(found)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--chains", type=int, default=3, help="how many longest chains to print")
    args = parser.parse_args()
    known = modules(args.repo, folders_of(args.repo))
    folder = {m: p.relative_to(args.repo).parts[0] for m, p in known.items()}
    # the package's two doors (the lazy segrt.Segmenter, python -m segrt) are not dependencies
    edges = {m: set() if m in ("segrt", "segrt.__main__") else imports(m, p, known) for m, p in known.items()}
    arrows = Counter((folder[a], folder[b]) for a, ts in edges.items() for b in ts if folder[a] != folder[b])
    print(f"{args.repo}: {len(known)} modules in {len(set(folder.values()))} folders")
    print("\narrows between folders (A -> B: A imports B; count of module pairs):")
    for (a, b), n in sorted(arrows.items()):
        back = " <- and back" if (b, a) in arrows else ""
        print(f"  {a}/ -> {b}/  {n}{back}")
    loops = sorted({tuple(sorted(p)) for p in arrows if (p[1], p[0]) in arrows})
    print(f"\nfolder pairs that import each other: {len(loops)}"
          + "".join(f"\n  {a}/ <-> {b}/ ({arrows[(a, b)]} and {arrows[(b, a)]})" for a, b in loops))

    def add(a: tuple, b: tuple) -> tuple:
        return tuple(x + y for x, y in zip(a, b, strict=True))

    def best_chain(m: str, score, memo: dict) -> tuple[tuple, tuple[str, ...]]:
        """The chain from ``m`` that maximises ``score(chain)``, built edge by edge (the graph of
        modules has no cycles: tests/test_layers.py)."""
        if m not in memo:
            options = [(add(score(m, t), key), (m, *chain)) for t in sorted(edges[m])
                       for key, chain in [best_chain(t, score, memo)]]
            memo[m] = max(options, default=((0, 1), (m,)), key=lambda o: o[0])
        return memo[m]

    longest = {}  # (modules, 0)
    crossing = {}  # (folder changes, modules)
    by_length = sorted((best_chain(m, lambda a, b: (1, 0), longest) for m in known), key=lambda o: o[0], reverse=True)
    by_crossings = max((best_chain(m, lambda a, b: (folder[a] != folder[b], 1), crossing) for m in known),
                       key=lambda o: o[0])
    print(f"\nlongest import chains ({args.chains}):")
    for _, chain in by_length[: args.chains]:
        describe(chain, folder)
    print("\nthe chain that crosses between folders most often:")
    describe(by_crossings[1], folder)


def describe(chain: tuple[str, ...], folder: dict[str, str]) -> None:
    path = [folder[m] for m in chain]
    runs = [f for i, f in enumerate(path) if i == 0 or f != path[i - 1]]
    revisits = len(runs) - len(set(runs))
    print(f"  {len(chain)} modules, folders {' -> '.join(f + '/' for f in runs)}"
          f" ({revisits} return{'s' if revisits != 1 else ''} to a folder already left)")
    print("    " + " -> ".join(chain))

if __name__ == "__main__":
    main()
