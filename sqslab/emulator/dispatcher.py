"""The replacements that memoize moto's server dispatch.

moto's server maps each request to a backend under a global lock, and on the way
lists moto's package directory (one listdir and ~170 stats per request). Here the
module list is read once and the host -> backend mapping is memoized.

``install()`` puts them in place. A new replacement is a function here, a line in
``install()`` and its pair in ``guard.PATCHED``.
"""

from __future__ import annotations

from typing import Any

from sqslab.emulator.guard import _replace

#: moto's own DomainDispatcherApplication.get_backend_for_host (bound by install()).
_stock_get_backend_for_host: Any = None
#: host -> backend app, as the stock method answered (bounded: hosts come from requests).
_memo: dict[str | None, Any] = {}
_MEMO_MAX = 1024


def get_backend_for_host(self: Any, host: str | None) -> Any:
    """DomainDispatcherApplication.get_backend_for_host: moto's answer, memoized per host."""
    try:
        return _memo[host]
    except KeyError:
        backend = _stock_get_backend_for_host(self, host)
        if len(_memo) < _MEMO_MAX:
            _memo[host] = backend
        return backend


def install() -> None:
    """Memoize moto.backends.list_of_moto_modules and the dispatcher's host lookup."""
    global _stock_get_backend_for_host
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())
    _replace(backends, "list_of_moto_modules", lambda: iter(modules))
    _stock_get_backend_for_host = DomainDispatcherApplication.get_backend_for_host
    _replace(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)
