"""Static files are served by WhiteNoise: no CDN, and `make serve` needs no collectstatic."""

import pytest


@pytest.mark.parametrize("path", ["/static/admin/css/base.css", "/static/portal/portal.css"])
def test_admin_and_portal_styles_are_served_locally(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "text/css" in response["Content-Type"]
