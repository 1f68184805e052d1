"""serfclient, imported without pkg_resources.

serfclient's ``__init__`` reads its own version with ``pkg_resources``, whose import
costs ~0.12 s of CPU in every node and gateway process (measured with
``python -X importtime``); `shoal up` starts them all at once on a small machine, so it
shows in the cold start. A stand-in answers that one call from importlib.metadata
for the duration of the import; any later ``import pkg_resources`` gets the real one.
"""

from __future__ import annotations

import importlib.metadata
import sys
import types

if "serfclient" not in sys.modules and "pkg_resources" not in sys.modules:
    _shim = types.ModuleType("pkg_resources")
    _shim.get_distribution = lambda name: types.SimpleNamespace(  # type: ignore[attr-defined]
        version=importlib.metadata.version(name))
    sys.modules["pkg_resources"] = _shim
    try:
        import serfclient  # noqa: F401
    finally:
        del sys.modules["pkg_resources"]

from serfclient import SerfClient  # noqa: E402
from serfclient.connection import SerfConnectionError  # noqa: E402

__all__ = ["SerfClient", "SerfConnectionError"]
