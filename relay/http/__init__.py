"""The relay's HTTP side (aiohttp).

- ``middleware``: request ids, one log line per request, errors as RFC 9457 problems.
- ``auth``: the ``authorized`` decorator (home tokens, the admin token).
- ``views``: the handlers; ``routes``: every route in one place.
- ``queries``: the SQL read models the views show.
- ``state``: what the handlers share (``request.app[RELAY]``).
- ``templates/``: HTML pages (Jinja2, autoescaped).
"""
