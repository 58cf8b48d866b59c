"""Folders configured by staff must stay inside the roots the server allows."""

from pathlib import Path


class PathEscapeError(ValueError):
    pass


def resolve_inside(root, relative):
    """Return ``root/relative`` resolved, refusing anything that leaves ``root``."""
    root = Path(root).resolve()
    relative = (relative or "").strip()
    if Path(relative).is_absolute():
        raise PathEscapeError(
            f"« {relative} » est un chemin absolu : indiquez un sous-dossier relatif à {root}."
        )
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise PathEscapeError(f"« {relative} » sort du dossier autorisé {root} : refusé.")
    return target
