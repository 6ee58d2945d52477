"""The DuckLake and PostgreSQL-scanner extensions, loaded from the files inside their PyPI wheels.

Nothing is downloaded: ``LOAD '<file>'`` reads the signed build the wheel ships for this duckdb
version, and autoinstall stays off so a missing extension fails with a message instead of a fetch.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

__all__ = ["ExtensionMissing", "extension_file", "load_extensions"]

# extension name -> the module of its wheel
_WHEELS = {"ducklake": "duckdb_extension_ducklake", "postgres_scanner": "duckdb_extension_postgres_scanner"}


class ExtensionMissing(RuntimeError):
    """The wheel of an extension is not installed (or has no build for this duckdb)."""


def extension_file(name: str) -> Path:
    module = _WHEELS[name]
    try:
        package = __import__(module)
    except ImportError:
        raise ExtensionMissing(
            f"the {name} extension is not installed: pip install 'spendscope[server]' "
            f"(it brings {module.replace('_', '-')}=={duckdb.__version__})"
        ) from None
    assert package.__file__ is not None
    found = (
        Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    )
    if not found.is_file():
        raise ExtensionMissing(
            f"{found} does not exist: the {name} wheel does not match duckdb {duckdb.__version__}"
        )
    return found


def load_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """Load both extensions into ``con``'s database instance (every cursor of it sees them)."""
    con.execute("SET autoinstall_known_extensions = false")
    for name in _WHEELS:
        con.execute(f"LOAD '{extension_file(name)}'")
