"""The browser pages, starting with the admin dashboard.

``static/`` contains the pages' HTML, CSS and ES modules, served by
:mod:`switchboard.api.web`.
"""
