"""Who may call: tokens of the platform and of a city's identity provider, API keys,
and what every kind of bad credential gets (401, nothing done)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from smartcity.config import Settings
from tests.conftest import LiveServer
from tests.security.conftest import NOW, City, seed_admin, start_city

LAMP = {"id": "urn:ngsi-ld:Streetlight:auth-1", "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on"}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(city: City, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "smartcity", "aud": "smartcity", "sub": f"client:{city.admin_name}",
            "acct": NOW, "iat": now,
            "nbf": now, "exp": now + 600, "roles": ["admin"], **changes}


def _platform_key(city: City) -> Any:
    return city.live.platform.gatekeeper.tokens.key


def _signed(city: City, **changes: Any) -> str:
    key = _platform_key(city)
    return jwt.encode(_claims(city, **changes), key.key, algorithm="ES256",
                      headers={"kid": key.kid})


def _refused(city: City, headers: dict[str, str], why: str = "") -> httpx.Response:
    response = httpx.get(f"{city.url}/ngsi-ld/v1/entities", params={"type": "Streetlight"},
                         headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["type"] == "urn:smartcity:error:Unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert why.lower() in response.json()["detail"].lower()
    return response


def test_without_credentials_the_api_answers_401(city: City) -> None:
    _refused(city, {}, "authenticate")


def test_a_client_gets_a_token_with_basic_or_form_credentials(city: City) -> None:
    headers = city.account(["lighting"], name="form-client")
    with city.http(headers) as http:
        assert http.get("/entities", params={"type": "Streetlight"}).status_code == 200
    made = httpx.post(f"{city.url}/auth/clients", headers=city.admin,
                      json={"name": "post-client", "roles": ["lighting"]}).json()
    response = httpx.post(f"{city.url}/auth/token", data={
        "grant_type": "client_credentials", "client_id": "post-client",
        "client_secret": made["secret"]})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600


def test_a_user_gets_a_token_with_the_password_grant(city: City) -> None:
    made = httpx.post(f"{city.url}/auth/users", headers=city.admin, json={
        "name": "lena", "roles": ["traffic"], "password": "a long enough secret"})
    assert made.status_code == 201 and "secret" not in made.json()
    response = httpx.post(f"{city.url}/auth/token", data={
        "grant_type": "password", "username": "lena", "password": "a long enough secret"})
    assert response.status_code == 200
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "user:lena" and claims["roles"] == ["traffic"]


@pytest.mark.parametrize(("form", "status", "error"), [
    ({"grant_type": "password", "username": "lena", "password": "wrong password!"}, 400,
     "invalid_grant"),
    ({"grant_type": "password", "username": "nobody", "password": "whatever it is"}, 400,
     "invalid_grant"),
    ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}, 401,
     "invalid_client"),
    ({"grant_type": "authorization_code", "code": "x"}, 400, "unsupported_grant_type"),
])
def test_a_bad_token_request_is_refused(city: City, form: dict[str, str], status: int,
                                        error: str) -> None:
    response = httpx.post(f"{city.url}/auth/token", data=form)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_a_short_password_is_refused_and_no_user_is_made(city: City) -> None:
    response = httpx.post(f"{city.url}/auth/users", headers=city.admin, json={
        "name": "shorty", "roles": ["traffic"], "password": "short"})
    assert response.status_code == 400 and "12 characters" in response.json()["detail"]
    users = httpx.get(f"{city.url}/auth/users", headers=city.admin).json()
    assert "shorty" not in [u["name"] for u in users]
    assert all("secret" not in u for u in users)


def test_a_forged_token_is_refused(city: City) -> None:
    header, payload, signature = city.account(["developer"])["Authorization"][7:].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    raised = _b64(json.dumps({**claims, "roles": ["admin"]}).encode())
    _refused(city, {"Authorization": f"Bearer {header}.{raised}.{signature}"},
             "not valid")


def test_an_expired_token_is_refused(city: City) -> None:
    past = int(time.time()) - 3600
    _refused(city, {"Authorization": "Bearer " + _signed(city, iat=past - 60, nbf=past - 60,
                                                         exp=past)}, "expired")


def test_a_token_within_the_clock_skew_is_accepted(city: City) -> None:
    token = _signed(city, exp=int(time.time()) - 30)
    with city.http({"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/entities", params={"type": "Streetlight"}).status_code == 200


def test_an_unsigned_token_alg_none_is_refused(city: City) -> None:
    token = jwt.encode(_claims(city), None, algorithm="none")
    _refused(city, {"Authorization": f"Bearer {token}"}, "not valid")


def test_a_token_signed_with_another_key_is_refused(city: City) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(city), other, algorithm="ES256",
                       headers={"kid": _platform_key(city).kid})
    _refused(city, {"Authorization": f"Bearer {token}"}, "not valid")


def test_a_token_hmac_signed_with_the_public_key_is_refused(city: City) -> None:
    public = _platform_key(city).key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (_b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "."
                     + _b64(json.dumps(_claims(city)).encode()))
    signature = _b64(hmac.new(public, signing_input.encode(), hashlib.sha256).digest())
    _refused(city, {"Authorization": f"Bearer {signing_input}.{signature}"}, "not valid")


def test_a_token_for_another_audience_is_refused(city: City) -> None:
    _refused(city, {"Authorization": "Bearer " + _signed(city, aud="another-service")},
             "audience")


def test_a_token_of_an_untrusted_issuer_is_refused(city: City) -> None:
    _refused(city, {"Authorization": "Bearer " + _signed(city, iss="https://evil.example")},
             "issuer")


def test_a_removed_account_s_token_stops_working(city: City) -> None:
    headers = city.account(["lighting"], name="leaver")
    assert httpx.delete(f"{city.url}/auth/clients/leaver",
                        headers=city.admin).status_code == 204
    _refused(city, headers, "no longer exists")


def test_unknown_schemes_and_api_keys_are_refused(city: City) -> None:
    _refused(city, {"Authorization": "Digest abc"}, "unsupported")
    _refused(city, {"X-API-Key": "sc_0123456789ab_notarealkeynotarealkeyxx"}, "unknown")


def test_an_api_key_reads_open_data_and_may_not_write(city: City) -> None:
    key = city.api_key(["developer"])
    with city.http(city.account(["lighting"])) as operator:
        assert operator.post("/entities", json=LAMP).status_code == 201
    with city.http(key) as developer:
        assert developer.get(f"/entities/{LAMP['id']}").status_code == 200
        refused = developer.patch(f"/entities/{LAMP['id']}/attrs",
                                  json={"powerState": {"type": "Property", "value": "off"}})
        assert refused.status_code == 403
        assert refused.json()["type"] == "urn:smartcity:error:AccessDenied"
    with city.http(city.admin) as admin:
        assert admin.get(f"/entities/{LAMP['id']}").json()["powerState"]["value"] == "on"


def test_the_platform_publishes_its_signing_keys(city: City) -> None:
    jwks = httpx.get(f"{city.url}/auth/jwks.json").json()
    token = city.account(["lighting"])["Authorization"][7:]
    key = jwt.PyJWK(jwks["keys"][0])
    assert jwt.decode(token, key.key, algorithms=["ES256"], audience="smartcity")["roles"] \
        == ["lighting"]
    discovery = httpx.get(f"{city.url}/.well-known/openid-configuration").json()
    assert discovery["token_endpoint"].endswith("/auth/token")


# -- a city's OpenID Connect provider --------------------------------------------------
ISSUER = "https://idp.stockholm.example/realms/city"


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(idp_key: rsa.RSAPrivateKey) -> Iterator[str]:
    jwk = {**json.loads(RSAAlgorithm.to_jwk(idp_key.public_key())), "kid": "idp-1",
           "alg": "RS256", "use": "sig"}
    body = json.dumps({"keys": [jwk]}).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def oidc_city(module_db: str, jwks_url: str) -> Iterator[City]:
    live, admin = start_city(module_db, oidc_issuer=ISSUER, oidc_audience="smartcity-api",
                              oidc_jwks_url=jwks_url, oidc_roles_claim="realm_access.roles",
                              oidc_person_claim="person")
    with live as url:
        yield City(url, admin, live)


def _idp_token(key: rsa.RSAPrivateKey, **changes: Any) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "smartcity-api", "sub": "f3a9", "iat": now, "exp": now + 300,
              "realm_access": {"roles": ["lighting", "offline_access"]}, **changes}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "idp-1"})
    return {"Authorization": f"Bearer {token}"}


def test_a_token_of_the_city_s_identity_provider_is_accepted(
        oidc_city: City, idp_key: rsa.RSAPrivateKey) -> None:
    headers = _idp_token(idp_key, person="urn:ngsi-ld:Person:f3a9")
    me = httpx.get(f"{oidc_city.url}/me", headers=headers).json()
    assert me == {"subject": "oidc:f3a9", "roles": ["lighting"], "tenants": None,
                  "person": "urn:ngsi-ld:Person:f3a9", "client": None}
    with oidc_city.http(headers) as http:
        assert http.post("/entities", json={**LAMP, "id": "urn:ngsi-ld:Streetlight:idp"}
                         ).status_code == 201


def test_identity_provider_tokens_are_checked_like_the_platform_s(
        oidc_city: City, idp_key: rsa.RSAPrivateKey) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _refused(oidc_city, _idp_token(idp_key, aud="account"), "audience")
    _refused(oidc_city, _idp_token(idp_key, exp=int(time.time()) - 600), "expired")
    _refused(oidc_city, _idp_token(stranger), "not valid")
    _refused(oidc_city, _idp_token(idp_key, iss="https://other.example"), "issuer")


def test_oidc_settings_need_an_audience() -> None:
    with pytest.raises(ValueError, match="oidc_audience"):
        Settings(oidc_issuer=ISSUER)


# -- first start ---------------------------------------------------------------------------
def test_the_first_start_makes_an_admin_and_prints_its_secret_once(
        db: str, capfd: pytest.CaptureFixture[str]) -> None:
    with LiveServer(Settings(db=db, auth="on")) as url:
        printed = capfd.readouterr().out
        secret = next(line.split()[-1] for line in printed.splitlines()
                      if "client_secret" in line)
        token = httpx.post(f"{url}/auth/token", auth=("admin", secret),
                           data={"grant_type": "client_credentials"})
        assert token.status_code == 200
    with LiveServer(Settings(db=db, auth="on")):
        assert "client_secret" not in capfd.readouterr().out


def test_serving_without_authentication_says_so_loudly(tmp_path: Any) -> None:
    seed_admin(str(tmp_path / "city.db"))
    with subprocess.Popen(
            [sys.executable, "-m", "smartcity", "serve", "--auth", "none", "--port", "0",
             "--db", str(tmp_path / "city.db")], stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        first = "".join(process.stderr.readline() for _ in range(4))
        process.terminate()
        process.communicate(timeout=10)
    assert "AUTHENTICATION IS OFF" in first
