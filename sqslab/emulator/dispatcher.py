"""The replacements that memoize moto's server dispatch.

moto's server maps each request to a backend under a global lock, and on the way
lists moto's package directory (one listdir and ~170 stats per request); then each
response object lists its class's methods with ``inspect.getmembers`` to find the
action's (~130 us per request), and draws its 52-character request id with 52
``random.choice`` calls. Here the module list is read once, the host -> backend
mapping and each class's method names are memoized, and the request id comes from
``os.urandom``.

``install()`` puts them in place. A new replacement is a function here, a line in
``install()`` and its pair in ``guard.PATCHED``.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from sqslab.emulator.guard import _replace

#: moto's own DomainDispatcherApplication.get_backend_for_host (bound by install()).
_stock_get_backend_for_host: Any = None
#: host -> backend app, as the stock method answered (bounded: hosts come from requests).
_memo: dict[str | None, Any] = {}
_MEMO_MAX = 1024
#: response class -> its method names, as moto.core.utils.method_names_from_class lists them.
_methods: dict[type, list[str]] = {}
_stock_method_names: Any = None


def get_backend_for_host(self: Any, host: str | None) -> Any:
    """DomainDispatcherApplication.get_backend_for_host: moto's answer, memoized per host."""
    try:
        return _memo[host]
    except KeyError:
        backend = _stock_get_backend_for_host(self, host)
        if len(_memo) < _MEMO_MAX:
            _memo[host] = backend
        return backend


def method_names_from_class(clazz: type) -> list[str]:
    """moto.core.responses.method_names_from_class, memoized per class (a class's
    methods do not change once the patches are in place, before the first request)."""
    try:
        return _methods[clazz]
    except KeyError:
        names = _methods[clazz] = _stock_method_names(clazz)
        return names


def gen_amzn_requestid_long(headerdict: dict[str, Any] | None = None) -> str:
    """moto.core.responses.gen_amzn_requestid_long: a 52-character letters-and-digits id,
    put in headerdict as x-amzn-requestid, from one os.urandom call."""
    request_id = base64.b64encode(os.urandom(39), altchars=b"xy").decode("ascii")
    if isinstance(headerdict, dict):
        headerdict["x-amzn-requestid"] = request_id
    return request_id


def install() -> None:
    """Memoize moto.backends.list_of_moto_modules, the dispatcher's host lookup and the
    response classes' method names; draw request ids from os.urandom."""
    global _stock_get_backend_for_host, _stock_method_names
    from moto import backends
    from moto.core import responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())
    _replace(backends, "list_of_moto_modules", lambda: iter(modules))
    _stock_get_backend_for_host = DomainDispatcherApplication.get_backend_for_host
    _replace(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)
    _stock_method_names = responses.method_names_from_class
    _replace(responses, "method_names_from_class", method_names_from_class)
    _replace(responses, "gen_amzn_requestid_long", gen_amzn_requestid_long)
