"""An OpenID Connect provider built for tests: a real HTTP server (Starlette on uvicorn) that
Bulletin talks to as it would to Entra ID, Okta, Google or Keycloak. See :mod:`.server`."""
