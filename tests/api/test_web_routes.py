"""The routes of the browser pages (/, /app, /admin) and their /web/ assets."""

from __future__ import annotations

from importlib import resources

import httpx

from tests.support.server import ServerProcess


def test_root_redirects_to_chat(raw_server: ServerProcess) -> None:
    response = httpx.get(raw_server.base_url + "/")

    assert response.status_code == 307
    assert response.headers["location"] == "/app"


def test_pages_are_html_with_policy(raw_server: ServerProcess) -> None:
    for path, script in (("/app", "/web/app.js"), ("/admin", "/web/admin.js")):
        response = httpx.get(raw_server.base_url + path)

        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert f'src="{script}"' in response.text


def test_assets_are_served_as_modules(raw_server: ServerProcess) -> None:
    static = resources.files("switchboard.web").joinpath("static")
    names = [item.name for item in static.iterdir() if item.name.endswith(".js")]
    assert "proto.js" in names

    for name in names:
        response = httpx.get(f"{raw_server.base_url}/web/{name}")

        assert response.status_code == 200, name
        assert "javascript" in response.headers["content-type"], name
        assert response.headers["cache-control"] == "no-cache"
        assert "content-security-policy" in response.headers
        assert response.content == static.joinpath(name).read_bytes()


def test_unknown_asset_is_not_found(raw_server: ServerProcess) -> None:
    for path in ("/web/missing.js", "/web/../api/web.py", "/web/%2e%2e/__init__.py"):
        response = httpx.get(raw_server.base_url + path)

        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_pages_stay_out_of_openapi(raw_server: ServerProcess) -> None:
    paths = httpx.get(raw_server.base_url + "/openapi.json").json()["paths"]

    for path in ("/", "/app", "/admin"):
        assert path not in paths
