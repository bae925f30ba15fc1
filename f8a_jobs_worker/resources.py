"""Where the files that ship with the package live: ``schemas/`` and ``default_jobs/``.

A wheel carries them under ``f8a_jobs_worker/_data/``; a source checkout (editable install, tests)
keeps them at the repository's top level, where people edit them.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def schemas_dir() -> Path:
    return _data_dir("schemas")


def default_jobs_dir() -> Path:
    return _data_dir("default_jobs")
