"""The browser pages, and the generator of their protocol codec.

``static/`` contains the pages' HTML, CSS and ES modules, served by
:mod:`switchboard.api.web`. ``static/proto.js`` is generated from
``proto/switchboard.proto`` by :mod:`switchboard.web.codegen`, so serving the
pages needs no Node.js.
"""
